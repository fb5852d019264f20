"""One run, start to verdict: the order of its steps and its status changes, nothing else.

Pending   choose (the pickle's Python) -> where (the engine, or the process sandbox) -> room and image (or the
          process sandbox's environment) -> data -> the sandbox's spec
Running   contain: the backend runs the sandbox, the host watches its channel and log
Validating judge: diagnosis of the facts, else Numerai's rules on the predictions
then      Success | Failed | Error, and the report assembled once from what the steps returned.

Whatever goes wrong is decided where it is caught: the model's fault is Failed, ours or the machine's
is Error (what the platform could not do: runner/verdict/platform.py), and an unexpected exception is
an internal error with its traceback in the report, never on the terminal.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass

from ..sandbox import engine
from ..inspection import Inspection
from ..sandbox.backend import ContainerSpec, Outcome
from ..support.console import Console
from ..support.disk import disk_failure
from ..support.machine import emulation_note
from ..verdict import platform
from ..verdict.lifecycle import Lifecycle, Status
from ..verdict.reasons import Verdict
from ..verdict.report import Report
from . import image, shell, where
from .assemble import Known, assemble
from .choose import choose
from .contain import contain
from .data import Staged, stage
from .judge import judge, write_rejected
from .prestart import confirmed, leave_for_next, preload
from .request import RunRequest, UsageError
from .spec import own_user, running_note, sandbox_spec, shell_spec
from .watch import Watch


@dataclass
class Prepared:
    """What Pending readies before any container exists (a run, a shell and a pre-start start from it)."""

    backend: object
    owned: bool  # connected for this run, closed by it (a shared one is the caller's)
    ready: image.Ready
    staged: Staged
    inspection: Inspection

    def __enter__(self) -> "Prepared":
        return self

    def __exit__(self, *exc) -> None:
        if self.owned:
            self.backend.close()


class Run:
    """One run: `execute` (a prediction), `shell` (an interactive session) or `prestart` (a sandbox ahead)."""

    def __init__(self, request: RunRequest, console: Console, backend=None):
        self.request, self.console = request, console
        # Where the sandbox runs: the local engine (connected and closed by the run), or a backend the
        # caller shares between runs (e.g. check's Kubernetes backend); images are found with its engine.
        self.backend = backend
        self.life = Lifecycle(listeners=[console.status])

    def execute(self) -> Report:
        known = Known(self.request)
        return self.guarded(known, "run", lambda: self.steps(known))

    def shell(self, terminal) -> tuple[Report, Outcome | None]:
        """Pending as for a run, then an interactive session in the same sandbox: the report (a verdict only
        when the shell could not open, or was interrupted) and how the session ended, once it opened."""
        known = Known(self.request)
        return self.guarded(known, "shell", lambda: self.shell_steps(known, terminal)), known.session

    def prestart(self) -> str | None:
        """Start a pre-started sandbox for this run without running it (check does so for the pickles it is
        about to run); its name, or None when this run cannot use one (a verdict before any container)."""
        prepared = self.prepare(Known(self.request))
        if isinstance(prepared, Verdict):
            return None
        with prepared:
            spec = self.run_spec(prepared)
            return prepared.backend.prestart(spec) if spec.preload is not None else None

    def guarded(self, known: Known, what: str, steps) -> Report:
        try:
            emulated = emulation_note()
            self.life.enter(Status.PENDING, emulated or "")
            known.notes += [emulated] if emulated else []
            verdict = steps()
        except UsageError:
            raise
        except KeyboardInterrupt as exc:
            cause = f" ({exc})" if str(exc) else ""
            verdict = Verdict("interrupted", f"The {what} was interrupted{cause} before it finished; its container "
                              "was removed.")
        except Exception as exc:  # noqa: BLE001 - an unexpected failure is ours, reported as such
            trace = traceback.format_exc()
            verdict = unexpected(exc, trace, self.backend)
            known.traceback = trace if verdict.reason != "host_resources" else None  # the machine's: no bug of ours
        try:
            return self.finish(known, verdict) if verdict is not None else assemble(known, Verdict(None, ""), self.life)
        finally:
            if known.judged is not None and known.judged.submission is not None:
                known.judged.submission.discard()

    def prepare(self, known: Known) -> Prepared | Verdict:
        """Pending up to the container: the Python, the engine, room and the image, the live data. A Verdict
        means nothing is left open."""
        chosen = known.chosen = choose(self.request, self.console.detail)
        if chosen.refused is not None:
            return chosen.refused
        if self.backend is None:
            connected = where.connect(self.request)
            if isinstance(connected, Verdict):
                return connected
            backend, notes = connected
            known.notes += notes
            for note in notes:
                self.console.detail(note)
        else:
            backend = self.backend
        prepared = None
        try:
            prepared = self.ready(known, backend)
            return prepared
        finally:
            if not isinstance(prepared, Prepared) and backend is not self.backend:
                backend.close()

    def ready(self, known: Known, backend) -> Prepared | Verdict:
        """Room on this machine for the limits, the image, the live data: each recorded as it is known."""
        room = image.room(self.request, backend)
        if isinstance(room, Verdict):
            return room
        known.room, inspection = room, known.chosen.inspection
        if backend.name == "process":
            ready = image.venv_ready(known.chosen.python, self.request, inspection, self.console)
        else:
            ready = image.ready(backend.client, known.chosen.python, self.request, inspection, self.console)
        if isinstance(ready, Verdict):
            return ready
        known.ready = ready
        staged = stage(self.request, inspection, self.console.detail)
        if isinstance(staged, Verdict):
            return staged
        known.staged = staged
        return Prepared(backend, backend is not self.backend, ready, staged, inspection)

    def run_spec(self, prepared: Prepared) -> ContainerSpec:
        """The run's sandbox: served by a pre-started one (preloading the pickle's modules) when it may be."""
        request, found = self.request, prepared.ready.image
        if prepared.backend.name == "process":  # no pre-started sandboxes; the model runs as this user
            return sandbox_spec(request, found.id, found.python, prepared.staged.data, user=own_user())
        warm = request.prestarted and not request.keep
        return sandbox_spec(request, found.id, found.python, prepared.staged.data,
                            preload=preload(prepared.inspection) if warm else None)

    def steps(self, known: Known) -> Verdict:
        """Pending (python, engine, image, data, container) -> Running -> Validating -> the verdict."""
        prepared = self.prepare(known)
        if isinstance(prepared, Verdict):
            return prepared
        with prepared:
            spec = known.spec = self.run_spec(prepared)
            watch = known.watch = Watch.new(self.request.limits)
            running = running_note(spec)

            def started() -> None:
                if self.life.status is Status.PENDING:
                    self.life.enter(Status.RUNNING, running)
                prepared.staged.after.begin()

            contained = contain(prepared.backend, spec, self.request, self.console, watch, started)
            if isinstance(contained, Verdict):
                return contained
            known.contained = contained
            if contained.cancelled:
                raise KeyboardInterrupt("cancelled")
            known.leaving = leave_for_next(prepared.backend, self.request, contained)  # while this one is judged
        known.judged = judge(contained, prepared.staged, self.request, prepared.ready.image, prepared.inspection,
                             lambda returned: self.life.enter(Status.VALIDATING, returned))
        return known.judged.verdict

    def shell_steps(self, known: Known, terminal) -> Verdict | None:
        """Pending, then Running an interactive session instead of a prediction (no verdict after it)."""
        prepared = self.prepare(known)
        if isinstance(prepared, Verdict):
            return shell.with_force_hint(prepared)
        with prepared:
            found, staged = prepared.ready.image, prepared.staged
            spec = known.spec = shell_spec(self.request, found.id, found.python, staged.data)
            running = running_note(spec)
            session = shell.session(prepared.backend, spec, shell.banner(found, staged.data.description,
                                                                          self.request.limits), terminal,
                                    lambda: self.life.enter(Status.RUNNING, running))
        if isinstance(session, Verdict):
            return session
        known.session = session
        return None

    def finish(self, known: Known, verdict: Verdict) -> Report:
        """The verdict's status entered, the outputs it calls for written, the report assembled."""
        request = self.request
        if known.contained is not None and known.contained.first is not None:
            known.confirmed = confirmed(known.contained.first, verdict)
        if verdict.reason == "invalid_output" and request.output_rejected is not None:
            known.rejected = write_rejected(request.output_rejected, known.judged.submission if known.judged else None)
        status = Status.SUCCESS if verdict.reason is None else Status.for_blame(verdict.blame)
        note = verdict.reason if status is not Status.SUCCESS else ""
        self.life.enter(status, note + (f"/{verdict.subcode}" if verdict.subcode else ""))
        if known.leaving is not None:
            known.leaving.join(timeout=60)
            known.left = known.leaving.note  # the run's last note: which one it left, how to turn this off
        return assemble(known, verdict, self.life)


def unexpected(exc: Exception, trace: str, backend) -> Verdict:
    """An exception nobody caught: what the platform could not do (the engine gone), a disk that refused a
    write (the machine's, not ours), else a bug of ours."""
    failure = (backend.failure_of(exc) if backend is not None else None) or engine.failure_of(exc)
    if failure is not None:
        return platform.from_failure(failure)
    full = disk_failure(exc)
    if full is not None:
        return platform.host_resources(full)
    return Verdict("internal_error", "numerai-sandbox failed unexpectedly: " + trace.strip().splitlines()[-1][:300])


def execute(request: RunRequest, console: Console, backend=None) -> Report:
    return Run(request, console, backend).execute()


def never_ran(request: RunRequest, message: str) -> Report:
    """The report of a run that never started (a batch cancelled first): Error/interrupted, as `run` reports it."""
    life = Lifecycle()
    life.enter(Status.PENDING)
    life.enter(Status.ERROR, "interrupted")
    return assemble(Known(request), Verdict("interrupted", message), life)
