"""`numerai-sandbox images`: fetch (the only networked step), build offline, list and remove our images."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..support.console import Console
from ..support.units import human_bytes
from ..usecases import images as use
from ..usecases.vocabulary import BACKENDS, PROFILES, SUPPORTED_PYTHONS, UsageError
from .common import EngineCommand, InputError, ago, connect_engine, converter, engine_if_any, fail

@click.group("images")
def images_group() -> None:
    """Build, list and remove the per-Python images, and keep Numerai's pins current (the network is
    only used by `fetch` and `pins`)."""


def pins_for(python: str | None, profile: str | None, model: Path | None, requirements: Path | None,
             extra: Path | None):
    try:
        return use.pins_for(python, profile, model, requirements, extra, say=click.echo)
    except UsageError as exc:
        raise InputError(str(exc)) from exc


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


def pin_options(requirements_help: str):
    """The options that say which pins an image is made of (--python, --profile, --for, --requirements,
    --extra-requirements), shared by fetch and build so that both read them alike."""
    requirements_option = click.option("--requirements", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                                       metavar="FILE", help=requirements_help)

    def decorate(command):
        for option in reversed((python_option, profile_option, for_option, requirements_option, extra_option)):
            command = option(command)
        return command
    return decorate


@images_group.command("fetch", cls=EngineCommand)
@pin_options("For --profile full: this pin list instead of Numerai's vendored one (images/py3.X/numerai.txt).")
@click.option("--python-home", type=click.Path(exists=True, file_okay=False, path_type=Path), metavar="DIR",
              help="A local CPython installation for the offline base (pyenv, uv, python-build-standalone).")
@click.option("--no-pull", is_flag=True, help="Do not try a registry for python:X-slim.")
@click.option("--backend", type=click.Choice(BACKENDS), default="docker", show_default=True, metavar="BACKEND",
              envvar="NUMERAI_SANDBOX_BACKEND", show_envvar=True,
              help="process: the wheels only, then the process sandbox's environment for this Python (no engine "
              "needed); auto: process when no engine answers.")
def images_fetch(python: str | None, profile: str | None, model: Path | None, requirements: Path | None,
                 extra_requirements: Path | None, python_home: Path | None, no_pull: bool, backend: str) -> None:
    """Download what an image needs into the local cache (the only step that uses the network).

    It says what it will download, and how big, first. With --for MODEL.pkl: exactly what
    `numerai-sandbox run MODEL.pkl` lacks, after which run works offline. With --backend process
    (no engine: Colab, Kaggle): the wheels, then the environment the process sandbox runs in.
    """
    pins = pins_for(python, profile, model, requirements, extra_requirements)
    client = None if backend == "process" else engine_if_any() if backend == "auto" else connect_engine()
    if client is None:
        try:
            use.fetch_wheels(pins, Console(), model=model)
        except use.Failed as exc:
            fail(str(exc))
        return
    try:
        use.fetch(client, pins, Console(), model=model, python_given=python is not None, requirements=requirements,
                  extra=extra_requirements, python_home=python_home, pull=not no_pull)
    except use.Failed as exc:
        fail(str(exc))


@images_group.command("build", cls=EngineCommand)
@pin_options("For --profile full: the pin list it was fetched with.")
@click.option("--force", is_flag=True, help="Rebuild even if an image with the same inputs exists.")
def images_build(python: str | None, profile: str | None, model: Path | None, requirements: Path | None,
                 extra_requirements: Path | None, force: bool) -> None:
    """Build the image from the local cache, with the build's network disabled."""
    pins = pins_for(python, profile, model, requirements, extra_requirements)
    try:
        use.build(connect_engine(), pins, Console(), model=model, force=force)
    except use.Failed as exc:
        fail(str(exc))


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
    if check and update:
        raise InputError("--check and --update: choose one")
    if not (check or update):
        if source is not None:
            raise InputError("--source goes with --check or --update")
        click.echo("\n".join(use.vendored_pins()))
        return
    try:
        theirs, comparison, where = use.upstream_pins(source)
    except use.Failed as exc:
        fail(str(exc))
    if check:
        if comparison.equal:
            click.echo(f"the vendored pins match {where}: Python {', '.join(sorted(theirs.texts, key=use.python_order))}")
            return
        click.echo(f"the vendored pins differ from {where}:")
        click.echo("\n".join(f"  {line}" for line in comparison.lines()))
        click.echo("`numerai-sandbox images pins --update" + (f" --source {source}" if source else "")
                   + "` rewrites them")
        sys.exit(1)
    written, removed = use.update_pins(theirs)
    for line in comparison.lines():
        click.echo(f"  {line}")
    for path in written:
        click.echo(f"wrote {path}")
    for path in removed:
        click.echo(f"removed {path}")
    if not (written or removed):
        click.echo(f"the vendored pins already match {where}")
        return
    changed = sorted({p.parent.name[2:] for p in written + removed}, key=use.python_order)
    click.echo(f"now regenerate what is derived from them: `python scripts/make_module_map.py` (online), and "
               f"`python scripts/lock_standard.py --python X` for Python {', '.join(changed)}; then commit images/")


@images_group.command("list", cls=EngineCommand)
@click.option("--json", "as_json", is_flag=True, help="Print the images as a JSON array.")
def images_list(as_json: bool) -> None:
    """Our images: Python, profile, inputs digest, size and age; then the process sandbox's environments
    (listed without an engine too)."""
    client = engine_if_any()
    found = use.list_images(client) if client is not None else []
    environments = use.environments()
    if as_json:
        click.echo(json.dumps([i.to_dict() for i in found] + [e.to_dict() for e in environments], indent=2))
        return
    if environments:
        if client is None:
            click.echo("no Docker engine answers: only the process sandbox's environments")
        if found:
            click.echo(f"{'IMAGE':<42} {'PYTHON':<8} {'PROFILE':<18} {'DIGEST':<13} {'SIZE':>10}  AGE")
        for image in found:
            click.echo(f"{image.ref:<42} {image.python_full:<8} {image.profile:<18} {image.digest[:12]:<13} "
                       f"{human_bytes(image.size):>10}  {ago(image.built)}")
        click.echo(f"{'ENVIRONMENT (process sandbox)':<42} {'PYTHON':<8} {'PROFILE':<18} {'DIGEST':<13} {'SIZE':>10}"
                   "  AGE")
        for env in environments:
            click.echo(f"{env.path.name:<42} {env.python_full:<8} {env.profile:<18} {env.digest[:12]:<13} "
                       f"{human_bytes(env.size):>10}  {ago(env.built)}")
        return
    if client is None:
        connect_engine()  # says why, and exits
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
    The pre-started sandboxes waiting in those images go first; the process sandbox's environments of
    that Python and profile go too (without an engine, only they).
    """
    client = engine_if_any()
    doomed, names = use.removal(client, python, profile, everything) if client is not None else ([], [])
    environments = use.environment_removal(python, profile)
    names += [f"environment {p.name}" for p in environments]
    if client is None and not environments:
        connect_engine()  # says why, and exits
    if not names or dry_run:
        would, _ = use.remove_images(client, doomed, dry_run=True) if client is not None else ([], [])
        would += [f"environment {p.name}" for p in environments]
        click.echo("\n".join(f"would remove {n}" for n in would) or "nothing to remove")
        return
    if python is None and profile is None and not yes:
        listed = ", ".join(names)
        if not sys.stdin.isatty():
            raise InputError(f"without --python or --profile this removes every image of ours ({listed}): "
                             "pass --yes to confirm, or --dry-run to list them")
        click.confirm(f"Remove every numerai-sandbox image ({listed})?", abort=True)
    removed, refused = use.remove_images(client, doomed) if client is not None else ([], [])
    removed += [f"environment {name}" for name in use.remove_environments(environments)]
    click.echo("\n".join(f"removed {r}" for r in removed) or "nothing removed")
    for reason in refused:
        click.echo(f"kept {reason}")


@images_group.command("push", cls=EngineCommand)
@click.option("--registry", required=True, callback=converter(use.check_registry), metavar="HOST[:PORT][/PATH]",
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
    if model is None and python is None:
        raise InputError("name what to push: --python X (its standard image; --profile for another, or all of "
                         "them), or --for MODEL.pkl (the image that pickle runs in)")
    if model is not None and profile is not None:
        raise InputError(f"--for MODEL.pkl names one image (the one `run {model}` uses): leave out --profile")
    client = connect_engine()
    console = Console()
    try:
        chosen, others = use.to_push(client, python, profile, model)
        use.push_images(client, registry, chosen, console)
    except UsageError as exc:
        raise InputError(str(exc)) from exc
    except use.Failed as exc:
        fail(str(exc))
    if others:
        console.line(f"not pushed, also here for Python {chosen[0].python}: "
                     + ", ".join(_described(image) for image in others))
        console.line(f"  `numerai-sandbox images push --registry {registry} --python {chosen[0].python} --profile "
                     "NAME` pushes one of them, `--profile all` every one")


def _described(image) -> str:
    """An image as the list of what push left out names it: profile, what auto adds, size."""
    names = [f"{name} {version}" for name, version in image.added.items()]
    adds = f"adds {', '.join(names[:2])}" + (f" and {len(names) - 2} more" if len(names) > 2 else "") + ", " \
        if names else ""
    return f"{image.profile} ({adds}{human_bytes(image.size)})"
