#!/usr/bin/env bash
# Makes sure a Docker engine answers on the default socket, starting one if needed.
#
# Idempotent: when `docker info` already works this does nothing. Otherwise it starts the
# Debian `dockerd` (docker.io) in the background with its log in $DOCKERD_LOG, and waits
# until the engine answers. `--live-restore=false` so that a restarted engine does not
# adopt containers behind the tests' back (the restart test relies on that).
#
# Used by .ci/run and by internal/testing/testenv (which also calls it to bring the engine back
# after a test killed it on purpose).
set -euo pipefail
log="${DOCKERD_LOG:-/var/log/autoscalerd-dockerd.log}"
timeout="${DOCKERD_START_TIMEOUT:-60}"

if docker info >/dev/null 2>&1; then
  exit 0
fi
if ! command -v docker >/dev/null 2>&1; then
  echo "start-dockerd: the docker CLI is not installed (apt-get install docker.io)" >&2
  exit 1
fi
if ! command -v dockerd >/dev/null 2>&1; then
  echo "start-dockerd: dockerd is not installed (apt-get install docker.io docker-compose)" >&2
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  echo "start-dockerd: the engine is not running and starting dockerd needs root" >&2
  exit 1
fi

# A previous engine that died hard leaves its pid file behind, and dockerd refuses to start
# while the pid in it is alive. Only a dockerd process counts as alive.
pidfile=/var/run/docker.pid
if [ -f "$pidfile" ]; then
  pid="$(cat "$pidfile" 2>/dev/null || true)"
  if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = dockerd ]; then
    echo "start-dockerd: dockerd (pid $pid) is running but not answering yet; waiting" >&2
  else
    rm -f "$pidfile"
    pid=""
  fi
fi

if [ -z "${pid:-}" ]; then
  mkdir -p "$(dirname "$log")"
  # setsid: the engine must outlive the shell (and test process) that started it.
  setsid dockerd --live-restore=false >>"$log" 2>&1 </dev/null &
fi

for _ in $(seq 1 $((timeout * 5))); do
  if docker info >/dev/null 2>&1; then
    exit 0
  fi
  sleep 0.2
done
echo "start-dockerd: the engine did not answer within ${timeout}s; last lines of $log:" >&2
tail -n 20 "$log" >&2 || true
exit 1
