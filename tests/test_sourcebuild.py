"""Building a pinned release that has no wheel for the image's Python (scikit-learn 1.6.1 for 3.14).

The full build (minutes of compiling) runs in `images fetch --python 3.14`, which `make test-all` does
before its tests; here: which pins need it, what its cache key depends on, how its output becomes
progress, how a failed step is reported, and that nothing is left behind.
"""

from __future__ import annotations

import dataclasses

import pytest

from runner.images import sourcebuild
from runner.images.pins import pin_set, standard_pins


def test_only_314_builds_scikit_learn_from_source():
    recipes = sourcebuild.recipes_for(pin_set("3.14", "standard"))
    assert [(r.name, r.version) for r in recipes] == [("scikit-learn", "1.6.1")]
    assert standard_pins("3.14")["scikit-learn"] == "1.6.1"
    for python in ("3.10", "3.11", "3.12", "3.13"):
        assert sourcebuild.recipes_for(pin_set(python, "standard")) == []


def test_another_pinned_version_is_not_built(tmp_path):
    """--extra-requirements scikit-learn==1.7.2 for 3.14 has a wheel: nothing to build."""
    extra = tmp_path / "extra.txt"
    extra.write_text("scikit-learn==1.7.2\n")
    assert sourcebuild.recipes_for(pin_set("3.14", "standard", extra_requirements=extra)) == []


def test_build_requirements_are_exact_and_use_the_images_numpy_and_scipy():
    pins = pin_set("3.14", "standard")
    recipe = sourcebuild.recipes_for(pins)[0]
    needed = sourcebuild._build_requirements(recipe, pins)
    assert f"numpy=={pins.all['numpy']}" in needed and f"scipy=={pins.all['scipy']}" in needed
    assert all("==" in r for r in needed)
    assert sourcebuild._runtime_closure(recipe, pins) == ["numpy", "scipy", "joblib", "threadpoolctl"]


def test_the_cache_key_follows_every_input():
    pins = pin_set("3.14", "standard")
    recipe = sourcebuild.recipes_for(pins)[0]
    key = sourcebuild.build_key(recipe, pins, "base-a")
    assert key == sourcebuild.build_key(recipe, pins, "base-a")
    assert key != sourcebuild.build_key(recipe, pins, "base-b")
    assert key != sourcebuild.build_key(dataclasses.replace(recipe, tools=("cython==3.1.7",)), pins, "base-a")


def test_build_output_becomes_a_few_progress_lines():
    shown = []
    follower = sourcebuild._BuildOutput("building x", shown.append)
    follower.feed("@@step compiling\n")
    for done in range(1, 201):
        follower.feed(f"[{done}/200] Compiling C object foo_{done}.o\n")
    assert shown[-1] == "building x: compiling, 200/200 steps (100%)"
    follower.feed("[1/50] Linking target foo.so\n[25/50] Linking target bar.so\n")  # a second ninja run
    follower.feed("ERROR: it broke\npartial line without newline")
    assert shown[0] == "building x: compiling"
    assert shown[-2:] == ["building x: compiling, 1/50 steps (2%)", "building x: compiling, 25/50 steps (50%)"]
    assert len(shown) <= 15  # one per 10%, not one per file
    assert follower.step == "compiling" and follower.tail[-1] == "ERROR: it broke"


def test_a_built_wheel_replaces_one_built_from_other_inputs(tmp_path, monkeypatch):
    from runner.images import wheelhouse

    monkeypatch.setenv("NUMERAI_SANDBOX_CACHE", str(tmp_path / "cache"))
    recipe = sourcebuild.RECIPES["3.14"][0]
    new_dir, house = tmp_path / "new", wheelhouse.wheel_dir("3.14")
    new_dir.mkdir(), house.mkdir(parents=True)
    (house / "scikit_learn-1.6.1-cp314-cp314-linux_x86_64.whl").write_bytes(b"old build")
    (house / "numpy-2.4.6-cp314-cp314-manylinux_2_28_x86_64.whl").write_bytes(b"numpy")
    built = new_dir / "scikit_learn-1.6.1-1-cp314-cp314-linux_x86_64.whl"  # a build tag: another file name
    built.write_bytes(b"new build")
    linked = sourcebuild._link(built, "3.14", recipe)
    assert linked.read_bytes() == b"new build"
    assert sorted(p.name for p in house.iterdir()) == ["SHA256SUMS", "numpy-2.4.6-cp314-cp314-manylinux_2_28_x86_64.whl",
                                                        built.name]
    assert not wheelhouse.damaged("3.14", [linked])  # entered whole, its sha256 recorded


def test_a_failing_step_is_one_clear_error_and_leaves_no_container(client, image311):
    shown = []
    script = "echo '@@step doing the thing'; echo 'some output'; echo 'the real problem' >&2; exit 3"
    with pytest.raises(sourcebuild.SourceBuildError) as caught:
        sourcebuild._container(client, image311.ref, ["sh", "-c", script], {}, {}, network=False,
                               label="building demo 1.0", progress=shown.append)
    message = str(caught.value)
    assert message.startswith("building demo 1.0 failed while doing the thing (exit 3): ")
    assert "the real problem" in message and "@@step" not in message
    assert shown == ["building demo 1.0: doing the thing"]


def test_the_env_layer_is_rebuilt_when_the_built_wheel_would_change(monkeypatch):
    from runner.images import bases, store

    base = bases.BaseInfo("3.14", "debian", "/usr/bin/python3.14", "3.14.8", "d" * 64, "a forky base")
    pins = pin_set("3.14", "standard")
    before = store.env_digest(base, pins)
    monkeypatch.setattr(sourcebuild, "RECIPE_VERSION", "next")
    assert store.env_digest(base, pins) != before


def test_an_interrupted_build_removes_its_container(client, image311):
    """Ctrl-C while compiling: the container goes with the process, not left running for minutes."""
    import signal
    import subprocess
    import sys

    from conftest import ROOT, our_containers

    code = (f"from runner.images import sourcebuild\nfrom runner.sandbox import engine\n"
            f"sourcebuild._container(engine.connect(), {image311.ref!r}, ['sh', '-c', 'echo @@step sleeping; "
            f"sleep 300'], {{}}, {{}}, network=False, label='demo', progress=lambda line: print(line, flush=True))")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)
    try:
        assert proc.stdout.readline().strip() == "demo: sleeping"
        mine = [c for c in our_containers(client) if f"/{proc.pid}/" in c["Labels"]["numerai-sandbox.owner"]]
        assert len(mine) == 1 and mine[0]["Labels"]["numerai-sandbox.kind"] == "build"
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) != 0
    finally:
        proc.kill()
    assert not [c for c in our_containers(client) if f"/{proc.pid}/" in c["Labels"]["numerai-sandbox.owner"]]
