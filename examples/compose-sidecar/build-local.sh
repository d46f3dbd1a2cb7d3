#!/usr/bin/env bash
# Builds the compose-sidecar example's three images from this checkout, pulling nothing:
# static Go binaries (autoscalerd, the fake Hatchet API, a tiny worker) each copied into
# an image FROM scratch. Then run the example with the override that uses them:
#
#   bash build-local.sh
#   docker compose -f docker-compose.yml -f docker-compose.local.yml up -d
#
# Needs Go (the version in ../../go.mod) and the docker CLI; the Go modules come from your
# module cache or proxy (GOPROXY), as for any build. DOCKER names another docker CLI
# (default: docker); DOCKER_HOST another engine, as usual.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
docker="${DOCKER:-docker}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# image PACKAGE PATH-IN-IMAGE TAG [DOCKERFILE-LINES...]: build PACKAGE into an image TAG.
# Files in $work/files go into the build context too.
image() {
  local pkg="$1" path="$2" tag="$3"; shift 3
  local dir="$work/${tag//[\/:]/_}"
  mkdir -p "$dir" "$work/files"
  echo "building $pkg -> $tag" >&2
  (cd "$root" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$dir/bin" "$pkg")
  cp -r "$work/files/." "$dir/"
  {
    echo "FROM scratch"
    echo "COPY bin $path"
    printf '%s\n' "$@"
  } > "$dir/Dockerfile"
  # The classic builder: FROM scratch needs nothing from a registry, and it works without
  # the buildx plugin on every engine version the example supports.
  DOCKER_BUILDKIT=0 "$docker" build -q -t "$tag" "$dir" >/dev/null
}

# The worker: no entrypoint, so docker-compose.local.yml's `command: ["/worker"]` runs it.
image ./examples/compose-sidecar/worker /worker autoscalerd-example/worker:local \
  'CMD ["/worker"]'
image ./examples/compose-sidecar/fakehatchet /fakehatchet autoscalerd-example/fake-hatchet:local \
  'EXPOSE 8080' 'ENTRYPOINT ["/fakehatchet"]'
# autoscalerd as the repository's Dockerfile lays it out (binary on PATH, `run` by
# default), with the host's CA certificates when it has them (for Hatchet Cloud over https).
certs=()
if [ -f /etc/ssl/certs/ca-certificates.crt ]; then
  mkdir -p "$work/files"
  cp /etc/ssl/certs/ca-certificates.crt "$work/files/"
  certs=('COPY ca-certificates.crt /etc/ssl/certs/')
fi
image ./cmd/autoscalerd /usr/local/bin/autoscalerd autoscalerd-example/autoscalerd:local \
  "${certs[@]}" 'ENV PATH=/usr/local/bin' 'EXPOSE 9090' 'ENTRYPOINT ["autoscalerd"]' 'CMD ["run"]'
echo "built autoscalerd-example/{worker,fake-hatchet,autoscalerd}:local; now:" >&2
echo "  docker compose -f docker-compose.yml -f docker-compose.local.yml up -d" >&2
