#!/usr/bin/env bash
# Register gVisor's runsc as the Docker runtime `runsc`, for `numerai-sandbox run --isolation gvisor`.
#
# Idempotent, and gentle with a shared engine: it installs Debian's runsc package when missing, picks
# the runsc platform that works on this host (kvm where nested virtualisation works, else ptrace,
# which works in any VM; RUNSC_PLATFORM=... chooses), merges a `runtimes.runsc` entry into the
# daemon's configuration file without touching anything else there, and asks the running dockerd to
# reload it with SIGHUP, which leaves running containers alone. It never restarts the engine.
set -euo pipefail

log() { echo "register-runsc: $*" >&2; }
PYTHON=${PYTHON:-python3}
RUNSC=/usr/bin/runsc

engine_runtimes() { docker info --format '{{json .Runtimes}}' 2>/dev/null || echo '{}'; }

registered_args() {  # the runtimeArgs the engine has for runsc, as JSON, or nothing
  engine_runtimes | "$PYTHON" -c 'import json, sys; r = json.load(sys.stdin).get("runsc"); print(json.dumps(r.get("runtimeArgs") or []) if r else "")'
}

if [ -n "${DOCKER_HOST:-}" ] && [[ "${DOCKER_HOST}" != unix://* ]]; then
  log "DOCKER_HOST names a remote engine ($DOCKER_HOST): register runsc on that machine (this script, run there)"
  exit 1
fi

if [ -n "$(registered_args)" ] && [ -z "${RUNSC_PLATFORM:-}" ]; then
  exit 0  # already registered (by us or by the machine's owner): nothing to do
fi

if [ "$(id -u)" != 0 ]; then
  log "only root can register runsc with the Docker engine: run 'sudo make gvisor' (or sudo $0)"
  exit 1
fi

if [ ! -x "$RUNSC" ]; then
  log "installing Debian's runsc package"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runsc >/dev/null \
    || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq runsc >/dev/null; }
fi

works() {  # whether `runsc --platform=$1` runs a process here (a broken kvm hangs: hence the timeout)
  local scratch
  scratch=$(mktemp -d)
  local ok=1
  if (cd "$scratch" && timeout -k 5 20 "$RUNSC" --platform="$1" --network=none --root="$scratch/state" \
      do /bin/true) >/dev/null 2>&1; then
    ok=0
  fi
  rm -rf "$scratch"
  return $ok
}

platform=""
for candidate in ${RUNSC_PLATFORM:-kvm ptrace}; do
  if [ "$candidate" = kvm ] && [ ! -w /dev/kvm ]; then
    continue
  fi
  if works "$candidate"; then
    platform=$candidate
    break
  fi
  log "runsc's $candidate platform does not work on this host"
done
if [ -z "$platform" ]; then
  log "no runsc platform works on this host (tried: ${RUNSC_PLATFORM:-kvm ptrace}); see 'runsc --platform=ptrace do /bin/true'"
  exit 1
fi

pid=$(cat /var/run/docker.pid 2>/dev/null || pgrep -xo dockerd || true)
if [ -z "$pid" ] || [ ! -d "/proc/$pid" ]; then
  log "no running dockerd found (make engine starts one)"
  exit 1
fi
# The configuration file the running daemon reads: its --config-file, else the default.
config=$(tr '\0' '\n' <"/proc/$pid/cmdline" | "$PYTHON" -c '
import sys
args = sys.stdin.read().split("\n")
for i, a in enumerate(args):
    if a.startswith("--config-file="):
        print(a.split("=", 1)[1]); break
    if a == "--config-file" and i + 1 < len(args):
        print(args[i + 1]); break
else:
    print("/etc/docker/daemon.json")')

changed=$("$PYTHON" - "$config" "$RUNSC" "$platform" <<'EOF'
import json, os, sys, tempfile
path, runsc, platform = sys.argv[1:]
try:
    with open(path) as handle:
        text = handle.read()
    config = json.loads(text) if text.strip() else {}
except FileNotFoundError:
    config = {}
except ValueError as exc:
    sys.exit(f"register-runsc: {path} is not valid JSON ({exc}); fix it by hand, nothing was changed")
# --network=none: gVisor's own network stack gets loopback only. A model run never has a network
# anyway, and this also spares runsc from adopting Docker's namespace, which older runsc releases
# refuse on some kernels ("cannot run with network enabled in root network namespace").
wanted = {"path": runsc, "runtimeArgs": [f"--platform={platform}", "--network=none"]}
if config.get("runtimes", {}).get("runsc") == wanted:
    print("no")
    sys.exit()
config.setdefault("runtimes", {})["runsc"] = wanted
os.makedirs(os.path.dirname(path), exist_ok=True)
fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".daemon.json.")
with os.fdopen(fd, "w") as handle:
    json.dump(config, handle, indent=2)
    handle.write("\n")
if os.path.exists(path):
    os.chmod(tmp, os.stat(path).st_mode & 0o7777)
else:
    os.chmod(tmp, 0o644)
os.replace(tmp, path)
print("yes")
EOF
)

if [ "$changed" = yes ] || [ -z "$(registered_args)" ]; then
  log "runsc (platform $platform) added to $config; dockerd (pid $pid) reloads it on SIGHUP (running containers are not touched)"
  kill -HUP "$pid"
  for _ in $(seq 1 30); do
    [ -n "$(registered_args)" ] && break
    sleep 0.5
  done
fi
if [ -z "$(registered_args)" ]; then
  log "dockerd did not take the runsc runtime after SIGHUP; its log says why (e.g. /var/log/dockerd.log). A runtime given as a dockerd flag (--add-runtime runsc=...) conflicts with daemon.json"
  exit 1
fi
log "runsc is registered: $(registered_args)"
