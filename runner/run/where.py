"""Step 2 of Pending: where the sandbox runs — the local Docker engine, or the process sandbox.

`docker` (the default) needs the engine: without one the run ends Error/docker_unavailable, with the
fix. `process` runs the harness as a confined child process (runner.sandbox.process_backend), for
machines without an engine (Colab, Kaggle). `auto` takes the engine when it answers, else the process
sandbox, saying so in a note: what NUMERAI_SANDBOX_BACKEND=auto and the notebook API ask for.
"""

from __future__ import annotations

from ..sandbox.backend import Backend, SandboxUnavailable
from ..sandbox.docker import DockerBackend
from ..sandbox.process_backend import ProcessBackend
from ..verdict import platform
from ..verdict.reasons import Verdict
from .request import RunRequest

FELL_BACK = ("no Docker engine could be reached ({detail}), so the model ran in the process sandbox, which is "
             "weaker than Numerai's container (see the report's limits: what it enforces and what not)")


def connect(request: RunRequest) -> tuple[Backend, list[str]] | Verdict:
    """The backend the request asks for, connected, with a note when `auto` fell back to the process sandbox."""
    if request.backend == "process":
        return ProcessBackend(), []
    try:
        return DockerBackend.connect(), []
    except SandboxUnavailable as exc:
        if request.backend == "auto":
            detail = str(exc).strip().rstrip(".").splitlines()[0][:200]
            return ProcessBackend(), [FELL_BACK.format(detail=detail)]
        return platform.from_failure(exc.failure)
