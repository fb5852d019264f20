"""Kubernetes Jobs as manifests: one Job per pickle, its inputs image, and the batch's deny-all policy.

The same ContainerSpec a local run uses becomes, per pickle, a Job whose one pod runs the harness
with Numerai's limits (requests = limits), no network (a deny-all NetworkPolicy selects every pod of
the batch), gVisor's RuntimeClass when the cluster has one, a non-root user, a read-only root
filesystem, no capabilities, no service-account token. Its inputs (the pickle, the live data) are
baked into a per-pickle inputs image: the runtime image plus one layer per input file, the shared
ones first. Plain dictionaries: nothing here talks to a cluster (runner/sandbox/kubernetes.py does),
and `to_yaml` needs nothing but PyYAML (`check --backend kubernetes --dry-run` prints them).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import secrets
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..support.paths import APP, file_sha256
from .backend import ContainerSpec, Limits

MODEL_CONTAINER = "model"
REPORTER_CONTAINER = "reporter"
REPORT_DIR = "/report"
FRAMES_PATH = f"{REPORT_DIR}/frames"
HARNESS = ["/opt/venv/bin/python", "-I", "-u", "-B", "/opt/numerai-sandbox/harness.py"]
REPORTER_USER = 1001  # not the model's user: the model cannot signal or trace the reporter
REPORTER_RESOURCES = {"cpu": "50m", "memory": "64Mi"}
REPORT_SLACK_BYTES = 64 * 1024**2  # the report's emptyDir holds the predictions frame plus the JSON frames
INPUTS_REPOSITORY = f"{APP}-inputs"
GVISOR_RUNTIME_CLASS = "gvisor"
LABEL_PREFIX = APP  # label keys numerai-sandbox/batch, numerai-sandbox/run
BATCH_LABEL = f"{LABEL_PREFIX}/batch"
RUN_LABEL = f"{LABEL_PREFIX}/run"


@dataclass(frozen=True)
class ClusterOptions:
    """Where and how the Jobs run."""

    registry: str  # HOST[:PORT][/PATH] the nodes pull from (checked by registry.check_registry)
    namespace: str = "default"
    runtime_class: str | None = None  # "gvisor" when the cluster has that RuntimeClass (see discover_runtime_class)
    # Scheduling and pulling a ~1.2 GB image may take minutes on a cold node; the model's own clock is
    # enforced by the host from the moment its container starts. activeDeadlineSeconds = timeout + this
    # is the backstop that holds even if the host goes away.
    start_allowance_seconds: int = 900
    image_pull_secret: str | None = None
    ttl_seconds_after_finished: int = 3600  # a Job the host could not delete goes away by itself


@dataclass
class Planned:
    """One pickle's sandbox on the cluster: its spec, the inputs image it runs, its name."""

    spec: ContainerSpec
    inputs_ref: str
    job_name: str
    layers: list[tuple[str, Path]]  # (target path in the image, host file), shared inputs first


def batch_id() -> str:
    return secrets.token_hex(4)


def _dns_label(text: str, limit: int = 63) -> str:
    cleaned = re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")
    return cleaned[:limit].rstrip("-") or "x"


def inputs_digest(spec: ContainerSpec) -> str:
    """The identity of a pickle's inputs image: the runtime image and every input file's content."""
    digest = hashlib.sha256(spec.image.encode())
    for mount in sorted(spec.mounts, key=lambda m: m.target):
        digest.update(f"\0{mount.target}\0{_sha256(mount.source)}".encode())
    return digest.hexdigest()


_SHA_CACHE: dict[tuple[str, int, int], str] = {}


def _sha256(path: Path) -> str:
    """A file's SHA-256, remembered per (path, size, mtime): a batch hashes its live data once."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _SHA_CACHE:
        _SHA_CACHE[key] = file_sha256(path)
    return _SHA_CACHE[key]


def plan(specs: list[ContainerSpec], registry: str, batch: str, first_index: int = 0) -> list[Planned]:
    """Name each spec's inputs image and Job. Inputs every spec of the batch shares (the live data) go
    in the lower layers, so they are built, pushed and pulled once for the whole batch."""
    if any(m.writable for spec in specs for m in spec.mounts):
        raise ValueError("a model run never gets a writable mount")
    shared = set.intersection(*({(m.target, str(m.source)) for m in s.mounts} for s in specs)) if specs else set()
    planned = []
    for index, spec in enumerate(specs, first_index):
        layers = sorted(((m.target, m.source) for m in spec.mounts),
                        key=lambda t: ((t[0], str(t[1])) not in shared, t[0]))
        digest = inputs_digest(spec)
        python = spec.labels.get("python")
        tag = f"py{python}-{digest[:16]}" if python else digest[:16]
        planned.append(Planned(spec, f"{registry}/{INPUTS_REPOSITORY}:{tag}",
                               _dns_label(f"nsbx-{batch}-{index:04d}-{digest[:8]}"), layers))
    return planned


def _quantity_bytes(n: int) -> str:
    for unit, size in (("Gi", 1024**3), ("Mi", 1024**2), ("Ki", 1024)):
        if n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def _quantity_cpus(cpus: float) -> str:
    millis = round(cpus * 1000)
    return str(millis // 1000) if millis % 1000 == 0 else f"{millis}m"


def _harness_args(spec: ContainerSpec) -> list[str]:
    """The harness's arguments on a cluster: no stdin lifeline (the host holds no attachment; the Job's
    deadline and the host's deletion stop a sandbox whose host went away)."""
    return [a for a in spec.command if a != "--exit-on-stdin-eof"]


def model_script(limits: Limits, own_kernel: bool = False) -> str:
    """The model container's command: the limits a pod spec cannot express, then the harness with its
    report channel on the report volume. The shell stays the container's first process (as docker-init
    locally), so the harness dies of its signals like any process and `$?` reports them as 128+N.
    In a sandbox with its own kernel (gVisor's RuntimeClass) the process limit is RLIMIT_NPROC, counted
    there per sandbox; on the node's kernel it would count every pod of the same uid, so it is left out."""
    cpu_seconds = int(limits.timeout_seconds * max(limits.cpus, 1)) + 120
    harness = " ".join(HARNESS)
    nproc = f"ulimit -p {limits.pids}; " if own_kernel else ""  # dash's -p is RLIMIT_NPROC
    return (f"ulimit -n {limits.open_files}; ulimit -c 0; ulimit -t {cpu_seconds}; {nproc}"
            f'{harness} "$@" > {FRAMES_PATH}')


def _security_context(user: int) -> dict:
    return {"runAsNonRoot": True, "runAsUser": user, "runAsGroup": user, "allowPrivilegeEscalation": False,
            "privileged": False, "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"}}


def labels_for(batch: str, job_name: str | None = None) -> dict[str, str]:
    labels = {"app.kubernetes.io/name": APP, "app.kubernetes.io/component": "sandbox", BATCH_LABEL: batch}
    if job_name:
        labels[RUN_LABEL] = job_name
    return labels


def job_manifest(planned: Planned, options: ClusterOptions, batch: str) -> dict:
    """The Job for one pickle."""
    spec, limits = planned.spec, planned.spec.limits
    uid, _, gid = spec.user.partition(":")
    user = int(uid) if uid.isdigit() and int(uid) != 0 else 1000
    resources = {"cpu": _quantity_cpus(limits.cpus), "memory": _quantity_bytes(limits.memory_bytes)}
    deadline = int(limits.timeout_seconds) + options.start_allowance_seconds
    labels = labels_for(batch, planned.job_name)
    model = {
        "name": MODEL_CONTAINER, "image": planned.inputs_ref, "imagePullPolicy": "IfNotPresent",
        "command": ["/bin/sh", "-c", model_script(limits, own_kernel=bool(options.runtime_class)), "harness",
                    *_harness_args(spec)],
        "workingDir": "/tmp",
        "env": [{"name": k, "value": v} for k, v in sorted(spec.environment.items())],
        "resources": {"requests": dict(resources), "limits": dict(resources)},  # Guaranteed, as Numerai's
        "securityContext": _security_context(user) | ({"runAsGroup": int(gid)} if gid.isdigit() else {}),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, {"name": "report", "mountPath": REPORT_DIR}],
    }
    reporter = {
        "name": REPORTER_CONTAINER, "image": planned.inputs_ref, "imagePullPolicy": "IfNotPresent",
        # Outlives the model's container until the host has read the report and deletes the Job.
        "command": ["/bin/sleep", str(deadline)],
        "resources": {"requests": dict(REPORTER_RESOURCES), "limits": dict(REPORTER_RESOURCES)},
        "securityContext": _security_context(REPORTER_USER),
        "volumeMounts": [{"name": "report", "mountPath": REPORT_DIR, "readOnly": True}],
    }
    pod = {
        "restartPolicy": "Never",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "hostNetwork": False, "hostPID": False, "hostIPC": False,
        "shareProcessNamespace": False,
        "terminationGracePeriodSeconds": 1,
        "securityContext": {"runAsNonRoot": True, "runAsUser": user, "runAsGroup": user,
                            "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [model, reporter],
        "volumes": [
            # A tmpfs, as locally: what the model writes to /tmp counts against its memory.
            {"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": _quantity_bytes(limits.tmp_bytes)}},
            {"name": "report", "emptyDir": {"sizeLimit": _quantity_bytes(limits.max_output_bytes
                                                                          + REPORT_SLACK_BYTES)}},
        ],
    }
    if options.runtime_class:
        pod["runtimeClassName"] = options.runtime_class
    if options.image_pull_secret:
        pod["imagePullSecrets"] = [{"name": options.image_pull_secret}]
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": planned.job_name, "namespace": options.namespace, "labels": labels,
                     "annotations": {f"{LABEL_PREFIX}/model": _model_name(spec),
                                     f"{LABEL_PREFIX}/isolation": options.runtime_class or "runc"}},
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": deadline,
            "ttlSecondsAfterFinished": options.ttl_seconds_after_finished,
            "template": {"metadata": {"labels": dict(labels)}, "spec": pod},
        },
    }


def _model_name(spec: ContainerSpec) -> str:
    model = next((m for m in spec.mounts if m.target.endswith(".pkl")), None)
    return model.source.name if model else ""


def network_policy(options: ClusterOptions, batch: str) -> dict:
    """Deny all traffic, in and out, for every pod of the batch (the model and its reporter)."""
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": {"name": f"nsbx-{batch}-deny-all", "namespace": options.namespace, "labels": labels_for(batch)},
        "spec": {"podSelector": {"matchLabels": {BATCH_LABEL: batch}}, "policyTypes": ["Ingress", "Egress"]},
    }


def manifests(specs: list[ContainerSpec], options: ClusterOptions, batch: str | None = None) -> list[dict]:
    """Every object a batch creates, in the order it is created: the NetworkPolicy, then one Job per spec."""
    batch = batch or batch_id()
    planned = plan(specs, options.registry, batch)
    return [network_policy(options, batch)] + [job_manifest(p, options, batch) for p in planned]


def to_yaml(objects: Iterable[dict]) -> str:
    """Manifests as one YAML stream (`kubectl apply -f -` reads it); JSON documents if PyYAML is absent."""
    try:
        import yaml
    except ImportError:  # JSON is YAML too
        return "".join(f"---\n{json.dumps(o, indent=2)}\n" for o in objects)

    class Plain(yaml.SafeDumper):
        def ignore_aliases(self, data) -> bool:  # every object spelled out: no &anchors for kubectl to trip on
            return True

    return "".join("---\n" + yaml.dump(o, Dumper=Plain, sort_keys=False, width=120) for o in objects)


def inputs_context(planned: Planned) -> bytes:
    """The build context of a pickle's inputs image: its Dockerfile and each input file, read-only."""
    lines = [f"FROM {planned.spec.image}"]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for index, (target, source) in enumerate(planned.layers):
            name = f"input-{index}"
            info = tar.gettarinfo(str(source), arcname=name)
            info.mode, info.uid, info.gid, info.uname, info.gname, info.mtime = 0o444, 0, 0, "", "", 0
            with open(source, "rb") as handle:
                tar.addfile(info, handle)
            lines.append(f"COPY {name} {target}")  # one layer per input; the shared ones first
        dockerfile = ("\n".join(lines) + "\n").encode()
        info = tarfile.TarInfo("Dockerfile")
        info.size = len(dockerfile)
        tar.addfile(info, io.BytesIO(dockerfile))
    return buffer.getvalue()
