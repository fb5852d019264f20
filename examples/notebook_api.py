# %% [markdown]
# # Checking a Numerai model from a notebook
#
# `runner.api.run_pickle` runs a model pickle exactly as `numerai-sandbox run` does — in the
# image of the Python that made it, with no network, 1 CPU, 4 GB and 10 minutes — and returns
# the run's report. Run the cells in order (in Jupyter, VS Code or PyCharm, which read the
# `# %%` markers), or the whole file: `python examples/notebook_api.py`.
#
# The example model comes from `make examples` (`python examples/build_examples.py`); set
# MODEL to check your own pickle instead.

# %%
import os
from pathlib import Path

from runner.api import BadInput, last_runs, load_run, run_pickle

MODEL = Path(os.environ.get("MODEL", "examples/build/py3.11/lgbm_1arg.pkl"))

# %% [markdown]
# ## One run, in Numerai's conditions
# `quiet=False` prints the statuses as they are entered, as the command line does.

# %%
report = run_pickle(MODEL, quiet=False)
report  # one line in a notebook: the verdict, the model, the Python, the run's id in the history

# %%
print(report.ok, report.status.value, report.reason)
print(f"{report.n_predictions:,} predictions, peak memory {report.peak_memory_bytes / 2**20:.0f} MiB, "
      f"predict {report.durations['phases']['predicting']:.2f} s")
summary = report.predictions_summary
print(f"predictions in [{summary['min']:.3f}, {summary['max']:.3f}], mean {summary['mean']:.3f}")

# %% [markdown]
# ## Would it still pass with less memory?
# Options take the command line's values. A model that needs more than its limit is killed
# and the run ends Failed, with the reason, the message and what to do.

# %%
tight = run_pickle(MODEL, memory="128m", timeout="2m")
print(tight)  # the closing lines `numerai-sandbox run` prints
print("reason:", tight.reason)

# %% [markdown]
# ## A mistake in an option is an exception before anything runs

# %%
try:
    run_pickle(MODEL, memory="lots")
except BadInput as problem:  # a ValueError that names the option
    print(f"{problem.option!r} refused: {problem}")

# %% [markdown]
# ## The run history
# Every run is recorded (`numerai-sandbox runs list` shows the same); `load_run` reads one back.

# %%
for entry in last_runs(limit=5):
    print(entry["id"], entry["model"]["name"], entry["status"], entry["reason"] or "")

# %%
again = load_run("last")
print(again.history_id == tight.history_id, again.reason)
report.to_dict()["limits"]  # the whole JSON report, as `run --json` prints it
