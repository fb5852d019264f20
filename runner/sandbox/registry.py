"""Pushing our images to a container registry the user names (for sandboxes on other machines).

A cluster cannot use the images of this machine's Docker engine: its nodes pull them from
a registry. The engine pushes (it already holds the user's registry credentials, from
`docker login`); a local tag is made for the push and removed afterwards, so nothing is
left behind in the engine but what was there before. An interrupted push (Ctrl-C, SIGTERM)
removes its tag on the way out; one killed outright cannot, so each push tag is written down
first (in the cache, with the pushing process) and `clean`, or the next push, removes the tags
whose process is gone. The Docker SDK is imported by the functions that talk to the engine, so
the command line can check a registry name cheaply.
"""

from __future__ import annotations

import contextlib
import json
import re
import secrets
from pathlib import Path
from typing import Callable

from ..support.paths import APP, cache_dir, ensure_dir
from .backend import BackendUnavailable
from .ownership import owner_alive, owner_label

REGISTRY_PATTERN = re.compile(
    r"(?P<host>[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?|\[[0-9a-f:]+\])(?::(?P<port>[0-9]{1,5}))?"
    r"(?P<path>(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)")


class RegistryError(BackendUnavailable):
    """The registry refused or could not be reached: not the model's fault."""


def check_registry(text: str) -> str:
    """HOST[:PORT][/PATH] (e.g. 127.0.0.1:5000, registry.example.com/team), normalised; ValueError if not."""
    value = text.strip().rstrip("/")
    for scheme in ("http://", "https://"):
        if value.startswith(scheme):
            raise ValueError(f"{text!r}: give the registry without {scheme} (HOST[:PORT][/PATH])")
    match = REGISTRY_PATTERN.fullmatch(value)
    if not match or (match["port"] and not 0 < int(match["port"]) < 65536):
        raise ValueError(f"{text!r} is not a registry (HOST[:PORT][/PATH], lower case, e.g. 127.0.0.1:5000 "
                         "or registry.example.com/team)")
    if "." not in match["host"] and ":" not in value.split("/")[0] and match["host"] != "localhost":
        # Docker would read a bare word as a Docker Hub user name, not as a registry.
        raise ValueError(f"{text!r} looks like a Docker Hub account, not a registry: give a host with a "
                         f"dot or a port (e.g. docker.io/{value}, localhost:5000)")
    return value


def remote_ref(registry: str, local_ref: str, identity: str) -> str:
    """Where a local image goes in the registry: numerai-sandbox and its tag there, plus the first 12
    characters of its identity (the digest of its inputs), so a rebuilt image never overwrites the
    one a running Job pulls: numerai-sandbox:py3.11-standard -> REGISTRY/numerai-sandbox:py3.11-standard-1a2b3c4d5e6f.
    The same from any namespace (a local matter): the same image is the same name in the registry."""
    tag = local_ref.rpartition(":")[2] if ":" in local_ref.rsplit("/", 1)[-1] else "latest"
    return f"{registry}/{APP}:{tag}-{identity[:12]}"


def push(client, image: str, ref: str, progress: Callable[[str], None] = lambda line: None,
         keep_tag: bool = False) -> str:
    """Push the local image (id or tag) as `ref` (REGISTRY/REPOSITORY:TAG); returns the pushed digest.

    The local tag `ref` exists only for the push, unless keep_tag (then the caller removes it); a tag
    that was there before stays."""
    import docker.errors

    repository, tag = ref.rsplit(":", 1)
    ledger = None if keep_tag or _has_tag(client, ref) else _write_down(ref)
    digest = ""
    try:
        client.api.tag(image, repository, tag)
        for event in client.api.push(repository, tag=tag, stream=True, decode=True):
            if event.get("error"):
                detail = (event.get("errorDetail") or {}).get("message") or event["error"]
                raise RegistryError(f"pushing {ref} failed: {detail.strip()}")
            status = event.get("status", "")
            if status.startswith(f"{tag}: digest: "):
                digest = status.split("digest: ", 1)[1].split()[0]
            elif status and event.get("id") and status in ("Pushed", "Layer already exists", "Mounted from"):
                progress(f"{ref}: layer {event['id']} {status.lower()}")
    except docker.errors.APIError as exc:
        raise RegistryError(f"pushing {ref} failed: {exc.explanation or exc}") from exc
    finally:
        if ledger is not None:
            untag(client, ref)
            ledger.unlink(missing_ok=True)
    return digest


def _ledger_dir() -> Path:
    return cache_dir() / "images" / "pushing"


def _write_down(ref: str) -> Path:
    """Note the push tag about to be made, and by which process, before making it."""
    entry = ensure_dir(_ledger_dir()) / f"{secrets.token_hex(8)}.json"
    partial = entry.with_suffix(".partial")
    partial.write_text(json.dumps({"ref": ref, "owner": owner_label()}))
    partial.replace(entry)  # whole or not there: a sweep never reads half of it
    return entry


def sweep_push_tags(client, dry_run: bool = False) -> list[str]:
    """The push tags of pushes killed outright (their process is gone), removed unless dry_run; the
    tags that were there. A push still going keeps its own."""
    removed = []
    for entry in sorted(_ledger_dir().glob("*.json")) if _ledger_dir().is_dir() else []:
        try:
            noted = json.loads(entry.read_text())
            ref, owner = noted["ref"], noted["owner"]
        except (OSError, ValueError, KeyError, TypeError):
            continue  # not one we wrote
        if owner_alive(owner):
            continue
        if _has_tag(client, ref):
            removed.append(ref)
            if not dry_run:
                untag(client, ref)
        if not dry_run:
            entry.unlink(missing_ok=True)
    return removed


def untag(client, ref: str) -> None:
    """Remove a tag we made (the image stays under its other names; layers others use stay)."""
    import docker.errors

    with contextlib.suppress(docker.errors.NotFound, docker.errors.APIError):
        client.api.remove_image(ref)


def _has_tag(client, ref: str) -> bool:
    import docker.errors

    try:
        return ref in (client.images.get(ref).tags or [])
    except docker.errors.ImageNotFound:
        return False
