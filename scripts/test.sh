#!/usr/bin/env bash
# Runs the whole test suite. Prepares what it can without installing packages: starts the
# Docker engine if dockerd is installed but not running, and builds the Nomad agent, the
# Temporal CLI (dev server) and a current Docker (Engine 29, Compose v5) into a cache
# outside the repository (once per machine), then starts that second engine beside Debian's
# (scripts/start-dockerd-current.sh; the Docker tests run against both).
# Integration tests whose component is missing skip outside CI and fail under CI=true;
# `.ci/run` installs the Debian packages first.
set -euo pipefail
cd "$(dirname "$0")/.."

if command -v dockerd >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
  bash scripts/start-dockerd.sh || echo "test.sh: could not start dockerd; Docker tests will say so" >&2
fi

# The tool builds are slow the first time; run them side by side.
pids=()
NOMAD_BIN_LOG="$(mktemp)"; TEMPORAL_BIN_LOG="$(mktemp)"; DOCKER_CURRENT_LOG="$(mktemp)"
bash scripts/build-nomad.sh >"$NOMAD_BIN_LOG" 2>&1 & pids+=($!)
bash scripts/build-temporal.sh >"$TEMPORAL_BIN_LOG" 2>&1 & pids+=($!)
bash scripts/build-docker-current.sh >"$DOCKER_CURRENT_LOG" 2>&1 & pids+=($!)
for pid in "${pids[@]}"; do wait "$pid" || true; done
# internal/testing/testenv starts it too (it is idempotent); starting it here shows a
# failure once, up front.
if [ "$(id -u)" = 0 ] && ! bash scripts/start-dockerd-current.sh >>"$DOCKER_CURRENT_LOG" 2>&1; then
  echo "test.sh: building or starting the current Docker engine failed:" >&2; tail -20 "$DOCKER_CURRENT_LOG" >&2
fi
if nomad_bin="$(tail -n1 "$NOMAD_BIN_LOG")" && [ -x "$nomad_bin" ]; then
  export NOMAD_BIN="$nomad_bin"
else
  echo "test.sh: building nomad failed:" >&2; tail -20 "$NOMAD_BIN_LOG" >&2
fi
if temporal_bin="$(tail -n1 "$TEMPORAL_BIN_LOG")" && [ -x "$temporal_bin" ]; then
  export TEMPORAL_BIN="$temporal_bin"
else
  echo "test.sh: building temporal failed:" >&2; tail -20 "$TEMPORAL_BIN_LOG" >&2
fi
rm -f "$NOMAD_BIN_LOG" "$TEMPORAL_BIN_LOG" "$DOCKER_CURRENT_LOG"

go vet ./...
go test -count=1 -timeout 30m ./... "$@"
