"""Fidelity of the process sandbox: the same verdicts as a container, with no engine to be had.

The pickles are made inside the Python 3.11 image (that needs the engine, once); every run of them
here is `--backend process` with DOCKER_HOST pointing nowhere, so nothing of the run can reach an
engine. The verdicts to match are the container's: the test models (tests/models/make_models.py:
good, broken and resource models) are run in a container too, side by side; the broken and hostile
corpus (tests/corpus/make_corpus.py) has its container verdicts in test_corpus.CASES, which
test_corpus holds against the engine.

What the process sandbox cannot see, and so must not be asked to (README, "In a notebook"), is listed in
NOT_CONTAINED with why; those cases are not run here, because running them would reach this machine
(write to /, fill its disk, kill processes as root). Timings: 5 minutes on 2 cores, half of it the test
models' container runs (measure with `pytest --durations=5 tests/test_process_fidelity.py`).
"""

from __future__ import annotations

import os
import sys

import pytest

from conftest import ROOT, make_pickles
from test_corpus import CASES, CORPUS, SHORT

NOWHERE = "tcp://127.0.0.1:9"  # the discard port: no engine answers there
ROOT_USER = os.geteuid() == 0
# Corpus cases a process sandbox cannot contain (README: "what the process sandbox cannot see"), not run.
NOT_CONTAINED = {
    "hostile_read_host_file": "the model runs as this user and sees this machine's files",
    "hostile_write_outside_tmp": "the file system is this machine's: it could write to /etc or the environment",
    "hostile_docker_socket": "Unix sockets are not cut off: the engine's socket is reachable where it exists",
    "hostile_become_root": "run as root, the model is root already (a container drops root's capabilities)",
    "hostile_disk_filler": "no read-only root and no capped /tmp: it would fill this machine's disk",
    "memory_tmp_filler": "/tmp is this machine's disk, not a tmpfs counted against the memory limit",
    "contained_kill_init": "no pid namespace: process 1 is this machine's init",
}
if ROOT_USER:  # RLIMIT_NPROC does not bind root: a bomb meets no limit of the sandbox's
    NOT_CONTAINED |= {"hostile_fork_bomb": "root is exempt from RLIMIT_NPROC: no process limit binds it",
                      "hostile_thread_bomb": "root is exempt from RLIMIT_NPROC: no thread limit binds it"}
# The one test model that differs: it reports the sandbox itself (the container's mounts, its /tmp) and writes to
# /, which a process sandbox run as root would let it do to this machine.
MODELS_NOT_CONTAINED = {"probe_sandbox": "it reads the container's own mounts (no /tmp mount here: StopIteration) "
                                         "and writes to /, /var/tmp and /tmp, this machine's in a process sandbox"}
PROCESS_CASES = sorted(name for name in CASES if not name.startswith("py") and name not in NOT_CONTAINED)
MODEL_TIMEOUT = 20.0  # the test models that sleep: the same clock on both sides


def ready_or_skip() -> None:
    from runner.images import wheelhouse
    from runner.images.pins import pin_set

    why = None
    if sys.version_info[:2] != (3, 11):
        why = "the corpus is pickled by Python 3.11: the process sandbox needs a 3.11 host Python to run it"
    elif wheelhouse.inventory(pin_set("3.11", "standard")).missing:
        why = "the Python 3.11 wheels are not fetched"
    if why:
        if os.environ.get("NUMERAI_SANDBOX_REQUIRE_DOCKER") == "1":
            pytest.fail(why)
        pytest.skip(why)


@pytest.fixture(scope="module")
def broken(client, image311, tmp_path_factory) -> dict:
    ready_or_skip()
    out = tmp_path_factory.mktemp("corpus-process")
    host = tmp_path_factory.mktemp("host") / "secret.txt"
    host.write_text("host secret\n")
    made = make_pickles(client, image311, CORPUS / "make_corpus.py", out, "--host-file", str(host),
                        "--marker", "nsbxprocessfidelity")
    for path in made.values():
        path.chmod(0o644)
    return made


def judged(model, backend: str, **options) -> tuple:
    """(status, reason, subcode) of `model` run through runner.api, the report's `limits` and notes."""
    from runner.api import run_pickle

    report = run_pickle(model, backend=backend, history=False, **options)
    return (report.status.value, report.reason, report.subcode), report


@pytest.fixture
def no_engine(monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", NOWHERE)


@pytest.mark.parametrize("name", PROCESS_CASES)
def test_corpus_case_gets_the_containers_verdict(broken, no_engine, name):
    status, reason, subcode, arguments, _evidence = CASES[name]
    options = {flag[2:]: value for flag, value in zip(arguments[::2], arguments[1::2])}  # --python 3.11 ...
    assert set(options) <= {"python", "timeout", "memory", "profile"} and arguments[:4] in (SHORT, SHORT[:2] + ("--timeout", "2m"))
    verdict, report = judged(broken[name], "process", **options)
    assert verdict == (status, reason, subcode), report.message
    assert report.limits["backend"] == "process" and "weaker than Numerai's container" in str(report)


def test_model_gets_the_containers_verdict_with_no_engine(models, monkeypatch):
    """Every test model, in a container (engine reachable) then in the process sandbox (DOCKER_HOST nowhere)."""
    ready_or_skip()
    differ = {}
    for name, path in sorted(models.items()):
        if name in MODELS_NOT_CONTAINED:
            continue
        options = {"python": "3.11", "timeout": MODEL_TIMEOUT}
        monkeypatch.delenv("DOCKER_HOST", raising=False)
        in_container, _ = judged(path, "docker", **options)
        monkeypatch.setenv("DOCKER_HOST", NOWHERE)
        in_process, report = judged(path, "process", **options)
        if in_container != in_process:
            differ[name] = (in_container, in_process, report.message)
    assert not differ


def test_out_of_memory_is_watched_and_said(models, no_engine):
    ready_or_skip()
    verdict, report = judged(models["allocate_6gb"], "process", python="3.11", memory="1g")
    assert verdict == ("Failed", "out_of_memory", None)
    assert report.limits["memory"] == "watched, not enforced by a cgroup"
    assert "cgroup" in report.limits["not_enforced"]["memory"]


def test_the_same_model_with_no_engine_and_auto_falls_back_with_a_note(models, no_engine):
    ready_or_skip()
    verdict, report = judged(models["good_1arg"], "auto", python="3.11")
    assert verdict == ("Success", None, None)
    assert any("no Docker engine could be reached" in note for note in report.notes)
    assert report.container["backend"] == "process"


def test_docker_alone_with_no_engine_still_says_docker_unavailable(models, no_engine):
    verdict, report = judged(models["good_1arg"], "docker", python="3.11")
    assert verdict == ("Error", "docker_unavailable", None)


def test_the_command_line_runs_with_no_engine(models, tmp_path):
    ready_or_skip()
    from conftest import run_cli

    done = run_cli("run", models["good_1arg"], "--python", "3.11", "--json", "--no-history",
                   env={"DOCKER_HOST": NOWHERE, "NUMERAI_SANDBOX_BACKEND": "process"})
    assert done.code == 0, done.stderr
    report = done.report
    assert report["status"] == "Success" and report["limits"]["backend"] == "process"
    assert set(report["limits"]["enforced"]) >= {"cpu", "memory", "time", "open_files"}
    assert "filesystem" in report["limits"]["not_enforced"]
    # Environments are the machine's cache, listed from the default namespace (the tests run in their own).
    listed = run_cli("images", "list", env={"DOCKER_HOST": NOWHERE, "NUMERAI_SANDBOX_NAMESPACE": ""})
    assert listed.code == 0 and "ENVIRONMENT (process sandbox)" in listed.stdout and "py3.11-standard-" in listed.stdout
    assert ROOT.exists()


def test_a_python_this_machine_lacks_is_refused_with_the_fix(models, tmp_path):
    """A 3.12 run (forced) where no Python 3.12 can be found: Error/image_unavailable, saying what to install."""
    from conftest import run_cli

    done = run_cli("run", models["good_1arg"], "--python", "3.12", "--force", "--json", "--no-history",
                   "--backend", "process",
                   env={"DOCKER_HOST": NOWHERE, "PATH": "/usr/bin:/bin", "PYENV_ROOT": str(tmp_path / "no-pyenv")})
    report = done.report
    assert (done.code, report["status"], report["reason"]) == (3, "Error", "image_unavailable"), done.stderr
    assert "needs Python 3.12" in report["message"] and "Install Python 3.12" in report["action"]


def test_doctor_says_the_process_sandbox_is_ready_without_an_engine(models):
    """doctor on a machine without an engine: the engine is a problem, the process sandbox's readiness is said."""
    ready_or_skip()
    from conftest import run_cli

    run_pickle_once = judged(models["good_1arg"], "process", python="3.11")  # its environment made
    assert run_pickle_once[0] == ("Success", None, None)
    done = run_cli("doctor", "--json", env={"DOCKER_HOST": NOWHERE})
    findings = {f["check"]: f for f in done.report["findings"]}
    assert findings["engine"]["level"] == "problem"
    process = findings["process"]
    assert process["level"] == "ok" and "`--backend process` ready for Python 3.11" in process["summary"]
    assert process["details"]["network"] in ("namespace", "seccomp")


def test_check_runs_many_pickles_in_the_process_sandbox(models):
    ready_or_skip()
    from conftest import run_cli

    done = run_cli("check", models["good_1arg"], models["raises"], "--python", "3.11", "--json",
                   env={"DOCKER_HOST": NOWHERE, "NUMERAI_SANDBOX_BACKEND": "process"})
    assert done.code == 1, done.stderr
    reports = {r["model"]["path"].rsplit("/", 1)[-1]: r for r in done.report["reports"]}
    assert [(reports[n]["status"], reports[n]["reason"]) for n in ("good_1arg.pkl", "raises.pkl")] == [
        ("Success", None), ("Failed", "model_exception")]
    assert all(r["limits"]["backend"] == "process" for r in reports.values())
