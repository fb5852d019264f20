"""The process sandbox, for machines without a Docker engine: its environment and its confinement, for real.

The environment is made with uv from the real 3.11 wheelhouse (into a cache of this test's own,
whose wheels are the machine's), and the harness runs in it on real pickles: made by the
environment's own Python (tests/models/make_process_models.py; no engine needed), and one made in
the 3.11 image, compared with a container run of it. What each test holds is in its name.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from conftest import ROOT

from runner.sandbox import confine, process
from runner.sandbox.backend import ContainerSpec, Limits, Mount, StreamSink

GiB = 1024**3
HARNESS_ARGS = ["--max-output-bytes", str(256 * 1024**2), "--exit-on-stdin-eof"]  # as a container run's
CONTAINER_ENV = {"HOME": "/tmp", "MPLCONFIGDIR": "/tmp/matplotlib"}


def python311() -> Path | None:
    """A CPython 3.11 on this machine: the running one, else pyenv's."""
    if sys.version_info[:2] == (3, 11):
        return Path(sys.executable)
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    found = sorted(root.glob("3.11*/bin/python3.11"))
    return found[-1] if found else None


class Collected(StreamSink):
    def __init__(self):
        self.out, self.err = bytearray(), bytearray()

    def stdout(self, chunk: bytes) -> None:
        self.out += chunk

    def stderr(self, chunk: bytes) -> None:
        self.err += chunk

    @property
    def log(self) -> str:
        return self.err.decode("utf-8", "replace")


def frames(stream: bytes) -> list[tuple[str, bytes]]:
    """The harness's frames, `NSBX1 <kind> <length>\\n<payload>`, read strictly: nothing else may be there."""
    out, at = [], 0
    while at < len(stream):
        newline = stream.index(b"\n", at)
        magic, kind, length = stream[at:newline].decode().split(" ")
        assert magic == "NSBX1", stream[at:at + 40]
        payload = bytes(stream[newline + 1:newline + 1 + int(length)])
        assert len(payload) == int(length)
        out.append((kind, payload))
        at = newline + 1 + int(length)
    return out


def kinds(stream: bytes) -> list[str]:
    return [kind for kind, _ in frames(stream)]


def body(stream: bytes, kind: str):
    payload = next(p for k, p in reversed(frames(stream)) if k == kind)
    return payload if kind == "predictions" else json.loads(payload)


@pytest.fixture(scope="module")
def live():
    from runner import data

    return data.synthetic_default()


@pytest.fixture(scope="module")
def environment(tmp_path_factory):
    """The standard 3.11 environment, made in a cache of our own from the machine's wheels, after a build of
    it was killed halfway: (the Venv, what the killed build left)."""
    from runner.images import venv, wheelhouse
    from runner.images.pins import pin_set

    interpreter = python311()
    pins = pin_set("3.11", "standard")
    if interpreter is None or wheelhouse.inventory(pins).missing:
        why = "no Python 3.11 here" if interpreter is None else "the 3.11 wheels are not fetched"
        if os.environ.get("NUMERAI_SANDBOX_REQUIRE_DOCKER") == "1":
            pytest.fail(f"the process sandbox's tests need them: {why}")
        pytest.skip(why)
    cache = tmp_path_factory.mktemp("venv-cache")
    (cache / "wheels").mkdir()
    (cache / "wheels" / "py3.11").symlink_to(wheelhouse.wheel_dir("3.11"))
    env = dict(os.environ, NUMERAI_SANDBOX_CACHE=str(cache))
    build = ("import pathlib, sys; from runner.images import venv; from runner.images.pins import pin_set; "
             f"venv.ensure(pin_set('3.11', 'standard'), venv.interpreter(pathlib.Path({str(interpreter)!r})))")
    killed = subprocess.Popen([sys.executable, "-c", build], cwd=ROOT, env=env, start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    halfway = ".building-*/lib/python3.11/site-packages/numpy"
    while time.monotonic() < deadline and not list((cache / "venvs").glob(halfway)):
        time.sleep(0.1)
    os.killpg(killed.pid, signal.SIGKILL)  # uv too: the build dies halfway through unpacking the wheels
    killed.wait()
    left = sorted(p.name for p in (cache / "venvs").iterdir())
    old = os.environ.get("NUMERAI_SANDBOX_CACHE")
    os.environ["NUMERAI_SANDBOX_CACHE"] = str(cache)
    try:
        made = venv.ensure(pins, venv.interpreter(interpreter))
        again = venv.ensure(pins, venv.interpreter(interpreter))
    finally:
        if old is None:
            os.environ.pop("NUMERAI_SANDBOX_CACHE")
        else:
            os.environ["NUMERAI_SANDBOX_CACHE"] = old
    yield made, again, left
    shutil.rmtree(cache, ignore_errors=True)


@pytest.fixture(scope="module")
def venv311(environment):
    return environment[0]


@pytest.fixture(scope="module")
def own_models(venv311, tmp_path_factory) -> dict[str, Path]:
    """tests/models/make_process_models.py's pickles, made by the environment's own Python."""
    out = tmp_path_factory.mktemp("process-models")
    done = subprocess.run([str(venv311.python), "-I", str(ROOT / "tests" / "models" / "make_process_models.py"),
                           "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return {p.stem: p for p in out.glob("*.pkl")}


@pytest.fixture(autouse=True)
def nothing_left_behind():
    """No process of ours below this one, and no folder of the process sandbox, once a test is over."""
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    yield
    left = [p for p in psutil.Process().children(recursive=True) if p.pid not in before]
    assert not left, [p.cmdline() for p in left]
    folders = list(Path(tempfile.gettempdir()).glob(f"numerai-sandbox-process-{os.getpid()}-*"))
    assert not folders, folders


def mounts(model: Path, live) -> list[Mount]:
    return [Mount(model, "/input/model.pkl"), Mount(live.live, "/input/live.parquet"),
            Mount(live.benchmarks, "/input/live_benchmark_models.parquet")]


def run(venv311, model: Path, live, limits: Limits | None = None, **options) -> tuple[process.ProcessRun, Collected]:
    sink = Collected()
    done = process.run(venv311.python, HARNESS_ARGS, mounts(model, live), limits or Limits(), sink,
                       environment=CONTAINER_ENV, **options)
    return done, sink


def gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


# ---------------------------------------------------------------- the environment

def test_environment_is_made_offline_from_the_wheelhouse_and_reused(environment):
    made, again, _ = environment
    assert made.built_seconds is not None and again.built_seconds is None  # the second time: found
    assert again.path == made.path and made.path.name.startswith("py3.11-standard-")
    record = json.loads((made.path / "venv.json").read_text())
    assert record["digest"] == made.digest and record["packages"]["pandas"] == made.pins.all["pandas"]
    verified = subprocess.run([str(made.python), "-I", str(process.HARNESS), "--verify",
                               str(made.path / "requirements.lock")], capture_output=True, text=True)
    assert verified.returncode == 0, verified.stderr  # exactly the lock: nothing more, nothing less
    # Compiled, as pip compiles in the image, and named for where the files are (tracebacks show their lines).
    compiled = subprocess.run([str(made.python), "-I", "-B", "-c", "import sys, pandas; print(pandas.read_csv."
                               "__code__.co_filename); print(sys.modules['pandas'].__cached__)"],
                              capture_output=True, text=True)
    source, cached = compiled.stdout.split()
    assert Path(source).is_file() and Path(source).is_relative_to(made.path) and Path(cached).is_file()


def test_a_killed_build_leaves_nothing_that_is_used(environment):
    made, _, left = environment
    assert left and all(name.startswith(".building-") for name in left), left  # never a complete-looking one
    assert [p.name for p in made.path.parent.iterdir()] == [made.path.name]  # the next build swept it


def test_missing_wheels_say_which_fetch_to_run(tmp_path, monkeypatch):
    from runner.images import venv
    from runner.images.pins import pin_set

    monkeypatch.setenv("NUMERAI_SANDBOX_CACHE", str(tmp_path))
    interpreter = python311()
    if interpreter is None:
        pytest.skip("no Python 3.11 here")
    with pytest.raises(venv.VenvUnavailable, match=r"run `numerai-sandbox images fetch --python 3\.11` once online"):
        venv.ensure(pin_set("3.11", "standard"), venv.interpreter(interpreter))
    assert not (tmp_path / "venvs").exists() or not list((tmp_path / "venvs").iterdir())


def test_another_python_is_refused_before_anything_is_made(tmp_path, monkeypatch):
    from runner.images import venv
    from runner.images.pins import pin_set

    monkeypatch.setenv("NUMERAI_SANDBOX_CACHE", str(tmp_path))
    with pytest.raises(venv.VenvUnavailable, match=r"these pins are for Python 3\.12"):
        venv.ensure(pin_set("3.12", "standard"), venv.interpreter(python311() or Path(sys.executable)))


# ---------------------------------------------------------------- running the harness

def test_a_good_model_gives_the_containers_stream_and_predictions(venv311, own_models, live):
    import pandas as pd

    done, sink = run(venv311, own_models["good"], live)
    assert done.outcome.exit_code == 0 and not (done.outcome.oom_killed or done.outcome.timed_out)
    assert kinds(sink.out)[0] == "hello" and kinds(sink.out)[-1] == "done"
    assert "predictions" in kinds(sink.out) and "error" not in kinds(sink.out)
    predictions = pd.read_csv(__import__("io").BytesIO(body(sink.out, "predictions")), index_col=0)
    assert len(predictions) == len(pd.read_parquet(live.live)) and list(predictions.columns) == ["prediction"]
    # The log names the inputs where a container has them, not where this process read them.
    assert "Loading model /input/model.pkl" in sink.log and "Loading live features /input/live.parquet" in sink.log
    assert done.outcome.peak_memory_bytes and done.outcome.memory_samples and len(done.outcome.cores) == 1
    assert done.outcome.memory_samples[-1][0] <= done.outcome.run_seconds


def test_the_model_gets_one_core_the_limits_and_the_containers_environment(venv311, own_models, live):
    done, sink = run(venv311, own_models["reports_limits"], live)
    assert done.outcome.exit_code == 0
    assert f"CORES {done.outcome.cores}" in sink.log and "NOFILE (4096, 4096)" in sink.log
    home = next(line for line in sink.log.splitlines() if line.startswith("HOME "))
    _, folder, _, cwd, *_ = home.split(" ")
    assert folder == cwd and folder.endswith("/tmp")  # HOME and the working directory: its private /tmp
    assert "NUMERAI_SANDBOX_CACHE" not in home and "PYTEST_CURRENT_TEST" not in home  # nothing of ours passed on


def test_out_of_memory_kills_the_tree_at_the_watched_limit(venv311, own_models, live):
    limits = Limits(memory_bytes=1 * GiB)
    done, sink = run(venv311, own_models["allocates"], live, limits)
    outcome = done.outcome
    assert outcome.oom_killed and not outcome.timed_out and outcome.exit_code == 137 and outcome.signal == 9
    assert outcome.peak_memory_bytes > limits.memory_bytes
    spacing = [b[0] - a[0] for a, b in zip(outcome.memory_samples, outcome.memory_samples[1:])]
    assert spacing and sorted(spacing)[len(spacing) // 2] == pytest.approx(process.SAMPLE_SECONDS, abs=0.1)
    assert "done" not in kinds(sink.out)


def test_a_childs_memory_counts_and_the_tree_is_killed(venv311, own_models, live):
    done, _ = run(venv311, own_models["allocates_in_a_child"], live, Limits(memory_bytes=1 * GiB))
    assert done.outcome.oom_killed and done.outcome.exit_code == 137


def test_memory_forked_workers_share_counts_once(venv311, own_models, live):
    """Their resident sets add up to 2.4 GiB, their memory to 600 MiB (what a container's cgroup counts)."""
    done, sink = run(venv311, own_models["forked_workers_share_memory"], live, Limits(memory_bytes=int(1.5 * GiB)))
    assert done.outcome.exit_code == 0 and not done.outcome.oom_killed, sink.log[-2000:]
    assert "WORKERS [0, 0, 0]" in sink.log
    assert 600 * 1024**2 < done.outcome.peak_memory_bytes < 1.5 * GiB


def test_the_wall_clock_kills_the_tree(venv311, own_models, live):
    done, _ = run(venv311, own_models["sleeps"], live, Limits(timeout_seconds=3))
    outcome = done.outcome
    assert outcome.timed_out and not outcome.oom_killed and outcome.exit_code == 137
    assert 3 <= outcome.run_seconds < 3 + 5


def test_forked_and_detached_processes_die_with_the_run(venv311, own_models, live):
    done, sink = run(venv311, own_models["forks_and_detaches"], live, Limits(timeout_seconds=4))
    assert done.outcome.timed_out
    pids = [int(line.split()[1]) for line in sink.log.splitlines() if line.startswith(("CHILD ", "GRANDCHILD "))]
    assert len(pids) == 2 and all(gone(pid) for pid in pids)


def test_what_a_finished_model_left_running_is_killed(venv311, own_models, live):
    done, sink = run(venv311, own_models["leaves_a_daemon"], live)
    assert done.outcome.exit_code == 0 and "done" in kinds(sink.out)
    daemon = int(next(line for line in sink.log.splitlines() if line.startswith("DAEMON ")).split()[1])
    assert gone(daemon)


def test_the_users_files_are_never_what_the_model_writes(venv311, own_models, live, tmp_path):
    model = tmp_path / "model.pkl"
    shutil.copyfile(own_models["writes_its_inputs"], model)
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in (model, live.live, live.benchmarks)}
    done, _ = run(venv311, model, live)
    assert done.outcome.exit_code == 0
    assert before == {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in before}


# ---------------------------------------------------------------- the network

def test_no_network_through_a_namespace(venv311, own_models, live):
    done, sink = run(venv311, own_models["connects"], live, network=("namespace",))
    assert done.confinement.network == "namespace", done.confinement.network_detail
    assert "CONNECT OSError 101" in sink.log  # ENETUNREACH, as in a container
    error = body(sink.out, "error")
    assert error["kind"] == "model_exception" and error["exception"]["errno"] == 101
    loop, sink = run(venv311, own_models["loopback"], live, network=("namespace",))
    assert "LOOPBACK ok" in sink.log  # its own loopback, as a container's


def test_no_network_through_seccomp_when_namespaces_are_refused(venv311, own_models, live):
    done, sink = run(venv311, own_models["connects"], live, network=("seccomp",))
    assert done.confinement.network == "seccomp" and "network" in done.confinement.enforced()
    assert "CONNECT OSError 101" in sink.log and body(sink.out, "error")["exception"]["errno"] == 101
    assert process.NOT_ISOLATED not in process.describe(done.confinement)


def test_without_isolation_the_run_happens_and_says_so(venv311, own_models, live):
    done, sink = run(venv311, own_models["good"], live, network=())
    assert done.outcome.exit_code == 0 and "done" in kinds(sink.out)
    assert done.confinement.network == "none" and not done.confinement.network_isolated
    assert done.confinement.not_enforced()["network"].startswith("network not isolated")
    assert process.describe(done.confinement) == ("process sandbox (weaker than Numerai's container), "
                                                  "network not isolated")


def test_probe_says_what_this_machine_allows(venv311):
    found = process.probe(venv311.python)
    assert found.network == ("namespace" if os.geteuid() == 0 else found.network)
    assert process.probe(venv311.python, network=("seccomp",)).network == "seccomp"


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"), reason="needs root to become another user")
def test_an_unprivileged_user_gets_a_network_namespace_of_its_own(tmp_path):
    """Not root (a notebook's user): the launcher makes a user namespace to own the network namespace."""
    probe = ("import socket\ntry:\n    socket.create_connection(('192.0.2.1', 80), timeout=3)\n"
             "except OSError as exc:\n    print(exc.errno)\n")
    report = tmp_path / "report.json"
    python = shutil.which("python3", path="/usr/bin:/bin")
    # The checkout (and pytest's tmp_path) may be private to root: the launcher is read from a copy the other
    # user can read, as an installed package would be.
    readable = Path(tempfile.mkdtemp(prefix="numerai-sandbox-test-confine-"))
    try:
        readable.chmod(0o755)
        launcher = readable / "confine.py"
        shutil.copyfile(confine.__file__, launcher)
        launcher.chmod(0o644)
        with open(report, "w") as handle:
            done = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", python,
                                   str(launcher), json.dumps({"network": ["namespace"], "report_fd": handle.fileno()}),
                                   "--", python, "-c", probe], pass_fds=(handle.fileno(),),
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(readable, ignore_errors=True)
    assert done.returncode == 0, done.stderr
    said = json.loads(report.read_text())
    assert said["network"] == "namespace" and "user namespace" in said["detail"]
    assert done.stdout.strip() == "101"


# ---------------------------------------------------------------- the same as a container

@pytest.mark.docker
def test_a_pickle_made_in_the_image_runs_here_as_in_its_container(client, image311, models, venv311, live):
    from runner.sandbox.docker import DockerBackend

    limits = Limits()
    spec = ContainerSpec(image=image311.id, name=f"numerai-sandbox-test-{os.getpid()}", command=HARNESS_ARGS,
                         mounts=mounts(models["good_1arg"], live), limits=limits, user="1000:1000",
                         environment=CONTAINER_ENV)
    in_container = Collected()
    outcome = DockerBackend(client).run(spec, in_container)
    here, in_process = run(venv311, models["good_1arg"], live)
    assert outcome.exit_code == here.outcome.exit_code == 0
    assert kinds(in_container.out) == kinds(in_process.out)
    assert body(in_container.out, "predictions") == body(in_process.out, "predictions")
    assert body(in_container.out, "model") == body(in_process.out, "model")
    log = [line for line in in_container.log.splitlines() if line.startswith("numerai-sandbox harness:")]
    assert log == [line for line in in_process.log.splitlines() if line.startswith("numerai-sandbox harness:")]


# ---------------------------------------------------------------- pure logic

def test_the_seccomp_program_jumps_only_forward_within_itself():
    for machine in confine.SYSCALLS:
        program = confine.seccomp_program(machine)
        assert program[-1][0] == confine.BPF_RET_K
        for index, (code, jt, jf, _) in enumerate(program):
            if code in (confine.BPF_JEQ_K, confine.BPF_JGE_K):
                assert index + 1 + max(jt, jf) < len(program)
    assert confine.seccomp_program("riscv64") is None


def test_inputs_go_only_under_input_and_never_writable(tmp_path):
    source = tmp_path / "model.pkl"
    source.write_bytes(b"x")
    with pytest.raises(ValueError, match="only /input/"):
        process.private_inputs([Mount(source, "/data/model.pkl")], tmp_path / "in")
    with pytest.raises(ValueError, match="writable"):
        process.private_inputs([Mount(source, "/input/model.pkl", writable=True)], tmp_path / "in")
    process.private_inputs([Mount(source, "/input/model.pkl")], tmp_path / "in")
    assert (tmp_path / "in" / "model.pkl").read_bytes() == b"x"


def test_the_containers_tmp_stands_for_the_private_folder():
    env = process.child_environment(Path("/v/bin/python"), CONTAINER_ENV, Path("/w/tmp"))
    assert env["HOME"] == "/w/tmp" and env["MPLCONFIGDIR"] == "/w/tmp/matplotlib" and env["TMPDIR"] == "/w/tmp"
    assert env["PATH"].startswith("/v/bin:")


def test_what_is_not_enforced_is_said():
    common = dict(network_detail="x", cores=(0,), memory_bytes=4 * GiB, timeout_seconds=600.0)
    as_root = process.Confinement(network="namespace", rlimits={"NOFILE": [4096, 4096]}, user="root", **common)
    assert {"processes", "privileges", "filesystem", "tmp"} <= set(as_root.not_enforced())
    assert "network" in as_root.enforced() and "network" not in as_root.not_enforced()
    user = process.Confinement(network="none", rlimits={"NOFILE": [4096, 4096], "NPROC": [600, 600]},
                               user="alice", **common)
    assert "processes" in user.enforced() and "privileges" not in user.not_enforced()
    assert user.not_enforced()["network"].startswith(process.NOT_ISOLATED)


def test_the_harness_reads_inputs_from_a_folder_and_logs_them_as_a_containers(tmp_path):
    from runner.sandbox import harness

    args = harness.argparse.Namespace(model=harness.MODEL, live="/input/live.parquet", benchmarks="/elsewhere/b.pq")
    harness.read_inputs_from(args, str(tmp_path))
    assert args.model == str(tmp_path / "model.pkl") and args.benchmarks == "/elsewhere/b.pq"
    assert harness.shown_path(args, args.model) == "/input/model.pkl"
    assert harness.shown_path(args, args.live) == "/input/live.parquet"
