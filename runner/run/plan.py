"""What runs would be, planned without running any: the sandboxes of many pickles as Kubernetes Jobs.

`check --backend kubernetes --dry-run`: each pickle's Python read from it (as `run --python auto` does),
its live data fitted to the columns it names, its image the local one for that Python (or its tag), the
same spec a run would make (runner/run/spec.py) and the manifests the cluster would get.
"""

from __future__ import annotations

from pathlib import Path

from .. import data as live_data
from ..images import store as image_store
from ..images.pins import DEFAULT_PYTHON, pin_set
from ..inspection import choose_python, inspect_pickle, numerai_additions
from ..sandbox import engine
from ..sandbox.backend import Limits
from .data import wanted_columns
from .request import RunRequest, UsageError
from .spec import sandbox_spec


def kubernetes_manifests(models: list[Path], registry: str, *, python: str = "auto", profile: str = "auto",
                         limits: Limits = Limits(), data: str | None = None, benchmarks: str | None = None,
                         data_version: str | None = None, namespace: str = "default",
                         runtime_class: str | None = None) -> str:
    """The YAML a Kubernetes batch of these pickles would create (`check --backend kubernetes --dry-run`).

    Nothing runs, nothing is built or pushed, no cluster is asked: each pickle's Python is read from
    it (as `run --python auto` does), its image is the local one for that Python (or its tag, when not
    built yet), and the inputs images are named by the digest of what they will hold."""
    from ..sandbox.kubernetes_manifests import ClusterOptions, manifests, to_yaml
    from ..sandbox.registry import check_registry

    try:
        registry = check_registry(registry)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    try:
        client = engine.connect()
    except engine.EngineUnavailable:
        client = None
    specs = []
    try:
        for model in models:
            inspection = inspect_pickle(model)
            chosen = python
            if python == "auto":
                chosen = choose_python(inspection).python or DEFAULT_PYTHON
            try:  # the data each pickle's run would get: fitted to the columns it names
                live = live_data.resolve(data, benchmarks, data_version, wanted_columns(inspection))
            except live_data.DataError as exc:
                raise UsageError(str(exc)) from exc
            needs = numerai_additions(inspection, chosen) if profile == "auto" else None
            pins = pin_set(chosen, profile, needs=needs)
            found = image_store.find(client, pins) if client is not None else None
            image = found.id if found else image_store.runtime_tag(pins)
            specs.append(sandbox_spec(RunRequest(model=model, python=chosen, profile=profile, limits=limits),
                                      image, chosen, live))
    finally:
        if client is not None:
            client.close()
    options = ClusterOptions(registry=registry, namespace=namespace, runtime_class=runtime_class)
    return to_yaml(manifests(specs, options))
