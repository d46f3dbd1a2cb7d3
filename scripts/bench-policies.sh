#!/usr/bin/env bash
# Measures the daemon's own cost with many policies: N policies (default 1000) at a 1 s
# interval, each reading a `file` query, in dry-run against process targets (so nothing is
# started). Reports CPU (percent of one core) and peak RSS over the measuring window.
#
#   bash scripts/bench-policies.sh [N] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-1000}"; secs="${2:-60}"; warm=15
work="$(mktemp -d)"; trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
go build -o "$work/autoscalerd" ./cmd/autoscalerd
echo 250 > "$work/depth"
{
  echo "listen: 127.0.0.1:0"
  echo "log: { level: warn }"
  echo "defaults: { interval: 1s, dry_run: true }"
  echo "policies:"
  for i in $(seq 1 "$n"); do
    cat <<YAML
  - name: p$i
    target: { process: { command: ["/bin/true", "$i"] } }
    min: 1
    max: 50
    queries:
      depth: { file: { path: $work/depth } }
    replicas: ceil(depth / 100)
YAML
  done
} > "$work/autoscalerd.yaml"
"$work/autoscalerd" run -c "$work/autoscalerd.yaml" --state-dir "$work/state" --listen 127.0.0.1:0 2>"$work/log" &
pid=$!
sleep "$warm"
ticks() { awk '{print $14+$15}' "/proc/$pid/stat"; }
hz=$(getconf CLK_TCK)
t0=$(ticks); s0=$(date +%s.%N); peak=0
for _ in $(seq 1 "$secs"); do
  sleep 1
  rss=$(awk '/VmRSS/{print $2}' "/proc/$pid/status")
  [ "$rss" -gt "$peak" ] && peak=$rss
done
t1=$(ticks); s1=$(date +%s.%N)
cpu=$(echo "scale=2; 100 * ($t1 - $t0) / $hz / ($s1 - $s0)" | bc)
echo "policies=$n interval=1s window=${secs}s cpu=${cpu}% of one core peak_rss=$((peak / 1024))MiB"
if grep -q level=ERROR "$work/log"; then echo "errors in the daemon log:"; grep level=ERROR "$work/log" | head -5; fi
