"""From what happened to what the user reads: validate the predictions, diagnose, report.

validate  Numerai's rules on the returned CSV (numerai-predict's, then numerai-tools')
diagnose  facts -> verdict: the reason, the message, the evidence
report    the JSON report and the closing lines of the terminal
"""

from .report import Report, human_bytes, summary_lines

__all__ = ["Report", "human_bytes", "summary_lines"]
