"""How sizes read everywhere numerai-sandbox shows one: the Running line, verdicts, inspect, images, data.

One formatter, so a limit given as --memory 150m reads "150 MiB" wherever it appears.
"""

from __future__ import annotations

_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def human_bytes(n: int | float | None) -> str:
    """Binary units, at most three significant digits, no trailing zeros: 512 B, 96 KiB, 150 MiB, 2.5 GiB, 4 GiB."""
    if n is None:
        return "?"
    value = float(n)
    for unit in _UNITS:
        if abs(value) < 1024 or unit == _UNITS[-1]:
            break
        value /= 1024
    if unit == "B":
        return f"{int(n)} B"
    return f"{value:.0f} {unit}" if abs(value) >= 100 else f"{value:.3g} {unit}"
