#!/usr/bin/env bash
# The Fashion-MNIST demo: 784-256-256-10 relu MLP, Adam 1e-3, batch 128,
# 10 epochs, data-parallel over all cores with mpirun (or srun); then the
# test-set accuracy of the final checkpoint, a picture of the gradient
# statistics (RUN/stats.png, gg-plot) and their diagnosis (gg-inspect
# diagnose).
#
# Runs as a plain script or as a Slurm batch job:
#   jobs/fashion_mnist.sh                       # all cores of this machine
#   sbatch --ntasks=2 jobs/fashion_mnist.sh     # the allocation's tasks
# Environment: GG_BUILD (binaries, default build/ next to this folder),
# GG_DATA (imported HDF5 files, default data/), GG_RUN (run folder,
# default runs/fashion-mnist), GG_NP (ranks), GG_EPOCHS (default 10),
# GG_RESUME (default auto: continue from the run folder's newest checkpoint;
# none starts over), GG_LAUNCH (mpirun, the default, or srun: ranks started
# by Slurm itself through its PMIx plugin, inside an allocation),
# FASHION_MNIST (IDX files, default Debian's dataset-fashion-mnist).
# Preemption: Slurm sends USR1 60 s before the time limit; the ranks finish
# the step, checkpoint and exit 75, and the job requeues itself to resume.
#SBATCH --job-name=gg-fashion-mnist
#SBATCH --time=00:30:00
#SBATCH --output=%x-%j.out
# a requeued job writes to the same output file: append, or the restart
# truncates it and the log of the interrupted run is lost
#SBATCH --open-mode=append
#SBATCH --signal=B:USR1@60
#SBATCH --requeue
set -euo pipefail

here="${SLURM_SUBMIT_DIR:-$(cd "$(dirname "$0")/.." && pwd)}"
build="${GG_BUILD:-$here/build}"
data="${GG_DATA:-$here/data}"
run="${GG_RUN:-$here/runs/fashion-mnist}"
src="${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}"
np="${GG_NP:-${SLURM_NTASKS:-$(nproc)}}"
epochs="${GG_EPOCHS:-10}"
resume="${GG_RESUME:-auto}"
launch="${GG_LAUNCH:-mpirun}"
case "$launch" in
  mpirun) launcher=(mpirun -n "$np") one=(mpirun -n 1) ;;
  srun)
    [ -n "${SLURM_JOB_ID:-}" ] || { echo "fashion_mnist.sh: GG_LAUNCH=srun needs a Slurm allocation (sbatch/salloc)" >&2; exit 64; }
    launcher=(srun --mpi=pmix -n "$np") one=(srun --mpi=pmix -n 1) ;;
  *) echo "fashion_mnist.sh: GG_LAUNCH=$launch: expected mpirun or srun" >&2; exit 64 ;;
esac

for b in gradguard gg-data; do
  [ -x "$build/$b" ] || { echo "fashion_mnist.sh: $build/$b not built (cmake -S . -B build && cmake --build build)" >&2; exit 66; }
done
if [ "$(id -u)" -eq 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi

mkdir -p "$data"
if [ ! -s "$data/fashion-train.h5" ]; then
  "$build/gg-data" import-idx --images "$src/train-images-idx3-ubyte.gz" \
    --labels "$src/train-labels-idx1-ubyte.gz" -o "$data/fashion-train.h5"
fi
if [ ! -s "$data/fashion-test.h5" ]; then
  "$build/gg-data" import-idx --images "$src/t10k-images-idx3-ubyte.gz" \
    --labels "$src/t10k-labels-idx1-ubyte.gz" -o "$data/fashion-test.h5"
fi

# The trainer runs in the background so that Slurm's USR1 (time limit
# near) can be forwarded to mpirun or srun, which pass it on to the ranks:
# they finish the current step, checkpoint and exit cleanly.
"${launcher[@]}" "$build/gradguard" train \
  --data "$data/fashion-train.h5" --val-data "$data/fashion-test.h5" \
  --layers 784,256,256,10 --activation relu --loss softmax_ce \
  --optimizer adam --lr 1e-3 --batch 128 --epochs "$epochs" --seed 0 \
  --run-dir "$run" --resume "$resume" &
pid=$!
trap 'kill -USR1 $pid 2>/dev/null || true' USR1 TERM
set +e
wait $pid; rc=$?
# a trapped signal interrupts `wait`: wait again for the real exit code
while [ $rc -gt 128 ] && kill -0 $pid 2>/dev/null; do wait $pid; rc=$?; done
set -e
if [ $rc -eq 75 ] && [ -n "${SLURM_JOB_ID:-}" ]; then
  echo "fashion_mnist.sh: stopped with a checkpoint; requeueing job $SLURM_JOB_ID to resume"
  scontrol requeue "$SLURM_JOB_ID"
  exit 0
fi
[ $rc -eq 0 ] || exit $rc

last=$(ls "$run"/checkpoints/step-*.h5 | sort | tail -n 1)
"${one[@]}" "$build/gradguard" eval --ckpt "$last" --data "$data/fashion-test.h5"

# What the gradients did: a picture of the statistics and a diagnosis
# (diagnose exits 1 when it has findings: information, not a job failure).
if [ -x "$build/gg-plot" ]; then
  "$build/gg-plot" "$run" -o "$run/stats.png" -q && echo "gradient statistics: $run/stats.png" ||
    echo "fashion_mnist.sh: warning: gg-plot could not draw $run/stats.png" >&2
fi
if [ -x "$build/gg-inspect" ]; then "$build/gg-inspect" diagnose "$run" || true; fi
