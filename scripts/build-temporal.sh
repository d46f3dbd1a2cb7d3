#!/usr/bin/env bash
# Builds the Temporal CLI (which embeds a dev server) into a per-version cache directory
# outside the repository. Prints the binary's path.
set -euo pipefail
ver="${TEMPORAL_CLI_VERSION:-1.5.1}"
cache="${AUTOSCALERD_TOOLS_DIR:-$HOME/.cache/autoscalerd-tools}"
dir="$cache/temporal-$ver"
if [ -x "$dir/temporal" ]; then echo "$dir/temporal"; exit 0; fi
mkdir -p "$dir"
GOBIN="$dir" CGO_ENABLED=0 go install "github.com/temporalio/cli/cmd/temporal@v$ver" >&2
echo "$dir/temporal"
