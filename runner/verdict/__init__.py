"""The verdict: from facts to Success, Failed or Error, with a reason, the evidence and what to do.

The words: reasons.py (every reason code, whose fault, and the Verdict that carries one) and
lifecycle.py (Numerai's six statuses as a checked state machine). The ladder: diagnose.py, from the
engine's facts (ended.py), the harness's error report (loading.py for the pickle's load, exceptions.py
for the model's call, mismatch.py for the pickle against the image, tracebacks.py for reading an
exception), what came back (output.py; validate.py and submission.py read the CSV as Numerai does),
and what the platform could not do (platform.py); context.py holds what the host knows. The words
Numerai's own log would show: numerai_log.py. The report: report.py (JSON and summary), html.py with
charts.py, junit.py for check.
"""

from .report import Report, human_bytes, summary_lines

__all__ = ["Report", "human_bytes", "summary_lines"]
