"""One run as a pipeline of small steps that take and return typed values; the report assembled once.

request.py   RunRequest: what a run is asked to do
choose.py    request -> Chosen: the pickle read without running it, the image's Python (or refused)
where.py     -> the backend: the Docker engine, or the process sandbox (no engine), or the engine when it answers
image.py     -> room on this machine for the limits, and Ready: the image found or built offline
data.py      -> Staged: the live data, fitted to the pickle's column names, and what the host reads of it
spec.py      -> ContainerSpec: the harness's arguments (built once), inputs, limits, user
contain.py   -> Contained: the backend runs the sandbox; the engine's Outcome and the harness's Frames
watch.py     what the host watches meanwhile: the channel, the model's log, the live line
prestart.py  pre-started sandboxes as a run sees them: preloads, the cold confirmation, the next run's
judge.py     -> Judged: the verdict (diagnosis, else Validating), the predictions written
assemble.py  Known (what the steps returned) + the verdict -> the Report, once
shell.py     a shell's session instead of Running
run.py       Run: the order of the steps and the status changes (execute, shell, prestart)
plan.py      runs planned without running any: many pickles' sandboxes as Kubernetes Jobs

Importing this package's face loads nothing heavy; `runner.run.run` brings in the Docker SDK.
"""

from .request import BACKENDS, Interrupted, RunRequest, UsageError

__all__ = ["BACKENDS", "Interrupted", "RunRequest", "UsageError"]
