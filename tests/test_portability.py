"""Portable where it can be: inspect and data synth work on any OS with Python >= 3.11; images are
linux/amd64 (Numerai's platform) everywhere, and another architecture is said, never silently used."""

from __future__ import annotations

import io
import json
import platform
import struct
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT
from runner.support import machine

# A Windows-like interpreter: no fcntl, no Docker SDK, no SIGHUP, no uids, no CPU affinity.
WITHOUT_POSIX = textwrap.dedent("""
    import importlib.abc, os, signal, sys

    class Blocked(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("fcntl", "docker"):
                raise ImportError(f"No module named {name!r}")

    sys.meta_path.insert(0, Blocked())
    sys.modules.pop("fcntl", None)
    del signal.SIGHUP
    for name in ("getuid", "geteuid", "getgid", "sched_getaffinity"):
        if hasattr(os, name):
            delattr(os, name)
    sys.argv = ["numerai-sandbox", *sys.argv[1:]]
    from runner.cli.main import main
    main()
""")


@pytest.fixture
def model(host_pickle):
    return host_pickle


def _without_posix(*args, cache) -> subprocess.CompletedProcess:
    env = {"NUMERAI_SANDBOX_CACHE": str(cache), "HOME": str(cache), "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, "-c", WITHOUT_POSIX, *map(str, args)], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, env=env)


def test_inspect_and_data_synth_need_neither_fcntl_nor_docker(model, tmp_path):
    helped = _without_posix("--help", cache=tmp_path / "cache")
    assert helped.returncode == 0 and "inspect" in helped.stdout, helped.stderr
    inspected = _without_posix("inspect", model, "--json", cache=tmp_path / "cache")
    assert inspected.returncode == 0, inspected.stderr
    assert json.loads(inspected.stdout)["callable"]["kind"] == "function"
    text = _without_posix("inspect", model, cache=tmp_path / "cache")
    assert text.returncode == 0 and "Callable: function" in text.stdout, text.stderr
    made = _without_posix("data", "synth", "--out", tmp_path, "--rows", "30", "--features", "6",
                          cache=tmp_path / "cache")
    assert made.returncode == 0, made.stderr
    assert (tmp_path / "live.parquet").is_file() and (tmp_path / "features.json").is_file()
    for result in (helped, inspected, text, made):
        assert "Traceback" not in result.stderr


@pytest.mark.parametrize("name,arch", [("x86_64", "amd64"), ("AMD64", "amd64"), ("aarch64", "arm64"),
                                       ("arm64", "arm64"), ("riscv64", "riscv64")])
def test_architecture_names(name, arch):
    assert machine.arch(name) == arch


def test_only_another_architecture_is_emulated():
    assert machine.emulation_note("x86_64") is None
    note = machine.emulation_note("arm64")
    assert "emulated" in note and "linux/amd64" in note and "arm64" in note


def _elf(path, e_machine: int):
    # e_ident (64-bit, little-endian), e_type, e_machine: all elf_arch reads.
    path.write_bytes(b"\x7fELF\x02\x01\x01" + b"\x00" * 9 + struct.pack("<HH", 2, e_machine) + b"\x00" * 44)
    return path


def test_elf_architecture_of_an_executable(tmp_path):
    assert machine.elf_arch(_elf(tmp_path / "arm", 0xB7)) == "arm64"
    assert machine.elf_arch(_elf(tmp_path / "x86", 0x3E)) == "amd64"
    assert machine.elf_arch(tmp_path / "missing") is None
    (tmp_path / "text").write_text("#!/bin/sh\n")
    assert machine.elf_arch(tmp_path / "text") is None
    if platform.system() == "Linux":
        assert machine.elf_arch(sys.executable) == machine.arch()


def test_an_offline_base_is_only_made_from_amd64_parts():
    on_arm = machine.bootstrap_problem("3.12", machine="arm64", system="Linux")
    assert "this arm64 machine cannot bootstrap a linux/amd64 base" in on_arm
    assert "docker pull --platform linux/amd64 python:3.12-slim" in on_arm
    wrong_python = machine.bootstrap_problem("3.12", machine="x86_64", python_binary_arch="arm64", system="Linux")
    assert "built for arm64" in wrong_python and "--python-home" in wrong_python
    assert "cpython-3.12-linux-x86_64-gnu" in wrong_python
    assert "needs Linux" in machine.bootstrap_problem("3.12", machine="x86_64", system="Darwin")
    assert machine.bootstrap_problem("3.12", machine="x86_64", python_binary_arch="amd64", system="Linux") is None
    assert machine.bootstrap_problem("3.11", machine="x86_64", system="Linux") is None  # Debian's own Python


def test_a_local_cpython_of_another_architecture_is_a_clear_error(tmp_path, monkeypatch):
    from runner.images import bases

    home = tmp_path / "cpython"
    (home / "bin").mkdir(parents=True)
    (home / "lib" / "python3.12").mkdir(parents=True)
    (home / "lib" / "python3.12" / "os.py").write_text("")
    _elf(home / "bin" / "python3.12", 0xB7)
    monkeypatch.setattr(platform, "system", lambda: "Linux")
    with pytest.raises(bases.BaseError, match="built for arm64"):
        bases._bootstrap("3.12", "bookworm", home, progress=lambda line: None)
    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    with pytest.raises(bases.BaseError, match="this arm64 machine cannot bootstrap"):
        bases._bootstrap("3.11", "bookworm", None, progress=lambda line: None)


def test_the_pending_line_says_when_a_run_is_emulated(model, tmp_path, monkeypatch):
    """On an arm64 machine (simulated) the run says so as it enters Pending, and in the report."""
    from runner.run import RunRequest
    from runner.run.run import execute
    from runner.support.console import Console

    monkeypatch.setattr(platform, "machine", lambda: "aarch64")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-engine.sock")  # ends at once: Error/docker_unavailable
    screen = io.StringIO()
    report = execute(RunRequest(model=model, python="3.11", force=True), Console(stream=screen))
    assert report.reason == "docker_unavailable"
    pending = next(line for line in screen.getvalue().splitlines() if "Pending" in line)
    assert "emulated: linux/amd64 images on this arm64 machine" in pending
    assert any("emulated" in note for note in report.notes)
