"""Uploading a judged pickle to Numerai: only a Success, into Numerai's image for the Python it passed in,
with the data version it was judged on, to the model named — or nothing at all, and why.

`upload_pickle` is the use case: the report of a run judged with Numerai's limits goes in, with a way to reach
Numerai's API; it decides, sends (unless a dry run), and returns what happened as the record the run history
keeps with the run (`Report.upload`). Nothing reaches Numerai before the verdict is a Success: a pickle that
fails here costs no request at all.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from ..verdict.lifecycle import EXIT_USAGE
from ..numerai_api import DataVersion, DockerImage, Model, Numerai, NumeraiError, endpoint
from ..verdict.report import Report

UPLOADED, DRY_RUN, REFUSED, DECLINED, FAILED = "uploaded", "dry_run", "refused", "declined", "failed"
EXIT_REFUSED = 1  # the pickle would not run as judged on Numerai (its verdict, its Python)
EXIT_ERROR = 3


class Refused(Exception):
    """Nothing is sent: why, and the exit code (1: it would not run as judged on Numerai; 2: the request names
    what Numerai does not have)."""

    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class Plan:
    """What would be sent, decided from the report and Numerai's lists."""

    model: Model
    image: DockerImage
    data_version: DataVersion | None
    data_note: str  # why that data version
    path: Path
    content: bytes
    sha256: str
    warnings: tuple[str, ...] = ()

    def lines(self) -> list[str]:
        image = f'image "{self.image.name}"' + (f" ({self.image.image})" if self.image.image else "")
        data = self.data_version.name if self.data_version else "Numerai's default"
        return [f"Numerai: model {self.model.name} · {image} · data {data} ({self.data_note})",
                f"  file {self.path.name} ({len(self.content):,} bytes, sha256 {self.sha256[:12]})"] + [
            f"  warning: {w}" for w in self.warnings]


@dataclass(frozen=True)
class Outcome:
    outcome: str  # UPLOADED, DRY_RUN, REFUSED, DECLINED or FAILED
    message: str
    exit_code: int
    record: dict[str, Any] = field(default_factory=dict)  # what Report.upload keeps


def numerai_filename(path: Path) -> str:
    """The name the pickle is uploaded under: its own, which must end in .pkl as Numerai takes only those."""
    if path.suffix != ".pkl":
        raise ValueError(f"{path.name}: Numerai takes model files ending in .pkl; rename it (or copy it) to "
                         f"{path.stem}.pkl")
    return path.name


def upload_pickle(report: Report, path: Path, model_name: str, connect: Callable[[], Numerai], *,
                  data_version: str | None = None, dry_run: bool = False,
                  on_plan: Callable[[Plan], None] = lambda plan: None,
                  confirm: Callable[[Plan], bool] = lambda plan: True) -> Outcome:
    """Upload PATH, judged in `report`, to the model `model_name` — if and only if it may go.

    `connect` is called only once the verdict is a Success. `data_version` is the version the run was asked
    for (used when its data carries none, as synthetic data does not). `on_plan` is shown the plan once it is
    made; `confirm` then says yes or no to it (the command line asks on a terminal). A refusal, a decline, a dry run and a failure of Numerai's
    are outcomes too, each with its exit code; NotConfigured (no credentials) is raised, as a usage error."""
    base = {"model": model_name, "file": str(path.resolve()), "sha256": (report.model or {}).get("sha256"),
            "python": report.python, "at": _now(), "api": None}
    if not report.ok:
        code = report.reason + (f"/{report.subcode}" if report.subcode else "")
        return _outcome(REFUSED, f"not uploaded: the verdict is {report.status.value} ({code}); only a Success "
                        "is uploaded, and nothing was sent to Numerai", report.exit_code, base)
    try:
        base["api"] = endpoint()
        api = connect()
        plan = plan_upload(report, path, model_name, api, data_version)
    except Refused as exc:
        return _outcome(REFUSED, f"not uploaded: {exc}; nothing was sent", exc.exit_code, base)
    except NumeraiError as exc:
        return _outcome(FAILED, f"not uploaded: {exc}", EXIT_ERROR, base)
    base.update(planned(plan))
    on_plan(plan)
    if dry_run:
        return _outcome(DRY_RUN, "dry run: everything checked, nothing sent", 0, base)
    if not confirm(plan):
        return _outcome(DECLINED, "not uploaded: declined", EXIT_REFUSED, base)
    try:
        sent = api.upload(plan.content, path.name, plan.model.id, plan.data_version.id if plan.data_version else None,
                          plan.image.id)
    except NumeraiError as exc:
        return _outcome(FAILED, f"not uploaded: {exc}", EXIT_ERROR, base)
    base.update(upload_id=sent.id, numerai_filename=sent.filename, at=_now())
    return _outcome(UPLOADED, f"uploaded to {plan.model.name}: upload id {sent.id}", 0, base)


def plan_upload(report: Report, path: Path, model_name: str, api: Numerai, data_version: str | None = None) -> Plan:
    """The model, the image, the data version and the very bytes judged; Refused when one cannot be had."""
    content = path.read_bytes()
    sha256 = hashlib.sha256(content).hexdigest()
    judged = (report.model or {}).get("sha256")
    if judged and judged != sha256:
        raise Refused(f"{path.name} changed since it was judged (sha256 {judged[:12]} then, {sha256[:12]} now); "
                      "upload it again to judge what is there now", EXIT_USAGE)
    model = find_model(api.models(), model_name)
    image, warnings = image_for(api.docker_images(), report.python)
    version, note = data_version_for(api.data_versions(), report.data or {}, data_version)
    return Plan(model, image, version, note, path, content, sha256, tuple(warnings))


def find_model(models: list[Model], name: str) -> Model:
    """The account's model of that name (any case, when only one matches so)."""
    exact = [m for m in models if m.name == name]
    loose = [m for m in models if m.name.lower() == name.lower()]
    if exact or len(loose) == 1:
        return (exact or loose)[0]
    if not models:
        raise Refused(f"this account has no model to upload to (no model named {name!r}); create one on Numerai's "
                      "site first", EXIT_USAGE)
    raise Refused(f"this account has no model named {name!r}; its models: "
                  f"{', '.join(sorted(m.name for m in models))}", EXIT_USAGE)


def image_for(images: list[DockerImage], python: str | None) -> tuple[DockerImage, list[str]]:
    """Numerai's image for the Python the pickle passed in; refused when there is none, or only a deprecated
    one; an experimental one goes with a warning."""
    offered = sorted({i.name for i in images if not i.deprecated}, key=_version_order)
    listing = f"Numerai offers {', '.join(offered)}" if offered else "Numerai lists no image at all"
    matching = [i for i in images if python and i.python == python]
    if not matching:
        raise Refused(f"Numerai lists no image for Python {python or '?'} ({listing}); make the pickle with one of "
                      "those Pythons and judge it again", EXIT_REFUSED)
    current = [i for i in matching if not i.deprecated]
    if not current:
        raise Refused(f"Numerai's image for Python {python} ({matching[0].name}) is deprecated ({listing}); make the "
                      "pickle with one of those Pythons and judge it again", EXIT_REFUSED)
    image = sorted(current, key=lambda i: (not i.default, i.experimental))[0]
    warnings = [f"Numerai marks its {image.name} image experimental"] if image.experimental else []
    return image, warnings


def data_version_for(versions: list[DataVersion], data: dict[str, Any],
                     asked: str | None) -> tuple[DataVersion | None, str]:
    """The data version the run used (its round's, or the version of Numerai's names it was given), else the
    one it was asked for, else Numerai's default; refused when Numerai does not offer it for uploads."""
    used = data.get("version") or data.get("real_names")
    wanted = used or asked
    names = ", ".join(v.name for v in versions) or "none"
    if wanted:
        found = next((v for v in versions if v.name == wanted), None)
        if found is None:
            raise Refused(f"the run was judged on data {wanted}, which Numerai does not offer for uploads (it offers "
                          f"{names}); judge it on one of those (`numerai-sandbox data fetch --dataset-version "
                          "VERSION`, or --data-version VERSION) and upload again", EXIT_USAGE)
        return found, "the run's data" if used else "asked with --data-version"
    source = data.get("source") or "its"
    default = next((v for v in versions if v.default), None)
    why = f"the run's {source} data names no Numerai version"
    return default, (f"Numerai's default; {why}" if default else why)


def planned(plan: Plan) -> dict[str, Any]:
    """What the record keeps of a plan."""
    return {"model": plan.model.name, "model_id": plan.model.id, "docker_image": plan.image.name,
            "docker_image_id": plan.image.id, "data_version": plan.data_version.name if plan.data_version else None,
            "data_version_id": plan.data_version.id if plan.data_version else None, "sha256": plan.sha256,
            "size_bytes": len(plan.content), "warnings": list(plan.warnings)}


def _outcome(outcome: str, message: str, exit_code: int, record: dict[str, Any]) -> Outcome:
    return Outcome(outcome, message, exit_code, {"outcome": outcome, "message": message, **record})


def _version_order(name: str) -> tuple:
    return tuple(int(n) for n in re.findall(r"\d+", name)), name


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def preflight(path: Path) -> None:
    """What can be known before judging, without a request to Numerai: a file name Numerai takes, an endpoint,
    an API key (UsageError when one is wrong)."""
    from ..numerai_api import NotConfigured, credentials
    from ..run import UsageError

    try:
        numerai_filename(path)
        endpoint()
        credentials()
    except (ValueError, NotConfigured) as exc:
        raise UsageError(str(exc)) from exc


def upload_request(model: Path, *, python: str, profile: str, data: str | None, data_version: str | None,
                   benchmarks: str | None, isolation: str, debug: bool, live: bool):
    """The run an upload is judged by: `run`'s, under Numerai's limits, in a fresh sandbox (no pre-started one)."""
    import dataclasses

    from ..run import RunRequest
    from ..sandbox.backend import NUMERAI_LIMITS

    return RunRequest(model=model, python=python, profile=profile, data=data, data_version=data_version,
                      benchmarks=benchmarks, limits=dataclasses.replace(NUMERAI_LIMITS, isolation=isolation),
                      debug=debug, live=live, prestarted=False, leave_prestarted=False)


def upload_judged(report: Report, path: Path, model_name: str, *, data_version: str | None = None,
                  dry_run: bool = False, on_plan: Callable[[Plan], None] = lambda plan: None,
                  confirm: Callable[[Plan], bool] = lambda plan: True) -> Outcome:
    """`upload` once judged: upload_pickle with Numerai's API, the outcome kept in the report (Report.upload)."""
    from ..numerai_api import NotConfigured
    from ..run import UsageError

    try:
        outcome = upload_pickle(report, path, model_name, Numerai.connect, data_version=data_version,
                                dry_run=dry_run, on_plan=on_plan, confirm=confirm)
    except NotConfigured as exc:
        raise UsageError(str(exc)) from exc
    report.upload = dict(outcome.record, exit_code=outcome.exit_code)
    return outcome
