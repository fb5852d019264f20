#!/usr/bin/env python3
"""Regenerate images/numerai-distributions.json from the wheels themselves (online).

For every distribution==version in Numerai's vendored pin lists (images/py3.X/numerai.txt)
it records the names the wheel makes importable (its file list, as RECORD lists it, plus
top_level.txt), its Requires-Dist lines (METADATA), and for each Python the size of the
wheel pip picks for CPython on manylinux x86_64. Nothing is downloaded whole: PyPI's simple
API (JSON) lists the files and their sizes; each wheel's central directory and METADATA /
top_level.txt are read with HTTP range requests (or METADATA from its PEP 658 file).
One wheel per distribution==version is read: the one for the newest Python that pins it; a
release with no wheel at all (Numerai's image builds it from source) is read from its small
source archive's PKG-INFO and egg-info instead.

    python scripts/make_module_map.py [--jobs 8]

Run it after `numerai-sandbox images pins --update`, and commit the result.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tarfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from email.parser import Parser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runner.images import numerai, pypi  # noqa: E402
from runner.images.pinfiles import images_root  # noqa: E402

ARCH = "x86_64"
# Folders some wheels ship at the top level by mistake (google-auth installs `scripts` and `testing`,
# kiwisolver `src`): not names a model imports from them, and common names of a user's own packages.
GENERIC = {"test", "tests", "testing", "scripts", "script", "src", "example", "examples", "doc", "docs",
           "benchmark", "benchmarks", "build", "conftest", "setup", "tools", "utils"}
SDIST_LIMIT = 20 * 1024**2


def own_names(name: str, modules: list[str]) -> list[str]:
    """The import names, without generic folders a wheel ships by mistake (unless named like it)."""
    return [m for m in modules if m.split(".")[0].lower() not in GENERIC or numerai.normalize(m) == name]


def describe(name: str, version: str, pythons: list[str], files: list[dict]) -> dict:
    """The map's entry for one distribution==version."""
    sizes = {}
    chosen = None
    for python in sorted(pythons, key=numerai.python_key):
        wheel = pypi.best_wheel(files, version, python, ARCH)
        sizes[python] = wheel.get("size") if wheel else None
        chosen = wheel or chosen
    source = chosen or pypi.any_wheel(files, version)
    if source is None:
        return describe_sdist(name, version, sizes, files)
    remote = pypi.RemoteZip(source["url"], int(source["size"]))
    members = remote.members()
    dist_info = [m for m in members if m.name.count("/") == 1 and m.name.split("/")[0].endswith(".dist-info")]
    wanted = {m.name.split("/")[1]: m for m in dist_info}
    if source.get("core-metadata") or source.get("data-dist-info-metadata"):
        metadata = pypi.http_get(source["url"] + ".metadata").decode("utf-8", "replace")
    elif "METADATA" in wanted:
        metadata = remote.open(wanted["METADATA"]).decode("utf-8", "replace")
    else:
        raise pypi.PyPIError(f"{source['filename']} has no METADATA")
    top_level = remote.open(wanted["top_level.txt"]).decode("utf-8", "replace").split() \
        if "top_level.txt" in wanted else []
    message = Parser().parsestr(metadata, headersonly=True)
    return {"wheel": source["filename"], "read_bytes": remote.bytes_read,
            "modules": own_names(name, pypi.import_names([m.name for m in members], top_level)),
            "requires": sorted(set(message.get_all("Requires-Dist") or [])),
            "wheel_sizes": sizes}


def describe_sdist(name: str, version: str, sizes: dict, files: list[dict]) -> dict:
    """The entry for a release PyPI has only as source (Numerai's image builds it): its PKG-INFO and
    egg-info, from the whole (small) archive."""
    prefix = f"{name.replace('-', '_')}-{version}.tar.gz".lower()
    sdist = next((f for f in files if f["filename"].lower() in (prefix, prefix.replace("_", "-"))), None)
    if sdist is None or int(sdist.get("size") or 0) > SDIST_LIMIT:
        raise pypi.PyPIError(f"PyPI has no wheel of {name} {version}, and no small source archive")
    data = pypi.http_get(sdist["url"])
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as archive:
        members = {m.name.split("/", 1)[1]: m for m in archive.getmembers() if "/" in m.name and m.isfile()}

        def text(path: str) -> str:
            return archive.extractfile(members[path]).read().decode("utf-8", "replace")

        message = Parser().parsestr(text("PKG-INFO"), headersonly=True)
        top_level = next((text(p).split() for p in members if p.endswith(".egg-info/top_level.txt")), [])
        packages = sorted({p.split("/")[0] for p in members if p.count("/") == 1 and p.endswith("/__init__.py")})
    return {"wheel": None, "sdist": sdist["filename"], "read_bytes": len(data),
            "modules": own_names(name, sorted(set(top_level) | set(packages)) if top_level else packages),
            "requires": sorted(set(message.get_all("Requires-Dist") or [])), "wheel_sizes": sizes}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--out", type=Path, default=images_root() / numerai.MAP_FILE)
    args = parser.parse_args()

    started = time.monotonic()
    lists = {python: numerai.numerai_list(python) for python in numerai.vendored_pythons()}
    wanted: dict[tuple[str, str], list[str]] = {}
    for python, listing in lists.items():
        for name, version in listing.pins.items():
            wanted.setdefault((name, version), []).append(python)
    names = sorted({name for name, _ in wanted})
    print(f"{len(wanted)} distribution versions ({len(names)} projects) in {len(lists)} lists", file=sys.stderr)
    with ThreadPoolExecutor(args.jobs) as pool:
        try:
            files = dict(zip(names, pool.map(pypi.project_files, names)))
        except pypi.PyPIError as exc:
            raise SystemExit(f"make_module_map: {exc}")

        def entry(key: tuple[str, str]) -> tuple[str, dict | str]:
            name, version = key
            try:
                return f"{name}=={version}", describe(name, version, wanted[key], files[name])
            except (pypi.PyPIError, KeyError, ValueError) as exc:
                return f"{name}=={version}", str(exc)

        results = dict(pool.map(entry, sorted(wanted)))
    distributions = {k: v for k, v in results.items() if isinstance(v, dict)}
    problems = {k: v for k, v in results.items() if isinstance(v, str)}
    read = sum(v.pop("read_bytes") for v in distributions.values())
    document = {
        "about": "Generated by scripts/make_module_map.py from the wheels' own metadata; do not edit. For every "
                 "distribution==version in images/py3.X/numerai.txt: `modules`, the names its wheel makes "
                 "importable (its file list as RECORD lists it, plus top_level.txt; inside a namespace package "
                 "such as google/, the first level that is a package); `requires`, its Requires-Dist lines; "
                 "`wheel_sizes`, per Python the bytes of the wheel pip picks for CPython on manylinux x86_64 "
                 "(null: no such wheel); `wheel`, the wheel whose metadata was read.",
        "generated_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "source": "PyPI simple API (PEP 691 JSON); wheels read with HTTP range requests",
        "lists": {python: {"commit": listing.commit, "pins": len(listing.pins)} for python, listing in lists.items()},
        "problems": problems,
        "distributions": distributions,
    }
    staged = args.out.with_name(f".{args.out.name}.tmp")
    staged.write_text(json.dumps(document, indent=1, sort_keys=False) + "\n")
    staged.replace(args.out)  # readers never see half a file
    print(f"wrote {args.out}: {len(distributions)} distributions, {len(problems)} problems, "
          f"{read / 1e6:.1f} MB read in {time.monotonic() - started:.0f}s", file=sys.stderr)
    for key, problem in problems.items():
        print(f"  {key}: {problem}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
