"""`numerai-sandbox images`: fetch (the only networked step), build offline, list and remove our images."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import click

from ..support.console import Console
from ..images.pins import PROFILES, SUPPORTED_PYTHONS, experimental
from ..sandbox.registry import check_registry
from ..support.units import human_bytes
from .common import EngineCommand, InputError, ago, connect_engine, converter, fail

@click.group("images")
def images_group() -> None:
    """Build, list and remove the per-Python images, and keep Numerai's pins current (the network is
    only used by `fetch` and `pins`)."""


def _pins(python: str | None, profile: str | None, model: Path | None, requirements: Path | None,
          extra: Path | None):
    """The pin set an images command works on: a Python and profile, or (--for) what `run MODEL` uses."""
    from ..images.pins import PinError, pin_set

    if model is not None and profile not in (None, "auto"):
        raise InputError(f"--for MODEL is the auto profile for that pickle; it cannot be combined with --profile "
                         f"{profile}")
    if model is None and python is None:
        raise InputError("--python is required (or --for MODEL.pkl, which reads it from the pickle)")
    if model is None and profile == "auto":
        raise InputError("--profile auto depends on the pickle: use --for MODEL.pkl")
    needs = None
    if model is not None:
        python, needs = _for_model(model, python)
    try:
        return pin_set(python, "auto" if model is not None else profile or "standard", requirements, extra, needs)
    except PinError as exc:
        raise InputError(str(exc)) from exc


def _for_model(model: Path, python: str | None) -> tuple[str, dict[str, str]]:
    """The image Python for MODEL (the one that made it, unless given) and what auto adds for it there."""
    from ..inspection.analysis import choose_python, inspect_pickle, numerai_additions

    inspection = inspect_pickle(model)
    if not inspection.is_pickle:
        raise InputError(f"{model} is not a complete pickle ({'; '.join(inspection.problems[:1]) or 'unreadable'})")
    if python is None:
        choice = choose_python(inspection)
        if choice.python is None:
            raise InputError(f"{model}: {choice.reason}")
        python = choice.python
        click.echo(f"{model.name}: Python {python}: {choice.reason}")
    return python, numerai_additions(inspection, python)


python_option = click.option("--python", "python", type=click.Choice(SUPPORTED_PYTHONS), metavar="PYTHON",
                             help=f"Python version of the image: {', '.join(SUPPORTED_PYTHONS)} (3.14: experimental, "
                                  "as Numerai marks it); with --for, default: the one that made the pickle.")
profile_option = click.option("--profile", type=click.Choice(PROFILES), default=None, metavar="PROFILE",
                              help="standard (default: Numerai's versions of the usual packages), full (Numerai's "
                                   "whole pin list), or auto (needs --for).")
for_option = click.option("--for", "model", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                          metavar="MODEL.pkl", help="What `run MODEL.pkl` needs (the auto profile): the standard "
                          "image plus the packages the pickle needs from Numerai's image, with their dependencies.")
extra_option = click.option("--extra-requirements", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                            metavar="FILE", help="Your own exact pins (name==version) layered on top of the profile.")


@images_group.command("fetch", cls=EngineCommand)
@python_option
@profile_option
@for_option
@click.option("--requirements", type=click.Path(exists=True, dir_okay=False, path_type=Path), metavar="FILE",
              help="For --profile full: this pin list instead of Numerai's vendored one (images/py3.X/numerai.txt).")
@extra_option
@click.option("--python-home", type=click.Path(exists=True, file_okay=False, path_type=Path), metavar="DIR",
              help="A local CPython installation for the offline base (pyenv, uv, python-build-standalone).")
@click.option("--no-pull", is_flag=True, help="Do not try a registry for python:X-slim.")
def images_fetch(python: str | None, profile: str | None, model: Path | None, requirements: Path | None,
                 extra_requirements: Path | None, python_home: Path | None, no_pull: bool) -> None:
    """Download what an image needs into the local cache (the only step that uses the network).

    It says what it will download, and how big, first. With --for MODEL.pkl: exactly what
    `numerai-sandbox run MODEL.pkl` lacks, after which run works offline.
    """
    from ..images import bases, sourcebuild, store, wheelhouse

    pins = _pins(python, profile, model, requirements, extra_requirements)
    console = Console()
    client = connect_engine()
    started = time.monotonic()
    layered = pins.layer()
    # An auto image is a layer on the standard environment: when that is built, only the layer is needed.
    only = layered[1] if layered is not None and store.has_env(client, layered[0]) else None
    if model is not None and not pins.added:
        console.line(f"{model.name} needs nothing beyond the standard image for Python {pins.python}")
        if store.has_env(client, pins):  # built already: run needs nothing from the network
            console.line(f"nothing to download: `numerai-sandbox run {model}` works offline")
            return
    _announce(pins, only, console)
    try:
        if only is None:
            base = bases.fetch(client, pins.python, console.progress, python_home, allow_registry=not no_pull)
            console.line(f"base: {base.description}")
            if base.kind in ("local-image", "pulled"):
                bases.fetch_debs(pins.python, console.progress)
        stock = wheelhouse.fetch(pins, console.progress, only, sourcebuild.built_from_source(pins))
        if only is None:
            sourcebuild.ensure(client, base, pins, console.progress)  # pins with no wheel for this Python
            stock = wheelhouse.inventory(pins)
    except (bases.BaseError, wheelhouse.WheelhouseError, sourcebuild.SourceBuildError) as exc:
        fail(str(exc))
    if pins.skipped:
        console.line(f"left out (not for Linux): {', '.join(pins.skipped)}")
    size = sum(p.stat().st_size for p in stock.present.values())
    if model is not None:
        again = f"numerai-sandbox run {model}" + (f" --python {pins.python}" if python else "")
    else:
        again = f"numerai-sandbox images build --python {pins.python}"
        again += f" --profile {pins.profile}" if pins.profile != "standard" else ""
        again += f" --requirements {requirements}" if requirements else ""
    again += f" --extra-requirements {extra_requirements}" if extra_requirements else ""
    console.line(f"fetched Python {pins.python} ({pins.tag_profile}): {len(stock.present)} wheels, "
                 f"{human_bytes(size)}, in {time.monotonic() - started:.0f}s; now `{again}` works offline")


def _announce(pins, only: dict[str, str] | None, console: Console) -> None:
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


@images_group.command("build", cls=EngineCommand)
@python_option
@profile_option
@for_option
@click.option("--requirements", type=click.Path(exists=True, dir_okay=False, path_type=Path), metavar="FILE",
              help="For --profile full: the pin list it was fetched with.")
@extra_option
@click.option("--force", is_flag=True, help="Rebuild even if an image with the same inputs exists.")
def images_build(python: str | None, profile: str | None, model: Path | None, requirements: Path | None,
                 extra_requirements: Path | None, force: bool) -> None:
    """Build the image from the local cache, with the build's network disabled."""
    from ..images import store as images

    pins = _pins(python, profile, model, requirements, extra_requirements)
    console = Console()
    client = connect_engine()
    started = time.monotonic()
    try:
        image = images.ensure(client, pins, console.progress, force=force)
    except (images.ImageUnavailable, images.HostResources) as exc:
        fail(str(exc) + (f": run `numerai-sandbox images fetch --for {model}`" if isinstance(
            exc, images.PackagesNotFetched) else ""))
    console.line(f"{image.ref}: Python {image.python_full}, {image.profile}, {human_bytes(image.size)}, "
                 f"digest {image.digest[:12]} ({time.monotonic() - started:.1f}s)"
                 + (f"; {experimental(image.python)}" if experimental(image.python) else ""))


@images_group.command("pins")
@click.option("--check", is_flag=True, help="Compare the vendored pins with numerai-predict's current ones; exit 1 "
              "when they differ.")
@click.option("--update", is_flag=True, help="Rewrite images/py3.X/numerai.txt from numerai-predict, recording its "
              "commit.")
@click.option("--source", type=click.Path(exists=True, file_okay=False, path_type=Path), metavar="DIR",
              help="A numerai-predict checkout (py3.X/requirements.txt per Python) instead of GitHub (online).")
def images_pins(check: bool, update: bool, source: Path | None) -> None:
    """Numerai's pins: the numerai-predict commit each Python's list comes from; --check compares them with
    numerai-predict's current ones (exit 0 equal, 1 different), --update rewrites them."""
    from ..images import numerai, upstream

    if check and update:
        raise InputError("--check and --update: choose one")
    if not (check or update):
        if source is not None:
            raise InputError("--source goes with --check or --update")
        for python in numerai.vendored_pythons():
            listing = numerai.numerai_list(python)
            click.echo(f"Python {python}: {len(listing.raw)} pins from numerai-predict {listing.commit or '?'}"
                       + (f" ({len(listing.left_out)} not for Linux)" if listing.left_out else ""))
        return
    try:
        theirs = upstream.from_checkout(source) if source is not None else upstream.from_github()
        comparison = upstream.compare(theirs)
    except upstream.UpstreamError as exc:
        fail(str(exc))
    where = f"numerai-predict {theirs.commit[:12] if theirs.commit else '(no git commit)'} ({theirs.source})"
    if check:
        if comparison.equal:
            click.echo(f"the vendored pins match {where}: Python {', '.join(sorted(theirs.texts, key=numerai.python_key))}")
            return
        click.echo(f"the vendored pins differ from {where}:")
        click.echo("\n".join(f"  {line}" for line in comparison.lines()))
        click.echo("`numerai-sandbox images pins --update" + (f" --source {source}" if source else "")
                   + "` rewrites them")
        sys.exit(1)
    written, removed = upstream.update(theirs)
    for line in comparison.lines():
        click.echo(f"  {line}")
    for path in written:
        click.echo(f"wrote {path}")
    for path in removed:
        click.echo(f"removed {path}")
    if not (written or removed):
        click.echo(f"the vendored pins already match {where}")
        return
    changed = sorted({p.parent.name[2:] for p in written + removed}, key=numerai.python_key)
    click.echo(f"now regenerate what is derived from them: `python scripts/make_module_map.py` (online), and "
               f"`python scripts/lock_standard.py --python X` for Python {', '.join(changed)}; then commit images/")


@images_group.command("list", cls=EngineCommand)
@click.option("--json", "as_json", is_flag=True, help="Print the images as a JSON array.")
def images_list(as_json: bool) -> None:
    """Our images: Python, profile, inputs digest, size and age."""
    from ..images import store as images

    found = images.list_images(connect_engine())
    if as_json:
        click.echo(json.dumps([i.to_dict() for i in found], indent=2))
        return
    if not found:
        from ..support.paths import APP, namespace

        where = "" if namespace() == APP else f" in the namespace {namespace()} (NUMERAI_SANDBOX_NAMESPACE)"
        click.echo(f"no numerai-sandbox images{where} yet: `numerai-sandbox images fetch --python 3.11` then "
                   "`images build`")
        return
    click.echo(f"{'IMAGE':<42} {'PYTHON':<8} {'PROFILE':<18} {'DIGEST':<13} {'SIZE':>10}  AGE")
    for image in found:
        click.echo(f"{image.ref:<42} {image.python_full:<8} {image.profile:<18} {image.digest[:12]:<13} "
                   f"{human_bytes(image.size):>10}  {ago(image.built)}")


@images_group.command("rm", cls=EngineCommand)
@click.option("--python", "python", type=click.Choice(SUPPORTED_PYTHONS), metavar="PYTHON",
              help=f"Only this Python's images: {', '.join(SUPPORTED_PYTHONS)}.")
@click.option("--profile", metavar="PROFILE",
              help="Only this profile's images: standard, full, auto (every auto image), or the profile `images "
                   "list` shows for an image with --extra-requirements.")
@click.option("--all", "everything", is_flag=True, help="Also the environment and base layers.")
@click.option("--yes", "-y", is_flag=True, help="Remove every image without asking (needed without a terminal).")
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
def images_rm(python: str | None, profile: str | None, everything: bool, yes: bool, dry_run: bool) -> None:
    """Remove our images, never anyone else's: an image you built on one of ours, or tagged yourself,
    stays. Without --python or --profile every image of ours goes: asked on a terminal, --yes otherwise.
    The pre-started sandboxes waiting in those images go first.
    """
    import sys

    from ..images import store as images
    from ..sandbox import pool

    client = connect_engine()
    doomed = images.removal_plan(client, python, profile, everything)
    names = [tag for image in doomed for tag in images.own_tags(image)]
    if not names or dry_run:
        waiting = pool.remove_for_images(client, {image.id for image in doomed}, dry_run=True)
        click.echo("\n".join(f"would remove {n}" for n in waiting + names) or "nothing to remove")
        return
    if python is None and profile is None and not yes:
        listed = ", ".join(names)
        if not sys.stdin.isatty():
            raise InputError(f"without --python or --profile this removes every image of ours ({listed}): "
                             "pass --yes to confirm, or --dry-run to list them")
        click.confirm(f"Remove every numerai-sandbox image ({listed})?", abort=True)
    # The pre-started sandboxes made from them go first: each holds its image, and could serve no run after.
    removed = pool.remove_for_images(client, {image.id for image in doomed})
    gone, refused = images.remove(client, doomed)
    removed += gone
    click.echo("\n".join(f"removed {r}" for r in removed) or "nothing removed")
    for reason in refused:
        click.echo(f"kept {reason}")


@images_group.command("push", cls=EngineCommand)
@click.option("--registry", required=True, callback=converter(check_registry), metavar="HOST[:PORT][/PATH]",
              help="The registry your cluster pulls from (plain HTTP is allowed for 127.0.0.0/8 only, as Docker "
                   "does; log in first with `docker login HOST` where it needs credentials).")
@click.option("--python", "python", type=click.Choice(SUPPORTED_PYTHONS), metavar="PYTHON",
              help="The Python whose image to push: its standard image, unless --profile names another.")
@click.option("--profile", metavar="PROFILE",
              help="standard (the default), full, a profile as `images list` shows it (auto-1a2b3c4d5e6f, "
                   "standard-x1a2b3c4d), auto (every auto image of that Python) or all (every image of that Python).")
@click.option("--for", "model", type=click.Path(exists=True, dir_okay=False, path_type=Path), metavar="MODEL.pkl",
              help="The image `run MODEL.pkl` runs in (`images build --for MODEL.pkl` builds it).")
def images_push(registry: str, python: str | None, profile: str | None, model: Path | None) -> None:
    """Push the images you name to a registry, for sandboxes on a cluster: --python X pushes X's standard
    image, --profile another (or all of X's), --for the one a pickle runs in. Tag: ours plus the image's
    digest. The push's local tag is removed afterwards, interrupted or not (`clean` removes the tag of a
    push that was killed outright)."""
    from ..sandbox.registry import RegistryError, push, remote_ref, sweep_push_tags

    if model is None and python is None:
        raise InputError("name what to push: --python X (its standard image; --profile for another, or all of "
                         "them), or --for MODEL.pkl (the image that pickle runs in)")
    if model is not None and profile is not None:
        raise InputError(f"--for MODEL.pkl names one image (the one `run {model}` uses): leave out --profile")
    client = connect_engine()
    chosen, others = _to_push(client, python, profile, model)
    console = Console()
    for tag in sweep_push_tags(client):
        console.line(f"removed {tag} (the local tag of an earlier push that was killed)")
    for image in chosen:
        ref = remote_ref(registry, image.ref, image.digest)
        started = time.monotonic()
        try:
            digest = push(client, image.id, ref, console.progress)
        except RegistryError as exc:
            fail(str(exc))
        except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM (runs.Interrupted): push() removed its tag
            fail(f"interrupted ({exc.args[0] if exc.args else 'SIGINT'}) while pushing {ref}; its local tag is "
                 "removed (what the registry got stays there, and the same command pushes the rest)")
        console.line(f"pushed {ref} ({digest or 'digest unknown'}, {time.monotonic() - started:.1f}s)")
    if others:
        console.line(f"not pushed, also here for Python {chosen[0].python}: "
                     + ", ".join(_described(image) for image in others))
        console.line(f"  `numerai-sandbox images push --registry {registry} --python {chosen[0].python} --profile "
                     "NAME` pushes one of them, `--profile all` every one")


def _to_push(client, python: str | None, profile: str | None, model: Path | None) -> tuple[list, list]:
    """(the images the user named, the other images of that Python): with only --python, its standard image."""
    from ..images import store as images

    if model is not None:
        image = images.find(client, _pins(python, None, model, None, None))
        if image is None:
            fail(f"the image `numerai-sandbox run {model}` uses is not built here: `numerai-sandbox images build "
                 f"--for {model}` builds it")
        return [image], []
    wanted = profile or "standard"
    found = [i for i in images.list_images(client) if i.python == python]
    chosen = [i for i in found if wanted == "all" or images.profile_matches(i.profile, wanted)]
    if not chosen:
        there = f" (here: {', '.join(i.profile for i in found)}; name one with --profile)" if found else ""
        build = f"numerai-sandbox images build --python {python}" + (" --profile full" if wanted == "full" else "")
        fail(f"no {wanted} image for Python {python} here{there}"
             + (f": `{build}` builds it" if wanted in ("standard", "full") else ""))
    return chosen, [i for i in found if i.id not in {c.id for c in chosen}]


def _described(image) -> str:
    """An image as the list of what push left out names it: profile, what auto adds, size."""
    names = [f"{name} {version}" for name, version in image.added.items()]
    adds = f"adds {', '.join(names[:2])}" + (f" and {len(names) - 2} more" if len(names) > 2 else "") + ", " \
        if names else ""
    return f"{image.profile} ({adds}{human_bytes(image.size)})"
