#!/usr/bin/env bash
# End-to-end checks of the programs: exit codes of the contract, one-line
# errors, the seed network learning, eval --json. Usage: cli_test.sh BUILD_DIR
set -uo pipefail
bin=$(cd "$1" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$here/tests/testlib.sh"

# expect NAME CODE CMD...: exit code CODE and (for errors) exactly one stderr line
expect() {
  local name="$1" code="$2"; shift 2
  "$@" >out.txt 2>err.txt
  local rc=$?
  local lines; lines=$(grep -c . err.txt)
  if [ "$rc" -ne "$code" ]; then bad "$name: exit $rc, wanted $code ($(head -c 300 err.txt))"; return; fi
  if [ "$code" -ne 0 ] && [ "$lines" -ne 1 ]; then bad "$name: $lines stderr lines, wanted 1: $(cat err.txt)"; return; fi
  ok "$name (exit $rc) $(head -n 1 err.txt)"
}

"$bin/gg-data" synth --kind seed -o seed.h5 >/dev/null || bad "synth seed"
"$bin/gg-data" synth --kind blobs --n 256 --d 8 --k 3 -o blobs.h5 >/dev/null || bad "synth blobs"
T="$bin/gradguard train --data seed.h5 --layers 100,10,5,1 --loss bce --run-dir r"

expect "version" 0 "$bin/gradguard" --version
expect "help" 0 "$bin/gradguard" train --help
expect "unknown flag" 64 $T --no-such-flag
expect "bad value" 64 $T --lr banana
expect "unknown command" 64 "$bin/gradguard" fly
expect "missing data" 66 "$bin/gradguard" train --data nope.h5 --layers 100,1 --run-dir r
echo "not hdf5" > junk.h5
expect "not hdf5" 66 "$bin/gradguard" train --data junk.h5 --layers 100,1 --run-dir r
expect "columns mismatch" 65 "$bin/gradguard" train --data seed.h5 --layers 99,1 --loss bce --run-dir r
grep -q "seed.h5" err.txt && grep -q "100" err.txt && ok "message names file and width" || bad "message: $(cat err.txt)"
expect "labels vs loss" 65 "$bin/gradguard" train --data blobs.h5 --layers 8,3 --loss mse --run-dir r
expect "batch does not divide" 64 "$mpiexec" -q --oversubscribe -n 2 "$bin/gradguard" train --data seed.h5 --layers 100,1 --loss bce --batch 33 --run-dir r
grep -q "33" err.txt && grep -q "2 ranks" err.txt && ok "message names batch and ranks" || bad "message: $(cat err.txt)"
expect "missing ckpt for init-from" 66 $T --init-from nope.h5
mkdir -p ro && touch ro/x && chmod 555 ro
if [ "$(id -u)" -ne 0 ]; then expect "run dir not creatable" 73 $T --steps 1 --run-dir ro/sub; fi

# the seed network learns: mean train loss of epoch 10 below epoch 1's
$T --activation relu --optimizer adam --lr 1e-3 --batch 32 --epochs 10 --seed 0 >train.txt 2>&1 || bad "seed train: $(tail -3 train.txt)"
first=$(grep '^epoch 1/' train.txt | sed 's/.*train loss \([0-9.]*\).*/\1/')
last=$(grep '^epoch 10/' train.txt | sed 's/.*train loss \([0-9.]*\).*/\1/')
if [ -n "$first" ] && [ -n "$last" ] && awk -v a="$first" -v b="$last" 'BEGIN{exit !(b < a)}'; then
  ok "seed network loss goes down: epoch 1 $first -> epoch 10 $last"
else bad "seed network loss: epoch 1 '$first' epoch 10 '$last'"; fi
[ -f r/checkpoints/step-00000310.h5 ] && ok "final checkpoint written" || bad "no final checkpoint: $(ls r/checkpoints)"

# the peak memory line: a model with 4.2 M more parameters holds at least
# weights, gradient, Adam's m and v of them (4 x 16.8 MB) more
peak() { sed -n 's/^peak memory (RSS): \([0-9]*\) MiB.*/\1/p' "$1"; }
small=$(peak train.txt)
$T --steps 2 --layers 100,2048,2048,1 --run-dir rbig >big.txt 2>&1 || bad "big model: $(tail -3 big.txt)"
large=$(peak big.txt)
if [ -n "$small" ] && [ -n "$large" ] && [ $((large - small)) -ge 64 ] && [ $((large - small)) -le 400 ]; then
  ok "peak memory line: $small MiB, with 4.2 M more parameters $large MiB"
else bad "peak memory: '$small' and '$large' MiB"; fi
"$mpiexec" -q --oversubscribe -n 2 $T --steps 2 --run-dir r2p >mp.txt 2>&1
grep -qE '^peak memory \(RSS\): [0-9]+ MiB on the largest rank \(rank [01] of 2\)$' mp.txt &&
  ok "2 ranks: $(grep '^peak memory' mp.txt)" || bad "2 ranks: no peak memory line: $(tail -3 mp.txt)"

# eval --json on the final checkpoint
"$bin/gradguard" eval --ckpt r/checkpoints/step-00000310.h5 --data seed.h5 --json >eval.json 2>err.txt
if python3 -c 'import json,sys; d=json.load(open("eval.json")); assert set(d)>={"loss","accuracy","samples"} and d["samples"]==1000 and 0<d["loss"]<1' 2>/dev/null; then
  ok "eval --json: $(cat eval.json)"; else bad "eval --json: $(cat eval.json) $(cat err.txt)"; fi

# --config file with the command line winning
printf 'layers = 100,10,1\nloss = bce\nlr = 0.5\nsteps = 2\n' > cfg.ini
"$bin/gradguard" train --config cfg.ini --data seed.h5 --lr 0.01 --run-dir r2 >cfg.txt 2>&1
grep -q '^lr = 0.01$' cfg.txt && grep -q '^layers = 100,10,1$' cfg.txt && ok "config file + flag override" || bad "config: $(head -20 cfg.txt)"

finish
