#!/usr/bin/python3
"""torch_ref.py — the float64 PyTorch reference of one gradguard training run.

The outside oracle of the trainer: full-batch steps of an MLP built from
torch.nn modules, with torch.optim optimizers and the gradient controls of
the contract (INTERFACE.md) applied between backward() and optimizer.step() in the
contract's order:

    forward / backward (mean loss)            -> raw global gradient norm
    --agc L            timm adaptive_clip_grad, eps 1e-3, rows of W + whole b
    --clip-layer-norm  per tensor  g *= C / max(|g|, C)
    --clip-norm C      torch.nn.utils.clip_grad_norm_ (total + 1e-6)
      or --autoclip P  C = numpy.percentile(norms so far incl. this one, P)
                       then clip_grad_norm_(C)
    --clip-value C     torch.nn.utils.clip_grad_value_
    optimizer.step()   with the scheduled learning rate of step t (1-based)
    --weight-clip C    every weight and bias clamped to [-C, C]
    --max-norm C       each weight row w *= min(|w|, C) / (|w| + 1e-7)

Everything is float64; torch itself is the oracle wherever it has the op
(modules, losses, optimizers, clip_grad_norm_, clip_grad_value_).

Use it as a module:

    import torch_ref
    cfg = torch_ref.Config(widths=[6, 8, 3], activation="tanh", loss="mse",
                           optimizer="adam", lr=1e-2, clip_norm=0.5)
    res = torch_ref.train(cfg, X, y, init_weights, steps=6)
    res.weights      # [(W (out, in), b (out)), ...] float64 numpy
    res.losses       # per-step mean loss (before the update)
    res.grad_norms   # per-step global L2 norm of the raw gradient

or check the reference itself (hand-computed values, torch schedulers, and
an independent numpy implementation of nn.h / optim.h formulas):

    /usr/bin/python3 tests/torch_ref.py --selftest      # prints "N passed, N failed"
"""

import argparse
import dataclasses
import math
import sys
from typing import List, Optional, Sequence, Tuple

import numpy as np
import torch
import torch.nn as nn

torch.set_default_dtype(torch.float64)

ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "gelu", "identity")
LOSSES = ("mse", "bce", "softmax_ce")
OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw")
CONTROLS = ("agc", "clip_layer_norm", "clip_norm", "autoclip", "clip_value",
            "weight_clip", "max_norm")

AGC_EPS = 1e-3            # timm adaptive_clip_grad: max(|w|, eps)
AGC_GRAD_EPS = 1e-6       # timm: grad_norm.clamp(min=1e-6)
MAX_NORM_EPS = 1e-7       # Keras backend.epsilon() in MaxNorm


@dataclasses.dataclass
class Config:
    """One training configuration; names follow `gradguard train` flags."""
    widths: Sequence[int]
    activation: str = "relu"
    loss: str = "mse"
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    weight_decay: float = 0.0
    lr_schedule: str = "constant"     # constant | cosine | step:EVERY:GAMMA
    warmup_steps: int = 0
    clip_norm: Optional[float] = None
    clip_value: Optional[float] = None
    clip_layer_norm: Optional[float] = None
    agc: Optional[float] = None
    autoclip: Optional[float] = None  # percentile P in [0, 100]
    weight_clip: Optional[float] = None
    max_norm: Optional[float] = None
    # Which norm enters the autoclip history: "current" = the global norm at
    # autoclip's place in the order (after --agc and --clip-layer-norm), "raw"
    # = the raw gradient norm. Identical unless agc/clip-layer-norm are on.
    autoclip_history: str = "current"

    def without(self, *controls: str) -> "Config":
        """A copy with the named controls switched off."""
        return dataclasses.replace(self, **{c: None for c in controls})

    def active_controls(self) -> List[str]:
        return [c for c in CONTROLS if getattr(self, c) is not None]


@dataclasses.dataclass
class Result:
    weights: List[Tuple[np.ndarray, np.ndarray]]  # final (W (out, in), b (out))
    losses: List[float]             # mean loss of step t, before its update
    grad_norms: List[float]         # global L2 norm of the raw averaged gradient
    grad_norms_clipped: List[float]  # the same after all clipping
    clip_coefs: List[float]         # factor of --clip-norm/--autoclip (1 = none)
    clipped_fractions: List[float]  # fraction of values changed by --clip-value
    lrs: List[float]                # learning rate used at step t
    layer_grad_norms: List[List[float]] = dataclasses.field(default_factory=list)
    # per step, per layer: ||(grad W_l, grad b_l)|| of the raw averaged gradient
    first_grads: Optional[List[np.ndarray]] = None  # raw grads of step 1 [W0, b0, ...]
    # With keep_first_grads: for each gradient control c, the step-1 gradients
    # and the per-step global norms as they arrive at c's place in the order
    # (after the earlier controls); "optimizer" = after all clipping.
    first_grads_at: Optional[dict] = None
    norms_at: Optional[dict] = None


# ---------------------------------------------------------------- building

def activation_module(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(0.01)
    if name == "tanh":
        return nn.Tanh()
    if name == "sigmoid":
        return nn.Sigmoid()
    if name == "gelu":
        return nn.GELU(approximate="none")
    if name == "identity":
        return nn.Identity()
    raise ValueError(f"unknown activation {name!r}")


def build_model(widths: Sequence[int], activation: str) -> nn.Sequential:
    """Linear layers with the activation between them; no output activation
    (the output nonlinearity is folded into the loss)."""
    mods = []
    for i in range(len(widths) - 1):
        mods.append(nn.Linear(widths[i], widths[i + 1]).double())
        if i < len(widths) - 2:
            mods.append(activation_module(activation))
    return nn.Sequential(*mods)


def linear_layers(model: nn.Sequential) -> List[nn.Linear]:
    return [m for m in model if isinstance(m, nn.Linear)]


def load_weights(model: nn.Sequential, weights) -> None:
    layers = linear_layers(model)
    if len(layers) != len(weights):
        raise ValueError(f"{len(weights)} weight pairs for {len(layers)} layers")
    with torch.no_grad():
        for lin, (W, b) in zip(layers, weights):
            W = np.asarray(W, dtype=np.float64)
            b = np.asarray(b, dtype=np.float64).reshape(-1)
            if tuple(W.shape) != tuple(lin.weight.shape) or b.shape[0] != lin.bias.shape[0]:
                raise ValueError(f"weight shape {W.shape}/{b.shape} does not fit "
                                 f"{tuple(lin.weight.shape)}")
            lin.weight.copy_(torch.from_numpy(W))
            lin.bias.copy_(torch.from_numpy(b))


def loss_module(name: str) -> nn.Module:
    if name == "mse":
        return nn.MSELoss(reduction="mean")
    if name == "bce":
        return nn.BCEWithLogitsLoss(reduction="mean")
    if name == "softmax_ce":
        return nn.CrossEntropyLoss(reduction="mean")
    raise ValueError(f"unknown loss {name!r}")


def targets_tensor(loss: str, y: np.ndarray, K: int) -> torch.Tensor:
    """Labels (N) int64 for softmax_ce; float64 (N, K) targets otherwise
    (a 1-D float /y is (N, 1))."""
    y = np.asarray(y)
    if loss == "softmax_ce":
        return torch.from_numpy(y.reshape(-1).astype(np.int64))
    return torch.from_numpy(y.astype(np.float64).reshape(y.shape[0], K))


def make_optimizer(params, cfg: Config) -> torch.optim.Optimizer:
    # Every hyperparameter is passed explicitly (torch AdamW's own default
    # weight_decay is 0.01, gradguard's is 0).
    o = cfg.optimizer
    if o == "sgd":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=0.0,
                               weight_decay=cfg.weight_decay)
    if o == "momentum":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, dampening=0.0,
                               weight_decay=cfg.weight_decay, nesterov=False)
    if o == "nesterov":
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, dampening=0.0,
                               weight_decay=cfg.weight_decay, nesterov=True)
    if o == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                                eps=cfg.eps, weight_decay=cfg.weight_decay, amsgrad=False)
    if o == "adamw":
        return torch.optim.AdamW(params, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                                 eps=cfg.eps, weight_decay=cfg.weight_decay, amsgrad=False)
    raise ValueError(f"unknown optimizer {o!r}")


# ---------------------------------------------------------------- schedule

def parse_schedule(spec: str):
    """'constant' | 'cosine' | 'step:EVERY:GAMMA' -> (kind, every, gamma)."""
    if spec in ("constant", "cosine"):
        return spec, 0, 1.0
    parts = spec.split(":")
    if len(parts) == 3 and parts[0] == "step":
        every, gamma = int(parts[1]), float(parts[2])
        if every < 1:
            raise ValueError(f"bad schedule {spec!r}")
        return "step", every, gamma
    raise ValueError(f"bad schedule {spec!r}")


def schedule_lr(spec: str, lr: float, t: int, total: int, warmup: int = 0) -> float:
    """Learning rate of step t (1-based) of `total` steps (contract formulas)."""
    kind, every, gamma = parse_schedule(spec)
    if kind == "constant":
        return lr
    if kind == "step":
        return lr * gamma ** ((t - 1) // every)
    W, T = warmup, total
    if t <= W:
        return lr * t / W
    return lr * (1.0 + math.cos(math.pi * (t - W - 1) / (T - W))) / 2.0


# ---------------------------------------------------------------- controls
# Each works in place on a list of gradient tensors paired with parameters.

def global_norm(grads) -> float:
    return math.sqrt(sum(float((g.double() ** 2).sum()) for g in grads))


def agc_(params, grads, lam: float) -> None:
    """timm adaptive_clip_grad (clip_factor=lam, eps=1e-3): unit-wise norms
    are row norms of a 2-D weight and the whole-vector norm of a bias."""
    for p, g in zip(params, grads):
        if p.ndim <= 1:
            pn = p.norm(2)
            gn = g.norm(2)
        else:
            dims = tuple(range(1, p.ndim))
            pn = p.norm(2, dim=dims, keepdim=True)
            gn = g.norm(2, dim=dims, keepdim=True)
        max_norm = pn.clamp(min=AGC_EPS) * lam
        clipped = g * (max_norm / gn.clamp(min=AGC_GRAD_EPS))
        g.copy_(torch.where(gn < max_norm, g, clipped))


def clip_layer_norm_(grads, C: float) -> None:
    """tf.clip_by_norm per tensor: g *= C / max(|g|, C)."""
    for g in grads:
        n = float(g.norm(2))
        g.mul_(C / max(n, C))


def clip_norm_(params, C: float) -> float:
    """torch.nn.utils.clip_grad_norm_; returns the coefficient applied
    (min(1, C / (total + 1e-6)))."""
    total = float(torch.nn.utils.clip_grad_norm_(params, C, norm_type=2.0))
    return min(1.0, C / (total + 1e-6))


def autoclip_threshold(history: Sequence[float], P: float) -> float:
    return float(np.percentile(np.asarray(history, dtype=np.float64), P))  # linear


def weight_clip_(params, C: float) -> None:
    for p in params:
        p.clamp_(-C, C)


def max_norm_(weights, C: float) -> None:
    """Keras MaxNorm on each row (unit) of a weight (out, in)."""
    for W in weights:
        n = W.norm(2, dim=1, keepdim=True)
        W.mul_(n.clamp(max=C) / (n + MAX_NORM_EPS))


# ---------------------------------------------------------------- training

def train(cfg: Config, X: np.ndarray, y: np.ndarray, init_weights, steps: int,
          keep_first_grads: bool = False, dtype: torch.dtype = torch.float64) -> Result:
    """`steps` full-batch steps on (X, y) from init_weights (cast to float64).
    dtype=torch.float32 runs the same steps in single precision: not the
    reference, but an estimate of what a correct float32 trainer can reach."""
    if cfg.activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {cfg.activation!r}")
    if cfg.clip_norm is not None and cfg.autoclip is not None:
        raise ValueError("clip_norm and autoclip are alternatives; give one")
    widths = list(cfg.widths)
    K = widths[-1]
    model = build_model(widths, cfg.activation).to(dtype)
    load_weights(model, init_weights)
    layers = linear_layers(model)
    params = [p for lin in layers for p in (lin.weight, lin.bias)]  # W0, b0, W1, ...
    weights_only = [lin.weight for lin in layers]
    opt = make_optimizer(params, cfg)
    loss_fn = loss_module(cfg.loss)
    Xt = torch.from_numpy(np.asarray(X, dtype=np.float64)).to(dtype)
    yt = targets_tensor(cfg.loss, y, K)
    if yt.is_floating_point():
        yt = yt.to(dtype)

    res = Result([], [], [], [], [], [], [])
    history: List[float] = []
    n_params = sum(p.numel() for p in params)
    for t in range(1, steps + 1):
        lr_t = schedule_lr(cfg.lr_schedule, cfg.lr, t, steps, cfg.warmup_steps)
        for group in opt.param_groups:
            group["lr"] = lr_t
        opt.zero_grad(set_to_none=False)
        loss = loss_fn(model(Xt), yt)
        loss.backward()
        grads = [p.grad for p in params]
        raw = global_norm(grads)
        res.losses.append(float(loss))
        res.grad_norms.append(raw)
        res.layer_grad_norms.append([global_norm(grads[2 * l:2 * l + 2])
                                     for l in range(len(grads) // 2)])
        res.lrs.append(lr_t)
        if keep_first_grads and t == 1:
            res.first_grads = [g.detach().numpy().copy() for g in grads]
            res.first_grads_at, res.norms_at = {}, {}

        def at(stage):
            if keep_first_grads:
                if t == 1:
                    res.first_grads_at[stage] = [g.detach().numpy().copy() for g in grads]
                res.norms_at.setdefault(stage, []).append(global_norm(grads))

        with torch.no_grad():
            at("agc")
            if cfg.agc is not None:
                agc_(params, grads, cfg.agc)
            at("clip_layer_norm")
            if cfg.clip_layer_norm is not None:
                clip_layer_norm_(grads, cfg.clip_layer_norm)
            at("clip_norm")
            at("autoclip")
            coef = 1.0
            if cfg.clip_norm is not None:
                coef = clip_norm_(params, cfg.clip_norm)
            elif cfg.autoclip is not None:
                history.append(raw if cfg.autoclip_history == "raw" else global_norm(grads))
                coef = clip_norm_(params, autoclip_threshold(history, cfg.autoclip))
            frac = 0.0
            at("clip_value")
            if cfg.clip_value is not None:
                C = cfg.clip_value
                frac = sum(int((g.abs() > C).sum()) for g in grads) / n_params
                torch.nn.utils.clip_grad_value_(params, C)
            res.clip_coefs.append(coef)
            res.clipped_fractions.append(frac)
            res.grad_norms_clipped.append(global_norm(grads))
            at("optimizer")

        opt.step()

        with torch.no_grad():
            if cfg.weight_clip is not None:
                weight_clip_(params, cfg.weight_clip)
            if cfg.max_norm is not None:
                max_norm_(weights_only, cfg.max_norm)

    res.weights = [(lin.weight.detach().double().numpy().copy(),
                    lin.bias.detach().double().numpy().copy()) for lin in layers]
    return res


def max_rel_err(ours, ref) -> float:
    """Per tensor max|ours - ref| / max(max|ref|, tiny); the max over tensors."""
    worst = 0.0
    for (Wo, bo), (Wr, br) in zip(ours, ref):
        for a, b in ((Wo, Wr), (bo, br)):
            a = np.asarray(a, dtype=np.float64)
            b = np.asarray(b, dtype=np.float64)
            if a.shape != b.shape:
                return math.inf
            scale = max(float(np.abs(b).max()), 1e-12)
            worst = max(worst, float(np.abs(a - b).max()) / scale)
    return worst


# ================================================================ self-test
# An independent numpy implementation of the nn.h / optim.h formulas (no
# torch), used to check that the torch modules, losses and optimizers above
# mean what the headers and the contract say.

_erf = np.vectorize(math.erf)


def _np_act(name, z):
    if name == "relu":
        return np.maximum(z, 0), (z > 0).astype(np.float64)
    if name == "leaky_relu":
        return np.where(z > 0, z, 0.01 * z), np.where(z > 0, 1.0, 0.01)
    if name == "tanh":
        a = np.tanh(z)
        return a, 1 - a * a
    if name == "sigmoid":
        a = 1 / (1 + np.exp(-z))
        return a, a * (1 - a)
    if name == "gelu":
        Phi = 0.5 * (1 + _erf(z / math.sqrt(2)))
        phi = np.exp(-z * z / 2) / math.sqrt(2 * math.pi)
        return z * Phi, Phi + z * phi
    if name == "identity":
        return z, np.ones_like(z)
    raise ValueError(name)


def _np_loss(name, z, y):
    """Mean loss and d(mean)/dz from nn.h's per-sample formulas."""
    N, K = z.shape
    if name == "mse":
        t = y.reshape(N, K)
        return float(((z - t) ** 2).sum() / K / N), 2 * (z - t) / K / N
    if name == "bce":
        t = y.reshape(N, K)
        l = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
        s = 1 / (1 + np.exp(-z))
        return float(l.sum() / K / N), (s - t) / K / N
    if name == "softmax_ce":
        lab = y.reshape(-1).astype(np.int64)
        m = z.max(axis=1, keepdims=True)
        lse = (m + np.log(np.exp(z - m).sum(axis=1, keepdims=True)))[:, 0]
        l = lse - z[np.arange(N), lab]
        p = np.exp(z - lse[:, None])
        p[np.arange(N), lab] -= 1
        return float(l.mean()), p / N
    raise ValueError(name)


def _np_grads(widths, act, loss, params, X, y):
    L = len(widths) - 1
    a = X
    zs, acts = [], [X]
    for l in range(L):
        W, b = params[2 * l], params[2 * l + 1]
        z = a @ W.T + b
        zs.append(z)
        if l < L - 1:
            a, _ = _np_act(act, z)
            acts.append(a)
    lv, dz = _np_loss(loss, zs[-1], y)
    grads = [None] * (2 * L)
    for l in reversed(range(L)):
        grads[2 * l] = dz.T @ acts[l]
        grads[2 * l + 1] = dz.sum(axis=0)
        if l > 0:
            da = dz @ params[2 * l]
            _, d = _np_act(act, zs[l - 1])
            dz = da * d
    return lv, grads


def _np_train(cfg: Config, X, y, init_weights, steps):
    """The whole reference again in numpy, from the written formulas only."""
    X = np.asarray(X, np.float64)
    params = []
    for W, b in init_weights:
        params += [np.array(W, np.float64), np.array(b, np.float64).reshape(-1)]
    slots = [[np.zeros_like(p) for p in params] for _ in range(2)]
    history, losses, norms = [], [], []
    for t in range(1, steps + 1):
        lr = schedule_lr(cfg.lr_schedule, cfg.lr, t, steps, cfg.warmup_steps)
        lv, g = _np_grads(cfg.widths, cfg.activation, cfg.loss, params, X, y)
        raw = math.sqrt(sum((x ** 2).sum() for x in g))
        losses.append(lv)
        norms.append(raw)
        if cfg.agc is not None:
            for i, (p, gi) in enumerate(zip(params, g)):
                if p.ndim == 1:
                    pn = np.array(np.linalg.norm(p))
                    gn = np.array(np.linalg.norm(gi))
                else:
                    pn = np.linalg.norm(p, axis=1, keepdims=True)
                    gn = np.linalg.norm(gi, axis=1, keepdims=True)
                mx = cfg.agc * np.maximum(pn, 1e-3)
                g[i] = np.where(gn > mx, gi * mx / np.maximum(gn, 1e-6), gi)
        if cfg.clip_layer_norm is not None:
            C = cfg.clip_layer_norm
            g = [gi * C / max(np.linalg.norm(gi), C) for gi in g]
        C = cfg.clip_norm
        if cfg.autoclip is not None:
            cur = math.sqrt(sum((x ** 2).sum() for x in g))
            history.append(cur if cfg.autoclip_history == "current" else raw)
            C = _percentile_linear(history, cfg.autoclip)
        if C is not None:
            total = math.sqrt(sum((x ** 2).sum() for x in g))
            coef = min(1.0, C / (total + 1e-6))
            g = [gi * coef for gi in g]
        if cfg.clip_value is not None:
            g = [np.clip(gi, -cfg.clip_value, cfg.clip_value) for gi in g]
        o, wd = cfg.optimizer, cfg.weight_decay
        for i, p in enumerate(params):
            gi = g[i]
            if o != "adamw":
                gi = gi + wd * p
            if o == "sgd":
                p -= lr * gi
            elif o in ("momentum", "nesterov"):
                buf = slots[0][i]
                buf *= cfg.momentum
                buf += gi
                p -= lr * (gi + cfg.momentum * buf if o == "nesterov" else buf)
            else:
                if o == "adamw":
                    p *= 1 - lr * wd
                m, v = slots[0][i], slots[1][i]
                m *= cfg.beta1
                m += (1 - cfg.beta1) * gi
                v *= cfg.beta2
                v += (1 - cfg.beta2) * gi * gi
                bc1 = 1 - cfg.beta1 ** t
                bc2 = 1 - cfg.beta2 ** t
                p -= lr / bc1 * m / (np.sqrt(v) / math.sqrt(bc2) + cfg.eps)
        if cfg.weight_clip is not None:
            for p in params:
                np.clip(p, -cfg.weight_clip, cfg.weight_clip, out=p)
        if cfg.max_norm is not None:
            for p in params[0::2]:
                n = np.linalg.norm(p, axis=1, keepdims=True)
                p *= np.minimum(n, cfg.max_norm) / (n + 1e-7)
    return [(params[2 * l], params[2 * l + 1]) for l in range(len(params) // 2)], losses, norms


def _percentile_linear(values, P):
    """Hand-written linear-interpolation percentile (numpy's default method)."""
    s = sorted(values)
    pos = (len(s) - 1) * P / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def _plain_torch_loop(cfg: Config, X, y, init_weights, steps):
    """A textbook torch loop (no controls, constant lr) written separately."""
    model = build_model(cfg.widths, cfg.activation)
    load_weights(model, init_weights)
    opt = make_optimizer(model.parameters(), cfg)
    crit = loss_module(cfg.loss)
    Xt = torch.tensor(X, dtype=torch.float64)
    yt = targets_tensor(cfg.loss, y, cfg.widths[-1])
    for _ in range(steps):
        opt.zero_grad()
        crit(model(Xt), yt).backward()
        opt.step()
    return [(m.weight.detach().numpy().copy(), m.bias.detach().numpy().copy())
            for m in model if isinstance(m, nn.Linear)]


def _tiny_problem(loss, widths, seed, N=16):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, widths[0])).astype(np.float32)
    K = widths[-1]
    if loss == "softmax_ce":
        y = rng.integers(0, K, size=N).astype(np.int32)
    else:
        y = rng.uniform(0, 1, size=(N, K)).astype(np.float32)
    init = []
    for i in range(len(widths) - 1):
        W = (rng.standard_normal((widths[i + 1], widths[i])) * math.sqrt(2 / widths[i]))
        b = rng.uniform(-0.2, 0.2, size=widths[i + 1])
        init.append((W.astype(np.float32), b.astype(np.float32)))
    return X, y, init


def selftest(verbose: bool = False) -> int:
    passed = failed = 0

    def check(name, ok, detail=""):
        nonlocal passed, failed
        if ok:
            passed += 1
        else:
            failed += 1
        if verbose or not ok:
            print(f"{'PASS' if ok else 'FAIL'} {name} {detail}")

    def close(a, b, tol=1e-12):
        a = np.asarray(a, np.float64)
        b = np.asarray(b, np.float64)
        return a.shape == b.shape and bool(np.all(np.abs(a - b) <= tol * (1 + np.abs(b))))

    T = torch.tensor
    # --- AGC on hand-computed values
    W = T([[3.0, 4.0], [0.0, 0.0], [0.3, 0.4]])
    gW = T([[6.0, 8.0], [1.0, 0.0], [0.01, 0.0]])
    b = T([0.3, 0.4])
    gb = T([0.3, 0.4])
    agc_([W, b], [gW, gb], 0.5)
    # row 0: max 2.5, |g| 10 -> *0.25; row 1: max 0.5*1e-3, |g| 1 -> *5e-4;
    # row 2: max 0.25, |g| 0.01 -> unchanged; bias: max 0.25, |g| 0.5 -> *0.5
    check("agc rows", close(gW, [[1.5, 2.0], [5e-4, 0.0], [0.01, 0.0]]), str(gW.tolist()))
    check("agc bias", close(gb, [0.15, 0.2]), str(gb.tolist()))
    g0 = T([0.0, 0.0])
    agc_([T([1.0, 0.0])], [g0], 0.1)
    check("agc zero grad", close(g0, [0.0, 0.0]))

    # --- clip-layer-norm
    g1, g2 = T([3.0, 4.0]), T([0.3, 0.4])
    clip_layer_norm_([g1, g2], 1.0)
    check("clip_layer_norm", close(g1, [0.6, 0.8]) and close(g2, [0.3, 0.4]))

    # --- clip-norm: total 5 (3 and 4 in two tensors), C = 1
    p1, p2 = T([0.0], requires_grad=True), T([0.0], requires_grad=True)
    p1.grad, p2.grad = T([3.0]), T([4.0])
    coef = clip_norm_([p1, p2], 1.0)
    check("clip_norm coef", close(coef, 1 / (5 + 1e-6)))
    check("clip_norm grads", close(p1.grad, [3 / (5 + 1e-6)]) and close(p2.grad, [4 / (5 + 1e-6)]))
    p1.grad, p2.grad = T([0.3]), T([0.4])
    check("clip_norm untouched", clip_norm_([p1, p2], 1.0) == 1.0 and close(p1.grad, [0.3]))

    # --- autoclip percentile
    check("percentile 50", close(autoclip_threshold([4, 1, 3, 2], 50), 2.5))
    check("percentile 10", close(autoclip_threshold([4, 1, 3, 2], 10), 1.3))
    check("percentile single", close(autoclip_threshold([7.0], 10), 7.0))
    rng = np.random.default_rng(1)
    ok = all(close(autoclip_threshold(v, P), _percentile_linear(list(v), P))
             for v in (rng.uniform(size=n) for n in (1, 2, 5, 9)) for P in (0, 10, 37.5, 90, 100))
    check("percentile vs hand-written", ok)

    # --- weight clip, max-norm
    w = T([[3.0, -4.0], [0.3, 0.4]])
    bb = T([2.0, -0.5])
    weight_clip_([w, bb], 1.0)
    check("weight_clip", close(w, [[1.0, -1.0], [0.3, 0.4]]) and close(bb, [1.0, -0.5]))
    w = T([[3.0, -4.0], [0.3, 0.4]])
    max_norm_([w], 1.0)
    check("max_norm", close(w, [[3 / (5 + 1e-7), -4 / (5 + 1e-7)],
                                [0.3 * 0.5 / (0.5 + 1e-7), 0.4 * 0.5 / (0.5 + 1e-7)]]))

    # --- schedules: documented values
    check("step schedule", [schedule_lr("step:3:0.5", 1.0, t, 10) for t in range(1, 8)]
          == [1, 1, 1, 0.5, 0.5, 0.5, 0.25])
    cos = [schedule_lr("cosine", 2.0, t, 10, 4) for t in range(1, 11)]
    exp = [0.5, 1.0, 1.5, 2.0] + [1.0 + math.cos(math.pi * k / 6) for k in range(6)]
    check("cosine schedule", close(cos, exp), str(cos))
    check("cosine no warmup", close(schedule_lr("cosine", 1.0, 1, 8, 0), 1.0)
          and close(schedule_lr("cosine", 1.0, 5, 8, 0), 0.5))
    check("constant schedule", schedule_lr("constant", 0.3, 5, 8) == 0.3)

    # --- schedules vs torch's own schedulers
    for T_, W_ in ((10, 4), (7, 1), (9, 0)):
        p = nn.Parameter(torch.zeros(1))
        o = torch.optim.SGD([p], lr=0.7)
        cos_t = torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=T_ - W_, eta_min=0.0)
        tl = []
        # warmup by hand (torch LinearLR start_factor must be > 0), then cosine
        for t in range(1, T_ + 1):
            if t <= W_:
                tl.append(0.7 * t / W_)
            else:
                tl.append(o.param_groups[0]["lr"])
                o.step()
                cos_t.step()
        ours = [schedule_lr("cosine", 0.7, t, T_, W_) for t in range(1, T_ + 1)]
        check(f"cosine vs CosineAnnealingLR T={T_} W={W_}", close(ours, tl, 1e-12), str((ours, tl)))
    p = nn.Parameter(torch.zeros(1))
    o = torch.optim.SGD([p], lr=0.7)
    st = torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.3)
    tl = []
    for _ in range(10):
        tl.append(o.param_groups[0]["lr"])
        o.step()
        st.step()
    check("step vs StepLR", close([schedule_lr("step:3:0.3", 0.7, t, 10) for t in range(1, 11)], tl))
    p = nn.Parameter(torch.zeros(1))
    o = torch.optim.SGD([p], lr=0.7)
    lin = torch.optim.lr_scheduler.LinearLR(o, start_factor=1 / 4, end_factor=1.0, total_iters=3)
    tl = []
    for _ in range(4):
        tl.append(o.param_groups[0]["lr"])
        o.step()
        lin.step()
    check("warmup vs LinearLR", close([schedule_lr("cosine", 0.7, t, 10, 4) for t in range(1, 5)], tl))

    # --- AdamW's default weight decay trap: we pass it explicitly
    cfg = Config(widths=[2, 1], optimizer="adamw", lr=0.1, weight_decay=0.0)
    opt = make_optimizer([nn.Parameter(torch.zeros(1))], cfg)
    check("adamw weight_decay explicit", opt.param_groups[0]["weight_decay"] == 0.0)

    # --- no controls: equals a plain torch loop; every act x loss x optimizer
    #     equals the numpy implementation of the header formulas
    widths = {"mse": [5, 7, 4, 3], "bce": [5, 7, 4, 3], "softmax_ce": [5, 7, 4, 4]}
    lrs = {"sgd": 0.2, "momentum": 0.1, "nesterov": 0.1, "adam": 0.02, "adamw": 0.02}
    idx = 0
    for act in ACTIVATIONS:
        for loss in LOSSES:
            for o in OPTIMIZERS:
                idx += 1
                wd = 0.05 if idx % 2 else 0.0
                cfg = Config(widths=widths[loss], activation=act, loss=loss, optimizer=o,
                             lr=lrs[o], weight_decay=wd, momentum=0.8, beta1=0.85,
                             beta2=0.99, eps=1e-7)
                X, y, init = _tiny_problem(loss, cfg.widths, idx)
                res = train(cfg, X, y, init, 5)
                npw, npl, npn = _np_train(cfg, X, y, init, 5)
                e = max_rel_err(res.weights, npw)
                el = max(abs(a - b) / abs(b) for a, b in zip(res.losses, npl))
                en = max(abs(a - b) / abs(b) for a, b in zip(res.grad_norms, npn))
                moved = max_rel_err(init, res.weights)
                check(f"numpy {act}/{loss}/{o} wd={wd}", e < 1e-10 and el < 1e-10 and en < 1e-10
                      and moved > 1e-2, f"w {e:.2e} loss {el:.2e} norm {en:.2e} moved {moved:.2e}")
                if act in ("relu", "gelu") or loss == "bce":
                    plain = _plain_torch_loop(cfg, X, y, init, 5)
                    e2 = max_rel_err(res.weights, plain)
                    check(f"plain loop {act}/{loss}/{o}", e2 == 0.0, f"{e2:.2e}")

    # --- every control, alone and together, and the schedules, vs numpy
    base = dict(widths=[5, 7, 4, 3], activation="tanh", loss="mse", optimizer="momentum",
                lr=0.1, momentum=0.9)
    X, y, init = _tiny_problem("mse", base["widths"], 99)
    r0 = train(Config(**base), X, y, init, 6, keep_first_grads=True)
    n0 = r0.grad_norms[0]
    gabs = np.concatenate([np.abs(g).ravel() for g in r0.first_grads])
    controls = {
        "agc": 0.01, "clip_layer_norm": 0.3 * n0, "clip_norm": 0.3 * n0, "autoclip": 10.0,
        "clip_value": float(np.percentile(gabs, 70)), "weight_clip": 0.5, "max_norm": 0.9,
    }
    for name, val in controls.items():
        cfg = Config(**base, **{name: val})
        res = train(cfg, X, y, init, 6)
        npw, _, _ = _np_train(cfg, X, y, init, 6)
        e = max_rel_err(res.weights, npw)
        d = max_rel_err(res.weights, r0.weights)
        check(f"control {name} vs numpy", e < 1e-10 and d > 1e-3, f"err {e:.2e} effect {d:.2e}")
    for ac in ("autoclip", "clip_norm"):
        allc = {k: v for k, v in controls.items() if k != ("clip_norm" if ac == "autoclip" else "autoclip")}
        for hist in ("current", "raw"):
            cfg = Config(**base, **allc, autoclip_history=hist)
            res = train(cfg, X, y, init, 6)
            npw, _, _ = _np_train(cfg, X, y, init, 6)
            e = max_rel_err(res.weights, npw)
            check(f"all controls ({ac}, history {hist}) vs numpy", e < 1e-10, f"err {e:.2e}")
    for sched, W_ in (("cosine", 2), ("step:2:0.5", 0)):
        cfg = Config(**dict(base, optimizer="adam", lr=0.05), lr_schedule=sched, warmup_steps=W_)
        res = train(cfg, X, y, init, 6)
        npw, _, _ = _np_train(cfg, X, y, init, 6)
        check(f"schedule {sched} vs numpy", max_rel_err(res.weights, npw) < 1e-10)

    # --- the per-stage record (used to choose thresholds that bite)
    cfg = Config(**base, agc=0.01, clip_layer_norm=0.3 * n0)
    r = train(cfg, X, y, init, 2, keep_first_grads=True)
    g = [T(x.copy()) for x in r.first_grads]
    ps = [T(x.astype(np.float64)) for pair in init for x in pair]
    check("stage raw", all(np.array_equal(a, b) for a, b in zip(r.first_grads_at["agc"], r.first_grads)))
    agc_(ps, g, 0.01)
    check("stage after agc", all(close(a, b) for a, b in zip(r.first_grads_at["clip_layer_norm"], g)))
    clip_layer_norm_(g, 0.3 * n0)
    check("stage after clip_layer_norm", all(close(a, b) for a, b in zip(r.first_grads_at["clip_norm"], g))
          and close(r.norms_at["clip_norm"][0], global_norm(g)) and len(r.norms_at["clip_norm"]) == 2)
    r32 = train(Config(**base), X, y, init, 6, dtype=torch.float32)
    e32 = max_rel_err(r32.weights, r0.weights)
    check("float32 run close to float64", 1e-9 < e32 < 1e-5, f"{e32:.2e}")

    # --- clip_norm and autoclip together are refused
    try:
        train(Config(**base, clip_norm=1.0, autoclip=50.0), X, y, init, 1)
        check("clip_norm+autoclip refused", False)
    except ValueError:
        check("clip_norm+autoclip refused", True)

    # --- 1-D float targets are (N, 1)
    X1, y1, init1 = _tiny_problem("bce", [4, 5, 1], 7)
    ra = train(Config(widths=[4, 5, 1], loss="bce", optimizer="sgd", lr=0.5), X1, y1.reshape(-1), init1, 3)
    rb = train(Config(widths=[4, 5, 1], loss="bce", optimizer="sgd", lr=0.5), X1, y1, init1, 3)
    check("1-D targets", max_rel_err(ra.weights, rb.weights) == 0.0)

    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--selftest", action="store_true", help="check the reference itself")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every self-check")
    args = ap.parse_args(argv)
    if args.selftest:
        return selftest(args.verbose)
    ap.print_help()
    return 64


if __name__ == "__main__":
    sys.exit(main())
