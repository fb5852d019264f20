"""Static pickle inspection: the opcode walker, Python version detection, and everything the report says.

No Docker. Pickles made by other Pythons come from pyenv's CPython interpreters
(skipped only when an interpreter is absent), each running scripts/evidence_models.py
with a cloudpickle copied from this venv (and cloudpickle 2.2.1, Numerai's 3.10 pin,
when pip can fetch it). A Python pyenv lacks (3.14) is covered by the pickles it made,
committed in tests/fixtures/py3.X/ (tests/fixtures/make_version_pickles.py remakes them). The inspector never unpickles: the only loads in this file
are subprocess checks that a crafted pickle really would do what it claims.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from runner.inspection import choose_python, compatible_pythons, inspect_pickle, mismatch_message, render
from runner.inspection.analysis import CANNOT_LOAD, LOADS, MAY_RUN, static_note
from runner.inspection.report import Presence
from runner.inspection.pickle_ops import Blob, Limits, SDict, SList, walk_file
from runner.images.pins import DEFAULT_PYTHON, SUPPORTED_PYTHONS
from runner.inspection.pyversions import check_bytecode, code_arity

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "scripts" / "evidence_models.py"
PYTHONS = ("3.9", "3.10", "3.11", "3.12", "3.13", "3.14")
FIXTURES = ROOT / "tests" / "fixtures"  # py3.X/: pickles made by a Python pyenv does not have here
# Functions whose bytecode is byte-for-byte the same under these Pythons: no static tool can tell them apart.
IDENTICAL_UNDER = {"function_identity": {"3.11", "3.12"}, "lambda_identity": {"3.11", "3.12"}}
# 3.8 and 3.9 share the code layout and most opcodes; neither is a Numerai image.
OLD_FAMILY = {"3.8", "3.9"}


# ---------------------------------------------------------------- interpreters and pickles they make

def pyenv_python(minor: str) -> Path | None:
    """The newest pyenv CPython of this minor version, if pyenv has one."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    try:
        root = Path(subprocess.run(["pyenv", "root"], capture_output=True, text=True, check=True).stdout.strip())
    except (OSError, subprocess.CalledProcessError):
        pass
    found = []
    for folder in (root / "versions").glob(f"{minor}.*") if (root / "versions").is_dir() else ():
        parts = folder.name.split(".")
        if len(parts) == 3 and all(p.isdigit() for p in parts) and (folder / "bin" / "python").exists():
            found.append((tuple(int(p) for p in parts), folder / "bin" / "python"))
    return max(found)[1] if found else None


@pytest.fixture(scope="session")
def cloudpickle_dirs(tmp_path_factory) -> dict[str, Path]:
    """cloudpickle releases, each alone in a folder for PYTHONPATH: this venv's, and 2.2.1 if pip can get it."""
    import cloudpickle

    base = tmp_path_factory.mktemp("cloudpickle")
    out = {}
    own = base / f"cp-{cloudpickle.__version__}"
    shutil.copytree(Path(cloudpickle.__file__).parent, own / "cloudpickle",
                    ignore=shutil.ignore_patterns("__pycache__"))
    out[cloudpickle.__version__] = own
    old = base / "cp-2.2.1"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(old),
                           "cloudpickle==2.2.1"], capture_output=True, text=True, timeout=120)
    if proc.returncode == 0:
        out["2.2.1"] = old
    return out


@pytest.fixture(scope="session")
def made(cloudpickle_dirs, tmp_path_factory) -> dict[tuple[str, str], tuple[Path, dict]]:
    """(python, cloudpickle) -> (folder, manifest) of the models each pyenv Python pickled."""
    base = tmp_path_factory.mktemp("made")
    jobs = []
    for minor in PYTHONS:
        python = pyenv_python(minor)
        if python is None:
            continue
        for version, folder in cloudpickle_dirs.items():
            if version == "2.2.1" and minor not in ("3.9", "3.10", "3.11"):
                continue  # cloudpickle 2.2.1 predates 3.12
            jobs.append((minor, version, python, folder, base / f"{minor}-{version}"))

    def run(job):
        minor, version, python, folder, out = job
        proc = subprocess.run([str(python), str(MODELS), "--out", str(out), "--no-libraries"], capture_output=True,
                              text=True, env=dict(os.environ, PYTHONPATH=str(folder)), timeout=120)
        assert proc.returncode == 0, proc.stderr
        return (minor, version), (out, json.loads((out / "manifest.json").read_text()))

    with ThreadPoolExecutor(max_workers=4) as pool:
        found = dict(pool.map(run, jobs))
    for folder in sorted(FIXTURES.glob("py3.*")):
        manifest = json.loads((folder / "manifest.json").read_text())
        if manifest["python"] in PYTHONS and not any(m == manifest["python"] for m, _ in found):
            found[(manifest["python"], manifest["versions"]["cloudpickle"])] = (folder, manifest)
    return found


def _made_by(made, minor: str) -> list[tuple[str, Path, dict]]:
    found = [(version, folder, manifest) for (m, version), (folder, manifest) in made.items() if m == minor]
    if not found:
        pytest.skip(f"no pyenv CPython {minor}")
    return found


# ---------------------------------------------------------------- Python version detection

@pytest.mark.parametrize("minor", PYTHONS)
def test_names_the_python_of_every_cloudpickled_function(made, minor):
    for version, folder, manifest in _made_by(made, minor):
        for case, info in manifest["cases"].items():
            if info["serializer"] != "cloudpickle":
                continue
            inspection = inspect_pickle(folder / info["file"])
            py = inspection.python
            label = f"{case} (Python {minor}, cloudpickle {version}): {py}"
            assert minor in py.candidates, label
            if minor in OLD_FAMILY:
                assert set(py.candidates) <= OLD_FAMILY, label
            elif case in IDENTICAL_UNDER and minor in IDENTICAL_UNDER[case]:
                assert set(py.candidates) <= IDENTICAL_UNDER[case] and py.reasons_unknown, label
            else:
                assert py.version == minor, label
                assert py.evidence and not py.reasons_unknown, label


@pytest.mark.parametrize("minor", PYTHONS)
def test_callable_kind_and_parameters(made, minor):
    for _version, folder, manifest in _made_by(made, minor):
        for case, info in manifest["cases"].items():
            found = inspect_pickle(folder / info["file"]).callable
            assert found.kind == info["kind"], (case, found)
            if info["params"] is not None:
                assert found.params == info["params"], (case, found)
                assert found.n_params == len(info["params"])


def test_closure_lambda_nested_and_method_are_described(made):
    folder, manifest = next(iter(v for (m, _), v in made.items() if m in ("3.11", "3.12", "3.13")), (None, None))
    if folder is None:
        pytest.skip("no pyenv CPython 3.11+")
    closure = inspect_pickle(folder / "closure.pkl").callable
    assert closure.qualname == "make_closure.<locals>.predict"
    assert any("closure over 1 variable" in n for n in closure.notes)
    assert inspect_pickle(folder / "lambda_call.pkl").callable.name == "<lambda>"
    nested = inspect_pickle(folder / "nested.pkl").callable
    assert any("defined inside make_nested()" in n for n in nested.notes)
    method = inspect_pickle(folder / "method.pkl").callable
    assert method.kind == "method" and method.name == "predict" and method.params == ["live_features"]
    two = inspect_pickle(folder / "function_2_args.pkl")
    assert two.callable.n_params == 2
    assert any("live_benchmark_models" in line for line in render(two))


@pytest.mark.parametrize("minor", ["3.10", "3.12", "3.13", "3.14"])
def test_auto_picks_the_image_of_the_python_that_made_it(made, minor):
    """auto takes the image of the Python that made it; loading is certain to fail only across code-constructor
    families (16 arguments to 3.10, 18 from 3.11): only there may a forced Python end before any container."""
    _version, folder, _manifest = _made_by(made, minor)[0]
    inspection = inspect_pickle(folder / "function.pkl")
    choice = choose_python(inspection)
    assert choice.python == minor and choice.detected and not choice.substitute, choice
    family = [p for p in SUPPORTED_PYTHONS if code_arity(p) == code_arity(minor)]
    assert compatible_pythons(inspection) == family
    for other in SUPPORTED_PYTHONS:
        fit = inspection.images[other]
        assert fit.load == (LOADS if other == minor else MAY_RUN if other in family else CANNOT_LOAD), (other, fit)
        message = mismatch_message(inspection, other)
        assert (message is None) == (other in family), (other, message)
        if message:
            assert f"{other}'s code constructor takes" in message and "TypeError" in message and "--force" in message
        note = static_note(inspection, other)
        assert (note is not None) == (fit.load == MAY_RUN), (other, note)
        if note:
            assert f"made by Python {minor}" in note and "will likely fail when called" in note, note


def test_inspect_tells_314_from_313(made):
    """The real command names 3.14 for a pickle made by 3.14 and 3.13 for one made by 3.13, each with why not
    the other (3.14 renumbered the opcodes again and gave BINARY_OP 5 cache entries)."""
    for minor, other in (("3.14", "3.13"), ("3.13", "3.14")):
        _version, folder, _manifest = _made_by(made, minor)[0]
        for case in ("function", "closure", "function_identity", "method"):
            proc = subprocess.run([sys.executable, "-m", "runner", "inspect", str(folder / f"{case}.pkl"), "--json"],
                                  capture_output=True, text=True, cwd=ROOT, timeout=60)
            assert proc.returncode == 0, proc.stderr
            python = json.loads(proc.stdout)["python"]
            assert (python["version"], python["candidates"]) == (minor, [minor]), (case, python)
            assert any(e.startswith(f"not {other}:") for e in python["evidence"]), (case, python)


def test_a_python_39_pickle_runs_in_the_nearest_image_that_can_load_it(made):
    """Numerai has no 3.9 image: auto picks 3.10, the only one whose code constructor takes 3.9's 16 arguments,
    and says why; whether it runs is the container's to say (a 3.9 function whose bytecode does not jump
    means the same under 3.10; one that jumps does not)."""
    _version, folder, _manifest = _made_by(made, "3.9")[0]
    for case, runs_as_written in (("function", True), ("function_comprehension", False), ("function_executed", False)):
        assert (folder / f"{case}.pkl").is_file(), case
        inspection = inspect_pickle(folder / f"{case}.pkl")
        assert compatible_pythons(inspection) == ["3.10"], case
        choice = choose_python(inspection)
        assert choice.python == "3.10" and choice.detected and choice.substitute, choice
        assert "which Numerai has no image for" in choice.reason and "3.9" in choice.reason
        fit = inspection.images["3.10"]
        assert fit.load == MAY_RUN, fit
        assert any(f"Numerai has no {made} image" in fit.why for made in ("3.8 or 3.9", "3.9")), fit.why
        assert ("happens to be valid 3.10 bytecode" in fit.why) == runs_as_written, (case, fit.why)
        assert ("jump targets" in fit.why) == (not runs_as_written), (case, fit.why)
        for other in SUPPORTED_PYTHONS[1:]:
            assert inspection.images[other].load == CANNOT_LOAD
            assert "unpickling raises TypeError" in inspection.images[other].why
        assert f'"Pickle incompatible with {SUPPORTED_PYTHONS[-1]}"' in "\n".join(render(inspection))


def test_code_no_image_can_load_fails_auto(made):
    """Code objects of two constructor families in one pickle: every image raises TypeError loading one."""
    import dataclasses

    _version, folder, _manifest = _made_by(made, "3.12")[0]
    base = inspect_pickle(folder / "function.pkl")
    fits = {p: dataclasses.replace(base.images[p], load=CANNOT_LOAD, why="rebuilt with 16 and 18 arguments")
            for p in SUPPORTED_PYTHONS}
    mixed = dataclasses.replace(base, python=dataclasses.replace(base.python, version=None, candidates=[]),
                                images=fits)
    choice = choose_python(mixed)
    assert choice.python is None and "none can load its code" in choice.reason


def test_a_newer_python_than_any_image_runs_in_the_newest(made):
    """Code a Python newer than the table made (3.15 tomorrow): 18 arguments, bytecode valid under none of
    3.11-3.14. Every 18-argument image can load it; auto picks the nearest, 3.14."""
    import dataclasses

    _version, folder, _manifest = _made_by(made, "3.13")[0]
    base = inspect_pickle(folder / "function.pkl")
    fits = {p: dataclasses.replace(base.images[p], load=MAY_RUN if p != "3.10" else CANNOT_LOAD,
                                   code=f"not {p} bytecode") for p in SUPPORTED_PYTHONS}
    newer = dataclasses.replace(base, python=dataclasses.replace(base.python, version=None, candidates=[]),
                                images=fits)
    choice = choose_python(newer)
    assert choice.python == "3.14" and choice.substitute and "newer than 3.14" in choice.reason, choice


def test_plain_pickles_of_objects_say_unknown_with_reasons(made):
    for (_minor, _version), (folder, _manifest) in made.items():
        for case in ("plain_data", "plain_instance"):
            inspection = inspect_pickle(folder / f"{case}.pkl")
            assert inspection.serializer == "pickle"
            assert inspection.python.version is None
            assert any("no code objects" in r for r in inspection.python.reasons_unknown)
            assert set(SUPPORTED_PYTHONS) <= set(inspection.python.candidates)
            assert compatible_pythons(inspection) == list(SUPPORTED_PYTHONS)
            choice = choose_python(inspection)
            assert choice.python == DEFAULT_PYTHON and not choice.detected and "falling back" in choice.reason
        reference = inspect_pickle(folder / "plain_function_reference.pkl")
        assert any("__main__.identity" in p for p in reference.problems)
        assert reference.callable.kind == "function" and reference.callable.params is None
        instance = inspect_pickle(folder / "plain_instance.pkl")
        assert instance.callable.kind == "unknown" and any("__main__.Model" in p for p in instance.problems)


def test_cloudpickle_3_pickles_cannot_load_with_numerais_cloudpickle_for_310(made):
    versions = {version for (_m, version) in made}
    for (minor, version), (folder, _manifest) in made.items():
        inspection = inspect_pickle(folder / "function.pkl")
        record = next(r for r in inspection.recorded_versions if r.library == "cloudpickle")
        status = record.images["3.10"].status
        if version == "2.2.1":
            assert status == "ok" and record.version == "<3.0"
        else:
            assert status == "breaks" and "_function_setstate" in record.images["3.10"].note
            assert record.images["3.12"].status == "ok"
    if "2.2.1" not in versions:
        pytest.skip("cloudpickle 2.2.1 could not be fetched: only the 3.x half was checked")


# ---------------------------------------------------------------- safety: nothing runs

class _CreatesFile:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_a_pickle_that_would_create_a_file_creates_nothing_when_inspected(tmp_path):
    import cloudpickle

    target = tmp_path / "created-by-loading.txt"
    plain = tmp_path / "opens.pkl"
    plain.write_bytes(pickle.dumps(_CreatesFile(str(target))))
    target2 = tmp_path / "created-by-pickled-code.txt"
    code = tmp_path / "runs-code.pkl"
    writer = eval("lambda path: open(path, 'w').write('x')")  # a function cloudpickle pickles by value

    class RunsCode:
        def __reduce__(self):
            return (writer, (str(target2),))

    code.write_bytes(cloudpickle.dumps(RunsCode()))
    for path in (plain, code):
        inspection = inspect_pickle(path)
        assert inspection.stats["complete"]
        assert not target.exists() and not target2.exists()
    risky = {(r.reference, r.when) for r in inspect_pickle(plain).risky}
    assert ("io.open", "load") in risky
    assert any(r.when == "load" and "runs as soon as the pickle is opened" in r.why for r in inspect_pickle(code).risky)
    # The fixtures are real: loading them (in a throwaway process) does create the files.
    for path in (plain, code):
        subprocess.run([sys.executable, "-c", "import pickle,sys; pickle.load(open(sys.argv[1], 'rb'))", str(path)],
                       check=True, capture_output=True)
    assert target.exists() and target2.exists()


@pytest.mark.parametrize("module, name, reference", [
    ("os", "system", "os.system"), ("posix", "system", "posix.system"), ("subprocess", "Popen", "subprocess.Popen"),
    ("builtins", "eval", "builtins.eval"), ("builtins", "exec", "builtins.exec"),
    ("builtins", "__import__", "builtins.__import__"), ("socket", "create_connection", "socket.create_connection"),
    ("ctypes", "CDLL", "ctypes.CDLL"), ("shutil", "rmtree", "shutil.rmtree"),
])
def test_risky_references_are_warnings(tmp_path, module, name, reference):
    path = tmp_path / "risky.pkl"
    path.write_bytes(f"c{module}\n{name}\n(S'echo hi'\ntR.".encode())  # protocol 0: module.name('echo hi')
    inspection = inspect_pickle(path)
    assert inspection.stats["complete"]
    assert [r.reference for r in inspection.risky if r.when == "load"] == [reference]
    assert any(reference in line for line in render(inspection))


def _pickled_predict(path: Path, source: str) -> Path:
    """cloudpickle `predict` as defined by `source` in a user's __main__ (so it is pickled by value)."""
    import cloudpickle

    namespace: dict = {"__name__": "__main__"}
    exec(compile(source, "<model>", "exec"), namespace)
    path.write_bytes(cloudpickle.dumps(namespace["predict"]))
    return path


def test_risky_names_inside_function_code(tmp_path):
    source = "import subprocess\ndef predict(live_features):\n    subprocess.run(['true'])\n    return eval('1')\n"
    path = _pickled_predict(tmp_path / "calls.pkl", source)
    risky = {(r.reference, r.when) for r in inspect_pickle(path).risky}
    assert ("subprocess", "call") in risky and ("eval", "call") in risky


def test_modules_imported_inside_the_function_are_listed(tmp_path):
    source = "def predict(live_features):\n    import socket, catboost_missing_here\n    return live_features\n"
    path = _pickled_predict(tmp_path / "imports.pkl", source)
    inspection = inspect_pickle(path)
    modules = {m.package: m for m in inspection.modules}
    assert "socket (imported by predict when called)" in modules["socket"].names
    missing = modules["catboost_missing_here"].images["3.11"].standard
    assert missing.present is False
    assert any("catboost_missing_here" in b for b in inspection.images["3.11"].blockers)
    assert ("socket", "call") in {(r.reference, r.when) for r in inspection.risky}


# ---------------------------------------------------------------- bad files

def test_truncated_pickle(tmp_path):
    import cloudpickle

    data = cloudpickle.dumps(lambda live_features: live_features.rank())
    path = tmp_path / "cut.pkl"
    path.write_bytes(data[: len(data) // 2])
    inspection = inspect_pickle(path)
    assert not inspection.is_pickle
    assert any("truncated" in p for p in inspection.problems)
    assert inspection.callable.kind == "unknown"
    json.dumps(inspection.to_dict())


@pytest.mark.parametrize("content, words", [
    (b"id,prediction\nn1,0.5\n", "CSV"), (b"", "empty"), (b"PK\x03\x04rest-of-zip", "zip"),
    (b"\x00\x01\x02garbage\xff", "not a pickle"), (b'{"a": 1}', "JSON"),
])
def test_not_a_pickle(tmp_path, content, words):
    path = tmp_path / "model.pkl"
    path.write_bytes(content)
    inspection = inspect_pickle(path)
    assert inspection.serializer == "not a pickle", inspection.problems
    assert words in inspection.problems[0], inspection.problems
    assert inspection.python.version is None and inspection.callable.kind == "unknown"
    assert render(inspection)
    json.dumps(inspection.to_dict())


def test_missing_file(tmp_path):
    inspection = inspect_pickle(tmp_path / "absent.pkl")
    assert inspection.problems and inspection.sha256 is None


def test_joblib_files_are_flagged(tmp_path):
    joblib = pytest.importorskip("joblib")
    np = pytest.importorskip("numpy")
    path = tmp_path / "model.joblib"
    joblib.dump({"weights": np.arange(1000.0)}, path)
    inspection = inspect_pickle(path)
    assert inspection.serializer == "joblib"
    assert any("joblib" in p for p in inspection.problems)


# ---------------------------------------------------------------- the walker

def _concrete(value):
    """The walker's symbolic value as the plain Python value it stands for (data-only pickles)."""
    if isinstance(value, SList):
        items = [_concrete(v) for v in value]
        return {"list": list, "set": set, "frozenset": frozenset}[value.kind](items)
    if isinstance(value, SDict):
        return {_concrete(k): _concrete(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return tuple(_concrete(v) for v in value)
    return value


DATA = {"ints": [0, 1, -1, 255, 256, 65535, 65536, -2**31, 2**31, 2**64 + 1, -(2**100)], "floats": [0.5, -1e300],
        "text": ["", "a", "é€𝄞" * 10, "x" * 300], "bytes": [b"", b"\x00\xff", b"y" * 300],
        "bytearray": bytearray(b"abc"), "none": None, "bools": (True, False), "set": {1, 2, 3},
        "frozenset": frozenset({"a"}), "nested": ((1, 2), (3,), (), ((4,),)), "empty": ([], {}, set())}


@pytest.mark.parametrize("protocol", range(0, pickle.HIGHEST_PROTOCOL + 1))
def test_walker_rebuilds_plain_data_for_every_protocol(tmp_path, protocol):
    shared = [1, 2]
    value = dict(DATA, shared=(shared, shared))
    if protocol < 5:  # bytearray needs protocol 5 to stay a bytearray without a global
        value.pop("bytearray")
    path = tmp_path / "data.pkl"
    path.write_bytes(pickle.dumps(value, protocol=protocol))
    walk = walk_file(path)
    assert walk.complete and not walk.problems
    rebuilt = _concrete(walk.result)
    if protocol < 3:  # bytes go through _codecs.encode / __builtin__ in old protocols: compare the rest
        rebuilt = {k: v for k, v in rebuilt.items() if k not in ("bytes",)}
        value = {k: v for k, v in value.items() if k not in ("bytes",)}
    if protocol < 4:  # sets are rebuilt by calling builtins.set before protocol 4
        for key in ("set", "frozenset", "empty"):
            rebuilt.pop(key), value.pop(key)
    assert walk.result["shared"][0] is walk.result["shared"][1]  # the memo keeps identity
    assert rebuilt == value


def test_large_payloads_are_skipped_not_read(tmp_path):
    blob = b"H" * 5000 + os.urandom(3_000_000) + b"T" * 5000
    path = tmp_path / "big.pkl"
    path.write_bytes(pickle.dumps({"blob": blob, "after": "still read"}, protocol=5))
    walk = walk_file(path, Limits(full_limit=1 << 16))
    assert walk.complete and walk.payloads_skipped == 1
    kept = walk.result["blob"]
    assert isinstance(kept, Blob) and kept.length == len(blob)
    assert kept.head == b"H" * 4096 and kept.tail == b"T" * 4096
    assert walk.result["after"] == "still read"
    assert walk.bytes_skipped == len(blob) - 8192


def test_inspecting_a_large_pickle_uses_little_memory(tmp_path):
    np = pytest.importorskip("numpy")
    import cloudpickle

    weights = np.random.default_rng(0).random(4_000_000)  # 32 MB of float64

    def predict(live_features):
        return live_features @ weights[: live_features.shape[1]]

    path = tmp_path / "large.pkl"
    with open(path, "wb") as handle:
        cloudpickle.dump(predict, handle)
    tracemalloc.start()
    inspection = inspect_pickle(path)
    _current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert inspection.size_bytes > 32_000_000 and inspection.stats["complete"]
    assert peak < 8 * 1024 * 1024, f"peak {peak:,} bytes"
    assert inspection.python.version == f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert "numpy" in {m.package for m in inspection.modules}


def test_malformed_streams_are_reported_not_raised(tmp_path):
    cases = {
        "underflow": b"\x80\x05R.",  # REDUCE on an empty stack
        "bad memo": b"\x80\x05h\x07.",  # BINGET of a key never stored
        "odd setitems": b"\x80\x05}(K\x01u.",
        "mark missing": b"\x80\x05K\x01t.",
        "long text": b"c" + b"m" * 70_000 + b"\nx\n.",
    }
    for name, data in cases.items():
        path = tmp_path / f"{name}.pkl"
        path.write_bytes(data)
        inspection = inspect_pickle(path)
        assert inspection.problems and not inspection.is_pickle, name
        json.dumps(inspection.to_dict())


def test_every_truncation_and_random_bytes_are_reported_not_raised(tmp_path):
    import random

    import cloudpickle

    data = cloudpickle.dumps({"f": lambda x: x + 1, "n": [1.5, 2**70, "text" * 20, b"b" * 300]})
    path = tmp_path / "cut.pkl"
    for end in range(len(data)):
        path.write_bytes(data[:end])
        walk = walk_file(path)
        assert not walk.complete and walk.problems, end
    rng = random.Random(5)
    for _ in range(300):
        path.write_bytes(bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))))
        inspection = inspect_pickle(path)
        json.dumps(inspection.to_dict())
    # Near-valid streams: a rich cloudpickle (class, instance, method, closure) with a few bytes flipped.
    class Scaler:
        def __init__(self, scale):
            self.scale = scale

        def __call__(self, live_features, live_benchmark_models=None):
            return [v * self.scale for v in live_features]

    rich = bytearray(cloudpickle.dumps([Scaler(2.0), Scaler(3.0).__call__, data]))
    for _ in range(300):
        broken = bytearray(rich)
        for _ in range(rng.randrange(1, 4)):
            broken[rng.randrange(len(broken))] = rng.randrange(256)
        path.write_bytes(bytes(broken))
        inspection = inspect_pickle(path)
        json.dumps(inspection.to_dict())
        render(inspection)


# ---------------------------------------------------------------- recorded library versions

def _opcodes(*parts: bytes) -> bytes:
    return b"\x80\x04" + b"".join(parts) + b"."


def _global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _text(value: str) -> bytes:
    data = value.encode()
    return b"X" + struct.pack("<I", len(data)) + data


def test_old_sklearn_tree_is_flagged_as_breaking(tmp_path):
    path = tmp_path / "tree.pkl"
    path.write_bytes(_opcodes(
        _global("sklearn.tree._classes", "DecisionTreeRegressor"), b")\x81}(",
        _text("tree_"), _global("sklearn.tree._tree", "Tree"), b")\x81",
        _text("_sklearn_version"), _text("1.2.2"), b"ub"))
    inspection = inspect_pickle(path)
    record = next(r for r in inspection.recorded_versions if r.library == "scikit-learn")
    assert record.version == "1.2.2" and "DecisionTreeRegressor" in record.where
    for python in SUPPORTED_PYTHONS:
        assert record.images[python].status == "breaks"
        assert "incompatible dtype" in record.images[python].note
    assert inspection.callable.kind == "not callable"
    assert all(fit.blockers for fit in inspection.images.values())


def test_real_sklearn_pickle_records_its_version(tmp_path):
    sklearn = pytest.importorskip("sklearn")
    from sklearn.linear_model import LinearRegression

    path = tmp_path / "lr.pkl"
    path.write_bytes(pickle.dumps(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])))
    record = next(r for r in inspect_pickle(path).recorded_versions if r.library == "scikit-learn")
    assert record.version == sklearn.__version__
    expected = "same" if sklearn.__version__ == "1.6.1" else "differs"
    assert record.images["3.11"].status == expected


def test_xgboost_and_lightgbm_model_versions(tmp_path):
    ubjson = (b"{L\x00\x00\x00\x00\x00\x00\x00\x07learner{}" + b"L\x00\x00\x00\x00\x00\x00\x00\x07version"
              b"[#L\x00\x00\x00\x00\x00\x00\x00\x03i\x03i\x00i\x02}")
    ubjson = ubjson[:12] + b" " * 200 + ubjson[12:]  # long enough to be sniffed
    json_model = b'{"learner": {"x": "' + b"y" * 200 + b'"}, "version": [1, 7, 5]}'
    lightgbm = "tree\nversion=v4\nnum_class=1\n" + "Tree=0\n" * 40
    for name, payload, library, version in [
        ("ubj", b"\x96" + struct.pack("<Q", len(ubjson)) + ubjson, "xgboost", "3.0.2"),
        ("json", b"B" + struct.pack("<I", len(json_model)) + json_model, "xgboost", "1.7.5"),
        ("lgbm", _text(lightgbm), "lightgbm", "model format v4"),
    ]:
        path = tmp_path / f"{name}.pkl"
        path.write_bytes(_opcodes(_global("xgboost.core", "Booster"), b")\x81}", _text("handle"), payload, b"sb"))
        record = next(r for r in inspect_pickle(path).recorded_versions if r.library == library)
        assert record.version == version
        if name == "ubj":
            assert record.images["3.10"].status == "breaks"  # 3.0 model, image has xgboost 1.7.5
            assert record.images["3.11"].status == "same"
        if name == "json":
            assert record.images["3.10"].status == "same"


# ---------------------------------------------------------------- the report

def test_report_json_has_stable_keys_and_render_reads_well(made):
    (minor, _v), (folder, _m) = next(iter(made.items()))
    inspection = inspect_pickle(folder / "function.pkl")
    data = json.loads(json.dumps(inspection.to_dict()))
    assert set(data) == {"path", "size_bytes", "sha256", "protocol", "serializer", "serializer_evidence", "python",
                         "modules", "recorded_versions", "callable", "risky", "problems", "images", "stats", "columns"}
    assert set(data["python"]) == {"version", "candidates", "evidence", "reasons_unknown"}
    assert set(data["callable"]) == {"kind", "name", "qualname", "params", "n_params", "notes"}
    assert data["protocol"] == 5 and data["serializer"] == "cloudpickle" and len(data["sha256"]) == 64
    cloud = next(m for m in data["modules"] if m["package"] == "cloudpickle")
    assert cloud["images"]["3.11"]["standard"]["present"] is True
    # Numerai's image (the full profile) is known offline, from the vendored pin lists
    assert cloud["images"]["3.11"]["full"] == {"present": True, "distribution": "cloudpickle", "version": "3.1.1",
                                               "note": ""}
    assert cloud["images"]["3.11"]["auto"]["present"] is True
    lines = render(inspection)
    assert all(isinstance(line, str) for line in lines)
    text = "\n".join(lines)
    assert "Callable: function predict(live_features)" in text and "Python:" in text


def test_full_profile_pins_are_used_when_given(made):
    (_minor, _v), (folder, _m) = next(iter(made.items()))
    full = {p: {"cloudpickle": "9.9.9"} for p in SUPPORTED_PYTHONS}
    inspection = inspect_pickle(folder / "function.pkl", full_pins=full)
    cloud = next(m for m in inspection.modules if m.package == "cloudpickle")
    assert cloud.images["3.12"].full == Presence(True, "cloudpickle", "9.9.9", "")


def test_bytecode_check_examples():
    # 3.11's `return x` (RESUME, LOAD_FAST, RETURN_VALUE) and 3.13's: each valid only where it belongs.
    py311 = bytes.fromhex("97007c005300")
    py313 = bytes.fromhex("950055002400")
    assert check_bytecode(py311, "3.11") is None and check_bytecode(py311, "3.12") is None
    assert check_bytecode(py311, "3.13") is not None
    assert check_bytecode(py313, "3.13") is None
    assert check_bytecode(py313, "3.12") is not None and check_bytecode(py313, "3.11") is not None
    # `return g()`: 3.11 has PRECALL and 5 cache entries after LOAD_GLOBAL, 3.12 neither.
    py311_call = bytes.fromhex("9700740100000000000000000000a6000000ab0000000000000000005300")
    py312_call = bytes.fromhex("970074010000000000000000ab000000000000005300")
    assert check_bytecode(py311_call, "3.11") is None and check_bytecode(py312_call, "3.12") is None
    assert "cache" in check_bytecode(py312_call, "3.11")
    assert check_bytecode(py311_call, "3.12") is not None
    # 3.14's `return x` (RESUME 128, LOAD_FAST_BORROW, RETURN_VALUE 35) and `return h()` (CALL's 3 cache entries).
    py314 = bytes.fromhex("800056002300")
    py314_call = bytes.fromhex("80005c01000000000000000034000000000000002300")
    for code in (py314, py314_call):
        assert check_bytecode(code, "3.14") is None
        assert all(check_bytecode(code, other) is not None for other in ("3.11", "3.12", "3.13"))
    assert all(check_bytecode(code, "3.14") is not None for code in (py311, py313, py311_call, py312_call))


def test_auto_never_guesses_the_experimental_image():
    """When the code loads under several Pythons, one of them 3.14, auto takes a stable one (and names 3.14)."""
    import dataclasses

    from runner.inspection.analysis import ImageFit, PythonVersion

    folder = FIXTURES / "py3.14"
    base = inspect_pickle(folder / "function.pkl")
    fits = {p: ImageFit(p, LOADS if p in ("3.13", "3.14") else MAY_RUN, "", [], []) for p in SUPPORTED_PYTHONS}
    ambiguous = dataclasses.replace(base, python=PythonVersion(None, ["3.13", "3.14"], [], ["same bytecode"]),
                                    images=fits)
    choice = choose_python(ambiguous)
    assert choice.python == "3.13" and "3.13 or 3.14" in choice.reason, choice
    only = dataclasses.replace(ambiguous, images={**fits, "3.13": ImageFit("3.13", CANNOT_LOAD, "no", [], [])})
    assert choose_python(only).python == "3.14"