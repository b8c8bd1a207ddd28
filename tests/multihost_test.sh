#!/usr/bin/env bash
# gradguard across several hosts, as on a cluster: 2 emulated hosts gg-h1, gg-h2
# (network namespaces, tools/netns-cluster.sh) with 2 slots each, mpirun on gg-h1
# starting an orted on gg-h2 through an ssh-like agent, ranks talking TCP between
# hosts and shared memory inside one. Checks what only multi-node runs exercise:
#  1. placement: the banner names rank 0's host, BLAS threads per rank = cores of
#     the node / ranks on THAT node (2 per host; then 1 per host), ranks 0,1 run
#     in gg-h1's and 2,3 in gg-h2's network namespace, each maps the dataset
#  2. 4 ranks on 2 hosts agree within 1e-4 with 1 rank, --shard-update on and off
#  3. --deterministic: 4 ranks on 2 hosts bitwise identical to 1 rank (h5diff)
#  4. resume on another host count: 4 ranks on 2 hosts (sharded) to step 12, then
#     --resume auto with 2 ranks on gg-h2 alone to 24: stats.h5 has steps 1..24
#     once each, weights and optimizer state within 1e-4 of a straight run
#  5. rank 3 (on gg-h2) cannot open the data: exit 66 within 10 s, one stderr line
#     naming rank 3 and gg-h2
#  6. a rank on gg-h2 killed with SIGKILL: the job ends within 15 s, non-zero,
#     and no process of the job is left on either host
# Environment variables reach the ranks on gg-h2 only through `mpirun -x NAME`,
# as over ssh. Exits 77 (SKIP) without root or when namespaces cannot be made.
# A cluster that is already up (gg-h1 and gg-h2) is used, with a hostfile of
# our own, and left up; one this test brings up is taken down on exit. ~15 s.
# Usage: multihost_test.sh BUILD_DIR
set -uo pipefail
bin=$(cd "$1" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=tests/testlib.sh
. "$here/tests/testlib.sh" # tmp (cwd), ok, bad, finish, mpiexec, py
cluster="$here/tools/netns-cluster.sh"
skip() { echo "SKIP: $*"; exit 77; }
t_start=$SECONDS

started=0
cleanup() {
  if [ "$started" = 1 ]; then "$cluster" down >/dev/null 2>&1; fi
  # a job that outlived a failure: its ranks name our unique temp dir
  pkill -KILL -f "^[^ ]*gradguard train .*$tmp/" 2>/dev/null
  cd / && rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# ------------------------------------------------------------ the cluster --
[ "$(id -u)" -eq 0 ] || skip "network namespaces need root"
command -v ip >/dev/null || skip "ip not installed (apt-get install iproute2)"
command -v unshare >/dev/null || skip "unshare not installed (apt-get install util-linux)"
command -v h5diff >/dev/null || skip "h5diff not installed (apt-get install hdf5-tools)"
if [ -e /run/netns/gg-h1 ] && [ -e /run/netns/gg-h2 ]; then
  echo "note: using the netns cluster that is already up (left up), hosts gg-h1 and gg-h2"
elif "$cluster" status >/dev/null 2>&1; then
  skip "a netns cluster without gg-h1 and gg-h2 is up: not changing it ($("$cluster" status | head -n 3 | tr '\n' ' '))"
else
  started=1 # from here on: down on exit, also whatever a failed `up` left behind
  GG_NETNS_SLOTS=2 "$cluster" up 2 >up.log 2>&1 || skip "cannot create network namespaces: $(tail -n 1 up.log)"
fi
# our own hostfiles: the test does not depend on the slots of a cluster it found
printf 'gg-h1 slots=2\ngg-h2 slots=2\n' >hosts12
printf 'gg-h2 slots=2\n' >hosts2
export GG_NETNS_HOSTFILE="$tmp/hosts12"
# mrun ARGS...: mpirun on the cluster (mpirun itself on gg-h1); -q: no Open MPI banner
mrun() { timeout 120 "$cluster" mpirun -q "$@"; }
# default BLAS threads with L ranks on a node: the node's cores / L, at most the
# CPUs a rank may run on (ranks are unbound here, so: the CPUs this test may use)
cores=$(getconf _NPROCESSORS_ONLN)
usable=$(env -u OMP_NUM_THREADS -u OMP_THREAD_LIMIT nproc)
want_threads() { local t=$((cores / $1)); [ "$t" -le "$usable" ] || t=$usable; echo $((t < 1 ? 1 : t)); }
half=$(want_threads 2) all=$(want_threads 1)
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b - a}'; }

"$bin/gg-data" synth --kind blobs --n 1000 --d 24 --k 5 --seed 3 -o "$tmp/blobs.h5" >/dev/null || bad "synth"
args=(--data "$tmp/blobs.h5" --layers 24,64,32,5 --activation tanh --loss softmax_ce --optimizer adam
      --lr 3e-3 --batch 64 --seed 5 --clip-norm 0.5 --clip-value 0.05)
last=checkpoints/step-00000024.h5

# CKPT_A CKPT_B [GROUPS]: every tensor of GROUPS (default model) within 1e-4 of
# the largest value of that tensor
rel_close() {
  $py - "$@" <<'PY'
import sys, h5py, numpy as np
a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
groups = sys.argv[3].split(",") if len(sys.argv) > 3 else ["model"]
worst, n = 0.0, 0
def visit(name, x):
    global worst, n
    if isinstance(x, h5py.Dataset):
        u, v = x[()], b[x.name][()]
        worst = max(worst, float(np.abs(u - v).max() / max(np.abs(u).max(), 1e-12))); n += 1
for g in groups:
    a[g].visititems(visit)
print(f"max rel diff {worst:.2e} over {n} tensors")
sys.exit(0 if n > 0 and worst <= 1e-4 else 1)
PY
}
same_model() { h5diff "$1" "$2" /model /model >/dev/null && h5diff "$1" "$2" /optimizer /optimizer >/dev/null; }

# ------------------------------------------- 1. ranks really are on 2 hosts --
mrun -n 4 "$bin/gradguard" train "${args[@]}" --steps 24 --shard-update off -v --run-dir "$tmp/m4off" >m4off.log 2>&1 ||
  bad "4 ranks on 2 hosts, --shard-update off: exit $? ($(tail -n 1 m4off.log))"
banner=$(grep -m1 '^gradguard .* ranks\? on ' m4off.log)
thr=$(sed -n 's/^threads per rank: \([0-9]*\);.*/\1/p' m4off.log)
# (with < 4 cores, 2 and 4 ranks on a node both give 1 thread: the 1-per-host run
# below and the placement check of part 6 tell them apart)
if [[ $banner == *": 4 ranks on 2 hosts (gg-h1 x2, gg-h2 x2),"* ]] && [ "$thr" = "$half" ]; then
  ok "4 ranks, 2 per host: banner '${banner%, resolved*}', threads per rank $thr (= $cores cores / 2 ranks on gg-h1, at most $usable usable)"
else bad "4 ranks, 2 per host: banner '$banner', threads per rank '$thr' (want gg-h1 and $half)"; fi
# one rank per host: the node-local count is 1, so a rank gets all the node's
# cores (with every rank counted as local it would get half of them)
mrun -n 2 --map-by node "$bin/gradguard" train "${args[@]}" --steps 4 -v --run-dir "$tmp/n2" >n2.log 2>&1 ||
  bad "2 ranks, 1 per host: exit $? ($(tail -n 1 n2.log))"
thr=$(sed -n 's/^threads per rank: \([0-9]*\);.*/\1/p' n2.log)
[ "$all" -ge 2 ] || echo "note: 1 usable core: threads per rank is 1 either way"
if [ "$thr" = "$all" ]; then ok "2 ranks, 1 per host: threads per rank $thr (= $cores cores / 1 rank on gg-h1, at most $usable usable)"
else bad "2 ranks, 1 per host: threads per rank '$thr', want $all"; fi

# ----------------------------------------- 2. 4 ranks on 2 hosts vs 1 rank --
timeout 120 "$mpiexec" -q -n 1 "$bin/gradguard" train "${args[@]}" --steps 24 -q --run-dir "$tmp/f1" ||
  bad "1-rank run: exit $?"
mrun -n 4 "$bin/gradguard" train "${args[@]}" --steps 24 --shard-update on -v --run-dir "$tmp/m4on" >m4on.log 2>&1 ||
  bad "4 ranks on 2 hosts, --shard-update on: exit $? ($(tail -n 1 m4on.log))"
grep -q "optimizer update sharded over the ranks" m4on.log || bad "--shard-update on: the update was not sharded"
grep -q "optimizer update on every rank" m4off.log || bad "--shard-update off: the update was sharded"
for s in off on; do
  if r=$(rel_close "f1/$last" "m4$s/$last" model,optimizer); then
    ok "--shard-update $s: 4 ranks on 2 hosts vs 1 rank within 1e-4 (model and optimizer, $r)"
  else bad "--shard-update $s: 4 ranks on 2 hosts vs 1 rank: $r"; fi
done

# ------------------------------------------------- 3. --deterministic ----
timeout 120 "$mpiexec" -q -n 1 "$bin/gradguard" train "${args[@]}" --steps 24 --deterministic -q --run-dir "$tmp/d1" ||
  bad "deterministic 1-rank run: exit $?"
mrun -n 4 "$bin/gradguard" train "${args[@]}" --steps 24 --deterministic -q --run-dir "$tmp/d4" ||
  bad "deterministic 4-rank run: exit $?"
if same_model "d1/$last" "d4/$last"; then
  ok "--deterministic: 4 ranks on 2 hosts bitwise identical to 1 rank (h5diff /model /optimizer)"
else bad "--deterministic: 4 ranks on 2 hosts differ from 1 rank: $(h5diff "d1/$last" "d4/$last" /model /model 2>&1 | tail -n 1)"; fi

# ---------------------- 4. resume with another number of hosts (sharded) --
mrun -n 4 "$bin/gradguard" train "${args[@]}" --steps 12 --shard-update on -q --run-dir "$tmp/rs" ||
  bad "resume, first part (4 ranks on 2 hosts): exit $?"
# second part: mpirun on gg-h1, both ranks on gg-h2 (rank 0 is on another host now)
GG_NETNS_HOSTFILE="$tmp/hosts2" mrun -n 2 "$bin/gradguard" train "${args[@]}" --steps 24 --shard-update on \
  --resume auto --run-dir "$tmp/rs" >rs.log 2>&1 || bad "resume, second part (2 ranks on gg-h2): exit $? ($(tail -n 1 rs.log))"
if grep -q "^gradguard .*: 2 ranks on gg-h2," rs.log && grep -q "resuming from .*step-00000012.h5" rs.log &&
   steps=$($py - rs/stats.h5 <<'PY'
import sys, h5py, numpy as np
s = h5py.File(sys.argv[1], "r")["step"][()]
print(f"{len(s)} steps recorded, {s.min() if len(s) else '-'}..{s.max() if len(s) else '-'}")
sys.exit(0 if np.array_equal(np.sort(s), np.arange(1, 25)) and np.all(np.diff(s) > 0) else 1)
PY
) && r=$(rel_close "f1/$last" "rs/$last" model,optimizer); then
  ok "resume 4 ranks/2 hosts -> 2 ranks/gg-h2 at step 12: stats.h5 $steps exactly once; vs straight 1-rank run $r"
else bad "resume on another host count: ${steps:-stats.h5 steps wrong} ${r:-} $(grep -m1 resuming rs.log)"; fi

# ------------------------------------------------- 5. one rank fails -----
start=$(date +%s.%N)
GG_INJECT_FAULT=data:3 mrun -x GG_INJECT_FAULT -n 4 "$bin/gradguard" train "${args[@]}" --steps 24 -q \
  --run-dir "$tmp/e4" >e4.out 2>e4.err
rc=$?
el=$(elapsed "$start")
lines=$(grep -c . e4.err)
if [ $rc -eq 66 ] && [ "$lines" -eq 1 ] && grep -q "rank 3@gg-h2:" e4.err && awk -v e="$el" 'BEGIN{exit !(e < 10)}'; then
  ok "rank 3 on gg-h2 cannot open the data: exit 66 after ${el}s, one line: $(cat e4.err)"
else bad "rank 3 on gg-h2 bad input: rc=$rc lines=$lines time=${el}s: $(head -c 600 e4.err)"; fi

# ------------------------------- 6. a rank on gg-h2 killed mid-run -------
"$bin/gg-data" synth --kind blobs --n 4000 --d 256 --k 10 -o "$tmp/big.h5" >/dev/null || bad "synth big"
# descendants ROOT: ROOT and every process below it (from /proc; procps not needed)
descendants() {
  local f st
  for f in /proc/[0-9]*/stat; do
    read -r st 2>/dev/null <"$f" || continue # "PID (COMM) STATE PPID ..."
    st=${st##*) }
    f=${f#/proc/}
    echo "${f%/stat} ${st#* }"                  # "PID PPID ..."
  done | awk -v root="$1" '{ parent[$1] = $2 }
    END { want[root] = 1; do { n = 0; for (p in parent) if (!(p in want) && (parent[p] in want)) { want[p] = 1; n++ } } while (n)
          for (p in want) print p }'
}
mrun -n 4 "$bin/gradguard" train --data "$tmp/big.h5" --layers 256,512,10 --loss softmax_ce --batch 64 \
  --epochs 1000 --run-dir "$tmp/k4" >k4.out 2>k4.err &
job=$!
# rank (OMPI_COMM_WORLD_RANK) and host of each of our ranks, once all 4 run
declare -A host_of=() pid_of=()
for _ in $(seq 1 50); do
  host_of=() pid_of=()
  for h in gg-h1 gg-h2; do
    for p in $(ip netns pids $h 2>/dev/null); do
      tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q "^$bin/gradguard train --data $tmp/big.h5" || continue
      r=$(tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | sed -n 's/^OMPI_COMM_WORLD_RANK=//p')
      [ -n "$r" ] && host_of[$r]=$h pid_of[$r]=$p
    done
  done
  [ ${#host_of[@]} -eq 4 ] && grep -q "^epoch 1/" k4.out && break
  sleep 0.2
done
mapped=0
for r in 0 1 2 3; do grep -q " r--s .*$tmp/big.h5\$" "/proc/${pid_of[$r]:-0}/maps" 2>/dev/null && mapped=$((mapped + 1)); done
if [ "${host_of[0]:-}${host_of[1]:-}${host_of[2]:-}${host_of[3]:-}" = gg-h1gg-h1gg-h2gg-h2 ] && [ $mapped -eq 4 ]; then
  ok "ranks 0,1 run in gg-h1's network namespace, 2,3 in gg-h2's; all 4 map the dataset read-only shared"
else bad "placement: ranks 0-3 on '${host_of[0]:-} ${host_of[1]:-} ${host_of[2]:-} ${host_of[3]:-}', $mapped of 4 map the dataset"; fi
during=$(descendants $job) # timeout, mpirun, the agents' sh, the orted on gg-h2, ranks
victim=${pid_of[3]:-}
start=$(date +%s.%N)
if [ -n "$victim" ]; then kill -9 "$victim"
else pkill -KILL -f "^$bin/gradguard train --data $tmp/big.h5" 2>/dev/null; fi # no rank 3 found: end the job
wait $job
rc=$?
el=$(elapsed "$start")
# what the job started must be gone, and (in a cluster of our own) every process on
# gg-h1/gg-h2; zombies of the agent's sh may linger briefly until PID 1 reaps them
left=""
for _ in $(seq 1 25); do
  left=""
  for p in $during $([ $started = 1 ] && ip netns pids gg-h1 && ip netns pids gg-h2); do
    st=$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null) || continue
    [ "$st" = Z ] || left="$left $p($(tr '\0' ' ' <"/proc/$p/cmdline" | cut -c1-40))"
  done
  [ -z "$left" ] && break
  sleep 0.2
done
if [ -n "$victim" ] && [ "${host_of[3]:-}" = gg-h2 ] && [ $rc -ne 0 ] && [ $rc -ne 124 ] && awk -v e="$el" 'BEGIN{exit !(e < 15)}' && [ -z "$left" ]; then
  ok "rank 3 (pid $victim on gg-h2) killed with -9: job ended after ${el}s (exit $rc), nothing left on gg-h1/gg-h2"
else bad "rank on gg-h2 killed: victim=${victim:-none} on ${host_of[3]:-?} rc=$rc after ${el}s, left:${left:- none}; $(tail -n 2 k4.err)"; fi

echo "multihost: $((SECONDS - t_start)) s"
finish
