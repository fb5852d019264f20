"""The broken and hostile pickle corpus, pickle by pickle, through the real command line.

Each case of tests/corpus/make_corpus.py (made inside the Python 3.11 image) and of
tests/corpus/make_cross_python.py (made by pyenv's other CPythons) must end with its
status, reason and sub-code; the exit code must match; neither the terminal output nor
the report may hold a traceback of ours; the message and the action must say something;
the evidence must name what the reason is about. The host is checked afterwards: the
file the hostile cases reach for is untouched, and no process of theirs outlives them.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import shutil
import subprocess
from pathlib import Path

import psutil
import pytest

from conftest import ROOT, image_for, leaked_containers, make_pickles, pythons_under_test, run_cli
from runner.support.units import human_bytes

CORPUS = ROOT / "tests" / "corpus"
EXIT = {"Success": 0, "Failed": 1, "Error": 3}
# The corpus is made in the Python 3.11 image and run there; the timeout is a safety net (every case
# ends on its own well before it) except for the cases that run on purpose until the limit.
QUICK = ("--python", "3.11", "--timeout", "2m")
SHORT = ("--python", "3.11", "--timeout", "8s")
FORCED = QUICK + ("--force",)  # past the early check of the pickle's Python: run, and judge what happens


def looks(text):
    return lambda r: text.lower() in r["evidence"]["file_looks_like"].lower()


def has(**expected):
    return lambda r: all(r["evidence"].get(k) == v for k, v in expected.items())


def signal(name):
    return lambda r: r["evidence"]["signal"] == name and name in r["message"]


def module(name, hint=None):
    return lambda r: r["evidence"]["module"] == name and (hint is None or hint in r["message"])


def library(name):
    return lambda r: (r["evidence"]["library"] == name
                      and r["evidence"]["image_version"] == r["library_versions"][name]
                      and f"{name} {r['library_versions'][name]}" in r["message"])


def network(r):
    return r["evidence"].get("network") is True and "no network" in r["message"]


def in_message(*words):
    return lambda r: all(w in r["message"] for w in words)


def timed_out(phase):
    def check(r):
        limit = r["limits"]["timeout_seconds"]
        return r["evidence"]["limit_seconds"] == limit and r["evidence"]["phase"] == phase and f"{limit:g} s" in r["message"]
    return check


def out_of_memory(limit, phase):
    return (lambda r: r["evidence"]["limit_bytes"] == limit and r["evidence"]["phase"] == phase
            and human_bytes(limit) in r["message"])


def mismatch(made_by):
    return lambda r: (r["evidence"]["image_python"] == "3.11" and made_by in (r["evidence"]["pickle_python"] or "")
                      and "3.11" in r["message"] and made_by in r["message"])


def anything(r):
    return True


MIB = 1024**2
# case -> (status, reason, subcode, extra CLI arguments, what the evidence must show)
CASES = {
    # invalid_pickle: the evidence says what the file looks like
    "invalid_empty": ("Failed", "invalid_pickle", None, QUICK, looks("empty")),
    "invalid_truncated": ("Failed", "invalid_pickle", None, QUICK, looks("cut short")),
    "invalid_corrupted": ("Failed", "invalid_pickle", None, QUICK, looks("damaged")),
    "invalid_csv_predictions": ("Failed", "invalid_pickle", None, QUICK, looks("CSV")),
    "invalid_zip": ("Failed", "invalid_pickle", None, QUICK, looks("zip")),
    "invalid_gzip": ("Failed", "invalid_pickle", None, QUICK, looks("gzip")),
    "invalid_html_error_page": ("Failed", "invalid_pickle", None, QUICK, looks("HTML")),
    "invalid_json": ("Failed", "invalid_pickle", None, QUICK, looks("JSON")),
    "invalid_parquet": ("Failed", "invalid_pickle", None, QUICK, looks("parquet")),
    "invalid_git_lfs_pointer": ("Failed", "invalid_pickle", None, QUICK, looks("Git LFS")),
    "invalid_base64_text": ("Failed", "invalid_pickle", None, QUICK, looks("base64")),
    "invalid_lightgbm_text_model": ("Failed", "invalid_pickle", None, QUICK, looks("LightGBM")),
    "invalid_random_bytes": ("Failed", "invalid_pickle", None, QUICK, looks("binary")),
    # missing_module: the module, and where it can be had
    "missing_local_module": ("Failed", "missing_module", None, QUICK,
                             module("mymodels", "register_pickle_by_value(mymodels)")),
    "missing_local_package_class": ("Failed", "missing_module", None, QUICK,
                                    module("numerai_utils", "register_pickle_by_value(numerai_utils)")),
    "missing_main_by_reference": ("Failed", "missing_module", None, QUICK, module("__main__", "cloudpickle")),
    # torch is in Numerai's 3.11 image: the standard image's lack of it is ours to fix (auto adds it; what
    # that does depends on the cache: test_missing_torch_under_auto runs it with a cache of its own)
    "missing_torch": ("Error", "sandbox_lacks_module", None, QUICK + ("--profile", "standard"),
                      lambda r: module("torch", "--profile auto")(r) and r["evidence"]["distribution"] == "torch"),
    "missing_dill": ("Failed", "missing_module", None, QUICK, module("dill", "cloudpickle")),
    "missing_in_this_python_only": ("Failed", "missing_module", None, QUICK,
                                    lambda r: module("psutil")(r) and r["evidence"]["available_in"] == ["3.10"]
                                    and "3.10" in r["message"]),
    # library_mismatch: the library and the image's version of it
    "library_sklearn_removed_module": ("Failed", "library_mismatch", None, QUICK,
                                       lambda r: library("scikit-learn")(r)
                                       and r["evidence"]["module"] == "sklearn.ensemble._gb_losses"),
    "library_sklearn_renamed_class": ("Failed", "library_mismatch", None, QUICK, library("scikit-learn")),
    "library_sklearn_cython_state": ("Failed", "library_mismatch", None, QUICK,
                                     lambda r: library("scikit-learn")(r)
                                     and r["evidence"]["pickle_version"] == "1.2.2"),
    "library_sklearn_missing_attribute": ("Failed", "library_mismatch", None, QUICK,
                                          lambda r: library("scikit-learn")(r)
                                          and r["evidence"]["pickle_version"] == "1.3.2"
                                          and r["phase"] == "predicting"),
    "library_numpy_internal": ("Failed", "library_mismatch", None, QUICK, library("numpy")),
    "library_old_cloudpickle": ("Failed", "library_mismatch", None, QUICK, library("cloudpickle")),
    # bad_signature
    "signature_zero_args": ("Failed", "bad_signature", None, QUICK, in_message("0 parameter")),
    "signature_three_args": ("Failed", "bad_signature", None, QUICK, in_message("3 parameter")),
    "signature_dict": ("Failed", "bad_signature", None, QUICK, in_message("builtins.dict")),
    "signature_keyword_only": ("Failed", "bad_signature", None, QUICK, in_message("by position")),
    "signature_fitted_estimator": ("Failed", "bad_signature", None, QUICK, in_message("Ridge", "wrap it")),
    "signature_ufunc": ("Failed", "bad_signature", None, QUICK, in_message("numpy.ufunc")),
    "signature_pickled_twice": ("Failed", "bad_signature", None, QUICK, in_message("pickle of a pickle")),
    # model_exception, the user's own frames first
    # A KeyError on a column the data lacks: named as such (the pickle names it, the data does not have it).
    "exception_wrong_feature": ("Failed", "missing_columns", None, QUICK,
                                lambda r: "feature_that_does_not_exist" in r["message"]
                                and r["evidence"]["traceback"][0]["function"] == "predict"),
    "exception_at_load": ("Failed", "model_exception", None, QUICK,
                          lambda r: r["phase"] == "loading" and "refuses to load" in r["message"]),
    "exception_system_exit": ("Failed", "model_exception", None, QUICK, in_message("sys.exit")),
    "exception_recursion": ("Failed", "model_exception", None, QUICK, in_message("RecursionError")),
    "exception_unprintable": ("Failed", "model_exception", None, QUICK, in_message("Weird")),
    "exception_lightgbm_wrong_features": ("Failed", "model_exception", None, QUICK,
                                          lambda r: "number of features" in r["message"]
                                          and r["evidence"]["traceback"][0]["function"] == "predict"),
    "network_socket": ("Failed", "model_exception", None, QUICK, network),
    "network_dns": ("Failed", "model_exception", None, QUICK, network),
    "network_urllib": ("Failed", "model_exception", None, QUICK, network),
    "network_at_load": ("Failed", "model_exception", None, QUICK, lambda r: network(r) and r["phase"] == "loading"),
    "network_localhost": ("Failed", "model_exception", None, QUICK, network),
    "hostile_read_host_file": ("Failed", "model_exception", None, QUICK, in_message("FileNotFoundError",
                                                                                    "not in the sandbox")),
    "hostile_write_outside_tmp": ("Failed", "model_exception", None, QUICK, in_message("only /tmp is writable")),
    "hostile_docker_socket": ("Failed", "model_exception", None, QUICK, in_message("FileNotFoundError")),
    "hostile_become_root": ("Failed", "model_exception", None, QUICK, in_message("PermissionError")),
    "hostile_fork_bomb": ("Failed", "model_exception", None, QUICK,
                          lambda r: r["evidence"]["pids_limit"] == 512 and "512 processes" in r["message"]),
    "hostile_thread_bomb": ("Failed", "model_exception", None, QUICK,
                            lambda r: r["evidence"]["pids_limit"] == 512 and "512 processes" in r["message"]),
    "hostile_open_files": ("Failed", "model_exception", None, QUICK,
                           lambda r: r["evidence"]["open_files_limit"] == 4096),
    "hostile_disk_filler": ("Failed", "model_exception", None, QUICK,
                            lambda r: r["evidence"]["tmp_bytes"] == 1024**3 and "/tmp" in r["message"]),
    "hostile_shell_at_load_fails": ("Failed", "model_exception", None, QUICK,
                                    lambda r: r["phase"] == "loading" and "CalledProcessError" in r["message"]),
    "hostile_tamper_harness": ("Failed", "invalid_output", "nan", QUICK, anything),
    # crashed: the signal
    "crash_segfault_ctypes": ("Failed", "crashed", None, QUICK, signal("SIGSEGV")),
    "crash_segfault_at_load": ("Failed", "crashed", None, QUICK,
                               lambda r: signal("SIGSEGV")(r) and r["phase"] == "loading"),
    "crash_abort": ("Failed", "crashed", None, QUICK, signal("SIGABRT")),
    "crash_illegal_instruction": ("Failed", "crashed", None, QUICK, signal("SIGILL")),
    "crash_bus_error": ("Failed", "crashed", None, QUICK, signal("SIGBUS")),
    "crash_stack_overflow": ("Failed", "crashed", None, QUICK, signal("SIGSEGV")),
    "crash_kill_self": ("Failed", "crashed", None, QUICK, signal("SIGKILL")),
    # out_of_memory: the limit and the phase (one under the default 4 GB)
    "memory_numpy_6gb": ("Failed", "out_of_memory", None, QUICK, out_of_memory(4 * 1024**3, "predicting")),
    "memory_python_objects": ("Failed", "out_of_memory", None, QUICK + ("--memory", "512m"),
                              out_of_memory(512 * MIB, "predicting")),
    "memory_at_load": ("Failed", "out_of_memory", None, QUICK + ("--memory", "512m"),
                       out_of_memory(512 * MIB, "loading")),
    "memory_error_raised": ("Failed", "out_of_memory", None, QUICK, out_of_memory(4 * 1024**3, "predicting")),
    "memory_tmp_filler": ("Failed", "out_of_memory", None, QUICK + ("--memory", "768m"),
                          out_of_memory(768 * MIB, "predicting")),
    # timeout: the limit and the phase
    "timeout_busy_loop": ("Failed", "timeout", None, SHORT, timed_out("predicting")),
    "timeout_sleep_at_load": ("Failed", "timeout", None, SHORT, timed_out("loading")),
    "timeout_lingering_thread": ("Failed", "timeout", None, SHORT,
                                 lambda r: r["evidence"]["returned"] is True and "did not exit" in r["message"]),
    # no_output
    "exit_os_exit_0": ("Failed", "no_output", None, QUICK, has(exit_code=0, phase="predicting")),
    "exit_os_exit_1_at_load": ("Failed", "no_output", None, QUICK, has(exit_code=1, phase="loading")),
    "exit_exec_other_program": ("Failed", "no_output", None, QUICK, has(exit_code=0)),
    "exit_closes_all_fds": ("Failed", "no_output", None, QUICK, in_message("report channel")),
    "exit_garbage_on_channel": ("Failed", "no_output", None, QUICK, anything),
    # invalid_output, one rule each
    "output_none": ("Failed", "invalid_output", "returned_none", QUICK, has(rule="returned_none")),
    "output_series": ("Failed", "invalid_output", "not_dataframe", QUICK, has(rule="not_dataframe")),
    "output_dataframe_subclass": ("Failed", "invalid_output", "not_dataframe", QUICK, has(rule="not_dataframe")),
    "output_empty": ("Failed", "invalid_output", "empty", QUICK, has(rule="empty")),
    "output_nan": ("Failed", "invalid_output", "nan", QUICK, has(rule="nan")),
    "output_out_of_range": ("Failed", "invalid_output", "out_of_range", QUICK, has(rule="out_of_range")),
    "output_strings": ("Failed", "invalid_output", "not_numeric", QUICK, has(rule="not_numeric")),
    "output_missing_ids": ("Failed", "invalid_output", "missing_ids", QUICK, has(rule="missing_ids")),
    "output_duplicate_ids": ("Failed", "invalid_output", "duplicate_ids", QUICK, has(rule="duplicate_ids")),
    "output_wrong_header": ("Failed", "invalid_output", "bad_headers", QUICK, has(rule="bad_headers")),
    "output_constant": ("Failed", "invalid_output", "constant", QUICK, has(rule="constant")),
    "output_unwritable": ("Failed", "invalid_output", "unwritable", QUICK, has(rule="unwritable")),
    # hostile but contained: the model still works, and nothing escaped (checked on the host)
    "contained_good": ("Success", None, None, QUICK, anything),
    "contained_background_process": ("Success", None, None, QUICK, anything),
    "contained_daemon": ("Success", None, None, QUICK, anything),
    "contained_shell_at_load": ("Success", None, None, QUICK, lambda r: "trojan ran as" in r["logs_tail"]),
    "contained_log_flood": ("Success", None, None, QUICK, lambda r: r["logs_truncated"] is True),
    "contained_kill_init": ("Success", None, None, QUICK, anything),
}
# Pickles made by other CPythons, run anyway (--force): they fail to load, or load and fail or crash
# when called; the message names the image's Python and, from the pickle's bytecode, the one that
# made it. (Without --force most end before running: test_other_pythons_stop_before_running.)
CROSS_PYTHON = {"3.9": ("function",), "3.10": ("function", "closure", "marshal"),
                "3.12": ("function", "closure", "instance", "marshal"), "3.13": ("function", "closure", "lambda", "marshal")}
for _version, _names in CROSS_PYTHON.items():
    for _name in _names:  # marshal data carries no cloudpickle code object: the Python stays unnamed
        CASES[f"py{_version.replace('.', '')}_{_name}"] = (
            "Failed", "python_version_mismatch", None, FORCED,
            (lambda r: r["evidence"]["image_python"] == "3.11") if _name == "marshal" else mismatch(_version))
for _name in ("function", "marshal"):  # another patch release of the image's own Python: fine
    CASES[f"py311_{_name}"] = ("Success", None, None, QUICK, anything)


# The line Numerai's log would show, one case per way predict.py (19d1769) words it, and per kill.
NUMERAI_LOG = {
    "invalid_empty": "EOFError: Ran out of input",  # not caught by predict.py: its traceback ends the log
    "invalid_truncated": "Invalid pickle - pickle data was truncated",
    "missing_local_module": "Import error reading pickle - No module named 'mymodels'",
    "signature_three_args": "Invalid pickle function - /input/model.pkl must have 1 or 2 arguments",
    "exception_recursion": "RecursionError: maximum recursion depth exceeded",
    "crash_segfault_ctypes": "Segmentation fault! Ensure python and library versions match our environment.",
    "memory_numpy_6gb": "Predicting on 6720 rows of live features",
    "memory_at_load": "Loading model /input/model.pkl",
    "timeout_busy_loop": "Predicting on 6720 rows of live features",
    "exit_os_exit_0": "Predicting on 6720 rows of live features",
    "output_none": "Pickle function is invalid - returned None",
    "output_series": "Pickle function is invalid - returned <class 'pandas.core.series.Series'> instead of pd.DataFrame",
    "output_nan": "Pickle function returned at least 1 NaN prediction",
    "output_missing_ids": "invalid_submission_ids: Not enough stocks submitted. Are you using the latest live ids or "
                          "live universe?",
    "output_constant": "invalid_submission_values: submission must have non-zero standard deviation",
    "py313_function": "Segmentation fault! Ensure python and library versions match our environment.",
    "py310_function": "Pickle incompatible with 3.11",
}
# Under gVisor (`--isolation gvisor`), every case must end with the same verdict. `make test` runs one
# case per reason (and Success), `make test-all` the whole corpus (NUMERAI_SANDBOX_GVISOR_CORPUS=all).
GVISOR_ONE_PER_REASON = [
    "contained_good", "invalid_truncated", "missing_local_module", "library_sklearn_renamed_class",
    "signature_three_args", "network_socket", "hostile_thread_bomb", "crash_segfault_ctypes",
    "memory_numpy_6gb", "memory_tmp_filler", "timeout_busy_loop", "exit_os_exit_0", "output_nan",
    "py312_function",
]
GVISOR_CASES = list(CASES) if os.environ.get("NUMERAI_SANDBOX_GVISOR_CORPUS") == "all" else GVISOR_ONE_PER_REASON
# gVisor's kernel starts Python and reads the live data several times slower (ptrace platform): the
# cases that must reach their phase before an 8 s limit get 40 s there.
GVISOR_SHORT = ("--python", "3.11", "--timeout", "40s")
# The one case whose verdict differs under gVisor, asserted so a runsc that changes it is noticed:
# Debian's runsc (2022-12) lets a process kill the container's init with SIGKILL, which Linux
# refuses inside a pid namespace; the sandbox then ends with the model. A legitimate model never
# signals process 1; Numerai (runc) would accept this one.
# And under gVisor's ptrace platform every process of the model is also a host process (with a host
# thread tracing it), so a fork bomb reaches the container's host pids limit at about 200 processes,
# before gVisor's own count of 512 refuses a fork, and runsc ends the whole sandbox (exit 2): still
# Failed, as no_output instead of model_exception. (A thread bomb meets gVisor's limit first: the same
# verdict as runc.)
GVISOR_DIFFERS = {"contained_kill_init": ("Failed", "crashed", None, signal("SIGKILL")),
                  "hostile_fork_bomb": ("Failed", "no_output", None, has(exit_code=2, phase="predicting"))}


def pyenv_interpreter(version: str) -> Path | None:
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    found = sorted((p for p in root.glob(f"{version}.*") if p.name.split(".")[-1].isdigit()),
                   key=lambda p: int(p.name.split(".")[-1]))
    return found[-1] / "bin" / "python" if found else None


@pytest.fixture(scope="module")
def host_file(tmp_path_factory) -> Path:
    """A file on the host that the hostile cases try to read and write."""
    path = tmp_path_factory.mktemp("host") / "secret.txt"
    path.write_text(f"host secret {secrets.token_hex(8)}\n")
    return path


@pytest.fixture(scope="module")
def marker() -> str:
    return f"nsbxcorpus{secrets.token_hex(4)}"


@pytest.fixture(scope="module")
def corpus(client, image311, tmp_path_factory, host_file, marker) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("corpus")
    make_pickles(client, image311, CORPUS / "make_corpus.py", out, "--host-file", str(host_file), "--marker", marker)
    # Other CPythons pickle with the host's own cloudpickle (pure Python): no network, no venv.
    import cloudpickle

    from runner import data

    lib = tmp_path_factory.mktemp("cloudpickle")
    shutil.copytree(Path(cloudpickle.__file__).parent, lib / "cloudpickle")
    features = data.synthetic_default().features_json
    for version in (*CROSS_PYTHON, "3.11"):
        python = pyenv_interpreter(version)
        if python is None:
            continue
        subprocess.run([str(python), "-s", str(CORPUS / "make_cross_python.py"), "--features", str(features),
                        "--out", str(out)], check=True, capture_output=True,
                       env={"PYTHONPATH": str(lib), "PATH": os.environ.get("PATH", "/usr/bin:/bin")})
    for path in out.glob("*.pkl"):
        path.chmod(0o644)
    return {p.stem: p for p in out.glob("*.pkl")}


def test_every_case_has_an_expectation(corpus):
    made = {name for name in corpus if not name.startswith("py")}
    assert made == {name for name in CASES if not name.startswith("py")}


def _processes_of(container_id: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter():
        try:
            if container_id in Path(f"/proc/{proc.pid}/cgroup").read_text():
                found.append(proc)
        except (OSError, psutil.Error):
            continue
    return found


def _with_marker(marker: str) -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(marker in part for part in proc.info["cmdline"] or ()):
                found.append(proc)
        except psutil.Error:
            continue
    return found


@pytest.mark.parametrize("isolation, name", [("runc", name) for name in CASES]
                         + [("gvisor", name) for name in GVISOR_CASES])
def test_case(request, corpus, host_file, marker, isolation, name):
    status, reason, subcode, args, evidence_ok = CASES[name]
    if name not in corpus:
        pytest.skip(f"{name}: the interpreter that makes it is not installed here")
    if isolation == "gvisor":
        request.getfixturevalue("gvisor")
        args = GVISOR_SHORT if args == SHORT else args
        if name in GVISOR_DIFFERS:
            status, reason, subcode, evidence_ok = GVISOR_DIFFERS[name]
    model = corpus[name]
    model_digest = hashlib.sha256(model.read_bytes()).hexdigest()
    host_before = host_file.read_bytes()
    result = run_cli("run", model, "--json", *args, "--isolation", isolation)
    report = result.report
    assert (report["status"], report["reason"], report["subcode"]) == (status, reason, subcode), report["message"]
    assert report["limits"]["isolation"] == isolation
    assert result.code == EXIT[status]
    # No traceback of ours: not on the terminal (with --json the human summary goes to stderr),
    # not in the report's words.
    assert "Traceback" not in result.stderr
    assert "Traceback" not in report["message"] + (report["action"] or "")
    if status != "Success":
        assert report["message"].strip() and report["action"].strip()
        assert evidence_ok(report), report["evidence"]
    else:
        assert evidence_ok(report), report["logs_tail"][-2000:]
    # Every Failed verdict carries the line Numerai's log would show, on the terminal too; an Error none.
    assert bool(report["numerai_log"]) == (status == "Failed"), report["numerai_log"]
    if status == "Failed":
        assert "Numerai's log: " + report["numerai_log"] in result.stderr
        if name in NUMERAI_LOG and isolation == "runc":
            assert report["numerai_log"] == NUMERAI_LOG[name], report["numerai_log"]
    # The host: the pickle and the host file untouched, nothing of the container left running.
    assert hashlib.sha256(model.read_bytes()).hexdigest() == model_digest
    assert host_file.read_bytes() == host_before
    container_id = report["container"].get("id")
    if container_id:
        assert not _processes_of(container_id)
    assert not _with_marker(marker)


def test_hostile_cases_left_nothing_on_the_host(client, host_file, marker):
    assert host_file.read_text().startswith("host secret ")
    assert not _with_marker(marker)
    assert not leaked_containers(client)


@pytest.mark.parametrize("version", list(CROSS_PYTHON))
def test_other_pythons_stop_before_running_only_where_loading_certainly_fails(corpus, version):
    """Without --force, a pickle of 3.9 or 3.10 (16-argument code objects) ends in the 3.11 image before any of it
    runs: Python 3.11's code constructor raises TypeError on them, as on Numerai ("Pickle incompatible with
    3.11"). One of 3.12 or 3.13 loads there (the same constructor): it runs, and the container decides."""
    name = f"py{version.replace('.', '')}_function"
    if name not in corpus:
        pytest.skip(f"pyenv has no CPython {version} here")
    result = run_cli("run", corpus[name], "--json", *QUICK)
    report = result.report
    assert (report["status"], report["reason"]) == ("Failed", "python_version_mismatch"), report["message"]
    assert report["evidence"]["image_python"] == "3.11" and "3.11" in report["message"]
    assert result.code == 1 and "Traceback" not in result.stderr
    certain = version in ("3.9", "3.10")
    assert (report["phase"] == "inspecting") == certain and bool(report["container"]) != certain
    if certain:
        assert report["numerai_log"] == "Pickle incompatible with 3.11"
    else:
        assert any(f"made by Python {version}" in note for note in report["notes"]) and report["numerai_log"]


# ---------------------------------------------------------------- the Error side: never the model's fault

def test_docker_unreachable_is_error(corpus, tmp_path):
    result = run_cli("run", corpus["contained_good"], "--json", *QUICK, env={"DOCKER_HOST": f"unix://{tmp_path}/no.sock"})
    assert (result.code, result.report["status"], result.report["reason"]) == (3, "Error", "docker_unavailable")
    assert "Traceback" not in result.stderr


def test_memory_beyond_the_machine_is_a_usage_error(corpus):
    total = psutil.virtual_memory().total
    result = run_cli("run", corpus["contained_good"], *QUICK, "--memory", f"{total // 1024**3 + 8}g")
    assert result.code == 2 and "more than this machine's memory" in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_torch_under_auto(corpus, own_cache, own_namespace):
    """The default profile adds torch, from the cache only: with no wheels cached and no image holding
    torch (a cache and a namespace of this test's own, whatever the machine fetched and built), Error
    naming torch and the one command that fetches it."""
    result = run_cli("run", corpus["missing_torch"], "--json", *QUICK, env={"NUMERAI_SANDBOX_CACHE": str(own_cache)})
    report = result.report
    assert (result.code, report["status"], report["reason"]) == (3, "Error", "packages_not_fetched"), report["message"]
    assert report["evidence"]["wanted"] == {"torch": "torch"} and "torch==2.7.1" in report["evidence"]["missing"]
    assert f"numerai-sandbox images fetch --for {corpus['missing_torch']} --python 3.11" in report["message"]
    assert "Traceback" not in result.stderr


def test_unbuildable_image_is_error(corpus, tmp_path):
    extra = tmp_path / "extra.txt"
    extra.write_text("numerai-sandbox-no-such-package==0.0.1\n")
    result = run_cli("run", corpus["contained_good"], "--json", *QUICK, "--extra-requirements", extra)
    assert (result.code, result.report["status"], result.report["reason"]) == (3, "Error", "image_unavailable")
    assert "Traceback" not in result.stderr


# ---------------------------------------------------------------- the same pickles in another Python's image

# case -> the Python that made it; run in the 3.12 image, each fails in its own way: a SIGSEGV
# (3.11's bytecode), a nonsense ValueError from misread bytecode (the corpus's own 3.11 model), a
# SIGSEGV (3.13), a TypeError while the code object is rebuilt (3.10)
ACROSS_IMAGES = {"py311_function": "3.11", "contained_good": "3.11", "py313_function": "3.13",
                 "py310_function": "3.10"}


@pytest.mark.parametrize("name", list(ACROSS_IMAGES))
def test_case_in_the_312_image(client, corpus, name):
    if "3.12" not in pythons_under_test():
        pytest.skip("the Python 3.12 image is not part of this test run (TEST_PYTHONS)")
    image_for(client, "3.12")
    if name not in corpus:
        pytest.skip(f"{name}: the interpreter that makes it is not installed here")
    result = run_cli("run", corpus[name], "--python", "3.12", "--force", "--json", "--timeout", "2m")
    report = result.report
    assert (report["status"], report["reason"]) == ("Failed", "python_version_mismatch"), report["message"]
    assert report["evidence"]["image_python"] == "3.12" and "3.12" in report["message"]
    made_by = ACROSS_IMAGES[name]
    assert made_by in (report["evidence"]["pickle_python"] or "") and made_by in report["message"]
    assert result.code == 1 and "Traceback" not in result.stderr


# ---------------------------------------------------------------- the verdict logic on its own (no Docker)

@pytest.mark.parametrize("data, words", [
    (b"", "empty"), (b"PK\x03\x04rest", "zip"), (b"\x1f\x8b\x08\x00", "gzip"), (b"PAR1xxxx", "parquet"),
    (b"<!DOCTYPE html><html>", "HTML"), (b'{"a": 1}', "JSON"), (b"id,prediction\nn1,0.5\n", "CSV"),
    (b"version https://git-lfs.github.com/spec/v1\noid sha256:00\n", "Git LFS"),
    (b"gASVKAAAAAAAAACMCGJ1aWx0aW5zlIwFcHJpbnSUk5Qu\n", "base64"), (b"\x80\x05\x95", "cut short"),
    (b"\x93NUMPY\x01\x00", "numpy"), (b"x\x9c\xcb\x48\xcd", "zlib"), (bytes(range(256)) * 4, "binary"),
])
def test_sniff_names_what_a_file_looks_like(tmp_path, data, words):
    from runner.inspection.filetype import sniff

    path = tmp_path / "model.pkl"
    path.write_bytes(data)
    assert words.lower() in sniff(path).lower()


def _verdict(frames, exit_code=0, **context):
    from runner.verdict import diagnose
    from runner.verdict.context import Context
    from runner.sandbox.backend import Limits, Outcome
    from runner.sandbox.protocol import FrameParser, read_frames
    import json

    parser = FrameParser(max_predictions=1 << 20)
    for kind, body in frames:
        payload = json.dumps(body).encode()
        parser.feed(f"NSBX1 {kind} {len(payload)}\n".encode() + payload)
    ctx = Context("3.11", {"scikit-learn": "1.6.1", "numpy": "2.1.3"}, Limits(),
                  context.pop("model_path", Path("/nonexistent/model.pkl")), **context)
    return diagnose.from_outcome(Outcome("c", exit_code=exit_code), read_frames(parser), ctx)


def test_a_failing_harness_is_our_error_not_the_models():
    verdict = _verdict([("hello", {}), ("phase", {"phase": "predicting"}),
                        ("error", {"phase": "predicting", "kind": "harness_error",
                                   "exception": {"type": "KeyError", "message": "'rows'"}})], exit_code=70)
    assert verdict.reason == "internal_error" and verdict.blame.value == "platform"


def test_a_lost_report_channel_is_no_output():
    verdict = _verdict([("hello", {}), ("phase", {"phase": "predicting"})], exit_code=86)
    assert verdict.reason == "no_output" and "report channel" in verdict.message


def test_an_unwritable_frame_is_invalid_output():
    verdict = _verdict([("hello", {}), ("result", {"exact_dataframe": True, "unwritable": {"type": "RuntimeError",
                                                                                           "message": "no"}}),
                        ("done", {})])
    assert (verdict.reason, verdict.subcode) == ("invalid_output", "unwritable")


def test_a_crash_of_another_pythons_pickle_names_both_pythons():
    verdict = _verdict([("hello", {}), ("phase", {"phase": "predicting"})], exit_code=139, pickle_candidates=["3.13"])
    assert verdict.reason == "python_version_mismatch"
    assert verdict.evidence["pickle_python"] == "3.13" and "3.11" in verdict.message


def test_a_crash_of_the_images_own_python_is_a_crash():
    verdict = _verdict([("hello", {}), ("phase", {"phase": "predicting"})], exit_code=139, pickle_candidates=["3.11"])
    assert verdict.reason == "crashed" and verdict.evidence["signal"] == "SIGSEGV"
