#!/usr/bin/env bash
# Builds a Nomad agent binary from the Go module proxy into a per-version cache directory
# outside the repository, so a machine builds it once. Prints the binary's path.
#
# Nomad cannot be `go install`ed (its go.mod has replace directives), so this writes a
# throwaway helper module that requires github.com/hashicorp/nomad with Nomad's own
# requirement list and replace directives, and builds the main package from it.
set -euo pipefail
ver="${NOMAD_VERSION:-1.10.5}"
cache="${AUTOSCALERD_TOOLS_DIR:-$HOME/.cache/autoscalerd-tools}"
bin="$cache/nomad-$ver/nomad"
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
mkdir -p "$(dirname "$bin")"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
gomod="$(go mod download -json "github.com/hashicorp/nomad@v$ver" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')"
[ -f "$gomod" ] || { echo "build-nomad: cannot find go.mod of nomad v$ver" >&2; exit 1; }
{
  echo "module nomadbuild"
  echo
  grep -m1 '^go ' "$gomod"
  echo
  echo "require github.com/hashicorp/nomad v$ver"
  echo
  # Nomad's own require blocks, verbatim.
  awk '/^require \(/{on=1} on{print} /^\)/{if(on){on=0; print ""}}' "$gomod"
  echo "replace ("
  echo "	github.com/Microsoft/go-winio => github.com/endocrimes/go-winio v0.4.13-0.20190628114223-fb47a8b41948"
  echo "	github.com/hashicorp/hcl => github.com/hashicorp/hcl v1.0.1-nomad-1"
  echo "	github.com/hashicorp/nomad/api => github.com/hashicorp/nomad/api v0.0.0-20260907080526-08ef8f3d26da"
  echo ")"
} > "$work/go.mod"
cd "$work"
GOFLAGS=-mod=mod go build -o "$bin.tmp" github.com/hashicorp/nomad >&2
mv "$bin.tmp" "$bin"
echo "$bin"
