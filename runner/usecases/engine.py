"""The Docker engine for the commands that need it: reached (after sweeping what killed runners left),
its failures told apart, and `clean`."""

from __future__ import annotations

from ..sandbox import leftovers
from ..sandbox.engine import ENGINE_ERRORS, EngineUnavailable, connect, lost_engine

__all__ = ["ENGINE_ERRORS", "EngineUnavailable", "clean", "connect_engine", "lost_engine"]


def connect_engine(sweep: bool = True):
    """A client of the engine (EngineUnavailable when it does not answer); with `sweep`, what a runner killed
    outright left behind goes first."""
    client = connect()
    if sweep:
        leftovers.sweep(client)
    return client


def clean(client, everything: bool = False, dry_run: bool = False) -> tuple[list[str], list[str]]:
    """`clean`: (what was removed, or would be, and what was left and why). Without an engine (`client` None)
    only the process sandbox's environments: a killed build's, those whose Python is gone; --all: every one
    (from the default namespace only: they are shared by every namespace, as the wheels are)."""
    from ..images import venv
    from ..support.paths import APP, namespace

    removed, left = leftovers.clean(client, everything, dry_run) if client is not None else ([], [])
    if namespace() != APP:
        return removed, left
    doomed = [m.path for m in venv.made()] + [p for p in venv.leftovers() if p.name.startswith(".")] \
        if everything else venv.leftovers()
    names = [f"environment {p.name}" for p in doomed]
    if not dry_run:
        venv.remove(doomed)
    return removed + names, left
