#!/usr/bin/env bash
# run_bench.sh — gradguard vs PyTorch DDP (gloo, CPU), run by hand, not by CI.
#
# One run prints one table per BLAS environment (CORETYPES), whose ratios all
# come from that run: samples/s and
# steps/s of gradguard (mpirun, --threads 1 per rank) and of PyTorch DDP
# (bench/ddp_bench.py, 1 thread per rank) on three networks at 1 and 2 ranks,
# medians of REPEATS interleaved repeats; gradguard's 2-rank speedup; and
# gradguard's GEMM FLOP/s on one rank as a fraction of OpenBLAS's best sgemm
# on the same shapes (bench/gemm_peak). Each figure is shown next to its target.
#
# usage: bench/run_bench.sh [BUILD_DIR]        (default: build/ of this checkout)
#   needs BUILD_DIR/gradguard, BUILD_DIR/gg-data, BUILD_DIR/bench/gemm_peak
#   (cmake -S . -B build && cmake --build build) and /usr/bin/python3 with
#   python3-torch, python3-h5py, python3-numpy (tools/install-deps.sh).
# environment:
#   REPEATS=5          repeats of every configuration (interleaved)
#   QUICK=1            a smoke test: 2 repeats of a few steps (figures meaningless)
#   WORK=DIR           scratch folder (default: a new /tmp/gg-bench.XXXXXX, kept)
#   CORETYPES="as-is"  the BLAS environments, one whole table each: "as-is" runs in
#                      the machine's environment as it is (OPENBLAS_CORETYPE as
#                      the machine sets it, or unset); a kernel name (Haswell,
#                      SkylakeX, ...) sets OPENBLAS_CORETYPE to it for BOTH sides
#                      of that table, e.g. CORETYPES="as-is Haswell SkylakeX"
#   PYTHON=/usr/bin/python3
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
build=$(cd "${1:-$repo/build}" && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
REPEATS=${REPEATS:-5}
QUICK=${QUICK:-0}

for b in gradguard gg-data bench/gemm_peak; do
  if [ ! -x "$build/$b" ]; then
    echo "run_bench: $build/$b is missing; build first: cmake -S . -B build && cmake --build build" >&2
    exit 1
  fi
done
"$PYTHON" -c 'import torch, h5py, numpy' 2>/dev/null ||
  { echo "run_bench: $PYTHON lacks torch/h5py/numpy (tools/install-deps.sh)" >&2; exit 1; }

WORK=${WORK:-$(mktemp -d /tmp/gg-bench.XXXXXX)}
mkdir -p "$WORK/bin" "$WORK/logs"
# Snapshot the binaries: a rebuild during the run must not change what is measured.
cp "$build/gradguard" "$build/gg-data" "$build/bench/gemm_peak" "$WORK/bin/"
GG="$WORK/bin/gradguard"
DDP=("$PYTHON" "$here/ddp_bench.py")
RES="$WORK/results.tsv"
: >"$RES"

if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi

# --- the three networks: name, widths, activation, loss, global batch, steps, data
if [ "$QUICK" = 1 ]; then
  REPEATS=2 S_SEED=200 S_WIDE=4 S_DEEP=4 WARM=2 N_DATA=1024 GEMM_T=0.01
else
  S_SEED=${S_SEED:-5000} S_WIDE=${S_WIDE:-60} S_DEEP=${S_DEEP:-60} WARM=${WARM:-10} N_DATA=${N_DATA:-32768}
  GEMM_T=0.2
fi
NETS=(seed wide deep)
declare -A LAYERS=([seed]=100,10,5,1 [wide]=784,1024,1024,10
  [deep]=256$(printf ',256%.0s' $(seq 32)),10)
declare -A ACT=([seed]=relu [wide]=relu [deep]=tanh)
declare -A LOSS=([seed]=bce [wide]=softmax_ce [deep]=softmax_ce)
declare -A BATCH=([seed]=32 [wide]=256 [deep]=128)
declare -A STEPS=([seed]=$S_SEED [wide]=$S_WIDE [deep]=$S_DEEP)
declare -A DATA=([seed]=$WORK/seed.h5 [wide]=$WORK/r784.h5 [deep]=$WORK/r256.h5)
declare -A LABEL=([seed]="seed 100-10-5-1 relu bce b32"
  [wide]="784-1024-1024-10 relu softmax_ce b256" [deep]="256-32x256-10 tanh softmax_ce b128")

log() { echo "[$(date +%T)] $*" >&2; }

# --- data: the seed net's own kind; random labels for the softmax nets
"$WORK/bin/gg-data" synth --kind seed -o "$WORK/seed.h5" >"$WORK/logs/data.log" 2>&1
"${DDP[@]}" --make-data "$WORK/r784.h5" --n "$N_DATA" --d 784 --k 10
"${DDP[@]}" --make-data "$WORK/r256.h5" --n "$N_DATA" --d 256 --k 10
for f in r784 r256; do "$WORK/bin/gg-data" info "$WORK/$f.h5" >>"$WORK/logs/data.log" 2>&1; done

# --- runners; each appends "net impl ranks bind rep samples_per_s" to $RES
run_gg() { # net ranks bind rep [env...]
  local net=$1 P=$2 bind=$3 rep=$4 out="$WORK/logs/gg-$1-$2-$3-$4.log"
  rm -rf "$WORK/run"
  mpirun -n "$P" --bind-to "$bind" "$GG" train --data "${DATA[$net]}" --layers "${LAYERS[$net]}" \
    --activation "${ACT[$net]}" --loss "${LOSS[$net]}" --optimizer adam --batch "${BATCH[$net]}" \
    --steps "${STEPS[$net]}" --clip-norm 1.0 --threads 1 --seed 0 --ckpt-every 100000000 \
    --progress-every 3600 --run-dir "$WORK/run" >"$out" 2>&1 ||
    { echo "run_bench: gradguard failed, see $out" >&2; tail -5 "$out" >&2; exit 1; }
  # "done after N steps in X s (Y ms/step, Z samples/s)": Z has more digits than Y
  local sps
  sps=$(sed -n 's/^done after .* ms\/step, \([0-9.]*\) samples\/s).*/\1/p' "$out")
  [ -n "$sps" ] || { echo "run_bench: no 'done after' line in $out" >&2; exit 1; }
  echo -e "$net\tgradguard\t$P\t$bind\t$rep\t$sps" >>"$RES"
  rm -rf "$WORK/run"
}
run_pt() { # net ranks rep
  local net=$1 P=$2 rep=$3 out="$WORK/logs/pt-$1-$2-$3.log"
  "${DDP[@]}" --data "${DATA[$net]}" --layers "${LAYERS[$net]}" --activation "${ACT[$net]}" \
    --loss "${LOSS[$net]}" --batch "${BATCH[$net]}" --ranks "$P" --steps "${STEPS[$net]}" \
    --warmup "$WARM" --clip-norm 1.0 --foreach 1 >"$out" 2>&1 ||
    { echo "run_bench: ddp_bench.py failed, see $out" >&2; tail -5 "$out" >&2; exit 1; }
  local sps
  sps=$(sed -n 's/^DDP_RESULT .* samples_per_s=\([0-9.]*\) .*/\1/p' "$out")
  [ -n "$sps" ] || { echo "run_bench: no DDP_RESULT line in $out" >&2; exit 1; }
  echo -e "$net\tpytorch\t$P\tnone\t$rep\t$sps" >>"$RES"
}

# --- one whole table in one BLAS environment: section TAG (as-is | kernel name)
section() {
local tag=$1 how
if [ "$tag" = as-is ]; then
  how="the machine's environment as it is; the benchmark sets no BLAS variable"
else
  export OPENBLAS_CORETYPE=$tag
  how="set by the benchmark for both gradguard and PyTorch"
fi
local TOP=$WORK
WORK=$TOP/$tag
mkdir -p "$WORK/logs"
RES="$WORK/results.tsv"
: >"$RES"
# --- the environment of this table
load0=$(cut -d' ' -f1-3 /proc/loadavg)
PK=("$TOP/bin/gemm_peak" --min-time "$GEMM_T")
"${PK[@]}" --layers 784,1024,1024,10 --batch 256 >"$WORK/logs/gemm-wide-b256.log"
"${PK[@]}" --layers 784,1024,1024,10 --batch 128 >"$WORK/logs/gemm-wide-b128.log"
"${PK[@]}" --layers "${LAYERS[deep]}" --batch 128 --min-time "$(awk "BEGIN{print $GEMM_T/4}")" \
  >"$WORK/logs/gemm-deep-b128.log"
"${DDP[@]}" --info >"$WORK/logs/torch-info.log" 2>&1
gg_blas=$(ldd "$GG" | awk '/libopenblas/ {print $3}')
pk_blas=$(ldd "$TOP/bin/gemm_peak" | awk '/libopenblas/ {print $3}')
{
  echo "date         $(date -u '+%F %T UTC'), host $(hostname), $(nproc) cores: $(lscpu | sed -n 's/^Model name: *//p')"
  echo "gradguard    $(git -C "$repo" describe --always --dirty 2>/dev/null || echo '?') ($build), $(mpirun --version 2>/dev/null | head -1)"
  echo "OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-(unset)}   ($how)"
  echo "gradguard BLAS: $(readlink -f "$gg_blas")  (gemm_peak: $(readlink -f "$pk_blas"))"
  echo "  $(head -1 "$WORK/logs/gemm-wide-b256.log")"
  sed 's/^/  /' "$WORK/logs/torch-info.log"
  echo "load average at start: $load0"
} >"$WORK/env.txt"
cat "$WORK/env.txt" >&2

# --- the measurements, interleaved: every repeat runs every configuration once
for rep in $(seq "$REPEATS"); do
  for net in "${NETS[@]}"; do
    log "repeat $rep/$REPEATS  $net"
    run_gg "$net" 1 core "$rep"
    run_pt "$net" 1 "$rep"
    run_gg "$net" 2 core "$rep"
    run_pt "$net" 2 "$rep"
    run_gg "$net" 2 none "$rep"
  done
done

echo "load average at end:   $(cut -d' ' -f1-3 /proc/loadavg)" >>"$WORK/env.txt"

# --- the table
"$PYTHON" - "$WORK" "$REPEATS" \
  "${LABEL[seed]}|${STEPS[seed]}|${BATCH[seed]}" "${LABEL[wide]}|${STEPS[wide]}|${BATCH[wide]}" \
  "${LABEL[deep]}|${STEPS[deep]}|${BATCH[deep]}" <<'EOF'
import re, statistics, sys
work, repeats = sys.argv[1], int(sys.argv[2])
nets = {}
for key, arg in zip(("seed", "wide", "deep"), sys.argv[3:6]):
    label, steps, batch = arg.split("|")
    nets[key] = (label, int(steps), int(batch))

def load(path):
    d = {}
    for line in open(path):
        net, impl, P, bind, rep, sps = line.split()
        d.setdefault((net, impl, int(P), bind), []).append(float(sps))
    return d

R = load(f"{work}/results.tsv")
med = lambda v: statistics.median(v)
spread = lambda v: 100 * (max(v) - min(v)) / med(v)

def peak(path):
    m = re.search(r"GEMM_PEAK flops=(\S+) seconds=(\S+) gflops=(\S+) core=(\S+)", open(path).read())
    return float(m[1]), float(m[2]), float(m[3]), m[4]

print(open(f"{work}/env.txt").read().rstrip())
print(f"\nmedians of {repeats} interleaved repeats; spread = (max - min) / median; "
      "PyTorch: DDP gloo, timed after a warmup; gradguard: its ms/step line (all steps)")
hdr = (f"{'network':38} {'P':>1} {'gradguard':>29} {'PyTorch DDP':>29}  {'ratio':>6}")
print(hdr)
print(f"{'':38} {'':>1} {'steps/s':>10} {'samples/s':>11} {'spread':>6} "
      f"{'steps/s':>10} {'samples/s':>11} {'spread':>6}  {'gg/pt':>6}")
print("-" * len(hdr.rstrip()) + "-" * 8)
best, binds = {}, {}
for key, (label, steps, batch) in nets.items():
    for P in (1, 2):
        if P == 1:
            g, bind = R[(key, "gradguard", 1, "core")], "core"
        else:
            c, n = R[(key, "gradguard", 2, "core")], R[(key, "gradguard", 2, "none")]
            g, bind = (c, "core") if med(c) >= med(n) else (n, "none")
            binds[key] = (med(c), med(n), bind)
        t = R[(key, "pytorch", P, "none")]
        best[(key, P)] = (med(g), med(t))
        print(f"{label:38} {P:>1} {med(g)/batch:>10.1f} {med(g):>11.0f} {spread(g):>5.0f}% "
              f"{med(t)/batch:>10.1f} {med(t):>11.0f} {spread(t):>5.0f}%  {med(g)/med(t):>5.2f}x")
print("\ngradguard at 2 ranks, --bind-to core vs none (samples/s medians; the table keeps the faster):")
for key, (c, n, bind) in binds.items():
    print(f"  {nets[key][0]:38} core {c:>10.0f}   none {n:>10.0f}   -> {bind}")

# GEMM fraction: the same GEMMs at their best (gemm_peak) over gradguard's step.
gf, gs, gp, core = peak(f"{work}/logs/gemm-wide-b256.log")
wide_b = nets["wide"][2]
step1 = wide_b / best[("wide", 1)][0]               # s/step, 1 rank
frac1 = gs / step1
print(f"\nGEMM FLOP/s, 784-1024-1024-10 b256, 1 rank: {gf/1e9:.4f} GFLOP/step (2*b*in*out forward and dW "
      f"per layer, dX on layers 1..); OpenBLAS best on the same shapes ({core}, 1 thread) "
      f"{gp:.1f} GFLOP/s = {gs*1e3:.1f} ms; gradguard {step1*1e3:.1f} ms/step = {gf/step1/1e9:.1f} GFLOP/s "
      f"= {100*frac1:.1f}% of peak")
hf, hs, hp, _ = peak(f"{work}/logs/gemm-wide-b128.log")
step2 = wide_b / best[("wide", 2)][0]
print(f"  (informational) 2 ranks, b128 per rank: best {hs*1e3:.1f} ms vs {step2*1e3:.1f} ms/step = {100*hs/step2:.1f}%")
df, ds, dp, _ = peak(f"{work}/logs/gemm-deep-b128.log")
step_d = nets["deep"][2] / best[("deep", 1)][0]
print(f"  (informational) 256-32x256-10 b128, 1 rank: {df/1e9:.3f} GFLOP/step, best {ds*1e3:.1f} ms "
      f"({dp:.1f} GFLOP/s) vs {step_d*1e3:.1f} ms/step = {100*ds/step_d:.1f}%")

targets = [
    ("seed net, 2 ranks: gradguard / PyTorch DDP steps/s", best[("seed", 2)][0] / best[("seed", 2)][1], 20, "x"),
    ("784-1024-1024-10 b256, 2 ranks: gradguard / PyTorch samples/s", best[("wide", 2)][0] / best[("wide", 2)][1], 1.6, "x"),
    ("32x256 tanh b128, 2 ranks: gradguard / PyTorch samples/s", best[("deep", 2)][0] / best[("deep", 2)][1], 1.6, "x"),
    ("784-1024-1024-10: gradguard 2 ranks / 1 rank samples/s", best[("wide", 2)][0] / best[("wide", 1)][0], 1.8, "x"),
    ("784-1024-1024-10, 1 rank: GEMM FLOP/s / OpenBLAS peak", 100 * frac1, 85, "%"),
]
print(f"\n{'issue target':66} {'measured':>9} {'target':>8}  status")
for name, v, tgt, u in targets:
    fmt = f"{v:.2f}{u}" if u == "x" else f"{v:.1f}{u}"
    print(f"{name:66} {fmt:>9} {'>= ' + str(tgt) + u:>8}  {'met' if v >= tgt else 'NOT MET'}")

print(f"\nraw results and logs: {work}")
EOF
WORK=$TOP
}

# each table in a subshell (set -e holds in it): its OPENBLAS_CORETYPE stays its own
for ct in ${CORETYPES:-as-is}; do
  log "=== BLAS environment: $ct"
  ( section "$ct" )
  echo
done
