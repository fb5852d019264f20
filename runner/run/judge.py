"""From the sandbox's end to the verdict: the diagnosis of its facts, else Validating — the host re-reads
the predictions and applies Numerai's rules — and the predictions written where the user asked.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .. import data as live_data
from ..images.pins import SUPPORTED_PYTHONS, numerai_pins
from ..inspection import Inspection, code_candidates, recorded_releases
from ..sandbox.protocol import Frames, Returned
from ..support.text import sentence
from ..verdict import diagnose, output
from ..verdict.context import Context
from ..verdict.reasons import Verdict
from .contain import Contained
from .data import Staged
from .request import RunRequest

if TYPE_CHECKING:
    from ..images.store import Image
    from ..verdict.submission import Submission


@dataclass
class Judged:
    """The verdict, and what validation found on the way (the predictions read back, the rules applied)."""

    verdict: Verdict
    rows: int | None = None  # the live data's rows
    checks: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    n_predictions: int | None = None
    predictions_path: str | None = None
    submission: "Submission | None" = None  # held (on disk where one may be written) until the run ends


def judge(contained: Contained, staged: Staged, request: RunRequest, image: "Image", inspection: Inspection,
          on_validating: Callable[[str], None]) -> Judged:
    """The verdict of a sandbox that ran: its facts first; a model that returned is validated."""
    try:
        after = staged.after.result()
    except live_data.DataError as exc:  # a file whose footer read well but whose ids do not
        return Judged(Verdict("data_unavailable", sentence(str(exc))))
    context = Context(image.python, image.packages, request.limits, request.model, other_pythons(),
                      code_candidates(inspection), recorded_releases(inspection), numerai_pins(image.python),
                      profile=request.profile, data=after.facts)
    verdict = diagnose.from_outcome(contained.outcome, contained.frames, context)
    if verdict is not None:
        return Judged(verdict, rows=len(after.ids))
    return validated(contained.frames, after.ids, request, on_validating, rows=len(after.ids))


def validated(frames: Frames, live_ids, request: RunRequest, on_validating: Callable[[str], None],
              rows: int | None) -> Judged:
    """Validating: the CSV the harness sent, read as Numerai reads it, against Numerai's rules."""
    from ..verdict import validate

    facts = frames.result or Returned()
    on_validating(f"{facts.rows:,} rows returned" if facts.rows is not None
                  else f"returned {facts.returned_type or '?'}")
    payload = frames.take_predictions()  # held once, here, until read
    submission = validate.read_submission(payload) if payload is not None else None
    del payload
    try:
        if submission is not None:
            submission.stage(csv_folder(request))  # out of memory: on disk where a CSV may be written, else gone
        validation = validate.validate(facts, submission, live_ids)
        judged = Judged(output.from_validation(validation, facts), rows, [c.to_dict() for c in validation.checks],
                        validation.summary, list(validation.notes), submission=submission)
        if validation.submission is not None and validation.submission.table is not None:
            judged.n_predictions = validation.submission.rows
        if judged.verdict.reason is None and request.output is not None:
            judged.predictions_path = str(write_predictions(validation.submission, request.output))
    except BaseException:
        if submission is not None:
            submission.discard()
        raise
    return judged


def other_pythons() -> dict[str, dict[str, str]]:
    """Numerai's pins for every Python we have an image for: where a module this image lacks can be had."""
    return {python: pins for python in SUPPORTED_PYTHONS if (pins := numerai_pins(python)) is not None}


def is_parquet(path: Path) -> bool:
    return path.suffix.lower() in (".parquet", ".pq")


def csv_folder(request: RunRequest) -> Path | None:
    """Where the CSV's bytes wait for the verdict: beside the CSV that may be written (--output, else
    --output-rejected), or nowhere when none may."""
    paths = [p for p in (request.output, request.output_rejected) if p is not None and not is_parquet(p)]
    return paths[0].resolve().parent if paths else None


def write_predictions(submission: "Submission", path: Path) -> Path:
    """The predictions: the CSV's own bytes (`id,prediction`, exactly what Numerai's image uploads), or parquet
    by suffix. Written whole or not at all (a temp file beside it, renamed)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        submission.write(tmp, parquet=is_parquet(path))
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path.resolve()


def write_rejected(path: Path, submission: "Submission | None") -> tuple[str | None, list[str]]:
    """--output-rejected: (where the predictions as the model made them went, notes). They broke a rule, so
    they may not fit the format (a parquet file needs a readable CSV): then a note says why none was written."""
    if submission is None:
        return None, [f"no predictions to write to {path}: the model returned nothing that reads as predictions"]
    try:
        return str(write_predictions(submission, path)), []
    except Exception as exc:  # noqa: BLE001 - the model's data, whatever it holds, must not become our error
        return None, [f"the rejected predictions could not be written to {path} ({type(exc).__name__}: "
                      f"{str(exc)[:200]})"]
