#!/usr/bin/env bash
# Builds a current Docker stack from the Go module proxy into a per-machine cache outside
# the repository, so the Docker tests can run against it beside Debian's Engine 20.10:
#
#   $W/bin/dockerd, $W/bin/docker-proxy   Docker Engine 29.8.1 (github.com/moby/moby/v2 v2.0.0-beta.24)
#   $W/bin/docker                         docker CLI 29.8.1 (github.com/docker/cli v29.8.1+incompatible)
#   $W/bin/docker-compose-v5              Compose v5.6.0 (github.com/docker/compose/v5)
#   $W/bin/runc                           runc 1.5.3 (Debian's 1.1.5 cannot make time namespaces)
#   $W/ctrd2/bin/{containerd,containerd-shim-runc-v2,ctr}   containerd 2.4.2
#
# with W=${AUTOSCALERD_TOOLS_DIR:-$HOME/.cache/autoscalerd-tools}/docker-current. Prints W.
#
#   scripts/build-docker-current.sh               everything
#   scripts/build-docker-current.sh moby cli      some parts (compose5 moby cli containerd runc)
#
# Idempotent: a part whose binaries exist is skipped. Reproducible: each helper module's
# go.mod/go.sum is pinned under scripts/docker-current/ (copied from upstream's requirement
# lists with their replace/exclude directives, which `go install` refuses), nothing is
# resolved at build time; the CLI builds in its own source tree from its vendor.mod, as
# upstream does. runc needs cgo and libseccomp-dev (apt-get install libseccomp-dev).
# Compose v2 (v2.40.3) builds the same way but takes ~4 minutes; it is not built.
# With an empty Go build cache all of it takes about 5 minutes on 2 cores (1.3 GB peak).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
W="${AUTOSCALERD_TOOLS_DIR:-$HOME/.cache/autoscalerd-tools}/docker-current"
BIN="$W/bin"
export GOFLAGS=-buildvcs=false GOTOOLCHAIN=local
now="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
mkdir -p "$BIN" "$W/ctrd2/bin"

have() { for f in "$@"; do [ -x "$f" ] || return 1; done; }

# gobuild DIR OUT ARGS...: builds with the pinned helper module scripts/docker-current/DIR
# into OUT atomically (a killed build leaves no half-written binary that counts as built).
gobuild() {
  local mod="$1" out="$2"; shift 2
  local work; work="$(mktemp -d)"
  cp "$here/docker-current/$mod/go.mod" "$here/docker-current/$mod/go.sum" "$work/"
  (cd "$work" && go build -mod=readonly -trimpath -o "$out.tmp" "$@")
  rm -rf "$work"
  mv "$out.tmp" "$out"
}

compose5() {
  have "$BIN/docker-compose-v5" && return
  # v5.7.x needs github.com/docker/secrets-engine/client, which the proxy refuses: v5.6.0.
  CGO_ENABLED=0 gobuild compose-v5 "$BIN/docker-compose-v5" \
    -ldflags "-s -w -X github.com/docker/compose/v5/internal.Version=v5.6.0" github.com/docker/compose/v5/cmd
}

moby() {
  have "$BIN/dockerd" "$BIN/docker-proxy" && return
  local P=github.com/moby/moby/v2/dockerversion
  # Flags as upstream's hack/make.sh with DOCKER_STATIC=1; no journald (needs libsystemd-dev).
  CGO_ENABLED=1 gobuild moby "$BIN/dockerd" -tags "netgo osusergo static_build nri_no_wasm" \
    -ldflags "-w -extldflags -static -X $P.Version=29.8.1 -X $P.GitCommit=v2.0.0-beta.24 -X $P.BuildTime=$now -X $P.PlatformName=Docker_Engine_-_Community" \
    github.com/moby/moby/v2/cmd/dockerd
  # dockerd 29 needs its own docker-proxy (-use-listen-fd); Debian's 20.10 one fails.
  CGO_ENABLED=0 gobuild moby "$BIN/docker-proxy" -tags "netgo osusergo static_build" -ldflags "-w" \
    github.com/moby/moby/v2/cmd/docker-proxy
}

runc() {
  have "$BIN/runc" && return
  if ! [ -e /usr/include/seccomp.h ]; then
    echo "build-docker-current: runc needs libseccomp-dev (apt-get install libseccomp-dev)" >&2
    return 1
  fi
  # Upstream's Makefile tags without libpathrs (a Rust C library; the pure-Go fallback is used).
  CGO_ENABLED=1 gobuild runc "$BIN/runc" -buildmode=pie -tags "seccomp urfave_cli_no_docs netgo osusergo" \
    -ldflags "-X main.gitCommit=v1.5.3 -linkmode external -extldflags -static-pie" github.com/opencontainers/runc
}

cli() {
  have "$BIN/docker" && return
  # docker/cli has no go.mod (CalVer, +incompatible): a helper module that requires it
  # compiles it as go1.16 and fails. Build in its source tree with vendor.mod as go.mod,
  # like upstream's scripts/with-go-mod.sh. The download is checked against the sum database.
  local V=v29.8.1 dir src
  dir="$(cd / && go mod download -json "github.com/docker/cli@$V+incompatible" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')"
  [ -d "$dir" ] || { echo "build-docker-current: cannot download github.com/docker/cli@$V" >&2; return 1; }
  src="$(mktemp -d)"
  cp -r "$dir/." "$src" && chmod -R u+w "$src"
  (cd "$src" && rm -rf vendor && cp vendor.mod go.mod && cp vendor.sum go.sum &&
    CGO_ENABLED=1 go build -mod=mod -trimpath -tags "grpcnotrace osusergo netgo" \
      -ldflags "-w -X github.com/docker/cli/cli/version.GitCommit=$V -X github.com/docker/cli/cli/version.BuildTime=$now -X github.com/docker/cli/cli/version.Version=${V#v} -linkmode external -extldflags -static" \
      -o "$BIN/docker.tmp" ./cmd/docker)
  rm -rf "$src"
  mv "$BIN/docker.tmp" "$BIN/docker"
}

containerd() {
  # Kept out of $BIN: dockerd prefers a containerd next to its own binary, and
  # scripts/start-dockerd-current.sh chooses it through PATH instead.
  local C="$W/ctrd2/bin"
  have "$C/containerd" "$C/containerd-shim-runc-v2" "$C/ctr" && return
  local P=github.com/containerd/containerd/v2 V=v2.4.2
  local LD="-s -w -X $P/version.Version=$V -X $P/version.Revision=$V -X $P/version.Package=$P"
  # cgo off: the btrfs snapshotter (cgo, libbtrfs-dev) is compiled out.
  CGO_ENABLED=0 gobuild containerd "$C/containerd" -tags "urfave_cli_no_docs osusergo netgo static_build" -ldflags "$LD" $P/cmd/containerd
  CGO_ENABLED=0 gobuild containerd "$C/ctr" -tags "urfave_cli_no_docs osusergo netgo static_build" -ldflags "$LD" $P/cmd/ctr
  CGO_ENABLED=0 gobuild containerd "$C/containerd-shim-runc-v2" -tags "urfave_cli_no_docs osusergo netgo static_build no_grpc" -ldflags "$LD" $P/cmd/containerd-shim-runc-v2
}

parts=("$@")
[ "${#parts[@]}" -gt 0 ] || parts=(compose5 moby cli containerd runc)
for p in "${parts[@]}"; do
  case "$p" in
    compose5|moby|runc|cli|containerd)
      start=$SECONDS
      "$p"
      echo "build-docker-current: $p ready ($((SECONDS - start))s)" >&2 ;;
    *) echo "build-docker-current: unknown part $p (compose5 moby cli containerd runc)" >&2; exit 2 ;;
  esac
done
echo "$W"
