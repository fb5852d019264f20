"""The process sandbox as a Backend: what runs a model where no container engine can be reached.

A run's spec is the container's (runner/run/spec.py), with one difference the image step makes:
its `image` is the interpreter of the environment holding the image's pins (runner.images.venv),
not an image id. The harness is started under it with the spec's arguments by runner.sandbox.process,
which also says how the run was confined; that goes back on the Outcome (`confinement`), so the
report can say what this sandbox enforced and what a container would have enforced that it did not.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from . import process
from .backend import NOT_STARTED, Backend, ContainerSpec, Outcome, SandboxUnavailable, StreamSink

NAME = "process"


class ProcessBackend(Backend):
    """Sandboxes as confined child processes of this host (runner.sandbox.process)."""

    name = NAME
    client = None  # no engine: images are environments, found without one

    def run(self, spec: ContainerSpec, sink: StreamSink, on_started: Callable[[], None] = lambda: None,
            on_created: Callable[[str], None] = lambda sandbox_id: None,
            on_waiting: Callable[[], None] = lambda: None) -> Outcome:
        """The harness under the spec's interpreter (`spec.image`), confined; the facts with how it was. There
        is no sandbox id to give `on_created` (the Outcome's `container` is the spec's name)."""
        try:
            ran = process.run(Path(spec.image), spec.command, spec.mounts, spec.limits, sink,
                              on_started=on_started, on_waiting=on_waiting, environment=spec.environment)
        except process.SandboxFailed as exc:
            raise SandboxUnavailable(str(exc), platform=NAME, kind=NOT_STARTED) from exc
        outcome = ran.outcome
        outcome.container = spec.name
        outcome.confinement = ran.confinement.to_dict() | {"words": process.describe(ran.confinement)}
        return outcome

