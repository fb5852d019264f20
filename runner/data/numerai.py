"""Numerai's real live data: rounds fetched with numerapi into the cache, the newest used first.

    <cache>/numerai/<version>/round-<N>/live.parquet, live_benchmark_models.parquet, features.json, meta.json
    <cache>/numerai/<version>/features.json        the newest features.json of that version

`data fetch` is the networked step; `run` only reads what is here. numerapi is imported
only when something is downloaded, through runner.numerai_api (where NUMERAI_API_URL points
it, and the API's host is probed first, 10 s at most).

A round enters the cache whole (downloaded into a staging folder, renamed into place) with
each file's sha256 in its meta.json. A file truncated or altered since is found before a run
uses it (runner.support.paths.changed: by its stamp, then its sha256): `run` names it, `data fetch`
downloads it again. A disk that fills during a download is the machine's error (an OSError),
never "is this machine online?".
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import psutil

from ..support.disk import refused_write
from ..support.paths import TEMP_PREFIX, cache_dir, changed, ensure_dir, file_lock, fingerprint

LIVE, BENCHMARKS, FEATURES = "live.parquet", "live_benchmark_models.parquet", "features.json"
ROUND_FILES = (LIVE, BENCHMARKS, FEATURES)
VERSION = re.compile(r"^v(\d+)(?:\.(\d+))?$")

Progress = Callable[[str], None]


class FetchError(Exception):
    """Numerai's data cannot be had now (offline, API down, no such version): not the model's fault."""


def version_key(version: str) -> tuple[int, int]:
    match = VERSION.match(version)
    return (int(match.group(1)), int(match.group(2) or 0)) if match else (-1, -1)


def root() -> Path:
    return cache_dir() / "numerai"


@dataclass(frozen=True)
class Round:
    """One round's live data of one dataset version, as fetched; `files`: {name: fingerprint} as downloaded
    (empty for a round fetched before fingerprints were kept)."""

    version: str
    number: int
    directory: Path
    fetched_at: float
    files: dict = field(default_factory=dict, compare=False)

    @property
    def live(self) -> Path:
        return self.directory / LIVE

    @property
    def benchmarks(self) -> Path | None:
        path = self.directory / BENCHMARKS
        return path if path.exists() else None

    @property
    def features(self) -> Path | None:
        path = self.directory / FEATURES
        return path if path.exists() else None

    def age(self, now: float | None = None) -> str:
        seconds = max(0.0, (now or time.time()) - self.fetched_at)
        for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
            if seconds >= size:
                count = int(seconds // size)
                return f"{count} {unit}{'s' if count != 1 else ''} ago"
        return "just now"

    def describe(self) -> str:
        return f"Numerai's {self.version} live data, round {self.number} (fetched {self.age()})"

    def damaged(self) -> list[str]:
        """Each cached file that is not what was downloaded, as words naming it (empty: all are)."""
        found = []
        for name, recorded in self.files.items():
            why = changed(self.directory / name, recorded) if isinstance(recorded, dict) else None
            if why is not None:
                found.append(f"{self.directory / name} {why}")
        return found


def rounds(version: str | None = None) -> list[Round]:
    """The cached rounds (of one version, or all), newest round first, newer version first."""
    found = []
    base = root()
    versions = [version] if version else [p.name for p in base.glob("v*") if p.is_dir()]
    for name in versions:
        for directory in (base / name).glob("round-*"):
            meta = directory / "meta.json"
            if not (directory / LIVE).is_file() or not meta.is_file():
                continue
            try:
                info = json.loads(meta.read_text())
                files = info.get("files") if isinstance(info.get("files"), dict) else {}
                found.append(Round(name, int(info["round"]), directory, float(info["fetched_at"]), files))
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
    return sorted(found, key=lambda r: (r.number, version_key(r.version)), reverse=True)


def newest_round(version: str | None = None) -> Round | None:
    cached = rounds(version)
    return cached[0] if cached else None


def newest_features(version: str | None = None) -> tuple[str, Path] | None:
    """(version, path) of the newest cached features.json, of that version or of any."""
    base = root()
    versions = [version] if version else sorted((p.name for p in base.glob("v*") if p.is_dir()),
                                                key=version_key, reverse=True)
    for name in versions:
        path = base / name / FEATURES
        if path.is_file():
            return name, path
    return None


def read_features(path: Path) -> dict:
    """features.json as Numerai writes it: {"feature_sets": {"small": [...], "all": [...]}, "targets": [...]}."""
    try:
        data = json.loads(path.read_text())
        sets = data["feature_sets"]
        if not isinstance(sets, dict) or not isinstance(sets.get("all", []), list):
            raise ValueError("feature_sets is not a mapping of lists")
        return data
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise FetchError(f"{path} is not a Numerai features.json ({exc})") from exc


# ---------------------------------------------------------------- fetching (the network step)

def _client():
    """numerapi's client, aimed where every Numerai call of this tool goes (NUMERAI_API_URL), its host probed
    first so that an offline machine gets one clear sentence instead of a hang or a traceback."""
    from .. import numerai_api

    try:
        return numerai_api.client(progress_bars=True)
    except (numerai_api.NumeraiError, numerai_api.NotConfigured) as exc:
        raise FetchError(str(exc)) from exc


def _failure(what: str, exc: BaseException, said: list[str] = ()) -> FetchError | OSError:
    """What went wrong, in one line: what numerapi logged (an HTTP status, a refused connection), else the
    exception's own text."""
    refused = refused_write(exc)
    if refused is not None:  # the disk, not the network: the command says so (runner.disk)
        return OSError(refused.errno, refused.strerror or "the disk refused a write", refused.filename or str(root()))
    text = "; ".join(line.strip().splitlines()[0][:200] for line in said if line.strip())
    if not text:
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
    return FetchError(f"cannot {what} with numerapi ({text}); is this machine online?")


def available_versions(names: list[str]) -> list[str]:
    """Dataset versions that publish a live.parquet, newest first (from numerapi's list_datasets)."""
    versions = {name.split("/", 1)[0] for name in names if name.endswith("/" + LIVE)}
    return sorted((v for v in versions if VERSION.match(v)), key=version_key, reverse=True)


def fetch_round(version: str | None, progress: Progress) -> tuple[Round, bool]:
    """Download the current round's live data of `version` (default: the newest numerapi lists).

    Returns the round and whether anything was downloaded (False: it was already cached)."""
    from ..numerai_api import numerapi_messages

    api = _client()
    with numerapi_messages() as said:
        try:
            current = int(api.get_current_round())
            names = list(api.list_datasets())
        except Exception as exc:  # noqa: BLE001 - numerapi raises many kinds; all mean "not now"
            raise _failure("ask Numerai for the current round", exc, said) from exc
    versions = available_versions(names)
    if not versions:
        raise FetchError("numerapi lists no dataset with a live.parquet")
    chosen = version or versions[0]
    if chosen not in versions:
        raise FetchError(f"Numerai publishes no {chosen}/live.parquet; available: {', '.join(versions)}")
    final = ensure_dir(root() / chosen) / f"round-{current}"
    with file_lock(f"numerai-{chosen}-{current}"):
        sweep_partial(final.parent)
        cached = next((r for r in rounds(chosen) if r.number == current), None)
        if cached is not None and not cached.damaged():
            return cached, False
        for why in cached.damaged() if cached is not None else []:
            progress(f"{why}: downloading the round again")
        staging = Path(tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}fetch-{os.getpid()}-", dir=final.parent))
        try:
            for name in ROUND_FILES:
                if f"{chosen}/{name}" not in names:
                    if name == LIVE:
                        raise FetchError(f"numerapi lists no {chosen}/{name}")
                    continue
                progress(f"downloading {chosen}/{name} (round {current})")
                with numerapi_messages() as said:
                    try:
                        api.download_dataset(f"{chosen}/{name}", str(staging / name))
                    except Exception as exc:  # noqa: BLE001
                        raise _failure(f"download {chosen}/{name}", exc, said) from exc
            files = {name: fingerprint(staging / name) for name in ROUND_FILES if (staging / name).exists()}
            (staging / "meta.json").write_text(json.dumps({"round": current, "version": chosen,
                                                           "fetched_at": time.time(), "files": files}))
            if final.exists():
                shutil.rmtree(final)
            staging.rename(final)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if (final / FEATURES).exists():
            shutil.copyfile(final / FEATURES, final.parent / f".{FEATURES}.{os.getpid()}")
            (final.parent / f".{FEATURES}.{os.getpid()}").replace(final.parent / FEATURES)
    fetched = next(r for r in rounds(chosen) if r.number == current)
    return fetched, True


def download_dataset(dataset: str) -> Path:
    """One numerapi dataset file (e.g. v5.2/live.parquet) of the current round, into that round's folder."""
    version, _, name = dataset.partition("/")
    try:
        api = _client()
    except FetchError as exc:
        raise FetchError(f"cannot download {dataset}: {exc}") from exc
    from ..numerai_api import numerapi_messages

    with numerapi_messages() as said:
        try:
            current = int(api.get_current_round())
        except Exception as exc:  # noqa: BLE001
            raise _failure(f"ask Numerai for the current round (to download {dataset})", exc, said) from exc
    directory = ensure_dir(root() / version / f"round-{current}")
    out = directory / name
    with file_lock(f"numerai-{version}-{current}-{name}"):
        sweep_partial(directory)
        meta = _read_meta(directory)
        recorded = (meta.get("files") or {}).get(name)
        if not out.exists() or (isinstance(recorded, dict) and changed(out, recorded) is not None):
            tmp = out.with_name(f".{name}.{os.getpid()}.part")
            with numerapi_messages() as said:
                try:
                    api.download_dataset(dataset, str(tmp))
                    tmp.replace(out)
                except Exception as exc:  # noqa: BLE001
                    tmp.unlink(missing_ok=True)
                    raise _failure(f"download {dataset}", exc, said) from exc
            meta = _read_meta(directory) or {"round": current, "version": version, "fetched_at": time.time()}
            meta["files"] = dict(meta.get("files") or {}, **{name: fingerprint(out)})
            _write_meta(directory, meta)
    return out


def _read_meta(directory: Path) -> dict:
    try:
        found = json.loads((directory / "meta.json").read_text())
    except (OSError, ValueError):
        return {}
    return found if isinstance(found, dict) else {}


def _write_meta(directory: Path, meta: dict) -> None:
    """meta.json, whole or not at all."""
    partial = directory / f".meta.json.{os.getpid()}.part"
    try:
        partial.write_text(json.dumps(meta))
        partial.replace(directory / "meta.json")
    finally:
        partial.unlink(missing_ok=True)


def sweep_partial(directory: Path) -> list[Path]:
    """What downloads killed midway left in `directory` (their process is gone): staging folders of
    `data fetch` (numerai-sandbox-fetch-<pid>-...) and partial files (.<name>.<pid>.part)."""
    removed = []
    for path in directory.glob("*"):
        if path.name.startswith(f"{TEMP_PREFIX}fetch-"):
            pid = path.name[len(f"{TEMP_PREFIX}fetch-"):].split("-", 1)[0]
        elif path.name.startswith(".") and path.name.endswith(".part"):
            pid = path.name[:-len(".part")].rsplit(".", 1)[-1]
        else:
            continue
        if pid.isdigit() and not psutil.pid_exists(int(pid)):
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
            removed.append(path)
    return removed
