#!/usr/bin/env bash
# gg-plot end to end: pictures of real runs (healthy, vanishing, NaN steps),
# of synthetic stats files whose content is known (a series over 6
# decades, NaN/Inf/0/negative values on log axes, non-finite steps, known
# histograms), of a run that is still training (SWMR), of a 1e5-step file
# (time), and every error path with its exit code. PNGs are decoded here
# with zlib + struct (no PIL) and their pixels checked; `gg-plot -v` tells
# where each panel's plot area is.
# Usage: plot_test.sh BUILD_DIR
set -uo pipefail
bin=$(cd "$1" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$here/tests/testlib.sh"
plot="$bin/gg-plot"
train() { timeout 120 "$bin/gradguard" train --threads 1 -q "$@"; }

# ---- helpers (Python) -------------------------------------------------------
cat >png.py <<'EOF'
"""Decode 8-bit RGB/RGBA non-interlaced PNGs with zlib + struct, and the
pixel checks of plot_test.sh (run as: png.py CHECK ARGS...)."""
import sys, zlib, struct
import numpy as np

def load(path):
    """(width, height, pixels uint8 [h, w, 3])"""
    data = open(path, 'rb').read()
    if data[:8] != b'\x89PNG\r\n\x1a\n':
        raise ValueError('not a PNG')
    pos, idat, hdr = 8, [], None
    while pos < len(data):
        n, kind = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if zlib.crc32(kind + body) != struct.unpack('>I', data[pos + 8 + n:pos + 12 + n])[0]:
            raise ValueError('bad CRC in chunk ' + kind.decode())
        if kind == b'IHDR': hdr = struct.unpack('>IIBBBBB', body)
        elif kind == b'IDAT': idat.append(body)
        elif kind == b'IEND': break
        pos += 12 + n
    w, h, depth, ctype, _, _, interlace = hdr
    if depth != 8 or ctype not in (2, 6) or interlace:
        raise ValueError('unsupported PNG (depth %d, colour type %d)' % (depth, ctype))
    bpp = 3 if ctype == 2 else 4
    raw, stride = zlib.decompress(b''.join(idat)), w * bpp
    out, prev = bytearray(), bytearray(stride)
    for y in range(h):
        f, row = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        if f == 1:
            for i in range(bpp, stride): row[i] = (row[i] + row[i - bpp]) & 255
        elif f == 2:
            row = bytearray((a + b) & 255 for a, b in zip(row, prev))
        elif f == 3:
            for i in range(stride):
                row[i] = (row[i] + (((row[i - bpp] if i >= bpp else 0) + prev[i]) >> 1)) & 255
        elif f == 4:
            for i in range(stride):
                a = row[i - bpp] if i >= bpp else 0
                b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[i] = (row[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        elif f != 0:
            raise ValueError('bad filter type %d' % f)
        out += row
        prev = row
    px = np.frombuffer(bytes(out), np.uint8).reshape(h, w, bpp)[:, :, :3]
    return w, h, px

VIRIDIS = [(0x44, 0x01, 0x54), (0x48, 0x28, 0x78), (0x3e, 0x49, 0x89), (0x31, 0x68, 0x8e),
           (0x26, 0x82, 0x8e), (0x1f, 0x9e, 0x89), (0x35, 0xb7, 0x79), (0x6e, 0xce, 0x58),
           (0xb5, 0xde, 0x2b), (0xfd, 0xe7, 0x25)]

def layer_rgb(l, L):
    """the documented layer colour: viridis(0.88 * l / (L - 1))"""
    t = 0.88 * l / (L - 1) if L > 1 else 0.0
    k = min(int(t * 9), 8); u = t * 9 - k
    return tuple(round((1 - u) * a + u * b) for a, b in zip(VIRIDIS[k], VIRIDIS[k + 1]))

def panel(verbose_out, name):
    """x, y, w, h of a panel's plot area from gg-plot -v output"""
    for line in open(verbose_out):
        f = line.split()
        if len(f) > 3 and f[1] == 'panel' and f[2] == name:
            return [float(v) for v in f[3].split('=')[1].split(',')]
    raise SystemExit('no panel %s in %s' % (name, verbose_out))

def mask(px, rgb, tol):
    return (np.abs(px.astype(int) - np.array(rgb)) <= tol).all(axis=2)

def crop(px, r, inset=2):
    x, y, w, h = [int(round(v)) for v in r]
    return px[y + inset:y + h - inset, x + inset:x + w - inset]

def main():
    cmd, a = sys.argv[1], sys.argv[2:]
    if cmd == 'size':                   # PNG -> "W H"
        w, h, _ = load(a[0]); print(w, h)
    elif cmd == 'notblank':             # PNG: many colours, ink on 5..60% of the pixels
        w, h, px = load(a[0])
        ink = (px < 235).any(axis=2).mean()
        colours = len(np.unique(px.reshape(-1, 3), axis=0))
        print('ink %.3f colours %d' % (ink, colours))
        sys.exit(0 if 0.05 < ink < 0.6 and colours > 50 else 1)
    elif cmd == 'count':                # PNG R G B TOL [VERBOSE PANEL]: pixels of that colour
        w, h, px = load(a[0])
        if len(a) > 5: px = crop(px, panel(a[5], a[6]))
        print(int(mask(px, [int(v) for v in a[1:4]], int(a[4])).sum()))
    elif cmd == 'layer-extent':         # PNG VERBOSE PANEL L LAYER: rows of its colour / plot height
        w, h, px = load(a[0])
        r = panel(a[1], a[2]); m = mask(crop(px, r), layer_rgb(int(a[4]), int(a[3])), 12)
        rows = np.nonzero(m.any(axis=1))[0]
        print('%.3f' % ((rows.max() - rows.min() + 1) / r[3] if len(rows) else 0))
    elif cmd == 'layer-gap':            # PNG VERBOSE PANEL L: (median row of layer 0 - of layer L-1)
        w, h, px = load(a[0])           # / plot height, over the right 30% of the plot
        r = panel(a[1], a[2]); L = int(a[3]); c = crop(px, r)
        c = c[:, int(c.shape[1] * 0.7):]
        y0 = np.nonzero(mask(c, layer_rgb(0, L), 12))[0]
        y1 = np.nonzero(mask(c, layer_rgb(L - 1, L), 12))[0]
        print('%.3f' % ((np.median(y0) - np.median(y1)) / r[3] if len(y0) and len(y1) else -9))
    elif cmd == 'red-marks':            # PNG VERBOSE PANEL: clusters of red columns along the top
        w, h, px = load(a[0])
        x, y, pw, ph = [int(round(v)) for v in panel(a[1], a[2])]
        strip = px[y + 1:y + 9, x + 1:x + pw - 1]
        cols = mask(strip, (214, 39, 40), 20).any(axis=0)
        print(int(np.sum(cols[1:] & ~cols[:-1]) + cols[0]))
    elif cmd == 'hist-cells':           # PNG VERBOSE: heatmap cells that are not white
        w, h, px = load(a[0])
        for line in open(a[1]):
            f = line.split()
            if len(f) > 3 and f[2] == 'hist':
                x, y, pw, ph = [float(v) for v in f[3].split('=')[1].split(',')]
                nb, L = [int(v) for v in f[4].split('=')[1].split('x')]
        n = 0
        for l in range(L):
            for k in range(nb):
                cx, cy = int(x + (k + 0.5) * pw / nb), int(y + (l + 0.5) * ph / L)
                n += bool((px[cy, cx] < 250).any())
        print(n)
    elif cmd == 'nonzero':              # STATS [HIST_STEP]: non-zero bins of that (or the last) histogram
        import h5py
        f = h5py.File(a[0], 'r')
        i = list(f['hist_step'][()]).index(int(a[1])) if len(a) > 1 else -1
        print(int((f['layers/grad_hist'][i] > 0).sum()))
    else:
        raise SystemExit('png.py: unknown check ' + cmd)

if __name__ == '__main__':
    main()
EOF

cat >gen.py <<'EOF'
"""Write synthetic stats.h5 files with known content: gen.py OUT KIND."""
import sys
import numpy as np, h5py
out, kind = sys.argv[1], sys.argv[2]
n, L = {'big': (100000, 10), 'empty': (0, 3)}.get(kind, (200, 3))
rng = np.random.default_rng(1)
step = np.arange(1, n + 1, dtype=np.int64)
nonfinite = np.zeros(n, np.uint8)
if n == 200: nonfinite[[19, 59, 99, 139, 179]] = 1          # steps 20, 60, 100, 140, 180
loss = (2.3 * np.exp(-step / 20.0) + 1e-4).astype(np.float32)  # ~4 decades: log axis
gn = (1 + rng.random(n)).astype(np.float32)
gn[nonfinite == 1] = np.inf
loss[nonfinite == 1] = np.nan
gnc = np.minimum(gn, 1.2).astype(np.float32)
coef = np.minimum(1, 1.2 / gn).astype(np.float32)
lg = np.empty((n, L), np.float32)
if kind == 'big':
    lg[:] = np.exp(np.cumsum(rng.normal(0, 0.01, (n, L)), axis=0)) * 10.0 ** -np.arange(L)
else:
    lg[:, 0] = np.logspace(-6.9, -1.1, n)                  # 6 decades: the whole log panel
    lg[:, 1] = 1e-3
    if n: lg[[5, 6, 7, 30, 31, 90], 1] = [np.nan, np.inf, -np.inf, 0.0, -1.0, np.nan]
    lg[:, 2:] = 1e-2
upd = np.tile(10.0 ** (-3.0 - np.arange(L)), (n, 1)).astype(np.float32)
upd[nonfinite == 1] = 0
sat = np.tile(0.2 * (1 + np.arange(L)), (n, 1)).astype(np.float32)
hsteps = np.array([s for s in (1, 100, 200) if s <= n] if kind != 'big' else np.arange(0, n + 1, 100)[1:], np.int64)
hist = np.zeros((len(hsteps), L, 64), np.uint32)
for i, nz in enumerate(([7, 15, 23] if kind != "big" else [])[:len(hsteps)]):
    cells = rng.choice(L * 64, nz, replace=False)
    hist[i].reshape(-1)[cells] = rng.integers(1, 5000, nz)
if kind == 'big': hist[:, :, 20:30] = 100
with h5py.File(out, 'w') as f:
    ch = 4096 if kind == 'big' else 64
    def put(name, a):
        f.create_dataset(name, data=a, maxshape=(None,) + a.shape[1:],
                         chunks=(ch,) + a.shape[1:], compression='gzip', shuffle=True)
    put('step', step)
    put('loss', loss); put('lr', np.full(n, 1e-3, np.float32))
    put('grad_norm', gn); put('grad_norm_clipped', gnc); put('clip_coef', coef)
    put('clipped_fraction', np.zeros(n, np.float32)); put('nonfinite', nonfinite)
    if kind != 'nolayers':
        put('layers/grad_norm', lg if kind != 'short' else lg[:n // 2])
        put('layers/grad_max_abs', lg); put('layers/weight_norm', np.ones((n, L), np.float32))
        put('layers/update_ratio', upd if kind != 'mismatch' else np.ones((n, L + 1), np.float32))
        put('layers/saturation', sat)
        put('layers/grad_hist', hist)
        f['layers/grad_hist'].attrs['bin_edges'] = np.arange(-48, 17, dtype=np.float64)
        put('hist_step', hsteps)
    f.attrs['format'] = 'gradguard.stats'
    f.attrs['format_version'] = np.int32(1)
    names = ['input', '\u03c3-hidden', 'output'] if L == 3 else ['L%d' % l for l in range(L)]
    f.attrs.create('layer_names', names, dtype=h5py.string_dtype('utf-8'))
EOF
check() { $py png.py "$@"; }
rows_of() { sed -n 's/.*(\([0-9]*\)x\([0-9]*\), \([0-9]*\) rows.*/\3/p' "$1"; }
one_line_err() { [ "$(wc -l <"$1")" -eq 1 ] && grep -q '^gg-plot: ' "$1"; }

# ---- real runs ---------------------------------------------------------------
"$bin/gg-data" synth --kind blobs --n 2000 --d 20 --k 5 -o blobs.h5 >/dev/null || bad "synth"
common=(--data blobs.h5 --loss softmax_ce --batch 64 --steps 300 --hist-every 20)
train "${common[@]}" --layers 20,32,32,16,5 --run-dir healthy || bad "healthy run"
train "${common[@]}" --layers 20$(printf ',32%.0s' $(seq 12)),5 --activation sigmoid \
  --run-dir vanish || bad "vanishing run"
train "${common[@]}" --layers 20,32,32,16,5 --optimizer sgd --lr 50 --nonfinite skip \
  --run-dir nan || bad "NaN run"

# healthy: default output in the run folder, default size, a real picture, no red
"$plot" healthy -v >healthy.out 2>healthy.err && [ ! -s healthy.err ] &&
  ok "plots a run folder (exit 0, nothing on stderr)" || bad "healthy plot: $(cat healthy.err)"
[ "$(check size healthy/stats.png 2>&1)" = "1600 1800" ] && ok "default output RUN/stats.png, 1600x1800" ||
  bad "default output/size: $(check size healthy/stats.png 2>&1)"
for p in loss norms layers update saturation hist; do
  grep -q "panel $p " healthy.out || bad "panel $p missing from -v"
done
grep -c "panel " healthy.out | grep -qx 6 && ok "all six plot areas drawn (--what all)" || bad "panels: $(cat healthy.out)"
r=$(check notblank healthy/stats.png) && ok "not blank ($r)" || bad "blank or all ink: $r"
n=$(check count healthy/stats.png 214 39 40 20)
[ "$n" = 0 ] && ok "no non-finite marks (red) on a healthy run" || bad "$n red pixels on a healthy run"
n=$(check count healthy/stats.png 68 1 84 12 healthy.out layers)
[ "${n:-0}" -gt 150 ] && ok "layer 0's colour (viridis 0) draws its curve in the layers panel ($n px)" ||
  bad "layer 0 curve colour: $n px"
n=$(check count healthy/stats.png 31 119 180 12 healthy.out norms)
[ "${n:-0}" -gt 100 ] && ok "global grad_norm curve drawn ($n px)" || bad "grad_norm curve: $n px"
grep -q "panel update .* y=log:" healthy.out && grep -q "panel saturation .* y=linear:-0.02:1.02" healthy.out &&
  ok "update ratio on a log axis, saturation on 0..1" || bad "axes: $(grep 'update\|saturation' healthy.out)"
want=$(check nonzero healthy/stats.h5) got=$(check hist-cells healthy/stats.png healthy.out)
[ -n "$want" ] && [ "$want" = "$got" ] && grep -q "panel hist .* step=300 " healthy.out &&
  ok "heatmap of the last histogram (step 300): $got coloured cells = $want non-zero bins" ||
  bad "heatmap cells $got vs non-zero bins $want ($(grep 'panel hist' healthy.out))"

# vanishing: the first layer's line lies far below the last layer's
"$plot" vanish -v -o vanish.png >vanish.out 2>&1 || bad "vanish plot: $(cat vanish.out)"
g=$(check layer-gap vanish.png vanish.out layers 13)
$py -c "import sys; sys.exit(0 if $g > 0.5 else 1)" &&
  ok "vanishing: layer 0 drawn ${g} of the panel height below the last layer" || bad "vanishing gap $g"

# NaN steps: red marks, no crash on NaN/Inf/0 on log axes
"$plot" nan -v -o nan.png >nan.out 2>nan.err && ok "plots a run with NaN/Inf gradients" || bad "nan plot: $(cat nan.err)"
n=$(check count nan.png 214 39 40 20)
[ "${n:-0}" -gt 500 ] && ok "non-finite steps marked in red ($n px)" || bad "red marks: $n px"

# ---- synthetic files with known content ------------------------------------
$py gen.py syn.h5 synth || bad "gen synth"
"$plot" syn.h5 -v -o syn.png >syn.out 2>syn.err && ok "plain (non-SWMR) file with NaN/Inf/0/-1 on log axes, UTF-8 names" ||
  bad "synthetic plot: $(cat syn.err)"
grep -q "panel layers .* y=log:-7:-1" syn.out && ok "log axis of the layers panel spans the 6 decades 1e-7..1e-1" ||
  bad "layers axis: $(grep 'panel layers' syn.out)"
e=$(check layer-extent syn.png syn.out layers 3 0)
$py -c "import sys; sys.exit(0 if $e > 0.85 else 1)" && ok "a series over 6 decades uses $e of the log panel's height" ||
  bad "6-decade series uses only $e of the height"
m=$(check red-marks syn.png syn.out layers)
[ "$m" = 5 ] && ok "5 non-finite steps -> 5 red marks" || bad "red marks: $m, want 5"
grep -q "panel loss .* y=log:" syn.out && ok "loss over 4 decades: log axis (auto)" || bad "loss axis: $(grep 'panel loss' syn.out)"
"$plot" syn.h5 -v --loss-scale linear -o syn-lin.png >syn-lin.out 2>&1 && grep -q "panel loss .* y=linear:" syn-lin.out &&
  ok "--loss-scale linear" || bad "--loss-scale linear: $(cat syn-lin.out)"
want=$(check nonzero syn.h5) got=$(check hist-cells syn.png syn.out)
[ "$want" = 23 ] && [ "$got" = 23 ] && ok "heatmap: 23 non-zero bins -> 23 coloured cells" || bad "heatmap $got, want 23"
n=$(check count syn.png 253 231 37 6 syn.out hist)
[ "${n:-0}" -gt 20 ] && ok "the largest count is the top of viridis (yellow)" || bad "no yellow max cell ($n px)"
"$plot" syn.h5 --what hist --hist-step 1 -v -o h1.png >h1.out 2>&1 && [ "$(check hist-cells h1.png h1.out)" = 7 ] &&
  ok "--hist-step 1 shows that histogram (7 cells)" || bad "--hist-step 1: $(cat h1.out)"
"$plot" syn.h5 --steps 50:150 -v -o s.png >s.out 2>&1 && [ "$(rows_of s.out)" = 101 ] &&
  grep -q "panel hist .* step=100 " s.out && [ "$(check hist-cells s.png s.out)" = 15 ] &&
  ok "--steps 50:150: 101 rows, the histogram of step 100 (the last inside)" || bad "--steps: $(cat s.out)"
"$plot" syn.h5 --steps 120: -o s2.png >s2.out 2>&1 && [ "$(rows_of s2.out)" = 81 ] && ok "--steps 120: (open end)" ||
  bad "--steps 120: $(cat s2.out)"
for w in overview layers update saturation hist; do
  "$plot" syn.h5 --what $w -q || bad "--what $w"
  sz=$(check size syn-$w.png 2>&1)
  want="1600 700"; [ $w = overview ] && want="1600 800"
  [ "$sz" = "$want" ] || bad "--what $w: default syn-$w.png $want, got $sz"
done
ok "--what overview|layers|update|saturation|hist: one panel each, default names and sizes"
"$plot" syn.h5 --what layers --width 900 --height 500 --title "my title" -o small.png -q &&
  [ "$(check size small.png)" = "900 500" ] && ok "--width/--height/--title" || bad "--width/--height"
"$plot" syn.h5 -o - -q >stdout.png && [ "$(check size stdout.png)" = "1600 1800" ] && ok "-o - writes the PNG to stdout" ||
  bad "-o -"
"$plot" syn.h5 -q -o syn.png && [ -z "$(ls | grep 'tmp-')" ] && ok "rewrites an existing PNG, no temp file left" ||
  bad "rewrite/temp files: $(ls)"
$py gen.py nolayers.h5 nolayers
"$plot" nolayers.h5 --what overview -q -o nl.png && ok "--what overview needs no /layers" || bad "overview without /layers"

# ---- a run that is still training (SWMR) ------------------------------------
timeout 120 "$bin/gradguard" train --data blobs.h5 --layers 20,16,16,5 --loss softmax_ce --batch 16 \
  --steps 3000000 --ckpt-every 100000000 --run-dir live -q --threads 1 >live.log 2>&1 &
tpid=$!
for i in $(seq 100); do "$plot" live -o live1.png >live1.out 2>/dev/null && break; sleep 0.2; done
sleep 2.5
"$plot" live -o live2.png >live2.out 2>live2.err
running=0; kill -0 "$tpid" 2>/dev/null && running=1
r1=$(rows_of live1.out) r2=$(rows_of live2.out)
[ "$running" = 1 ] && [ "${r1:-0}" -gt 0 ] && [ "${r2:-0}" -gt "${r1:-0}" ] &&
  ok "plots a live run (SWMR): $r1 then $r2 rows while the trainer runs" ||
  bad "live run: running=$running rows $r1 -> $r2 ($(cat live2.err))"
kill -TERM "$tpid" 2>/dev/null; wait "$tpid" 2>/dev/null

# ---- a large file ------------------------------------------------------------
$py gen.py big.h5 big || bad "gen big"
t0=$(date +%s.%N)
"$plot" big.h5 -q -o big.png || bad "big plot"
t=$($py -c "print('%.2f' % ($(date +%s.%N) - $t0))")
$py -c "import sys; sys.exit(0 if $t < 5 else 1)" && ok "100000 rows x 10 layers plotted in ${t} s" || bad "100000 rows took ${t} s"
r=$(check notblank big.png) && ok "large plot not blank ($r)" || bad "large plot blank: $r"

# ---- errors: one line on stderr, the contract's exit codes -------------------
expect() { # CODE WHAT -- ARGS...: gg-plot ARGS exits CODE with one line on stderr
  local code=$1 what=$2; shift 3
  "$plot" "$@" >/dev/null 2>err.txt; local rc=$?
  if [ "$rc" = "$code" ] && one_line_err err.txt; then ok "$what -> $code: $(cat err.txt)"
  else bad "$what: exit $rc (want $code): $(cat err.txt)"; fi
}
expect 64 "no PATH" --
expect 64 "unknown flag" -- syn.h5 --colour red
expect 64 "--what bogus" -- syn.h5 --what bogus
expect 64 "--width 50" -- syn.h5 --width 50
expect 64 "--steps 5" -- syn.h5 --steps 5
expect 64 "--steps 9:3" -- syn.h5 --steps 9:3
expect 64 "--steps outside the file" -- syn.h5 --steps 500:600 -o x.png
expect 64 "--hist-step without a histogram" -- syn.h5 --hist-step 7 -o x.png
expect 64 "-o without a value" -- syn.h5 -o
expect 64 "two PATHs" -- syn.h5 syn.h5
expect 66 "missing file" -- nothere.h5
mkdir -p emptyrun
expect 66 "run folder without stats.h5" -- emptyrun
echo "not hdf5" >text.h5
expect 65 "not an HDF5 file" -- text.h5 -o x.png
expect 65 "a dataset file, not a stats file" -- blobs.h5 -o x.png
$py gen.py empty.h5 empty
expect 65 "0 rows" -- empty.h5 -o x.png
$py gen.py short.h5 short
expect 65 "layers/grad_norm shorter than /step" -- short.h5 -o x.png
$py gen.py mismatch.h5 mismatch
expect 65 "layer count differs between datasets" -- mismatch.h5 -o x.png
expect 65 "--what layers without /layers" -- nolayers.h5 --what layers -o x.png
expect 73 "output folder missing" -- syn.h5 -o no/such/dir/x.png
expect 73 "output is a folder" -- syn.h5 -o emptyrun
[ -w /dev/full ] && expect 74 "output device full" -- syn.h5 -o /dev/full
[ -z "$(ls | grep 'tmp-')" ] && ok "no temp files left by failed writes" || bad "temp files left: $(ls | grep tmp-)"
"$plot" --help >help.txt 2>&1 && grep -q -- "--what" help.txt && ok "--help exits 0" || bad "--help"

finish
