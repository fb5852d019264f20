"""Pushing our images to a container registry the user names (for sandboxes on other machines).

A cluster cannot use the images of this machine's Docker engine: its nodes pull them from
a registry. The engine pushes (it already holds the user's registry credentials, from
`docker login`); a local tag is made for the push and removed afterwards, so nothing is
left behind in the engine but what was there before. The Docker SDK is imported by the
functions that talk to the engine, so the command line can check a registry name cheaply.
"""

from __future__ import annotations

import contextlib
import re
from typing import Callable

from .backend import BackendUnavailable

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
    """Where a local image goes in the registry: its repository and tag there, plus the first 12
    characters of its identity (the digest of its inputs), so a rebuilt image never overwrites the
    one a running Job pulls: numerai-sandbox:py3.11-standard -> REGISTRY/numerai-sandbox:py3.11-standard-1a2b3c4d5e6f."""
    repository, _, tag = local_ref.rpartition(":")
    repository = repository.rsplit("/", 1)[-1] if repository else local_ref
    return f"{registry}/{repository}:{tag or 'latest'}-{identity[:12]}"


def push(client, image: str, ref: str, progress: Callable[[str], None] = lambda line: None,
         keep_tag: bool = False) -> str:
    """Push the local image (id or tag) as `ref` (REGISTRY/REPOSITORY:TAG); returns the pushed digest.

    The local tag `ref` exists only for the push, unless keep_tag (then the caller removes it)."""
    import docker.errors

    repository, tag = ref.rsplit(":", 1)
    existed = _has_tag(client, ref)
    client.api.tag(image, repository, tag)
    digest = ""
    try:
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
        if not existed and not keep_tag:
            untag(client, ref)
    return digest


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
