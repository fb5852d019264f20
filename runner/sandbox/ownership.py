"""Who owns a sandbox: the process that started it, by host, boot, pid and start time, and the
namespace it was started in.

Enough to tell, from any later process on the same host, whether the owner is still alive,
so a sweep removes what a killed runner left behind and nothing else; and to keep `clean` and
pre-started sandboxes within their namespace (NUMERAI_SANDBOX_NAMESPACE, see paths.namespace).
"""

from __future__ import annotations

import psutil

from ..support.paths import LABEL, NAMESPACE_LABEL, boot_id, hostname, namespace, user_id


def owner_label() -> str:
    """host/boot/pid/start-time of this process: enough to tell whether it is still alive."""
    me = psutil.Process()
    return f"{hostname()}/{boot_id()}/{me.pid}/{me.create_time():.2f}"


def owner_alive(owner: str) -> bool:
    try:
        host, boot, pid, created = owner.rsplit("/", 3)
    except ValueError:
        return False
    if host != hostname():
        return True  # another machine's runner on a shared engine: not ours to judge
    if boot != boot_id():
        return False
    try:
        return abs(psutil.Process(int(pid)).create_time() - float(created)) < 0.05
    except (psutil.Error, ValueError):
        return False


def labels_for(kind: str, **extra: str) -> dict[str, str]:
    """Our labels: what the container is for, the process that owns it, the user running that process and
    the namespace it runs in."""
    labels = {f"{LABEL}.kind": kind, f"{LABEL}.owner": owner_label(), f"{LABEL}.uid": user_id(),
              NAMESPACE_LABEL: namespace()}
    labels.update({f"{LABEL}.{k}": v for k, v in extra.items()})
    return labels
