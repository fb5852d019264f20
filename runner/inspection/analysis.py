"""Know a pickle before running it: what made it, what it needs, what it is — without unpickling.

`inspect_pickle` walks the opcode stream (pickle_ops: nothing is imported, called or unpickled on the
host), gathers what the walk saw (facts), then asks each question of those facts in its own module:
- which serializer and which Python made it (provenance; pyversions reads the code objects), or
  "unknown" with the reasons when the pickle holds no code;
- the callable Numerai would call: kind, name, parameters (callables);
- every module it names, the library versions libraries wrote into their own state, and each image's
  Python, against the images' pins (fit, with the comparison rules in rules);
- references that could do harm while loading or calling, and what its stream means for Numerai's
  loader (risks: warnings and problems, not verdicts).

choice turns the report into the image to run (`--python auto`) or an early python_version_mismatch;
render writes it for a person. Nothing here ever raises for a bad file: problems are reported in
`Inspection.problems`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

from ..support.paths import file_sha256
from .callables import describe_callable
from .choice import (Choice, choose_python, code_candidates, compatible_pythons, mismatch_message, numerai_additions,
                     recorded_releases, static_note)
from .columns import scan_columns
from .facts import PayloadSniffer, library_records, modules_needed, read_facts
from .fit import image_fits, image_pins, module_table, recorded_versions
from .pickle_ops import Limits, Walk, walk_file
from .provenance import python_version, serializer
from .render import render
from .report import (CANNOT_LOAD, LOADS, MAY_RUN, CallableInfo, ImageFit, Inspection, ModuleUse, PythonVersion,
                     RecordedVersion, Risk)
from .risks import risks, stream_problems

__all__ = ["CANNOT_LOAD", "CallableInfo", "Choice", "ImageFit", "Inspection", "LOADS", "MAY_RUN", "ModuleUse",
           "PythonVersion", "RecordedVersion", "Risk", "choose_python", "code_candidates", "compatible_pythons",
           "inspect_pickle", "mismatch_message", "numerai_additions", "recorded_releases", "render", "static_note"]


def inspect_pickle(path: Path, *, full_pins: Mapping[str, Mapping[str, str]] | None = None,
                   limits: Limits | None = None) -> Inspection:
    """Inspect the pickle at `path` without running any of it. Never raises for a bad file.

    `full_pins` ({python: {distribution: version}}) stands in for Numerai's vendored pin lists
    (images/py3.X/numerai.txt), which answer for the full profile otherwise.
    """
    path = Path(path)
    sniffer = PayloadSniffer()
    walk = walk_file(path, limits, sniffer.feed)
    try:
        inspection = analyse(path, walk, sniffer, full_pins)
    except Exception as exc:  # noqa: BLE001 - a strange pickle must give a report, never a traceback
        inspection = unanalysed(path, walk, exc)
    if walk.opcodes:
        inspection.columns = scan_columns(path)
    return inspection


def analyse(path: Path, walk: Walk, sniffer: PayloadSniffer,
            full_pins: Mapping[str, Mapping[str, str]] | None) -> Inspection:
    """The report from one walk: each part from the facts, the fit from the parts."""
    facts = read_facts(walk, sniffer)
    pins = image_pins(full_pins)
    made_with, serializer_evidence = serializer(facts)
    python = python_version(facts)
    needed = modules_needed(facts, python)
    recorded = recorded_versions(library_records(facts), pins)
    callable_info = describe_callable(facts)
    risky = risks(facts, needed)
    problems = stream_problems(facts, made_with, path)
    modules = module_table(needed, pins)
    images = image_fits(facts, python, modules, recorded)
    stats = {"complete": walk.complete, "opcodes": walk.opcodes, "seconds": round(walk.seconds, 3),
             "payloads_skipped": walk.payloads_skipped, "bytes_skipped": walk.bytes_skipped,
             "trailing_bytes": walk.trailing_bytes, "calls": len(walk.calls) + walk.calls_dropped,
             "code_objects": len(facts.code_findings), "code_arguments": facts.code_arguments(),
             "memo_dropped": walk.memo_dropped,
             "items_dropped": walk.dropped_items, "highest_opcode_protocol": walk.max_opcode_protocol}
    return Inspection(path=str(path), size_bytes=walk.size, sha256=sha256_or_none(path),
                      protocol=walk.protocol if walk.protocol is not None else (
                          walk.max_opcode_protocol if walk.opcodes else None),
                      serializer=made_with, serializer_evidence=serializer_evidence, python=python,
                      modules=modules, recorded_versions=recorded, callable=callable_info,
                      risky=risky, problems=problems, images=images, stats=stats)


def unanalysed(path: Path, walk: Walk, exc: Exception) -> Inspection:
    """The report when the analysis itself failed on a strange stream: what the walk saw, and that."""
    problems = list(walk.problems) + [f"the inspector could not analyse this stream ({type(exc).__name__}: "
                                      f"{exc}); the report is incomplete"]
    return Inspection(path=str(path), size_bytes=walk.size, sha256=sha256_or_none(path), protocol=walk.protocol,
                      serializer="unknown", serializer_evidence=[],
                      python=PythonVersion(None, [], [], ["the analysis failed"]), modules=[],
                      recorded_versions=[], callable=CallableInfo("unknown"), risky=[], problems=problems,
                      images={}, stats={"complete": walk.complete, "opcodes": walk.opcodes})


def sha256_or_none(path: Path) -> str | None:
    """None when the file went away or became unreadable after it was walked."""
    try:
        return file_sha256(path)
    except OSError:
        return None
