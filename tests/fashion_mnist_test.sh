#!/usr/bin/env bash
# Fashion-MNIST accuracy (Debian's dataset-fashion-mnist): 784-256-256-10,
# relu, Adam 1e-3, batch 128, on NP ranks (default 2), 10 epochs with the
# t10k set as --val-data. Checks the test accuracy after epochs 1, 2 and 10
# against the thresholds given as arguments.
# Usage: fashion_mnist_test.sh BUILD_DIR [NP] [MIN_EPOCH1] [MIN_EPOCH2] [MIN_EPOCH10]
set -uo pipefail
bin="$1"; np="${2:-2}"; min1="${3:-0.85}"; min2="${4:-0.86}"; min10="${5:-0.88}"
mpiexec="${MPIEXEC:-mpiexec}"
src="${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
"$bin/gg-data" import-idx --images "$src/train-images-idx3-ubyte.gz" --labels "$src/train-labels-idx1-ubyte.gz" -o "$tmp/train.h5" >/dev/null || exit 1
"$bin/gg-data" import-idx --images "$src/t10k-images-idx3-ubyte.gz" --labels "$src/t10k-labels-idx1-ubyte.gz" -o "$tmp/test.h5" >/dev/null || exit 1
"$mpiexec" -q --oversubscribe -n "$np" "$bin/gradguard" train --data "$tmp/train.h5" --val-data "$tmp/test.h5" \
  --layers 784,256,256,10 --activation relu --loss softmax_ce --optimizer adam --lr 1e-3 \
  --batch 128 --epochs 10 --seed 0 --run-dir "$tmp/run" --ckpt-every 100000 >"$tmp/out.txt" 2>&1
rc=$?
grep -E '^epoch|^done' "$tmp/out.txt"
[ $rc -eq 0 ] || { echo "training failed (exit $rc)"; tail -5 "$tmp/out.txt"; echo "0 passed, 1 failed"; exit 1; }
pass=0 fail=0
for spec in "1:$min1" "2:$min2" "10:$min10"; do
  e=${spec%%:*} min=${spec#*:}
  acc=$(grep "^epoch $e/" "$tmp/out.txt" | sed 's/.*val acc \([0-9.]*\).*/\1/')
  if [ -n "$acc" ] && awk -v a="$acc" -v m="$min" 'BEGIN{exit !(a >= m)}'; then
    echo "PASS epoch $e: test accuracy $acc >= $min"; pass=$((pass + 1))
  else
    echo "FAIL epoch $e: test accuracy '$acc' < $min"; fail=$((fail + 1))
  fi
done
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]
