"""`images push --registry` against a real registry: Debian's docker-registry, serving on loopback only
(the `local_registry` fixture starts it on a free 127.0.0.1 port and stops it afterwards)."""

from __future__ import annotations

import pytest

from conftest import free_loopback_port, registry_get as _get, run_cli


def test_push_puts_the_runtime_image_in_the_registry_and_leaves_no_local_tag(client, image311, local_registry):
    result = run_cli("images", "push", "--registry", local_registry, "--python", "3.11")
    assert result.code == 0, result.stderr
    expected = f"{local_registry}/numerai-sandbox:py3.11-standard-{image311.digest[:12]}"
    assert f"pushed {expected}" in result.stdout
    tags = _get(f"http://{local_registry}/v2/numerai-sandbox/tags/list")["tags"]
    assert f"py3.11-standard-{image311.digest[:12]}" in tags
    manifest = _get(f"http://{local_registry}/v2/numerai-sandbox/manifests/py3.11-standard-{image311.digest[:12]}")
    pushed = [layer["digest"] for layer in manifest["layers"]]
    assert len(pushed) == len(client.images.get(image311.id).attrs["RootFS"]["Layers"])
    assert manifest["config"]["digest"] == image311.id  # the very image we run locally
    assert expected not in {t for i in client.images.list() for t in i.tags}  # the push tag is gone
    # Pushing again uploads nothing new and names the same image.
    again = run_cli("images", "push", "--registry", local_registry, "--python", "3.11")
    assert again.code == 0 and f"pushed {expected}" in again.stdout, again.stderr


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
