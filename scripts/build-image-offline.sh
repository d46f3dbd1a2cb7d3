#!/usr/bin/env bash
# Builds the Dockerfile without network access, for machines (CI sandboxes) that cannot
# pull golang images or reach a module proxy: it imports a minimal Go build image made from
# this machine's Go toolchain, and serves this machine's module cache as GOPROXY.
#
# It builds the committed HEAD (not the working tree), so edits in progress do not break it.
#
#   scripts/build-image-offline.sh [TAG]      (default autoscalerd:offline)
set -euo pipefail
tag="${1:-autoscalerd:offline}"
repo="$(cd "$(dirname "$0")/.." && pwd)"
root="$(mktemp -d)"
fs=""
proxy=""
cleanup() { if [ -n "$proxy" ]; then kill "$proxy" 2>/dev/null || true; fi; rm -rf "$root" "$fs"; }
trap cleanup EXIT
git -C "$repo" archive HEAD | tar -x -C "$root"
goroot="$(go env GOROOT)"
modcache="$(go env GOMODCACHE)/cache/download"
gover="$(go env GOVERSION)"
base="autoscalerd-gobase:${gover}"

if ! docker image inspect "$base" >/dev/null 2>&1; then
  fs="$(mktemp -d)"
  # A build cache made here with the Dockerfile's flags (-trimpath keeps it independent of
  # paths), so the build step inside the image compiles little: a long RUN on a busy Docker
  # engine is more likely to be cut short.
  mkdir -p "$fs/root/.cache"
  (cd "$root" && GOCACHE="$fs/root/.cache/go-build" GOFLAGS=-mod=mod CGO_ENABLED=0 \
    go build -trimpath -o /dev/null ./cmd/autoscalerd)
  mkdir -p "$fs"/{bin,tmp,root,etc/ssl/certs,usr/local,lib64,lib/x86_64-linux-gnu}
  chmod 1777 "$fs/tmp"
  cp -a "$goroot" "$fs/usr/local/go"
  cp /etc/ssl/certs/ca-certificates.crt "$fs/etc/ssl/certs/"
  # A shell and the few tools the Dockerfile's RUN lines use, with their libraries.
  for tool in sh mkdir cp; do
    bin="$(readlink -f "$(command -v "$tool")")"
    cp "$bin" "$fs/bin/$tool"
    ldd "$bin" | awk '/=>/ {print $3} /^\t\/lib64/ {print $1}' | while read -r lib; do
      cp -nL "$lib" "$fs$lib"
    done
  done
  tar -C "$fs" -c . | docker import \
    --change 'ENV PATH=/usr/local/go/bin:/bin GOPATH=/go HOME=/root GOCACHE=/root/.cache/go-build GOTOOLCHAIN=local GOFLAGS=-mod=mod GONOSUMDB=* GOSUMDB=off' \
    - "$base" >/dev/null
fi

# Serve the module cache as a GOPROXY on a free loopback port.
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$modcache" >/dev/null 2>&1 &
proxy=$!

# `go mod download` fetches every module go.mod names, including ones only other platforms
# build with (go-winio, ...), which a Linux machine's cache does not hold; the build step
# fetches exactly what it compiles, so the offline build skips the pre-download layer.
sed 's/^RUN go mod download$/RUN true/' "$root/Dockerfile" | docker build --network host -f - \
  --build-arg GO_IMAGE="$base" \
  --build-arg GOPROXY="http://127.0.0.1:$port" \
  --build-arg VERSION="offline" \
  --build-arg COMMIT="$(git -C "$repo" rev-parse --short HEAD)" \
  -t "$tag" "$root"
echo "$tag"
