#!/usr/bin/env bash
# test_gg_data.sh — end-to-end checks of the gg-data program: synth, info,
# import-idx (gzip'd and raw, plus truncated, mismatched and swapped files),
# import-csv, and the exit codes and one-line errors of the contract.
# usage: test_gg_data.sh PATH/TO/gg-data
set -euo pipefail

G=$(realpath "${1:?usage: test_gg_data.sh PATH/TO/gg-data}")
tmp=$(mktemp -d "${TMPDIR:-/tmp}/gg-test-gg-data-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
failures=0

fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

# expect CODE PATTERN CMD...: CMD exits with CODE; on failure stderr is ONE
# line "gg-data: ..." matching PATTERN (grep -E), on success stdout matches.
expect() {
  local code=$1 pattern=$2 rc=0
  shift 2
  "$@" >out.txt 2>err.txt || rc=$?
  if [[ $rc -ne $code ]]; then
    fail "$* exited $rc, expected $code; stderr: $(cat err.txt)"
    return 0
  fi
  if [[ $code -ne 0 ]]; then
    if [[ $(wc -l <err.txt) -ne 1 ]] || ! grep -q '^gg-data: ' err.txt; then
      fail "$*: stderr is not one 'gg-data: ' line: $(cat err.txt)"
    elif ! grep -Eq -- "$pattern" err.txt; then
      fail "$*: stderr '$(cat err.txt)' lacks /$pattern/"
    fi
  elif ! grep -Eq -- "$pattern" out.txt; then
    fail "$*: stdout '$(cat out.txt)' lacks /$pattern/"
  fi
}

# ---- synth + info -----------------------------------------------------------
expect 0 'wrote seed\.h5: 1000 samples .* 100 features' "$G" synth --kind seed -o seed.h5
expect 0 '"samples": 1000, "features": 100' "$G" info seed.h5 --json
expect 0 '"y_type": "float32", "y_width": 1, "y_min": [0-9.e-]+, "y_max": 0\.9' "$G" info seed.h5 --json
expect 0 'samples +1000' "$G" info seed.h5
# Deterministic from --seed: byte-identical files; another seed differs.
"$G" synth --kind seed -o seed2.h5 >/dev/null
cmp -s seed.h5 seed2.h5 || fail "synth --kind seed is not reproducible"
"$G" synth --kind seed --seed 1 -o seed3.h5 >/dev/null
cmp -s seed.h5 seed3.h5 && fail "synth --seed 1 gives the same file as --seed 0"
expect 0 '200 samples .* 2 features, 4 classes' "$G" synth --kind blobs --k 4 --n 200 -o blobs.h5
expect 0 '"y_type": "int32", "y_width": 1, "classes": 4, "class_counts": \[' "$G" info blobs.h5 --json
expect 0 '"y_width": 3' sh -c "'$G' synth --kind regression --k 3 -o reg.h5 >/dev/null && '$G' info reg.h5 --json"
expect 0 '"y_min": 0, "y_max": 1' sh -c "'$G' synth --kind binary --d 4 -o bin.h5 >/dev/null && '$G' info bin.h5 --json"
expect 64 "--kind 'nope'" "$G" synth --kind nope -o x.h5
expect 64 "unknown option '--frobnicate'" "$G" synth --kind seed -o x.h5 --frobnicate
expect 64 "--n '0'" "$G" synth --kind seed --n 0 -o x.h5
expect 73 'nodir/x\.h5: cannot create' "$G" synth --kind seed -o nodir/x.h5
expect 0 'usage: gg-data synth' "$G" synth --help

# ---- import-idx -------------------------------------------------------------
# 3 images of 2x3 pixels and their labels 2, 0, 1, in IDX format.
{
  printf '\x00\x00\x08\x03\x00\x00\x00\x03\x00\x00\x00\x02\x00\x00\x00\x03'
  printf '\x00\xff\x10\x20\x30\x40'
  printf '\x01\x02\x03\x04\x05\x06'
  printf '\x07\x08\x09\x0a\x0b\x0c'
} >img.idx
printf '\x00\x00\x08\x01\x00\x00\x00\x03\x02\x00\x01' >lab.idx
gzip -kn img.idx
gzip -kn lab.idx
expect 0 'wrote m\.h5: 3 samples .* 6 features, 3 classes' \
  "$G" import-idx --images img.idx.gz --labels lab.idx.gz -o m.h5
expect 0 '"samples": 3, "features": 6, "x_min": 0, "x_max": 1,' "$G" info m.h5 --json
expect 0 '"classes": 3, "class_counts": \[1, 1, 1\]' "$G" info m.h5 --json
# Raw (not gzip'd) IDX gives the same file.
expect 0 'wrote raw\.h5' "$G" import-idx --images img.idx --labels lab.idx -o raw.h5
cmp -s m.h5 raw.h5 || fail "raw and gzip'd IDX give different files"
# Truncated files: a gzip stream cut short, a raw file cut short, a short header.
head -c $(($(stat -c %s img.idx.gz) - 12)) img.idx.gz >cut.idx.gz
expect 65 'cut\.idx\.gz: truncated' "$G" import-idx --images cut.idx.gz --labels lab.idx.gz -o t.h5
head -c 30 img.idx >cut.idx
expect 65 'cut\.idx: truncated: 3 images need 34 bytes but the file ends after 30' \
  "$G" import-idx --images cut.idx --labels lab.idx -o t.h5
head -c 6 lab.idx >cutlab.idx
expect 65 'cutlab\.idx: truncated' "$G" import-idx --images img.idx --labels cutlab.idx -o t.h5
[[ -e t.h5 ]] && fail "a failed import left t.h5 behind"
# Swapped files, count mismatch, trailing garbage, missing input, usage.
expect 65 'lab\.idx\.gz: IDX magic 0x00000801; expected 0x00000803' \
  "$G" import-idx --images lab.idx.gz --labels img.idx.gz -o t.h5
printf '\x00\x00\x08\x01\x00\x00\x00\x02\x02\x00' >lab2.idx
expect 65 'lab2\.idx: 2 labels but img\.idx has 3 images' \
  "$G" import-idx --images img.idx --labels lab2.idx -o t.h5
{ cat lab.idx; printf '\x05'; } >labx.idx
expect 65 'labx\.idx: unexpected data' "$G" import-idx --images img.idx --labels labx.idx -o t.h5
expect 66 'absent\.gz: cannot open: No such file' \
  "$G" import-idx --images absent.gz --labels lab.idx -o t.h5
expect 64 'required' "$G" import-idx --images img.idx -o t.h5
expect 64 "option '-o' needs a value" "$G" import-idx --images img.idx --labels lab.idx -o

# ---- import-csv -------------------------------------------------------------
printf 'a,b,label\n0.5,1,2\n1e-3, -4 ,0\n\n3,4,1\n' >c.csv
expect 0 'wrote c\.h5: 3 samples .* 2 features, 3 classes \(header line skipped\)' \
  "$G" import-csv --input c.csv -o c.h5 --int-labels
expect 0 '"class_counts": \[1, 1, 1\]' "$G" info c.h5 --json
expect 0 '"y_type": "float32", "y_width": 2' \
  sh -c "'$G' import-csv --input c.csv --targets 2 -o c2.h5 >/dev/null && '$G' info c2.h5 --json"
printf '1,2,3\n4,5\n' >ragged.csv
expect 65 'ragged\.csv:2: 2 fields but line 1 has 3' "$G" import-csv --input ragged.csv -o r.h5
printf '1,2,3\n4,x,6\n' >nan.csv
expect 65 "nan\.csv:2: field 2 'x' is not a finite float32 number" "$G" import-csv --input nan.csv -o r.h5
printf '1,2,0.5\n' >frac.csv
expect 65 "frac\.csv:1: field 3 '0\.5' is not a class index" \
  "$G" import-csv --input frac.csv --int-labels -o r.h5
expect 66 'nope\.csv: cannot open' "$G" import-csv --input nope.csv -o r.h5

# ---- info errors ------------------------------------------------------------
expect 66 'c\.csv: not an HDF5 file' "$G" info c.csv
expect 66 'missing\.h5: cannot open' "$G" info missing.h5
expect 64 'expected one FILE' "$G" info
expect 64 "unknown command 'frob'" "$G" frob

if [[ $failures -ne 0 ]]; then
  echo "$failures gg-data check(s) failed" >&2
  exit 1
fi
echo "all gg-data checks passed"
