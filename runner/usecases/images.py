"""`images`: fetch what an image needs (the only networked step), build it offline, list, remove, push them,
and keep Numerai's pins current. What each command does; the command line says it (through a Console).

UsageError: the request names something impossible (nothing ran); Failed: an Error outside a run (exit 3).
"""

from __future__ import annotations

import time
from pathlib import Path

from ..images.pins import PinError, PinSet, experimental, pin_set
from ..run import UsageError
from ..support.console import Console
from ..support.units import human_bytes


class Failed(Exception):
    """What the images command could not do (not a usage error): one line, exit code 3."""


def pins_for(python: str | None, profile: str | None, model: Path | None, requirements: Path | None,
             extra: Path | None, say=lambda line: None) -> PinSet:
    """The pin set an images command works on: a Python and profile, or (`model`) what `run MODEL` uses."""
    if model is not None and profile not in (None, "auto"):
        raise UsageError(f"--for MODEL is the auto profile for that pickle; it cannot be combined with --profile "
                         f"{profile}")
    if model is None and python is None:
        raise UsageError("--python is required (or --for MODEL.pkl, which reads it from the pickle)")
    if model is None and profile == "auto":
        raise UsageError("--profile auto depends on the pickle: use --for MODEL.pkl")
    needs = None
    if model is not None:
        python, needs = for_model(model, python, say)
    try:
        return pin_set(python, "auto" if model is not None else profile or "standard", requirements, extra, needs)
    except PinError as exc:
        raise UsageError(str(exc)) from exc


def for_model(model: Path, python: str | None, say) -> tuple[str, dict[str, str]]:
    """The image Python for MODEL (the one that made it, unless given) and what auto adds for it there."""
    from ..inspection import choose_python, inspect_pickle, numerai_additions

    inspection = inspect_pickle(model)
    if not inspection.is_pickle:
        raise UsageError(f"{model} is not a complete pickle ({'; '.join(inspection.problems[:1]) or 'unreadable'})")
    if python is None:
        choice = choose_python(inspection)
        if choice.python is None:
            raise UsageError(f"{model}: {choice.reason}")
        python = choice.python
        say(f"{model.name}: Python {python}: {choice.reason}")
    return python, numerai_additions(inspection, python)


def fetch(client, pins: PinSet, console: Console, *, model: Path | None = None, python_given: bool = False,
          requirements: Path | None = None, extra: Path | None = None, python_home: Path | None = None,
          pull: bool = True) -> None:
    """Download what the image of `pins` needs into the cache, saying what and how big first."""
    from ..images import bases, sourcebuild, store, wheelhouse

    started = time.monotonic()
    layered = pins.layer()
    # An auto image is a layer on the standard environment: when that is built, only the layer is needed.
    only = layered[1] if layered is not None and store.has_env(client, layered[0]) else None
    if model is not None and not pins.added:
        console.line(f"{model.name} needs nothing beyond the standard image for Python {pins.python}")
        if store.has_env(client, pins):  # built already: run needs nothing from the network
            console.line(f"nothing to download: `numerai-sandbox run {model}` works offline")
            return
    announce(pins, only, console)
    try:
        if only is None:
            base = bases.fetch(client, pins.python, console.progress, python_home, allow_registry=pull)
            console.line(f"base: {base.description}")
            if base.kind in ("local-image", "pulled"):
                bases.fetch_debs(pins.python, console.progress)
        stock = wheelhouse.fetch(pins, console.progress, only, sourcebuild.built_from_source(pins))
        if only is None:
            sourcebuild.ensure(client, base, pins, console.progress)  # pins with no wheel for this Python
            stock = wheelhouse.inventory(pins)
    except (bases.BaseError, wheelhouse.WheelhouseError, sourcebuild.SourceBuildError) as exc:
        raise Failed(str(exc)) from exc
    if pins.skipped:
        console.line(f"left out (not for Linux): {', '.join(pins.skipped)}")
    size = sum(p.stat().st_size for p in stock.present.values())
    if model is not None:
        again = f"numerai-sandbox run {model}" + (f" --python {pins.python}" if python_given else "")
    else:
        again = f"numerai-sandbox images build --python {pins.python}"
        again += f" --profile {pins.profile}" if pins.profile != "standard" else ""
        again += f" --requirements {requirements}" if requirements else ""
    again += f" --extra-requirements {extra}" if extra else ""
    console.line(f"fetched Python {pins.python} ({pins.tag_profile}): {len(stock.present)} wheels, "
                 f"{human_bytes(size)}, in {time.monotonic() - started:.0f}s; now `{again}` works offline")


def fetch_wheels(pins: PinSet, console: Console, *, model: Path | None = None) -> None:
    """For the process sandbox (no engine): download the wheels of `pins` into the cache, then make their
    environment under this Python when it is the pins' Python, so a run needs no network and no wait."""
    from ..images import venv, wheelhouse

    started = time.monotonic()
    announce(pins, None, console)
    try:
        stock = wheelhouse.fetch(pins, console.progress)
    except wheelhouse.WheelhouseError as exc:
        raise Failed(str(exc)) from exc
    if stock.missing:
        raise Failed(f"no wheel for Linux of {', '.join(stock.missing[:6])}: the process sandbox installs wheels "
                     "only (a Docker engine builds the others from source)")
    size = sum(p.stat().st_size for p in stock.present.values())
    console.line(f"fetched Python {pins.python} ({pins.tag_profile}): {len(stock.present)} wheels, "
                 f"{human_bytes(size)}, in {time.monotonic() - started:.0f}s")
    found = venv.interpreter_for(pins.python)
    again = f"numerai-sandbox run --backend process {model if model is not None else 'MODEL.pkl'}"
    if found is None:
        console.line(f"no Python {pins.python} on this machine to make its environment with; `{again}` makes it "
                     f"once one is installed")
        return
    try:
        made = venv.ensure(pins, found, console.progress)
    except venv.VenvUnavailable as exc:
        raise Failed(str(exc)) from exc
    console.line(f"environment {made.path.name} ready; now `{again}` works offline")


def environments() -> list:
    """The process sandbox's environments in the cache (runner.images.venv.Made). They are this machine's cache,
    shared by every namespace like the wheels they are made of: only the default namespace lists and removes
    them (a CI job's or a test's namespace never takes them from the others)."""
    from ..images import venv
    from ..support.paths import APP, namespace

    return venv.made() if namespace() == APP else []


def environment_removal(python: str | None, profile: str | None) -> list[Path]:
    """The environments `images rm` removes: those of `python` and `profile` (auto: every auto one), else all;
    none from a namespace other than the default (see environments)."""

    def chosen(env) -> bool:
        wanted = profile is None or env.profile == profile or (profile == "auto" and env.profile.startswith("auto-"))
        return (python is None or env.python == python) and wanted

    return [env.path for env in environments() if chosen(env)]


def remove_environments(paths: list[Path]) -> list[str]:
    from ..images import venv

    return venv.remove(paths)


def announce(pins: PinSet, only: dict[str, str] | None, console: Console) -> None:
    """What the fetch adds and downloads, with sizes, before it starts."""
    from ..images import wheelhouse

    if pins.added:
        console.line(f"auto: the standard image for Python {pins.python} plus, at Numerai's pins:")
        sizes = wheelhouse.download_sizes(pins.python, pins.added)
        width = max(len(f"{name} {version}") for name, version in pins.added.items())
        for name, version in pins.added.items():
            why = f"for {pins.wanted[name]}" if name in pins.wanted else f"required by {pins.required_by.get(name, '?')}"
            console.line(f"  {f'{name} {version}':<{width}}  {human_bytes(sizes.get(name)):>10}  {why}")
        for note in pins.notes:
            console.line(f"  note: {note}")
    missing = wheelhouse.inventory(pins, only).missing
    wanted = pins.all if only is None else only
    if not missing:
        console.line(f"nothing to download: all {len(wanted)} wheels are cached")
        return
    sizes = wheelhouse.download_sizes(pins.python, dict(m.split("==", 1) for m in missing))
    known = [s for s in sizes.values() if s is not None]
    total = human_bytes(sum(known)) + (" and more (some sizes unknown)" if len(known) < len(sizes) else "")
    console.line(f"to download: {len(missing)} wheel{'s' if len(missing) != 1 else ''}, {total} "
                 f"({len(wanted) - len(missing)} of {len(wanted)} already cached)")


def build(client, pins: PinSet, console: Console, *, model: Path | None = None, force: bool = False) -> None:
    """Build the image of `pins` from the local cache, the build's network disabled."""
    from ..images import store

    started = time.monotonic()
    try:
        image = store.ensure(client, pins, console.progress, force=force)
    except (store.ImageUnavailable, store.HostResources) as exc:
        raise Failed(str(exc) + (f": run `numerai-sandbox images fetch --for {model}`" if isinstance(
            exc, store.PackagesNotFetched) else "")) from exc
    console.line(f"{image.ref}: Python {image.python_full}, {image.profile}, {human_bytes(image.size)}, "
                 f"digest {image.digest[:12]} ({time.monotonic() - started:.1f}s)"
                 + (f"; {experimental(image.python)}" if experimental(image.python) else ""))


# ---------------------------------------------------------------- Numerai's pins

def vendored_pins() -> list[str]:
    """Per Python: how many pins, from which numerai-predict commit."""
    from ..images import numerai

    lines = []
    for python in numerai.vendored_pythons():
        listing = numerai.numerai_list(python)
        lines.append(f"Python {python}: {len(listing.raw)} pins from numerai-predict {listing.commit or '?'}"
                     + (f" ({len(listing.left_out)} not for Linux)" if listing.left_out else ""))
    return lines


def upstream_pins(source: Path | None):
    """(numerai-predict's current pins, their comparison with the vendored ones, where they come from)."""
    from ..images import upstream

    try:
        theirs = upstream.from_checkout(source) if source is not None else upstream.from_github()
        comparison = upstream.compare(theirs)
    except upstream.UpstreamError as exc:
        raise Failed(str(exc)) from exc
    return theirs, comparison, f"numerai-predict {theirs.commit[:12] if theirs.commit else '(no git commit)'} " \
                               f"({theirs.source})"


def update_pins(theirs) -> tuple[list[Path], list[Path]]:
    """Rewrite the vendored pins from numerai-predict's: (written, removed)."""
    from ..images import upstream

    return upstream.update(theirs)


def python_order(python: str):
    from ..images import numerai

    return numerai.python_key(python)


# ---------------------------------------------------------------- list, remove, push

def list_images(client) -> list:
    from ..images import store

    return store.list_images(client)


def removal(client, python: str | None, profile: str | None, everything: bool) -> tuple[list, list[str]]:
    """(the images `images rm` would remove, their tags of ours)."""
    from ..images import store

    doomed = store.removal_plan(client, python, profile, everything)
    return doomed, [tag for image in doomed for tag in store.own_tags(image)]


def remove_images(client, doomed: list, dry_run: bool = False) -> tuple[list[str], list[str]]:
    """(what went, or would go: the pre-started sandboxes waiting in those images first, then the images; what
    was kept and why)."""
    from ..images import store
    from ..sandbox import pool

    # The pre-started sandboxes made from them go first: each holds its image, and could serve no run after.
    removed = pool.remove_for_images(client, {image.id for image in doomed}, dry_run=dry_run)
    if dry_run:
        return removed + [tag for image in doomed for tag in store.own_tags(image)], []
    gone, refused = store.remove(client, doomed)
    return removed + gone, refused


def to_push(client, python: str | None, profile: str | None, model: Path | None) -> tuple[list, list]:
    """(the images the user named, the other images of that Python): with only --python, its standard image."""
    from ..images import store

    if model is not None:
        image = store.find(client, pins_for(python, None, model, None, None))
        if image is None:
            raise Failed(f"the image `numerai-sandbox run {model}` uses is not built here: `numerai-sandbox images "
                         f"build --for {model}` builds it")
        return [image], []
    wanted = profile or "standard"
    found = [i for i in store.list_images(client) if i.python == python]
    chosen = [i for i in found if wanted == "all" or store.profile_matches(i.profile, wanted)]
    if not chosen:
        there = f" (here: {', '.join(i.profile for i in found)}; name one with --profile)" if found else ""
        build_it = f"numerai-sandbox images build --python {python}" + (" --profile full" if wanted == "full" else "")
        raise Failed(f"no {wanted} image for Python {python} here{there}"
                     + (f": `{build_it}` builds it" if wanted in ("standard", "full") else ""))
    return chosen, [i for i in found if i.id not in {c.id for c in chosen}]


def push_images(client, registry: str, chosen: list, console: Console) -> None:
    """Each image to the registry under our name and its digest; the local push tag removed afterwards."""
    from ..sandbox.registry import RegistryError, push, remote_ref, sweep_push_tags

    for tag in sweep_push_tags(client):
        console.line(f"removed {tag} (the local tag of an earlier push that was killed)")
    for image in chosen:
        ref = remote_ref(registry, image.ref, image.digest)
        started = time.monotonic()
        try:
            digest = push(client, image.id, ref, console.progress)
        except RegistryError as exc:
            raise Failed(str(exc)) from exc
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (Interrupted): push() removed its tag
            raise Failed(f"interrupted ({exc.args[0] if exc.args else 'SIGINT'}) while pushing {ref}; its local tag is "
                         "removed (what the registry got stays there, and the same command pushes the rest)") from exc
        console.line(f"pushed {ref} ({digest or 'digest unknown'}, {time.monotonic() - started:.1f}s)")


def check_registry(value: str) -> str:
    """HOST[:PORT][/PATH] as a registry reference (ValueError when it is not one)."""
    from ..sandbox.registry import check_registry as checked

    return checked(value)
