# The floor: what any runner must do in the image, and nothing more (no checks, no report).
# Run by scripts/bench.py with `docker run --rm`, the same image, limits and mounts as numerai-sandbox.
import inspect
import pandas as pd

live = pd.read_parquet("/input/live.parquet")
model = pd.read_pickle("/input/model.pkl")
arguments = [live]
if len(inspect.signature(model).parameters) == 2:
    arguments.append(pd.read_parquet("/input/live_benchmark_models.parquet"))
model(*arguments).to_csv("/tmp/predictions.csv")
