"""Hardened defaults, interruption, leftovers and concurrency, against the real engine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import LABEL, ROOT, our_containers, run_cli


def probe(models, *args):
    report = run_cli("run", models["probe_sandbox"], "--json", *args).report
    assert report["status"] == "Success", report["message"]
    facts = {}
    for line in report["logs_tail"].splitlines():
        if line.startswith("PROBE "):
            _, key, value = line.split(" ", 2)
            facts[key] = json.loads(value)
    return report, facts


def test_hardened_defaults(models, isolation):
    report, facts = probe(models, "--isolation", isolation)
    assert report["limits"]["isolation"] == isolation
    assert_hardened(report, facts, isolation)


def assert_hardened(report, facts, isolation="runc"):
    """The isolation every sandbox has, cold or pre-started, under runc or gVisor."""
    assert facts["uid"] != 0 and facts["gid"] != 0  # a non-root user
    # A read-only root filesystem: even its world-writable /var/tmp refuses (gVisor checks the
    # permission before the read-only flag, so / itself answers "Permission denied" there).
    assert facts["write_var_tmp"] == "Read-only file system"
    assert facts["write_root"] in (("Read-only file system",) if isolation == "runc"
                                   else ("Read-only file system", "Permission denied"))
    assert facts["write_opt"] in ("Read-only file system", "Permission denied")
    assert facts["write_input"] in ("Read-only file system", "Permission denied")
    assert facts["input_mounts"] == ["ro", "ro", "ro"]  # model, live data, benchmarks: read-only mounts
    assert facts["root_mount"] == "ro"
    if isolation == "runc":  # gVisor's /tmp is its own tmpfs, which has no setuid or device files at all
        assert "nosuid" in facts["tmp_mount"] and "nodev" in facts["tmp_mount"]
    assert facts["write_tmp"] is True and facts["tmp_bytes"] <= 1024**3  # a capped writable /tmp
    assert int(facts["cap_eff"], 16) == 0  # all capabilities dropped
    assert facts["no_new_privs"] == "1"
    assert facts["interfaces"] == ["lo"]  # no network but loopback
    assert any(refusal in facts["connect"] for refusal in ("Network is unreachable", "No route to host"))
    assert facts["nofile"] == [4096, 4096]
    assert facts["visible_cpus"] == min(1, os.cpu_count())  # thread pools see Numerai's 1 CPU
    # The model meets gVisor's kernel under gvisor, the host's under runc.
    assert (facts["kernel"] == os.uname().release) == (isolation == "runc"), facts["kernel"]
    if isolation == "gvisor":
        # gVisor shows no cgroup files inside; its kernel reports the limit as the memory there is.
        # (The pids limit still holds on the host: the fork-bomb case of the corpus runs under gVisor.)
        assert facts["mem_total"] == 4 * 1024**3
    else:
        assert facts.get("pids_max", facts.get("pids_max_v2")) == "512"
        limit = facts.get("memory_limit") or facts.get("memory_max_v2")
        assert int(limit) == 4 * 1024**3
        if "memsw_limit" in facts:  # swap off: memory+swap == memory
            assert int(facts["memsw_limit"]) == 4 * 1024**3
        if "cpu_quota" in facts:
            assert int(facts["cpu_quota"]) / int(facts["cpu_period"]) == 1.0
    assert report["limits"]["swap_bytes"] == 0 and report["limits"]["network"] == "none"


def test_limits_can_be_raised(models, isolation):
    _, facts = probe(models, "--memory", "6g", "--cpus", "2", "--isolation", isolation)
    assert int(facts.get("memory_limit") or facts.get("memory_max_v2") or facts["mem_total"]) == 6 * 1024**3
    assert facts["visible_cpus"] == min(2, os.cpu_count())
    if "cpu_quota" in facts:
        assert int(facts["cpu_quota"]) / int(facts["cpu_period"]) == 2.0


def _start(models, name, *args, preexec_fn=None):
    return subprocess.Popen([sys.executable, "-m", "runner", "run", str(models[name]), "--json", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                            preexec_fn=preexec_fn)


def _stop(proc):
    """A runner a failed test left going is stopped the way a user would (SIGTERM: it cleans up)."""
    if proc.poll() is None:
        proc.terminate()
        proc.communicate(timeout=60)


def _ignore_sigint():
    """What a shell does to a background job (`cmd &` without job control)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _wait_for_container(client, proc, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        mine = [c for c in our_containers(client)
                if c["Labels"].get(f"{LABEL}.owner", "").split("/")[2:3] == [str(proc.pid)]]
        if mine and mine[0]["State"] == "running":
            time.sleep(2)  # let the harness start predicting
            return mine[0]
        time.sleep(0.2)
    raise AssertionError("the run's container never started")


@pytest.mark.parametrize("signum, preexec_fn", [(signal.SIGINT, None), (signal.SIGTERM, None),
                                                (signal.SIGINT, _ignore_sigint)],
                         ids=["SIGINT", "SIGTERM", "SIGINT-started-ignored"])
def test_interrupt_is_error_and_removes_container(client, models, signum, preexec_fn, isolation):
    proc = _start(models, "sleep_forever", "--isolation", isolation, preexec_fn=preexec_fn)
    try:
        container = _wait_for_container(client, proc)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        _stop(proc)
    report = json.loads(out)
    assert proc.returncode == 3 and (report["status"], report["reason"]) == ("Error", "interrupted")
    assert "Traceback" not in err
    assert not client.api.containers(all=True, filters={"id": container["Id"]})


def test_sigkill_of_runner_then_any_command_leaves_nothing(client, models, isolation):
    proc = _start(models, "spawn_then_sleep", "--isolation", isolation)
    try:
        container = _wait_for_container(client, proc)
    except BaseException:
        _stop(proc)
        raise
    proc.kill()
    proc.wait(timeout=10)
    # The harness notices its runner is gone and stops at once (the container exits; gVisor is slower
    # to tear a sandbox down on a busy machine)...
    deadline = time.monotonic() + (15 if isolation == "runc" else 40)
    while time.monotonic() < deadline:
        state = client.api.inspect_container(container["Id"])["State"]
        if not state["Running"]:
            break
        time.sleep(0.3)
    assert not state["Running"], "the model kept running after its runner was killed"
    # ...and the next start of any command sweeps the container away.
    assert run_cli("images", "list").code == 0
    assert not client.api.containers(all=True, filters={"id": container["Id"]})


EXPECTED = {"good_1arg": ("Success", None), "good_2arg": ("Success", None), "nan_output": ("Failed", "invalid_output"),
            "raises": ("Failed", "model_exception"), "returns_none": ("Failed", "invalid_output"),
            "truncated": ("Failed", "invalid_pickle"), "three_args": ("Failed", "bad_signature"),
            "constant": ("Failed", "invalid_output")}


def test_eight_concurrent_runs_match_sequential_verdicts(client, models):
    def one(name):
        report = run_cli("run", models[name], "--json").report
        return name, (report["status"], report["reason"]), report["container"].get("name")

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(one, EXPECTED))
    assert {name: verdict for name, verdict, _ in results} == EXPECTED
    names = [container for _, _, container in results if container]
    assert len(set(names)) == len(names)  # unique containers


# ---------------------------------------------------------------- gVisor: set up once, asked for by name

class _EngineWithout:
    """An engine that answers `info` with only runc registered (what a machine without `make gvisor` has)."""

    def info(self):
        return {"Runtimes": {"runc": {"path": "runc"}}}


def test_gvisor_without_runsc_is_error_with_the_exact_fix():
    from runner.verdict.reasons import REASONS
    from runner.sandbox.backend import IsolationUnavailable
    from runner.sandbox.docker import DockerBackend

    backend = DockerBackend(_EngineWithout())
    assert backend.runtime("runc") is None  # the engine's default: nothing to check
    with pytest.raises(IsolationUnavailable) as caught:
        backend.runtime("gvisor")
    message = str(caught.value)
    assert "make gvisor" in message and "/etc/docker/daemon.json" in message and "kill -HUP" in message
    assert REASONS["isolation_unavailable"].blame.value == "platform"  # Error, never the model's fault


def test_registering_runsc_again_changes_nothing(gvisor):
    """`make gvisor` is idempotent: with runsc registered it neither edits the configuration nor signals dockerd."""
    config = Path("/etc/docker/daemon.json")
    before = config.read_bytes() if config.exists() else None
    result = subprocess.run(["bash", str(ROOT / "scripts" / "register-runsc.sh")], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "SIGHUP" not in result.stderr
    assert (config.read_bytes() if config.exists() else None) == before
