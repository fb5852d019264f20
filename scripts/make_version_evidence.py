#!/usr/bin/env python3
"""Generate, from real interpreters, the evidence behind `numerai-sandbox inspect`'s Python version table.

    make_version_evidence.py tables     rewrite runner/inspection/version_tables.py from each pyenv CPython's own
                                        opcode module and standard-library list, and from the
                                        cloudpickle releases Numerai's images pin
    make_version_evidence.py selftest   compile the standard library with every pyenv CPython and check
                                        that the bytecode checks accept every code object under the
                                        Python that compiled it (no false rejections), and count how
                                        often they tell it from the other Pythons
    make_version_evidence.py pickles    make throwaway environments per CPython (and cloudpickle
                                        version), pickle scripts/evidence_models.py's models in each,
                                        inspect every pickle and print the detection table
                                        (--load-matrix: also load and call every cloudpickled function
                                        under every other Python, in subprocesses, to show what breaks)

Everything is made under a temporary directory that is removed at the end (--keep to keep it).
Nothing here runs on the host's Python but the inspector: pickles are only ever loaded by the
throwaway interpreters that made them or by the interpreters of the load matrix.

A Python that pyenv lacks (3.14 here) can come from a Docker image instead, run without network:
    make_version_evidence.py --docker 3.14=numerai-sandbox:py3.14-standard tables
uses the image's /opt/venv/bin/python (IMAGE@/path/to/python for another); its "libraries"
environment is the image itself, and a cloudpickle release goes first on its PYTHONPATH.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TABLE_FILE = ROOT / "runner" / "inspection" / "version_tables.py"
MODELS = ROOT / "scripts" / "evidence_models.py"
TABLE_PYTHONS = ("3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14")  # whichever of these pyenv has
CLOUDPICKLE_VERSIONS = ("1.6.0", "2.0.0", "2.2.1", "3.0.0", "3.1.1", "3.1.2")
# What Numerai's images pin per Python (images/py3.X/standard.txt); 3.9 is not an image: newest libraries.
IMAGE_LIBRARIES = {
    "3.9": ["cloudpickle==3.1.2", "numpy==1.26.4", "scikit-learn==1.6.1", "lightgbm==4.6.0",
            "xgboost==2.1.4", "pandas==2.2.3"],
    "3.10": ["cloudpickle==2.2.1", "numpy==1.26.4", "scikit-learn==1.6.1", "lightgbm==4.0.0",
             "xgboost==1.7.5", "pandas==2.2.1", "scipy==1.11.4"],
    "3.11": ["cloudpickle==3.1.1", "numpy==2.1.3", "scikit-learn==1.6.1", "lightgbm==4.6.0",
             "xgboost-cpu==3.0.2", "pandas==2.3.1", "scipy==1.16.0"],
    "3.12": ["cloudpickle==3.1.1", "numpy==2.1.3", "scikit-learn==1.6.1", "lightgbm==4.5.0",
             "xgboost-cpu==3.0.2", "pandas==2.3.1", "scipy==1.16.0"],
    "3.13": ["cloudpickle==3.1.2", "numpy==2.2.6", "scikit-learn==1.6.1", "lightgbm==4.5.0",
             "xgboost-cpu==3.0.5", "pandas==2.3.3", "scipy==1.17.1"],
}

PROBE = r"""
import json, opcode, pickle, sys
ops = {}
for name, number in opcode.opmap.items():
    if number < 256 and not name.startswith("INSTRUMENTED_") and name not in ("ENTER_EXECUTOR", "RESERVED"):
        ops[number] = name
entries = getattr(opcode, "_inline_cache_entries", None)
if isinstance(entries, dict):
    caches = {n: c for n, c in entries.items() if c and n in opcode.opmap}
elif entries is not None:
    caches = {opcode.opname[i]: c for i, c in enumerate(entries) if c}
else:
    caches = {}
print(json.dumps({"python": "%d.%d" % sys.version_info[:2], "full": sys.version.split()[0],
                  "opcodes": ops, "caches": caches,
                  "stdlib": sorted(getattr(sys, "stdlib_module_names", ())),
                  "protocols": [pickle.DEFAULT_PROTOCOL, pickle.HIGHEST_PROTOCOL]}))
"""

CLOUDPICKLE_PROBE = r"""
import importlib, json
out = {}
main = importlib.import_module("cloudpickle.cloudpickle")
for module_name in ("cloudpickle", "cloudpickle.cloudpickle", "cloudpickle.cloudpickle_fast"):
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        continue
    names = {n for n in dir(module) if not n.startswith("__") and callable(getattr(module, n, None))}
    if hasattr(module, "__getattr__") and module is not main:  # 3.x keeps cloudpickle_fast as a forwarder
        names |= {n for n in dir(main) if not n.startswith("__") and callable(getattr(main, n, None))}
    out[module_name] = sorted(names)
print(json.dumps(out))
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


DOCKER_PYTHONS: dict[str, Path] = {}  # minor -> wrapper script running that Python in a Docker image (--docker)
_WRAPPERS = Path(tempfile.mkdtemp(prefix="nsbx-docker-pythons-"))
atexit.register(shutil.rmtree, _WRAPPERS, True)


def docker_python(minor: str, spec: str, pythonpath: str | None = None, name: str | None = None) -> Path:
    """An executable that runs IMAGE[@PYTHON] in a throwaway container without network, as if local:
    /tmp and this checkout are mounted at the same paths, so every path the script passes still holds."""
    image, _, python = spec.partition("@")
    mounts = ["-v", "/tmp:/tmp", "-v", f"{ROOT}:{ROOT}:ro"]
    if tempfile.gettempdir() != "/tmp":
        mounts += ["-v", f"{tempfile.gettempdir()}:{tempfile.gettempdir()}"]
    env = ["-e", f"PYTHONPATH={pythonpath}"] if pythonpath else []
    wrapper = _WRAPPERS / (name or f"python{minor}")
    wrapper.write_text("#!/bin/sh\nexec docker run --rm -i --network none -u 0:0 --label numerai-sandbox.kind=script "
                       + " ".join(mounts + env) + f" -w /tmp --entrypoint {python or '/opt/venv/bin/python'} "
                       + f'{image} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def pyenv_pythons(wanted=TABLE_PYTHONS) -> dict[str, Path]:
    """minor version -> interpreter, for each pyenv CPython (the newest patch release of each minor),
    and those given with --docker."""
    docker = {m: p for m, p in DOCKER_PYTHONS.items() if m in wanted}
    try:
        root = Path(subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        return docker
    found: dict[str, tuple[tuple[int, ...], Path]] = {}
    for entry in (root / "versions").iterdir() if (root / "versions").is_dir() else ():
        parts = entry.name.split(".")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            continue
        minor = f"{parts[0]}.{parts[1]}"
        python = entry / "bin" / "python"
        if minor in wanted and python.exists():
            key = tuple(int(p) for p in parts)
            if minor not in found or key > found[minor][0]:
                found[minor] = (key, python)
    found_local = {m: p for m, (_, p) in sorted(found.items(), key=lambda kv: kv[1][0])}
    found_local.update(docker)
    return found_local


def pip_target(version: str, into: Path) -> Path:
    """cloudpickle==version unpacked into its own folder (pure Python: any interpreter can import it)."""
    target = into / f"cloudpickle-{version}"
    if not target.exists():
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target),
                        f"cloudpickle=={version}"], check=True, stdout=subprocess.DEVNULL)
    return target


# ---------------------------------------------------------------- tables

def cmd_tables(args: argparse.Namespace) -> None:
    pythons = pyenv_pythons()
    if not pythons:
        sys.exit("no pyenv CPython found")
    probes = {}
    for minor, python in pythons.items():
        out = subprocess.run([str(python), "-c", PROBE], capture_output=True, text=True, check=True).stdout
        probes[minor] = json.loads(out)
        log(f"probed {minor} ({probes[minor]['full']}): {len(probes[minor]['opcodes'])} opcodes")
    cloudpickle_names = {}
    with tempfile.TemporaryDirectory(prefix="nsbx-cloudpickle-") as tmp:
        for version in CLOUDPICKLE_VERSIONS:
            target = pip_target(version, Path(tmp))
            for minor in ("3.10", "3.11", "3.9", "3.8", "3.12", "3.13"):
                if minor not in pythons:
                    continue
                proc = subprocess.run([str(pythons[minor]), "-c", CLOUDPICKLE_PROBE], capture_output=True,
                                      text=True, env=dict(os.environ, PYTHONPATH=str(target)))
                if proc.returncode == 0:
                    cloudpickle_names[version] = json.loads(proc.stdout)
                    log(f"cloudpickle {version}: names read under Python {minor}")
                    break
            else:
                log(f"cloudpickle {version}: no interpreter could import it; left out")
    TABLE_FILE.write_text(render_tables(probes, cloudpickle_names))
    log(f"wrote {TABLE_FILE.relative_to(ROOT)}")


def _wrapped(text: str, indent: int) -> str:
    lines = textwrap.wrap(text, width=104 - indent, break_on_hyphens=False)
    pad = " " * indent
    return "\n".join(f'{pad}"{line} "' for line in lines[:-1]) + (f'\n{pad}"{lines[-1]}"' if lines else f'{pad}""')


def render_tables(probes: dict, cloudpickle_names: dict) -> str:
    out = ['"""Facts about CPython and cloudpickle releases that static pickle inspection relies on.',
           "",
           "GENERATED by scripts/make_version_evidence.py tables -- do not edit by hand; rerun it",
           "with more interpreters (pyenv's, or --docker MINOR=IMAGE) to extend the table. Sources: each",
           "interpreter's own `opcode` module (the opcodes co_code may hold, and how many inline cache",
           "entries follow each), its sys.stdlib_module_names, its pickle protocols, and the callables each",
           "cloudpickle release defines where a pickle can name them.",
           f"Generated on {date.today().isoformat()} from CPython "
           + ", ".join(p["full"] for p in probes.values()) + ".",
           '"""',
           "",
           "from __future__ import annotations",
           "",
           "",
           "def _numbered(text: str) -> dict[int, str]:",
           "    pairs = (item.split(\":\") for item in text.split())",
           "    return {int(number): name for number, name in pairs}",
           "",
           "",
           "def _counted(text: str) -> dict[str, int]:",
           "    pairs = (item.split(\":\") for item in text.split())",
           "    return {name: int(count) for name, count in pairs}",
           "",
           "",
           "# Python -> {opcode number: name}, for every opcode that can appear in a code object's co_code.",
           "OPCODES: dict[str, dict[int, str]] = {"]
    for minor, probe in probes.items():
        text = " ".join(f"{n}:{name}" for n, name in sorted((int(k), v) for k, v in probe["opcodes"].items()))
        out.append(f'    "{minor}": _numbered(\n{_wrapped(text, 8)}),')
    out += ["}", "",
            "# Python -> {opcode name: inline cache entries that follow it in co_code} (3.11 and later).",
            "CACHES: dict[str, dict[str, int]] = {"]
    for minor, probe in probes.items():
        text = " ".join(f"{name}:{count}" for name, count in sorted(probe["caches"].items()))
        out.append(f'    "{minor}": _counted(\n{_wrapped(text, 8)}),' if text else f'    "{minor}": {{}},')
    out += ["}", "",
            "# Python -> (pickle.DEFAULT_PROTOCOL, pickle.HIGHEST_PROTOCOL).",
            "PICKLE_PROTOCOLS: dict[str, tuple[int, int]] = {"]
    out += [f'    "{m}": ({p["protocols"][0]}, {p["protocols"][1]}),' for m, p in probes.items()]
    out += ["}", ""]
    with_lists = {m: set(p["stdlib"]) for m, p in probes.items() if p["stdlib"]}
    union = sorted(set().union(*with_lists.values())) if with_lists else []
    out += ["# Top-level standard-library modules of any of the Pythons below (sys.stdlib_module_names) ...",
            "STDLIB_ANY: frozenset[str] = frozenset((",
            _wrapped(" ".join(union), 4), ").split())", "",
            "# ... and, per Python, those of STDLIB_ANY it does not have.",
            "STDLIB_MISSING: dict[str, frozenset[str]] = {"]
    for minor, names in with_lists.items():
        missing = " ".join(sorted(set(union) - names))
        out.append(f'    "{minor}": frozenset("{missing}".split()),')
    out += ["}", ""]
    # Releases and their modules share most name sets: each distinct set is written once.
    shared: dict[tuple[str, ...], str] = {}
    for version, modules in cloudpickle_names.items():
        for module, names in modules.items():
            key = tuple(sorted(names))
            if key not in shared:
                shared[key] = f"_NAMES_{len(shared) + 1}"
                out += [f"# first in cloudpickle {version}, {module}",
                        f"{shared[key]} = frozenset((\n{_wrapped(' '.join(key), 4)}).split())"]
    out += ["",
            "# cloudpickle release -> module -> callables a pickle can name there (getattr works on them).",
            "CLOUDPICKLE_NAMES: dict[str, dict[str, frozenset[str]]] = {"]
    for version, modules in cloudpickle_names.items():
        out.append(f'    "{version}": {{')
        out += [f'        "{module}": {shared[tuple(sorted(names))]},' for module, names in modules.items()]
        out.append("    },")
    out += ["}", ""]
    return "\n".join(out)


# ---------------------------------------------------------------- self-test on the standard library

STDLIB_CODE = r"""
import json, os, sys, sysconfig
root = sysconfig.get_paths()["stdlib"]
limit = int(sys.argv[1])
files = []
for folder, dirs, names in os.walk(root):
    dirs[:] = sorted(d for d in dirs if d not in ("test", "tests", "site-packages", "idlelib", "lib2to3"))
    files += [os.path.join(folder, n) for n in sorted(names) if n.endswith(".py")]
out = []
for path in files[:limit]:
    try:
        with open(path, "rb") as handle:
            code = compile(handle.read(), path, "exec")
    except (SyntaxError, ValueError, UnicodeDecodeError):
        continue
    stack = [code]
    while stack:
        c = stack.pop()
        if sys.version_info[:2] == (3, 10):
            table = c.co_linetable
        else:
            table = c.co_lnotab if sys.version_info < (3, 10) else b""
        out.append([c.co_code.hex(), len(c.co_freevars), table.hex()])
        stack.extend(k for k in c.co_consts if hasattr(k, "co_code"))
json.dump(out, sys.stdout)
"""


def cmd_selftest(args: argparse.Namespace) -> None:
    from runner.inspection.pyversions import MODERN, POSONLY, _line_table_covers, check_bytecode

    pythons = pyenv_pythons()
    print("| compiled by | code objects | rejected by its own Python | told apart from ... |")
    print("|---|---|---|---|")
    for minor, python in pythons.items():
        proc = subprocess.run([str(python), "-c", STDLIB_CODE, str(args.files)], capture_output=True, text=True,
                              check=True)
        codes = json.loads(proc.stdout)
        family = MODERN if minor in MODERN else POSONLY if minor in POSONLY else ()
        own_rejects: list[str] = []
        told: dict[str, int] = {v: 0 for v in family if v != minor}
        for code_hex, n_free, table_hex in codes:
            code = bytes.fromhex(code_hex)
            why = check_bytecode(code, minor, True, n_free)
            if why is None and minor in POSONLY:
                covers = _line_table_covers(bytes.fromhex(table_hex), len(code))
                why = None if covers == (minor == "3.10") else "line table"
            if why:
                own_rejects.append(why)
            for other in told:
                reason = check_bytecode(code, other, True, n_free)
                if reason is None and minor in POSONLY:
                    covers = _line_table_covers(bytes.fromhex(table_hex), len(code))
                    reason = None if covers == (other == "3.10") else "line table"
                told[other] += reason is not None
        apart = ", ".join(f"{v}: {n / len(codes):.1%}" for v, n in told.items()) or "-"
        print(f"| {minor} | {len(codes)} | {len(own_rejects)} | {apart} |")
        for why in sorted(set(own_rejects))[:5]:
            print(f"|   | | {why} | |")


# ---------------------------------------------------------------- pickles, detection, load matrix

DOCKER_SPECS: dict[str, str] = {}  # minor -> IMAGE[@PYTHON]


def make_environment(minor: str, python: Path, where: Path, libraries: bool, cloudpickle: str | None) -> Path:
    """A venv for `minor` with the image's libraries (or only cloudpickle). Returns its python."""
    name = f"py{minor}-{'libs' if libraries else 'cp' + (cloudpickle or 'image')}"
    if python in DOCKER_PYTHONS.values():  # no network in there: the image's libraries, cloudpickle put first
        spec = DOCKER_SPECS[minor]
        target = pip_target(cloudpickle, where) if cloudpickle else None
        return docker_python(minor, spec, str(target) if target else None, name)
    venv = where / name
    if not (venv / "bin" / "python").exists():
        subprocess.run([str(python), "-m", "venv", str(venv)], check=True)
        if libraries:
            packages = list(IMAGE_LIBRARIES.get(minor, ["cloudpickle", "numpy", "scikit-learn", "lightgbm",
                                                         "xgboost", "pandas"]))
            if cloudpickle:
                packages = [p for p in packages if not p.startswith("cloudpickle")] + [f"cloudpickle=={cloudpickle}"]
        else:
            packages = [f"cloudpickle=={cloudpickle}" if cloudpickle else "cloudpickle"]
        log(f"installing into {name}: {' '.join(packages)}")
        proc = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", *packages], capture_output=True,
                              text=True)
        if proc.returncode != 0:
            log(f"{name}: pip failed, retrying without the libraries that failed:\n{proc.stderr[-2000:]}")
            subprocess.run([str(venv / "bin" / "pip"), "install", "-q", packages[0]], check=True)
            for package in packages[1:]:
                subprocess.run([str(venv / "bin" / "pip"), "install", "-q", package], capture_output=True)
    return venv / "bin" / "python"


LOAD_AND_CALL = r"""
import inspect, json, pickle, sys
try:
    import numpy as np, pandas as pd
    live = pd.DataFrame(np.random.RandomState(0).rand(6, 5), columns=[f"feature_{i}" for i in range(5)])
    live["feature_a"] = 0.5
    arguments = [live, pd.DataFrame({"v52_lgbm_ender20": [0.5] * 6})]
except ImportError:
    arguments = [3.0, 3.0]
try:
    with open(sys.argv[1], "rb") as handle:
        obj = pickle.load(handle)
except BaseException as exc:
    print(json.dumps({"loaded": False, "error": type(exc).__name__})); sys.exit(0)
if not callable(obj):
    print(json.dumps({"loaded": True, "callable": False})); sys.exit(0)
try:
    n = len(inspect.signature(obj).parameters)
    obj(*arguments[:n])
    print(json.dumps({"loaded": True, "callable": True, "called": True}))
except BaseException as exc:
    print(json.dumps({"loaded": True, "callable": True, "called": False, "error": type(exc).__name__}))
"""
MATRIX_CASES = ("function", "closure", "lambda_identity", "function_identity", "sklearn_closure", "lightgbm_closure",
                "xgboost_closure", "sklearn_plain", "sklearn_tree_plain", "lightgbm_plain", "xgboost_plain")


def cmd_pickles(args: argparse.Namespace) -> None:
    from runner.inspection import inspect_pickle

    pythons = pyenv_pythons(("3.8", "3.9", "3.10", "3.11", "3.12", "3.13", "3.14"))
    if args.pythons:
        pythons = {m: p for m, p in pythons.items() if m in args.pythons}
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="nsbx-evidence-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    made: dict[str, Path] = {}
    try:
        for minor, python in pythons.items():
            variants = [(True, None)] if args.libraries else []
            variants += [(False, v) for v in args.cloudpickle]
            for libraries, cloudpickle in variants:
                env_python = make_environment(minor, python, work / "venvs", libraries, cloudpickle)
                label = f"{minor}-{'libs' if libraries else 'cp' + cloudpickle}"
                out = work / "pickles" / label
                proc = subprocess.run([str(env_python), str(MODELS), "--out", str(out),
                                       *([] if libraries else ["--no-libraries"])],
                                      capture_output=True, text=True)
                if proc.returncode != 0:
                    log(f"{label}: could not make pickles:\n{proc.stderr[-1500:]}")
                    continue
                made[label] = env_python
                manifest = json.loads((out / "manifest.json").read_text())
                for case, info in sorted(manifest["cases"].items()):
                    inspection = inspect_pickle(out / info["file"])
                    rows.append({"made_by": minor, "label": label, "case": case,
                                 "cloudpickle": manifest["versions"].get("cloudpickle"),
                                 "serializer": info["serializer"], "bytes": info["bytes"],
                                 "expected_kind": info["kind"], "expected_params": info["params"],
                                 "detected": inspection.python.version,
                                 "candidates": inspection.python.candidates,
                                 "evidence": inspection.python.evidence[:3],
                                 "kind": inspection.callable.kind, "params": inspection.callable.params,
                                 "recorded": {r.library: r.version for r in inspection.recorded_versions},
                                 "file": str(out / info["file"])})
        print_detection(rows)
        if args.load_matrix:
            print_load_matrix(rows, made)
        if args.json:
            Path(args.json).write_text(json.dumps(rows, indent=1))
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


def print_detection(rows: list[dict]) -> None:
    print("| made by | cloudpickle | case | serializer | detected | candidates | kind (params) | ok |")
    print("|---|---|---|---|---|---|---|---|")
    wrong = 0
    for row in rows:
        ok_version = (row["detected"] == row["made_by"]) if row["serializer"] == "cloudpickle" else \
            (row["detected"] is None)
        ok_kind = row["kind"] == row["expected_kind"] and (row["expected_params"] is None
                                                           or row["params"] == row["expected_params"])
        verdict = "yes" if ok_version and ok_kind else ("ambiguous" if ok_kind and row["made_by"] in
                                                        row["candidates"] else "NO")
        wrong += verdict == "NO"
        params = "" if row["params"] is None else f" ({', '.join(row['params'])})"
        print(f"| {row['made_by']} | {row['cloudpickle']} | {row['case']} | {row['serializer']} | "
              f"{row['detected'] or 'unknown'} | {', '.join(row['candidates'])} | {row['kind']}{params} | "
              f"{verdict} |")
    print(f"\n{len(rows)} pickles, {wrong} wrong")


def print_load_matrix(rows: list[dict], made: dict[str, Path]) -> None:
    """Load (and call, with a small DataFrame) pickles made in each library environment under every other."""
    envs = {label: python for label, python in made.items() if label.endswith("-libs")}
    print("\n| pickle | made by | " + " | ".join(f"loaded by {label}" for label in envs) + " |")
    print("|---|---|" + "---|" * len(envs))
    for row in rows:
        if row["case"] not in MATRIX_CASES or not row["label"].endswith("-libs"):
            continue
        cells = []
        for python in envs.values():
            try:
                proc = subprocess.run([str(python), "-c", LOAD_AND_CALL, row["file"]], capture_output=True,
                                      text=True, timeout=120)
            except subprocess.TimeoutExpired:
                cells.append("hangs")
                continue
            if proc.returncode < 0:
                cells.append(f"crash ({signal_name(-proc.returncode)})")
                continue
            try:
                result = json.loads(proc.stdout.strip().splitlines()[-1])
            except (ValueError, IndexError):
                cells.append(f"exit {proc.returncode}")
                continue
            if not result.get("loaded"):
                cells.append(f"load: {result['error']}")
            elif not result.get("callable"):
                cells.append("loads")
            elif result.get("called"):
                cells.append("runs")
            else:
                cells.append(f"call: {result['error']}")
        print(f"| {row['case']} | {row['label'].removesuffix('-libs')} | " + " | ".join(cells) + " |")


def signal_name(number: int) -> str:
    import signal

    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--docker", action="append", default=[], metavar="MINOR=IMAGE[@PYTHON]",
                        help="a Python pyenv lacks, from a Docker image (e.g. 3.14=numerai-sandbox:py3.14-standard)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("tables", help="rewrite runner/inspection/version_tables.py")
    selftest = sub.add_parser("selftest", help="check the bytecode checks on the standard library's code")
    selftest.add_argument("--files", type=int, default=400, help="standard-library files per Python")
    pick = sub.add_parser("pickles", help="make pickles with every pyenv CPython, inspect them, print the table")
    pick.add_argument("--python", dest="pythons", action="append", help="only these minor versions (repeatable)")
    pick.add_argument("--cloudpickle", action="append", default=[],
                      help="also make function pickles with this cloudpickle release alone (repeatable)")
    pick.add_argument("--no-libraries", dest="libraries", action="store_false",
                      help="skip the environments with the images' libraries (slow to install)")
    pick.add_argument("--load-matrix", action="store_true", help="load and call pickles across environments")
    pick.add_argument("--workdir", help="keep environments and pickles here (reused between runs)")
    pick.add_argument("--keep", action="store_true", help="keep the temporary directory")
    pick.add_argument("--json", help="also write the detection rows as JSON to this file")
    args = parser.parse_args()
    for item in args.docker:
        minor, _, spec = item.partition("=")
        if not spec:
            parser.error(f"--docker wants MINOR=IMAGE[@PYTHON], not {item!r}")
        DOCKER_SPECS[minor] = spec
        DOCKER_PYTHONS[minor] = docker_python(minor, spec)
    started = time.monotonic()
    {"tables": cmd_tables, "selftest": cmd_selftest, "pickles": cmd_pickles}[args.command](args)
    log(f"done in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
