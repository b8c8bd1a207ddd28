#!/usr/bin/env bash
# regress.sh — the fuzz_regress test: replay every saved input of every fuzz
# target (tests/fuzz/corpus/<target>/) through its replay program.
# usage: regress.sh CORPUS_DIR TARGET=PROGRAM...
set -euo pipefail
corpus=${1:?usage: regress.sh CORPUS_DIR TARGET=PROGRAM...}
shift
passed=0
failed=0
for pair in "$@"; do
  t=${pair%%=*}
  prog=${pair#*=}
  n=$(find "$corpus/$t" -type f | wc -l)
  if "$prog" "$corpus/$t" 2>"${TMPDIR:-/tmp}/gg-fuzz-regress-$t.$$.log"; then
    echo "fuzz_regress: $t: $n inputs replayed cleanly"
    passed=$((passed + 1))
  else
    echo "FAIL: fuzz_regress: $t: an input crashed (last lines of the log follow)"
    tail -n 40 "${TMPDIR:-/tmp}/gg-fuzz-regress-$t.$$.log"
    failed=$((failed + 1))
  fi
  rm -f "${TMPDIR:-/tmp}/gg-fuzz-regress-$t.$$.log"
done
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
