"""Step 3 of Pending: room on this machine for the limits, then the image found, or built offline.

The memory limit is checked against this machine only when the sandbox runs here (a cluster's nodes
are not this machine); idle pre-started sandboxes give their memory up first. The image is the one the
pins name (the auto profile adds what the pickle needs from Numerai's image), built from the local
cache with the network off when it is missing or older than its inputs.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from typing import Any

import psutil

from ..images import store as image_store
from ..images import venv, wheelhouse
from ..images.pins import SUBSTITUTES, PinError, PinSet, experimental, pin_set
from ..inspection import Inspection, numerai_additions
from ..support.text import sentence
from ..support.units import human_bytes
from ..verdict import platform
from ..verdict.reasons import Verdict
from .request import RunRequest


@dataclass
class Ready:
    """The image the run uses, and what Pending said about it."""

    image: image_store.Image
    notes: list[str] = field(default_factory=list)

    def facts(self) -> dict[str, Any]:
        """The report's `image` (with what auto substituted)."""
        image = self.image
        described = image.to_dict()
        if image.substitutes:
            described["substitutes"] = image.substitutes
        return described


def room(request: RunRequest, backend) -> list[str] | Verdict:
    """Whether this machine can give the memory limit (notes when only barely), for a sandbox that runs here."""
    limit = request.limits.memory_bytes
    memory = psutil.virtual_memory()
    if not backend.runs_here:  # the sandbox runs elsewhere: this machine's memory says nothing about it
        return []
    if limit > memory.total:
        return platform.memory_beyond_machine(limit, memory.total)
    if limit > memory.available:
        if backend.make_room(limit - memory.available):  # idle pre-started sandboxes: free for this run
            memory = psutil.virtual_memory()
        if limit > memory.available:
            return [f"only {human_bytes(memory.available)} of memory is free on this machine; the model may be "
                    "killed by the machine before it reaches its limit"]
    return []


def ready(client, python: str, request: RunRequest, inspection: Inspection, console) -> Ready | Verdict:
    """The image to run in: found, or built offline from the local cache."""
    notes: list[str] = []
    try:
        needs = numerai_additions(inspection, python) if request.profile == "auto" else None
        pins = pin_set(python, request.profile, extra_requirements=request.extra_requirements, needs=needs)
        notes += describe_additions(pins, console.detail)
        image = image_store.find(client, pins)
        if image is None or not image_store.is_current(image, pins):
            console.detail(f"building the Python {python} image offline, from the local cache")
            image = image_store.ensure(client, pins, console.progress)
    except image_store.PackagesNotFetched as exc:
        return not_fetched(request, exc.pins, exc.missing)
    except (image_store.ImageUnavailable, PinError) as exc:
        return platform.image_unavailable(str(exc))
    except image_store.HostResources as exc:
        return platform.host_resources(str(exc))
    flag = experimental(image.python)
    if flag:
        notes.append(f"the Python {image.python} image is {flag}")
    if image.stale:
        notes.append(f"{image.ref} was built from older inputs than this numerai-sandbox defines; "
                     f"`numerai-sandbox images fetch --python {image.python}` lets it be rebuilt")
    console.detail(f"image {image.ref} · Python {image.python_full} · {image.profile}" + (f" · {flag}" if flag else ""))
    return Ready(image, notes)


def venv_ready(python: str, request: RunRequest, inspection: Inspection, console) -> Ready | Verdict:
    """For the process sandbox: the environment of the image's pins under a host CPython of the pickle's
    version, found or made offline from the wheelhouse; it stands for the image (its `id` is its Python)."""
    try:
        needs = numerai_additions(inspection, python) if request.profile == "auto" else None
        pins = pin_set(python, request.profile, extra_requirements=request.extra_requirements, needs=needs)
    except PinError as exc:
        return platform.image_unavailable(str(exc))
    notes = describe_additions(pins, console.detail)
    found = venv.interpreter_for(python)
    if found is None:
        return no_interpreter(python)
    missing = wheelhouse.inventory(pins, pins.added).missing if pins.added else []
    if missing:
        return not_fetched(request, pins, missing)
    try:
        made = venv.ensure(pins, found, console.progress)
    except venv.VenvUnavailable as exc:
        return platform.image_unavailable(sentence(str(exc)))
    if found.executable != venv.interpreter().executable:
        notes.append(f"the pickle's Python {python} is not the one running numerai-sandbox: its environment uses "
                     f"{found.executable}")
    image = image_store.Image(made.path.name, str(made.python), pins.python, found.version, pins.profile,
                              made.digest, pins.all, f"a virtual environment of {found.executable}", None, "", 0,
                              {name: numerai for name, numerai in SUBSTITUTES.items() if name in pins.all},
                              added=dict(pins.added))
    console.detail(f"environment {made.path.name} · Python {found.version} · {pins.profile} · process sandbox")
    return Ready(image, notes)


def no_interpreter(python: str) -> Verdict:
    """Error/image_unavailable: the process sandbox needs a CPython of the pickle's version on this machine."""
    running = venv.interpreter()
    return Verdict("image_unavailable",
                   f"The pickle needs Python {python}; the process sandbox runs it under a Python of that version on "
                   f"this machine, and there is none (numerai-sandbox runs under Python {running.version}; none was "
                   f"found as python{python} on PATH, under pyenv or in /usr).",
                   evidence={"python": python, "running": running.version, "backend": "process"},
                   advice=f"Install Python {python} (e.g. `pyenv install {python}`, or your system's python{python} "
                          f"package) and run again, or re-pickle the model under Python {running.version} (in a "
                          "notebook: pickle it in the kernel that runs numerai-sandbox), or run with a Docker engine.")


def describe_additions(pins: PinSet, detail) -> list[str]:
    """What the auto profile adds to the standard image, and why (said in Pending; its notes kept)."""
    if not pins.added:
        return []
    wanted = ", ".join(f"{module} ({dist} {pins.added[dist]})" for dist, module in pins.wanted.items())
    more = len(pins.added) - len(pins.wanted)
    detail(f"auto: the standard image plus {wanted}" + (f" and {more} distribution{'s' if more != 1 else ''} "
                                                        "they require" if more else "") + ", at Numerai's pins")
    return list(pins.notes)


def not_fetched(request: RunRequest, pins: PinSet, missing: list[str]) -> Verdict:
    """Error/packages_not_fetched, with the one command that fetches what is missing."""
    command = f"numerai-sandbox images fetch --for {shlex.quote(str(request.model))}"
    command += f" --python {pins.python}" if request.python != "auto" else ""
    command += f" --extra-requirements {shlex.quote(str(request.extra_requirements))}" \
        if request.extra_requirements else ""
    return platform.packages_not_fetched(pins, missing, command)
