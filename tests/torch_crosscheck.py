#!/usr/bin/python3
"""torch_crosscheck.py — whole training steps of `gradguard train` against
the float64 PyTorch reference (tests/torch_ref.py).

For every case: a small dataset (numpy, fixed seeds) and random float32
initial weights are written in the contract's HDF5 layouts (dataset file,
init checkpoint); `gradguard train ... --batch N --steps S --init-from INIT`
runs full-batch steps (N = all samples, so the sample order does not matter);
the final checkpoint RUN/checkpoints/step-%08d.h5 is compared, tensor by
tensor, with torch_ref started from the same float32 weights cast to float64:

    err = max over tensors of  max|ours - ref| / max|ref|    PASS if err <= 1e-4

If RUN/stats.h5 exists, its per-step /loss, /lr, /grad_norm,
/grad_norm_clipped, /clip_coef (same relative criterion over the series) and
/clipped_fraction (within 1.5 values) are compared as well.

Each case must also exercise what it tests, judged on the reference alone:
the weights must move (> 100x the tolerance from the start), and a clip or
schedule case must end more than 100x the tolerance away from the same run
without its control (the all-controls cases: without each one of them in
turn). A case that does not is reported as a FAIL (a defect of the case).

    /usr/bin/python3 tests/torch_crosscheck.py --gradguard build/gradguard
        [--np 2 --mpiexec mpiexec] [--set core|clip|all] [-k SUBSTR] [--keep]
    /usr/bin/python3 tests/torch_crosscheck.py --ref-only   # the cases' own checks

Prints one line per case and, last, exactly `N passed, N failed`; exits 1 on
any failure, 2 on bad usage.
"""

import argparse
import dataclasses
import math
import os
import shutil
import subprocess
import sys
import tempfile
import zlib
from typing import Dict, List, Tuple

import h5py
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_ref  # noqa: E402
from torch_ref import ACTIVATIONS, LOSSES, OPTIMIZERS, Config  # noqa: E402

TOL = 1e-4            # per-tensor max abs diff / max abs ref
EXERCISE = 100 * TOL  # a control / schedule must change the result by more
N_SAMPLES = 64        # global batch = whole dataset; divisible by 1, 2, 4, 8, 16
HIDDEN = (8, 5)
D_IN = 6
TIMEOUT = 60

# Contract defaults of the optimizer flags (INTERFACE.md).
DEFAULTS = dict(momentum=0.9, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0)
# Non-default values passed explicitly in some cases, so the flags are used.
EXPLICIT = dict(momentum=0.8, beta1=0.85, beta2=0.99, eps=1e-7)
BASE_LR = {"sgd": 0.2, "momentum": 0.05, "nesterov": 0.05, "adam": 1e-2, "adamw": 1e-2}
WEIGHT_DECAY = {"sgd": 0.05, "momentum": 0.05, "nesterov": 0.05, "adam": 0.05, "adamw": 0.1}
CLIP_FLAGS = {"clip_norm": "--clip-norm", "clip_value": "--clip-value",
              "clip_layer_norm": "--clip-layer-norm", "agc": "--agc",
              "autoclip": "--autoclip", "weight_clip": "--weight-clip",
              "max_norm": "--max-norm"}


@dataclasses.dataclass
class Case:
    name: str
    cfg: Config
    steps: int = 6
    explicit: bool = False       # pass non-default optimizer flags explicitly
    y_1d: bool = False           # store float /y as (N) (needs K == 1)
    # Thresholds of the controls, computed from a reference run without them
    # (so every control bites): control -> function(Probe) -> value.
    thresholds: Dict[str, object] = dataclasses.field(default_factory=dict)
    exercise: List[Tuple[str, Config]] = dataclasses.field(default_factory=list)
    # Other readings of the contract, reported (err against them) on failure.
    alternatives: List[Tuple[str, Config]] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Probe:
    """What the threshold of control `at` is chosen from: the reference run
    with the controls that come before it in the step's order (and are
    already resolved), seen at its place in the order."""
    res: torch_ref.Result        # with keep_first_grads
    init: list                   # [(W, b)] float32
    at: str                      # the control being resolved

    def grads(self):             # step-1 gradients arriving at the control
        return self.res.first_grads_at[self.at]

    def norms(self):             # per-step global norms arriving at it
        return self.res.norms_at[self.at]


def sig3(x: float) -> float:
    return float(f"{x:.3g}")


# ------------------------------------------------------------------ data

def case_seed(name: str) -> int:
    return zlib.crc32(name.encode())


def make_data(cfg: Config, seed: int, y_1d: bool):
    rng = np.random.default_rng(seed)
    D, K = cfg.widths[0], cfg.widths[-1]
    X = rng.standard_normal((N_SAMPLES, D)).astype(np.float32)
    teacher = rng.standard_normal((D, K))
    if cfg.loss == "softmax_ce":
        y = np.argmax(X @ teacher + 0.5 * rng.standard_normal((N_SAMPLES, K)), axis=1)
        y = y.astype(np.int32)
    else:
        # targets in [0, 1] that depend on X, a few of them exactly 0 or 1
        y = 1 / (1 + np.exp(-(X @ teacher)))
        y = np.where(rng.uniform(size=y.shape) < 0.2, np.round(y), y).astype(np.float32)
        if y_1d:
            y = y.reshape(-1)
    return X, y


def make_init(widths, seed: int):
    rng = np.random.default_rng(seed ^ 0x5EED)
    init = []
    for i in range(len(widths) - 1):
        fan_in = widths[i]
        W = rng.standard_normal((widths[i + 1], fan_in)) * math.sqrt(2.0 / fan_in)
        b = rng.uniform(-0.1, 0.1, size=widths[i + 1])
        init.append((W.astype(np.float32), b.astype(np.float32)))
    return init


def write_data(path, X, y):
    with h5py.File(path, "w") as f:
        f.create_dataset("X", data=X, dtype=np.float32)
        f.create_dataset("y", data=y, dtype=y.dtype)


def _str_attr(f, key, value, fixed):
    if fixed:
        f.attrs[key] = np.bytes_(value.encode("ascii")) if value else np.bytes_(b"\0")[:0]
    else:
        f.attrs[key] = value  # h5py default: variable-length UTF-8


def write_init_ckpt(path, cfg: Config, init, fixed_strings=False):
    """The contract's checkpoint layout, step 0, weights only (fresh optimizer)."""
    with h5py.File(path, "w") as f:
        _str_attr(f, "format", "gradguard.checkpoint", fixed_strings)
        f.attrs["format_version"] = np.int32(1)
        f.attrs["step"] = np.int64(0)
        f.attrs["epoch"] = np.int64(0)
        f.attrs["samples_seen"] = np.int64(0)
        f.attrs["world_size"] = np.int32(1)
        f.attrs["seed"] = np.int64(0)
        f.attrs["layers"] = np.asarray(cfg.widths, dtype=np.int32)
        _str_attr(f, "activation", cfg.activation, fixed_strings)
        _str_attr(f, "loss", cfg.loss, fixed_strings)
        _str_attr(f, "config", "", fixed_strings)
        for l, (W, b) in enumerate(init):
            g = f.create_group(f"model/layer_{l:02d}")
            g.create_dataset("weight", data=W.astype(np.float32), fletcher32=True)
            g.create_dataset("bias", data=b.astype(np.float32), fletcher32=True)


def read_ckpt(path, n_layers):
    with h5py.File(path, "r") as f:
        ws = [(f[f"model/layer_{l:02d}/weight"][()], f[f"model/layer_{l:02d}/bias"][()])
              for l in range(n_layers)]
        step = int(f.attrs["step"]) if "step" in f.attrs else None
    return ws, step


# ------------------------------------------------------------------ cases

def core_cases() -> List[Case]:
    cases = []
    for ia, act in enumerate(ACTIVATIONS):
        for il, loss in enumerate(LOSSES):
            K = 4 if loss != "mse" else 3
            if loss == "softmax_ce" and ia % 2:
                K = 3
            for io, opt in enumerate(OPTIMIZERS):
                wd = WEIGHT_DECAY[opt] if (ia + il + io) % 2 == 0 else 0.0
                explicit = (ia + io) % 3 == 0
                hp = EXPLICIT if explicit else {}
                cfg = Config(widths=[D_IN, *HIDDEN, K], activation=act, loss=loss,
                             optimizer=opt, lr=BASE_LR[opt],
                             **{**DEFAULTS, **hp, "weight_decay": wd})
                name = f"core/{act}-{loss}-{opt}" + ("-wd" if wd else "") + \
                    ("-hp" if explicit else "")
                cases.append(Case(name, cfg, explicit=explicit))
    # 1-D float targets (/y of shape (N)) with K = 1
    for loss, opt in (("bce", "adam"), ("mse", "nesterov")):
        cfg = Config(widths=[D_IN, *HIDDEN, 1], activation="tanh", loss=loss, optimizer=opt,
                     lr=BASE_LR[opt])
        cases.append(Case(f"core/y1d-tanh-{loss}-{opt}", cfg, y_1d=True))
    # learning-rate schedules; each must differ from the constant-lr run
    sched = [
        ("cosine-warmup3", "cosine", 3, "gelu", "softmax_ce", "adam", 0.03, 8),
        ("cosine-warmup0", "cosine", 0, "relu", "mse", "momentum", 0.05, 8),
        ("step-3-0.5", "step:3:0.5", 0, "tanh", "bce", "sgd", 0.5, 8),
        ("step-2-0.3", "step:2:0.3", 0, "leaky_relu", "softmax_ce", "adamw", 0.03, 7),
    ]
    for tag, spec, W, act, loss, opt, lr, steps in sched:
        K = 4 if loss != "mse" else 3
        cfg = Config(widths=[D_IN, *HIDDEN, K], activation=act, loss=loss, optimizer=opt,
                     lr=lr, lr_schedule=spec, warmup_steps=W,
                     weight_decay=0.05 if opt == "adamw" else 0.0)
        const = dataclasses.replace(cfg, lr_schedule="constant", warmup_steps=0)
        cases.append(Case(f"sched/{tag}-{act}-{loss}-{opt}", cfg, steps=steps,
                          exercise=[("constant lr", const)]))
    return cases


# Threshold rules, from the uncontrolled run (see Probe).
def _clip_norm(p: Probe):
    return sig3(0.5 * min(p.norms()))


def _clip_value(p: Probe):
    return sig3(float(np.percentile(np.concatenate([np.abs(g).ravel()
                                                    for g in p.grads()]), 70)))


def _clip_layer_norm(p: Probe):
    return sig3(float(np.median([np.linalg.norm(g) for g in p.grads()])))


def _agc(p: Probe):
    ratios = []
    params = [x for pair in p.init for x in pair]
    for w, g in zip(params, p.grads()):
        w = w.astype(np.float64)
        if w.ndim == 1:
            ratios.append(np.linalg.norm(g) / max(np.linalg.norm(w), 1e-3))
        else:
            ratios += list(np.linalg.norm(g, axis=1) / np.maximum(np.linalg.norm(w, axis=1), 1e-3))
    return sig3(float(np.median(ratios)))


def _autoclip(p: Probe):
    return 10.0


def _weight_clip(p: Probe):
    return sig3(0.6 * max(float(np.abs(x).max()) for pair in p.init for x in pair))


def _max_norm(p: Probe):
    return sig3(float(np.median(np.concatenate([np.linalg.norm(W.astype(np.float64), axis=1)
                                                for W, _ in p.init]))))


RULES = {"clip_norm": _clip_norm, "clip_value": _clip_value,
         "clip_layer_norm": _clip_layer_norm, "agc": _agc, "autoclip": _autoclip,
         "weight_clip": _weight_clip, "max_norm": _max_norm}


def clip_cases() -> List[Case]:
    spec = [  # control(s), activation, loss, optimizer, lr
        (("clip_norm",), "gelu", "softmax_ce", "momentum", 0.1),
        (("clip_norm",), "sigmoid", "mse", "sgd", 0.5),
        (("clip_value",), "leaky_relu", "mse", "sgd", 0.2),
        (("clip_value",), "tanh", "softmax_ce", "nesterov", 0.1),
        (("clip_layer_norm",), "tanh", "bce", "nesterov", 0.2),
        (("clip_layer_norm",), "relu", "softmax_ce", "sgd", 0.3),
        (("agc",), "relu", "softmax_ce", "momentum", 0.1),
        (("agc",), "identity", "mse", "adam", 0.02),
        (("autoclip",), "gelu", "mse", "momentum", 0.2),
        (("autoclip",), "leaky_relu", "softmax_ce", "nesterov", 0.3),
        (("weight_clip",), "sigmoid", "softmax_ce", "adamw", 0.01),
        (("weight_clip",), "relu", "bce", "momentum", 0.1),
        (("max_norm",), "identity", "bce", "adam", 0.02),
        (("max_norm",), "gelu", "mse", "sgd", 0.2),
        (("agc", "clip_layer_norm", "clip_norm", "clip_value", "weight_clip", "max_norm"),
         "tanh", "softmax_ce", "momentum", 0.1),
        # autoclip bites only where the norms arriving at it grow again, and
        # after agc + clip-layer-norm they hardly do: more steps, high lr.
        (("agc", "clip_layer_norm", "autoclip", "clip_value", "weight_clip", "max_norm"),
         "leaky_relu", "mse", "momentum", 0.3, 10),
    ]
    cases = []
    for controls, act, loss, opt, lr, *steps in spec:
        K = 4 if loss != "mse" else 3
        cfg = Config(widths=[D_IN, *HIDDEN, K], activation=act, loss=loss, optimizer=opt,
                     lr=lr, weight_decay=0.05 if opt == "adamw" else 0.0)
        tag = "all-" + ("autoclip" if "autoclip" in controls else "clipnorm") \
            if len(controls) > 1 else controls[0]
        cases.append(Case(f"clip/{tag}-{act}-{loss}-{opt}", cfg, steps=steps[0] if steps else 6,
                          thresholds={c: RULES[c] for c in controls}))
    return cases


def resolve(case: Case, X, y, init) -> None:
    """Fill the control thresholds (in the step's order, each from a run
    with the earlier ones on) and the exercise alternatives."""
    if not case.thresholds:
        return
    controls = [c for c in torch_ref.CONTROLS if c in case.thresholds]
    for c in controls:
        res = torch_ref.train(case.cfg, X, y, init, case.steps, keep_first_grads=True)
        val = case.thresholds[c](Probe(res, init, c))
        case.cfg = dataclasses.replace(case.cfg, **{c: val})
    if case.cfg.autoclip is not None and (case.cfg.agc is not None
                                          or case.cfg.clip_layer_norm is not None):
        case.alternatives.append(("autoclip history of raw norms",
                                  dataclasses.replace(case.cfg, autoclip_history="raw")))
    case.exercise.append(("no controls" if len(controls) > 1 else f"no {controls[0]}",
                          case.cfg.without(*controls)))
    if len(controls) > 1:
        for c in controls:
            case.exercise.append((f"without {c}", case.cfg.without(c)))


# ------------------------------------------------------------------ running

def fmt(x: float) -> str:
    return repr(float(x))


def command(case: Case, data, init_path, run_dir, args) -> List[str]:
    c = case.cfg
    cmd = [args.gradguard, "train", "--data", data,
           "--layers", ",".join(str(w) for w in c.widths),
           "--activation", c.activation, "--loss", c.loss, "--optimizer", c.optimizer,
           "--lr", fmt(c.lr)]
    if case.explicit:
        if c.optimizer in ("momentum", "nesterov"):
            cmd += ["--momentum", fmt(c.momentum)]
        if c.optimizer in ("adam", "adamw"):
            cmd += ["--beta1", fmt(c.beta1), "--beta2", fmt(c.beta2), "--eps", fmt(c.eps)]
    if c.weight_decay:
        cmd += ["--weight-decay", fmt(c.weight_decay)]
    if c.lr_schedule != "constant":
        cmd += ["--lr-schedule", c.lr_schedule]
        if c.lr_schedule == "cosine":
            cmd += ["--warmup-steps", str(c.warmup_steps)]
    for ctl in c.active_controls():
        cmd += [CLIP_FLAGS[ctl], fmt(getattr(c, ctl))]
    cmd += ["--batch", str(N_SAMPLES), "--steps", str(case.steps), "--seed", "0",
            "--init-from", init_path, "--run-dir", run_dir]
    cmd += args.gg_arg
    if args.np > 1:
        cmd = [args.mpiexec, "-n", str(args.np), "--oversubscribe"] + cmd
    return cmd


def series_err(ours, ref) -> float:
    ours = np.asarray(ours, np.float64)
    ref = np.asarray(ref, np.float64)
    if ours.shape != ref.shape:
        return math.inf
    return float(np.abs(ours - ref).max()) / max(float(np.abs(ref).max()), 1e-12)


def compare_stats(path, ref: torch_ref.Result, steps, n_params) -> Tuple[float, List[str]]:
    """Worst relative error over the compared series, and problems found."""
    problems, worst = [], 0.0
    with h5py.File(path, "r") as f:
        if "step" not in f:
            return 0.0, ["stats.h5 has no /step"]
        st = f["step"][()].astype(np.int64)
        rows = [int(np.nonzero(st == t)[0][-1]) if np.any(st == t) else -1
                for t in range(1, steps + 1)]
        if any(r < 0 for r in rows):
            return 0.0, [f"stats.h5 /step {st.tolist()} lacks some of 1..{steps}"]
        for key, series in (("loss", ref.losses), ("lr", ref.lrs),
                            ("grad_norm", ref.grad_norms),
                            ("grad_norm_clipped", ref.grad_norms_clipped),
                            ("clip_coef", ref.clip_coefs),
                            ("clipped_fraction", ref.clipped_fractions)):
            if key not in f:
                continue
            ours = f[key][()].astype(np.float64)[rows]
            ref_s = np.asarray(series, np.float64)
            if key == "clipped_fraction":  # a count: within 1.5 values
                bad = np.abs(ours - ref_s) > 1.5 / n_params
                e = 0.0
            else:
                e = series_err(ours, ref_s)
                bad = np.abs(ours - ref_s) > TOL * max(float(np.abs(ref_s).max()), 1e-12)
                worst = max(worst, e)
            if bad.any():
                t = int(np.argmax(bad))
                problems.append(f"stats /{key} err {e:.2e}, first at step {t + 1}: "
                                f"ours {ours[t]:.7g} ref {ref_s[t]:.7g}")
        # per-layer raw gradient norms (weight and bias together)
        if "layers" in f and "grad_norm" in f["layers"]:
            ours = f["layers"]["grad_norm"][()].astype(np.float64)[rows]
            ref_s = np.asarray(ref.layer_grad_norms, np.float64)
            e = series_err(ours, ref_s)
            worst = max(worst, e)
            if not e <= TOL:
                problems.append(f"stats /layers/grad_norm err {e:.2e}")
        else:
            problems.append("stats.h5 has no /layers/grad_norm")
    return worst, problems


def run_case(case: Case, root, args) -> Tuple[bool, str]:
    d = os.path.join(root, case.name.replace("/", "_"))
    os.makedirs(d, exist_ok=True)
    seed = case_seed(case.name)
    X, y = make_data(case.cfg, seed, case.y_1d)
    init = make_init(case.cfg.widths, seed)
    resolve(case, X, y, init)
    ref = torch_ref.train(case.cfg, X, y, init, case.steps)
    notes = []

    # The case's own checks: the weights move, and its control bites.
    moved = torch_ref.max_rel_err(init, ref.weights)
    if not moved > EXERCISE:
        notes.append(f"DEFECT weights barely move ({moved:.2e})")
    effects = []
    for label, alt in case.exercise:
        eff = torch_ref.max_rel_err(torch_ref.train(alt, X, y, init, case.steps).weights,
                                    ref.weights)
        effects.append(eff)
        if not eff > EXERCISE:
            notes.append(f"DEFECT not exercised: {label} changes only {eff:.2e}")
    ctl = ", ".join(f"{k}={fmt(getattr(case.cfg, k))}" for k in case.cfg.active_controls())
    if args.ref_only:
        # Is the tolerance reachable in single precision? The same steps in
        # torch float32 must stay well inside it.
        f32 = torch_ref.max_rel_err(
            torch_ref.train(case.cfg, X, y, init, case.steps, dtype=torch_ref.torch.float32).weights,
            ref.weights)
        if not f32 <= TOL / 4:
            notes.append(f"DEFECT ill-conditioned: torch float32 is {f32:.2e} off")
        effs = f"f32 {f32:.1e} moved {moved:.2e}" + \
            (f" effect>={min(effects):.2e}" if effects else "")
        return not notes, f"{'-':>10}  {effs} {ctl}" + ("  " + "; ".join(notes) if notes else "")

    data = os.path.join(d, "data.h5")
    init_path = os.path.join(d, "init.h5")
    run_dir = os.path.join(d, "run")
    shutil.rmtree(run_dir, ignore_errors=True)
    write_data(data, X, y)
    write_init_ckpt(init_path, case.cfg, init, args.fixed_strings)
    cmd = command(case, data, init_path, run_dir, args)
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMPI_MCA_rmaps_base_oversubscribe="1", OPENBLAS_NUM_THREADS="1")
    with open(os.path.join(d, "cmd.txt"), "w") as f:
        f.write(" ".join(cmd) + "\n")
    try:
        p = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=TIMEOUT, text=True)
    except subprocess.TimeoutExpired as e:
        err = (e.stderr or b"")
        err = err.decode(errors="replace") if isinstance(err, bytes) else err
        return False, f"{'inf':>10}  timeout after {TIMEOUT}s: {err.strip()[-500:]}"
    except OSError as e:
        return False, f"{'inf':>10}  cannot run {cmd[0]}: {e}"
    if p.returncode != 0:
        lines = [ln for ln in p.stderr.splitlines() if ln.strip()]
        head = " | ".join(lines if len(lines) <= 3 else lines[:2] + ["...", lines[-1]])
        return False, f"{'inf':>10}  exit {p.returncode}: {head}  [{' '.join(cmd)}]"
    ckpt = os.path.join(run_dir, "checkpoints", f"step-{case.steps:08d}.h5")
    if not os.path.exists(ckpt):
        return False, f"{'inf':>10}  no {ckpt}"
    try:
        ours, step = read_ckpt(ckpt, len(case.cfg.widths) - 1)
    except (OSError, KeyError) as e:
        return False, f"{'inf':>10}  cannot read {ckpt}: {e}"
    err = torch_ref.max_rel_err(ours, ref.weights)
    ok = err <= TOL and not notes
    if step is not None and step != case.steps:
        notes.append(f"checkpoint step attribute {step} != {case.steps}")
        ok = False
    if not err <= TOL:
        notes.append("worst " + worst_tensor(ours, ref.weights))
        for label, alt in case.alternatives:
            e = torch_ref.max_rel_err(ours, torch_ref.train(alt, X, y, init, case.steps).weights)
            notes.append(f"vs {label}: {e:.3e}")
    stats = os.path.join(run_dir, "stats.h5")
    if args.no_stats:
        stats_note = ""
    elif os.path.exists(stats):
        n_params = sum(W.size + b.size for W, b in init)
        s_err, problems = compare_stats(stats, ref, case.steps, n_params)
        stats_note = f"stats {s_err:.1e}  "
        if problems:
            ok = False
            notes += problems
    else:
        ok = False
        stats_note = "no stats.h5  "
    return ok, f"{err:10.3e}  {stats_note}{ctl}" + ("  " + "; ".join(notes) if notes else "")


def worst_tensor(ours, ref) -> str:
    best = (-1.0, "")
    for l, ((Wo, bo), (Wr, br)) in enumerate(zip(ours, ref)):
        for nm, a, b in (("weight", Wo, Wr), ("bias", bo, br)):
            if np.shape(a) != np.shape(b):
                return f"layer_{l:02d}/{nm} shape {np.shape(a)} != {np.shape(b)}"
            e = float(np.abs(a - b).max()) / max(float(np.abs(b).max()), 1e-12)
            if e > best[0]:
                best = (e, f"layer_{l:02d}/{nm} {e:.3e} (max|ref| {float(np.abs(b).max()):.3g})")
    return best[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="gradguard train vs PyTorch float64")
    ap.add_argument("--gradguard", help="path of the gradguard executable")
    ap.add_argument("--np", type=int, default=1, help="MPI ranks (default 1: no mpiexec)")
    ap.add_argument("--mpiexec", default="mpiexec")
    ap.add_argument("--set", choices=("core", "clip", "all"), default="all")
    ap.add_argument("-k", action="append", default=[], metavar="SUBSTR",
                    help="only cases whose name contains SUBSTR (repeatable: any)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary directory")
    ap.add_argument("--ref-only", action="store_true",
                    help="run only the reference-side checks of the cases")
    ap.add_argument("--no-stats", action="store_true", help="do not compare stats.h5")
    ap.add_argument("--fixed-strings", action="store_true",
                    help="write string attributes as fixed-length ASCII")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    ap.add_argument("--gg-arg", action="append", default=[], metavar="ARG",
                    help="one more argument for gradguard train, e.g. --gg-arg=--shard-update=on")
    args = ap.parse_args(argv)
    if not args.ref_only and not args.list and not args.gradguard:
        ap.error("--gradguard PATH is required (or --ref-only)")
    if args.np < 1 or N_SAMPLES % args.np:
        ap.error(f"--np must divide the global batch {N_SAMPLES}")
    if args.gradguard:
        args.gradguard = os.path.abspath(args.gradguard)

    cases = []
    if args.set in ("core", "all"):
        cases += core_cases()
    if args.set in ("clip", "all"):
        cases += clip_cases()
    if args.k:
        cases = [c for c in cases if any(s in c.name for s in args.k)]
    if args.list:
        for c in cases:
            print(c.name)
        return 0

    root = tempfile.mkdtemp(prefix="gg-crosscheck-")
    passed = failed = 0
    width = max((len(c.name) for c in cases), default=10)
    try:
        for case in cases:
            try:
                ok, msg = run_case(case, root, args)
            except Exception as e:  # a harness error is a failure of this case
                ok, msg = False, f"{'inf':>10}  harness error: {type(e).__name__}: {e}"
            print(f"{case.name:<{width}}  {'PASS' if ok else 'FAIL'}  {msg}", flush=True)
            passed += ok
            failed += not ok
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
