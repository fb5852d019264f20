"""Shared fixtures: a real Docker engine, the real images, pickles made inside them.

Docker-backed tests are marked `docker`. They fail (not skip) when the engine is
unreachable and NUMERAI_SANDBOX_REQUIRE_DOCKER=1 (as `make test` and CI set it).
Every test checks afterwards that no container of ours is left behind.

The suite's outcome must not depend on what the machine holds, nor may the suite touch what a
user (or another test run) owns. So a test run works in a namespace of its own
(NUMERAI_SANDBOX_NAMESPACE=numerai-sandbox-test-<pid>-<start>, see runner/paths.py): the images it
builds, finds, lists, pushes and removes, the sandboxes it starts, keeps, claims and cleans are its
own; the user's auto images, pre-started sandboxes and kept containers are invisible to it. It
records runs in a history of its own, and the user's defaults for run's options do not apply. What
the run made is removed at its end (and an earlier run's, killed before its end, at the start).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# A `run` may leave a pre-started sandbox behind on purpose (runner/sandbox/pool.py); tests that are
# not about that must leave nothing, so it is off unless a test turns it on.
os.environ["NUMERAI_SANDBOX_WARM"] = "0"
# The user's defaults for run's options (and their history switch) are theirs, not the tests'.
for _name in ("PYTHON", "PROFILE", "DATA", "MEMORY", "CPUS", "TIMEOUT", "ISOLATION", "BACKEND", "NO_HISTORY",
              "WARM_IDLE"):
    os.environ.pop(f"NUMERAI_SANDBOX_{_name}", None)
# Nothing in the suite reaches Numerai, nor sends anyone's API key anywhere: every Numerai call goes to a closed
# local port (an offline machine, as this one is), unless a test points it at its own local Numerai (`numerai`).
os.environ["NUMERAI_API_URL"] = "http://127.0.0.1:9/"
for _key in ("NUMERAI_PUBLIC_ID", "NUMERAI_SECRET_KEY"):
    os.environ.pop(_key, None)
TEST_NAMESPACE_PREFIX = "numerai-sandbox-test-"
def _reference() -> Path | None:
    """The steering repo's reference data (shared/reference): beside the checkout, or where $NUMERAI_SANDBOX_REFERENCE says."""
    candidates = [os.environ.get("NUMERAI_SANDBOX_REFERENCE"), ROOT.parent / "shared" / "reference",
                  Path("/work/shared/reference")]
    return next((Path(c) for c in candidates if c and (Path(c) / "numerai-predict-pins").is_dir()), None)


REFERENCE = _reference()


def numerai_reference_pins(python: str, required: bool = True) -> dict[str, str] | None:
    """Numerai's pins for `python` as its Linux image installs them: the vendored images/py3.X/numerai.txt
    (tests/test_numerai_pins.py checks they are the reference lists, where those are on this machine)."""
    from runner.images.pins import numerai_pins

    pins = numerai_pins(python)
    if pins is None and required:
        pytest.skip(f"no vendored Numerai pin list for Python {python}")
    return pins
LABEL = "numerai-sandbox"


def pythons_under_test() -> list[str]:
    return os.environ.get("TEST_PYTHONS", "3.10 3.11 3.12").split()


@pytest.fixture(scope="session")
def client():
    from runner.sandbox import engine

    try:
        docker_client = engine.connect()
    except engine.EngineUnavailable as exc:
        if os.environ.get("NUMERAI_SANDBOX_REQUIRE_DOCKER") == "1":
            pytest.fail(f"Docker is required here: {exc}")
        pytest.skip(f"no Docker engine: {exc}")
    yield docker_client
    docker_client.close()


@pytest.fixture(scope="session")
def gvisor(client):
    """gVisor's runsc registered with the engine (`make gvisor`); required where NUMERAI_SANDBOX_REQUIRE_GVISOR=1."""
    if "runsc" not in (client.info().get("Runtimes") or {}):
        why = "gVisor's runsc is not registered with the Docker engine (`sudo make gvisor` registers it)"
        if os.environ.get("NUMERAI_SANDBOX_REQUIRE_GVISOR") == "1":
            pytest.fail(why)
        pytest.skip(why)
    return "gvisor"


@pytest.fixture(params=["runc", "gvisor"])
def isolation(request):
    """Each isolation in turn: runc always, gvisor where runsc is registered."""
    if request.param == "gvisor":
        request.getfixturevalue("gvisor")
    return request.param


def borrow_standard_environment(client, python: str) -> None:
    """Give this namespace the standard environment image (Python, pinned wheels: 1.2 GB) for `python`
    that another namespace built from exactly today's inputs (its digest label is the digest of those
    inputs, so it is the image this namespace would build): a second name for the same image, so a test
    run builds only its own harness layer on it. The name goes with the namespace; the image stays."""
    import docker.errors

    from runner.images import bases, store
    from runner.images.pins import pin_set
    from runner.support.paths import APP, namespace

    pins, base = pin_set(python, "standard"), bases.load(python)
    if base is None:
        return
    digest = store.env_digest(base, pins)
    ours = store.env_tag(pins, digest)
    for space in (APP, session_namespace()):
        try:
            image = client.images.get(store.env_tag(pins, digest, space))
        except docker.errors.ImageNotFound:
            continue
        if space != namespace() and (image.labels or {}).get("numerai-sandbox.digest") == digest:
            client.api.tag(image.id, *ours.rsplit(":", 1))
            return


def relabelled_image(client, image, profile: str, **labels: str) -> str:
    """Another image of `image`'s Python in this namespace, named for `profile`: `image` with these labels of
    ours changed (no layer added). What commands find, list, push and remove is decided by an image's name
    and labels, so this stands for an image `images build` would make (an auto image of 6.6 GB, say)."""
    from runner.support.paths import repository

    tag = f"{repository('image')}:py{image.python}-{profile}"
    client.images.build(fileobj=io.BytesIO(f"FROM {image.id}\n".encode()), tag=tag, rm=True, network_mode="none",
                        pull=False, labels={f"{LABEL}.profile": profile,
                                            **{f"{LABEL}.{k.replace('_', '-')}": v for k, v in labels.items()}})
    return tag


def image_for(client, python: str):
    from runner.images import store as images
    from runner.images.pins import pin_set

    try:
        borrow_standard_environment(client, python)
        return images.ensure(client, pin_set(python, "standard"), progress=lambda line: None)
    except images.ImageUnavailable as exc:
        if os.environ.get("NUMERAI_SANDBOX_REQUIRE_DOCKER") == "1":
            pytest.fail(f"the Python {python} image is required: {exc}")
        pytest.skip(f"no Python {python} image: {exc}")


@pytest.fixture(scope="session")
def image311(client):
    return image_for(client, "3.11")


def make_pickles(client, image, script: Path, out: Path, *args: str) -> dict[str, Path]:
    """Run one of our pickle-making scripts inside `image` (so versions always match)."""
    from runner import data
    from runner.sandbox import engine
    from runner.sandbox.backend import Mount

    live = data.synthetic_default()
    out.mkdir(parents=True, exist_ok=True)
    code, output = engine.run_script(
        client, image.id, [f"/scripts/{script.name}", "--features", "/data/features.json", "--out", "/out", *args],
        [Mount(script.parent, "/scripts"), Mount(live.features_json, "/data/features.json"),
         Mount(out, "/out", writable=True)])
    assert code == 0, output
    return {p.stem: p for p in out.glob("*.pkl")}


@pytest.fixture(scope="session")
def models(client, image311, tmp_path_factory) -> dict[str, Path]:
    """The test models of tests/models/make_models.py, pickled inside the Python 3.11 image."""
    out = tmp_path_factory.mktemp("models311")
    return make_pickles(client, image311, ROOT / "tests" / "models" / "make_models.py", out)


@dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str

    @property
    def report(self) -> dict:
        return json.loads(self.stdout)


def run_cli(*args: str, env: dict | None = None, timeout: float = 300) -> CliResult:
    """The real command line in a subprocess, as a user or CI job runs it."""
    full_env = dict(os.environ, **(env or {}))
    proc = subprocess.run([sys.executable, "-m", "runner", *map(str, args)], capture_output=True, text=True,
                          env=full_env, timeout=timeout, cwd=ROOT)
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def numerai():
    """A local Numerai API (tests/numerai_server.py), a real HTTP server on 127.0.0.1: `numerai.env()` points
    a command's numerapi at it, with the account's API key."""
    from numerai_server import LocalNumerai

    with LocalNumerai() as server:
        yield server


@pytest.fixture
def own_cache(tmp_path) -> Path:
    """A cache directory of the test's own (pass it as NUMERAI_SANDBOX_CACHE): no wheels, so what a test
    fetches or finds missing does not depend on what this machine fetched before. The synthetic live data
    and the recorded bases of the machine's cache are linked in (read, not written: they exist already),
    and its locks (shared by every numerai-sandbox process)."""
    from runner.support.paths import cache_dir

    own = tmp_path / "cache"
    own.mkdir()
    for part in ("data", "bases", "locks"):
        if (cache_dir() / part).is_dir():
            (own / part).symlink_to(cache_dir() / part)
    return own


def engine_tags(client) -> set[str]:
    """Every image tag the engine holds, in one call (listing images one by one races with anyone
    removing an image meanwhile)."""
    return {t for info in client.api.images() for t in info.get("RepoTags") or [] if t != "<none>:<none>"}


def our_containers(client) -> list[dict]:
    """The containers this test run's namespace holds (another run's, or the user's, are not ours to judge)."""
    from runner.support.paths import NAMESPACE_LABEL, namespace

    return client.api.containers(all=True, filters={"label": [f"{LABEL}.owner", f"{NAMESPACE_LABEL}={namespace()}"]})


@pytest.fixture(autouse=True, scope="session")
def history_of_the_tests(tmp_path_factory):
    """The runs the tests make are recorded in a history of their own, never in the user's."""
    before = os.environ.get("NUMERAI_SANDBOX_HISTORY_DIR")
    os.environ["NUMERAI_SANDBOX_HISTORY_DIR"] = str(tmp_path_factory.mktemp("history"))
    yield
    if before is None:
        os.environ.pop("NUMERAI_SANDBOX_HISTORY_DIR", None)
    else:
        os.environ["NUMERAI_SANDBOX_HISTORY_DIR"] = before


def _this_host() -> str:
    import hashlib

    from runner.support.paths import hostname

    return hashlib.sha256(hostname().encode()).hexdigest()[:8]


def session_namespace() -> str:
    """This test run's namespace: its host and its pytest process, by pid and start time, so a later run
    can tell whether the run that made a namespace is still going."""
    import psutil

    me = psutil.Process()
    return f"{TEST_NAMESPACE_PREFIX}{_this_host()}-{me.pid}-{int(me.create_time())}"


def _namespace_alive(space: str) -> bool:
    """Whether the test run a namespace is named after still runs (another host's: not ours to judge)."""
    import psutil

    host, pid, started = (space[len(TEST_NAMESPACE_PREFIX):].split("-") + ["", "", ""])[:3]
    if host != _this_host():
        return True
    try:
        return abs(psutil.Process(int(pid)).create_time() - int(started)) < 2
    except (ValueError, psutil.Error):
        return False


def remove_namespace(client, space: str) -> list[str]:
    """Everything a test namespace holds in the engine (and the namespaces derived from it, `space-…`):
    its containers, then its images by name, runtime images before the environments they are built on.
    A name borrowed from another namespace goes; the image stays, under its other name."""
    import docker.errors

    from runner.support.paths import NAMESPACE_LABEL

    removed = []
    for info in client.api.containers(all=True, filters={"label": NAMESPACE_LABEL}):
        owner = (info.get("Labels") or {}).get(NAMESPACE_LABEL, "")
        if owner == space or owner.startswith(f"{space}-"):
            with contextlib.suppress(docker.errors.APIError):
                client.api.remove_container(info["Id"], force=True, v=True)
                removed.append(info["Names"][0])
    tags = [t for t in engine_tags(client) if t.startswith((f"{space}:", f"{space}-"))]
    for tag in sorted(tags, key=lambda t: (t.split(":")[0].endswith("-base"), t.split(":")[0].endswith("-env"))):
        with contextlib.suppress(docker.errors.APIError):
            client.images.remove(tag)
            removed.append(tag)
    return removed


def remove_dead_test_namespaces(client) -> list[str]:
    """What earlier test runs, killed before their end, left in their namespaces (never a running one's)."""
    from runner.support.paths import NAMESPACE_LABEL

    spaces = {t.split(":")[0] for t in engine_tags(client) if t.startswith(TEST_NAMESPACE_PREFIX)}
    spaces |= {(c.get("Labels") or {}).get(NAMESPACE_LABEL, "") for c in
               client.api.containers(all=True, filters={"label": NAMESPACE_LABEL})}
    dead = {"-".join(s.split("-")[:6]) for s in spaces if s.startswith(TEST_NAMESPACE_PREFIX)
            and not _namespace_alive(s)}
    return [name for space in sorted(dead) for name in remove_namespace(client, space)]


# What a test run shares with the machine's cache: what `make test` fetched (wheels, bases), what is made
# the same for everyone (synthetic data, the HTML report's script) and the locks every numerai-sandbox
# process on the machine coordinates by. Not shared: a fetched Numerai round (runs would use it instead of
# the synthetic data the tests expect), pre-started sandboxes' slots, push-tag notes, untagged-image notes.
SHARED_CACHE_PARTS = ("wheels", "bases", "data", "html", "locks")


@pytest.fixture(autouse=True, scope="session")
def cache_of_the_tests(tmp_path_factory):
    """A cache of the test run's own, holding the machine cache's shared parts (SHARED_CACHE_PARTS) by
    link: what a user fetched or left there beyond those (Numerai's round, say) does not reach a test."""
    from runner.support.paths import cache_dir, ensure_dir

    before = os.environ.get("NUMERAI_SANDBOX_CACHE")
    machine = cache_dir()
    own = tmp_path_factory.mktemp("cache")
    for part in SHARED_CACHE_PARTS:
        (own / part).symlink_to(ensure_dir(machine / part), target_is_directory=True)
    os.environ["NUMERAI_SANDBOX_CACHE"] = str(own)
    yield own
    if before is None:
        os.environ.pop("NUMERAI_SANDBOX_CACHE", None)
    else:
        os.environ["NUMERAI_SANDBOX_CACHE"] = before


@pytest.fixture(autouse=True, scope="session")
def namespace_of_the_tests():
    """The images and sandboxes the tests make are this run's own, in a namespace of its own; removed at
    the end (the user's state is never seen, nor touched)."""
    from runner.support.paths import NAMESPACE_ENV

    before = os.environ.get(NAMESPACE_ENV)
    space = session_namespace()
    os.environ[NAMESPACE_ENV] = space
    docker_client = _engine_or_none()
    if docker_client is not None:
        remove_dead_test_namespaces(docker_client)
    yield space
    if docker_client is not None:
        remove_namespace(docker_client, space)
        docker_client.close()
    if before is None:
        os.environ.pop(NAMESPACE_ENV, None)
    else:
        os.environ[NAMESPACE_ENV] = before


def _engine_or_none():
    from runner.sandbox import engine

    try:
        return engine.connect()
    except engine.EngineUnavailable:
        return None


@pytest.fixture
def own_namespace(monkeypatch, client) -> str:
    """A namespace of this test's own, empty: images it lacks are missing by construction (the run's
    standard environments can be borrowed into it with borrow_standard_environment). Emptied afterwards."""
    import secrets

    from runner.support.paths import NAMESPACE_ENV

    space = f"{session_namespace()}-t{secrets.token_hex(3)}"
    monkeypatch.setenv(NAMESPACE_ENV, space)
    yield space
    left = leaked_containers(client)  # before they go with the namespace
    remove_namespace(client, space)
    assert not left, f"containers left behind: {left}"


@pytest.fixture
def runs_dir(tmp_path, monkeypatch):
    """A run history of this test's own, recording on (what `numerai-sandbox runs` reads)."""
    where = tmp_path / "history"
    monkeypatch.setenv("NUMERAI_SANDBOX_HISTORY_DIR", str(where))
    monkeypatch.delenv("NUMERAI_SANDBOX_NO_HISTORY", raising=False)
    return where


@pytest.fixture(autouse=True)
def no_leftover_containers(request):
    """After every Docker test: nothing of ours remains (kept containers excepted, and removed)."""
    yield
    if "client" not in request.fixturenames:
        return
    left = leaked_containers(request.getfixturevalue("client"))
    assert not left, f"containers left behind: {left}"


def leaked_containers(client) -> list[str]:
    """This namespace's containers whose owning process has exited (a live owner is another run in
    progress), kept ones excepted. Another run's (or the user's) leak is not this test's."""
    from runner.sandbox.ownership import owner_alive

    return [c["Names"] for c in our_containers(client) if (c.get("Labels") or {}).get(f"{LABEL}.keep") != "1"
            and not owner_alive((c.get("Labels") or {}).get(f"{LABEL}.owner", ""))]


def pytest_collection_modifyitems(config, items):
    for item in items:
        if "client" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.docker)
        if "gvisor" in getattr(item, "fixturenames", ()) or "[gvisor" in item.name:
            item.add_marker(pytest.mark.gvisor)


def pyenv_python(version: str) -> Path | None:
    """The pyenv-installed CPython `version` (e.g. "3.12"), newest patch, if this machine has it."""
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    found = sorted((p for p in root.glob(f"{version}.*") if p.name.count(".") == 2 and
                    p.name.split(".")[2].isdigit()), key=lambda p: int(p.name.split(".")[2]))
    return found[-1] / "bin" / f"python{version}" if found else None


@pytest.fixture(scope="session")
def cpython_venv(tmp_path_factory):
    """venv_python(version, *packages): a throwaway venv of pyenv's CPython `version` with packages."""
    made: dict[tuple, Path] = {}

    def make(version: str, *packages: str) -> Path:
        key = (version, packages)
        if key not in made:
            base = pyenv_python(version)
            if base is None:
                pytest.skip(f"pyenv has no CPython {version} here")
            venv = tmp_path_factory.mktemp(f"venv{version}")
            subprocess.run([str(base), "-m", "venv", str(venv)], check=True)
            subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", *packages],
                           check=True, capture_output=True)
            made[key] = venv / "bin" / "python"
        return made[key]

    return make


PICKLE_A_FUNCTION = """
import sys, cloudpickle
def predict(live_features):
    import pandas as pd
    ranks = live_features.filter(like="feature_").iloc[:, :20].sum(axis=1).rank(pct=True, method="first")
    return pd.DataFrame({"prediction": ranks}, index=live_features.index)
with open(sys.argv[1], "wb") as handle:
    cloudpickle.dump(predict, handle)
"""


def pickle_with(python: Path, out: Path) -> Path:
    """A 1-argument predict function cloudpickled by the given interpreter."""
    subprocess.run([str(python), "-c", PICKLE_A_FUNCTION, str(out)], check=True)
    return out


@pytest.fixture
def host_pickle(tmp_path) -> Path:
    """A 1-argument function cloudpickled by the host's own Python (nothing runs it here)."""
    import cloudpickle

    def predict(live_features):
        return live_features

    path = tmp_path / "model.pkl"
    path.write_bytes(cloudpickle.dumps(predict))
    return path


# ---------------------------------------------------------------- a registry on loopback

REGISTRY_BINARY = shutil.which("docker-registry") or "/usr/bin/docker-registry"


def free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def registry_get(url: str) -> dict:
    with urllib.request.urlopen(urllib.request.Request(url, headers={
            "Accept": "application/vnd.docker.distribution.manifest.v2+json"}), timeout=10) as response:
        return json.loads(response.read())


@contextlib.contextmanager
def serve_registry(root: Path):
    """HOST:PORT of Debian's docker-registry serving on a free 127.0.0.1 port, its storage under `root`;
    stopped, and its storage removed, afterwards. Docker pushes to 127.0.0.0/8 over plain HTTP without any
    configuration."""
    if not os.path.exists(REGISTRY_BINARY):
        why = "Debian's docker-registry is not installed (`make test` installs it)"
        if os.environ.get("NUMERAI_SANDBOX_REQUIRE_DOCKER") == "1":
            pytest.fail(why)
        pytest.skip(why)
    port = free_loopback_port()
    config = root / "config.yml"
    config.write_text(f"version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
                      f"http:\n  addr: 127.0.0.1:{port}\n")
    log = open(root / "registry.log", "wb")
    proc = subprocess.Popen([REGISTRY_BINARY, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT)
    address = f"127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                registry_get(f"http://{address}/v2/")
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(f"the registry did not start: {(root / 'registry.log').read_text()[-2000:]}")
                time.sleep(0.2)
        yield address
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(root / "data", ignore_errors=True)  # gigabytes of pushed layers, kept by nobody


@pytest.fixture(scope="session")
def local_registry(tmp_path_factory):
    """A registry on loopback for the whole test run (see serve_registry)."""
    with serve_registry(tmp_path_factory.mktemp("registry")) as address:
        yield address


@pytest.fixture
def empty_registry(tmp_path):
    """A registry on loopback of this test's own: it holds no layer yet, so a push to it takes a while."""
    with serve_registry(tmp_path) as address:
        yield address


def pickle_made_by(client, python: str, cloudpickle: str, cpython_venv, out: Path) -> Path:
    """pickle_with pyenv's CPython `python` and `cloudpickle`; where pyenv lacks that Python (3.14 here),
    the same function pickled by the image's own interpreter and cloudpickle instead."""
    if pyenv_python(python) is not None:
        return pickle_with(cpython_venv(python, cloudpickle), out)
    from runner.sandbox import engine
    from runner.sandbox.backend import Mount

    script = out.parent / "pickle_a_function.py"
    script.write_text(PICKLE_A_FUNCTION)
    code, output = engine.run_script(client, image_for(client, python).id, [f"/work/{script.name}",
                                     f"/work/{out.name}"], [Mount(out.parent, "/work", writable=True)])
    assert code == 0, output
    return out
