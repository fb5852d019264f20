"""What wrote the pickle: the serializer (pickle, cloudpickle, dill, joblib) and the Python, with the
evidence for each, from the facts the walk gathered."""

from __future__ import annotations

from .facts import PickleFacts, name_of
from .pyversions import KNOWN_PYTHONS, VersionVerdict, judge, span
from .report import PythonVersion
from .rules import cloudpickle_releases, short_name
from .version_tables import CLOUDPICKLE_NAMES, PICKLE_PROTOCOLS


def serializer(facts: PickleFacts) -> tuple[str, list[str]]:
    """The library that wrote the stream, and why the inspector thinks so."""
    walk = facts.walk
    names = {f"{m}.{a}" for m, a in walk.globals}
    evidence = []
    if not walk.opcodes or (not walk.complete and walk.opcodes < 4):
        return "not a pickle", []
    cloud = sorted(n for n in names if n.startswith("cloudpickle."))
    if any(n.startswith("joblib.numpy_pickle.") for n in names):
        evidence.append("names joblib.numpy_pickle.NumpyArrayWrapper: written by joblib.dump, whose arrays "
                        "follow the pickle as raw data that only joblib.load can read")
        return "joblib", evidence
    if any(n.startswith("dill.") for n in names):
        helpers = sorted(n for n in names if n.startswith("dill."))
        return "dill", [f"names dill's helpers ({', '.join(helpers[:3])})"]
    if cloud:
        evidence.append(f"names cloudpickle's helpers: {', '.join(short_name(n) for n in cloud[:6])}"
                        + (" ..." if len(cloud) > 6 else ""))
        releases = cloudpickle_releases(cloud)
        if any(n.startswith("cloudpickle.cloudpickle_fast.") for n in cloud):
            evidence.append("helpers under cloudpickle.cloudpickle_fast: written by cloudpickle older than 3.0")
        elif any(short_name(n) == "_function_setstate" or short_name(n) == "_class_setstate" for n in cloud):
            evidence.append("_function_setstate/_class_setstate under cloudpickle.cloudpickle: written by "
                            "cloudpickle 3.0 or later")
        evidence.append("loadable by cloudpickle " + (", ".join(releases) if releases else "none of "
                        + ", ".join(CLOUDPICKLE_NAMES)) + " (of the releases this table knows)")
        return "cloudpickle", evidence
    if facts.code_findings:
        return "cloudpickle?", ["rebuilds code objects, as cloudpickle does, without naming cloudpickle"]
    proto = walk.protocol
    default = [p for p, (d, _h) in PICKLE_PROTOCOLS.items() if d == proto]
    evidence.append("names no cloudpickle helper: written by pickle.dump (or pandas.to_pickle, "
                    "joblib without arrays, ...)" + (f"; protocol {proto} is pickle's default on Python "
                                                    f"{span(default)}" if default else ""))
    return "pickle", evidence


def python_version(facts: PickleFacts) -> PythonVersion:
    """Which Python made the pickle: from its code objects when it has any, else what its protocol allows."""
    walk = facts.walk
    findings = list(facts.code_findings.values())
    verdict: VersionVerdict = judge(findings, facts.other_code_layouts)
    proto = walk.protocol
    if findings or facts.other_code_layouts:
        evidence = list(verdict.evidence)
        if proto is not None:
            evidence.append(f"pickle protocol {proto}")
        return PythonVersion(verdict.version, verdict.candidates, evidence, verdict.reasons_unknown)
    if not walk.opcodes:
        return PythonVersion(None, [], [], ["the file is not a pickle"])
    if any(short_name(name_of(c.func)) == "_create_code" for c in walk.calls):
        return PythonVersion(None, [], [], ["it rebuilds code with dill, whose code-object layout this "
                                            "inspector does not read"])
    readable = [p for p in KNOWN_PYTHONS if proto is None or proto <= PICKLE_PROTOCOLS[p][1]]
    reasons = ["the pickle holds no code objects: a pickle of objects (pickle.dump, or cloudpickle of "
               "things defined in importable modules) records classes by name and data, not the Python "
               "that wrote it"]
    evidence = []
    if proto is not None:
        default = [p for p, (d, _h) in PICKLE_PROTOCOLS.items() if d == proto]
        every = readable == list(KNOWN_PYTHONS)
        evidence.append(f"pickle protocol {proto}: readable by "
                        + (f"every Python this table knows ({span(readable)})" if every
                           else f"Python {span(readable)}")
                        + (f"; the default of pickle.dump on {span(default)} (weak evidence)" if default
                           else ""))
    if walk.globals and any(m == "__main__" for m, _ in walk.globals):
        reasons.append("what it needs from __main__ is named, not included")
    return PythonVersion(None, readable, evidence, reasons)
