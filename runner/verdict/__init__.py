"""From what happened to what the user reads: validate the predictions, diagnose, report.

submission  the returned CSV read as Numerai reads it (pandas.read_csv's defaults, in pyarrow), and written out
validate  Numerai's rules on it (numerai-predict's, then numerai-tools'), vectorised
diagnose  facts -> verdict: the reason, the message, the evidence
report    the JSON report and the closing lines of the terminal
"""

from .report import Report, human_bytes, summary_lines

__all__ = ["Report", "human_bytes", "summary_lines"]
