"""`numerai-sandbox shell`, driven through a pseudo-terminal as a person at a keyboard drives it.

Each test starts the real command line (python -m runner shell) on a pty with pexpect,
waits for the prompt, evaluates Python inside the sandbox, and checks with the engine
that the container goes however the session ends: exit(), the runner killed outright,
the terminal closed, the timeout.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT

pexpect = pytest.importorskip("pexpect")

PROMPT = ">>> "
FIRST_PROMPT_SECONDS = 300  # the image may need its harness layer rebuilt, the fitted data generated


class Shell:
    """One `numerai-sandbox shell` on a pseudo-terminal."""

    def __init__(self, model, *options: str, rows: int = 40, columns: int = 120):
        self.child = pexpect.spawn(sys.executable, ["-m", "runner", "shell", str(model), *options], cwd=str(ROOT),
                                   env=dict(os.environ, TERM="xterm"), encoding="utf-8", codec_errors="replace",
                                   timeout=120, dimensions=(rows, columns))
        self.child.expect(PROMPT, timeout=FIRST_PROMPT_SECONDS)
        self.opening = self.child.before
        self.container = re.search(r"container (numerai-sandbox-shell-[0-9a-f]+)", self.opening).group(1)

    def evaluate(self, expression: str) -> str:
        """repr() of `expression` evaluated inside the sandbox (the echoed line never matches the marker)."""
        self.child.sendline(f'print("RESULT" "=" + repr({expression}))')
        self.child.expect(r"RESULT=(.*?)\r\n")
        value = self.child.match.group(1)
        self.child.expect(PROMPT)
        return value

    def finish(self, timeout: float = 60) -> int:
        self.child.expect(pexpect.EOF, timeout=timeout)
        self.child.close()
        return self.child.exitstatus

    def hang_up(self) -> int:
        """Close the terminal as a window closing does (the kernel sends SIGHUP); the runner's exit code."""
        os.close(self.child.child_fd)
        self.child.closed = True
        _, status = os.waitpid(self.child.pid, 0)
        return os.waitstatus_to_exitcode(status)

    def stop(self) -> None:
        """A shell a failed test left open goes the way a user's would: the terminal closes."""
        with contextlib.suppress(Exception):  # already reaped by hang_up, or already gone
            if self.child.isalive():
                self.child.close(force=True)


@pytest.fixture
def open_shell():
    shells: list[Shell] = []

    def start(model, *options, **size) -> Shell:
        shells.append(Shell(model, *options, **size))
        return shells[-1]

    yield start
    for shell in shells:
        shell.stop()


def gone(client, name: str, within: float = 60) -> bool:
    """Whether the engine no longer has the container, polled for a bounded time."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not client.api.containers(all=True, filters={"name": name}):
            return True
        time.sleep(0.25)
    return False


@pytest.mark.parametrize("name, arguments", [("good_1arg", "live_features"),
                                             ("good_2arg", "live_features, live_benchmark_models")])
def test_shell_has_the_model_and_the_data_in_the_sandbox(client, models, open_shell, name, arguments):
    shell = open_shell(models[name])
    assert "no timeout" in shell.opening  # the banner says the session has none
    assert f"Numerai calls it with ({arguments})" in shell.opening
    rows = int(re.search(r"live_features: DataFrame, ([\d,]+) rows", shell.opening).group(1).replace(",", ""))
    assert shell.evaluate(f"predict({arguments}).shape") == f"({rows}, 1)"
    assert shell.evaluate("len(live_features)") == str(rows)
    assert shell.evaluate("type(live_benchmark_models).__name__") == "'DataFrame'"  # for 1-argument models too
    # No network: loopback is the only interface.
    assert shell.evaluate("sorted(__import__('os').listdir('/sys/class/net'))") == "['lo']"
    assert shell.evaluate("[l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:]]") == "['lo']"
    # A read-only root; /tmp is writable.
    shell.child.sendline("open('/etc/x', 'w')")
    shell.child.expect("Read-only file system")
    shell.child.expect(PROMPT)
    assert shell.evaluate("open('/tmp/x', 'w').write('written')") == "7"
    # The run's isolation: non-root, no capabilities, no new privileges, its open-files limit.
    assert shell.evaluate("__import__('os').getuid() != 0") == "True"
    status = "dict(l.split(':\\t') for l in open('/proc/self/status').read().splitlines() if ':\\t' in l)"
    assert shell.evaluate(f"int({status}['CapEff'], 16)") == "0"
    assert shell.evaluate(f"{status}['NoNewPrivs'].strip()") == "'1'"
    assert shell.evaluate("__import__('resource').getrlimit(__import__('resource').RLIMIT_NOFILE)") == "(4096, 4096)"
    shell.child.sendline("exit()")
    shell.child.expect("Session ended")
    assert shell.finish() == 0
    assert gone(client, shell.container)


def test_ctrl_c_interrupts_inside_ctrl_z_is_harmless_and_the_window_size_follows(client, models, open_shell):
    shell = open_shell(models["good_1arg"], rows=30, columns=100)
    assert shell.evaluate("__import__('shutil').get_terminal_size()") == "os.terminal_size(columns=100, lines=30)"
    shell.child.setwinsize(50, 132)  # SIGWINCH to the runner, passed on to the engine
    deadline = time.monotonic() + 30
    while (size := shell.evaluate("tuple(__import__('shutil').get_terminal_size())")) != "(132, 50)":
        assert time.monotonic() < deadline, size
        time.sleep(0.2)
    shell.child.sendline("import time; time.sleep(600)")
    time.sleep(1)
    shell.child.sendcontrol("c")
    shell.child.expect("KeyboardInterrupt")
    shell.child.expect(PROMPT)
    assert shell.evaluate("6 * 7") == "42"  # the session goes on
    shell.child.sendcontrol("z")  # no job control in the sandbox: Ctrl-Z must not stop the shell for good
    assert shell.evaluate("6 * 9") == "54"
    shell.child.sendcontrol("d")
    assert shell.finish() == 0
    assert gone(client, shell.container)


def test_a_pickle_that_does_not_load_still_opens_the_shell(client, models, open_shell):
    shell = open_shell(models["truncated"])
    assert "the pickle did not load" in shell.opening
    assert shell.evaluate("predict") == "None"
    assert shell.evaluate("type(load_error).__name__") in ("'UnpicklingError'", "'EOFError'")
    assert shell.evaluate("live_features.shape[0] > 0") == "True"
    shell.child.sendline("exit()")
    assert shell.finish() == 0
    assert gone(client, shell.container)


def test_killing_the_runner_outright_removes_the_container(client, models, open_shell):
    shell = open_shell(models["good_1arg"])
    os.kill(shell.child.pid, signal.SIGKILL)
    assert gone(client, shell.container), "the container outlived its runner"


def test_closing_the_terminal_removes_the_container(client, models, open_shell):
    shell = open_shell(models["good_1arg"])
    assert shell.hang_up() == 3
    assert gone(client, shell.container), "the container outlived its terminal"


def test_timeout_ends_the_session_and_says_so(client, models, open_shell):
    shell = open_shell(models["good_1arg"], "--timeout", "15s")
    assert "timeout 15s" in shell.opening  # the banner says so
    shell.child.expect("--timeout 15s reached", timeout=120)
    assert shell.finish() == 1
    assert gone(client, shell.container)


def test_running_out_of_memory_ends_the_session_with_the_cause(client, models, open_shell):
    shell = open_shell(models["good_1arg"], "--memory", "512m")
    assert "512 MiB" in shell.opening or "0.5 GiB" in shell.opening
    shell.child.sendline("hoard = bytearray(2 * 1024**3)")
    shell.child.expect("ran out of memory")
    assert shell.finish() == 1
    assert gone(client, shell.container)


def test_shell_needs_a_terminal(tmp_path):
    model = tmp_path / "model.pkl"
    model.write_bytes(b"not used")
    proc = subprocess.run([sys.executable, "-m", "runner", "shell", str(model)], stdin=subprocess.DEVNULL,
                          capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert proc.returncode == 2
    assert "shell needs a terminal" in proc.stderr and "Traceback" not in proc.stderr
