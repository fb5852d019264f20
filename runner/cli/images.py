"""`numerai-sandbox images`: fetch (the only networked step), build offline, list and remove our images."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from ..console import Console
from ..images.pins import PROFILES, SUPPORTED_PYTHONS, experimental
from ..sandbox.registry import check_registry
from ..units import human_bytes
from .common import EngineCommand, InputError, ago, connect_engine, converter, fail

@click.group("images")
def images_group() -> None:
    """Build, list and remove the per-Python images (the network is only used by `fetch`)."""


def _pins(python: str, profile: str, requirements: Path | None, extra: Path | None):
    from ..images.pins import PinError, pin_set

    try:
        return pin_set(python, profile, requirements, extra)
    except PinError as exc:
        raise InputError(str(exc)) from exc


python_option = click.option("--python", "python", type=click.Choice(SUPPORTED_PYTHONS), required=True,
                             metavar="PYTHON", help=f"Python version of the image: {', '.join(SUPPORTED_PYTHONS)} "
                                                    "(3.14: experimental, as Numerai marks it).")
profile_option = click.option("--profile", type=click.Choice(PROFILES), default="standard", show_default=True,
                              metavar="PROFILE", envvar="NUMERAI_SANDBOX_PROFILE", show_envvar=True,
                              help="standard (Numerai's versions of the usual packages) or full (Numerai's whole "
                                   "pin list).")
extra_option = click.option("--extra-requirements", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                            metavar="FILE", help="Your own exact pins (name==version) layered on top of the profile.")


@images_group.command("fetch", cls=EngineCommand)
@python_option
@profile_option
@click.option("--requirements", type=click.Path(exists=True, dir_okay=False, path_type=Path), metavar="FILE",
              help="Numerai's full pin list as a file (default for --profile full: download it).")
@extra_option
@click.option("--python-home", type=click.Path(exists=True, file_okay=False, path_type=Path), metavar="DIR",
              help="A local CPython installation for the offline base (pyenv, uv, python-build-standalone).")
@click.option("--no-pull", is_flag=True, help="Do not try a registry for python:X-slim.")
def images_fetch(python: str, profile: str, requirements: Path | None, extra_requirements: Path | None,
                 python_home: Path | None, no_pull: bool) -> None:
    """Download what an image needs into the local cache (the only step that uses the network)."""
    from ..images import bases, sourcebuild, wheelhouse
    from ..images.pins import remember_full_pins

    pins = _pins(python, profile, requirements, extra_requirements)
    console = Console()
    client = connect_engine()
    started = time.monotonic()
    try:
        base = bases.fetch(client, python, console.progress, python_home, allow_registry=not no_pull)
        console.line(f"base: {base.description}")
        if base.kind in ("local-image", "pulled"):
            bases.fetch_debs(python, console.progress)
        wheelhouse.fetch(pins, console.progress, sourcebuild.built_from_source(pins))
        sourcebuild.ensure(client, base, pins, console.progress)  # pins with no wheel for this Python
        stock = wheelhouse.inventory(pins)
        remember_full_pins(pins)
    except (bases.BaseError, wheelhouse.WheelhouseError, sourcebuild.SourceBuildError) as exc:
        fail(str(exc))
    if pins.skipped:
        console.line(f"left out (not for Linux): {', '.join(pins.skipped)}")
    size = sum(p.stat().st_size for p in stock.present.values())
    again = f"numerai-sandbox images build --python {python}"
    again += f" --profile {profile}" if profile != "standard" else ""
    again += f" --requirements {requirements}" if requirements else ""
    again += f" --extra-requirements {extra_requirements}" if extra_requirements else ""
    console.line(f"fetched Python {python} ({pins.tag_profile}): {len(stock.present)} wheels, "
                 f"{human_bytes(size)}, in {time.monotonic() - started:.0f}s; now `{again}` works offline")


@images_group.command("build", cls=EngineCommand)
@python_option
@profile_option
@click.option("--requirements", type=click.Path(exists=True, dir_okay=False, path_type=Path), metavar="FILE",
              help="Numerai's full pin list as a file (for --profile full).")
@extra_option
@click.option("--force", is_flag=True, help="Rebuild even if an image with the same inputs exists.")
def images_build(python: str, profile: str, requirements: Path | None, extra_requirements: Path | None,
                 force: bool) -> None:
    """Build the image from the local cache, with the build's network disabled."""
    from ..images import store as images

    pins = _pins(python, profile, requirements, extra_requirements)
    console = Console()
    client = connect_engine()
    started = time.monotonic()
    try:
        image = images.ensure(client, pins, console.progress, force=force)
    except (images.ImageUnavailable, images.HostResources) as exc:
        fail(str(exc))
    console.line(f"{image.ref}: Python {image.python_full}, {image.profile}, {human_bytes(image.size)}, "
                 f"digest {image.digest[:12]} ({time.monotonic() - started:.1f}s)"
                 + (f"; {experimental(python)}" if experimental(python) else ""))


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
        click.echo("no numerai-sandbox images yet: `numerai-sandbox images fetch --python 3.11` then `images build`")
        return
    click.echo(f"{'IMAGE':<42} {'PYTHON':<8} {'PROFILE':<18} {'DIGEST':<13} {'SIZE':>10}  AGE")
    for image in found:
        click.echo(f"{image.ref:<42} {image.python_full:<8} {image.profile:<18} {image.digest[:12]:<13} "
                   f"{human_bytes(image.size):>10}  {ago(image.built)}")


@images_group.command("rm", cls=EngineCommand)
@click.option("--python", "python", type=click.Choice(SUPPORTED_PYTHONS), metavar="PYTHON",
              help=f"Only this Python's images: {', '.join(SUPPORTED_PYTHONS)}.")
@click.option("--profile", metavar="PROFILE",
              help="Only this profile's images: standard, full, or the profile `images list` shows for an image "
                   "with --extra-requirements.")
@click.option("--all", "everything", is_flag=True, help="Also the environment and base layers.")
@click.option("--yes", "-y", is_flag=True, help="Remove every image without asking (needed without a terminal).")
@click.option("--dry-run", is_flag=True, help="List what would be removed; remove nothing.")
def images_rm(python: str | None, profile: str | None, everything: bool, yes: bool, dry_run: bool) -> None:
    """Remove our images, never anyone else's: an image you built on one of ours, or tagged yourself,
    stays. Without --python or --profile every image of ours goes: asked on a terminal, --yes otherwise.
    """
    import sys

    from ..images import store as images

    client = connect_engine()
    doomed = images.removal_plan(client, python, profile, everything)
    names = [tag for image in doomed for tag in images.own_tags(image)]
    if not names or dry_run:
        click.echo("\n".join(f"would remove {n}" for n in names) or "nothing to remove")
        return
    if python is None and profile is None and not yes:
        listed = ", ".join(names)
        if not sys.stdin.isatty():
            raise InputError(f"without --python or --profile this removes every image of ours ({listed}): "
                             "pass --yes to confirm, or --dry-run to list them")
        click.confirm(f"Remove every numerai-sandbox image ({listed})?", abort=True)
    removed, refused = images.remove(client, doomed)
    click.echo("\n".join(f"removed {r}" for r in removed) or "nothing removed")
    for reason in refused:
        click.echo(f"kept {reason}")


@images_group.command("push", cls=EngineCommand)
@click.option("--registry", required=True, callback=converter(check_registry), metavar="HOST[:PORT][/PATH]",
              help="The registry your cluster pulls from (plain HTTP is allowed for 127.0.0.0/8 only, as Docker "
                   "does; log in first with `docker login HOST` where it needs credentials).")
@click.option("--python", "python", type=click.Choice(SUPPORTED_PYTHONS), metavar="PYTHON",
              help="Only this Python's images.")
@click.option("--profile", metavar="PROFILE", help="Only this profile's images.")
def images_push(registry: str, python: str | None, profile: str | None) -> None:
    """Push our runtime images to a registry, for sandboxes on a cluster (tag: ours plus the image's digest)."""
    from ..images import store as images
    from ..sandbox.registry import RegistryError, push, remote_ref

    client = connect_engine()
    found = [i for i in images.list_images(client)
             if (python is None or i.python == python) and (profile is None or i.profile == profile)]
    if not found:
        fail("no numerai-sandbox image matches here: `numerai-sandbox images build --python X` first")
    console = Console()
    for image in found:
        ref = remote_ref(registry, image.ref, image.digest)
        started = time.monotonic()
        try:
            digest = push(client, image.id, ref, console.progress)
        except RegistryError as exc:
            fail(str(exc))
        console.line(f"pushed {ref} ({digest or 'digest unknown'}, {time.monotonic() - started:.1f}s)")
