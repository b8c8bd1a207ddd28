#!/usr/bin/env bash
# Acceptance of --nonfinite: a batch whose averaged gradient is Inf/NaN
#   skip   leaves the weights and the optimizer state untouched, and counts it
#   zero   updates with a zeroed gradient (sgd + weight decay: w' = w (1 - lr wd))
#   abort  exits 70 with one stderr line, on 1 rank and on 2 ranks (within 10 s)
# The data are finite: one of 8 samples has X = 1e30, so with mse and positive
# first-layer weights dW1 = dz2 a1 ~ 1e59 overflows float32. A control run on
# the same data without that sample shows that the weights do move.
# Usage: nonfinite_test.sh BUILD_DIR
set -uo pipefail
bin="$1"
py=/usr/bin/python3
mpiexec="${MPIEXEC:-mpiexec}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "PASS $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

# Data (contract layout /X float32 [N, D], /y float32 [N, K]) and an init
# checkpoint (contract layout, step 0, weights only) for layers 4,3,2 relu mse.
"$py" - <<'EOF' || { echo "FAIL cannot write the inputs (python3 + h5py)"; echo "0 passed, 1 failed"; exit 1; }
import h5py, numpy as np
rng = np.random.default_rng(7)
X = rng.standard_normal((8, 4)).astype(np.float32)
y = rng.standard_normal((8, 2)).astype(np.float32)
for name, X_ in (("finite.h5", X), ("overflow.h5", None)):
    if X_ is None:
        X_ = X.copy()
        X_[5, :] = 1e30  # finite in float32; its gradient is not
    with h5py.File(name, "w") as f:
        f.create_dataset("X", data=X_)
        f.create_dataset("y", data=y)
widths = [4, 3, 2]
with h5py.File("init.h5", "w") as f:
    f.attrs["format"] = "gradguard.checkpoint"
    f.attrs["format_version"] = np.int32(1)
    f.attrs["step"] = np.int64(0)
    f.attrs["epoch"] = np.int64(0)
    f.attrs["samples_seen"] = np.int64(0)
    f.attrs["world_size"] = np.int32(1)
    f.attrs["seed"] = np.int64(0)
    f.attrs["layers"] = np.asarray(widths, dtype=np.int32)
    f.attrs["activation"] = "relu"
    f.attrs["loss"] = "mse"
    f.attrs["config"] = ""
    for l in range(len(widths) - 1):
        o, i = widths[l + 1], widths[l]
        W = rng.uniform(0.1, 0.5, size=(o, i)) if l == 0 else rng.uniform(-0.5, 0.5, size=(o, i))
        b = rng.uniform(-0.1, 0.1, size=o)
        g = f.create_group(f"model/layer_{l:02d}")
        g.create_dataset("weight", data=W.astype(np.float32), fletcher32=True)
        g.create_dataset("bias", data=b.astype(np.float32), fletcher32=True)
EOF

# compare.py MODE RUN_DIR: checks of the run's step-1 checkpoint against
# init.h5, and of its stats.h5 (the contract's /nonfinite flag counts the step)
cat > compare.py <<'EOF'
import sys, h5py, numpy as np
mode, run = sys.argv[1], sys.argv[2]
path = f"{run}/checkpoints/step-00000001.h5"
lr, wd = 0.1, 0.5
if mode in ("skip", "zero", "moved"):
    with h5py.File(f"{run}/stats.h5", "r") as st:
        steps, flags = list(st["step"][()]), list(st["nonfinite"][()])
        want = 0 if mode == "moved" else 1
        assert steps == [1] and flags == [want], f"stats.h5: step {steps} nonfinite {flags}"
with h5py.File("init.h5", "r") as a, h5py.File(path, "r") as b:
    if mode != "moved" and "state" in b and "n_skipped" in b["state"].attrs:
        assert int(b["state"].attrs["n_skipped"]) == 1, "checkpoint: n_skipped != 1"
    assert int(b.attrs["step"]) == 1, f"step attribute {b.attrs['step']}"
    t = int(b["optimizer"].attrs["t"])
    for l in range(2):
        for k in ("weight", "bias"):
            w0 = a[f"model/layer_{l:02d}/{k}"][()]
            w1 = b[f"model/layer_{l:02d}/{k}"][()]
            assert w1.dtype == np.float32 and np.all(np.isfinite(w1)), f"{k} {l} not finite"
            same = np.array_equal(w0.view(np.uint32), w1.view(np.uint32))
            if mode == "skip":
                assert same, f"layer {l} {k} changed: {w0} -> {w1}"
                opt = b[f"optimizer/layer_{l:02d}/{k}"]
                for s in opt:
                    assert not np.any(opt[s][()]), f"optimizer {s} of layer {l} {k} not zero"
                assert len(opt) > 0, "no optimizer state written"
            elif mode == "zero":
                want = w0.astype(np.float64) * (1 - lr * wd)
                assert np.allclose(w1, want, rtol=1e-6, atol=1e-9), f"layer {l} {k}: {w1} vs {want}"
            elif mode == "moved":
                assert not same, f"layer {l} {k} did not move"
    if mode == "skip": assert t == 0, f"optimizer t = {t}, expected 0"
    else: assert t == 1, f"optimizer t = {t}, expected 1"
print(f"{mode}: ok (optimizer t = {t})")
EOF

run() { # run NAME DATA ARGS...: one step of the whole batch, from init.h5
  local name="$1" data="$2"; shift 2
  "$bin/gradguard" train --data "$data" --layers 4,3,2 --activation relu --loss mse \
    --init-from init.h5 --steps 1 --batch 8 --ckpt-every 1 --run-dir "$name" "$@" >"$name.out" 2>"$name.err"
}
ckpt() { echo "$1/checkpoints/step-00000001.h5"; }

# control: the finite data move the weights (so the comparisons can fail)
run ctl finite.h5 --optimizer adam --nonfinite skip
if [ $? -eq 0 ] && "$py" compare.py moved ctl >cmp.txt 2>&1; then
  ok "control: finite batch updates the weights"
else bad "control: $(tail -3 cmp.txt) $(cat ctl.err)"; fi
grep -q "non-finite" ctl.out && bad "control: warning on a finite batch" || ok "control: no warning"

# skip (adam: two optimizer slots that must stay zero, t stays 0)
run skip overflow.h5 --optimizer adam --nonfinite skip
rc=$?
[ $rc -eq 0 ] && ok "skip: exit 0" || bad "skip: exit $rc: $(cat skip.err)"
if "$py" compare.py skip skip >cmp.txt 2>&1; then
  ok "skip: weights bitwise equal, optimizer state zero, t = 0, stats.h5 nonfinite = 1"
else bad "skip: $(tail -3 cmp.txt)"; fi
if grep -q "warning: step 1: non-finite gradient, update skipped (1 so far)" skip.out; then
  ok "skip: warning line counts the skipped step: $(grep -m1 'warning: step 1' skip.out)"
else bad "skip: no warning line in: $(cat skip.out | tail -5)"; fi

# zero (sgd with weight decay: the zeroed gradient leaves only the decay)
run zero overflow.h5 --optimizer sgd --lr 0.1 --weight-decay 0.5 --clip-norm 1 --nonfinite zero
rc=$?
[ $rc -eq 0 ] && ok "zero: exit 0" || bad "zero: exit $rc: $(cat zero.err)"
if "$py" compare.py zero zero >cmp.txt 2>&1; then
  ok "zero: w' = w (1 - lr wd) for every weight and bias, t = 1"
else bad "zero: $(tail -3 cmp.txt)"; fi
grep -q "warning: step 1: non-finite gradient, gradient zeroed" zero.out && ok "zero: warning line" ||
  bad "zero: no warning line in: $(tail -5 zero.out)"

# after a skipped step the next backward pass must start from a fresh
# gradient (the trainer accumulates into a buffer the update zeroed, and a
# skipped step zeroes nothing): 16 samples, one of them overflowing, batch 8,
# 4 epochs of 2 shuffled steps: exactly one step per epoch is skipped. Were
# the Inf carried over, every later step would be non-finite too.
"$py" - <<'EOF2'
import h5py, numpy as np
a, b = h5py.File("finite.h5", "r"), h5py.File("overflow.h5", "r")
with h5py.File("mixed.h5", "w") as f:
    f.create_dataset("X", data=np.concatenate([a["X"][()], b["X"][()]]))
    f.create_dataset("y", data=np.concatenate([a["y"][()], b["y"][()]]))
EOF2
for np_ in 1 2; do
  name=mixed$np_
  timeout 60 "$mpiexec" -q --oversubscribe -n $np_ "$bin/gradguard" train --data mixed.h5 --layers 4,3,2 \
    --activation relu --loss mse --init-from init.h5 --steps 8 --batch 8 --optimizer adam \
    --nonfinite skip --shard-update on --run-dir $name >$name.out 2>$name.err
  if grep -q "warning: 4 of 8 steps had a non-finite gradient" $name.out; then
    ok "skip then go on ($np_ rank(s), --shard-update on): 4 of 8 steps skipped, one per epoch"
  else bad "skip then go on ($np_ rank(s)): $(grep -m1 'of 8 steps' $name.out) $(tail -2 $name.err)"; fi
done

# abort: exit 70, one stderr line naming the non-finite gradient, no checkpoint
abort_check() { # NAME RC MILLISECONDS
  local name="$1" rc="$2" msecs="$3"
  local lines; lines=$(grep -c . "$name.err")
  if [ "$rc" -eq 70 ] && [ "$lines" -eq 1 ] && grep -qiE "non-?finite|nan/inf" "$name.err"; then
    ok "$name: exit 70 in ${msecs} ms, one line: $(cat "$name.err")"
  else bad "$name: exit $rc, $lines stderr lines: $(head -c 600 "$name.err")"; fi
  [ ! -e "$(ckpt "$name")" ] && ok "$name: no step-1 checkpoint" || bad "$name: a checkpoint was written"
}
ms() { echo $(( ($(date +%s%N) - $1) / 1000000 )); }
t0=$(date +%s%N)
run abort overflow.h5 --nonfinite abort
rc=$?
abort_check abort "$rc" "$(ms "$t0")"

# abort on 2 ranks: the rank holding the sample and the other agree, end in 10 s
t0=$(date +%s%N)
timeout 10 "$mpiexec" -q --oversubscribe -n 2 "$bin/gradguard" train --data overflow.h5 --layers 4,3,2 \
  --activation relu --loss mse --init-from init.h5 --steps 1 --batch 8 --ckpt-every 1 \
  --run-dir abort2 --nonfinite abort >abort2.out 2>abort2.err
rc=$?
secs=$(ms "$t0")
[ "$rc" -eq 124 ] && bad "abort2: still running after 10 s"
abort_check abort2 "$rc" "$secs"

# skip on 2 ranks: the same untouched weights
timeout 20 "$mpiexec" -q --oversubscribe -n 2 "$bin/gradguard" train --data overflow.h5 --layers 4,3,2 \
  --activation relu --loss mse --init-from init.h5 --steps 1 --batch 8 --ckpt-every 1 \
  --run-dir skip2 --optimizer adam --nonfinite skip >skip2.out 2>skip2.err
rc=$?
if [ $rc -eq 0 ] && "$py" compare.py skip skip2 >cmp.txt 2>&1; then
  ok "skip on 2 ranks: weights and optimizer untouched"
else bad "skip on 2 ranks: exit $rc $(tail -3 cmp.txt) $(head -c 300 skip2.err)"; fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
