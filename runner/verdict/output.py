"""What came back: the predictions the model returned, once the harness or the host's rules judged them.

A DataFrame whose CSV could not be made or was too big to send is judged from the harness's result
frame; predictions that came back are judged by validation (runner/verdict/validate.py: numerai-predict's
checks, then numerai-tools' upload rules), whose first failed rule is the sub-code.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..sandbox.protocol import Returned
from ..support.units import human_bytes
from . import numerai_log
from .context import Context
from .reasons import OUTPUT_RULES, Verdict
from .tracebacks import first_line

if TYPE_CHECKING:
    from .validate import Validation


def unsent_predictions(result: Returned, ctx: Context) -> Verdict | None:
    """A DataFrame came back but its CSV could not be made or was too big to send; None: validation decides."""
    if result.unwritable is not None:
        exc = result.unwritable
        return Verdict("invalid_output", f"The returned DataFrame could not be written as CSV: "
                       f"{exc.type}: {first_line(exc.message)}.", subcode="unwritable",
                       phase="writing", evidence={"rule": "unwritable", "exception": exc.summary()})
    if result.output_too_large is not None:
        size = result.output_too_large
        return Verdict("invalid_output", f"The predictions are {human_bytes(size)} as CSV, over the "
                       f"{human_bytes(ctx.limits.max_output_bytes)} output cap.", subcode="output_too_large",
                       phase="writing", evidence={"rule": "output_too_large", "bytes": size})
    return None


def from_validation(validation: "Validation", facts: Returned | None = None) -> Verdict:
    """The verdict of the predictions; `facts` (the harness's result frame) give predict.py's own line."""
    failed = validation.failed
    if failed is None:
        return Verdict(None, "The predictions pass numerai-predict's checks and numerai-tools' upload rules.")
    rule = OUTPUT_RULES[failed.rule]
    detail = failed.detail or rule.meaning
    examples = f" (e.g. {', '.join(failed.examples[:3])})" if failed.examples else ""
    return Verdict("invalid_output", f"{rule.meaning} {detail[:1].upper()}{detail[1:]}{examples}.".replace("..", "."),
                   subcode=failed.rule, evidence={"rule": failed.rule, "source": rule.source},
                   numerai_log=numerai_log.after_validation(failed.rule, facts or Returned(), failed.detail))
