"""Put "a machine that has used numerai-sandbox" in place, check it is still there, remove exactly it.

The test suite must pass, and leave the user's things alone, on a machine where the tool has been
used the way a user uses it. scripts/check-independence.sh runs the suite, then `put`, then the
suite again, then `check` (was anything of the user's destroyed?) and `remove`. What `put` makes,
all in the default namespace, as a user's commands would:

  auto images   an auto image for a pickle needing torch, one for a pickle needing numerai-tools and
                torch (both also "more images for Python 3.11" that a push could take). By default
                stand-ins: the standard image relabelled as the auto image those pickles resolve to,
                which `run`, `images list`, `push` and `rm` treat exactly as the real one (what
                matters to a test is that the image is there); --pad-mb adds a layer of random bytes
                so pushing one costs what pushing a big image costs. --real-torch fetches (~3 GB) and
                builds the real ones instead.
  sandboxes     idle pre-started sandboxes left by `run` with NUMERAI_SANDBOX_WARM=1 (one per memory
                limit, so they do not serve one another), idle for two hours
  kept          a container left by `run --keep` (--kept N)
  history       records added to the user's run history (never past its cap: no record of the
                user's is pruned to make room)
  round         when no Numerai round is cached (`data fetch`, which runs then prefer to the
                synthetic data): one, of 500 rows cut from the synthetic data (--no-round: none)

Everything made is recorded in a state file (default: $NUMERAI_SANDBOX_CACHE/used-machine.json), so
`check` and `remove` act on exactly that and nothing else.

    python scripts/used_machine.py put [--real-torch] [--pad-mb N] [--warm N] [--history N]
    python scripts/used_machine.py check
    python scripts/used_machine.py remove
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runner.support.paths import LABEL, cache_dir  # noqa: E402

STAND_IN = f"{LABEL}.stand-in"
LEFT_WARM = re.compile(r"left a pre-started sandbox \((numerai-sandbox-warm-[0-9a-f]+)\)")
WARM_IDLE_SECONDS = 7200  # outlasts a second run of the suite


def predict_with_torch(live_features):
    import torch  # noqa: F401 - what the inspection reads: the auto profile adds torch

    return plain_predict(live_features)


def predict_with_numerai_tools(live_features):
    import numerai_tools.scoring  # noqa: F401 - numerai-tools, which needs torch too
    import torch  # noqa: F401

    return plain_predict(live_features)


def plain_predict(live_features):
    import pandas as pd

    ranks = live_features.filter(like="feature_").iloc[:, :20].sum(axis=1).rank(pct=True, method="first")
    return pd.DataFrame({"prediction": ranks}, index=live_features.index)


NEEDS = {"torch": predict_with_torch, "numerai_tools": predict_with_numerai_tools}


def state_file(given: str | None) -> Path:
    return Path(given) if given else cache_dir() / "used-machine.json"


def cli(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    """The real command line, as the user runs it (in the default namespace: see main)."""
    proc = subprocess.run([sys.executable, "-m", "runner", *map(str, args)], capture_output=True, text=True,
                          env=dict(os.environ, **(env or {})), cwd=ROOT)
    if check and proc.returncode not in (0, 1):
        raise SystemExit(f"`numerai-sandbox {' '.join(map(str, args))}` failed ({proc.returncode}): "
                         f"{(proc.stderr or proc.stdout).strip()[-2000:]}")
    return proc


def pickled(out: Path, predict) -> Path:
    """`predict` cloudpickled by value (this script runs as __main__), by this (Python 3.11) interpreter."""
    import cloudpickle

    out.write_bytes(cloudpickle.dumps(predict))
    return out


def auto_pins(model: Path):
    from runner.images.pins import pin_set
    from runner.inspection.analysis import inspect_pickle, numerai_additions

    return pin_set("3.11", "auto", needs=numerai_additions(inspect_pickle(model), "3.11"))


def stand_in(client, model: Path, pad_mb: int) -> str:
    """The standard 3.11 image relabelled as the auto image `run MODEL` looks for (plus pad_mb MiB of
    random bytes): found, listed, pushed and removed like the real one."""
    from runner.images import bases, store
    from runner.images.pins import pin_set

    standard = store.ensure(client, pin_set("3.11", "standard"), progress=lambda line: None)
    pins = auto_pins(model)
    base = bases.load("3.11")
    labels = {f"{LABEL}.profile": pins.tag_profile, f"{LABEL}.lock": pins.digest(),
              f"{LABEL}.env-digest": store.env_digest(base, pins) if base else "",
              f"{LABEL}.digest": os.urandom(32).hex(), f"{LABEL}.packages": json.dumps(pins.all, sort_keys=True),
              f"{LABEL}.added": json.dumps(pins.added, sort_keys=True), STAND_IN: "used-machine"}
    tag = store.runtime_tag(pins)
    with tempfile.TemporaryDirectory() as work:
        lines = [f"FROM {standard.id}"]
        if pad_mb:
            with open(Path(work) / "pad", "wb") as pad:
                for _ in range(pad_mb):
                    pad.write(os.urandom(1 << 20))
            lines.append("COPY pad /opt/used-machine-pad")
        (Path(work) / "Dockerfile").write_text("\n".join(lines) + "\n")
        client.images.build(path=work, tag=tag, labels=labels, network_mode="none", pull=False, rm=True)
    return tag


def put(args) -> None:
    from runner.usecases import history
    from runner.images.store import runtime_tag
    from runner.sandbox import engine

    path = state_file(args.state)
    if path.exists():
        raise SystemExit(f"{path} exists: `remove` what an earlier `put` made first")
    client = engine.connect()
    made: dict = {"images": [], "built": [], "wheels": [], "warm": [], "kept": [], "history": []}
    work = Path(tempfile.mkdtemp(prefix="used-machine-"))
    made["work"] = str(work)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        for name, predict in NEEDS.items():
            model = pickled(work / f"needs_{name}.pkl", predict)
            pins = auto_pins(model)
            tag = runtime_tag(pins)
            if _exists(client, tag):  # the machine has it already (a user's): it stays theirs
                print(f"auto image for a pickle needing {name}: {tag} (there already)")
                continue
            if args.real_torch:
                wheels = set(_wheels())
                cli("images", "fetch", "--for", model)
                made["wheels"] += sorted(set(_wheels()) - wheels)
                cli("images", "build", "--for", model)
                made["built"].append(pins.tag_profile)
            else:
                made["images"].append(stand_in(client, model, args.pad_mb))
            print(f"auto image for a pickle needing {name}: {tag}")
        plain = pickled(work / "plain.pkl", plain_predict)
        for index in range(args.warm):
            report = run(plain, "--memory", f"{2 + index}g", warm=True)
            made["history"].append(report["history_id"])
            made["warm"] += LEFT_WARM.findall(" ".join(report.get("notes") or []))
        print(f"idle pre-started sandboxes: {', '.join(made['warm']) or 'none'}")
        for _ in range(args.kept):
            report = run(plain, "--keep")
            made["history"].append(report["history_id"])
            made["kept"].append(report["container"]["name"])
        print(f"kept containers: {', '.join(made['kept']) or 'none'}")
        if args.round:
            made["round"] = fetched_round()
            print(f"a fetched Numerai round: {made['round'] or 'there already'}")
        room = history.KEEP_RUNS - len(history.ids()) - 1  # no record of the user's is pruned for these
        now = datetime.now(timezone.utc)
        for index in range(max(0, min(args.history, room))):
            made["history"].append(history.record(_a_report(plain), when=now - timedelta(minutes=index + 1)))
    finally:
        made["history"] = [i for i in made["history"] if i]
        path.write_text(json.dumps(made, indent=1))
        print(f"run history: {len(made['history'])} records added ({len(history.ids())} in all)")
        print(f"recorded in {path}")


def run(model: Path, *args: str, warm: bool = False) -> dict:
    """`run MODEL --json` as the user runs it; its report (a pre-started sandbox left only when `warm`)."""
    env = {"NUMERAI_SANDBOX_WARM": "1", "NUMERAI_SANDBOX_WARM_IDLE": str(WARM_IDLE_SECONDS)} if warm else \
        {"NUMERAI_SANDBOX_WARM": "0"}
    return json.loads(cli("run", model, "--python", "3.11", "--json", *args, env=env).stdout)


def fetched_round() -> str | None:
    """A cached round as `data fetch` leaves one, when there is none (one of the user's stays the newest)."""
    import shutil

    import pyarrow.parquet as pq

    from runner import data
    from runner.data import numerai

    if numerai.newest_round() is not None:
        return None
    synthetic = data.synthetic_default()
    directory = numerai.root() / "v5.2" / "round-1"
    directory.mkdir(parents=True)
    pq.write_table(pq.read_table(synthetic.live).slice(0, 500), directory / numerai.LIVE)
    shutil.copyfile(synthetic.features_json, directory / numerai.FEATURES)
    (directory / "meta.json").write_text(json.dumps({"round": 1, "fetched_at": time.time()}))
    return str(directory)


def _wheels() -> list[str]:
    return [str(p) for p in (cache_dir() / "wheels" / "py3.11").glob("*.whl")]


def _a_report(model: Path):
    from runner.verdict.lifecycle import Status
    from runner.verdict.report import Report

    return Report(Status.SUCCESS, None, "", python="3.11", python_full="3.11.2",
                  limits={"memory_bytes": 4 * 1024**3, "cpus": 1.0, "timeout_seconds": 600},
                  model={"path": str(model), "size_bytes": model.stat().st_size, "sha256": "ab" * 32},
                  durations={"total": 3.5}, n_predictions=6720,
                  data={"source": "synthetic", "description": "synthetic v5-shaped live data"})


def _exists(client, ref: str) -> bool:
    import docker.errors

    try:
        client.images.get(ref)
        return True
    except docker.errors.ImageNotFound:
        return False


def _container_exists(client, name: str) -> bool:
    return bool(client.api.containers(all=True, filters={"name": f"^/{name}$"}))


def check(args) -> int:
    """Whether everything `put` made is still there (a test that removed it destroyed a user's state)."""
    from runner.usecases import history
    from runner.sandbox import engine

    made = json.loads(state_file(args.state).read_text())
    client = engine.connect()
    listed = json.loads(cli("images", "list", "--json").stdout)
    gone = [f"image {t}" for t in made["images"] if not _exists(client, t)]
    gone += [f"auto image {p}" for p in made["built"] if p not in {i["profile"] for i in listed}]
    gone += [f"pre-started sandbox {n}" for n in made["warm"] if not _container_exists(client, n)]
    gone += [f"kept container {n}" for n in made["kept"] if not _container_exists(client, n)]
    have = set(history.ids())
    gone += [f"run record {i}" for i in made["history"] if i not in have]
    if made.get("round") and not Path(made["round"]).is_dir():
        gone.append(f"fetched round {made['round']}")
    for what in gone:
        print(f"GONE: {what}")
    print("the used-machine state is intact" if not gone else f"{len(gone)} things of the user's are gone")
    return 1 if gone else 0


def remove(args) -> None:
    import shutil

    import docker.errors

    from runner.usecases import history
    from runner.sandbox import engine

    path = state_file(args.state)
    if not path.exists():
        print(f"nothing recorded in {path}")
        return
    made = json.loads(path.read_text())
    client = engine.connect()
    for name in made["warm"] + made["kept"]:
        if _container_exists(client, name):
            client.api.remove_container(name, force=True, v=True)
            print(f"removed container {name}")
    for tag in made["images"]:
        try:
            client.images.remove(tag)
            print(f"removed image {tag}")
        except docker.errors.ImageNotFound:
            pass
    for profile in made["built"]:  # the image and its environment layer
        print(cli("images", "rm", "--python", "3.11", "--profile", profile, "--yes").stdout.strip())
    for wheel in made["wheels"]:
        Path(wheel).unlink(missing_ok=True)
    if made.get("round"):
        shutil.rmtree(made["round"], ignore_errors=True)
        for parent in Path(made["round"]).parents[:2]:  # v5.2/ and numerai/, unless something else is there
            with contextlib.suppress(OSError):
                parent.rmdir()
        print(f"removed {made['round']}")
    if made["history"]:
        print(f"removed {len(history.remove(made['history']))} run records")
    shutil.rmtree(made.get("work", "/nonexistent"), ignore_errors=True)
    path.unlink()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--state", help="the state file (default: $NUMERAI_SANDBOX_CACHE/used-machine.json)")
    commands = parser.add_subparsers(dest="command", required=True)
    made = commands.add_parser("put", help="make the state and record it")
    made.add_argument("--real-torch", action="store_true", help="fetch (~3 GB) and build the real torch images")
    made.add_argument("--pad-mb", type=int, default=0, help="random MiB in each stand-in (pushing it costs that)")
    made.add_argument("--warm", type=int, default=3, help="idle pre-started sandboxes to leave (default 3)")
    made.add_argument("--kept", type=int, default=1, help="containers to leave with `run --keep` (default 1)")
    made.add_argument("--no-round", dest="round", action="store_false", help="no fetched Numerai round")
    made.add_argument("--history", type=int, default=300, help="run records to add (default 300)")
    commands.add_parser("check", help="is everything `put` made still there? (exit 1 if not)")
    commands.add_parser("remove", help="remove exactly what `put` made")
    args = parser.parse_args()
    os.environ.pop("NUMERAI_SANDBOX_NAMESPACE", None)  # the user's own: the default namespace
    if args.command == "put":
        put(args)
        return 0
    if args.command == "check":
        return check(args)
    remove(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
