"""Verdicts that are the platform's, not the model's: what this machine, the engine or the cache could not do.

Every such verdict is Error (the reason's blame is the platform's), and its message names what is
missing and the one command that fixes it.
"""

from __future__ import annotations

from ..images.numerai import wheel_bytes
from ..images.pins import PinSet
from ..support.units import human_bytes
from .reasons import Verdict


def packages_not_fetched(pins: PinSet, missing: list[str], command: str) -> Verdict:
    """The auto profile's wheels are not cached (run never downloads): not the model's fault."""
    wanted = ", ".join(f"{module} ({dist} {pins.added[dist]})" for dist, module in pins.wanted.items())
    size, _unknown = wheel_bytes(pins.python, pins.added)
    shown = ", ".join(missing[:4]) + (f" and {len(missing) - 4} more" if len(missing) > 4 else "")
    return Verdict("packages_not_fetched",
                   f"The pickle needs {wanted or 'packages'}, which Numerai's Python {pins.python} image has and the "
                   f"standard image lacks. The auto profile adds {len(pins.added)} distribution"
                   f"{'s' if len(pins.added) != 1 else ''} at Numerai's pins "
                   f"({human_bytes(size) if size else 'size unknown'} of wheels), but these wheels are not in the "
                   f"local cache: {shown}. Run `{command}` once while online, then run again.",
                   evidence={"python": pins.python, "wanted": pins.wanted, "added": pins.added, "missing": missing,
                             "fetch_command": command})
