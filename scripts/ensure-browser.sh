#!/usr/bin/env bash
# Make sure Debian's Chromium and its WebDriver are installed, for the HTML report's browser test.
# Idempotent: does nothing when both are there. On Debian as root it installs the packages
# chromium and chromium-driver from the distribution (never a browser download).
set -euo pipefail

log() { echo "ensure-browser: $*" >&2; }

need_packages=()
[ -x /usr/bin/chromium ] || need_packages+=(chromium)
[ -x /usr/bin/chromedriver ] || need_packages+=(chromium-driver)
[ ${#need_packages[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  log "missing ${need_packages[*]}; install them (Debian: apt-get install ${need_packages[*]}) or run as root"
  exit 1
fi
log "installing ${need_packages[*]}"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_packages[@]}" >/dev/null \
  || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_packages[@]}" >/dev/null; }
