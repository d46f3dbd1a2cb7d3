# autoscalerd image: a static binary on scratch, with CA certificates (for https sources
# and the Nomad/Hatchet APIs). Time zone data for `schedule[].timezone` is embedded in the
# binary (time/tzdata), so the image needs no zoneinfo.
#
#   docker build -t autoscalerd .
#   docker build --build-arg VERSION=1.2.3 --build-arg COMMIT=$(git rev-parse --short HEAD) -t autoscalerd:1.2.3 .
#
# It builds with the classic builder and with BuildKit alike. GO_IMAGE and GOPROXY let an
# air-gapped build use a mirrored Go image and module proxy.
ARG GO_IMAGE=golang:1.26-bookworm

FROM ${GO_IMAGE} AS build
ARG GOPROXY
WORKDIR /src
# Modules first, so a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/autoscalerd/autoscalerd/cli.version=${VERSION} -X github.com/autoscalerd/autoscalerd/cli.commit=${COMMIT}" \
      -o /out/usr/local/bin/autoscalerd ./cmd/autoscalerd
# The final stage has no shell, so its files are laid out here: a passwd entry for the
# non-root user (some libraries look the uid up), the state and config directories, and
# a /tmp (the built-in demo keeps its state there).
RUN mkdir -p /out/etc/ssl/certs /out/etc/autoscalerd /state \
 && mkdir -m 1777 /out/tmp \
 && cp /etc/ssl/certs/ca-certificates.crt /out/etc/ssl/certs/ \
 && echo 'autoscalerd:x:65532:65532:autoscalerd:/var/lib/autoscalerd:/sbin/nologin' > /out/etc/passwd \
 && echo 'autoscalerd:x:65532:' > /out/etc/group

FROM scratch
COPY --from=build /out/ /
# COPY resets ownership to root unless told otherwise.
COPY --from=build --chown=65532:65532 /state /var/lib/autoscalerd
# Non-root. To reach the Docker socket (compose and swarm targets), add the socket's group:
#   docker run --group-add "$(stat -c %g /var/run/docker.sock)" ...   (compose: group_add)
USER 65532:65532
ENV PATH=/usr/local/bin
# Persisted decision state (cooldowns survive restarts): mount a volume here.
VOLUME /var/lib/autoscalerd
EXPOSE 9090
# `status` exits 1 when the daemon does not answer; no curl needed. It asks
# $AUTOSCALERD_LISTEN, else 127.0.0.1:9090: if `listen` is set only in the config file,
# override this (docker run --health-cmd, compose healthcheck:) with --addr.
HEALTHCHECK --interval=30s --timeout=5s --start-period=15s --retries=3 \
  CMD ["autoscalerd", "status"]
ENTRYPOINT ["autoscalerd"]
CMD ["run"]
