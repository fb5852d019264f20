"""What killed runners left behind, and `clean`: our containers, temp dirs and images whose owner is gone.

Every container, inputs image and temp dir of ours names the process that owns it
(runner/sandbox/ownership.py). `sweep` (run by every command that reaches the engine) removes
those whose owner is gone; `clean` also removes what the user kept, and says what it left and why.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path

import docker
import psutil

from ..support.paths import LABEL, TEMP_PREFIX, hostname, in_namespace, user_id
from . import pool
from .engine import ENGINE_ERRORS, remove
from .ownership import owner_alive
from .registry import sweep_push_tags


def container_state(labels: dict[str, str]) -> str:
    """One of our containers as a sweep sees it: "live" (its owner still runs, here or on another
    machine sharing the engine), "kept" (--keep, its run over) or "orphan" (its owner is gone: a leak)."""
    if owner_alive(labels.get(f"{LABEL}.owner", "")):
        return "live"
    return "kept" if labels.get(f"{LABEL}.keep") == "1" else "orphan"


def is_mine(labels: dict[str, str]) -> bool:
    """Whether this user on this machine made the container (containers from before the uid label: no)."""
    host = labels.get(f"{LABEL}.owner", "").rsplit("/", 3)[0]
    return host == hostname() and labels.get(f"{LABEL}.uid") == user_id()


def cleanup_plan(containers: list[dict], everything: bool = False) -> tuple[list[dict], list[dict]]:
    """(what `clean` removes, what it leaves) among our containers.

    Removed: orphans (whoever made them: nothing can use them) and this user's kept containers.
    Left, unless `everything`: runs still going in other processes, and other users' kept containers.
    Another namespace's containers are not this clean's to remove or list, orphans excepted.
    """
    doomed, left = [], []
    for info in containers:
        labels = info.get("Labels") or {}
        state = container_state(labels)
        if state != "orphan" and not in_namespace(labels):
            continue
        if everything or state == "orphan" or (state == "kept" and is_mine(labels)):
            doomed.append(info)
        else:
            left.append(info)
    return doomed, left


def container_name(info: dict) -> str:
    return info["Names"][0].lstrip("/") if info.get("Names") else info["Id"][:12]


def describe_left(info: dict) -> str:
    """Why `clean` left a container: whose it is and whether it still runs."""
    labels = info.get("Labels") or {}
    host, _boot, pid, _created = (labels.get(f"{LABEL}.owner", "").rsplit("/", 3) + ["?"] * 4)[:4]
    if container_state(labels) == "live":
        where = f"pid {pid}" if host == hostname() else f"on {host}"
        return f"{container_name(info)} (a run still going: {where})"
    return f"{container_name(info)} (kept by user {labels.get(f'{LABEL}.uid', '?')})"


def our_containers(client: docker.DockerClient) -> list[dict]:
    """Every container of ours on the engine (any namespace, any state)."""
    return client.api.containers(all=True, filters={"label": f"{LABEL}.owner"})


def sweep(client: docker.DockerClient) -> list[str]:
    """Remove containers and temp dirs of ours whose owning process is gone. Returns what went."""
    removed = []
    try:
        containers = our_containers(client)
    except ENGINE_ERRORS:
        return removed
    removed += pool.sweep(client)
    for info in containers:
        if container_state(info.get("Labels") or {}) == "orphan":
            remove(client, info["Id"])
            removed.append(container_name(info))
    removed += sweep_temp_dirs()
    return removed


def clean(client: docker.DockerClient, everything: bool = False,
          dry_run: bool = False) -> tuple[list[str], list[str]]:
    """The `clean` command: (what was removed, or would be, and what was left and why); see cleanup_plan.
    Temp dirs go only once their process is gone, even with `everything`."""
    doomed, left = cleanup_plan(our_containers(client), everything)
    for info in doomed if not dry_run else []:
        remove(client, info["Id"])
    # This user's pre-started sandboxes (of this cache); with `everything`, every one on the engine.
    warm = pool.sweep(client, everything=True, dry_run=dry_run, all_pools=everything)
    images = sweep_inputs_images(client, dry_run)  # a killed Kubernetes check's inputs images
    images += [f"{tag} (the local tag of a push that was killed)" for tag in sweep_push_tags(client, dry_run)]
    removed = [container_name(i) for i in doomed] + warm + images + sweep_temp_dirs(dry_run)
    return list(dict.fromkeys(removed)), [describe_left(i) for i in left]


def sweep_inputs_images(client: docker.DockerClient, dry_run: bool = False) -> list[str]:
    """The Kubernetes backend's per-pickle inputs images left by a check that was killed (its owning
    process is gone; images from before owners were labelled are left alone). Run by `clean` and at the
    start of a Kubernetes check, not by every run: only those make such images."""
    removed = []
    try:
        found = client.api.images(filters={"label": [f"{LABEL}.kind=inputs"]})
    except ENGINE_ERRORS:
        return removed
    for info in found:
        owner = (info.get("Labels") or {}).get(f"{LABEL}.owner")
        if not owner or owner_alive(owner):
            continue
        for tag in [t for t in info.get("RepoTags") or [] if t != "<none>:<none>"] or [info["Id"]]:
            if not dry_run:
                with contextlib.suppress(*ENGINE_ERRORS):
                    client.api.remove_image(tag)
            removed.append(tag)
    return removed


def sweep_temp_dirs(dry_run: bool = False) -> list[str]:
    """Our temp dirs whose process is gone (removed unless `dry_run`)."""
    removed = []
    root = Path(tempfile.gettempdir())
    for path in root.glob(TEMP_PREFIX + "*"):
        owner = path.name[len(TEMP_PREFIX):].split("-")
        pid = next((int(p) for p in owner if p.isdigit()), None)
        if pid is not None and not psutil.pid_exists(pid):
            if not dry_run:
                shutil.rmtree(path, ignore_errors=True)
            removed.append(str(path))
    return removed
