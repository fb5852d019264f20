"""`check`: many pickles in parallel, each with the verdict its single `run` gives, a JUnit file a CI
system reads, the worst verdict as the exit code, and cores never shared between concurrent runs."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from conftest import image_for, pickle_with, run_cli
from test_images import CLOUDPICKLE

# Good and broken, made by the 3.11 image (conftest's models) ...
CHOSEN = ["good_1arg", "good_2arg", "good_probability", "raises", "returns_none", "nan_output", "constant",
          "missing_ids", "zero_args", "truncated", "csv_file"]


@pytest.fixture(scope="module")
def batch(models, client, cpython_venv, tmp_path_factory):
    """A folder of 12 pickles: 11 of the 3.11 image's test models, one made by pyenv's CPython 3.12."""
    image_for(client, "3.12")
    folder = tmp_path_factory.mktemp("batch")
    for name in CHOSEN:
        (folder / f"{name}.pkl").write_bytes(models[name].read_bytes())
    pickle_with(cpython_venv("3.12", CLOUDPICKLE["3.12"]), folder / "made_by_312.pkl")
    return folder


def test_check_gives_every_model_its_single_run_verdict(batch, tmp_path):
    junit = tmp_path / "check.xml"
    result = run_cli("check", batch, "--junit", junit, "--json", "--jobs", "2", timeout=900)
    combined = result.report
    reports = {Path(r["model"]["path"]).stem: r for r in combined["reports"]}
    assert set(reports) == set(CHOSEN) | {"made_by_312"}
    for name, report in reports.items():
        single = run_cli("run", batch / f"{name}.pkl", "--json").report
        assert (report["status"], report["reason"], report["subcode"]) == (
            single["status"], single["reason"], single["subcode"]), name
    assert reports["made_by_312"]["python"] == "3.12" and reports["good_1arg"]["python"] == "3.11"
    # The worst verdict is the exit code: here a Failed model and an Error-free batch -> 1.
    statuses = {r["status"] for r in reports.values()}
    assert "Error" not in statuses and result.code == 1 == combined["exit_code"]
    assert combined["counts"]["Success"] == 4 and combined["counts"]["Failed"] == 8

    from junitparser import Error, Failure, JUnitXml

    xml = JUnitXml.fromfile(str(junit))
    cases = {Path(case.name).stem: case for suite in xml for case in suite}
    assert set(cases) == set(reports)
    for name, case in cases.items():
        report = reports[name]
        results = list(case.result)
        if report["status"] == "Success":
            assert not results, name
        else:
            assert len(results) == 1 and isinstance(results[0], Failure if report["status"] == "Failed" else Error)
            code = report["reason"] + (f"/{report['subcode']}" if report["subcode"] else "")
            assert results[0].message == f"{code}: {report['message']}"
        assert json.loads(case.system_out)["status"] == report["status"]


def test_concurrent_runs_never_share_a_core(batch):
    result = run_cli("check", batch / "good_1arg.pkl", batch / "good_2arg.pkl", batch / "made_by_312.pkl",
                     batch / "good_probability.pkl", "--jobs", "2", "--json", timeout=600)
    reports = result.report["reports"]
    assert all(r["status"] == "Success" for r in reports)

    def span(report):
        at = {e["status"]: e["at"] for e in report["timeline"]}
        return at["Running"], at["Validating"]

    for a in reports:
        for b in reports:
            if a is b:
                continue
            (a0, a1), (b0, b1) = span(a), span(b)
            if a0 < b1 and b0 < a1:  # their containers ran at the same time
                assert not set(a["container"]["cpus"]) & set(b["container"]["cpus"])


def test_exit_code_and_fail_on(batch):
    failed = run_cli("check", batch / "good_1arg.pkl", batch / "raises.pkl")
    assert failed.code == 1 and "1 Success, 1 Failed, 0 Error" in failed.stdout
    only_errors = run_cli("check", batch / "good_1arg.pkl", batch / "raises.pkl", "--fail-on", "error")
    assert only_errors.code == 0
    good = run_cli("check", str(batch / "good_*.pkl"))  # a quoted glob is expanded by check itself
    assert good.code == 0 and "3 checked: 3 Success" in good.stdout


def test_an_engine_error_is_exit_3(batch):
    result = run_cli("check", batch / "good_1arg.pkl", "--json", env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert result.code == 3 and result.report["reports"][0]["reason"] == "docker_unavailable"


@pytest.mark.parametrize("args,message", [
    (["check", "/nonexistent/dir"], "no such file or directory"),
    (["check", "/nonexistent/*.pkl"], "the pattern matches no file"),
    (["check", "{empty}"], "no .pkl or .pickle file"),
    (["check", "{model}", "--numerai-limits", "--memory", "8g"], "more than Numerai gives"),
    (["check", "{model}", "--junit", "{model}"], "is one of the inputs"),
    (["check", "{model}", "--jobs", "0"], "0 is not in the range"),
])
def test_check_usage_errors(tmp_path, args, message):
    (tmp_path / "empty").mkdir()
    model = tmp_path / "m.pkl"
    model.write_bytes(b"\x80\x05N.")
    result = run_cli(*[a.format(empty=tmp_path / "empty", model=model) for a in args])
    assert result.code == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert model.read_bytes() == b"\x80\x05N."


# ---------------------------------------------------------------- pure logic

def test_expand_files_globs_and_directories(tmp_path):
    from runner.usecases.check import expand

    (tmp_path / "a").mkdir()
    for name in ("a/one.pkl", "a/two.pickle", "a/notes.txt", "three.pkl"):
        (tmp_path / name).write_bytes(b"x")
    found = expand([str(tmp_path / "a"), str(tmp_path / "*.pkl"), str(tmp_path / "three.pkl")])
    assert [p.name for p in found] == ["one.pkl", "two.pickle", "three.pkl"]  # each once, in order


def test_parallel_jobs_are_bounded_by_cores_and_memory():
    from runner.usecases.check import parallel_jobs

    gib = 1024**3
    assert parallel_jobs(None, 1, 4 * gib, cores=2, host_memory=24 * gib, count=10)[0] == 2
    assert parallel_jobs(None, 1, 4 * gib, cores=16, host_memory=24 * gib, count=10)[0] == 6
    assert parallel_jobs(None, 2, 4 * gib, cores=16, host_memory=64 * gib, count=10)[0] == 8
    jobs, why = parallel_jobs(8, 1, 4 * gib, cores=2, host_memory=24 * gib, count=10)
    assert jobs == 2 and "more than this machine's cores allow" in why
    assert parallel_jobs(1, 1, 4 * gib, cores=2, host_memory=24 * gib, count=10)[0] == 1
    assert parallel_jobs(None, 1, 4 * gib, cores=8, host_memory=24 * gib, count=3)[0] == 3


def test_exit_code_is_the_worst_verdict():
    from runner.usecases.check import exit_code
    from runner.verdict.lifecycle import Status
    from runner.verdict.report import Report

    def report(status):
        return Report(status, None, "")

    assert exit_code([report(Status.SUCCESS), report(Status.FAILED)]) == 1
    assert exit_code([report(Status.FAILED), report(Status.ERROR)]) == 3
    assert exit_code([report(Status.FAILED)], fail_on="error") == 0
    assert exit_code([report(Status.ERROR)], fail_on="error") == 3
    assert exit_code([report(Status.SUCCESS)]) == 0


def test_the_cpu_allocator_hands_out_disjoint_cores_and_waits_when_full(tmp_path, monkeypatch):
    from runner.sandbox import cpus

    monkeypatch.setenv("NUMERAI_SANDBOX_CPU_LOCKS", str(tmp_path))  # apart from the host's real runs

    first = cpus.allocate(1, total=2)
    second = cpus.allocate(1, total=2)
    a, b = first.__enter__(), second.__enter__()
    assert len(a) == len(b) == 1 and a != b
    waited, got = threading.Event(), []

    def third():
        with cpus.allocate(1, total=2, on_wait=waited.set) as cores:
            got.append(cores)

    worker = threading.Thread(target=third)
    worker.start()
    assert waited.wait(10)  # both cores taken: it waits...
    first.__exit__(None, None, None)
    worker.join(10)
    assert got == [a]  # ...and gets the core freed
    second.__exit__(None, None, None)


def test_junit_xml_holds_what_ci_systems_read(tmp_path):
    from junitparser import JUnitXml

    from runner.verdict.lifecycle import Status
    from runner.verdict import junit
    from runner.verdict.report import Report

    reports = [Report(Status.SUCCESS, None, "ok"), Report(Status.FAILED, "model_exception", "it raised \x01",
                                                          action="fix it", numerai_log="ValueError: it raised"),
               Report(Status.ERROR, "docker_unavailable", "no engine")]
    path = junit.write(tmp_path / "j.xml", reports, ["a.pkl", "b.pkl", "c.pkl"])
    suite = next(iter(JUnitXml.fromfile(str(path))))
    assert (suite.tests, suite.failures, suite.errors) == (3, 1, 1)
    messages = [case.result[0].message if case.result else None for case in suite]
    assert messages == [None, "model_exception: it raised \ufffd", "docker_unavailable: no engine"]
    failed = list(suite)[1]
    assert "Numerai's log: ValueError: it raised" in failed.result[0].text  # the line Numerai's log would show
    assert "name=\"numerai_log\" value=\"ValueError: it raised\"" in path.read_text()
