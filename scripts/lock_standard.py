#!/usr/bin/env python3
"""Regenerate images/py3.X/standard.txt: the standard profile at Numerai's versions.

The standard packages are resolved by pip for the target Python and platform, with
Numerai's published pins for that Python as constraints, so every package both
images hold has Numerai's exact version. xgboost is replaced by xgboost-cpu of the
same version where it exists (the same `xgboost` package without ~680 MB of CUDA
kernels and NCCL), which keeps the image small; the full profile keeps Numerai's.
A pinned release with no wheel for the target Python (scikit-learn 1.6.1 for 3.14) is
built from source by `images fetch` (runner/images/sourcebuild.py): it is locked at
Numerai's version, and its run-time requirements are resolved in its place.

    python scripts/lock_standard.py --python 3.11     # Numerai's pins: the vendored images/py3.11/numerai.txt
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runner.images.numerai import for_linux, numerai_list  # noqa: E402
from runner.images.pinfiles import normalize, read_pins  # noqa: E402
from runner.images.sourcebuild import from_source  # noqa: E402
from runner.images.wheelhouse import pip_target_options  # noqa: E402

STANDARD = ["numpy", "pandas", "pyarrow", "scipy", "scikit-learn", "lightgbm", "xgboost", "catboost",
            "cloudpickle", "joblib", "polars"]
PIP_VERSION = "25.1.1"


def resolve(python: str, requested: list[str], constraints: Path) -> dict[str, str]:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed",
                        "--quiet", "--report", str(report), "--target", str(Path(tmp) / "t"),
                        *pip_target_options(python), "-c", str(constraints), *requested], check=True)
        data = json.loads(report.read_text())
    return {normalize(item["metadata"]["name"]): item["metadata"]["version"] for item in data["install"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", required=True)
    parser.add_argument("--numerai-pins", type=Path,
                        help="Numerai's pin list (default: the vendored images/py3.X/numerai.txt)")
    args = parser.parse_args()

    if args.numerai_pins is None:
        numerai = numerai_list(args.python).pins
    else:
        numerai = {p.name: p.version for p in read_pins(args.numerai_pins.read_text(), str(args.numerai_pins))
                   if for_linux(p, args.python)}
    xgb = numerai["xgboost"]
    requested = [p for p in STANDARD if p != "xgboost"]
    major = int(xgb.split(".")[0])
    use_cpu = major >= 3 or xgb.startswith("2.1")
    requested.append(f"xgboost-cpu=={xgb}" if use_cpu else f"xgboost=={xgb}")
    built = {name: recipe for name, recipe in from_source(args.python).items() if name in requested}
    for name, recipe in built.items():
        if numerai.get(name) != recipe.version:
            raise SystemExit(f"{name}: the source build recipe is for {recipe.version}, Numerai pins "
                             f"{numerai.get(name)}: update runner/images/sourcebuild.py")
        requested = [p for p in requested if p != name] + list(recipe.requires)
    with tempfile.TemporaryDirectory() as tmp:
        constraints = Path(tmp) / "constraints.txt"
        constraints.write_text("".join(f"{n}=={v}\n" for n, v in numerai.items() if n not in built))
        pins = resolve(args.python, requested, constraints)
    pins.update({name: recipe.version for name, recipe in built.items()})
    pins["pip"] = PIP_VERSION
    for name, version in pins.items():
        theirs = numerai.get("xgboost" if name == "xgboost-cpu" else name)
        if theirs is not None and theirs != version:
            raise SystemExit(f"{name}: resolved {version} but Numerai pins {theirs}")
    out = ROOT / "images" / f"py{args.python}" / "standard.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"# Standard profile for Python {args.python}: the packages nearly every model needs, at the",
             "# versions Numerai's image pins for this Python, with their dependencies resolved by",
             "# scripts/lock_standard.py. Regenerate with that script; do not edit by hand."]
    if use_cpu:
        lines.append(f"# xgboost-cpu=={xgb} is Numerai's xgboost=={xgb} without the CUDA kernels and NCCL.")
    for name, recipe in sorted(built.items()):
        lines.append(f"# {name}=={recipe.version} has no wheel for Python {args.python}: `images fetch` builds it "
                     "from source.")
    lines += [f"{name}=={version}" for name, version in sorted(pins.items())]
    out.write_text("\n".join(lines) + "\n")
    print(f"wrote {out} ({len(pins)} pins)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
