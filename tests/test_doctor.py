"""`numerai-sandbox doctor`: a stopped engine and a missing image, each named with its fix, and the levels.

The command-line tests run the real CLI; the level tests feed the checks an engine's answers
(the checks decide from what the engine says, so a made-up answer tests them exactly).
"""

from __future__ import annotations

import json

from conftest import run_cli
from runner.usecases import doctor
from runner.sandbox.backend import Limits

NO_ENGINE = {"DOCKER_HOST": "unix:///nonexistent/numerai-sandbox-test/docker.sock"}


def findings(result) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for finding in json.loads(result.stdout)["findings"]:
        out.setdefault(finding["check"], []).append(finding)
    return out


def test_a_stopped_engine_is_a_problem_with_its_fix_and_the_other_checks_still_run(tmp_path):
    result = run_cli("doctor", env=dict(NO_ENGINE, NUMERAI_SANDBOX_CACHE=str(tmp_path / "cache")))
    assert result.code == 1, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    engine = next(i for i, line in enumerate(lines) if line.split()[:2] == ["problem", "engine"])
    assert "cannot reach the Docker engine at unix:///nonexistent" in lines[engine]
    assert "fix: start the engine: `systemctl start docker`" in lines[engine + 1]
    for check in ("cache", "disk", "memory", "cpus"):  # what does not need the engine is still checked
        assert any(line.split()[1:2] == [check] for line in lines if line.split()[:1] in (["ok"], ["warning"])), check
    as_json = run_cli("doctor", "--json", env=dict(NO_ENGINE, NUMERAI_SANDBOX_CACHE=str(tmp_path / "cache")))
    assert as_json.code == 1
    report = json.loads(as_json.stdout)
    assert report["exit_code"] == 1 and report["problems"] >= 1
    assert findings(as_json)["engine"][0]["level"] == "problem"
    assert {"cache", "disk", "memory", "cpus", "gvisor", "image 3.11", "cache 3.11"} <= set(findings(as_json))


def test_a_missing_image_is_named_with_the_exact_commands(client, own_namespace, tmp_path):
    """An own, empty cache and an own, empty namespace: the image is missing, whatever this engine holds,
    and can be neither found nor built."""
    missing = "3.10"
    result = run_cli("doctor", "--json", "--python", missing, env={"NUMERAI_SANDBOX_CACHE": str(tmp_path / "cache")})
    assert result.code == 1, result.stderr
    image = findings(result)[f"image {missing}"][0]
    assert image["level"] == "problem"
    assert "the cache cannot build it" in image["summary"]
    assert image["fix"] == (f"`numerai-sandbox images fetch --python {missing}` (online, once), then "
                            f"`numerai-sandbox images build --python {missing}`")
    cache = findings(result)[f"cache {missing}"][0]
    assert cache["level"] == "warning" and f"images fetch --python {missing}" in cache["fix"]
    text = run_cli("doctor", "--python", missing, env={"NUMERAI_SANDBOX_CACHE": str(tmp_path / "cache")})
    assert text.code == 1
    assert f"fix: `numerai-sandbox images fetch --python {missing}` (online, once)" in text.stdout
    assert text.stdout.splitlines()[-1].startswith(tuple(f"{n} problem" for n in range(1, 30)))


def test_a_healthy_engine_is_described(client):
    result = run_cli("doctor", "--json")
    engine = findings(result)["engine"][0]
    assert engine["level"] == "ok"
    assert engine["details"]["version"] and engine["details"]["storage_driver"]
    assert engine["details"]["cgroup_version"] in ("1", "2")


def test_a_cache_that_is_not_a_directory_is_a_problem_not_a_traceback(tmp_path):
    not_a_directory = tmp_path / "file"
    not_a_directory.write_text("")
    result = run_cli("doctor", "--json", env=dict(NO_ENGINE, NUMERAI_SANDBOX_CACHE=str(not_a_directory)))
    assert result.code == 1 and "Traceback" not in result.stderr
    cache = findings(result)["cache"][0]
    assert cache["level"] == "problem" and "is not a directory" in cache["summary"]
    assert "NUMERAI_SANDBOX_CACHE" in cache["fix"]


# ---------------------------------------------------------------- levels, from an engine's answers

def engine(**info) -> doctor.Engine:
    return doctor.Engine(where=doctor.LOCAL_ENGINE, client=object(), info=info)


def test_limits_the_engine_cannot_enforce():
    assert doctor.limit_findings(engine(MemoryLimit=True, SwapLimit=True, CpuCfsQuota=True, PidsLimit=True))[0].level \
        == doctor.OK
    no_memory = doctor.limit_findings(engine(MemoryLimit=False, SwapLimit=True, CpuCfsQuota=True, PidsLimit=True))
    assert [f.level for f in no_memory] == [doctor.PROBLEM] and "cgroup_enable=memory" in no_memory[0].fix
    no_quota = doctor.limit_findings(engine(MemoryLimit=True, SwapLimit=True, CpuCfsQuota=False, PidsLimit=True))
    assert [f.level for f in no_quota] == [doctor.WARNING]


def test_memory_and_cpus_against_the_default_limits():
    small = doctor.machine_findings(engine(MemTotal=2 * 1024**3, NCPU=1), Limits())
    assert [(f.check, f.level) for f in small] == [("memory", doctor.PROBLEM), ("cpus", doctor.WARNING)]
    assert "host_resources" in small[0].summary
    large = doctor.machine_findings(engine(MemTotal=64 * 1024**3, NCPU=8), Limits(memory_bytes=1024**3))
    assert large[1].level == doctor.OK and large[0].level in (doctor.OK, doctor.WARNING)


def test_gvisor_registration_and_its_fix():
    missing = doctor.gvisor_finding(engine(Runtimes={"runc": {"path": "runc"}}))
    assert missing.level == doctor.WARNING
    assert "`make gvisor`" in missing.fix and "Debian's runsc" in missing.fix and "SIGHUP" in missing.fix
    present = doctor.gvisor_finding(engine(Runtimes={"runc": {"path": "runc"}, "runsc": {"path": "/bin/sh"}}))
    assert present.level == doctor.OK
    unknown = doctor.gvisor_finding(doctor.Engine(where=doctor.LOCAL_ENGINE, error="refused"))
    assert unknown.level == doctor.WARNING and "unreachable" in unknown.summary


def test_a_remote_engine_is_noted_and_a_refusing_one_gets_its_fix():
    remote = doctor.engine_findings(doctor.Engine(where="tcp://build-box:2376", client=object(),
                                                  info={"Architecture": "x86_64"}, version={"Version": "27.1"}))
    assert [f.level for f in remote] == [doctor.OK, doctor.WARNING] and "remote engine" in remote[1].summary
    refused = doctor.engine_findings(doctor.Engine(where=doctor.LOCAL_ENGINE, error="cannot reach the Docker engine "
                                                   "at unix:///var/run/docker.sock (permission denied)"))
    assert refused[0].level == doctor.PROBLEM and "docker group" in refused[0].fix


def test_the_exit_code_follows_problems_only():
    warning = doctor.Finding("x", doctor.WARNING, "w", "fix")
    assert doctor.Checkup([warning]).exit_code == 0
    assert doctor.Checkup([warning, doctor.Finding("y", doctor.PROBLEM, "p", "fix")]).exit_code == 1
