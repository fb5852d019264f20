"""`clean` removes what this user left behind and nothing live: other runs and other users' containers stay,
and so does everything of another namespace (a user's kept containers, seen from a test run's) but leaks."""

from __future__ import annotations

import contextlib
import secrets
import signal
import subprocess
import sys
import time

from conftest import LABEL, ROOT, engine_tags, run_cli
from runner.support.paths import NAMESPACE_LABEL, boot_id, hostname, namespace, user_id
from runner.sandbox.leftovers import cleanup_plan
from runner.sandbox.ownership import labels_for

# No process has this pid (Linux's pid_max is at most 2**22): an owner that is certainly gone.
DEAD_OWNER = f"{hostname()}/{boot_id()}/{2**22 + 1}/0.00"


def _info(name: str, space: str | None = None, **labels: str) -> dict:
    return {"Id": name, "Names": [f"/{name}"], "Labels": {f"{LABEL}.{k}": v for k, v in labels.items()}
            | {NAMESPACE_LABEL: space or namespace()}}


def test_cleanup_plan_spares_live_runs_and_other_users_unless_all():
    live = labels_for("run")  # owned by this very process, which runs
    containers = [
        _info("live", **{k.split(".", 1)[1]: v for k, v in live.items()}),
        _info("orphan-mine", kind="run", owner=DEAD_OWNER, uid=user_id()),
        _info("orphan-other-user", kind="run", owner=DEAD_OWNER, uid="99999"),
        _info("kept-mine", kind="run", owner=DEAD_OWNER, uid=user_id(), keep="1"),
        _info("kept-other-user", kind="run", owner=DEAD_OWNER, uid="99999", keep="1"),
        _info("kept-before-uid-labels", kind="run", owner=DEAD_OWNER, keep="1"),
        _info("other-machine", kind="run", owner="elsewhere/boot/1/1.00", uid=user_id()),
        _info("kept-mine-elsewhere", "another-namespace", kind="run", owner=DEAD_OWNER, uid=user_id(), keep="1"),
        _info("live-elsewhere", "another-namespace", **{k.split(".", 1)[1]: v for k, v in live.items()
                                                       if k != NAMESPACE_LABEL}),
        _info("orphan-elsewhere", "another-namespace", kind="run", owner=DEAD_OWNER, uid=user_id()),
    ]
    doomed, left = cleanup_plan(containers)
    assert [c["Id"] for c in doomed] == ["orphan-mine", "orphan-other-user", "kept-mine", "orphan-elsewhere"]
    assert [c["Id"] for c in left] == ["live", "kept-other-user", "kept-before-uid-labels", "other-machine"]
    doomed, left = cleanup_plan(containers, everything=True)
    assert len(doomed) == len(containers) - 2 and not left  # another namespace's are never this clean's


def _wait_for_container_of(client, pid: int, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for info in client.api.containers(all=True, filters={"label": f"{LABEL}.owner"}):
            if f"/{pid}/" in (info.get("Labels") or {}).get(f"{LABEL}.owner", ""):
                return info["Names"][0].lstrip("/")
        time.sleep(0.5)
    raise AssertionError(f"process {pid} started no container")


def _exists(client, name: str) -> bool:
    return bool(client.api.containers(all=True, filters={"name": f"^/{name}$"}))


def test_clean_leaves_another_live_run_other_users_and_other_namespaces_kept_containers(client, image311, models):
    live = subprocess.Popen([sys.executable, "-m", "runner", "run", str(models["sleep_forever"]), "--timeout", "5m",
                             "--json"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    token = secrets.token_hex(4)
    others = []
    try:
        live_name = _wait_for_container_of(client, live.pid)
        kept = run_cli("run", models["good_1arg"], "--keep", "--json").report["container"]["name"]
        assert client.containers.get(kept).labels[f"{LABEL}.uid"] == user_id()
        # Another user's kept container, a leak, and this user's kept container in another namespace (as a
        # user's own are, seen from a test run).
        for name, uid, space, extra in (
                (f"numerai-sandbox-test-kept-{token}", "99999", namespace(), {f"{LABEL}.keep": "1"}),
                (f"numerai-sandbox-test-orphan-{token}", "99999", namespace(), {}),
                (f"numerai-sandbox-test-elsewhere-{token}", user_id(), f"{namespace()}-user", {f"{LABEL}.keep": "1"})):
            client.api.create_container(image311.ref, name=name, labels={
                f"{LABEL}.kind": "run", f"{LABEL}.owner": DEAD_OWNER, f"{LABEL}.uid": uid, NAMESPACE_LABEL: space,
                **extra})
            others.append(name)
        other_kept, orphan, elsewhere = others

        dry = run_cli("clean", "--dry-run")
        assert dry.code == 0 and f"would remove {kept}" in dry.stdout
        assert _exists(client, kept)

        result = run_cli("clean")
        assert result.code == 0, result.stderr
        assert f"removed {kept}" in result.stdout and not _exists(client, kept)
        assert not _exists(client, orphan)  # a leak, whoever made it
        assert _exists(client, live_name) and _exists(client, other_kept)
        assert _exists(client, elsewhere) and elsewhere not in result.stdout  # not this namespace's to clean
        assert f"left {live_name} (a run still going: pid {live.pid})" in result.stdout
        assert f"left {other_kept} (kept by user 99999)" in result.stdout
        assert "clean --all" in result.stdout
        assert live.poll() is None  # the other run goes on
    finally:
        live.send_signal(signal.SIGTERM)
        live.wait(timeout=120)
        for name in others:
            with contextlib.suppress(Exception):
                client.api.remove_container(name, force=True)


def test_clean_removes_the_inputs_images_a_killed_kubernetes_check_left(client, image311):
    """Per-pickle inputs images are owned like containers: a dead owner's go, a live one's stay."""
    import io

    from runner.sandbox.ownership import owner_label

    repository = f"127.0.0.1:5999/numerai-sandbox-inputs-test-{secrets.token_hex(3)}"
    made = {}
    for who, owner in (("dead", DEAD_OWNER), ("live", owner_label())):
        tag = f"{repository}:{who}"
        client.images.build(fileobj=io.BytesIO(f"FROM {image311.id}\nLABEL who={who}\n".encode()), tag=tag, rm=True,
                            network_mode="none", labels={f"{LABEL}.kind": "inputs", f"{LABEL}.owner": owner})
        made[who] = tag
    try:
        planned = run_cli("clean", "--dry-run")
        assert made["dead"] in planned.stdout and made["live"] not in planned.stdout
        assert client.images.get(made["dead"])  # a dry run removes nothing
        assert run_cli("clean").code == 0
        tags = {t for t in engine_tags(client) if t.startswith(f"{repository}:")}
        assert tags == {made["live"]}
    finally:
        for tag in made.values():
            with contextlib.suppress(Exception):
                client.images.remove(tag)
