"""Our images: build them offline from the cache, find the one a run needs, list and remove them.

Three layers, each labelled with a digest of its inputs so an unchanged build is skipped:
  numerai-sandbox-base:py3.X-<digest>       a root filesystem with CPython (see bases)
  numerai-sandbox-env:py3.X-<profile>-<d>   + a venv with exactly the pinned wheels
  numerai-sandbox:py3.X-<profile>           + the harness, as a non-root user (what runs)
(numerai-sandbox is the default namespace: NUMERAI_SANDBOX_NAMESPACE=ci-42 names them ci-42-base,
ci-42-env and ci-42, and nothing here sees another namespace's images; see paths.namespace).
An auto image's environment is one more layer on the standard environment, holding only the
distributions auto adds (images/Dockerfile.layer), so it costs the added wheels and no more.
Every build runs with the network disabled: pip sees only the wheels in the context.

An image is ours by its name, not by its labels alone: an image a user builds FROM one of
ours inherits every label we set, but never our tag (see own_tags). Untagged images of ours
(a rebuild moved the tag while a container still used the old one) are known by the id
recorded when it happened, in the cache.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import os
import shutil
import tarfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Callable

import docker
import docker.errors

from .. import __version__
from . import bases, sourcebuild, wheelhouse
from ..sandbox.engine import ENGINE_ERRORS, temp_dir
from ..support.machine import PLATFORM
from ..support.paths import LABEL, cache_dir, ensure_dir, file_lock, repository
from ..support.units import human_bytes
from .pinfiles import images_root
from .pins import SUBSTITUTES, PinSet, pin_set_from_label

Progress = Callable[[str], None]


class ImageUnavailable(Exception):
    """The image cannot be had without the network (or at all): a platform problem."""


class BuildError(ImageUnavailable):
    pass


class PackagesNotFetched(ImageUnavailable):
    """The wheels of distributions the auto profile adds are not in the cache (`images fetch --for`)."""

    def __init__(self, pins: PinSet, missing: list[str]):
        super().__init__(f"the wheelhouse for Python {pins.python} lacks {', '.join(missing)}")
        self.pins, self.missing = pins, missing


class HostResources(Exception):
    """This machine lacks what a build needs (disk): not the model's fault, not a missing cache."""


@dataclass(frozen=True)
class Image:
    """A runtime image as its labels describe it (labels, not assumptions)."""

    ref: str
    id: str
    python: str
    python_full: str
    profile: str
    digest: str
    packages: dict[str, str]
    base: str
    extra: str | None
    built: str
    size: int
    substitutes: dict[str, str]
    env_digest: str = ""
    stale: bool = False  # built from older inputs than today's cache and definition
    added: dict[str, str] = dataclasses.field(default_factory=dict)  # auto: what it adds to standard

    @classmethod
    def from_engine(cls, image) -> "Image":
        labels = image.labels or {}

        def label(key: str, default: str = "") -> str:
            return labels.get(f"{LABEL}.{key}", default)

        tags = own_tags(image, "image") or image.tags or [image.id]
        return cls(tags[0], image.id, label("python"), label("python-full"), label("profile"),
                   label("digest"), pin_set_from_label(label("packages", "{}")), label("base"),
                   label("extra") or None, label("built"), int(image.attrs.get("Size", 0)),
                   pin_set_from_label(label("substitutes", "{}")), label("env-digest"),
                   added=pin_set_from_label(label("added", "{}")))

    def library_versions(self) -> dict[str, str]:
        """Installed versions keyed by the distribution name Numerai pins."""
        return {self.substitutes.get(name, name): version for name, version in sorted(self.packages.items())}

    def to_dict(self) -> dict:
        return {"ref": self.ref, "id": self.id, "python": self.python, "python_full": self.python_full,
                "profile": self.profile, "digest": self.digest, "base": self.base, "extra": self.extra,
                "built": self.built, "size_bytes": self.size, "stale": self.stale, "added": self.added}


def runtime_tag(pins: PinSet) -> str:
    return f"{repository('image')}:py{pins.python}-{pins.tag_profile}"


def env_tag(pins: PinSet, digest: str, space: str | None = None) -> str:
    """The environment image's tag: its pins' profile and the first 12 characters of its inputs' digest."""
    return f"{repository('env', space)}:py{pins.python}-{pins.tag_profile}-{digest[:12]}"


def _definition(name: str) -> bytes:
    return (images_root() / name).read_bytes()


def harness_source() -> bytes:
    return resources.files("runner.sandbox").joinpath("harness.py").read_bytes()


def _sha(*parts: bytes | str) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode() if isinstance(part, str) else part)
        digest.update(b"\0")
    return digest.hexdigest()


def harness_digest() -> str:
    return _sha(harness_source(), _definition("Dockerfile.runtime"))


def env_digest(base: bases.BaseInfo, pins: PinSet) -> str:
    """The env layer's inputs; a wheel built from source counts by the digest of its own inputs. An auto
    image is a layer on the standard environment: its digest is that environment's and the layer's."""
    layered = pins.layer()
    if layered is not None:
        return _layer_digest(env_digest(base, layered[0]), pins)
    built = [sourcebuild.build_key(r, pins, base.digest) for r in sourcebuild.recipes_for(pins)]
    return _sha(base.digest, pins.lock_text(), _definition("Dockerfile.env"), *built)


def _layer_digest(under_digest: str, pins: PinSet) -> str:
    return _sha(under_digest, pins.lock_text(), _definition("Dockerfile.layer"))


# ---------------------------------------------------------------- finding

def own_tags(image, kind: str | None = None) -> list[str]:
    """The image's tags that our naming gives it from its own labels: how we know we built it.

    Runtime images are numerai-sandbox:py<python>-<profile>, env images
    numerai-sandbox-env:py<python>-<profile>-<digest[:12]>, bases numerai-sandbox-base:py<python>-<digest[:12]>
    (numerai-sandbox: this process's namespace). A derived image inherits those labels but carries its own
    name, so it has none of these tags; nor has an image of ours another namespace named.
    `kind` (image, env, base) defaults to the image's own kind label.
    """
    labels = image.labels or {}
    kind = kind or labels.get(f"{LABEL}.kind")
    python, digest = labels.get(f"{LABEL}.python"), (labels.get(f"{LABEL}.digest") or "")[:12]
    if not python:
        return []
    if kind == "image":
        return [t for t in image.tags if t == f"{repository('image')}:py{python}-{labels.get(f'{LABEL}.profile')}"]
    if not digest:
        return []
    if kind == "env":
        return [t for t in image.tags if t.startswith(f"{repository('env')}:py{python}-") and t.endswith(f"-{digest}")]
    return [t for t in image.tags if t == f"{repository('base')}:py{python}-{digest}"]


def _ours(client: docker.DockerClient, kind: str, **labels: str) -> list:
    """Our images of this kind with these labels: labelled so, and named by us (see own_tags)."""
    filters = [f"{LABEL}.kind={kind}"] + [f"{LABEL}.{k}={v}" for k, v in labels.items()]
    return [image for image in client.images.list(filters={"label": filters}) if own_tags(image, kind)]


def find(client: docker.DockerClient, pins: PinSet) -> Image | None:
    """The runtime image our tag names for these pins, if it is ours and has the current harness."""
    try:
        image = client.images.get(runtime_tag(pins))
    except docker.errors.ImageNotFound:
        return None
    labels = image.labels or {}
    if (not own_tags(image, "image") or labels.get(f"{LABEL}.kind") != "image"
            or labels.get(f"{LABEL}.lock") != pins.digest() or labels.get(f"{LABEL}.harness") != harness_digest()):
        return None
    return Image.from_engine(image)


def _finished(images: list) -> list:
    """The tagged ones: a build in progress leaves untagged steps that carry the labels of the image it
    starts from. Building on one of those (a standard environment's look-alike inside an auto build)
    would stack one build on another's half-made layers; removing one fails that build."""
    return [image for image in images if image.tags]


def has_env(client: docker.DockerClient, pins: PinSet) -> bool:
    """Whether the engine holds the environment image for these pins, built from today's base."""
    return _find_env(client, pins, bases.load(pins.python)) is not None


def is_current(image: Image, pins: PinSet) -> bool:
    """Whether the image was built from today's inputs: the cached base and this image definition."""
    base = bases.load(pins.python)
    return base is None or image.env_digest == env_digest(base, pins)


def list_images(client: docker.DockerClient) -> list[Image]:
    return sorted((Image.from_engine(i) for i in _ours(client, "image")), key=lambda i: (i.python, i.profile))


# ---------------------------------------------------------------- building

def ensure(client: docker.DockerClient, pins: PinSet, progress: Progress, force: bool = False) -> Image:
    """The runtime image for these pins: found, or built offline from the cache.

    An image built from older inputs (another base, an older image definition) is rebuilt
    when the cache allows; when it does not, it is still used, marked stale.
    """
    with file_lock(f"image-py{pins.python}-{pins.tag_profile}"):
        found = None if force else find(client, pins)
        if found is not None and is_current(found, pins):
            return found
        base = bases.load(pins.python)
        try:
            env_ref = None if force else _find_env(client, pins, base)
            if env_ref is None:
                env_ref = _make_env(client, pins, base, progress, force)
            built = _build_runtime(client, pins, base, env_ref, progress)
            # Older env and base layers for these pins, now under no image of ours, go.
            retire_older(client, "env", env_ref, python=pins.python, lock=pins.digest())
            if base is not None and base.kind in ("debian", "local-python"):
                retire_older(client, "base", base.tag, python=pins.python)
            return built
        except ImageUnavailable:
            if found is None:
                raise
            progress(f"{found.ref} was built from older inputs and cannot be rebuilt offline; using it")
            return dataclasses.replace(found, stale=True)


def _make_env(client: docker.DockerClient, pins: PinSet, base: bases.BaseInfo | None, progress: Progress,
              force: bool = False) -> str:
    """Build the environment image: from the base and every wheel, or as a layer on the standard one."""
    layered = pins.layer()
    if layered is None:
        if base is None:
            raise ImageUnavailable(f"no base for Python {pins.python} in the cache: run `numerai-sandbox "
                                   f"images fetch --python {pins.python}` once while online")
        return _build_env(client, pins, base, progress, force)
    under, top = layered
    stock = wheelhouse.inventory(pins, only=top)
    if stock.missing:  # said before the standard environment is looked for, or built
        raise PackagesNotFetched(pins, stock.missing)
    under_ref = _find_env(client, under, base) or _make_env(client, under, base, progress)
    return _build_layer(client, pins, stock, under_ref, progress, force)


def _find_env(client: docker.DockerClient, pins: PinSet, base: bases.BaseInfo | None) -> str | None:
    if base is not None:
        images = _ours(client, "env", digest=env_digest(base, pins))
    else:  # no cache at all: any env image for these pins will do
        images = _ours(client, "env", python=pins.python, lock=pins.digest())
    images = _finished(images)
    return images[0].id if images else None


def _build_env(client: docker.DockerClient, pins: PinSet, base: bases.BaseInfo, progress: Progress,
               force: bool = False) -> str:
    stock = wheelhouse.inventory(pins)
    if stock.missing:
        shown = ", ".join(stock.missing[:4]) + (f" and {len(stock.missing) - 4} more" if len(stock.missing) > 4
                                                else "")
        raise ImageUnavailable(f"the wheelhouse for Python {pins.python} ({pins.tag_profile}) lacks {shown}: "
                               f"run `numerai-sandbox images fetch --python {pins.python}"
                               f"{'' if pins.profile == 'standard' else ' --profile ' + pins.profile}`")
    check_wheels(pins, stock, f"numerai-sandbox images fetch --python {pins.python}"
                  f"{'' if pins.profile == 'standard' else ' --profile ' + pins.profile}")
    _check_disk(client, need=3 * sum(p.stat().st_size for p in stock.present.values()) + 1024**3)
    try:
        base_ref = bases.ensure_image(client, base, progress)
    except bases.BaseError as exc:
        raise ImageUnavailable(str(exc)) from exc
    digest = env_digest(base, pins)
    tag = env_tag(pins, digest)
    debs = sorted((bases.base_dir(pins.python) / "debs").glob("*.deb"))
    files: dict[str, bytes | Path] = {"Dockerfile": _definition("Dockerfile.env"),
                                      "requirements.lock": pins.lock_text().encode(),
                                      "debs/.keep": b""}
    files.update({f"debs/{p.name}": p for p in debs})
    files.update({f"wheels/{p.name}": p for p in stock.present.values()})
    size = sum(p.stat().st_size for p in stock.present.values())
    progress(f"building {tag} from {base.description} and {len(stock.present)} wheels "
             f"({human_bytes(size)}), network disabled")
    labels = {f"{LABEL}.kind": "env", f"{LABEL}.python": pins.python, f"{LABEL}.lock": pins.digest(),
              f"{LABEL}.digest": digest, f"{LABEL}.base": base.description,
              f"{LABEL}.python-full": base.python_full}
    buildargs = {"BASE": base_ref, "PYTHON": base.python_bin,
                 "PIP_CHECK": "strict" if pins.profile == "standard" else "report"}
    return _build(client, files, tag, labels, buildargs, progress, nocache=force)


def _build_layer(client: docker.DockerClient, pins: PinSet, stock: wheelhouse.Inventory, under_ref: str,
                 progress: Progress, force: bool = False) -> str:
    """The auto profile's environment: the standard environment plus the added wheels, network disabled."""
    size = sum(p.stat().st_size for p in stock.present.values())
    check_wheels(pins, stock, "numerai-sandbox images fetch --for MODEL.pkl")
    _check_disk(client, need=3 * size + 1024**3)
    under = client.images.get(under_ref).labels or {}
    digest = _layer_digest(under.get(f"{LABEL}.digest", under_ref), pins)
    tag = env_tag(pins, digest)
    top = {name: pins.all[name] for name in stock.present}
    files: dict[str, bytes | Path] = {"Dockerfile": _definition("Dockerfile.layer"),
                                      "added.lock": "".join(f"{n}=={v}\n" for n, v in top.items()).encode()}
    files.update({f"wheels/{p.name}": p for p in stock.present.values()})
    progress(f"building {tag}: the standard environment plus {len(top)} wheel{'s' if len(top) != 1 else ''} "
             f"({human_bytes(size)}), network disabled")
    labels = {f"{LABEL}.kind": "env", f"{LABEL}.python": pins.python, f"{LABEL}.lock": pins.digest(),
              f"{LABEL}.digest": digest, f"{LABEL}.base": under.get(f"{LABEL}.base", ""),
              f"{LABEL}.python-full": under.get(f"{LABEL}.python-full", pins.python),
              f"{LABEL}.added": json.dumps(top, sort_keys=True)}
    return _build(client, files, tag, labels, {"ENV_IMAGE": under_ref}, progress, nocache=force)


def _build_runtime(client: docker.DockerClient, pins: PinSet, base: bases.BaseInfo | None, env_ref: str,
                   progress: Progress) -> Image:
    env_labels = client.images.get(env_ref).labels or {}
    tag = runtime_tag(pins)
    substitutes = {name: numerai for name, numerai in SUBSTITUTES.items() if name in pins.all}
    full_python = base.python_full if base else env_labels.get(f"{LABEL}.python-full", pins.python)
    labels = {
        f"{LABEL}.kind": "image", f"{LABEL}.python": pins.python, f"{LABEL}.python-full": full_python,
        f"{LABEL}.profile": pins.tag_profile, f"{LABEL}.lock": pins.digest(),
        f"{LABEL}.harness": harness_digest(),
        f"{LABEL}.digest": _sha(env_labels.get(f"{LABEL}.digest", env_ref), harness_digest()),
        f"{LABEL}.env-digest": env_labels.get(f"{LABEL}.digest", ""),
        f"{LABEL}.base": env_labels.get(f"{LABEL}.base", ""),
        f"{LABEL}.packages": json.dumps(pins.all, sort_keys=True),
        f"{LABEL}.substitutes": json.dumps(substitutes),
        f"{LABEL}.added": json.dumps(pins.added, sort_keys=True),
        f"{LABEL}.extra": pins.extra_source or "",
        f"{LABEL}.version": __version__,
        f"{LABEL}.built": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    files = {"Dockerfile": _definition("Dockerfile.runtime"), "harness.py": harness_source(),
             "requirements.lock": pins.lock_text().encode()}
    progress(f"building {tag} (harness layer)")
    image_id = _build(client, files, tag, labels, {"ENV_IMAGE": env_ref}, progress)
    return Image.from_engine(client.images.get(image_id))


class _BuildLog:
    """Follows the legacy builder's output: progress lines, the tail for errors, and the layers made."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self.tail: list[str] = []
        self.last_layer: str | None = None
        self.stage_images: list[str] = []  # the final image of each earlier stage (e.g. the install stage)

    def feed(self, text: str) -> None:
        for part in filter(None, text.rstrip().splitlines()):
            self.tail = (self.tail + [part.strip()])[-20:]
            if part.startswith(" ---> ") and len(part.split()) == 2:
                self.last_layer = part.split()[1]
            elif part.startswith("Step ") and " : FROM " in part and self.last_layer:
                self.stage_images.append(self.last_layer)
            if (part.startswith("Step ") and " : LABEL " not in part) or part.lstrip().startswith(
                    ("Processing ", "Installing ", "Successfully installed")):
                self.progress("    " + part.strip()[:160])

    def leftovers(self, failed: bool) -> list[str]:
        """Untagged images this build made that nothing needs: earlier stages, and after a failure its last layer."""
        return self.stage_images + ([self.last_layer] if failed and self.last_layer else [])


def _build(client: docker.DockerClient, files: dict[str, bytes | Path], tag: str, labels: dict[str, str],
           buildargs: dict[str, str], progress: Progress, nocache: bool = False) -> str:
    """Build from an in-memory list of files, network disabled; the image id, or BuildError.

    Nothing useless is left in the engine: earlier build stages (the install stage holds the
    wheels), the layers of a failed build, and images of ours that a rebuild left untagged.
    """
    previous = _image_id(client, tag)
    work = temp_dir("build")
    context = work / "context.tar"
    log = _BuildLog(progress)
    failed = True
    try:
        with tarfile.open(context, "w") as tar:
            for name, content in files.items():
                if isinstance(content, Path):
                    tar.add(content, arcname=name)
                else:
                    info = tarfile.TarInfo(name)
                    info.size, info.mtime, info.mode = len(content), 0, 0o644
                    tar.addfile(info, io.BytesIO(content))
        started = time.monotonic()
        image_id = None
        with open(context, "rb") as handle:
            stream = client.api.build(fileobj=handle, custom_context=True, tag=tag, labels=labels,
                                      buildargs=buildargs, network_mode="none", rm=True, forcerm=True,
                                      decode=True, pull=False, nocache=nocache, platform=PLATFORM)
            for chunk in stream:
                if "error" in chunk:
                    detail = chunk.get("errorDetail", {}).get("message") or chunk["error"]
                    raise BuildError(f"building {tag} failed: {detail.strip()}"
                                     + (f" (last output: {' | '.join(log.tail[-3:])})" if log.tail else ""))
                if "aux" in chunk and "ID" in chunk["aux"]:
                    image_id = chunk["aux"]["ID"]
                log.feed(chunk.get("stream") or "")
        progress(f"built {tag} in {time.monotonic() - started:.0f}s")
        failed = False
        image_id = image_id or client.images.get(tag).id
        if previous and previous != image_id:  # the image this tag named before: replaced
            _discard(client, previous)
        return image_id
    except docker.errors.APIError as exc:
        raise BuildError(f"building {tag} failed: {exc.explanation or exc}") from exc
    finally:
        for stale in log.leftovers(failed):
            _discard(client, stale)
        prune_untagged(client)
        shutil.rmtree(work, ignore_errors=True)


def retire_older(client: docker.DockerClient, kind: str, keep: str, **labels: str) -> None:
    """Remove our other images of this kind and labels (older builds), unless something is built on them.

    The engine refuses to remove an image another image is built from, so a base still under an env
    image, or an env image still under a runtime image, stays. Older builds keep their own tags
    (each names its digest); untagged look-alikes are steps of a build in progress, left alone.
    """
    kept = _image_id(client, keep) or keep
    for image in _finished(_ours(client, kind, **labels)):
        if image.id != kept:
            with contextlib.suppress(*ENGINE_ERRORS):
                client.images.remove(image.id)


def _untagged_ledger() -> Path:
    return ensure_dir(cache_dir() / "images") / "untagged-ids.txt"


def _discard(client: docker.DockerClient, image_id: str) -> None:
    """Remove an untagged image this process made or untagged; if a container still uses it,
    record its id so a later prune_untagged removes it (its labels cannot tell it from a user's)."""
    try:
        client.images.remove(image_id)
    except docker.errors.ImageNotFound:
        pass
    except ENGINE_ERRORS:
        with file_lock("untagged-images"), open(_untagged_ledger(), "a") as ledger:
            ledger.write(image_id + "\n")


def prune_untagged(client: docker.DockerClient) -> None:
    """Remove the untagged images of ours recorded by _discard, once no container uses them.

    Nothing is found by label: a user's image built FROM ours inherits our labels.
    """
    with file_lock("untagged-images"):
        ledger = _untagged_ledger()
        waiting = []
        for image_id in dict.fromkeys(ledger.read_text().split() if ledger.exists() else []):
            try:
                if not client.images.get(image_id).tags:  # tagged again: someone's image now
                    client.images.remove(image_id)
            except docker.errors.ImageNotFound:
                pass
            except ENGINE_ERRORS:
                waiting.append(image_id)
        partial = ledger.with_name(f".{ledger.name}.{os.getpid()}")
        try:
            partial.write_text("".join(f"{i}\n" for i in waiting))
            partial.replace(ledger)  # whole or not at all: a full disk never empties the list
        finally:
            partial.unlink(missing_ok=True)


def check_wheels(pins: PinSet, stock: wheelhouse.Inventory, fetch: str) -> None:
    """Refuse to build from a cached wheel that is not what was downloaded (truncated or altered since): pip
    in the build would fail on it with a confusing error about a zip file. `images fetch` fetches it again."""
    bad = wheelhouse.damaged(pins.python, stock.present.values())
    if bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise ImageUnavailable(f"{bad[0]}{more}: `{fetch}` fetches it again")


def _check_disk(client: docker.DockerClient, need: int) -> None:
    """Refuse to start a build the engine's disk cannot hold (a full disk fails builds obscurely)."""
    import psutil

    root = Path((client.info() or {}).get("DockerRootDir") or "/var/lib/docker")
    if not root.exists():
        return  # a remote engine: its disk is not ours to see
    free = psutil.disk_usage(str(root)).free
    if free < need:
        raise HostResources(f"building needs about {human_bytes(need)} free under {root}, "
                            f"which has {human_bytes(free)}")


def _image_id(client: docker.DockerClient, ref: str) -> str | None:
    try:
        return client.images.get(ref).id
    except docker.errors.ImageNotFound:
        return None


def profile_matches(profile: str, wanted: str | None) -> bool:
    """Whether an image's profile (as its tag names it) is the one a command was given: None matches
    every one, `auto` every auto image (each is named by its package set, auto-1a2b3c4d5e6f), any
    other name itself."""
    return not wanted or profile == wanted or (wanted == "auto" and profile.startswith("auto-"))


# ---------------------------------------------------------------- removing

def removal_plan(client: docker.DockerClient, python: str | None = None, profile: str | None = None,
                 everything: bool = False) -> list:
    """What `images rm` removes: our runtime images (of this Python and profile) and the environment
    layers only they use; with `everything`, every env and base layer of ours too (the cache stays, so
    `images build` can make them again offline)."""
    labels = {"python": python} if python else {}
    doomed = [i for i in _finished(_ours(client, "image", **labels))
              if profile_matches((i.labels or {}).get(f"{LABEL}.profile", ""), profile)]
    locks = {(i.labels or {}).get(f"{LABEL}.lock") for i in doomed}
    kept_locks = {(i.labels or {}).get(f"{LABEL}.lock") for i in _ours(client, "image")} - locks
    doomed += [i for i in _finished(_ours(client, "env", **labels))
               if everything or (i.labels or {}).get(f"{LABEL}.lock") in locks - kept_locks]
    if everything:
        doomed += _finished(_ours(client, "base", **labels))
    return doomed


def remove(client: docker.DockerClient, doomed: list) -> tuple[list[str], list[str]]:
    """Remove the planned images by our own names: (names removed, names that could not go and why).

    Only our tags go: an image a user also tagged, or built an image on, stays for them.
    """
    prune_untagged(client)
    removed, refused = [], []
    for image in doomed:
        for tag in own_tags(image):
            try:
                client.images.remove(tag, force=True)
                removed.append(tag)
            except docker.errors.ImageNotFound:
                pass
            except docker.errors.APIError as exc:
                refused.append(f"{tag}: {exc.explanation or exc}")
    return removed, refused
