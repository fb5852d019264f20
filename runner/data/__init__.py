"""The live data a run uses: Numerai's real rounds, a local file, or synthetic data that fits the model.

sources    which data a run uses (the order), and what the host reads from it (ids, columns)
synthetic  v5-shaped synthetic data, shaped by the names the pickle asks for, cached by those names
numerai    real rounds fetched with numerapi (`data fetch`), newest first
parquet    files pandas reads back indexed by id, written from Arrow without pandas
"""

from .sources import DATASET_NAME, DataError, LiveData, Wanted, check_option, classify, live_columns, live_ids, resolve

__all__ = ["DATASET_NAME", "DataError", "LiveData", "Wanted", "check_option", "classify", "live_columns",
           "live_ids", "resolve", "synthetic_default"]


def synthetic_default() -> LiveData:
    """The base synthetic data (what the example and test models are trained on), generated once."""
    from . import synthetic

    folder = synthetic.default_dir()
    return LiveData(folder / "live.parquet", folder / "live_benchmark_models.parquet", "synthetic",
                    "synthetic v5-shaped live data", folder / "features.json", names_checked=False)
