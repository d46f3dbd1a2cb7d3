#!/usr/bin/env bash
# Measures the daemon's own cost with many policies: N policies (default 1000) at a 1 s
# interval, each reading a `file` query, in dry-run against process targets (so nothing is
# started). Reports CPU (percent of one core), peak RSS, goroutines and decisions over the
# measuring window.
#
#   bash scripts/bench-policies.sh [N] [SECONDS]
#
# Environment:
#   VARIED=1     ten query files whose values change every second (a writer rewrites them),
#                cooldown.down 30s: decisions change, windows and reasons vary
#   HOG=1        load the machine with a CPU hog on core 0 while measuring
#   PROFILE=F    also write a 30 s CPU profile of the daemon to F (go tool pprof F)
#   HEAP=F       also write a heap profile to F at the end (its MemStats: F.txt)
#   BIN=PATH     measure this binary instead of building the tree (back-to-back comparisons)
#   WARM=S       seconds between the start and the window (default 15 + N/400: 40 s at
#                10,000, by when every policy's first decisions, and their fsynced
#                decision-log records, are over)
#
# The line also gives the machine's steal time over the window (the share of its CPU time
# the hypervisor gave to other guests): on a shared host the daemon's own figure rises with
# it, so compare binaries back to back, and mind the steal.
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000}"; secs="${2:-60}"; warm="${WARM:-$((15 + n / 400))}"
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
if [ -n "${BIN:-}" ]; then cp "$BIN" "$work/autoscalerd"; else go build -o "$work/autoscalerd" ./cmd/autoscalerd; fi
files=1; down=5m
if [ "${VARIED:-}" = 1 ]; then files=10; down=30s; fi
for f in $(seq 1 "$files"); do echo $((f * 97)) > "$work/depth$f"; done
{
  echo "listen: 127.0.0.1:0"
  echo "log: { level: warn }"
  echo "defaults: { interval: 1s, dry_run: true, cooldown: { up: 5s, down: $down } }"
  echo "policies:"
  for i in $(seq 1 "$n"); do
    cat <<YAML
  - name: p$i
    target: { process: { command: ["/bin/true", "$i"] } }
    min: 1
    max: 50
    queries:
      depth: { file: { path: $work/depth$(( (i % files) + 1 )) } }
    replicas: ceil(depth / 100)
YAML
  done
} > "$work/autoscalerd.yaml"
pprof_addr=""
if [ -n "${PROFILE:-}${HEAP:-}" ]; then pprof_addr="127.0.0.1:$((20000 + RANDOM % 20000))"; fi
AUTOSCALERD_DEBUG_PPROF="$pprof_addr" "$work/autoscalerd" run -c "$work/autoscalerd.yaml" --state-dir "$work/state" --listen 127.0.0.1:0 2>"$work/log" &
pid=$!; pids+=("$pid")
if [ "${VARIED:-}" = 1 ]; then
  ( i=0; while :; do for f in $(seq 1 "$files"); do echo $(( (i * 37 + f * 211) % 3000 )) > "$work/depth$f.tmp"; mv "$work/depth$f.tmp" "$work/depth$f"; done; i=$((i + 1)); sleep 1; done ) &
  pids+=("$!")
fi
sleep "$warm"
if [ "${HOG:-}" = 1 ]; then
  taskset -c 0 sh -c 'while :; do :; done' & pids+=("$!")
fi
if [ -n "${PROFILE:-}" ]; then
  curl -s -o "$PROFILE" "http://$pprof_addr/debug/pprof/profile?seconds=30" & pids+=("$!")
fi
ticks() { awk '{print $14+$15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
cpustat() { head -1 /proc/stat; }
m0=$(cpustat); t0=$(ticks); s0=$(date +%s.%N); peak=0
for _ in $(seq 1 "$secs"); do
  sleep 1
  rss=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
  [ "$rss" -gt "$peak" ] && peak=$rss
done
t1=$(ticks); s1=$(date +%s.%N); m1=$(cpustat)
steal=$(echo "$m0|$m1" | awk -F'|' '{split($1,a," "); split($2,b," "); t=0; for (i=2;i<=11;i++) t+=b[i]-a[i]; printf "%.1f", t ? 100*(b[9]-a[9])/t : 0}')
cpu=$(echo "scale=2; 100 * ($t1 - $t0) / $hz / ($s1 - $s0)" | bc)
threads=$(awk '/Threads/{print $2}' "/proc/$pid/status")
fds=$(ls "/proc/$pid/fd" | wc -l)
echo "policies=$n interval=1s window=${secs}s varied=${VARIED:-0} hog=${HOG:-0} cpu=${cpu}% of one core peak_rss=$((peak / 1024))MiB threads=$threads fds=$fds steal=${steal}%"
if [ -n "${PROFILE:-}" ]; then wait "${pids[-1]}" 2>/dev/null || true; echo "profile: $PROFILE"; fi
if [ -n "${HEAP:-}" ]; then
  curl -s -o "$HEAP" "http://$pprof_addr/debug/pprof/heap"
  curl -s "http://$pprof_addr/debug/pprof/heap?debug=1" | sed -n '/^# runtime.MemStats/,$p' > "$HEAP.txt"
  echo "goroutines=$(curl -s "http://$pprof_addr/debug/pprof/goroutine?debug=1" | head -1 | sed 's/.*total //') heap profile: $HEAP"
fi
if grep -q level=ERROR "$work/log"; then echo "errors in the daemon log:"; grep level=ERROR "$work/log" | head -5; fi
