#!/usr/bin/env bash
# Checkpoints and statistics end to end: exact resume (2 ranks; and
# --deterministic from 4 ranks to 2 vs a straight 1-rank run), stats.h5 rows
# exactly once per step after a resume, a rank killed while a checkpoint is
# written, a flipped byte in the weights, SIGTERM to mpirun, architecture
# mismatch, and every file readable by h5dump/h5ls/h5py.
# Usage: ckpt_test.sh BUILD_DIR
set -uo pipefail
bin=$(cd "$1" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$here/tests/testlib.sh"
run() { local np=$1; shift; timeout 120 "$mpiexec" -q --oversubscribe -n "$np" "$bin/gradguard" train "$@"; }
same() { h5diff "$1" "$2" /model /model >/dev/null && h5diff "$1" "$2" /optimizer /optimizer >/dev/null; }
ck() { printf '%s/checkpoints/step-%08d.h5' "$1" "$2"; }
steps_once() { # RUN N: stats.h5 /step is exactly 1..N
  $py -c 'import sys,h5py,numpy as np; s=h5py.File(sys.argv[1]+"/stats.h5","r")["step"][()]; sys.exit(0 if list(s)==list(range(1,int(sys.argv[2])+1)) else 1)' "$1" "$2"
}

"$bin/gg-data" synth --kind blobs --n 1000 --d 24 --k 5 --seed 3 -o blobs.h5 >/dev/null || bad "synth"
args=(--data blobs.h5 --layers 24,48,32,5 --activation tanh --loss softmax_ce --optimizer adam
      --lr 3e-3 --batch 64 --steps 40 --ckpt-every 20 --keep 5 --seed 5 --autoclip 50 --clip-value 0.05
      --hist-every 10 -q)

# 1. 2 ranks: straight 40 steps vs a run that lost everything after step 20
run 2 "${args[@]}" --run-dir a || bad "straight run"
run 2 "${args[@]}" --run-dir b || bad "run b"
rm "$(ck b 40)"                              # as if the job died after its step-20 checkpoint
run 2 "${args[@]}" --run-dir b --resume auto || bad "resume b"
same "$(ck a 40)" "$(ck b 40)" && ok "2 ranks: stopped at 20, resumed to 40 == straight 40 (bitwise)" || bad "resume differs"
steps_once b 40 && ok "stats.h5 holds steps 1..40 exactly once after the resume" || bad "stats.h5 steps after resume"
$py -c 'import sys,h5py; f=h5py.File("b/stats.h5","r"); sys.exit(0 if list(f["hist_step"][()])==[1,10,20,30,40] else 1)' &&
  ok "histogram steps 1,10,20,30,40 once each" || bad "hist_step after resume"

# 1b. the same with the update sharded over the ranks: the checkpoint must
# gather every rank's block of the Adam state
run 2 "${args[@]}" --shard-update on --run-dir sa || bad "sharded straight run"
run 2 "${args[@]}" --shard-update on --run-dir sb || bad "sharded run b"
rm "$(ck sb 40)"
run 2 "${args[@]}" --shard-update on --run-dir sb --resume auto || bad "sharded resume"
same "$(ck sa 40)" "$(ck sb 40)" && ok "--shard-update on: stopped at 20, resumed to 40 == straight 40 (bitwise)" ||
  bad "sharded resume differs"
same "$(ck a 20)" "$(ck sa 20)" && ok "--shard-update on: its step-20 checkpoint is bitwise the unsharded one" ||
  bad "sharded checkpoint differs from the unsharded one"

# 2. --deterministic: 4 ranks to step 20, resumed on 2 == straight 1 rank
run 1 "${args[@]}" --deterministic --run-dir d1 || bad "det 1"
run 4 "${args[@]}" --deterministic --run-dir d4 || bad "det 4"
rm "$(ck d4 40)"
run 2 "${args[@]}" --deterministic --run-dir d4 --resume auto || bad "det resume on 2"
same "$(ck d1 40)" "$(ck d4 40)" && ok "--deterministic: 4 ranks -> resumed on 2 == 1 rank straight (bitwise)" || bad "deterministic resume differs"

# 3. a rank dies by SIGKILL while writing the step-40 checkpoint
GG_INJECT_FAULT=ckpt-kill:40 run 2 "${args[@]}" --run-dir k >/dev/null 2>&1
ls k/checkpoints/*.tmp-* >/dev/null 2>&1 && ok "killed mid-checkpoint: a partial temp file was left" || echo "note: no temp file left"
[ ! -e "$(ck k 40)" ] && ok "no step-40 checkpoint under its final name" || bad "half-written checkpoint visible"
run 2 "${args[@]}" --run-dir k --resume auto -v >k.out 2>&1 || bad "resume after kill: $(tail -2 k.out)"
grep -q "resuming from k/checkpoints/step-00000020.h5" k.out && ok "resumed from the last complete checkpoint (20)" || bad "resume point: $(grep resum k.out)"
same "$(ck a 40)" "$(ck k 40)" && ok "after the kill the run still ends identical to the straight one" || bad "after kill differs"

# 4. a flipped byte in the weights of the newest checkpoint
cp -r a f
$py - "$(ck f 40)" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    off = f["model/layer_01/weight"].id.get_chunk_info(0).byte_offset
with open(sys.argv[1], "r+b") as g:
    g.seek(off + 100); b = g.read(1); g.seek(off + 100); g.write(bytes([b[0] ^ 0x10]))
PY
"$bin/gradguard" eval --ckpt "$(ck f 40)" --data blobs.h5 >/dev/null 2>e.txt
rc=$?
[ $rc -eq 65 ] && grep -q "checksum" e.txt && ok "flipped byte detected on load: exit 65: $(cat e.txt)" || bad "flipped byte: rc=$rc $(cat e.txt)"
run 1 "${args[@]}" --steps 60 --run-dir f --resume auto -v >f.out 2>f.err
grep -q "trying the previous checkpoint" f.err && grep -q "resuming from f/checkpoints/step-00000020.h5" f.out &&
  ok "resume auto falls back past the damaged checkpoint" || bad "fallback: $(cat f.err) $(grep resum f.out)"

# 5. SIGTERM to mpirun mid-run: a checkpoint of the current step within seconds
"$bin/gg-data" synth --kind blobs --n 20000 --d 128 --k 10 -o big.h5 >/dev/null
"$mpiexec" -q --oversubscribe -n 2 "$bin/gradguard" train --data big.h5 --layers 128,256,10 --loss softmax_ce \
  --batch 64 --epochs 100 --ckpt-every 1000000 --run-dir s >s.out 2>s.err &
job=$!
sleep 3
t0=$(date +%s.%N)
kill -TERM $job
wait $job
el=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b - a}')
n=$(ls s/checkpoints/step-*.h5 2>/dev/null | wc -l)
if [ "$n" -eq 1 ] && grep -q "stopped by a signal" s.out && awk -v e="$el" 'BEGIN{exit !(e < 10)}'; then
  ok "SIGTERM: checkpoint $(ls s/checkpoints) written, job ended after ${el}s"
else bad "SIGTERM: $n checkpoints, ${el}s, $(tail -2 s.out) $(cat s.err)"; fi
step=$(ls s/checkpoints | sed 's/step-0*\([0-9]*\).h5/\1/')
steps_once s "$step" && ok "stats.h5 rows 1..$step match the checkpoint" || bad "stats rows after SIGTERM"

# 6. another architecture is refused, naming both shapes
run 1 "${args[@]}" --layers 24,40,32,5 --steps 60 --run-dir a --resume auto >/dev/null 2>m.err
rc=$?
[ $rc -eq 65 ] && grep -q "24,48,32,5" m.err && grep -q "24,40,32,5" m.err && ok "architecture mismatch: exit 65: $(cat m.err)" || bad "mismatch rc=$rc $(cat m.err)"

# 7. the tools read every file
for f in "$(ck a 40)" a/stats.h5; do
  h5dump -H "$f" >/dev/null && h5ls -r "$f" >/dev/null && $py -c 'import sys,h5py; f=h5py.File(sys.argv[1],"r"); f.visit(lambda n: None)' "$f" &&
    ok "h5dump, h5ls and h5py read $f" || bad "unreadable $f"
done

# 8. tools/ckpt_to_torch.py gives the same loss and accuracy as gradguard eval
"$bin/gradguard" eval --ckpt "$(ck a 40)" --data blobs.h5 --json >ev.json 2>/dev/null
$py "$here/tools/ckpt_to_torch.py" "$(ck a 40)" --data blobs.h5 >tt.txt 2>&1
if $py - <<'PY'
import json, re, sys
e = json.load(open("ev.json"))
m = re.search(r"loss ([0-9.e+-]+) accuracy ([0-9.]+)", open("tt.txt").read())
l, a = float(m.group(1)), float(m.group(2))
sys.exit(0 if abs(l - e["loss"]) <= 1e-5 * max(1, abs(l)) and abs(a - e["accuracy"]) < 1e-9 else 1)
PY
then ok "PyTorch nn.Sequential from the checkpoint matches gradguard eval: $(tail -1 tt.txt)"
else bad "ckpt_to_torch: $(cat ev.json) vs $(tail -1 tt.txt)"; fi

finish
