"""Every reason code a run can end with, defined once, and the Verdict that carries one.

A reason says whose fault an outcome is (the model's: status Failed; the
platform's: status Error), what it means and what to do. Codes are stable
snake_case strings: reports, tests and the README table are built from this
registry, so adding a code here is the only step needed to make it exist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Blame(str, Enum):
    """Whose fault an outcome is. Numerai shows Failed for the model, Error for itself."""

    MODEL = "model"
    PLATFORM = "platform"


@dataclass(frozen=True)
class Reason:
    code: str
    blame: Blame
    meaning: str
    action: str


@dataclass(frozen=True)
class OutputRule:
    """One rule the predictions must pass, named after the check that enforces it."""

    code: str
    source: str  # "numerai-predict" (in the image), "numerai-tools" (upload) or "sandbox"
    meaning: str
    action: str
    blocking: bool = True  # False: reported as a warning, as Numerai does


_M, _P = Blame.MODEL, Blame.PLATFORM

REASONS: dict[str, Reason] = {
    r.code: r
    for r in [
        # The model's fault: status Failed.
        Reason("invalid_pickle", _M,
               "The file is not a loadable pickle (empty, truncated, or another format).",
               "Upload the file written by cloudpickle.dump(predict, f) (or pickle.dump), unchanged."),
        Reason("python_version_mismatch", _M,
               "The pickle was made by another Python version than the image's; "
               "function code only loads and runs under the Python minor version that made it.",
               "Pick the image matching the Python that made the pickle (--python), or re-pickle "
               "with the Python of the image you will choose on Numerai."),
        Reason("missing_module", _M,
               "Unpickling imports a module the image does not have.",
               "Pickle your own code by value (cloudpickle.register_pickle_by_value(module)), "
               "or only use libraries the image provides."),
        Reason("library_mismatch", _M,
               "A library in the image is another version than the one that made the pickle, "
               "and its objects cannot be rebuilt.",
               "Train and pickle with the library versions of the image (see library_versions)."),
        Reason("bad_signature", _M,
               "The pickled object is not a function taking 1 (live_features) or 2 "
               "(live_features, live_benchmark_models) arguments.",
               "Pickle a function `def predict(live_features)` or "
               "`def predict(live_features, live_benchmark_models)`."),
        Reason("model_exception", _M,
               "The model raised an exception.",
               "Read the traceback (--debug shows all of it) and fix the model code."),
        Reason("missing_columns", _M,
               "The model asks for live-data columns that the data does not have (a renamed or retired "
               "feature, a typo, or a name that is not Numerai's).",
               "Select only columns Numerai's live data has (the feature sets of its current features.json); "
               "run on Numerai's real round (`numerai-sandbox data fetch`) to check the names."),
        Reason("crashed", _M,
               "The model's process was killed by a signal (a native crash).",
               "A native crash usually means the Python or a compiled library differs from the "
               "one that made the pickle: match the image's versions."),
        Reason("out_of_memory", _M,
               "The model used more memory than the limit and was killed.",
               "Use less memory (smaller dtypes, fewer features, predict in chunks); "
               "Numerai gives 4 GB."),
        Reason("timeout", _M,
               "The model ran longer than the time limit and was killed.",
               "Make the model faster (fewer trees, fewer features); Numerai gives 10 minutes."),
        Reason("no_output", _M,
               "The model's process ended without producing a result.",
               "Do not exit the process (sys.exit/os._exit) or close standard streams in the model; "
               "return the predictions DataFrame."),
        Reason("invalid_output", _M,
               "The predictions break one of Numerai's rules.",
               "Return a DataFrame indexed by the live ids with one column `prediction` "
               "holding values in [0, 1], one row per live id."),
        # Not the model's fault: status Error.
        Reason("docker_unavailable", _P,
               "The Docker engine cannot be reached, or stopped answering during the run.",
               "Start the engine (`dockerd`, `systemctl start docker`) or point DOCKER_HOST at it."),
        Reason("image_unavailable", _P,
               "The image for this Python version is missing and cannot be built from the local cache.",
               "Run `numerai-sandbox images fetch --python X` once while online, then retry."),
        Reason("packages_not_fetched", _P,
               "The pickle needs packages that Numerai's image has and the standard image lacks; the auto "
               "profile adds them, but their wheels are not in the local cache (run never uses the network).",
               "Run `numerai-sandbox images fetch --for MODEL.pkl` once while online (it says what it downloads "
               "and how big first), then run again."),
        Reason("sandbox_lacks_module", _P,
               "The model imports a module that Numerai's image for this Python has and this sandbox image lacks "
               "(an import the static inspection cannot see: importlib, or a lazy import inside a library); "
               "Numerai would run it.",
               "Run with --profile full (fetch it once: `numerai-sandbox images fetch --python X --profile full`), "
               "or add the named distribution with --extra-requirements."),
        Reason("data_unavailable", _P,
               "The live data could not be obtained (download failed or no network).",
               "Pass a local file with --data, or omit --data to use the synthetic live data."),
        Reason("unverifiable_columns", _P,
               "The model asks for Numerai-shaped columns that the synthetic live data lacks (the names were "
               "not in the pickle, e.g. built at run time); only Numerai's real data can tell whether they exist.",
               "Run `numerai-sandbox data fetch` once while online (runs then use Numerai's real round), or "
               "pass a real live.parquet with --data."),
        Reason("host_resources", _P,
               "This machine cannot provide what the run needs (memory for the limit, disk).",
               "Lower --memory, free disk space, or run on a larger machine."),
        Reason("isolation_unavailable", _P,
               "The isolation asked for (--isolation gvisor) is not available: gVisor's runsc is not "
               "registered with the Docker engine, or cannot start a sandbox on this machine.",
               "Register runsc once with `sudo make gvisor` in a numerai-sandbox checkout (it installs "
               "Debian's runsc and reloads dockerd without stopping containers), or run with the default "
               "--isolation runc."),
        Reason("backend_unavailable", _P,
               "The engine or cluster that runs the sandbox could not start it, or stopped it before the model's "
               "own limits: the Docker engine refused to start the container; the cluster (Kubernetes) could not "
               "be reached, refused, could not pull its image or schedule it, or ended it early.",
               "Check the engine (`numerai-sandbox doctor`), or the cluster and your access (Jobs, "
               "NetworkPolicies, pods/exec) and that its nodes pull from the registry (`numerai-sandbox images "
               "push --registry ...`); then retry."),
        Reason("interrupted", _P,
               "The run was interrupted (Ctrl-C or SIGTERM) before it finished.",
               "Run it again."),
        Reason("internal_error", _P,
               "numerai-sandbox itself failed; this is a bug, not your model's fault.",
               "Please report it with the JSON report (--report PATH), which holds the traceback."),
    ]
}

OUTPUT_RULES: dict[str, OutputRule] = {
    r.code: r
    for r in [
        # numerai-predict's checks inside the image, in the order it applies them.
        OutputRule("returned_none", "numerai-predict",
                   "The function returned None.",
                   "Return the predictions DataFrame (check for a missing `return`)."),
        OutputRule("not_dataframe", "numerai-predict",
                   "The function returned something that is not exactly a pandas DataFrame.",
                   "Wrap the predictions: pd.DataFrame({'prediction': p}, index=live_features.index)."),
        OutputRule("empty", "numerai-predict",
                   "The DataFrame has no rows.",
                   "Predict one row per live id."),
        OutputRule("nan", "numerai-predict",
                   "At least one value in the DataFrame is NaN.",
                   "Fill or avoid NaN predictions (e.g. fillna(0.5)) before returning."),
        OutputRule("not_numeric", "numerai-predict",
                   "The first column cannot be compared with 0 and 1 (not numbers).",
                   "Return float predictions."),
        OutputRule("out_of_range", "numerai-predict",
                   "Values in the first column lie outside [0, 1].",
                   "Rank or squash predictions into [0, 1] (e.g. series.rank(pct=True))."),
        # numerai-tools' upload validation (validate_submission_numerai).
        OutputRule("bad_headers", "numerai-tools",
                   "The submission's columns are not exactly `id` and one of `prediction`/`probability`.",
                   "Index the DataFrame by the live ids (index named `id`) and give it a single "
                   "column `prediction`."),
        OutputRule("nan_ids", "numerai-tools",
                   "Some ids are missing (NaN).",
                   "Keep live_features.index as the index of the predictions."),
        OutputRule("duplicate_ids", "numerai-tools",
                   "An id appears more than once.",
                   "Return exactly one row per live id."),
        OutputRule("missing_ids", "numerai-tools",
                   "Not every live id has a prediction.",
                   "Predict every row of live_features and keep its index."),
        OutputRule("unknown_ids", "numerai-tools",
                   "Some ids are not live ids; Numerai ignores those rows.",
                   "Use live_features.index as the index of the predictions.",
                   blocking=False),
        OutputRule("values_out_of_range", "numerai-tools",
                   "Submitted values lie outside [0, 1] beyond floating tolerance.",
                   "Rank or squash predictions into [0, 1]."),
        OutputRule("constant", "numerai-tools",
                   "All predictions are (nearly) the same value; Numerai rejects a constant submission.",
                   "Make sure the model actually uses the features (check feature names and dtypes)."),
        # The sandbox's own limits on what comes back from the container.
        OutputRule("output_too_large", "sandbox",
                   "The predictions are larger than the output cap.",
                   "Return one row per live id and nothing else."),
        OutputRule("unwritable", "sandbox",
                   "The DataFrame could not be written as CSV (to_csv failed).",
                   "Return plain float predictions indexed by the live ids."),
        OutputRule("unreadable", "sandbox",
                   "The predictions CSV cannot be read the way Numerai reads it (pandas.read_csv): not UTF-8 "
                   "text, no header, or a row with more fields than the header.",
                   "Return the predictions DataFrame and leave writing it to the harness: to_csv never writes "
                   "such a file, so something in the model's process changed what was sent."),
    ]
}


@dataclass
class Verdict:
    """How a run ended: a reason code (None: Success), in words, with the evidence the words name."""

    reason: str | None  # None: Success
    message: str
    subcode: str | None = None
    phase: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    advice: str | None = None  # what to do in this case, when the reason's own action does not fit it
    numerai_log: str | None = None  # the line Numerai's log would show for it (Failed verdicts; numerai_log.py)

    @property
    def blame(self) -> Blame | None:
        return REASONS[self.reason].blame if self.reason else None

    @property
    def action(self) -> str | None:
        if self.advice:
            return self.advice
        if self.subcode and self.subcode in OUTPUT_RULES:
            return OUTPUT_RULES[self.subcode].action
        return REASONS[self.reason].action if self.reason else None


def markdown_tables() -> str:
    """The README's reason tables, generated from this registry (a test keeps the README in sync)."""
    lines = ["| reason | status | what it means | what to do |", "|---|---|---|---|"]
    for r in REASONS.values():
        status = "Failed" if r.blame is Blame.MODEL else "Error"
        lines.append(f"| `{r.code}` | {status} | {r.meaning} | {r.action} |")
    lines += ["", "`invalid_output` names the rule that failed as its sub-code, in the order Numerai applies them:", "",
              "| sub-code | checked by | what it means | what to do |", "|---|---|---|---|"]
    for rule in OUTPUT_RULES.values():
        note = "" if rule.blocking else " (a warning: Numerai accepts the submission)"
        lines.append(f"| `{rule.code}` | {rule.source} | {rule.meaning}{note} | {rule.action} |")
    return "\n".join(lines)
