"""The reports of a `check` as JUnit XML, the test report every CI system can show.

One testsuite, one testcase per pickle (named by its path): a Failed model is a
<failure>, an Error an <error> (the platform's fault, as CI systems mean it), each with
"reason: message" as the message and what to do and the line Numerai's log would show as the
text (the line is also a property, numerai_log); the whole JSON report goes
to <system-out>, so the CI page holds everything a person needs to debug it.
"""

from __future__ import annotations

import re
import socket
import xml.etree.ElementTree as ET
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

from .lifecycle import Status
from . import numerai_log
from .report import Report

SUITE = "numerai-sandbox check"
# Characters XML 1.0 cannot hold; a model's exception message may contain them.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def _seconds(report: Report) -> str:
    return f"{float(report.durations.get('total') or 0):.3f}"


def render(reports: Sequence[Report], names: Sequence[str] | None = None) -> str:
    names = list(names) if names is not None else [str(r.model.get("path", "?")) for r in reports]
    failures = sum(1 for r in reports if r.status is Status.FAILED)
    errors = sum(1 for r in reports if r.status is Status.ERROR)
    total = sum(float(_seconds(r)) for r in reports)
    suites = ET.Element("testsuites", tests=str(len(reports)), failures=str(failures), errors=str(errors),
                        time=f"{total:.3f}")
    suite = ET.SubElement(suites, "testsuite", name=SUITE, tests=str(len(reports)), failures=str(failures),
                          errors=str(errors), skipped="0", time=f"{total:.3f}",
                          timestamp=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                          hostname=socket.gethostname())
    for report, name in zip(reports, names):
        case = ET.SubElement(suite, "testcase", classname="numerai-sandbox", name=name, time=_seconds(report))
        properties = ET.SubElement(case, "properties")
        for key, value in (("status", report.status.value), ("python", report.python or ""),
                           ("reason", report.reason or ""), ("subcode", report.subcode or ""),
                           ("numerai_log", report.numerai_log or "")):
            ET.SubElement(properties, "property", name=key, value=value)
        if report.status is not Status.SUCCESS:
            tag = "failure" if report.status is Status.FAILED else "error"
            code = report.reason + (f"/{report.subcode}" if report.subcode else "")
            element = ET.SubElement(case, tag, message=_xml(f"{code}: {report.message}"), type=report.reason or "")
            said = numerai_log.shown(report.reason, report.numerai_log)
            element.text = _xml(f"{report.status.value} ({code}): {report.message}\nWhat to do: {report.action or ''}"
                                + (f"\nNumerai's log: {said}" if said else ""))
        ET.SubElement(case, "system-out").text = report.to_json()
    ET.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


def write(path: Path, reports: Sequence[Report], names: Sequence[str] | None = None) -> Path:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(render(reports, names), encoding="utf-8")
    tmp.replace(path)
    return path
