#!/usr/bin/env python3
"""Make the example pickles inside the image they will be tested in (no network, the caller's uid).

    python examples/build_examples.py --python 3.11 [--out examples/build/py3.11]
    python examples/build_examples.py --sample-report examples/sample-report.html
The second also runs lgbm_1arg.pkl with `run --html` to write the committed sample HTML report.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def build(python: str, out: Path) -> list[Path]:
    from runner import data
    from runner.images import store as images
    from runner.sandbox import engine
    from runner.sandbox.backend import Mount
    from runner.images.pins import pin_set

    client = engine.connect()
    image = images.ensure(client, pin_set(python, "standard"), progress=lambda line: print(line))
    live = data.synthetic_default()
    out.mkdir(parents=True, exist_ok=True)
    code, output = engine.run_script(
        client, image.id, ["/examples/train.py", "--features", "/data/features.json", "--out", "/out"],
        [Mount(HERE, "/examples"), Mount(live.features_json, "/data/features.json"),
         Mount(out.resolve(), "/out", writable=True)])
    if code != 0:
        raise SystemExit(f"training the examples failed (exit {code}):\n{output}")
    return sorted(out.glob("*.pkl"))


def sample_report(model: Path, page: Path) -> int:
    """Run the example model as a user would, writing its HTML report; the run's exit code."""
    root = HERE.parent
    argv = [sys.executable, "-m", "runner", "run", str(model.resolve().relative_to(root)), "--html", str(page)]
    return subprocess.run(argv, cwd=root).returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default="3.11")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--sample-report", type=Path, metavar="HTML",
                        help="then run lgbm_1arg.pkl with --html HTML (needs the html extra)")
    args = parser.parse_args()
    made = build(args.python, args.out or HERE / "build" / f"py{args.python}")
    print("\n".join(f"  {p}" for p in made))
    if args.sample_report:
        return sample_report(next(p for p in made if p.name == "lgbm_1arg.pkl"), args.sample_report.resolve())
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE.parent))
    sys.exit(main())
