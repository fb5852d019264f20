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
    """`clean`: (what was removed, or would be, and what was left and why)."""
    return leftovers.clean(client, everything, dry_run)
