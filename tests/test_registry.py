"""`images push --registry` against a real registry: Debian's docker-registry, serving on loopback only
(`local_registry` starts one for the test run, `empty_registry` one for a single test).

A push takes what the user names (with only --python, that Python's standard image) and leaves no
local tag behind: not when it ends, not when it is interrupted (SIGINT, SIGTERM), and after a
kill -9 the next `clean` removes the tag the killed push could not.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import (ROOT, borrow_standard_environment, engine_tags, free_loopback_port, image_for,
                      registry_get as _get, relabelled_image, run_cli)


def registry_tags(registry: str) -> list[str]:
    try:
        return _get(f"http://{registry}/v2/numerai-sandbox/tags/list").get("tags") or []
    except OSError:  # the repository does not exist yet
        return []


def test_push_puts_the_runtime_image_in_the_registry_and_leaves_no_local_tag(client, image311, local_registry):
    result = run_cli("images", "push", "--registry", local_registry, "--python", "3.11")
    assert result.code == 0, result.stderr
    expected = f"{local_registry}/numerai-sandbox:py3.11-standard-{image311.digest[:12]}"
    assert f"pushed {expected}" in result.stdout
    assert f"py3.11-standard-{image311.digest[:12]}" in registry_tags(local_registry)
    manifest = _get(f"http://{local_registry}/v2/numerai-sandbox/manifests/py3.11-standard-{image311.digest[:12]}")
    pushed = [layer["digest"] for layer in manifest["layers"]]
    assert len(pushed) == len(client.images.get(image311.id).attrs["RootFS"]["Layers"])
    assert manifest["config"]["digest"] == image311.id  # the very image we run locally
    assert expected not in engine_tags(client)  # the push tag is gone
    # Pushing again uploads nothing new and names the same image.
    again = run_cli("images", "push", "--registry", local_registry, "--python", "3.11")
    assert again.code == 0 and f"pushed {expected}" in again.stdout, again.stderr


def test_only_python_pushes_the_standard_image_and_names_the_others(client, own_namespace, local_registry):
    """However many images of that Python the engine holds (auto images of 6.6 GB, say), --python X alone
    pushes X's standard image, then says which others there are and how to push them."""
    borrow_standard_environment(client, "3.11")
    standard = image_for(client, "3.11")
    auto = relabelled_image(client, standard, "auto-0123456789ab", digest="f" * 64, added='{"torch": "2.7.1"}')
    result = run_cli("images", "push", "--registry", local_registry, "--python", "3.11")
    assert result.code == 0, result.stderr
    assert result.stdout.count("pushed ") == 1 and f"py3.11-standard-{standard.digest[:12]}" in result.stdout
    assert "py3.11-auto-0123456789ab-" not in " ".join(registry_tags(local_registry))
    assert "not pushed, also here for Python 3.11: auto-0123456789ab (adds torch 2.7.1, " in result.stdout
    assert f"--python 3.11 --profile NAME` pushes one of them, `--profile all` every one" in result.stdout
    named = run_cli("images", "push", "--registry", local_registry, "--python", "3.11", "--profile", "auto")
    assert named.code == 0 and named.stdout.count("pushed ") == 1, named.stdout + named.stderr
    assert "py3.11-auto-0123456789ab-ffffffffffff" in registry_tags(local_registry)
    assert "not pushed, also here for Python 3.11: standard" in named.stdout
    every = run_cli("images", "push", "--registry", local_registry, "--python", "3.11", "--profile", "all")
    assert every.code == 0 and every.stdout.count("pushed ") == 2 and "not pushed" not in every.stdout
    assert not [t for t in engine_tags(client) if t.startswith(local_registry)]
    assert auto in engine_tags(client)  # pushing takes nothing away


def test_push_for_a_model_pushes_the_image_it_runs_in(client, image311, models, local_registry):
    result = run_cli("images", "push", "--registry", local_registry, "--for", models["good_1arg"])
    assert result.code == 0, result.stderr
    assert f"pushed {local_registry}/numerai-sandbox:py3.11-standard-{image311.digest[:12]}" in result.stdout


def test_what_is_not_there_is_named_with_its_build_command(client, own_namespace, local_registry, tmp_path):
    missing = run_cli("images", "push", "--registry", local_registry, "--python", "3.12")
    assert missing.code == 3 and "no standard image for Python 3.12 here" in missing.stderr
    assert "`numerai-sandbox images build --python 3.12` builds it" in missing.stderr
    model = tmp_path / "torch_model.pkl"
    subprocess.run([sys.executable, "-c", "import sys, cloudpickle\ndef predict(live_features):\n    import torch\n"
                    "    return live_features\ncloudpickle.dump(predict, open(sys.argv[1], 'wb'))", model], check=True)
    unbuilt = run_cli("images", "push", "--registry", local_registry, "--for", model)
    assert unbuilt.code == 3 and f"`numerai-sandbox images build --for {model}` builds it" in unbuilt.stderr


def test_pushing_names_what_to_push_and_one_image_for_a_model(tmp_path):
    bare = run_cli("images", "push", "--registry", "127.0.0.1:5000")
    assert bare.code == 2 and "name what to push: --python X" in bare.stderr and "Traceback" not in bare.stderr
    model = tmp_path / "m.pkl"
    model.write_bytes(b"\x80\x05N.")
    both = run_cli("images", "push", "--registry", "127.0.0.1:5000", "--for", model, "--profile", "full")
    assert both.code == 2 and "leave out --profile" in both.stderr


def signalled_push(client, registry: str, ref: str, signum: int, meanwhile=lambda: None) -> tuple[int, str, str]:
    """`images push --python 3.11` in a process of its own, sent `signum` once its local tag `ref` exists
    and `meanwhile` has run (the push still going: the registry holds none of the image's 1.2 GB yet);
    its exit code, stdout and stderr."""
    proc = subprocess.Popen([sys.executable, "-m", "runner", "images", "push", "--registry", registry, "--python",
                             "3.11"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        deadline = time.monotonic() + 120
        while ref not in engine_tags(client):
            assert proc.poll() is None, f"the push ended before its tag was seen: {proc.communicate()}"
            assert time.monotonic() < deadline, "the push made no local tag"
            time.sleep(0.1)
        meanwhile()
        time.sleep(0.5)  # into the upload
        os.kill(proc.pid, signum)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    return proc.returncode, out, err


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_push_removes_its_local_tag(client, image311, empty_registry, signum):
    ref = f"{empty_registry}/numerai-sandbox:py3.11-standard-{image311.digest[:12]}"
    code, out, err = signalled_push(client, empty_registry, ref, signum)
    assert code == 3, out + err
    assert f"interrupted ({signum.name}) while pushing {ref}; its local tag is removed" in err
    assert "Traceback" not in err and ref not in engine_tags(client)


def test_a_killed_push_leaves_a_tag_that_clean_removes_and_a_live_push_keeps_its_own(client, image311,
                                                                                     empty_registry):
    ref = f"{empty_registry}/numerai-sandbox:py3.11-standard-{image311.digest[:12]}"

    def clean_while_pushing():  # the push still goes: its tag is its own
        assert ref not in run_cli("clean", "--dry-run").stdout

    code, _, _ = signalled_push(client, empty_registry, ref, signal.SIGKILL, clean_while_pushing)
    assert code == -signal.SIGKILL
    assert ref in engine_tags(client)  # nothing could remove it: the process was killed outright
    planned = run_cli("clean", "--dry-run")
    assert f"would remove {ref} (the local tag of a push that was killed)" in planned.stdout, planned.stdout
    assert ref in engine_tags(client)
    cleaned = run_cli("clean")
    assert cleaned.code == 0 and f"removed {ref} (the local tag of a push that was killed)" in cleaned.stdout
    assert ref not in engine_tags(client)
    assert client.images.get(image311.ref).id == image311.id  # the image itself stays, under its own name
    assert ref not in run_cli("clean", "--dry-run").stdout  # said once, then forgotten


def test_a_push_removes_what_an_earlier_killed_push_left(client, image311, empty_registry):
    ref = f"{empty_registry}/numerai-sandbox:py3.11-standard-{image311.digest[:12]}"
    assert signalled_push(client, empty_registry, ref, signal.SIGKILL)[0] == -signal.SIGKILL
    other = f"127.0.0.1:{free_loopback_port()}"  # unreachable: this push fails, after sweeping
    result = run_cli("images", "push", "--registry", other, "--python", "3.11")
    assert f"removed {ref} (the local tag of an earlier push that was killed)" in result.stdout, result.stdout
    assert ref not in engine_tags(client)


def test_unreachable_registry_is_one_line_and_exit_3(client, image311):
    result = run_cli("images", "push", "--registry", f"127.0.0.1:{free_loopback_port()}", "--python", "3.11")
    assert result.code == 3
    assert "Traceback" not in result.stderr and result.stderr.startswith("numerai-sandbox: error: pushing ")
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("registry, words", [("team", "Docker Hub account"), ("http://127.0.0.1:5000", "without http"),
                                             ("Registry.Example.com", "not a registry"),
                                             ("127.0.0.1:99999", "not a registry")])
def test_a_bad_registry_name_is_a_usage_error(registry, words):
    result = run_cli("images", "push", "--registry", registry)
    assert result.code == 2 and words in result.stderr and "Traceback" not in result.stderr


def test_registry_names_are_checked_without_docker():
    from runner.sandbox.registry import check_registry, remote_ref

    assert check_registry("127.0.0.1:5000/") == "127.0.0.1:5000"
    assert check_registry("registry.example.com/team/ml") == "registry.example.com/team/ml"
    assert check_registry("localhost") == "localhost"
    assert remote_ref("127.0.0.1:5000", "numerai-sandbox:py3.11-standard", "0123456789abcdef") == \
        "127.0.0.1:5000/numerai-sandbox:py3.11-standard-0123456789ab"
    # Whatever namespace the image was built in, the registry knows it by our name and its digest.
    assert remote_ref("127.0.0.1:5000", "ci-42:py3.11-standard", "0123456789abcdef") == \
        "127.0.0.1:5000/numerai-sandbox:py3.11-standard-0123456789ab"
