"""Profiles and pin files: which packages, at which versions, go into an image.

- `standard` (the default): the packages nearly every model needs, at exactly the
  versions Numerai's image has for that Python, with our own resolution of their
  dependencies, committed in images/py3.X/standard.txt.
- `full`: Numerai's complete pin list for that Python, which we do not vendor: it
  comes from numerai-predict's published requirements (online) or --requirements FILE.
- Extra requirements (--extra-requirements FILE) are layered on top of either.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
import importlib.util
from pathlib import Path

SUPPORTED_PYTHONS = ("3.10", "3.11", "3.12", "3.13", "3.14")
DEFAULT_PYTHON = "3.11"  # Numerai's default image
# Images Numerai itself marks experimental; said wherever a user picks or sees one.
EXPERIMENTAL_PYTHONS = ("3.14",)


def experimental(python: str) -> str | None:
    """'experimental (...)' for an image Numerai marks experimental, else None."""
    return f"experimental (Numerai marks its {python} image experimental)" if python in EXPERIMENTAL_PYTHONS else None
PROFILES = ("standard", "full")
NUMERAI_REQUIREMENTS_URL = ("https://raw.githubusercontent.com/numerai/numerai-predict/master/"
                            "py{python}/requirements.txt")
# Pins in Numerai's lists that only exist for Windows or macOS; pip cannot install them on Linux.
NOT_FOR_LINUX = {"pywin32", "pywinpty", "appnope", "pywin32-ctypes"}
# Distributions that provide the same importable package as the one Numerai pins.
SUBSTITUTES = {"xgboost-cpu": "xgboost"}

_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s;#]+)\s*(;.*)?$")


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


def parse_pins(text: str, source: str) -> dict[str, str]:
    """name==version lines (comments, blanks and hashes ignored) as {normalised name: version}."""
    pins: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip().rstrip("\\").strip()
        if not line or line.startswith("--"):
            continue
        match = _LINE.match(line)
        if not match:
            raise PinError(f"{source}:{number}: not an exact pin (name==version): {raw.strip()!r}")
        pins[normalize(match.group(1))] = match.group(3)
    return pins


@dataclass(frozen=True)
class PinSet:
    """The exact distributions of one image."""

    python: str
    profile: str
    pins: dict[str, str]
    extra: dict[str, str] = field(default_factory=dict)
    extra_source: str | None = None
    skipped: tuple[str, ...] = ()  # pins left out because they do not exist for Linux

    @property
    def all(self) -> dict[str, str]:
        merged = dict(self.pins)
        merged.update(self.extra)
        return dict(sorted(merged.items()))

    @property
    def tag_profile(self) -> str:
        """The profile as it appears in image tags: extra requirements make a distinct image."""
        if not self.extra:
            return self.profile
        return f"{self.profile}-x{self.digest()[:8]}"

    def lock_text(self) -> str:
        lines = [f"# numerai-sandbox lock: Python {self.python}, profile {self.profile}"]
        if self.extra_source:
            lines.append(f"# extra requirements from {self.extra_source}")
        lines += [f"{name}=={version}" for name, version in self.all.items()]
        return "\n".join(lines) + "\n"

    def digest(self) -> str:
        return hashlib.sha256(self.lock_text().encode()).hexdigest()


def standard_pins(python: str) -> dict[str, str]:
    path = version_dir(python) / "standard.txt"
    return parse_pins(path.read_text(), str(path))


def numerai_pins(python: str, requirements: Path | None) -> tuple[dict[str, str], str]:
    """Numerai's full pin list: from a file, or downloaded from numerai-predict (the network step:
    `images fetch` remembers it, later commands use that copy offline)."""
    if requirements is not None:
        return parse_pins(requirements.read_text(), str(requirements)), str(requirements)
    import urllib.request

    url = NUMERAI_REQUIREMENTS_URL.format(python=python)
    try:
        with urllib.request.urlopen(url, timeout=20) as response:
            text = response.read().decode("utf-8")
    except OSError as exc:
        raise PinError(f"cannot download Numerai's pins from {url} ({exc}); "
                       "pass them with --requirements FILE") from exc
    return parse_pins(text, url), url


def pin_set(python: str, profile: str, requirements: Path | None = None,
            extra_requirements: Path | None = None) -> PinSet:
    if python not in SUPPORTED_PYTHONS:
        raise PinError(f"Python {python} is not supported; choose one of {', '.join(SUPPORTED_PYTHONS)}")
    skipped: tuple[str, ...] = ()
    if profile == "standard":
        pins = standard_pins(python)
    elif profile == "full":
        remembered = remembered_full_pins().get(python) if requirements is None else None
        pins = remembered if remembered is not None else numerai_pins(python, requirements)[0]
        skipped = tuple(sorted(n for n in pins if n in NOT_FOR_LINUX))
        pins = {n: v for n, v in pins.items() if n not in NOT_FOR_LINUX}
        pins.setdefault("pip", standard_pins(python)["pip"])
    else:
        raise PinError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    extra: dict[str, str] = {}
    if extra_requirements is not None:
        extra = parse_pins(extra_requirements.read_text(), str(extra_requirements))
    return PinSet(python, profile, pins, extra, str(extra_requirements) if extra_requirements else None,
                  skipped)


def remember_full_pins(pins: PinSet) -> None:
    """Keep a fetched full pin list in the cache: `inspect` then knows what the full images hold."""
    from ..paths import cache_dir, ensure_dir

    if pins.profile == "full":
        out = ensure_dir(cache_dir() / "pins") / f"py{pins.python}-full.txt"
        out.write_text("".join(f"{n}=={v}\n" for n, v in sorted(pins.pins.items())))


def remembered_full_pins() -> dict[str, dict[str, str]]:
    """{python: pins} of the full pin lists fetched on this machine."""
    from ..paths import cache_dir

    found = {}
    for python in SUPPORTED_PYTHONS:
        path = cache_dir() / "pins" / f"py{python}-full.txt"
        if path.exists():
            found[python] = parse_pins(path.read_text(), str(path))
    return found


def pin_set_from_label(text: str) -> dict[str, str]:
    try:
        return dict(json.loads(text))
    except (ValueError, TypeError):
        return {}


# Import names that differ from their distribution's name (the rest match after normalisation).
MODULE_DISTRIBUTIONS = {
    "sklearn": "scikit-learn", "PIL": "pillow", "yaml": "pyyaml", "dateutil": "python-dateutil",
    "google": "protobuf", "cv2": "opencv-python", "skimage": "scikit-image", "tf_keras": "tf-keras",
    "tensorflow_decision_forests": "tensorflow-decision-forests", "numerai_tools": "numerai-tools",
    "pytorch_lightning": "pytorch-lightning", "lightning_utilities": "lightning-utilities",
    "typing_extensions": "typing-extensions", "attr": "attrs",
}


def distribution_for_module(module: str) -> str:
    """The distribution that provides a top-level import name (best effort, by convention)."""
    top = module.split(".", 1)[0]
    return MODULE_DISTRIBUTIONS.get(top, normalize(top))


def installed_distribution(module: str, packages: dict[str, str]) -> tuple[str, str] | None:
    """(distribution, version) in `packages` that provides `module`'s top-level package, if any."""
    dist = distribution_for_module(module)
    for candidate in (dist, *[s for s, target in SUBSTITUTES.items() if target == dist]):
        if candidate in packages:
            return candidate, packages[candidate]
    return None
