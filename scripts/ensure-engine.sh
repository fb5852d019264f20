#!/usr/bin/env bash
# Make sure a Docker engine is reachable (and debootstrap is installed for offline bases).
# Idempotent: does nothing when the engine already answers. On a fresh Debian machine as
# root it installs Debian's docker.io and starts dockerd in the background.
set -euo pipefail

log() { echo "ensure-engine: $*" >&2; }

ping_engine() {
  if [ -n "${DOCKER_HOST:-}" ] && [[ "${DOCKER_HOST}" != unix://* ]]; then
    return 0  # a remote engine chosen by the user: theirs to manage
  fi
  local sock="${DOCKER_HOST:-}"
  sock="${sock#unix://}"
  sock="${sock:-/var/run/docker.sock}"
  [ -S "$sock" ] && curl -sf --max-time 5 --unix-socket "$sock" http://localhost/_ping >/dev/null 2>&1
}

need_packages=()
command -v dockerd >/dev/null 2>&1 || need_packages+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need_packages+=(debootstrap)
command -v curl >/dev/null 2>&1 || need_packages+=(curl)
if [ ${#need_packages[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    log "missing ${need_packages[*]}; install them (Debian: apt-get install ${need_packages[*]}) or run as root"
    ping_engine && exit 0
    exit 1
  fi
  log "installing ${need_packages[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_packages[@]}" >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_packages[@]}" >/dev/null; }
fi

if ping_engine; then
  exit 0
fi
if [ "$(id -u)" != 0 ]; then
  log "the Docker engine is not running and only root can start it: run 'sudo dockerd &' or 'sudo systemctl start docker'"
  exit 1
fi
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  log "starting docker with systemctl"
  systemctl start docker || true
fi
if ! ping_engine; then
  log "starting dockerd in the background (log: /var/log/dockerd.log)"
  nohup dockerd >/var/log/dockerd.log 2>&1 &
fi
for _ in $(seq 1 60); do
  if ping_engine; then
    log "Docker engine is up"
    exit 0
  fi
  sleep 1
done
log "dockerd did not come up within 60 s; see /var/log/dockerd.log:"
tail -n 20 /var/log/dockerd.log >&2 || true
exit 1
