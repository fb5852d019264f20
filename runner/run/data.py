"""Step 4 of Pending: the live data staged (fitted to the column names the pickle asks for), and what the
host will need of it once the model ran, read meanwhile on the host's other core.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from .. import data as live_data
from ..inspection import Inspection
from ..support.text import sentence
from ..verdict.context import DataFacts
from ..verdict.reasons import Verdict
from .request import RunRequest, UsageError


class Prefetch(threading.Thread):
    """What the host needs after the model ran, made ready while it runs, on the host's other core:
    the live ids read as one Arrow string array (what the predictions are validated against), the
    modules validation imports and the data's columns (what a missing
    column is judged against). Nothing of it is on the path to the container's start."""

    def __init__(self, data: live_data.LiveData):
        super().__init__(daemon=True, name="prefetch")
        self.data = data
        self.ids = None
        self.facts: DataFacts | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.ids = live_data.live_ids(self.data.live)
            self.facts = data_facts(self.data)
            from ..verdict import validate

            validate.prewarm()
        except BaseException as exc:  # noqa: BLE001 - raised where the result is needed
            self.error = exc

    def begin(self) -> None:
        """Start reading, once (when the model starts; or at once when it never will)."""
        if self.ident is None:
            self.start()

    def result(self) -> "Prefetch":
        self.begin()
        self.join()
        if self.error is not None:
            raise self.error
        return self


@dataclass
class Staged:
    """The live data files a run mounts, and the host's reading of them."""

    data: live_data.LiveData
    after: Prefetch


def stage(request: RunRequest, inspection: Inspection, detail) -> Staged | Verdict:
    """The live data files (fitted to the names the pickle asks for) and their ids."""
    try:
        data = live_data.resolve(request.data, request.benchmarks, request.data_version, wanted_columns(inspection))
    except live_data.DataError as exc:
        if exc.usage:
            raise UsageError(str(exc)) from exc
        return Verdict("data_unavailable", sentence(str(exc)))
    detail(f"data: {data.description}")
    return Staged(data, Prefetch(data))


def data_facts(data: live_data.LiveData) -> DataFacts:
    """What diagnosis judges a missing column against: the columns the model was really given."""
    return DataFacts(frozenset(live_data.live_columns(data.live)), frozenset(live_data.live_columns(data.benchmarks)),
                     data.source, data.description, data.names_checked)


def wanted_columns(inspection: Inspection | None) -> live_data.Wanted | None:
    """The column names a pickle asks for (read statically), which the default live data is fitted to."""
    columns = inspection.columns if inspection is not None else None
    return live_data.Wanted(tuple(columns.features), tuple(columns.targets),
                            tuple(columns.benchmarks)) if columns is not None else None
