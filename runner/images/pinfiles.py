"""Pin files: the `name==version` format every pin list uses, and where images/ lives.

Our own lists (standard.txt, a user's --requirements) hold plain exact pins. numerai-predict's
lists also carry environment markers (`mlx==0.32.0 ; sys_platform == "darwin"`) and, now and
then, a direct wheel link (`tf-nightly @ https://.../tf_nightly-2.22.0.dev20260722-...whl`);
`read_pins` keeps both, as the version the link names.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s;#]+)\s*(?:;\s*(.*))?$")
_DIRECT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*@\s*(\S+?)\s*(?:;\s*(.*))?$")


class PinError(Exception):
    pass


def normalize(name: str) -> str:
    """PEP 503 normalised distribution name."""
    return re.sub(r"[-_.]+", "-", name).lower()


def images_root() -> Path:
    """The images/ folder: in a checkout (or editable install), or shipped inside the installed package."""
    checkout = Path(__file__).resolve().parents[2] / "images"
    if (checkout / "Dockerfile.env").exists():
        return checkout
    spec = importlib.util.find_spec("runner.image_definitions")  # a folder of data: a namespace package
    if spec is None or not spec.submodule_search_locations:
        raise PinError("this installation of numerai-sandbox lacks its image definitions (runner/image_definitions)")
    return Path(list(spec.submodule_search_locations)[0])


def version_dir(python: str) -> Path:
    return images_root() / f"py{python}"


@dataclass(frozen=True)
class Pin:
    """One exact pin: a normalised distribution name, its version, and the marker it holds under."""

    name: str
    version: str
    marker: str | None = None

    def line(self) -> str:
        return f"{self.name}=={self.version}" + (f" ; {self.marker}" if self.marker else "")


def _wheel_version(url: str) -> str | None:
    """The version a wheel link names (name-version-...-tags.whl), or None for anything else."""
    filename = unquote(Path(urlparse(url).path).name)
    parts = filename[:-4].split("-") if filename.endswith(".whl") else []
    return parts[1] if len(parts) >= 5 else None


def read_pins(text: str, source: str) -> list[Pin]:
    """Every exact pin in a requirements text, markers kept (comments, blanks, options and hashes ignored)."""
    pins: list[Pin] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split(" #", 1)[0].strip().rstrip("\\").strip() if not raw.lstrip().startswith("#") else ""
        if not line or line.startswith("-"):
            continue
        match = _LINE.match(line)
        if match:
            pins.append(Pin(normalize(match.group(1)), match.group(3), (match.group(4) or "").strip() or None))
            continue
        direct = _DIRECT.match(line)
        version = _wheel_version(direct.group(3)) if direct else None
        if direct and version:
            pins.append(Pin(normalize(direct.group(1)), version, (direct.group(4) or "").strip() or None))
            continue
        raise PinError(f"{source}:{number}: not an exact pin (name==version): {raw.strip()!r}")
    return pins


def parse_pins(text: str, source: str) -> dict[str, str]:
    """name==version lines as {normalised name: version} (markers are not evaluated here)."""
    return {pin.name: pin.version for pin in read_pins(text, source)}
