#!/usr/bin/env python3
"""Regenerate the README's reason tables from runner/reasons.py (tests/test_readme.py checks they match)."""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from runner.verdict.reasons import markdown_tables  # noqa: E402


def main() -> int:
    readme = ROOT / "README.md"
    text = readme.read_text()
    new = re.sub(r"(<!-- reasons:start -->\n).*?(<!-- reasons:end -->)",
                 lambda m: m.group(1) + markdown_tables() + "\n" + m.group(2), text, flags=re.S)
    readme.write_text(new)
    print("README reason tables", "updated" if new != text else "already up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
