"""Our images are ours by name, not by inherited labels: an image a user builds FROM one of ours is
never used, listed, retired, pruned or removed by any command of ours. And removing every image asks.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import pty
import secrets
import subprocess
import sys

import pytest

from conftest import LABEL, ROOT, run_cli
from runner.images import store
from runner.images.pins import pin_set
from runner.support.paths import repository


@pytest.fixture
def derive(client):
    """derive(base_ref, labels, entrypoint=None) -> image id: a user's image FROM one of ours, built with
    the network off; every image it made (dangling ones too) is removed afterwards."""
    made: list[str] = []
    repository = f"numerai-sandbox-test-derived-{secrets.token_hex(4)}"

    def build(base: str, labels: dict[str, str] | None = None, entrypoint: str | None = None,
              tag: str = "latest") -> str:
        lines = [f"FROM {base}"] + [f'LABEL {LABEL}.{k}="{v}"' for k, v in (labels or {}).items()]
        lines += [f'ENTRYPOINT ["{entrypoint}"]'] if entrypoint else []
        image, _ = client.images.build(fileobj=io.BytesIO("\n".join(lines).encode()), tag=f"{repository}:{tag}",
                                       network_mode="none", pull=False, rm=True)
        made.append(image.id)
        return image.id

    yield build
    for image_id in reversed(made):
        with contextlib.suppress(Exception):
            client.images.remove(image_id, force=True)


def _exists(client, image_id: str) -> bool:
    try:
        client.images.get(image_id)
        return True
    except Exception:  # noqa: BLE001 - ImageNotFound
        return False


def test_a_newer_derived_image_is_never_run_nor_listed(client, image311, derive, models):
    derived = derive(image311.ref, {"built": "2999-01-01T00:00:00+00:00"}, entrypoint="/bin/false")
    assert client.images.get(derived).labels[f"{LABEL}.harness"] == store.harness_digest()  # inherited
    found = store.find(client, pin_set("3.11", "standard"))
    assert found is None or found.id != derived
    report = run_cli("run", models["good_1arg"], "--python", "3.11", "--json").report
    assert report["status"] == "Success" and report["image"]["id"] != derived, report["message"]
    listed = json.loads(run_cli("images", "list", "--json").stdout)
    assert derived not in [i["id"] for i in listed]
    assert all(i["ref"].startswith(f"{repository('image')}:py") for i in listed)


def test_derived_images_are_never_retired_pruned_or_removed(client, image311, derive):
    token = secrets.token_hex(4)
    # Labels of its own make the queries match the derived images alone, so nothing of anyone else's is touched.
    runtime_like = derive(image311.ref, {"lock": f"derived-{token}", "profile": f"derived{token}"}, tag="runtime")
    env_like = derive(image311.ref, {"kind": "env", "lock": f"derived-{token}"}, tag="env")
    base_like = derive(image311.ref, {"kind": "base", "python": f"derived-{token}"}, tag="base")
    dangling = derive(image311.ref, {"lock": f"derived-{token}", "profile": f"derived{token}", "n": "1"}, tag="again")
    derive(image311.ref, {"lock": f"derived-{token}", "profile": f"derived{token}", "n": "2"}, tag="again")
    assert client.images.get(dangling).tags == []  # rebuilt under the same tag: left dangling, our labels on it

    store.retire_older(client, "image", "no-such-image", python="3.11", lock=f"derived-{token}")
    store.retire_older(client, "env", "no-such-image", python="3.11", lock=f"derived-{token}")
    store.retire_older(client, "base", "no-such-image", python=f"derived-{token}")
    store.prune_untagged(client)
    assert store.removal_plan(client, "3.11", f"derived{token}") == []
    removed = run_cli("images", "rm", "--python", "3.11", "--profile", f"derived{token}", "--yes")
    assert removed.code == 0 and "nothing to remove" in removed.stdout, removed.stdout + removed.stderr
    for image_id in (runtime_like, env_like, base_like, dangling):
        assert _exists(client, image_id)


def test_removing_every_image_asks_first(client, image311):
    dry = run_cli("images", "rm", "--dry-run")
    assert dry.code == 0 and f"would remove {image311.ref}" in dry.stdout, dry.stdout + dry.stderr
    refused = run_cli("images", "rm")  # no filter, no terminal, no --yes
    assert refused.code == 2 and "--yes" in refused.stderr and "Traceback" not in refused.stderr
    assert image311.ref in refused.stderr and "removed" not in refused.stdout
    # On a terminal it asks; answering no removes nothing.
    leader, follower = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "runner", "images", "rm"], stdin=follower, stdout=follower,
                            stderr=follower, cwd=ROOT)
    os.close(follower)
    output = b""
    try:
        while b"[y/N]" not in output:
            chunk = os.read(leader, 4096)  # OSError once the process is gone without asking
            output += chunk
        os.write(leader, b"n\n")
        assert proc.wait(timeout=60) == 1
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(leader)
    assert b"Remove every numerai-sandbox image" in output and b"removed" not in output
