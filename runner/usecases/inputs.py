"""What a user gives a run, judged before anything starts: option values and the files they name.

The command line and the Python API (runner.api) accept the same values and refuse the same
mistakes with the same words, so both judge them here. Nothing heavy is imported at module
level: `--help` and `inspect` use this module too.
"""

from __future__ import annotations

import re
from pathlib import Path


class BadInput(ValueError):
    """An input that cannot be used; `option` names it (`output` for --output / output=), when it is one."""

    def __init__(self, message: str, option: str | None = None):
        super().__init__(message)
        self.option = option


# ---------------------------------------------------------------- option values

_UNITS = {"": 1, "b": 1, "k": 1024, "kb": 1024, "kib": 1024, "m": 1024**2, "mb": 1024**2, "mib": 1024**2,
          "g": 1024**3, "gb": 1024**3, "gib": 1024**3}
MIN_MEMORY = 64 * 1024**2
_SECONDS = {"w": 7 * 86400, "d": 86400, "h": 3600, "m": 60, "s": 1}


def parse_memory(text: str) -> int:
    """`4g`, `512m`, `4GiB`, `2.5g` or a number of bytes."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*", text)
    unit = match.group(2).lower() if match else None
    if not match or unit not in _UNITS:
        raise ValueError(f"{text!r} is not a memory size (examples: 4g, 512m, 2.5g)")
    value = int(float(match.group(1)) * _UNITS[unit])
    if value < MIN_MEMORY:
        raise ValueError(f"{text!r} is below the 64m minimum a Python process with pandas needs")
    return value


def _seconds(text: str, units: str) -> float | None:
    """`1h30m`-style text in the given units as seconds; None when it is not that."""
    cleaned = text.strip().lower()
    parts = re.findall(rf"(\d+(?:\.\d+)?)([{units}])", cleaned)
    if not parts or "".join(n + u for n, u in parts) != cleaned:
        return None
    return sum(float(n) * _SECONDS[u] for n, u in parts)


def parse_duration(text: str) -> float:
    """`90`, `90s`, `20m`, `1h`, `1h30m`, `1.5m` as seconds."""
    cleaned = text.strip().lower()
    seconds = float(cleaned) if re.fullmatch(r"\d+(\.\d+)?", cleaned) else _seconds(cleaned, "hms")
    if seconds is None:
        raise ValueError(f"{text!r} is not a duration (examples: 90, 90s, 20m, 1h, 1h30m)")
    if seconds <= 0:
        raise ValueError("the timeout must be more than 0 seconds")
    return seconds


def parse_age(text: str) -> float:
    """`7d`, `12h`, `2w`, `1d12h`, `30m` as seconds; the unit is required (a bare `7` could mean anything)."""
    seconds = _seconds(text, "wdhms")
    if seconds is None:
        raise ValueError(f"{text!r} is not an age (examples: 7d, 12h, 2w, 1d12h)")
    return seconds


def parse_data_version(text: str) -> str:
    """A Numerai dataset version: v5.3, v5."""
    if not re.fullmatch(r"v\d+(\.\d+)?", text.strip()):
        raise ValueError(f"{text!r} is not a dataset version (examples: v5.2, v5.3)")
    return text.strip()


# ---------------------------------------------------------------- files

def check_model_file(model: Path) -> None:
    """The pickle exists and can be read (what it holds is the run's business)."""
    if not model.exists():
        raise BadInput(f"model file {model} does not exist", "model")
    if not model.is_file():
        raise BadInput(f"{model} is not a file", "model")
    try:
        with open(model, "rb"):
            pass
    except OSError as exc:
        raise BadInput(f"cannot read {model}: {exc.strerror}", "model") from exc


def check_inputs(model: Path, data: str | None = None, benchmarks: str | None = None,
                 outputs: dict[str, Path | None] | None = None) -> None:
    """Every bad input named before anything starts, and nothing the user gave overwritten.

    `outputs` maps each file a run will write to its option (`{"--output": path, "--report": path}`);
    each must be a new place in an existing directory, none of the inputs and none of the others.
    An `--html` output also needs the html extra.
    """
    from .. import data as live_data

    check_model_file(model)
    inputs = {model.resolve()}
    for value, option in ((data, "--data"), (benchmarks, "--benchmarks")):
        if value is None:
            continue
        try:
            local = live_data.check_option(value, option)
        except live_data.DataError as exc:
            raise BadInput(str(exc), option.lstrip("-")) from exc
        if local is not None:
            inputs.add(local)
    check_outputs(inputs, outputs or {})


def check_outputs(inputs: set[Path], outputs: dict[str, Path | None]) -> None:
    """Files a command will write: never one of the inputs, in a directory that exists, each named once;
    the HTML page only when its extra is installed."""
    written: dict[Path, str] = {}
    for option, value in outputs.items():
        if value is None:
            continue
        name = option.lstrip("-")
        if value.resolve() in inputs:
            raise BadInput(f"{option} {value} is one of the inputs; it would be overwritten", name)
        if not value.resolve().parent.is_dir():
            raise BadInput(f"{option}: directory {value.parent} does not exist", name)
        if value.resolve() in written:
            raise BadInput(f"{written[value.resolve()]} and {option} name the same file", name)
        written[value.resolve()] = option
    if outputs.get("--html") is not None:
        from ..verdict.html import HtmlUnavailable, check_available

        try:
            check_available()
        except HtmlUnavailable as exc:
            raise BadInput(str(exc), "html") from exc
