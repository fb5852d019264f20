"""The words the front ends name and the values they get back: what the command line and the Python API
may take from below the use cases, and nothing else (tests/test_layout.py holds them to it).

Importing it loads nothing heavy: `--help` reads these.
"""

from ..images.pins import DEFAULT_PYTHON, PROFILES, SUPPORTED_PYTHONS, experimental
from ..run import BACKENDS, Interrupted, RunRequest, UsageError
from ..sandbox.backend import ISOLATIONS, NUMERAI_LIMITS, Limits, SandboxUnavailable
from ..verdict.lifecycle import EXIT_CODES, EXIT_USAGE, Status
from ..verdict.report import Report, summary_lines

__all__ = ["BACKENDS", "DEFAULT_PYTHON", "EXIT_CODES", "EXIT_USAGE", "ISOLATIONS", "Interrupted", "Limits", "NUMERAI_LIMITS",
           "PROFILES", "Report", "RunRequest", "SUPPORTED_PYTHONS", "SandboxUnavailable", "Status", "UsageError",
           "experimental", "summary_lines"]
