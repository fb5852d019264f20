"""What a person sees while a model runs and when it ends: elapsed time and memory against the limits,
headroom on the Success line, a warning near a limit, and relaxed limits never passing silently."""

from __future__ import annotations

import io
import time

from conftest import run_cli


def test_live_progress_shows_time_and_memory_against_the_limits():
    from runner.support.console import Console
    from runner.sandbox.protocol import FrameParser
    from runner.run.watch import LiveProgress
    from runner.sandbox.backend import Limits, MemorySamples

    out = io.StringIO()  # not a terminal: plain periodic lines
    parser = FrameParser(1000)
    parser.feed(b'NSBX1 phase 23\n{"phase": "predicting"}')
    live = LiveProgress(Console(stream=out), Limits(memory_bytes=1024**3, timeout_seconds=60), parser, interval=0.05)
    samples = MemorySamples()
    samples.add(0.2, 256 * 1024**2)
    live.samples = samples
    live.start()
    time.sleep(0.3)
    live.stop()
    live.join()
    line = out.getvalue().splitlines()[0]
    assert "predicting..." in line and "s of 60s" in line and "memory 256 MiB of 1 GiB (25%)" in line


def test_headroom_and_warnings_on_the_verdict_line():
    from runner.verdict.lifecycle import Status
    from runner.sandbox.backend import Limits
    from runner.verdict.report import Report, summary_lines

    report = Report(Status.SUCCESS, None, "", limits=Limits(memory_bytes=1024**3, timeout_seconds=100).to_dict())
    report.peak_memory_bytes = int(0.9 * 1024**3)
    report.durations = {"container_seconds": 20.0, "total": 21.0}
    lines = summary_lines(report)
    assert "peak memory 922 MiB of 1 GiB (90%)" in lines[0] and "20.0s of the 100s limit" in lines[0]
    assert any("warning: peak memory reached 90%" in line for line in lines)
    assert not any("warning: the run took" in line for line in lines)


def test_relaxed_limits_are_said_on_the_verdict_line_and_in_the_report(models):
    result = run_cli("run", models["good_1arg"], "--cpus", "2", "--json")
    report = result.report
    assert report["status"] == "Success"
    assert report["limits"]["numerai"] is False and report["limits"]["relaxed"] == ["2 CPUs"]
    assert "with limits above Numerai's (2 CPUs): not Numerai's verdict" in result.stderr
    plain = run_cli("run", models["good_1arg"], "--json").report
    assert plain["limits"]["numerai"] is True and plain["limits"]["relaxed"] == []


def test_quiet_prints_only_the_verdict(models):
    result = run_cli("run", models["good_1arg"], "--quiet")
    assert result.code == 0
    assert result.stdout.strip().startswith("Success:") and "Pending" not in result.stdout
