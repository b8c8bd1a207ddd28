#!/usr/bin/python3
"""ddp_bench.py — the PyTorch DistributedDataParallel side of bench/run_bench.sh.

Trains the same MLP as `gradguard train` (same widths, activation, loss, Adam,
global batch, global-norm clipping, initialization) on the same HDF5 file, held
in memory as tensors, with DDP over the gloo backend on CPU, one process per
rank, launched with torch.multiprocessing.spawn (MASTER_ADDR=127.0.0.1), one
thread per rank (torch.set_num_threads(1), OMP_NUM_THREADS=1 and OpenBLAS's own
thread count set to 1). One step, as gradguard's:

    gather this rank's slice of the global batch (a shuffled index per epoch)
    zero_grad -> forward -> loss -> backward (DDP averages the gradients)
    -> clip_grad_norm_(params, C) -> Adam step (--foreach 1: torch's multi-tensor
       Adam; torch 1.13's CPU default is the per-tensor loop, --foreach 0)

After --warmup steps all ranks meet at a barrier; the next --steps steps are
timed on rank 0 (barrier before and after), and rank 0 prints one line

    DDP_RESULT ranks=P steps=N seconds=S ms_per_step=T samples_per_s=X steps_per_s=Y

`--info` prints the torch version and the BLAS that torch's process actually
loaded (path, openblas_get_config, openblas_get_corename) and exits.
"""
import argparse
import ctypes
import os
import socket
import sys
import time

# Before torch loads OpenMP and OpenBLAS: one thread each, in this process and
# in the spawned ranks (they inherit the environment).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
import torch.nn as nn  # noqa: E402
from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: E402


def loaded_openblas():
    """(path, ctypes handle) of the OpenBLAS/BLAS library mapped into this process."""
    paths = []
    with open("/proc/self/maps") as f:
        for line in f:
            p = line.split()[-1] if len(line.split()) >= 6 else ""
            if ("openblas" in p or "libblas" in p) and p not in paths:
                paths.append(p)
    # libopenblas first: the BLAS/LAPACK shims are the same library under other names.
    paths.sort(key=lambda p: 0 if "libopenblas" in p else 1 if "libblas" in p else 2)
    for p in paths:
        try:
            lib = ctypes.CDLL(p)
            lib.openblas_get_corename.restype = ctypes.c_char_p
            lib.openblas_get_config.restype = ctypes.c_char_p
            return p, lib
        except (OSError, AttributeError):
            continue
    return None, None


def set_blas_threads(n):
    _, lib = loaded_openblas()
    if lib is not None:
        lib.openblas_set_num_threads(n)


def info():
    torch.set_num_threads(1)
    # Make torch touch its BLAS once, so the library is certainly mapped.
    torch.mm(torch.ones(64, 64), torch.ones(64, 64))
    path, lib = loaded_openblas()
    blas = "BLAS_INFO=" + (torch.__config__.show().split("BLAS_INFO=")[1].split(",")[0]
                           if "BLAS_INFO=" in torch.__config__.show() else "?")
    print(f"torch {torch.__version__} ({torch.__file__}), {blas}, "
          f"threads {torch.get_num_threads()}, interop {torch.get_num_interop_threads()}")
    if lib is None:
        print("torch BLAS: no OpenBLAS found in the process maps")
        return
    set_blas_threads(1)
    real = os.path.realpath(path)
    shown = path if real == path else f"{path} -> {real}"
    print(f"torch BLAS: {shown}; config '{lib.openblas_get_config().decode()}', "
          f"core '{lib.openblas_get_corename().decode()}', "
          f"openblas threads {lib.openblas_get_num_threads()}")


def build_model(widths, activation):
    act = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "identity": nn.Identity}[activation]
    gain = nn.init.calculate_gain(activation if activation != "identity" else "linear")
    layers = []
    for i in range(len(widths) - 1):
        lin = nn.Linear(widths[i], widths[i + 1])
        # gradguard's defaults: kaiming_uniform (relu), xavier_uniform (otherwise), zero biases.
        with torch.no_grad():
            if activation == "relu":
                nn.init.kaiming_uniform_(lin.weight, nonlinearity="relu")
            else:
                nn.init.xavier_uniform_(lin.weight, gain=gain)
            lin.bias.zero_()
        layers.append(lin)
        if i < len(widths) - 2:
            layers.append(act())
    return nn.Sequential(*layers)


def worker(rank, a, port, result):
    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    set_blas_threads(1)
    if a.bind == "core":
        os.sched_setaffinity(0, {rank % os.cpu_count()})
    dist.init_process_group("gloo", rank=rank, world_size=a.ranks)
    torch.manual_seed(a.seed)

    widths = [int(w) for w in a.layers.split(",")]
    with h5py.File(a.data, "r") as f:
        X = torch.from_numpy(np.ascontiguousarray(f["X"][...], dtype=np.float32))
        y = f["y"][...]
    if a.loss == "softmax_ce":
        Y = torch.from_numpy(y.astype(np.int64)).reshape(-1)
        crit = nn.CrossEntropyLoss()
    else:
        Y = torch.from_numpy(y.astype(np.float32)).reshape(X.shape[0], -1)
        crit = nn.BCEWithLogitsLoss() if a.loss == "bce" else nn.MSELoss()
    assert X.shape[1] == widths[0], f"{a.data}: {X.shape[1]} columns, --layers starts with {widths[0]}"
    N, B, P = X.shape[0], a.batch, a.ranks
    assert B % P == 0 and B <= N
    m = B // P

    model = DDP(build_model(widths, a.activation))
    opt = torch.optim.Adam(model.parameters(), lr=a.lr, foreach=a.foreach)
    params = list(model.parameters())
    gen = torch.Generator().manual_seed(a.seed)
    steps_per_epoch = N // B
    state = {"perm": None, "b": steps_per_epoch}

    def step():
        if state["b"] == steps_per_epoch:
            state["perm"] = torch.randperm(N, generator=gen)
            state["b"] = 0
        g0 = state["b"] * B + rank * m
        idx = state["perm"][g0:g0 + m]
        state["b"] += 1
        xb, yb = X[idx], Y[idx]
        opt.zero_grad(set_to_none=True)
        loss = crit(model(xb), yb)
        loss.backward()
        if a.clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(params, a.clip_norm)
        opt.step()
        return loss

    for _ in range(a.warmup):
        step()
    dist.barrier()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        loss = step()
    dist.barrier()
    dt = time.perf_counter() - t0
    if rank == 0:
        result.put((dt, float(loss)))
    dist.destroy_process_group()


def make_data(path, n, d, k, seed):
    """Random inputs with random class labels: a softmax_ce problem whose loss
    stays near ln(k) for the few epochs of a benchmark. (Well separated blobs
    reach loss 0 within a few steps; the gradients then underflow to subnormal
    floats, which every x86 GEMM handles 10x+ slower, in both frameworks.)"""
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        f.create_dataset("X", data=rng.standard_normal((n, d), dtype=np.float32))
        f.create_dataset("y", data=rng.integers(0, k, n).astype(np.int32))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--info", action="store_true", help="print torch and BLAS details and exit")
    p.add_argument("--data", help="HDF5 file with /X float32 [N,D] and /y")
    p.add_argument("--layers", help="widths D,H1,...,K")
    p.add_argument("--activation", default="relu")
    p.add_argument("--loss", default="mse", choices=["mse", "bce", "softmax_ce"])
    p.add_argument("--batch", type=int, default=32, help="GLOBAL batch (split over ranks)")
    p.add_argument("--ranks", type=int, default=1)
    p.add_argument("--steps", type=int, default=100, help="timed steps")
    p.add_argument("--warmup", type=int, default=10, help="untimed steps before")
    p.add_argument("--clip-norm", type=float, default=1.0)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bind", choices=["none", "core"], default="none",
                   help="pin rank r to core r (default: let the OS schedule)")
    p.add_argument("--foreach", type=int, choices=[0, 1], default=None,
                   help="Adam's foreach implementation (default: torch's choice)")
    p.add_argument("--make-data", metavar="OUT",
                   help="write OUT.h5: /X float32 N(0,1) [n,d], /y int32 uniform classes [n]; exit")
    p.add_argument("--n", type=int, default=8192, help="--make-data: samples")
    p.add_argument("--d", type=int, default=784, help="--make-data: features")
    p.add_argument("--k", type=int, default=10, help="--make-data: classes")
    a = p.parse_args()
    if a.make_data:
        make_data(a.make_data, a.n, a.d, a.k, a.seed)
        return 0
    if a.foreach is not None:
        a.foreach = bool(a.foreach)
    if a.info:
        info()
        return 0
    if not a.data or not a.layers:
        p.error("--data and --layers are needed")
    ctx = mp.get_context("spawn")
    result = ctx.SimpleQueue()
    mp.spawn(worker, args=(a, free_port(), result), nprocs=a.ranks, join=True)
    dt, loss = result.get()
    print(f"DDP_RESULT ranks={a.ranks} steps={a.steps} seconds={dt:.6f} "
          f"ms_per_step={1e3 * dt / a.steps:.4f} samples_per_s={a.steps * a.batch / dt:.1f} "
          f"steps_per_s={a.steps / dt:.2f} loss={loss:.5f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
