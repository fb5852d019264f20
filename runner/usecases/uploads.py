"""What Numerai said about each model's latest uploaded pickle, beside this machine's verdict on the same file,
and what to do when the two differ.

The file is found in the run history by its sha256 when numerai-sandbox uploaded it (the history keeps the
upload id, the name Numerai stores it under and the bytes' sha256), else by its file name (the newest run of a
file of that name; Numerai keeps no checksum to compare). `compare` is the use case: Numerai's models and
uploads in, one Comparison per model out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any, Callable

from . import history
from ..numerai_api import Model, NumeraiError, PickleUpload, Trigger
from ..verdict.report import Report

__all__ = ["Comparison", "LocalRun", "NumeraiError", "compare", "data_version", "find_run", "judge", "latest_trigger",
           "latest_uploads", "made_by", "numerai_status", "status_of"]

# Numerai's status words, read into its six statuses (case-insensitive); others are shown as they come.
STATUS_WORDS = {
    "Success": ("success", "succeeded", "successful", "valid", "validated", "complete", "completed", "done"),
    "Failed": ("failed", "failure", "fail", "invalid"),
    "Error": ("error", "errored"),
    "Pending": ("pending", "queued", "waiting", "created"),
    "Running": ("running", "started", "in_progress", "in progress"),
    "Validating": ("validating",),
}
SETTLED = ("Success", "Failed", "Error")
PYTHON = re.compile(r"(\d+\.\d+)")


def status_of(value: str | None) -> str | None:
    """One of Numerai's six statuses for a status word of its API, or the word itself when it is none of them."""
    if not value:
        return None
    word = value.strip().lower()
    return next((status for status, words in STATUS_WORDS.items() if word in words), value.strip())


@dataclass(frozen=True)
class LocalRun:
    """This machine's run of the uploaded file."""

    run_id: str
    matched_by: str  # "sha256" or "file name"
    report: Report
    note: str | None = None  # e.g. several files of that name were run

    def to_dict(self) -> dict[str, Any]:
        report = self.report
        return {"run_id": self.run_id, "matched_by": self.matched_by, "note": self.note,
                "status": report.status.value, "reason": report.reason, "subcode": report.subcode,
                "message": report.message, "python": report.python, "made_by": made_by(report),
                "data_version": data_version(report), "data_source": (report.data or {}).get("source"),
                "sha256": (report.model or {}).get("sha256"), "path": (report.model or {}).get("path"),
                "limits_relaxed": (report.limits or {}).get("relaxed") or []}


@dataclass(frozen=True)
class Comparison:
    model: Model
    upload: PickleUpload | None
    local: LocalRun | None
    numerai_status: str | None  # the upload's outcome on Numerai, in its six statuses
    agree: bool | None  # None: nothing to compare yet
    advice: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model.name, "model_id": self.model.id,
                "numerai": dict(self.upload.to_dict(), status=self.numerai_status) if self.upload else None,
                "local": self.local.to_dict() if self.local else None, "agree": self.agree, "advice": self.advice}


def compare(models: list[tuple[Model, PickleUpload | None]],
            load: Callable[[str], Report] = history.load) -> list[Comparison]:
    """Each model's latest upload on Numerai beside this machine's run of the same file, with advice."""
    entries = history.entries()
    out = []
    for model, upload in models:
        local = find_run(upload, entries, load) if upload else None
        status = numerai_status(upload) if upload else None
        agree, advice = judge(model, upload, status, local)
        out.append(Comparison(model, upload, local, status, agree, advice))
    return out


def numerai_status(upload: PickleUpload) -> str | None:
    """The upload's outcome: its validation's, unless the latest round's run of it went wrong since."""
    validation = status_of(upload.validation_status)
    trigger = latest_trigger(upload)
    later = status_of(trigger.status if trigger else None) or status_of(upload.trigger_status)
    if validation in ("Failed", "Error") or later not in ("Failed", "Error"):
        return validation or later
    return later


def latest_trigger(upload: PickleUpload) -> Trigger | None:
    """The newest of the upload's runs on Numerai (by its latest status's time, else its place in the list)."""
    if not upload.triggers:
        return None
    order = {id(t): i for i, t in enumerate(upload.triggers)}
    return max(upload.triggers, key=lambda t: (max((s.at or "" for s in t.statuses), default=""), order[id(t)]))


def find_run(upload: PickleUpload, entries: list[dict[str, Any]], load: Callable[[str], Report]) -> LocalRun | None:
    """The history's run of the uploaded file: the run that sent it, when numerai-sandbox uploaded it (found by
    the upload's id, or the name Numerai stored it under; the run holds the sha256 of the bytes sent), else the
    newest run of a file of the same name."""
    sent = [e for e in entries if (e.get("upload") or {}).get("upload_id") and (
        e["upload"]["upload_id"] == upload.id or e["upload"].get("numerai_filename") == upload.filename)]
    if sent:  # the run that judged and sent these very bytes
        return _local(sent[0], "sha256", load, None)
    name = PurePosixPath(upload.filename or "").name
    named = [e for e in entries if name and (e.get("model") or {}).get("name") == name]
    if not named:
        return None
    files = {(e.get("model") or {}).get("sha256") for e in named}
    note = (f"this machine ran {len(files)} different files named {name}; the newest run is shown"
            if len(files) > 1 else None)
    return _local(named[0], "file name", load, note)


def _local(entry: dict[str, Any], how: str, load: Callable[[str], Report], note: str | None) -> LocalRun | None:
    try:
        return LocalRun(entry["id"], how, load(entry["id"]), note)
    except (OSError, ValueError, KeyError, TypeError):  # removed meanwhile, or unreadable: as if never run
        return None


def made_by(report: Report) -> str | None:
    """The Python that made the pickle, as read from it (else the image's, where it passed)."""
    return (report.pickle or {}).get("python") or report.python


def data_version(report: Report) -> str | None:
    data = report.data or {}
    return data.get("version") or data.get("real_names")


def judge(model: Model, upload: PickleUpload | None, status: str | None,
          local: LocalRun | None) -> tuple[bool | None, list[str]]:
    """Whether Numerai and this machine agree, and what to do (always something when they do not)."""
    if upload is None:
        return None, [f"no pickle uploaded for {model.name} yet: `numerai-sandbox upload MODEL.pkl --model "
                      f"{model.name}` judges one and uploads it if it passes"]
    name = PurePosixPath(upload.filename or "model.pkl").name
    if local is None:
        return None, [f"this machine has no run of {name}: `numerai-sandbox run {name}` judges it (`numerai-sandbox "
                      f"upload {name} --model {model.name}` judges it and uploads it again if it passes)"]
    report = local.report
    ours = report.status.value
    if status not in SETTLED:
        advice = [f"Numerai has not finished with it ({status or 'no status yet'}); ask again later"]
        if ours != "Success":
            advice.append(f"this machine's verdict is {ours} ({report.reason}): expect the same there; "
                          f"{report.action or 'see `numerai-sandbox runs show ' + local.run_id + '`'}")
        return None, advice
    if status == ours:
        if ours == "Success":
            return True, []
        return True, [f"both say {ours}: {report.action or report.message}"]
    if ours == "Success":
        return False, _numerai_failed(model, upload, status, report, name)
    if status == "Success":
        return False, _we_failed(report, local.run_id, name)
    code = report.reason + (f"/{report.subcode}" if report.subcode else "")
    return False, [f"Numerai says {status}, this machine {ours} ({code}): {report.action or report.message}"]


def _numerai_failed(model: Model, upload: PickleUpload, status: str, report: Report, name: str) -> list[str]:
    """Numerai's Failed or Error against our Success: the difference between the two runs that explains it."""
    found = PYTHON.search(upload.docker_image or "")
    theirs, made = (found.group(1) if found else None), made_by(report)
    if theirs and made and theirs != made:
        return [f"Numerai ran it in Python {theirs}; it was made by {made}: `numerai-sandbox upload {name} --model "
                f"{model.name}` picks {made}"]
    ours_data = data_version(report)
    if upload.data_version and upload.data_version != ours_data:
        judged_on = f"{ours_data} data" if ours_data else f"{(report.data or {}).get('source', 'other')} data"
        return [f"Numerai ran it on {upload.data_version} data; this machine judged it on {judged_on}: "
                f"`numerai-sandbox data fetch --dataset-version {upload.data_version}`, then `numerai-sandbox run "
                f"{name} --data-version {upload.data_version}`"]
    relaxed = (report.limits or {}).get("relaxed") or []
    if relaxed:
        return [f"this machine's Success was under limits above Numerai's ({', '.join(relaxed)}): `numerai-sandbox run "
                f"{name}` judges it under Numerai's"]
    if status == "Error":
        return ["Error is Numerai's side, not the model's: upload it again (`numerai-sandbox upload "
                f"{name} --model {model.name}`), or send Numerai's description above to its support"]
    return [f"the same Python and data passed here: read Numerai's description above, then `numerai-sandbox run "
            f"{name} --python {report.python} --debug` on the round's real data (`numerai-sandbox data fetch`) "
            "is the closest look"]


def _we_failed(report: Report, run_id: str, name: str) -> list[str]:
    """Numerai's Success against our Failed or Error."""
    code = report.reason + (f"/{report.subcode}" if report.subcode else "")
    if report.status.value != "Failed":
        return [f"this machine could not judge it ({report.status.value}, {code}): {report.action or report.message}"]
    return [f"this machine's verdict is {report.status.value} ({code}) while Numerai accepted it: "
            f"`numerai-sandbox runs show {run_id}` shows why; if `numerai-sandbox run {name}` still fails on the "
            "round's real data, that difference is a numerai-sandbox bug worth reporting"]


def latest_uploads(model_name: str | None = None) -> list["Comparison"]:
    """`uploads`: every model of the account (or the one named) with its latest pickle upload, compared with this
    machine's run of the same file. UsageError without an API key or for a model the account lacks;
    NumeraiError when Numerai cannot be reached or refuses."""
    from ..numerai_api import NotConfigured, Numerai
    from ..run import UsageError
    from .upload import Refused, find_model

    try:
        pairs = Numerai.connect().pickle_uploads()
    except NotConfigured as exc:
        raise UsageError(str(exc)) from exc
    if model_name is not None:
        try:
            wanted = find_model([m for m, _ in pairs], model_name)
        except Refused as exc:
            raise UsageError(str(exc)) from exc
        pairs = [(m, u) for m, u in pairs if m == wanted]
    return compare(pairs)
