"""Faults that lose nothing: a full disk, a damaged cache, a command killed midway (issue 24).

Each is made for real: the cache on a tmpfs of 2 MiB (root mounts it), a wheel or a cached live.parquet
cut short on disk, `kill -9` of the real command line while it downloads, builds or runs. What must hold
after each: Error/host_resources naming the path (exit 3, one line, no traceback), nothing half-written
left in the cache, and the next command completes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from conftest import LABEL, ROOT, run_cli

TINY = "2m"


def wait_for(condition, seconds: float, step: float = 0.05):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(step)
    return None


@pytest.fixture
def full_disk(tmp_path):
    """A cache directory on its own 2 MiB tmpfs: the first write of any size fills it."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    where = tmp_path / "tiny"
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={TINY}", "tmpfs", str(where)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def assert_disk_full(result, where: Path) -> None:
    said = result.stderr + result.stdout
    assert result.code == 3, said
    assert "host_resources" in said and str(where) in said and "no space left" in said, said
    assert "Traceback" not in said and "internal_error" not in said and "report it" not in said, said


def half_written(cache: Path) -> list[Path]:
    """Anything a write left unfinished: staging folders and partial files of ours."""
    return [p for p in cache.rglob("*") if p.name.startswith(("numerai-sandbox-", ".fetch-"))
            or p.name.endswith((".part", ".partial")) or p.name.startswith("rootfs.tar.")]


# ---------------------------------------------------------------- the cache's disk fills

def test_run_on_a_full_cache_disk_is_host_resources(full_disk, models):
    result = run_cli("run", models["good_1arg"], "--json", env={"NUMERAI_SANDBOX_CACHE": str(full_disk)})
    assert_disk_full(result, full_disk)
    assert result.report["reason"] == "host_resources" and result.report["status"] == "Error"
    assert not half_written(full_disk)


def test_images_fetch_on_a_full_cache_disk_is_host_resources(full_disk):
    from runner.support.paths import cache_dir

    for part in ("bases", "locks"):  # the base is recorded already: the wheels are what fill the disk
        (full_disk / part).symlink_to(cache_dir() / part)
    result = run_cli("images", "fetch", "--python", "3.11", env={"NUMERAI_SANDBOX_CACHE": str(full_disk)})
    assert_disk_full(result, full_disk / "wheels")
    assert not half_written(full_disk) and not list(full_disk.rglob("*.whl"))


@pytest.fixture
def numerai_rounds(numerai, tmp_path):
    from numerai_server import served_folder

    numerai.datasets = served_folder(tmp_path / "served", versions=("v5.3",))
    return numerai, {"NUMERAI_API_URL": numerai.url, "NUMERAI_SANDBOX_CACHE": str(tmp_path / "cache")}


def test_data_fetch_on_a_full_cache_disk_is_host_resources(full_disk, numerai_rounds):
    numerai, env = numerai_rounds
    result = run_cli("data", "fetch", env={**env, "NUMERAI_SANDBOX_CACHE": str(full_disk)})
    assert_disk_full(result, full_disk)
    assert not half_written(full_disk) and not list(full_disk.rglob("meta.json"))


# ---------------------------------------------------------------- a damaged cache is found by its hash

def test_a_cut_short_cached_live_parquet_is_named_then_fetched_again(numerai_rounds, models):
    numerai, env = numerai_rounds
    assert run_cli("data", "fetch", env=env).code == 0
    (live,) = Path(env["NUMERAI_SANDBOX_CACHE"]).rglob("round-*/live.parquet")
    with open(live, "r+b") as handle:
        handle.truncate(live.stat().st_size // 2)
    result = run_cli("run", models["good_1arg"], "--json", env=env)
    assert result.code == 3 and result.report["reason"] == "data_unavailable", result.stderr
    assert str(live) in result.report["message"] and "data fetch" in result.report["message"]
    fetched = run_cli("data", "fetch", env=env)
    assert fetched.code == 0 and "downloading the round again" in fetched.stdout + fetched.stderr
    assert numerai.downloads.count("v5.3/live.parquet") == 2
    assert live.read_bytes() == (numerai.datasets / "v5.3" / "live.parquet").read_bytes()


def test_damaged_synthetic_data_is_made_again(tmp_path, monkeypatch):
    from runner.data import synthetic

    monkeypatch.setenv("NUMERAI_SANDBOX_CACHE", str(tmp_path))
    layout = synthetic.base_layout()
    folder = synthetic.cached(layout, rows=50)
    whole = (folder / "live.parquet").read_bytes()
    (folder / "live.parquet").write_bytes(whole[:100])
    assert synthetic.damaged(folder) and "live.parquet" in synthetic.damaged(folder)[0]
    assert synthetic.cached(layout, rows=50) == folder and (folder / "live.parquet").read_bytes() == whole
    assert not synthetic.damaged(folder)


def test_an_altered_wheel_is_refetched_and_refused_by_a_build(tmp_path, monkeypatch):
    """One small wheel of Numerai's 3.11 pins through the real `pip download`: cut short, `images fetch`
    downloads it again; a build refuses it by name before pip in the image could meet it."""
    from runner.images import store, wheelhouse
    from runner.images.pins import pin_set

    monkeypatch.setenv("NUMERAI_SANDBOX_CACHE", str(tmp_path))
    pins = pin_set("3.11", "standard")
    only = {"tzdata": pins.all["tzdata"]}
    said = []
    stock = wheelhouse.fetch(pins, said.append, only=only)
    (wheel,) = stock.present.values()
    whole = wheel.read_bytes()
    assert wheelhouse.recorded("3.11")[wheel.name] and not wheelhouse.damaged("3.11", [wheel])
    wheel.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(store.ImageUnavailable, match=f"{wheel}.*images fetch"):
        store.check_wheels(pins, wheelhouse.inventory(pins, only), "numerai-sandbox images fetch")
    wheelhouse.fetch(pins, said.append, only=only)
    assert wheel.read_bytes() == whole and any("fetching it again" in line for line in said)


# ---------------------------------------------------------------- kill -9 midway, then the next command

def killed_midway(args: list[str], env: dict, ready, seconds: float = 120, said: Path | None = None) -> None:
    """The real command line, killed with SIGKILL once `ready()` holds (it must, within `seconds`); its
    output goes to `said` (for `ready` to read) when given."""
    out = open(said, "w") if said is not None else subprocess.DEVNULL
    proc = subprocess.Popen([sys.executable, "-m", "runner", *map(str, args)], stdout=out,
                            stderr=subprocess.STDOUT, cwd=ROOT, env=dict(os.environ, **env))
    try:
        assert wait_for(lambda: ready() or proc.poll() is not None, seconds) and proc.poll() is None, \
            f"{args} ended (or never got there) before it could be killed"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        if said is not None:
            out.close()


def test_data_fetch_killed_midway_then_the_next_completes(numerai_rounds):
    numerai, env = numerai_rounds
    cache = Path(env["NUMERAI_SANDBOX_CACHE"])
    numerai.stall = threading.Event()
    numerai.stall.set()
    try:
        killed_midway(["data", "fetch"], env, lambda: list(cache.rglob("numerai-sandbox-fetch-*/*")))
    finally:
        numerai.stall.clear()
    assert half_written(cache)  # what the killed download left: the next fetch removes it
    again = run_cli("data", "fetch", env=env)
    assert again.code == 0, again.stderr
    assert not half_written(cache)
    (live,) = cache.rglob("round-*/live.parquet")
    assert live.read_bytes() == (numerai.datasets / "v5.3" / "live.parquet").read_bytes()


def test_images_fetch_killed_midway_then_the_next_completes(own_cache, monkeypatch):
    from runner.images import wheelhouse

    env = {"NUMERAI_SANDBOX_CACHE": str(own_cache)}
    wheels = own_cache / "wheels" / "py3.11"
    killed_midway(["images", "fetch", "--python", "3.11"], env, lambda: list(wheels.glob(".fetch-*/*.whl")))
    assert not list(wheels.glob("*.whl"))  # nothing entered the wheelhouse cut short
    again = run_cli("images", "fetch", "--python", "3.11", env=env, timeout=600)
    assert again.code == 0, again.stderr
    assert not half_written(own_cache)
    monkeypatch.setenv("NUMERAI_SANDBOX_CACHE", str(own_cache))
    assert list(wheels.glob("*.whl")) and not wheelhouse.damaged("3.11", wheels.glob("*.whl"))


def test_run_killed_midway_then_the_next_completes_and_nothing_is_left(client, models):
    from conftest import our_containers

    before = {c["Id"] for c in our_containers(client)}
    seen = []
    running = lambda: seen.extend(c["Id"] for c in our_containers(client)
                                  if c["Id"] not in before and c["State"] == "running") or seen
    killed_midway(["run", models["sleep_forever"], "--timeout", "5m"], {}, running, seconds=120)
    result = run_cli("run", models["good_1arg"], "--json")
    assert result.code == 0 and result.report["status"] == "Success", result.stderr
    left = lambda: [(c["Names"], c["State"]) for c in our_containers(client) if c["Id"] in seen]
    assert wait_for(lambda: not left(), 30), f"the killed run's container is still there: {left()}"
    ours = lambda: [c["Names"] for c in our_containers(client) if c["Id"] not in before
                    and c["Labels"].get(f"{LABEL}.kind") != "warm"]  # a pre-started sandbox waits by design
    assert not ours(), f"a run left its container (not asked to --keep it): {ours()}"


def test_images_build_killed_midway_then_the_next_completes(client, own_namespace, tmp_path):
    """Killed while the engine builds the image's harness layer (on the standard environment, borrowed):
    the next `images build` builds it whole, and a run uses it."""
    from conftest import borrow_standard_environment
    from runner.images import store
    from runner.images.pins import pin_set

    borrow_standard_environment(client, "3.11")
    said = tmp_path / "build.log"
    killed_midway(["images", "build", "--python", "3.11"], {}, lambda: "Step 4/" in said.read_text(), said=said)
    again = run_cli("images", "build", "--python", "3.11")
    assert again.code == 0, again.stderr
    assert store.find(client, pin_set("3.11", "standard")) is not None


# ---------------------------------------------------------------- the engine dies mid-run

@pytest.fixture
def second_engine(client, image311):
    """A dockerd of the test's own (its socket, data root, exec root, managed containerd), holding the
    session's Python 3.11 runtime image (saved from the machine's engine and loaded: no registry here).
    Yields (DOCKER_HOST, start, kill): the engine can be killed (SIGKILL) and started again on the same
    data root. Stopped and removed afterwards."""
    import shutil
    import tempfile

    import docker
    import docker.errors

    if os.geteuid() != 0 or shutil.which("dockerd") is None:
        pytest.skip("a second Docker engine needs root and dockerd")
    root = Path(tempfile.mkdtemp(prefix="nsd-", dir="/tmp"))  # short: containerd's socket path is bounded
    host = f"unix://{root}/docker.sock"
    procs = []

    def start():
        log = open(root / "dockerd.log", "a")
        procs.append(subprocess.Popen(
            ["dockerd", "--host", host, "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
             "--pidfile", str(root / "docker.pid"), "--bridge", "none", "--iptables=false", "--ip-masq=false"],
            stdout=log, stderr=subprocess.STDOUT))
        log.close()

        def answers():
            try:
                probe = docker.DockerClient(base_url=host, timeout=5)
            except docker.errors.DockerException:  # not up yet
                return False
            try:
                return probe.ping()
            except docker.errors.DockerException:
                return False
            finally:
                probe.close()

        assert wait_for(answers, 60, 0.2), (root / "dockerd.log").read_text()[-2000:]

    def kill():
        """SIGKILL to dockerd; its containerd follows it (dead, or stopped by us) before a restart."""
        procs[-1].send_signal(signal.SIGKILL)
        procs[-1].wait(timeout=30)
        pidfile = root / "exec" / "containerd" / "containerd.pid"
        pid = int(pidfile.read_text()) if pidfile.exists() and pidfile.read_text().strip().isdigit() else None
        if pid is not None and not wait_for(lambda: not psutil.pid_exists(pid), 10, 0.2):
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: not psutil.pid_exists(pid), 10, 0.2)

    try:
        start()
        second = docker.DockerClient(base_url=host, timeout=600)
        try:
            second.api.load_image(client.api.get_image(image311.ref))
        finally:
            second.close()
        yield host, start, kill
    finally:
        if procs and procs[-1].poll() is None:
            procs[-1].terminate()  # dockerd stops its containers and its containerd, and unmounts
            try:
                procs[-1].wait(timeout=60)
            except subprocess.TimeoutExpired:
                procs[-1].kill()
        subprocess.run(f"grep -o ' {root}[^ ]*' /proc/mounts | sort -r | xargs -r -n1 umount -l", shell=True,
                       check=False)
        shutil.rmtree(root, ignore_errors=True)


def test_the_engine_dying_mid_run_is_docker_unavailable_and_leaves_nothing(second_engine, models):
    import docker

    host, start, kill = second_engine
    env = {"DOCKER_HOST": host}
    second = docker.DockerClient(base_url=host)
    try:
        running = lambda: second.containers.list()
        proc = subprocess.Popen([sys.executable, "-m", "runner", "run", str(models["sleep_forever"]), "--json"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
                                env=dict(os.environ, **env))
        try:
            assert wait_for(running, 120, 0.2), "the model never ran on the second engine"
            time.sleep(1)
        finally:
            kill()
        out, err = proc.communicate(timeout=120)
    finally:
        second.close()
    import json

    report = json.loads(out)
    assert proc.returncode == 3 and (report["status"], report["reason"]) == ("Error", "docker_unavailable"), err
    assert "Traceback" not in err
    start()  # the engine back, on the same data root: the next command completes and leaves nothing
    after = run_cli("run", models["good_1arg"], "--json", env=env)
    assert after.code == 0 and after.report["status"] == "Success", after.stderr
    second = docker.DockerClient(base_url=host)
    try:
        left = [c.name for c in second.containers.list(all=True) if c.labels.get(f"{LABEL}.kind") != "warm"]
    finally:
        second.close()
    assert not left, f"left on the engine: {left}"
