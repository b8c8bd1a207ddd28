#!/usr/bin/env bash
# jobs/fashion_mnist.sh as a real Slurm batch job on a local single-node
# cluster (tools/local-slurm.sh): a 1-epoch run on 2 tasks (exit 0, 2 ranks,
# test accuracy, checkpoint), then preemption: USR1 to the batch shell mid-run
# -> the ranks checkpoint and exit 75 -> the job requeues itself -> the
# requeued run resumes from that checkpoint and finishes every step, once
# with mpirun starting the ranks and once with srun (GG_LAUNCH=srun). Then
# ranks started by srun itself (PMIx): a good run, a bad input on rank 1,
# a rank killed mid-run.
# Exits 77 (SKIP) without root, Slurm, 2 CPUs or the Fashion-MNIST files.
# A cluster that was already running is used and left running; one this
# test started is stopped at the end (also on failure or interrupt).
# Usage: slurm_test.sh BUILD_DIR
set -uo pipefail
bin=$(cd "$1" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=tests/testlib.sh
. "$here/tests/testlib.sh" # tmp (cwd), ok, bad, finish
slurm="$here/tools/local-slurm.sh"
job="$here/jobs/fashion_mnist.sh"
src="${FASHION_MNIST:-/usr/share/datasets/fashion-mnist}"
skip() { echo "SKIP: $*"; exit 77; }
t_start=$SECONDS

started=0 jobids=""
cleanup() {
  local j
  for j in $jobids; do scancel "$j" 2>/dev/null; done # ours only, if still there
  if [ "$started" = 1 ]; then "$slurm" stop >/dev/null 2>&1; fi
  # after a failure: job processes that escaped Slurm (mpirun and ranks of a
  # dead batch shell) name our unique temp dir on their command line
  pkill -KILL -f "^[^ ]*(mpirun|gradguard) .*$tmp/" 2>/dev/null
  cd / && rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# ------------------------------------------------------------ the cluster --
[ -s "$src/train-images-idx3-ubyte.gz" ] || skip "no Fashion-MNIST in $src (apt-get install dataset-fashion-mnist)"
for b in sbatch scontrol scancel sinfo; do
  command -v $b >/dev/null || skip "$b not installed (apt-get install slurmctld slurmd slurm-client munge)"
done
if "$slurm" status >/dev/null 2>&1; then
  echo "note: using the local Slurm cluster that is already running (left running)"
else
  [ "$(id -u)" -eq 0 ] || skip "starting a local Slurm cluster needs root"
  t0=$SECONDS
  started=1 # from here on: stop on exit, also whatever a failed start left running
  "$slurm" start >start.log 2>&1 || skip "local Slurm cluster did not start: $(tail -n 1 start.log)"
  echo "local Slurm cluster started in $((SECONDS - t0)) s"
fi
cpus=$(sinfo -h -o %c | sort -n | tail -n 1)
[ "${cpus:-0}" -ge 2 ] || skip "the Slurm node has ${cpus:-no} CPUs, 2 tasks need 2"

# JOBID: `scontrol -o show job` as one line ("" once the job has left slurmctld)
jobinfo() { scontrol -o show job "$1" 2>/dev/null || true; }
field() { grep -oE "(^| )$2=[^ ]*" <<<"$1" | head -n 1 | sed 's/^ *[^=]*=//'; } # field INFO NAME
accuracy() { sed -n 's/.* samples, loss [0-9.]*, accuracy \([0-9.]*\)$/\1/p' "$1" | tail -n 1; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN{exit !(a != "" && a + 0 >= b + 0)}'; }
show() { echo "--- $1:"; grep -v -E '^[a-z0-9-]+ = ' "$1" | tail -n "${2:-15}"; echo "---"; }

export GG_BUILD="$bin" GG_DATA="$tmp/data" GG_NP=2 # sbatch passes the environment on

# --------------------------------------------------- 1. a short plain run --
t0=$SECONDS
out1="$tmp/run1.out"
GG_RUN="$tmp/run1" GG_EPOCHS=1 timeout 150 sbatch --wait --parsable --ntasks=2 --output="$out1" "$job" >jid1
rc=$?
el1=$((SECONDS - t0))
jobids=$(cut -d";" -f1 jid1)
if [ $rc -eq 0 ]; then ok "sbatch --wait --ntasks=2 jobs/fashion_mnist.sh (1 epoch): exit 0 in ${el1} s"
else bad "1-epoch job $jobids: exit $rc after ${el1} s"; show "$out1"; fi
if [ $rc -eq 124 ]; then echo "the job did not end within 150 s: giving up"; finish; fi
grep -qE '^gradguard [^ ]+: 2 ranks on ' "$out1" && ok "the job ran 2 ranks" ||
  bad "no '2 ranks' line in the job output"
acc=$(accuracy "$out1")
ge "$acc" 0.80 && ok "final test accuracy $acc >= 0.80 after 1 epoch" || bad "final test accuracy '$acc' < 0.80"
ck=$(sed -n 's/^done after .*; checkpoint \(.*\.h5\)$/\1/p' "$out1" | tail -n 1)
[ -n "$ck" ] && [ -s "$ck" ] && ok "checkpoint ${ck#"$tmp"/}" || bad "no checkpoint: '${ck}' $(ls "$tmp/run1/checkpoints" 2>&1)"

# -------------------------------------- 2. preempted, requeued, resumed --
# once with the ranks started by mpirun (the script's default), once by srun
preempt() {
  local launch=$1 t0 out2 epochs jid st end restarts n ck2 total info state exitcode el2 runs acc
  t0=$SECONDS
  out2="$tmp/run2-$launch.out"
  epochs=3
  jid=$(GG_LAUNCH=$launch GG_RUN="$tmp/run2-$launch" GG_EPOCHS=$epochs sbatch --parsable --ntasks=2 --output="$out2" "$job")
  jid=${jid%%;*}
  [ -n "$jid" ] || bad "[$launch] sbatch of the preemption job failed"
  jobids="$jobids $jid"
  # training has started: an epoch or progress line (the ranks' signal handlers are set)
  end=$((SECONDS + 120))
  until grep -qE '^(epoch|step) [0-9]+/' "$out2" 2>/dev/null; do
    st=$(field "$(jobinfo "$jid")" JobState)
    case "$st" in PENDING | RUNNING | CONFIGURING | "") ;; *) break ;; esac
    [ $SECONDS -ge $end ] && break
    sleep 0.2
  done
  if grep -qE '^(epoch|step) [0-9]+/' "$out2" 2>/dev/null; then
    echo "job $jid training after $((SECONDS - t0)) s: scancel --batch --signal=USR1 $jid"
    scancel --batch --signal=USR1 "$jid" || bad "[$launch] scancel --signal=USR1 failed"
  else
    bad "[$launch] job $jid: no training progress within 120 s (state $(field "$(jobinfo "$jid")" JobState))"; show "$out2"
  fi

  # wait for the requeue: the job is back to PENDING with Restarts=1, and the
  # interrupted run's checkpoint must be on disk now (the resumed run may rotate it away)
  end=$((SECONDS + 60)) restarts=0 n=""
  while [ $SECONDS -lt $end ]; do
    info=$(jobinfo "$jid")
    restarts=$(field "$info" Restarts)
    [ "${restarts:-0}" -ge 1 ] && break
    case "$(field "$info" JobState)" in PENDING | RUNNING | CONFIGURING | COMPLETING | REQUEUED) ;; *) break ;; esac
    sleep 0.2
  done
  n=$(sed -n 's/^stopped by a signal (resume with --resume auto) after \([0-9]*\) steps.*/\1/p' "$out2" | tail -n 1)
  ck2=$(printf '%s/run2-%s/checkpoints/step-%08d.h5' "$tmp" "$launch" "${n:-0}")
  total=$(sed -n 's/^model: .* samples, \([0-9]*\) steps of .*/\1/p' "$out2" | head -n 1)
  total=${total:-0}
  if [ -n "$n" ] && [ "$n" -gt 0 ] && [ "$n" -lt "$total" ] && [ -s "$ck2" ]; then
    ok "[$launch] USR1 stopped the ranks at step $n of $total with checkpoint ${ck2#"$tmp"/}"
  else
    bad "[$launch] no checkpoint at the interruption (step '${n}' of $total, $(ls "$tmp/run2-$launch/checkpoints" 2>&1 | tr '\n' ' '))"
  fi
  if [ "${restarts:-0}" -ge 1 ] && grep -q "requeueing job $jid to resume" "$out2"; then
    ok "[$launch] job $jid requeued itself (scontrol: Restarts=$restarts, $(field "$info" JobState)) $((SECONDS - t0)) s after submit"
  else
    bad "[$launch] job $jid not requeued (Restarts='${restarts}', state $(field "$info" JobState))"; show "$out2"
  fi

  # wait for the end; a finished job leaves scontrol MinJobAge s later: poll fast
  end=$((SECONDS + 240)) state="" exitcode="" info=""
  while [ $SECONDS -lt $end ]; do
    info=$(jobinfo "$jid")
    [ -z "$info" ] && break
    state=$(field "$info" JobState) exitcode=$(field "$info" ExitCode) restarts=$(field "$info" Restarts)
    case "$state" in PENDING | RUNNING | CONFIGURING | COMPLETING | REQUEUED) ;; *) break ;; esac
    sleep 0.3
  done
  el2=$((SECONDS - t0))
  if [ "$state" = COMPLETED ] && [ "$exitcode" = 0:0 ] && [ "$restarts" = 1 ]; then
    ok "[$launch] the requeued job completed: JobState=$state ExitCode=$exitcode Restarts=$restarts, ${el2} s in all"
  else
    bad "[$launch] requeued job: JobState='$state' ExitCode='$exitcode' Restarts='$restarts' after ${el2} s"; show "$out2" 25
  fi
  runs=$(grep -cE '^gradguard [^ ]+: 2 ranks on ' "$out2")
  [ "$runs" -eq 2 ] && ok "[$launch] the output file holds both runs (2 ranks each, appended)" ||
    bad "[$launch] the output file holds $runs runs of 2 ranks, not 2 (interrupted + resumed)"
  grep -qF "resuming from $ck2 (step $n)" "$out2" && ok "[$launch] the requeued run resumed from ${ck2#"$tmp"/} (step $n)" ||
    bad "[$launch] no 'resuming from ${ck2} (step $n)': $(grep -i resum "$out2")"
  grep -qE "^done after $total steps \($((total - ${n:-0})) in this run\)" "$out2" &&
    ok "[$launch] it finished all $total steps ($((total - ${n:-0})) after the resume)" ||
    bad "[$launch] not finished: $(grep -E '^done|^stopped' "$out2")"
  acc=$(accuracy "$out2")
  ge "$acc" 0.80 && ok "[$launch] final test accuracy after the resume $acc >= 0.80" || bad "[$launch] accuracy after the resume '$acc'"
}
preempt mpirun
if srun --mpi=list 2>&1 | grep -qw pmix; then preempt srun
else echo "note: srun has no pmix MPI plugin here: the srun preemption run is skipped"; fi

# ------------------------------- 3. srun: ranks launched by Slurm itself --
# What a cluster user types inside an allocation: `srun gradguard train`,
# the ranks wired up by Slurm's PMIx plugin (no mpirun). A good run, one rank
# failing alone, one rank killed: the step must end, never hang.
if srun --mpi=list 2>&1 | grep -qw pmix; then
  "$bin/gg-data" synth --kind seed -o "$tmp/seed.h5" >/dev/null || bad "gg-data synth --kind seed"
  sargs=(--data "$tmp/seed.h5" --layers 100,10,5,1 --loss bce --batch 32)
  t0=$SECONDS
  timeout 120 srun --mpi=pmix -n 2 "$bin/gradguard" train "${sargs[@]}" --epochs 2 \
    --run-dir "$tmp/srun1" >srun1.out 2>srun1.err
  rc=$?
  if [ $rc -eq 0 ] && grep -qE '^gradguard [^ ]+: 2 ranks on ' srun1.out &&
    grep -qE '^done after 62 steps' srun1.out; then
    ok "srun --mpi=pmix -n 2 gradguard train: 2 ranks, 62 steps, exit 0 in $((SECONDS - t0)) s"
  else bad "srun run: exit $rc"; show srun1.out; cat srun1.err; fi

  start=$(date +%s.%N)
  GG_INJECT_FAULT=data:1 timeout 60 srun --mpi=pmix -n 2 "$bin/gradguard" train "${sargs[@]}" \
    --run-dir "$tmp/srun2" >srun2.out 2>srun2.err
  rc=$?
  el=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b - a}')
  ours=$(grep -c '^gradguard' srun2.err) # srun adds lines of its own ("srun: error: ...")
  if [ $rc -eq 66 ] && [ "$ours" -eq 1 ] && grep -q '^gradguard: rank 1' srun2.err &&
    awk -v e="$el" 'BEGIN{exit !(e < 10)}'; then
    ok "srun, rank 1 given a bad input: exit 66 in ${el} s, one line: $(grep '^gradguard' srun2.err)"
  else bad "srun, rank 1 bad input: exit $rc, $ours gradguard lines, ${el} s: $(cat srun2.err)"; fi

  "$bin/gg-data" synth --kind blobs --n 20000 --d 256 --k 10 -o "$tmp/big.h5" >/dev/null
  start=$(date +%s.%N)
  timeout 90 srun --mpi=pmix -n 2 "$bin/gradguard" train --data "$tmp/big.h5" --layers 256,512,10 \
    --loss softmax_ce --batch 64 --epochs 50 --run-dir "$tmp/srun3" -q >/dev/null 2>srun3.err &
  sjob=$!
  end=$((SECONDS + 30))
  until [ "$(pgrep -c -f "^$bin/gradguard train .*$tmp/srun3")" -ge 2 ] || [ $SECONDS -ge $end ]; do sleep 0.2; done
  sleep 2 # inside the training loop
  pkill -KILL -n -f "^$bin/gradguard train .*$tmp/srun3"
  killed=$(date +%s.%N)
  wait $sjob
  rc=$?
  el=$(awk -v a="$killed" -v b="$(date +%s.%N)" 'BEGIN{printf "%.2f", b - a}')
  if [ $rc -ne 0 ] && [ $rc -ne 124 ] && awk -v e="$el" 'BEGIN{exit !(e < 15)}' &&
    [ -z "$(pgrep -f "^$bin/gradguard train .*$tmp/srun3")" ]; then
    ok "srun, a rank killed with -9: the step ended (exit $rc) ${el} s later"
  else bad "srun, killed rank: exit $rc after ${el} s: $(tail -n 3 srun3.err)"; fi
else
  echo "note: srun has no pmix MPI plugin here ($(srun --mpi=list 2>&1 | tr '\n' ' ')): srun part skipped"
fi

# -------------------------------------------------------------- teardown --
jobids=""
if [ "$started" = 1 ]; then
  t0=$SECONDS
  "$slurm" stop >stop.log 2>&1
  "$slurm" status >/dev/null 2>&1
  [ $? -eq 3 ] && ok "local cluster stopped in $((SECONDS - t0)) s (status: stopped)" ||
    bad "cluster still running after stop: $(cat stop.log)"
  started=0
fi
end=$((SECONDS + 10)) # Slurm may call a job done while mpirun still exits
while left=$(pgrep -f "$tmp/" | tr '\n' ' ') && [ -n "$left" ] && [ $SECONDS -lt $end ]; do sleep 0.5; done
[ -z "$left" ] && ok "no job processes left" || bad "job processes left: $left"
echo "slurm test: $((SECONDS - t_start)) s"
finish
