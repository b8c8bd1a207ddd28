#!/usr/bin/env bash
# gg-inspect end to end: trains a healthy run and three sick ones (12 sigmoid
# layers: vanishing; SGD lr 50 on a tanh regression: exploding to NaN; SGD
# lr 50 on relu: a spike, then dead ReLUs), then checks every subcommand's
# numbers against h5py/numpy, the diagnose findings, diff and export
# round trips, a live (SWMR) stats.h5, and broken inputs (missing, not HDF5,
# foreign HDF5, truncated, no datasets, 0 rows, newer format, empty folder):
# one error line and the contract's exit code, never a crash.
# Usage: inspect_test.sh BUILD_DIR
set -uo pipefail
bin=$(cd "$1" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$here/tests/testlib.sh"
gi="$bin/gg-inspect"
train() { timeout 120 "$bin/gradguard" train --threads 1 -q "$@"; }
ck() { printf '%s/checkpoints/step-%08d.h5' "$1" "$2"; }
# one_line RC WANT FILE: exit code WANT and exactly one "gg-inspect: " line on stderr
one_line() { [ "$1" -eq "$2" ] && [ "$(wc -l <"$3")" -eq 1 ] && grep -q '^gg-inspect: ' "$3"; }

"$bin/gg-data" synth --kind blobs --n 2000 --d 20 --k 5 --seed 1 -o blobs.h5 >/dev/null || bad "synth blobs"
"$bin/gg-data" synth --kind regression --n 2000 --d 20 --k 1 --seed 1 -o reg.h5 >/dev/null || bad "synth regression"
common=(--batch 64 --steps 60 --ckpt-every 20 --hist-every 10)
train --data blobs.h5 --layers 20,32,16,5 --loss softmax_ce "${common[@]}" --run-dir ok || bad "train healthy"
L=20$(printf ',16%.0s' $(seq 12)),5
train --data blobs.h5 --layers "$L" --activation sigmoid --loss softmax_ce "${common[@]}" --run-dir vg || bad "train vanishing"
train --data reg.h5 --layers 20,32,16,1 --activation tanh --loss mse --optimizer sgd --lr 50 \
  "${common[@]}" --run-dir nf || bad "train exploding"
train --data blobs.h5 --layers 20,32,16,5 --loss softmax_ce --optimizer sgd --lr 50 \
  "${common[@]}" --run-dir dead || bad "train dead relu"

# ---- the program's own interface ----
"$gi" --help >h.out && grep -q diagnose h.out && ok "--help" || bad "--help"
"$gi" --version | grep -q '^gg-inspect [0-9]' && ok "--version: $("$gi" --version)" || bad "--version"
for c in summary stats diagnose diff export; do
  "$gi" $c --help >h.out 2>&1 && grep -q "usage: gg-inspect $c" h.out || { bad "$c --help"; continue; }
done && ok "every subcommand has --help"
"$gi" frobnicate ok 2>e.txt; one_line $? 64 e.txt && ok "unknown command: 64, one line" || bad "unknown command: $(cat e.txt)"
"$gi" stats ok --bogus 2>e.txt; one_line $? 64 e.txt && ok "unknown flag: 64: $(cat e.txt)" || bad "unknown flag"
"$gi" stats ok --last 0 2>e.txt; one_line $? 64 e.txt && ok "bad value: 64" || bad "--last 0 accepted"
"$gi" 2>/dev/null; [ $? -eq 64 ] && ok "no command: 64" || bad "no command"

# ---- summary: numbers against h5py ----
"$gi" summary "$(ck ok 60)" >s.out 2>e.txt || bad "summary checkpoint: $(cat e.txt)"
$py - "$(ck ok 60)" s.out <<'PY' && ok "summary: step/epoch/samples/ranks/seed, parameter count, per-layer norms = h5py" || bad "summary numbers: $(cat s.out)"
import sys, re, h5py, numpy as np
f = h5py.File(sys.argv[1], "r"); out = open(sys.argv[2]).read()
a = f.attrs
m = re.search(r"step\s+(\d+)\s+epoch (\d+)\s+samples_seen (\d+)\s+world_size (\d+)\s+seed (\d+)", out)
assert m and [int(x) for x in m.groups()] == [a["step"], a["epoch"], a["samples_seen"], a["world_size"], a["seed"]], m
w = list(a["layers"]); n = sum(w[i + 1] * (w[i] + 1) for i in range(len(w) - 1))
assert re.search(r"parameters\s+%d in %d layers" % (n, len(w) - 1), out)
assert "adam, t = 60" in out and "exp_avg, exp_avg_sq" in out
for l in range(len(w) - 1):
    W = f["model/layer_%02d/weight" % l][()].astype(np.float64); B = f["model/layer_%02d/bias" % l][()].astype(np.float64)
    row = re.search(r"^\s*%d\s+layer_%02d\s+\[(\d+), (\d+)\]\s+(\d+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\d+)" % (l, l), out, re.M)
    assert row, l
    g = row.groups()
    assert (int(g[0]), int(g[1])) == W.shape and int(g[2]) == W.size + B.size
    for got, want in ((g[3], np.linalg.norm(W)), (g[4], np.abs(W).max()), (g[5], np.linalg.norm(B))):
        assert abs(float(got) - want) <= 1e-3 * want + 1e-12, (l, got, want)
    assert int(g[6]) == 0
PY
"$gi" summary ok >r.out 2>e.txt || bad "summary run: $(cat e.txt)"
$py - ok r.out <<'PY' && ok "summary of a run folder: newest checkpoint, rows, first/last loss, non-finite count = h5py" || bad "summary run: $(cat r.out)"
import sys, re, h5py, numpy as np
s = h5py.File(sys.argv[1] + "/stats.h5", "r", swmr=True); out = open(sys.argv[2]).read()
assert "checkpoint    %s/checkpoints/step-00000060.h5" % sys.argv[1] in out
n = len(s["step"]); assert "rows          %d (steps %d-%d)" % (n, s["step"][0], s["step"][-1]) in out
m = re.search(r"loss\s+first (\S+) \(step 1\), last (\S+)", out)
assert abs(float(m.group(1)) - s["loss"][0]) <= 1e-3 * abs(s["loss"][0]) and abs(float(m.group(2)) - s["loss"][-1]) <= 1e-3 * abs(s["loss"][-1])
assert "non-finite    %d of %d steps" % (s["nonfinite"][()].sum(), n) in out
PY
"$gi" summary nf >r.out 2>&1
want=$($py -c 'import h5py; s=h5py.File("nf/stats.h5","r"); print(int(s["nonfinite"][()].sum()))')
[ "$want" -gt 0 ] && grep -q "non-finite    $want of 60 steps" r.out && ok "summary counts $want non-finite steps of the exploding run" || bad "nf count $want: $(grep non-finite r.out)"
"$gi" summary "$(ck ok 60)" --config >c.out
$py - "$(ck ok 60)" c.out <<'PY' && ok "summary --config prints the stored configuration" || bad "--config"
import sys, h5py
cfg = h5py.File(sys.argv[1], "r").attrs["config"]; out = open(sys.argv[2]).read()
assert cfg.strip() and cfg.strip() in out
PY

# ---- stats: every column against h5py ----
"$gi" stats ok --csv >all.csv && "$gi" stats ok --layer 1 --csv >l1.csv && "$gi" stats ok --layer layer_02 --csv >l2.csv &&
  "$gi" stats ok --stat update_ratio --csv >ur.csv && "$gi" stats ok --steps 10:30 --every 5 --last 3 --csv >sel.csv ||
  bad "stats --csv runs"
$py <<'PY' && ok "stats --csv (series, --layer N, --layer NAME, --stat) = h5py bit for bit; --steps/--every/--last select" || bad "stats csv"
import h5py, numpy as np
s = h5py.File("ok/stats.h5", "r", swmr=True)
a = np.genfromtxt("all.csv", delimiter=",", names=True)
assert len(a) == len(s["step"]) == 60
for k in ["loss", "lr", "grad_norm", "grad_norm_clipped", "clip_coef", "clipped_fraction"]:
    assert np.array_equal(a[k].astype(np.float32), s[k][()]), k
assert np.array_equal(a["step"], s["step"][()]) and np.array_equal(a["nonfinite"], s["nonfinite"][()])
for fn, l in (("l1.csv", 1), ("l2.csv", 2)):
    b = np.genfromtxt(fn, delimiter=",", names=True)
    for k in ["grad_norm", "grad_max_abs", "weight_norm", "update_ratio", "saturation"]:
        assert np.array_equal(b[k].astype(np.float32), s["layers/" + k][:, l]), (fn, k)
u = np.loadtxt("ur.csv", delimiter=",", skiprows=1)
assert np.array_equal(u[:, 1:].astype(np.float32), s["layers/update_ratio"][()])
sel = np.loadtxt("sel.csv", delimiter=",", skiprows=1)
assert list(sel[:, 0]) == [20, 25, 30], sel[:, 0]
PY
"$gi" stats ok --last 4 >t.out && [ "$(grep -c '^ *[0-9]' t.out)" -eq 4 ] && head -1 t.out | grep -q "grad_norm_clipped" &&
  ok "stats table: header + --last 4 rows" || bad "stats table: $(cat t.out)"
"$gi" stats ok --layer 7 2>e.txt; one_line $? 64 e.txt && ok "stats --layer out of range: 64: $(cat e.txt)" || bad "--layer 7"

# ---- diagnose: the right findings, the evidence = h5py ----
"$gi" diagnose ok >d.out; rc=$?
[ $rc -eq 0 ] && grep -q "^healthy" d.out && ok "diagnose healthy run: exit 0, 'healthy'" || bad "healthy run: rc=$rc $(cat d.out)"
"$gi" diagnose ok --json >d.json; rc=$?
$py -c 'import json,sys; d=json.load(open("d.json")); sys.exit(0 if d["healthy"] and d["findings"]==[] and d["window"]["rows"]==60 else 1)' && [ $rc -eq 0 ] &&
  ok "diagnose --json healthy: one object, no findings" || bad "healthy json: $(cat d.json)"
"$gi" diagnose vg >d.out; rc=$?
"$gi" diagnose vg --json >v.json
$py - <<'PY' && [ $rc -eq 1 ] && ok "12 sigmoid layers: vanishing_gradients at layer_00, ratio = h5py's median ratio; exit 1" || bad "vanishing: rc=$rc $(cat d.out)"
import json, h5py, numpy as np
d = json.load(open("v.json")); s = h5py.File("vg/stats.h5", "r")
v = [f for f in d["findings"] if f["id"] == "vanishing_gradients"]
assert len(v) == 1 and v[0]["layer"] == 0 and v[0]["layer_name"] == "layer_00", d
g = s["layers/grad_norm"][()][-100:].astype(np.float64)
ratio = np.median(g[:, 0]) / np.median(g[:, -1])
assert ratio < 1e-3 and abs(v[0]["values"]["ratio"] - ratio) <= 1e-5 * ratio, (v[0]["values"], ratio)
assert "--activation relu" in v[0]["suggestion"]
PY
grep -q "vanishing gradients — layer_00" d.out && ok "diagnose text names the layer: $(grep -A1 'vanishing gradients' d.out | tail -1 | cut -c1-110)" || bad "vanishing text"
"$gi" diagnose nf --json >n.json; rc=$?
$py - <<'PY' && [ $rc -eq 1 ] && ok "SGD lr 50: nonfinite_gradients (count = h5py) and exploding_gradients (spike step = h5py); exit 1" || bad "exploding: rc=$rc $(cat n.json)"
import json, h5py, numpy as np
d = json.load(open("n.json")); s = h5py.File("nf/stats.h5", "r")
ids = {f["id"]: f for f in d["findings"]}
nf = ids["nonfinite_gradients"]
assert nf["severity"] == "critical" and nf["values"]["nonfinite_steps"] == s["nonfinite"][()].sum() > 0
assert nf["values"]["first_step"] == s["step"][np.argmax(s["nonfinite"][()] > 0)]
assert "--lr" in nf["suggestion"] and "--clip-norm" in nf["suggestion"]
ex = ids["exploding_gradients"]
g = s["grad_norm"][()].astype(np.float64); fin = (s["nonfinite"][()] == 0) & np.isfinite(g)
idx = np.flatnonzero(fin)
first = next(i for j, i in enumerate(idx[1:], 1) if g[i] / np.median(g[idx[max(0, j - 10):j]]) >= 100)
assert ex["values"]["spike_step"] == s["step"][first], (ex["values"], first)
PY
"$gi" diagnose nf --window 10 --json >w.json
$py -c 'import json,sys; d=json.load(open("w.json")); f=[x for x in d["findings"] if x["id"]=="nonfinite_gradients"][0]; sys.exit(0 if d["window"]["rows"]==10 and f["values"]["nonfinite_steps"]==10 and d["window"]["first_step"]==51 else 1)' &&
  ok "--window 10: evidence over steps 51-60 only" || bad "--window: $(head -c 400 w.json)"
"$gi" diagnose dead --json >x.json; rc=$?
$py - <<'PY' && [ $rc -eq 1 ] && ok "relu + SGD lr 50: dead_units in layer_01 (saturation = h5py), exploding_gradients" || bad "dead relu: rc=$rc $(cat x.json)"
import json, h5py, numpy as np
d = json.load(open("x.json")); s = h5py.File("dead/stats.h5", "r")
ids = {f["id"]: f for f in d["findings"]}
sat = np.median(s["layers/saturation"][()][:, 1])
assert sat >= 0.99, sat
dead = ids["dead_units"]
assert dead["values"]["dead_layer"] == 1 and abs(dead["values"]["max_saturation"] - sat) < 1e-6, dead
assert "leaky_relu" in dead["suggestion"] and "exploding_gradients" in ids
assert all(f["layer"] != len(s.attrs["layer_names"]) - 1 for f in d["findings"] if f["id"] in ("dead_units", "saturated_units"))
PY
"$gi" diagnose "$(ck vg 60)" >/dev/null; rc=$?
[ $rc -eq 1 ] && ok "diagnose a checkpoint: its /stats row alone shows the vanishing gradient" || bad "diagnose checkpoint rc=$rc"
# clipping on every step: a --clip-norm far below the norm
train --data blobs.h5 --layers 20,32,16,5 --loss softmax_ce "${common[@]}" --clip-norm 0.01 --run-dir clip || bad "train clip"
"$gi" diagnose clip --json >cl.json
$py -c 'import json,sys; d=json.load(open("cl.json")); f=[x for x in d["findings"] if x["id"]=="clipping_always"]; sys.exit(0 if f and f[0]["values"]["clipped_steps"]==60 else 1)' &&
  ok "--clip-norm 0.01: clipping_always on 60 of 60 steps" || bad "clip always: $(cat cl.json)"
train --data blobs.h5 --layers 20,32,16,5 --loss softmax_ce "${common[@]}" --clip-norm 1e6 --run-dir clipn || bad "train clip never"
"$gi" diagnose clipn --json >cn.json; rc=$?
$py -c 'import json,sys; d=json.load(open("cn.json")); sys.exit(0 if [x["id"] for x in d["findings"]]==["clipping_never"] else 1)' && [ $rc -eq 1 ] &&
  ok "--clip-norm 1e6: the only finding is clipping_never (a note)" || bad "clip never: $(cat cn.json)"

# ---- diff ----
"$gi" diff "$(ck ok 60)" "$(ck ok 60)" >df.out; rc=$?
[ $rc -eq 0 ] && grep -q "^identical: all 18 tensors" df.out && ok "diff of a checkpoint with itself: identical, exit 0" || bad "diff self: rc=$rc $(tail -2 df.out)"
"$gi" diff "$(ck ok 40)" "$(ck ok 60)" >df.out; rc=$?
$py - "$(ck ok 40)" "$(ck ok 60)" df.out <<'PY' && [ $rc -eq 1 ] && ok "diff step 40 vs 60: exit 1, per-tensor max abs/rel diff and counts = numpy" || bad "diff 40/60 rc=$rc: $(cat df.out)"
import sys, re, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r"); out = open(sys.argv[3]).read()
assert "metadata: step 40 vs 60" in out
for name in ["model/layer_00/weight", "model/layer_02/bias", "optimizer/layer_01/weight/exp_avg_sq"]:
    x, y = a[name][()].astype(np.float64), b[name][()].astype(np.float64)
    d = np.abs(x - y); rel = np.max(d / np.maximum(np.maximum(np.abs(x), np.abs(y)), 1e-300))
    m = re.search(r"^%s\s+\[[^]]*\]\s+(\S+)\s+(\S+)\s+(\d+) of (\d+)" % re.escape(name), out, re.M)
    assert m, name
    assert abs(float(m.group(1)) - d.max()) <= 1e-3 * d.max() and abs(float(m.group(2)) - rel) <= 1e-3 * rel, (name, m.groups(), d.max(), rel)
    assert int(m.group(3)) == np.count_nonzero(x != y) and int(m.group(4)) == x.size
PY
"$gi" diff "$(ck ok 40)" "$(ck ok 60)" --tol 10 -q; [ $? -eq 0 ] && ok "diff --tol 10: within tolerance, exit 0" || bad "diff --tol"
cp "$(ck ok 60)" one.h5
$py -c 'import h5py; f=h5py.File("one.h5","r+"); d=f["model/layer_01/weight"]; w=d[()]; w[3,4]+=0.5; d[...]=w'
"$gi" diff "$(ck ok 60)" one.h5 >df.out; rc=$?
[ $rc -eq 1 ] && grep -Eq '^model/layer_01/weight .* 0\.5 .* 1 of 512' df.out && grep -q "different: 1 of 18" df.out &&
  ok "one changed weight: exactly that value reported (abs diff 0.5, 1 of 512)" || bad "one value: rc=$rc $(grep -v identical df.out)"
"$gi" diff ok vg >df.out; rc=$?
[ $rc -eq 1 ] && grep -q "architecture differs: A 20,32,16,5 relu softmax_ce, B 20,16," df.out && grep -q "shape differs" df.out &&
  ok "diff across architectures: 'architecture differs', shapes named, exit 1" || bad "arch diff rc=$rc $(head -5 df.out)"
"$gi" diff "$(ck ok 60)" ok/stats.h5 2>e.txt; one_line $? 65 e.txt && ok "diff with a stats file: 65: $(cat e.txt)" || bad "diff stats: $(cat e.txt)"

# ---- export: numpy.load == h5py ----
"$gi" export "$(ck ok 60)" -o ex1 >/dev/null && "$gi" export ok/stats.h5 -o ex2 >/dev/null &&
  "$gi" export ok/stats.h5 -o ex3 --format npy >/dev/null && "$gi" export "$(ck ok 60)" -o ex4 --format csv >/dev/null || bad "export runs"
$py - "$(ck ok 60)" <<'PY' && ok "export: every tensor's .npy (numpy.load) == h5py, headers 64-aligned; tensor CSV == h5py; config.ini" || bad "export npy"
import sys, os, h5py, numpy as np
f = h5py.File(sys.argv[1], "r"); n = 0
def check(name, obj):
    global n
    if not isinstance(obj, h5py.Dataset) or not name.split("/")[0] in ("model", "optimizer", "state"): return
    p = "ex1/" + name.replace("/", ".") + ".npy"
    x = np.load(p)
    assert x.dtype == obj.dtype.newbyteorder("<") and x.shape == obj.shape and np.array_equal(x, obj[()]), name
    raw = open(p, "rb").read(10); hl = raw[8] | raw[9] << 8
    assert raw[:8] == b"\x93NUMPY\x01\x00" and (10 + hl) % 64 == 0
    c = np.loadtxt("ex4/" + name.replace("/", ".") + ".csv", delimiter=",", dtype=np.float64, ndmin=2 if obj.ndim == 2 else 1)
    assert np.array_equal(c.astype(obj.dtype).reshape(obj.shape), obj[()]), name
    n += 1
f.visititems(check)
assert n == 18, n
assert open("ex1/config.ini").read() == f.attrs["config"]
PY
$py <<'PY' && ok "export stats: CSV and .npy series, per-layer tables and histograms == h5py" || bad "export stats"
import h5py, numpy as np
s = h5py.File("ok/stats.h5", "r")
a = np.genfromtxt("ex2/stats.csv", delimiter=",", names=True)
for k in ["loss", "lr", "grad_norm", "grad_norm_clipped", "clip_coef", "clipped_fraction"]:
    assert np.array_equal(a[k].astype(np.float32), s[k][()]), k
    assert np.array_equal(np.load("ex3/stats.%s.npy" % k), s[k][()]), k
assert np.array_equal(np.load("ex3/stats.step.npy"), s["step"][()]) and np.array_equal(np.load("ex3/stats.nonfinite.npy"), s["nonfinite"][()])
for k in ["grad_norm", "grad_max_abs", "weight_norm", "update_ratio", "saturation"]:
    t = np.loadtxt("ex2/stats.layers.%s.csv" % k, delimiter=",", skiprows=1)
    assert np.array_equal(t[:, 0], s["step"][()]) and np.array_equal(t[:, 1:].astype(np.float32), s["layers/" + k][()]), k
    assert np.array_equal(np.load("ex3/stats.layers.%s.npy" % k), s["layers/" + k][()]), k
h = np.load("ex3/stats.layers.grad_hist.npy"); assert h.dtype == np.uint32 and np.array_equal(h, s["layers/grad_hist"][()])
hc = np.genfromtxt("ex2/stats.grad_hist.csv", delimiter=",", skip_header=1, dtype=None, encoding=None)
counts = np.array([list(r)[2:] for r in hc], dtype=np.uint32)
assert np.array_equal(counts, s["layers/grad_hist"][()].reshape(-1, 64))
assert open("ex2/stats.grad_hist.csv").readline().startswith("step,layer,-48,-47,")
PY
touch notadir
"$gi" export ok -o notadir/sub 2>e.txt; one_line $? 73 e.txt && ok "export into an uncreatable folder: 73: $(cat e.txt)" || bad "export 73: $(cat e.txt)"

# ---- broken and odd inputs: one line, the contract's exit code, no crash ----
"$gi" summary nosuch.h5 2>e.txt; one_line $? 66 e.txt && ok "missing file: 66: $(cat e.txt)" || bad "missing: $(cat e.txt)"
echo "hello" >text.h5
"$gi" summary text.h5 2>e.txt; one_line $? 65 e.txt && ok "not HDF5: 65: $(cat e.txt)" || bad "text: $(cat e.txt)"
"$gi" summary blobs.h5 2>e.txt; one_line $? 65 e.txt && ok "a dataset file (HDF5, not ours): 65: $(cat e.txt)" || bad "foreign: $(cat e.txt)"
sz=$(stat -c %s "$(ck ok 60)")
head -c $((sz / 2)) "$(ck ok 60)" >trunc.h5
for c in summary diagnose export; do
  "$gi" $c trunc.h5 -o tx 2>e.txt >/dev/null || true
  "$gi" $c trunc.h5 $([ $c = export ] && echo "-o tx") >/dev/null 2>e.txt; rc=$?
  one_line $rc 65 e.txt || { bad "truncated checkpoint, $c: rc=$rc $(cat e.txt)"; continue; }
done && ok "truncated checkpoint: 65 from summary, diagnose, export: $(cat e.txt)"
"$gi" diff trunc.h5 "$(ck ok 60)" 2>e.txt; one_line $? 65 e.txt && ok "diff with a truncated checkpoint: 65" || bad "diff trunc: $(cat e.txt)"
$py -c 'import h5py; f=h5py.File("nodata.h5","w"); f.attrs["format"]="gradguard.stats"; f.attrs["format_version"]=1'
"$gi" stats nodata.h5 2>e.txt; one_line $? 65 e.txt && ok "stats file without datasets: 65: $(cat e.txt)" || bad "nodata: $(cat e.txt)"
$py -c 'import h5py; f=h5py.File("nomodel.h5","w"); a=h5py.File("ok/checkpoints/step-00000060.h5","r").attrs
for k,v in a.items(): f.attrs[k]=v'
"$gi" summary nomodel.h5 2>e.txt; one_line $? 65 e.txt && ok "checkpoint attributes without /model: 65: $(cat e.txt)" || bad "nomodel: $(cat e.txt)"
cp "$(ck ok 60)" v2.h5
$py -c 'import h5py,numpy as np; f=h5py.File("v2.h5","r+"); f.attrs["format_version"]=np.int32(2)'
"$gi" summary v2.h5 2>e.txt; one_line $? 65 e.txt && grep -q "version 2" e.txt && ok "format_version 2: refused, 65: $(cat e.txt)" || bad "v2: $(cat e.txt)"
# an empty stats.h5 (0 rows), as a run looks before its first flush
mkdir -p empty && cp ok/stats.h5 empty/stats.h5
$py -c 'import h5py; f=h5py.File("empty/stats.h5","r+")
def z(n, o):
    if isinstance(o, h5py.Dataset): o.resize(0, axis=0)
f.visititems(z)'
"$gi" summary empty >e.out 2>e.txt; rc1=$?
"$gi" stats empty --csv >e.csv 2>e.txt; rc2=$?
"$gi" diagnose empty >e.out 2>e.txt; rc3=$?
"$gi" export empty -o eo >/dev/null 2>e.txt; rc4=$?
[ $rc1 -eq 0 ] && [ $rc2 -eq 0 ] && [ "$(wc -l <e.csv)" -eq 1 ] && [ $rc3 -eq 0 ] && grep -q "no statistics recorded yet" e.out &&
  [ $rc4 -eq 0 ] && [ "$(wc -l <eo/stats.csv)" -eq 1 ] && ok "0-row stats.h5: summary/stats/diagnose/export exit 0 (header only, 'nothing to diagnose')" ||
  bad "empty stats: $rc1 $rc2 $rc3 $rc4 $(cat e.txt)"
"$gi" diff empty ok 2>e.txt; one_line $? 66 e.txt && ok "diff on a run folder without checkpoints: 66: $(cat e.txt)" || bad "diff empty: $(cat e.txt)"
mkdir -p bare/checkpoints
"$gi" summary bare 2>e.txt; one_line $? 66 e.txt && ok "folder with neither stats.h5 nor checkpoints: 66: $(cat e.txt)" || bad "bare: $(cat e.txt)"
# layer_names as fixed-length strings (h5py's numpy bytes arrays), renamed: read like variable-length ones
mkdir -p fixn && cp ok/stats.h5 fixn/stats.h5
$py -c 'import h5py,numpy as np; f=h5py.File("fixn/stats.h5","r+"); n=len(f.attrs["layer_names"]); del f.attrs["layer_names"]; f.attrs["layer_names"]=np.array([b"in_%d" % i for i in range(n)])'
"$gi" stats fixn --layer in_1 --csv >fx.csv 2>e.txt && "$gi" stats ok --layer 1 --csv >ok1.csv &&
  cmp -s fx.csv ok1.csv && ok "fixed-length layer_names: --layer in_1 reads layer 1" || bad "fixed-length layer_names: $(cat e.txt)"
# the newest checkpoint damaged (a flipped byte in a weight): the previous one is used
cp -r ok dmg
$py - "$(ck dmg 60)" <<'PY'
import sys, h5py
with h5py.File(sys.argv[1], "r") as f:
    off = f["model/layer_01/weight"].id.get_chunk_info(0).byte_offset
with open(sys.argv[1], "r+b") as g:
    g.seek(off + 100); b = g.read(1); g.seek(off + 100); g.write(bytes([b[0] ^ 0x10]))
PY
"$gi" summary dmg >r.out 2>e.txt
grep -q "checkpoint    dmg/checkpoints/step-00000040.h5" r.out && grep -q "note: skipping.*step-00000060.*checksum" e.txt &&
  ok "run folder with a damaged newest checkpoint: step 40 used, a note names step 60" || bad "damaged: $(cat e.txt) $(head -2 r.out)"
"$gi" summary "$(ck dmg 60)" 2>e.txt; one_line $? 65 e.txt && grep -q checksum e.txt && ok "the damaged checkpoint itself: 65: $(cat e.txt)" || bad "flipped: $(cat e.txt)"

# ---- a live run: stats.h5 read (SWMR) while the trainer writes it ----
timeout 120 "$bin/gradguard" train --threads 1 -q --data blobs.h5 --layers 20,64,64,5 --loss softmax_ce --steps 3000000 \
  --ckpt-every 1000000 --run-dir live >live.out 2>&1 &
pid=$!
rows=0
for _ in $(seq 60); do
  sleep 0.5
  rows=$("$gi" stats live --csv 2>/dev/null | tail -n +2 | wc -l)
  [ "$rows" -gt 0 ] && break
done
"$gi" stats live/stats.h5 --last 3 >lv.out 2>e.txt; rc1=$?
"$gi" diagnose live --json >lv.json 2>e.txt; rc2=$?
kill -TERM $pid 2>/dev/null; wait $pid
[ "$rows" -gt 0 ] && [ $rc1 -eq 0 ] && [ $rc2 -le 1 ] && $py -c 'import json; json.load(open("lv.json"))' &&
  ok "live run: $rows rows read while training (stats exit 0, diagnose exit $rc2)" || bad "live: rows=$rows rc=$rc1/$rc2 $(cat e.txt)"

finish
