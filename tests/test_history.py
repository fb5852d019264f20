"""The run history: records written whole and safely side by side, found by id, prefix or model,
pruned by age and count, and the `runs` commands a person uses on them. No Docker needed: the
reports here are made by hand (tests/test_api.py records real runs)."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone

import pytest

from conftest import ROOT, run_cli
from runner.usecases import history
from runner.usecases.inputs import parse_age
from runner.verdict.lifecycle import Status
from runner.verdict.report import Report

NOW = datetime.now(timezone.utc)


def a_report(model, status=Status.SUCCESS, reason=None, subcode=None, logs="") -> Report:
    return Report(status, reason, "what happened" if reason else "", action="what to do" if reason else None,
                  subcode=subcode, python="3.11", python_full="3.11.2", limits={"memory_bytes": 4 * 1024**3,
                                                                              "cpus": 1.0, "timeout_seconds": 600},
                  model={"path": str(model), "size_bytes": 10, "sha256": "ab" * 32},
                  durations={"total": 3.5, "phases": {"predicting": 0.25}}, peak_memory_bytes=300 * 1024**2,
                  n_predictions=6720 if reason is None else None, logs_tail=logs,
                  data={"source": "synthetic", "description": "synthetic v5-shaped live data"})


def recorded(model, ago_days: float = 0, **kwargs) -> str:
    run_id = history.record(a_report(model, **kwargs), when=NOW - timedelta(days=ago_days))
    assert run_id is not None
    return run_id


@pytest.fixture
def model(tmp_path):
    path = tmp_path / "models" / "lgbm.pkl"
    path.parent.mkdir()
    path.write_bytes(b"\x80\x05N.")
    return path


# ---------------------------------------------------------------- recording

def test_a_record_holds_the_report_and_an_index_entry(runs_dir, model, tmp_path):
    report = a_report(model, Status.FAILED, "invalid_output", "nan", logs="hello from the model")
    report.predictions_path = str(tmp_path / "p.csv")
    run_id = history.record(report, html=tmp_path / "page.html", batch="batch-1")
    assert history.RUN_ID.fullmatch(run_id) and report.history_id == run_id
    assert abs((history.id_time(run_id) - datetime.now(timezone.utc)).total_seconds()) < 120
    stored = (runs_dir / run_id / "report.json").read_text()
    assert stored == report.to_json() + "\n"  # exactly what `run --json` prints, its id included
    assert json.loads(stored)["history_id"] == run_id and json.loads(stored)["logs_tail"] == "hello from the model"
    entry = history.entry(run_id)
    assert entry["model"] == {"path": str(model), "name": "lgbm.pkl", "size_bytes": 10, "sha256": "ab" * 32}
    assert (entry["status"], entry["reason"], entry["subcode"], entry["exit_code"]) == ("Failed", "invalid_output",
                                                                                       "nan", 1)
    assert (entry["python"], entry["predict_seconds"], entry["peak_memory_bytes"]) == ("3.11", 0.25, 300 * 1024**2)
    assert entry["batch"] == "batch-1" and entry["html_path"] == str(tmp_path / "page.html")
    assert entry["predictions_path"] == str(tmp_path / "p.csv") and entry["data"]["source"] == "synthetic"
    assert sorted(p.name for p in runs_dir.iterdir()) == [run_id]  # nothing half-written left beside it


def test_ids_sort_by_time_within_a_second(runs_dir, model):
    base = NOW.replace(microsecond=0)
    offsets = [0.5, 0.0, 0.9, 0.2]
    made = {history.record(a_report(model), when=base + timedelta(seconds=o)): o for o in offsets}
    assert [made[i] for i in history.ids()] == sorted(offsets, reverse=True)


def test_a_report_reads_back_as_it_was(runs_dir, model):
    report = a_report(model, Status.FAILED, "model_exception")
    run_id = history.record(report)
    again = history.load(run_id)
    assert again.to_dict() == report.to_dict() and again.status is Status.FAILED and not again.ok
    assert "\n" not in repr(again) and "model_exception" in repr(again) and run_id in repr(again)
    assert str(again).startswith("Failed (model_exception): what happened")


def test_recording_that_fails_is_a_note_and_a_warning_never_a_changed_verdict(tmp_path, monkeypatch, model):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(history.ENV_DIR, str(blocker / "runs"))  # cannot be a directory
    report = a_report(model)
    warnings = []
    assert history.record(report, warn=warnings.append) is None
    assert report.status is Status.SUCCESS and report.history_id is None
    assert len(warnings) == 1 and "not recorded in the run history" in warnings[0] and warnings == report.notes[-1:]


def test_a_run_whose_recording_fails_keeps_its_verdict(models, tmp_path):
    """End to end: an unwritable history is a warning line and a note; the Success and its exit code stand."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = run_cli("run", models["good_1arg"], "--json", env={history.ENV_DIR: str(blocker / "runs")})
    assert result.code == 0 and result.report["status"] == "Success" and result.report["history_id"] is None
    assert "numerai-sandbox: warning: this run was not recorded in the run history" in result.stderr
    assert any("not recorded in the run history" in note for note in result.report["notes"])
    assert "Traceback" not in result.stderr


def test_no_history_records_nothing(runs_dir, monkeypatch, model):
    monkeypatch.setenv(history.ENV_OFF, "1")
    assert history.record(a_report(model)) is None and not runs_dir.exists()


CONCURRENT = """
import sys, threading
from datetime import datetime, timezone
from pathlib import Path
from runner.usecases import history
from runner.verdict.lifecycle import Status
from runner.verdict.report import Report

when = datetime.fromisoformat(sys.argv[1])
ids = []
def work():
    for _ in range(8):
        ids.append(history.record(Report(Status.SUCCESS, None, "", model={"path": "/m.pkl"}), when=when))
threads = [threading.Thread(target=work) for _ in range(3)]
for t in threads: t.start()
for t in threads: t.join()
print(" ".join(map(str, ids)))
"""


def test_concurrent_recorders_never_lose_or_mix_a_record(runs_dir):
    """Four processes of three threads record 96 runs at the same instant: the ids differ by their random digits."""
    when = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    procs = [subprocess.Popen([sys.executable, "-c", CONCURRENT, when], stdout=subprocess.PIPE, text=True, cwd=ROOT)
             for _ in range(4)]
    ids = [run_id for p in procs for run_id in p.communicate()[0].split()]
    assert all(p.returncode == 0 for p in procs)
    assert len(ids) == 96 and len(set(ids)) == 96 and "None" not in ids
    assert sorted(history.ids()) == sorted(ids)
    for run_id in ids:
        assert json.loads((runs_dir / run_id / "report.json").read_text())["history_id"] == run_id
        assert history.entry(run_id)["id"] == run_id
    assert not [p for p in runs_dir.iterdir() if p.name.startswith(".")]


# ---------------------------------------------------------------- finding a run

def test_last_an_id_a_prefix_or_a_model_file_names_a_run(runs_dir, model, tmp_path):
    old = recorded(model, ago_days=2)
    other = tmp_path / "other.pkl"
    other.write_bytes(b"x")
    newest = recorded(other)
    assert history.ids() == [newest, old]
    assert history.resolve("last") == history.resolve("latest") == newest
    assert history.resolve(old) == old and history.resolve(old[:17]) == old
    assert history.resolve("lgbm.pkl") == old  # a model's newest run, by file name
    assert history.resolve(str(model)) == old  # or by path
    moved = tmp_path / "elsewhere" / "lgbm.pkl"
    assert history.resolve(str(moved)) == old  # a path that no longer exists: its name still tells
    with pytest.raises(history.NotFound, match="no recorded run matches 'nothing.pkl'"):
        history.resolve("nothing.pkl")
    both = os.path.commonprefix([old, newest])
    if both:  # the same year at least
        with pytest.raises(history.NotFound, match="matches 2 runs"):
            history.resolve(both)


def test_an_empty_history_says_where_it_is(runs_dir):
    with pytest.raises(history.NotFound, match=f"no runs recorded yet.*{runs_dir}"):
        history.resolve("last")
    assert history.entries() == [] and history.ids() == []


def test_an_unreadable_entry_is_shown_not_hidden(runs_dir, model):
    run_id = recorded(model)
    (runs_dir / run_id / "entry.json").write_text("{not json")
    (runs_dir / "not-a-run").mkdir()
    [found] = history.entries()
    assert found["id"] == run_id and found["status"] == "?" and "unreadable" in found


# ---------------------------------------------------------------- pruning

def test_recording_prunes_by_age_and_count(runs_dir, model, monkeypatch):
    too_old = recorded(model, ago_days=history.KEEP_DAYS + 1)
    kept = recorded(model, ago_days=history.KEEP_DAYS - 1)
    assert history.ids() == [kept]  # the second recording pruned the first
    monkeypatch.setattr(history, "KEEP_RUNS", 3)
    made = [recorded(model, ago_days=d) for d in (5, 4, 3, 2, 1)]
    assert history.ids() == made[::-1][:3] and too_old not in history.ids()


def test_select_is_the_union_of_age_and_count(runs_dir, model):
    made = [recorded(model, ago_days=d) for d in (10, 8, 1, 0)]
    assert history.select(keep=3) == [made[0]]
    assert history.select(older_than=parse_age("7d")) == [made[1], made[0]]
    assert history.select(older_than=parse_age("9d"), keep=2) == [made[1], made[0]]
    assert history.select() == []


def test_what_a_killed_process_left_is_swept_once_stale(runs_dir, model):
    recorded(model)
    stale, fresh = runs_dir / ".tmp-20200101-000000-aaaa-1-x", runs_dir / ".trash-20200101-000000-bbbb-1-y"
    for leftover in (stale, fresh):
        leftover.mkdir()
        (leftover / "report.json").write_text("{}")
    old = time.time() - history.STALE_SECONDS - 60
    os.utime(stale, (old, old))
    history.prune()
    assert not stale.exists() and fresh.exists()


@pytest.mark.parametrize("text,seconds", [("7d", 7 * 86400), ("12h", 43200), ("2w", 14 * 86400),
                                          ("1d12h", 129600), ("30m", 1800), ("90s", 90)])
def test_ages(text, seconds):
    assert parse_age(text) == seconds


@pytest.mark.parametrize("text", ["7", "", "7x", "d", "-1d", "7 d"])
def test_bad_ages(text):
    with pytest.raises(ValueError, match="not an age"):
        parse_age(text)


# ---------------------------------------------------------------- the commands

def runs(runs_dir, *args):
    return run_cli("runs", *args, env={history.ENV_DIR: str(runs_dir)})


def test_runs_list_newest_first_filtered_and_as_json(runs_dir, model):
    good = recorded(model, ago_days=1)
    bad = recorded(model, ago_days=0.001, status=Status.FAILED, reason="invalid_output", subcode="nan")
    error = recorded(model, status=Status.ERROR, reason="docker_unavailable")
    table = runs(runs_dir, "list")
    assert table.code == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["ID", "WHEN", "MODEL", "PYTHON", "VERDICT", "PREDICT", "PEAK", "MEMORY"]
    assert [line.split()[0] for line in lines[1:]] == [error, bad, good]
    assert "Failed invalid_output/nan" in lines[2] and "lgbm.pkl" in lines[2] and "300 MiB" in lines[2]
    assert "0.25s" in lines[3] and "1d ago" in lines[3]
    failed = runs(runs_dir, "list", "--status", "failed", "--status", "ERROR").stdout.splitlines()
    assert [line.split()[0] for line in failed[1:]] == [error, bad]
    limited = runs(runs_dir, "list", "--limit", "1").stdout.splitlines()
    assert len(limited) == 3 and limited[1].startswith(error) and "1 of 3 shown" in limited[2]
    entries = json.loads(runs(runs_dir, "list", "--json", "--status", "success").stdout)
    assert [e["id"] for e in entries] == [good] and entries[0]["status"] == "Success"


def test_runs_list_and_show_on_an_empty_history(runs_dir):
    listed = runs(runs_dir, "list")
    assert listed.code == 0 and "no runs recorded" in listed.stdout
    shown = runs(runs_dir, "show")
    assert shown.code == 2 and "no runs recorded yet" in shown.stderr and "Traceback" not in shown.stderr


def test_runs_show_tells_the_run_again(runs_dir, model, tmp_path):
    report = a_report(model, Status.FAILED, "model_exception", logs="line one\nline two\x1b[2J\x07")
    report.traceback = "Traceback (most recent call last):\nValueError: broken"
    report.predictions_path = str(tmp_path / "gone.csv")
    run_id = history.record(report)
    shown = runs(runs_dir, "show", run_id[:-2])
    assert shown.code == 0, shown.stderr
    text = shown.stdout
    assert text.startswith(f"run {run_id}") and str(model) in text and "3.11.2" in text
    assert "Failed (model_exception): what happened" in text and "What to do: what to do" in text
    assert "ValueError: broken" in text and "│ line two\\x1b[2J\\x07" in text
    assert "\x1b" not in text and "\x07" not in text  # the model's output cannot drive the terminal
    assert str(runs_dir / run_id / "report.json") in text and "gone.csv  (no longer there)" in text
    as_json = runs(runs_dir, "show", "lgbm.pkl", "--json")
    assert as_json.stdout == (runs_dir / run_id / "report.json").read_text()
    unknown = runs(runs_dir, "show", "nothing-like-it")
    assert unknown.code == 2 and "no recorded run matches 'nothing-like-it'" in unknown.stderr


def test_runs_rm_by_id_age_and_count_with_a_dry_run_first(runs_dir, model):
    made = [recorded(model, ago_days=d) for d in (20, 10, 5, 1, 0)]
    dry = runs(runs_dir, "rm", "--older-than", "7d", "--dry-run")
    assert dry.code == 0 and dry.stdout.count("would remove") == 2 and history.ids() == made[::-1]
    assert runs(runs_dir, "rm", "--older-than", "7d").code == 0
    assert history.ids() == made[:1:-1]
    assert runs(runs_dir, "rm", "--keep", "2").code == 0
    assert history.ids() == [made[4], made[3]]
    gone = runs(runs_dir, "rm", made[3], "nothing-like-it")
    assert gone.code == 2 and "nothing-like-it" in gone.stderr
    assert history.ids() == [made[4], made[3]]  # one unknown id: nothing removed
    removed = runs(runs_dir, "rm", "last")
    assert removed.code == 0 and f"removed {made[4]}" in removed.stdout and history.ids() == [made[3]]


def test_runs_rm_needs_a_selection_and_all_needs_yes_without_a_terminal(runs_dir, model):
    recorded(model)
    nothing = runs(runs_dir, "rm")
    assert nothing.code == 2 and "say which runs to remove" in nothing.stderr
    refused = runs(runs_dir, "rm", "--all")
    assert refused.code == 2 and "--yes" in refused.stderr and len(history.ids()) == 1
    assert runs(runs_dir, "rm", "--all", "--yes").code == 0 and history.ids() == []
    assert runs(runs_dir, "rm", "--all", "--yes").stdout.strip() == "nothing to remove"


def answer_on_a_terminal(runs_dir, answer: str) -> tuple[int, str]:
    """`runs rm --all` with a pseudo-terminal for its stdin and stdout, typing `answer` at the prompt."""
    parent, child = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "runner", "runs", "rm", "--all"], stdin=child, stdout=child,
                            stderr=child, cwd=ROOT, env=dict(os.environ, **{history.ENV_DIR: str(runs_dir)}))
    os.close(child)
    output = b""
    while b"[y/N]" not in output:
        output += os.read(parent, 1024)
    os.write(parent, answer.encode() + b"\n")
    proc.wait(timeout=60)
    try:
        while chunk := os.read(parent, 1024):
            output += chunk
    except OSError:  # the terminal closed with the process
        pass
    os.close(parent)
    return proc.returncode, output.decode()


def test_runs_rm_all_asks_on_a_terminal(runs_dir, model):
    made = [recorded(model, ago_days=d) for d in (1, 0)]
    code, output = answer_on_a_terminal(runs_dir, "n")
    assert code == 1 and "Remove all 2 recorded runs" in output and "nothing removed" in output
    assert history.ids() == made[::-1]
    code, output = answer_on_a_terminal(runs_dir, "y")
    assert code == 0 and history.ids() == [] and "2 removed, 0 kept" in output


def test_the_cli_never_imports_the_api():
    """`--help` and the `runs` commands stay light: runner.api is for Python callers only."""
    code = textwrap.dedent("""
        import sys
        from runner.cli.main import cli
        for argv in (["--help"], ["run", "--help"], ["runs", "list", "--help"]):
            try:
                cli.main(argv, prog_name="numerai-sandbox", standalone_mode=False)
            except SystemExit:
                pass
        print("runner.api" in sys.modules, "runner.run.run" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.split()[-2:] == ["False", "False"], out.stdout
