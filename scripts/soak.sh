#!/usr/bin/env bash
# Soak test (not part of CI): N policies (default 1000) at a 1 s interval whose sources flap
# between values, errors and timeouts for as long as you say. Reports goroutines, RSS and
# open fds at the start and at the end, and how many evaluations and scaling decisions were
# made. Growth between start and end is a leak.
#
#   bash scripts/soak.sh [DURATION_SECONDS] [N]      e.g. bash scripts/soak.sh 3600 1000
#
# Each policy has two queries: a `file` query whose file is rewritten every second with a
# number, garbage or nothing, and an `http` query on a local server that answers, fails with
# 500 or hangs past the 1 s timeout, at random. Policies are in dry-run against process
# targets, so nothing is started.
#
# Environment:
#   BIN=PATH     soak this binary instead of building the tree
#   HEAP=PREFIX  also write heap profiles PREFIX.start and PREFIX.end (go tool pprof -base),
#                each with its runtime.MemStats in PREFIX.start.txt / PREFIX.end.txt
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-3600}"; n="${2:-1000}"; files=20
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
if [ -n "${BIN:-}" ]; then cp "$BIN" "$work/autoscalerd"; else go build -o "$work/autoscalerd" ./cmd/autoscalerd; fi
web_port=$((30000 + RANDOM % 20000)); pprof="127.0.0.1:$((30000 + RANDOM % 20000))"; listen="127.0.0.1:$((30000 + RANDOM % 20000))"

# The flapping HTTP server: 60 % answers, 20 % 500, 20 % hangs for 3 s.
cat > "$work/flap.py" <<'PY'
import http.server, random, sys, time, json
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        r = random.random()
        if r < 0.2:
            time.sleep(3)
        if r < 0.4:
            self.send_response(500); self.end_headers(); self.wfile.write(b"flap"); return
        body = json.dumps({"depth": random.randint(0, 3000)}).encode()
        self.send_response(200); self.send_header("Content-Type", "application/json"); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
    def handle(self):
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon gave up on a hanging answer: that is the point
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
python3 "$work/flap.py" "$web_port" & pids+=("$!")

{
  echo "log: { level: warn }"
  echo "defaults: { interval: 1s, dry_run: true, cooldown: { up: 5s, down: 30s } }"
  echo "policies:"
  for i in $(seq 1 "$n"); do
    cat <<YAML
  - name: p$i
    target: { process: { command: ["/bin/true", "$i"] } }
    min: 1
    max: 50
    queries:
      depth: { file: { path: $work/depth$(( (i % files) + 1 )) } }
      web: { http: { url: "http://127.0.0.1:$web_port/q$i", value: depth }, timeout: 1s }
    replicas: max(ceil((depth ?? 0) / 100), ceil((web ?? 0) / 100))
YAML
  done
} > "$work/autoscalerd.yaml"
for f in $(seq 1 "$files"); do echo 100 > "$work/depth$f"; done
( i=0; while :; do
    for f in $(seq 1 "$files"); do
      case $(( (i + f) % 5 )) in
        0) echo "garbage" ;; 1) : ;; *) echo $(( (i * 37 + f * 211) % 3000 )) ;;
      esac > "$work/depth$f.tmp"; mv "$work/depth$f.tmp" "$work/depth$f"
    done; i=$((i + 1)); sleep 1
  done ) & pids+=("$!")

AUTOSCALERD_DEBUG_PPROF="$pprof" "$work/autoscalerd" run -c "$work/autoscalerd.yaml" --state-dir "$work/state" --listen "$listen" 2>"$work/log" &
pid=$!; pids+=("$pid")
until curl -sf "http://$listen/healthz" >/dev/null; do sleep 0.5; done
sleep 30 # warm up: every policy has ticked and its windows are filling

sample() {
  local g rss fds evals actions
  g=$(curl -s "http://$pprof/debug/pprof/goroutine?debug=1" | head -1 | sed 's/.*total //')
  rss=$(awk '/VmRSS/{print int($2 / 1024)}' "/proc/$pid/status")
  fds=$(ls "/proc/$pid/fd" | wc -l)
  evals=$(curl -s "http://$listen/metrics" | awk '/^autoscalerd_evaluation_duration_seconds_count/{print $2}')
  actions=$(curl -s "http://$listen/metrics" | awk '/^autoscalerd_scale_actions_total/{s += $2} END {print s + 0}')
  echo "goroutines=$g rss=${rss}MiB fds=$fds evaluations=$evals decisions_that_scaled=$actions"
}
heap() {
  [ -n "${HEAP:-}" ] || return 0
  curl -s -o "$HEAP.$1" "http://$pprof/debug/pprof/heap"
  curl -s "http://$pprof/debug/pprof/heap?debug=1" | sed -n '/^# runtime.MemStats/,$p' > "$HEAP.$1.txt"
}
echo "start: $(sample)"; heap start
sleep "$secs"
echo "end:   $(sample)   (after ${secs}s, $n policies)"; heap end
errs=$(grep -c level=ERROR "$work/log" || true)
echo "ERROR lines in the daemon log: $errs"
