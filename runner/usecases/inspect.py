"""`inspect`: what a pickle is, read without running any of it (runner/inspection/), for a person or a program."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..inspection import Inspection, inspect_pickle, render


@dataclass(frozen=True)
class Inspected:
    inspection: Inspection

    @property
    def is_pickle(self) -> bool:
        """A complete pickle (inspect's exit code 0; 1 when it is not)."""
        return self.inspection.is_pickle

    @property
    def facts(self) -> dict[str, Any]:
        """The JSON `inspect --json` prints: stable keys."""
        return self.inspection.to_dict()

    @property
    def lines(self) -> list[str]:
        """The report as lines of text."""
        return render(self.inspection)


def inspect_file(model: Path) -> Inspected:
    return Inspected(inspect_pickle(model))
