"""The harness's quick exit: taken only when a normal exit would not wait for anything the model left.

Pure standard library, run on the host in a subprocess (the harness imports nothing of ours)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from conftest import ROOT

HARNESS = ROOT / "runner" / "sandbox" / "harness.py"

LEFT_BEHIND = {
    "nothing": "",
    "a non-daemon thread": "threading.Thread(target=lambda: (time.sleep(1.5), mark())).start()",
    "a non-daemon process": "multiprocessing.get_context('fork').Process(target=lambda: (time.sleep(1.5), mark())).start()",
}


@pytest.mark.parametrize("left", sorted(LEFT_BEHIND))
def test_exits_at_once_only_when_nothing_would_wait(tmp_path, left):
    marker = tmp_path / "finished"
    script = textwrap.dedent(f"""
        import atexit, importlib.util, multiprocessing, pathlib, sys, threading, time
        spec = importlib.util.spec_from_file_location("harness", {str(HARNESS)!r})
        harness = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(harness)
        def mark():
            pathlib.Path({str(marker)!r}).write_text("done")
        atexit.register(print, "normal exit", flush=True)
        {LEFT_BEHIND[left]}
        print("returned", flush=True)
        harness.exit_unless_something_waits(7)
        sys.exit(7)
    """)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    took = time.monotonic() - started
    assert proc.returncode == 7, proc.stderr
    if left == "nothing":
        assert proc.stdout.split() == ["returned"]  # atexit handlers skipped: nothing left to wait for
    else:
        # As Numerai's process would: it waits for what the model left running, then exits normally.
        assert "normal exit" in proc.stdout and marker.read_text() == "done" and took >= 1.4
