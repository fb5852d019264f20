"""Only the commands that need the Docker engine reach it: help, inspect and data synth never wait for it.

The engine here is a fake: a unix socket that accepts connections and never answers, the way a
hung or half-started engine behaves. Connections are counted; nothing is timed.
"""

from __future__ import annotations

import socket
import threading

import pytest

from conftest import run_cli


class SilentEngine:
    """Accepts every connection on a unix socket, reads nothing, answers nothing."""

    def __init__(self, path):
        self.path = path
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(16)
        self.server.settimeout(0.2)
        self.connections: list[socket.socket] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _ = self.server.accept()
            except OSError:
                continue
            self.connections.append(connection)

    @property
    def env(self) -> dict[str, str]:
        return {"DOCKER_HOST": f"unix://{self.path}"}

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        for connection in self.connections:
            connection.close()
        self.server.close()


@pytest.fixture
def silent_engine(tmp_path):
    engine = SilentEngine(tmp_path / "engine.sock")
    yield engine
    engine.close()


@pytest.fixture
def model(host_pickle):
    return host_pickle


@pytest.mark.parametrize("args", [
    ["--help"],
    ["run", "--help"],
    ["images", "--help"],
    ["inspect", "{model}"],
    ["inspect", "{model}", "--json"],
    ["data", "synth", "--out", "{out}", "--rows", "20", "--features", "5"],
    ["run", "{model}", "--cpus", "0"],  # a usage error: judged before anything starts
])
def test_commands_that_need_no_engine_never_contact_it(silent_engine, model, tmp_path, args):
    argv = [a.format(model=model, out=tmp_path) for a in args]
    result = run_cli(*argv, env=silent_engine.env, timeout=60)
    assert result.code in (0, 2), result.stderr
    assert "Traceback" not in result.stderr
    assert len(silent_engine.connections) == 0


def test_run_with_an_engine_that_never_answers_ends_error_docker_unavailable(silent_engine, model):
    result = run_cli("run", model, "--python", "3.11", "--force", "--json", env=silent_engine.env, timeout=120)
    report = result.report
    assert result.code == 3 and (report["status"], report["reason"]) == ("Error", "docker_unavailable")
    assert "timed out" in report["message"]
    assert len(silent_engine.connections) >= 1
    assert "Traceback" not in result.stderr
