#!/usr/bin/env bash
# Checkpoint write throughput next to a plain `dd` of the same size to the
# same folder (both fsync'ed), and the cost per step of recording the
# statistics (stats.h5 every step) against recording none.
# Usage: bench/ckpt_bench.sh [BUILD_DIR] [REPEATS]   (run by hand, not by CI)
set -euo pipefail
bin=$(cd "${1:-build}" && pwd)
reps="${2:-5}"
work=$(mktemp -d "${TMPDIR:-/tmp}/gg-ckbench.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
median() { sort -g | awk '{a[NR]=$1} END{print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
"$bin/gg-data" synth --kind blobs --n 4096 --d 784 --k 10 -o d.h5 >/dev/null
net=(--data d.h5 --layers 784,1024,1024,10 --loss softmax_ce --batch 256 --threads 1)

echo "checkpoint: 784-1024-1024-10 with Adam state (3 x 1.86 M floats)"
: >ck.txt; : >dd.txt
for r in $(seq "$reps"); do
  rm -rf run
  "$bin/gradguard" train "${net[@]}" --steps 2 --ckpt-every 1 --keep 1 --run-dir run -v >out.txt
  grep '^checkpoint .* MB in' out.txt | tail -1 | sed 's/.*: \([0-9.]*\) MB in \([0-9.]*\) s.*/\1 \2/' >>ck.txt
  mb=$(tail -1 ck.txt | cut -d' ' -f1)
  count=$(awk -v m="$mb" 'BEGIN{printf "%d", m*1e6/1048576 + 1}')
  TIMEFORMAT=%3R
  s=$( { time dd if=/dev/zero of=dd.bin bs=1M count="$count" conv=fsync status=none; } 2>&1 )
  echo "$count $s" >>dd.txt
  rm -f dd.bin
done
mb=$(cut -d' ' -f1 ck.txt | median)
cs=$(cut -d' ' -f2 ck.txt | median)
ds=$(cut -d' ' -f2 dd.txt | median)
dmb=$(awk -v c="$(head -1 dd.txt | cut -d' ' -f1)" 'BEGIN{print c*1048576/1e6}')
printf '%-34s %8s %10s %10s\n' "" "MB" "seconds" "MB/s"
printf '%-34s %8.1f %10.3f %10.0f\n' "gradguard checkpoint (median)" "$mb" "$cs" "$(awk -v a="$mb" -v b="$cs" 'BEGIN{print a/b}')"
printf '%-34s %8.1f %10.3f %10.0f\n' "dd bs=1M conv=fsync (median)" "$dmb" "$ds" "$(awk -v a="$dmb" -v b="$ds" 'BEGIN{print a/b}')"
echo "raw checkpoint runs (MB s): $(tr '\n' ';' <ck.txt)"
echo "raw dd runs (MiB-blocks s): $(tr '\n' ';' <dd.txt)"

echo
echo "statistics every step vs none (ms/step, 60 steps, interleaved, median of $reps)"
: >on.txt; : >off.txt
for r in $(seq "$reps"); do
  "$bin/gradguard" train "${net[@]}" --steps 60 --run-dir on --stats-every 1 --hist-every 100 | sed -n 's/.*(\([0-9.]*\) ms\/step.*/\1/p' >>on.txt
  "$bin/gradguard" train "${net[@]}" --steps 60 --run-dir off --stats-every 1000000 --hist-every 1000000 | sed -n 's/.*(\([0-9.]*\) ms\/step.*/\1/p' >>off.txt
done
on=$(median <on.txt); off=$(median <off.txt)
printf 'stats on %.3f ms/step, off %.3f ms/step: overhead %.3f ms/step (%.2f%%)\n' "$on" "$off" \
  "$(awk -v a="$on" -v b="$off" 'BEGIN{print a-b}')" "$(awk -v a="$on" -v b="$off" 'BEGIN{print 100*(a-b)/b}')"
echo "raw on: $(tr '\n' ' ' <on.txt)"
echo "raw off: $(tr '\n' ' ' <off.txt)"
