# testlib.sh — what the end-to-end shell tests share. Source it after
# setting `bin`; it makes a scratch folder (removed on exit), enters it and
# provides ok/bad counting and `finish`, which prints the closing line
# `N passed, N failed` and exits non-zero on any failure.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpiexec="${MPIEXEC:-mpiexec}"
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "PASS $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
finish() {
  echo "$pass passed, $fail failed"
  [ "$fail" -eq 0 ]
  exit
}
