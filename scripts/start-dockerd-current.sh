#!/usr/bin/env bash
# Makes sure the current Docker Engine (29, built by scripts/build-docker-current.sh) runs
# beside Debian's, starting it if needed, and prints its DOCKER_HOST (unix://...).
#
# It has its own socket, data root, exec root and default bridge, and writes no iptables
# rules, so it never touches Debian's engine on /var/run/docker.sock:
#
#   socket     $W/run/docker.sock       (W = ${AUTOSCALERD_TOOLS_DIR:-~/.cache/autoscalerd-tools}/docker-current)
#   data root  $W/data                  (images built by the tests stay cached per machine)
#   exec root  /run/autoscalerd-docker29 (short: containerd's sockets live there)
#   log        $W/dockerd.log
#   bridge     asd29br0, 10.214.0.1/24 (created here)
#
# Not `--bridge none` and no `--default-address-pool`: dockerd 29 then deletes the
# interface docker0 at start (daemon_unix.go, removeDefaultBridgeInterface), which is
# Debian's engine's default bridge. Its user-defined networks come from the built-in pools;
# both engines skip subnets that already have a route, so they do not overlap.
#
# PATH puts containerd 2.4 (ctrd2/bin) first, then runc 1.5 (bin): dockerd 29 runs
# containers in a time namespace, which Debian's runc 1.1.5 cannot make. Published ports
# go through the docker-proxy built with it (userland, no NAT rules). A fresh data root uses the containerd image
# store, as a new install of Engine 29 does. `--live-restore=false` as for Debian's engine
# (scripts/start-dockerd.sh): a restarted engine does not adopt containers behind the
# tests' back. Idempotent: when the engine answers this only prints its address.
set -euo pipefail
W="${AUTOSCALERD_TOOLS_DIR:-$HOME/.cache/autoscalerd-tools}/docker-current"
BIN="$W/bin"
sock="$W/run/docker.sock"
exec_root=/run/autoscalerd-docker29
pidfile="$exec_root/dockerd.pid"
log="$W/dockerd.log"
timeout="${DOCKERD_START_TIMEOUT:-60}"
host="unix://$sock"

bridge=asd29br0
bridge_addr=10.214.0.1/24

answers() { DOCKER_HOST="$host" "$BIN/docker" info >/dev/null 2>&1; }

# Debian's engine sets the FORWARD policy to DROP, and with br_netfilter loaded traffic
# between two containers on one bridge passes FORWARD too. This engine writes no rules
# (--iptables=false), so its containers could not reach each other: accept what is bridged
# within one bridge (Debian's engine accepts that for its own networks too; traffic
# between networks is routed, not bridged, and stays isolated). Checked on every call.
allow_bridged() {
  [ "$(id -u)" = 0 ] && command -v iptables >/dev/null 2>&1 || return 0
  iptables -C FORWARD -m physdev --physdev-is-bridged -j ACCEPT 2>/dev/null ||
    iptables -I FORWARD -m physdev --physdev-is-bridged -j ACCEPT
}

for f in "$BIN/dockerd" "$BIN/docker" "$BIN/docker-proxy" "$BIN/runc" "$W/ctrd2/bin/containerd" "$W/ctrd2/bin/containerd-shim-runc-v2"; do
  if ! [ -x "$f" ]; then
    echo "start-dockerd-current: $f is missing; run scripts/build-docker-current.sh" >&2
    exit 1
  fi
done
# Swarm mode attaches containers to the network docker_gwbridge, on a Linux bridge of the
# same name unless the network exists beforehand: Debian's engine uses that interface
# too, so this engine gets its own (asd29gwbr), as Docker documents for a custom gwbridge.
gwbridge() {
  DOCKER_HOST="$host" "$BIN/docker" network inspect docker_gwbridge >/dev/null 2>&1 ||
    DOCKER_HOST="$host" "$BIN/docker" network create --driver bridge \
      --opt com.docker.network.bridge.name=asd29gwbr \
      --opt com.docker.network.bridge.enable_icc=false \
      --opt com.docker.network.bridge.enable_ip_masquerade=true docker_gwbridge >/dev/null
}

allow_bridged
if answers; then gwbridge; echo "$host"; exit 0; fi
if [ "$(id -u)" != 0 ]; then
  echo "start-dockerd-current: the engine is not running and starting dockerd needs root" >&2
  exit 1
fi

pid=""
if [ -f "$pidfile" ]; then
  pid="$(cat "$pidfile" 2>/dev/null || true)"
  if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = dockerd ]; then
    echo "start-dockerd-current: dockerd (pid $pid) is running but not answering yet; waiting" >&2
  else
    rm -f "$pidfile"
    pid=""
  fi
fi
if [ -z "$pid" ]; then
  mkdir -p "$W/run" "$W/data" "$exec_root"
  if ! ip link show "$bridge" >/dev/null 2>&1; then
    ip link add "$bridge" type bridge
    ip addr add "$bridge_addr" dev "$bridge"
  fi
  ip link set "$bridge" up
  # setsid: the engine must outlive the shell (and test process) that started it.
  setsid env PATH="$W/ctrd2/bin:$BIN:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    "$BIN/dockerd" --host "$host" --data-root "$W/data" --exec-root "$exec_root" --pidfile "$pidfile" \
    --bridge "$bridge" --iptables=false --ip6tables=false --live-restore=false \
    --userland-proxy-path="$BIN/docker-proxy" ${DOCKERD_CURRENT_FLAGS:-} >>"$log" 2>&1 </dev/null &
fi
for _ in $(seq 1 $((timeout * 5))); do
  if answers; then gwbridge; echo "$host"; exit 0; fi
  sleep 0.2
done
echo "start-dockerd-current: the engine did not answer within ${timeout}s; last lines of $log:" >&2
tail -n 20 "$log" >&2 || true
exit 1
