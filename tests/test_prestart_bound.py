"""Pre-started sandboxes left by `run` are bounded, visible and gone when the work is done
(runner/sandbox/idle.py decides, runner/sandbox/pool.py does it).

The engine is shared: every Docker test here works in a pool of its own (a cache directory of its own,
so its sandboxes carry their own `pool` label), counts only those, and removes only those.
"""

from __future__ import annotations

import json
import os
import pty
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import LABEL, ROOT, CliResult, image_for, make_pickles, run_cli

GIB, MIB = 1024**3, 1024**2
UNSET = ("NUMERAI_SANDBOX_WARM", "NUMERAI_SANDBOX_WARM_MAX", "CI")


# ---------------------------------------------------------------- the decisions, on values

def sandbox(name: str, group: str, made: float, memory: int = 200 * MIB, estimate: int = 0):
    from runner.sandbox.idle import Idle

    return Idle(id=name, name=name, group=group, made=made, idle_until=made + 600, memory_bytes=memory,
                estimate=estimate)


def test_the_bound_comes_from_the_environment_and_the_machine():
    from runner.sandbox.idle import Bound, bound

    assert bound(24 * GIB, {}) == Bound(1, GIB)  # min(1 GiB, 10 % of 24 GiB)
    assert bound(4 * GIB, {}).memory_bytes == int(0.4 * GIB)  # a small machine: 10 % of it
    assert bound(24 * GIB, {"NUMERAI_SANDBOX_WARM_MAX": "3"}).per_image == 3
    assert bound(24 * GIB, {"NUMERAI_SANDBOX_WARM_MAX": "0"}).per_image == 0
    for bad in ("-1", "two", "1.5"):
        with pytest.raises(ValueError, match="NUMERAI_SANDBOX_WARM_MAX"):
            bound(24 * GIB, {"NUMERAI_SANDBOX_WARM_MAX": bad})


def test_past_the_bound_the_least_recently_made_goes_first():
    from runner.sandbox.idle import Bound, evictions, over_bound, to_free

    a, b, c = sandbox("a", "py311", 1), sandbox("b", "py312", 2), sandbox("c", "py311", 3)
    # One per image: a new py3.11 sandbox replaces both older py3.11 ones, oldest first; py3.12's stays.
    assert evictions([c, b, a], Bound(1, GIB), "py311", 200 * MIB) == [a, c]
    assert evictions([c, b, a], Bound(2, GIB), "py311", 200 * MIB) == [a]
    assert evictions([c, b, a], Bound(3, GIB), "py311", 200 * MIB) == []
    # The memory in all: after the count, the least recently made of any image until the new one fits.
    assert evictions([c, b, a], Bound(3, 500 * MIB), "py312", 150 * MIB) == [a, b]
    # A sandbox still getting ready counts as what it was expected to hold.
    young = sandbox("d", "py312", 4, memory=10 * MIB, estimate=400 * MIB)
    assert evictions([young], Bound(3, 500 * MIB), "py311", 200 * MIB) == [young]
    # One that cannot fit at all is not made (and nothing is removed for it).
    assert evictions([a], Bound(1, 500 * MIB), "py311", 600 * MIB) is None
    assert evictions([a], Bound(0, GIB), "py311", 100 * MIB) is None
    # A bound lowered since: the oldest beyond it go; 0 removes them all.
    assert over_bound([c, b, a], Bound(1, GIB)) == [a]
    assert over_bound([c, b, a], Bound(0, GIB)) == [a, b, c]
    assert over_bound([c, b, a], Bound(1, 350 * MIB)) == [a, b]
    # A run that needs memory: the least recently made go until it is freed.
    assert to_free([c, b, a], 300 * MIB) == [a, b]
    assert to_free([c, b, a], 0) == []


def test_run_leaves_one_only_where_a_next_run_is_likely():
    from runner.sandbox.idle import should_leave

    def leaves(mode="auto", per_image=1, ci=False, terminal=True, recent=True) -> bool:
        return should_leave(mode, per_image, ci, terminal, recent).leave

    assert leaves()
    assert not leaves(recent=False)  # the first run in an image: maybe the only one
    assert not leaves(ci=True) and not leaves(terminal=False)
    assert leaves(mode="on", ci=True, terminal=False, recent=False)  # NUMERAI_SANDBOX_WARM=1 opts in
    assert not leaves(mode="off") and not leaves(mode="on", per_image=0)


def test_the_settings_are_checked():
    from runner.sandbox.idle import in_ci, setting

    assert setting({}) == "auto" and setting({"NUMERAI_SANDBOX_WARM": "1"}) == "on"
    assert setting({"NUMERAI_SANDBOX_WARM": "0"}) == "off" and setting({"NUMERAI_SANDBOX_WARM": "false"}) == "off"
    with pytest.raises(ValueError, match="NUMERAI_SANDBOX_WARM"):
        setting({"NUMERAI_SANDBOX_WARM": "sometimes"})
    assert in_ci({"CI": "true"}) and in_ci({"CI": "1"}) and not in_ci({}) and not in_ci({"CI": "false"})


def test_a_bad_setting_is_a_usage_error(host_pickle):
    for env in ({"NUMERAI_SANDBOX_WARM_MAX": "two"}, {"NUMERAI_SANDBOX_WARM": "sometimes"}):
        for command in (["run", host_pickle], ["check", host_pickle]):
            result = run_cli(*command, env=env)
            assert result.code == 2 and next(iter(env)) in result.stderr, (command, env, result.stderr)


def test_recent_runs_are_remembered_for_the_idle_window(tmp_path, monkeypatch):
    from runner.sandbox.idle import ran_recently

    monkeypatch.setenv("NUMERAI_SANDBOX_CACHE", str(tmp_path))
    record = tmp_path / "warm" / "recent.json"
    assert not ran_recently(record, "py311", 600, now=1000)
    assert ran_recently(record, "py311", 600, now=1100)
    assert not ran_recently(record, "py312", 600, now=1100)  # another image
    assert not ran_recently(record, "py311", 600, now=1800)  # the window passed
    record.write_text("not json")
    assert not ran_recently(record, "py311", 600, now=1900)  # a damaged record is a fresh start


def test_the_estimate_is_what_the_run_held_when_its_model_began_predicting():
    from runner.sandbox.idle import FALLBACK_ESTIMATE, estimate

    samples = [[0.2, 40 * MIB], [0.6, 120 * MIB], [1.0, 170 * MIB], [1.4, 900 * MIB]]
    phases = [{"phase": "loading", "start": 0.5, "end": 0.9}, {"phase": "predicting", "start": 0.9, "end": 1.5}]
    assert estimate(samples, phases, 900 * MIB) == 170 * MIB  # up to the first sample after it began
    late = [[0.2, 40 * MIB], [1.3, 300 * MIB]]  # a busy host: no sample between 0.2 s and 1.3 s
    assert estimate(late, phases, 900 * MIB) == 300 * MIB  # never less than the state when predicting began
    assert estimate(samples[:2], phases, 900 * MIB) == 900 * MIB  # no sample after it: the peak
    assert estimate(samples, [], 900 * MIB) == 900 * MIB  # never predicted: its peak
    assert estimate([], [], None) == FALLBACK_ESTIMATE


# ---------------------------------------------------------------- on the engine, in a pool of the test's own

def in_pool(client, scope: str, running: bool = True) -> list[dict]:
    filters = {"label": [f"{LABEL}.kind=warm", f"{LABEL}.pool={scope}"]}
    if running:
        filters["status"] = "running"
    return client.api.containers(all=not running, filters=filters)


@pytest.fixture
def own_pool(client, own_cache, monkeypatch):
    """A pool of this test's own (its cache directory); its sandboxes, and only those, are removed after."""
    from runner.sandbox import pool

    monkeypatch.setenv("NUMERAI_SANDBOX_CACHE", str(own_cache))
    for name in UNSET:
        monkeypatch.delenv(name, raising=False)
    scope = pool.scope()
    yield scope
    pool.sweep(client, everything=True)
    assert not in_pool(client, scope, running=False)


def run_on_terminal(*args: str, env: dict | None = None, timeout: float = 300) -> CliResult:
    """The command line with a terminal for its stdin (a pseudo-terminal), as a person runs it; its stdout
    and stderr are captured."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.run([sys.executable, "-m", "runner", *map(str, args)], stdin=slave, capture_output=True,
                              text=True, env=dict(os.environ, **(env or {})), timeout=timeout, cwd=ROOT)
    finally:
        os.close(slave)
        os.close(master)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


def left_note(report: dict) -> str | None:
    return next((n for n in report["notes"] if n.startswith("left a pre-started sandbox")), None)


def test_on_a_terminal_the_second_run_in_an_image_leaves_one_and_the_third_takes_it(client, models, own_pool):
    first = run_on_terminal("run", models["good_1arg"], "--json").report
    assert first["status"] == "Success" and left_note(first) is None and not in_pool(client, own_pool)
    second = run_on_terminal("run", models["good_1arg"], "--json").report
    note = left_note(second)
    assert note and note == second["notes"][-1]  # the run's last note
    assert "numerai-sandbox clean" in note and "NUMERAI_SANDBOX_WARM=0" in note
    (left,) = in_pool(client, own_pool)
    assert left["Names"][0].lstrip("/") in note
    third = run_on_terminal("run", models["good_1arg"], "--json").report
    assert third["container"]["prestarted"] is True and left_note(third)
    # In CI, or with no terminal, a run takes the one waiting and leaves none.
    ci = run_on_terminal("run", models["good_1arg"], "--json", env={"CI": "true"}).report
    assert ci["container"]["prestarted"] is True and left_note(ci) is None and not in_pool(client, own_pool)
    for _ in range(2):
        assert left_note(run_on_terminal("run", models["good_1arg"], "--json", env={"CI": "true"}).report) is None
        assert not in_pool(client, own_pool)
    assert left_note(run_cli("run", models["good_1arg"], "--json").report) is None  # no terminal
    assert not in_pool(client, own_pool)


def test_the_bound_and_its_eviction_order_on_the_engine(client, models, own_pool):
    """Sandboxes made for other limits are other sandboxes of the same image: the bound counts them together."""
    env = {"NUMERAI_SANDBOX_WARM": "1", "NUMERAI_SANDBOX_WARM_MAX": "2"}
    names = []
    for memory in ("3g", "2500m", "2g"):
        report = run_cli("run", models["good_1arg"], "--memory", memory, "--json", env=env).report
        assert report["container"]["prestarted"] is False and left_note(report), (memory, report["notes"])
        names.append(left_note(report).split("(", 1)[1].split(",", 1)[0])
    assert "replaced " + names[0] in left_note(report)  # the least recently made went first
    assert sorted(c["Names"][0].lstrip("/") for c in in_pool(client, own_pool)) == sorted(names[1:])
    # A lower bound is applied by the next command that reaches the engine; 0 removes them all.
    run_cli("images", "list", env={"NUMERAI_SANDBOX_WARM_MAX": "1"})
    assert [c["Names"][0].lstrip("/") for c in in_pool(client, own_pool)] == [names[2]]
    run_cli("images", "list", env={"NUMERAI_SANDBOX_WARM_MAX": "0"})
    assert not in_pool(client, own_pool)


def test_runs_ending_together_keep_to_the_bound(client, models, own_pool):
    """Four runs at once, each leaving a sandbox for its own limits in the same image: they count each other's
    under the pool's lock, so one remains, never more."""
    procs = [subprocess.Popen([sys.executable, "-m", "runner", "run", str(models["good_1arg"]), "--memory", memory,
                               "--json"], cwd=ROOT, env=dict(os.environ, NUMERAI_SANDBOX_WARM="1"),
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
             for memory in ("3g", "2900m", "2800m", "2700m")]
    reports = [json.loads(proc.communicate(timeout=600)[0]) for proc in procs]
    assert all(left_note(r) for r in reports)
    assert len(in_pool(client, own_pool)) == 1


def test_gvisor_runs_are_always_cold(client, models, own_pool, gvisor):
    """runsc cannot move a running sandbox onto the run's cores (`docker update`): none is left or claimed."""
    for _ in range(2):
        report = run_cli("run", models["good_1arg"], "--isolation", "gvisor", "--json",
                         env={"NUMERAI_SANDBOX_WARM": "1"}).report
        assert report["status"] == "Success" and report["container"]["prestarted"] is False
        assert left_note(report) is None and not in_pool(client, own_pool, running=False)


def test_doctor_lists_them_with_their_memory_and_the_bound(client, models, own_pool):
    run_cli("run", models["good_1arg"], "--json", env={"NUMERAI_SANDBOX_WARM": "1"})
    (left,) = in_pool(client, own_pool)
    deadline = time.monotonic() + 30
    while True:  # until its harness has pandas and the data in memory
        found = json.loads(run_cli("doctor", "--json").stdout)
        (finding,) = [f for f in found["findings"] if f["check"] == "pre-started"]
        if finding["details"]["memory_bytes"] > 50 * MIB or time.monotonic() > deadline:
            break
        time.sleep(1)
    details = finding["details"]
    assert details["count"] == 1 and details["bound"]["per_image"] == 1
    assert 0 < details["bound"]["memory_bytes"] <= GIB
    (listed,) = details["idle"]
    assert listed["name"] == left["Names"][0].lstrip("/") and listed["python"] == "3.11"
    assert listed["memory_bytes"] > 50 * MIB and listed["idle_until"] > time.time()
    assert listed["name"] in finding["summary"] and "1 idle" in finding["summary"]
    text = run_cli("doctor").stdout
    assert "pre-started" in text and listed["name"] in text
    # images rm and clean --all say they would remove it; clean does.
    assert listed["name"] in run_cli("images", "rm", "--python", "3.11", "--dry-run").stdout
    assert listed["name"] in run_cli("clean", "--all", "--dry-run").stdout
    assert in_pool(client, own_pool)
    assert listed["name"] in run_cli("clean").stdout and not in_pool(client, own_pool)


def test_a_run_short_of_memory_takes_the_room_idle_ones_hold(client, models, own_pool):
    from runner.sandbox import pool

    run_cli("run", models["good_1arg"], "--json", env={"NUMERAI_SANDBOX_WARM": "1"})
    (left,) = in_pool(client, own_pool)
    assert pool.held_memory(client) > 0
    assert pool.make_room(client, 1) == [left["Names"][0].lstrip("/")]
    assert not in_pool(client, own_pool)


def test_check_leaves_nothing_behind(client, models, own_pool, tmp_path):
    batch = tmp_path / "batch"
    batch.mkdir()
    for i in range(4):
        shutil.copyfile(models["good_1arg"], batch / f"model_{i}.pkl")
    result = run_cli("check", batch, "--jobs", "1", "--json", env={"NUMERAI_SANDBOX_WARM": "1"}, timeout=600)
    reports = result.report["reports"]
    assert result.code == 0 and any(r["container"]["prestarted"] for r in reports)
    assert not in_pool(client, own_pool, running=False)
    # Interrupted while a sandbox waits for the next pickle: nothing remains either.
    shutil.copyfile(models["sleep_forever"], batch / "model_0.pkl")
    proc = subprocess.Popen([sys.executable, "-m", "runner", "check", str(batch), "--jobs", "1", "--quiet"],
                            cwd=ROOT, env=dict(os.environ, NUMERAI_SANDBOX_WARM="1"),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not in_pool(client, own_pool) and time.monotonic() < deadline:
            time.sleep(0.5)
        assert in_pool(client, own_pool), "the check started no sandbox ahead"
        time.sleep(1)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=120) == 3
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert not in_pool(client, own_pool, running=False)


@pytest.fixture(scope="session")
def many_models(client, tmp_path_factory) -> list[Path]:
    """30 distinct pickles, 15 made in the Python 3.11 image and 15 in the 3.12 one, naming different modules."""
    out = tmp_path_factory.mktemp("many")
    found = {}
    for python in ("3.11", "3.12"):
        found.update(make_pickles(client, image_for(client, python), ROOT / "tests" / "models" / "make_many.py", out,
                                  "--count", "15", "--prefix", f"py{python.replace('.', '')}_"))
    assert len(found) == 30
    return sorted(found.values())


def test_thirty_distinct_pickles_in_a_shell_loop_leave_at_most_one_per_image(client, many_models, own_pool,
                                                                               tmp_path):
    """`run` in a shell loop on a terminal (script(1) gives it one), as a person tries many pickles."""
    from runner.sandbox import pool

    if shutil.which("script") is None:
        pytest.skip("script(1) (util-linux) is not installed")
    reports = tmp_path / "reports"
    reports.mkdir()
    loop = (f"for f in {' '.join(shlex.quote(str(m)) for m in many_models)}; do "
            f"{shlex.quote(sys.executable)} -m runner run \"$f\" --json --no-history "
            f"> {shlex.quote(str(reports))}/$(basename \"$f\" .pkl).json; done")
    subprocess.run(["script", "-qec", loop, "/dev/null"], cwd=ROOT, stdin=subprocess.DEVNULL,
                   stdout=subprocess.DEVNULL, timeout=1800, check=True)
    done = [json.loads(p.read_text()) for p in sorted(reports.glob("*.json"))]
    assert len(done) == 30 and all(r["status"] == "Success" for r in done)
    assert any(r["container"]["prestarted"] for r in done)  # the loop did run warm where it could
    assert sum(left_note(r) is not None for r in done) >= 20  # a sandbox was left after most runs...
    time.sleep(5)  # ...the last ones have pandas, the data and their modules in memory by now
    waiting = pool.idle_sandboxes(client)
    assert len(waiting) == len(in_pool(client, own_pool)) <= 2
    assert len({(i.python, i.isolation) for i in waiting}) == len(waiting)  # at most one per image
    assert sum(i.memory_bytes or 0 for i in waiting) <= GIB
    # With CI set, each command leaves none behind.
    pool.sweep(client, everything=True)
    for model in many_models[::10]:
        report = run_on_terminal("run", model, "--json", "--no-history", env={"CI": "true"}).report
        assert report["status"] == "Success" and left_note(report) is None
        assert not in_pool(client, own_pool)
