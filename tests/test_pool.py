"""Pre-started sandboxes (runner/sandbox/pool.py): ready before the pickle, one model each, then gone;
the same verdicts and the same isolation as a cold sandbox; never served to another user, nor to
another namespace (the user's own, seen from a test run); swept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import LABEL, ROOT, borrow_standard_environment, remove_namespace, run_cli
from runner.support.paths import NAMESPACE_ENV, NAMESPACE_LABEL, namespace
from test_isolation import assert_hardened

WARM = {"NUMERAI_SANDBOX_WARM": "1"}


def prestarted(client, state: str | None = "running", space: str | None = None) -> list[dict]:
    """The test's own pre-started sandboxes (its pool: see clean_pool) in this test run's namespace (or `space`),
    never another's on the shared engine."""
    from runner.sandbox import pool

    filters = {"label": [f"{LABEL}.kind=warm", f"{LABEL}.uid={os.getuid()}", f"{LABEL}.pool={pool.scope()}",
                         f"{NAMESPACE_LABEL}={space or namespace()}"]}
    if state:
        filters["status"] = state
    return client.api.containers(all=state is None, filters=filters)


@pytest.fixture
def clean_pool(client, own_cache, monkeypatch):
    """A pool of the test's own: its cache directory (so its sandboxes carry their own pool label), and the
    bound and policy of pre-starting at their defaults; only its sandboxes are removed afterwards."""
    from runner.sandbox import pool

    monkeypatch.setenv("NUMERAI_SANDBOX_CACHE", str(own_cache))
    for name in ("NUMERAI_SANDBOX_WARM_MAX", "CI"):
        monkeypatch.delenv(name, raising=False)
    yield
    pool.sweep(client, everything=True)
    assert not prestarted(client, None)


def wait_for(condition, seconds: float = 60) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.5)
    return False


def test_a_run_leaves_one_and_the_next_run_of_the_same_model_takes_it(client, models, clean_pool):
    cold = run_cli("run", models["good_2arg"], "--json", env=WARM).report
    assert cold["status"] == "Success" and cold["container"]["prestarted"] is False
    assert any("left a pre-started sandbox" in note for note in cold["notes"])
    left = prestarted(client)
    assert len(left) == 1
    labels = left[0]["Labels"]
    assert labels[f"{LABEL}.uid"] == str(os.getuid()) and f"{LABEL}.owner" not in labels
    warm = run_cli("run", models["good_2arg"], "--json", env=WARM).report
    assert warm["container"]["prestarted"] is True
    for field in ("status", "reason", "n_predictions", "python"):
        assert warm[field] == cold[field], field
    assert [(c["rule"], c["passed"]) for c in warm["checks"]] == [(c["rule"], c["passed"]) for c in cold["checks"]]
    now = prestarted(client)
    assert len(now) == 1 and now[0]["Id"] != left[0]["Id"]  # the one it used is gone; it left a fresh one
    assert not client.api.containers(all=True, filters={"name": warm["container"]["name"]})


def test_failed_verdicts_are_the_same_in_a_prestarted_sandbox(client, models, clean_pool):
    for name in ("nan_output", "raises", "constant"):
        run_cli("run", models["good_1arg"], "--json", env=WARM)  # leaves one for a 1-argument pandas model
        report = run_cli("run", models[name], "--json", env=WARM).report
        alone = run_cli("run", models[name], "--json").report
        assert report["container"]["prestarted"] is True, name
        assert (report["status"], report["reason"], report["subcode"]) == (alone["status"], alone["reason"],
                                                                           alone["subcode"]), name
        assert report["numerai_log"] == alone["numerai_log"], name  # the same log line, whatever the path


def test_an_out_of_memory_first_seen_in_a_prestarted_sandbox_is_confirmed_cold(client, models, clean_pool):
    """A pre-started sandbox read the live data before the pickle loaded (unlike Numerai): running out of memory
    there is reported only once a cold run, in Numerai's order, ended the same way; the report says so."""
    run_cli("run", models["good_1arg"], "--json", env=WARM)
    result = run_cli("run", models["allocate_6gb"], "--json", env=WARM)
    report = result.report
    assert (report["status"], report["reason"]) == ("Failed", "out_of_memory"), report["message"]
    container = report["container"]
    assert container["prestarted"] is False and container["confirmed_cold"] is True  # the verdict is the cold run's
    first = container["prestarted_first"]
    assert first["reason"] == "out_of_memory" and first["phase"] == "predicting" and first["name"] != container["name"]
    assert any("first happened in a pre-started sandbox" in n and "a cold run in Numerai's order ended the same way"
               in n for n in report["notes"])
    assert "confirming with a cold run in Numerai's order" in result.stderr
    phases = [p["phase"] for p in report["phase_times"]]
    assert phases[:4] == ["starting", "loading", "reading_data", "predicting"]  # the cold run's own, Numerai's order
    assert report["numerai_log"] == "Predicting on 6720 rows of live features"


def test_the_cold_confirmation_is_asked_only_for_memory_and_crashes_while_loading():
    """Which endings of a pre-started run a cold one must confirm (the data read ahead can cause them)."""
    import json
    import signal as signals

    from runner.sandbox.protocol import FrameParser, read_frames
    from runner.sandbox.backend import Outcome
    from runner.run.prestart import doubt_of_prestarted

    def parser(phase, error=None):
        found = FrameParser(max_predictions=1 << 20)
        frames = [("phase", {"phase": phase})] + ([("error", error)] if error else [])
        for kind, body in frames:
            payload = json.dumps(body).encode()
            found.feed(f"NSBX1 {kind} {len(payload)}\n".encode() + payload)
        return read_frames(found)

    memory_error = {"phase": "loading", "kind": "load_error", "exception": {"type": "MemoryError",
                                                                            "mro": ["builtins.MemoryError"]}}
    killed = 128 + signals.SIGKILL
    segv = 128 + signals.SIGSEGV
    assert doubt_of_prestarted(Outcome("c", exit_code=killed, oom_killed=True, prestarted=True),
                               parser("predicting"))["reason"] == "out_of_memory"
    assert doubt_of_prestarted(Outcome("c", exit_code=0, prestarted=True),
                               parser("loading", memory_error))["reason"] == "out_of_memory"
    assert doubt_of_prestarted(Outcome("c", exit_code=segv, prestarted=True), parser("loading"))["reason"] == "crashed"
    assert doubt_of_prestarted(Outcome("c", exit_code=segv, prestarted=True), parser("predicting")) is None
    assert doubt_of_prestarted(Outcome("c", exit_code=killed, oom_killed=True), parser("predicting")) is None  # cold
    assert doubt_of_prestarted(Outcome("c", exit_code=killed, timed_out=True, prestarted=True),
                               parser("loading")) is None


def test_the_hardening_probes_pass_in_a_prestarted_sandbox(client, models, clean_pool):
    from test_isolation import probe

    run_cli("run", models["probe_sandbox"], "--json", env=WARM)
    report, facts = probe(models)  # conftest turns pre-starting off by default...
    assert report["container"]["prestarted"] is False
    report = run_cli("run", models["probe_sandbox"], "--json", env=WARM).report  # ...this one takes it
    assert report["container"]["prestarted"] is True
    facts = {}
    import json

    for line in report["logs_tail"].splitlines():
        if line.startswith("PROBE "):
            _, key, value = line.split(" ", 2)
            facts[key] = json.loads(value)
    assert_hardened(report, facts)


def test_never_served_to_another_user(client, models, clean_pool, monkeypatch):
    from runner.sandbox import pool
    from runner.sandbox.backend import ContainerSpec

    run_cli("run", models["good_1arg"], "--json", env=WARM)
    (left,) = prestarted(client)
    key = left["Labels"][f"{LABEL}.key"]
    spec = ContainerSpec(image="x", command=[], mounts=[], limits=None, name="x", user="x")
    with monkeypatch.context() as patch:
        patch.setattr(pool, "key", lambda spec: key)  # a spec this sandbox was made for...
        patch.setattr(os, "getuid", lambda: os.geteuid() + 4242)  # ...asked for by another user
        assert pool.claim(client, spec, ()) is None
    assert prestarted(client)[0]["Id"] == left["Id"]  # still waiting, untouched


def test_an_idle_one_ends_itself_and_is_swept(client, models, clean_pool):
    run_cli("run", models["good_1arg"], "--json", env=dict(WARM, NUMERAI_SANDBOX_WARM_IDLE="3"))
    assert len(prestarted(client)) == 1
    assert wait_for(lambda: not prestarted(client), 60)  # its harness gave up after 3 s idle
    run_cli("images", "list")  # any command that reaches the engine sweeps
    assert wait_for(lambda: not prestarted(client, None), 30)


def test_clean_removes_them(client, models, clean_pool):
    run_cli("run", models["good_1arg"], "--json", env=WARM)
    assert prestarted(client)
    result = run_cli("clean")
    assert result.code == 0 and "numerai-sandbox-warm-" in result.stdout
    assert not prestarted(client, None)


def test_a_killed_claimer_leaves_nothing(client, models, clean_pool):
    from runner.sandbox import pool

    run_cli("run", models["good_1arg"], "--json", env=WARM)
    proc = subprocess.Popen([sys.executable, "-m", "runner", "run", str(models["sleep_forever"]), "--json"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT,
                            env=dict(os.environ, **WARM))
    try:
        mine = [f"{LABEL}.kind=warm", f"{LABEL}.pool={pool.scope()}", f"{NAMESPACE_LABEL}={namespace()}"]
        claimed = lambda: client.api.containers(filters={"label": mine, "name": "numerai-sandbox-run-w"})
        assert wait_for(claimed, 60)
        time.sleep(2)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    run_cli("images", "list")  # the next command that reaches the engine removes what the dead run claimed
    assert wait_for(lambda: not client.api.containers(all=True, filters={"label": mine, "name": "numerai-sandbox-run-w"}),
                    60)


def test_another_namespaces_are_neither_taken_counted_nor_cleaned(client, models, clean_pool, monkeypatch):
    """A user's idle sandbox (here: one of another namespace) serves none of this namespace's runs, and this
    namespace's `clean` leaves it; its own namespace's `clean` removes it."""
    elsewhere = {**WARM, NAMESPACE_ENV: f"{namespace()}-user"}
    with monkeypatch.context() as patch:  # that namespace's image: its own harness layer on the same environment
        patch.setenv(NAMESPACE_ENV, elsewhere[NAMESPACE_ENV])
        borrow_standard_environment(client, "3.11")
    try:
        run_cli("run", models["good_1arg"], "--json", env=elsewhere)
        (theirs,) = prestarted(client, space=elsewhere[NAMESPACE_ENV])
        assert not prestarted(client)
        report = run_cli("run", models["good_1arg"], "--json", env=WARM).report
        assert report["container"]["prestarted"] is False  # the same model, image and limits: not served
        assert run_cli("clean").code == 0 and not prestarted(client, None)
        assert [c["Id"] for c in prestarted(client, space=elsewhere[NAMESPACE_ENV])] == [theirs["Id"]]
        assert run_cli("clean", env=elsewhere).code == 0
        assert not prestarted(client, None, space=elsewhere[NAMESPACE_ENV])
    finally:
        for info in prestarted(client, None, elsewhere[NAMESPACE_ENV]):
            client.api.remove_container(info["Id"], force=True)
        remove_namespace(client, elsewhere[NAMESPACE_ENV])


def test_a_sandbox_is_usable_when_it_preloaded_part_of_what_the_pickle_needs_and_nothing_else():
    from runner.sandbox.pool import usable

    assert usable("", ("lightgbm", "numpy"))
    assert usable("numpy", ("lightgbm", "numpy"))
    assert usable("lightgbm,numpy", ("lightgbm", "numpy"))
    assert not usable("lightgbm,numpy,torch", ("lightgbm", "numpy"))  # torch's memory would be charged to this model
    assert not usable("numpy", ())
