"""Sandboxes as Kubernetes Jobs: one Job per pickle, for checking fleets of pickles on a cluster.

The same ContainerSpec a local run uses becomes, per pickle, a Job whose one pod runs the
harness with Numerai's limits (requests = limits), no network (a deny-all NetworkPolicy
selects every pod of the batch), gVisor's RuntimeClass when the cluster has one, a
non-root user, a read-only root filesystem, no capabilities, no service-account token.

Inputs: the pickle and the live data are baked into a per-pickle *inputs image*: the
runtime image plus one layer per input file (the live data layers are shared by every
pickle of a batch, so they are pushed once), pushed to the registry the user names. The
kubelet pulls it over the node's network; the pod itself never needs one.

The report: the harness's frames go to a file on an emptyDir (/report/frames), never to
the pod log (which mixes stdout and stderr and is rotated at 10 MiB); a small `reporter`
container of the same pod keeps the pod alive until the host has read that file through
the exec API, byte for byte, into the same FrameParser a local run uses. The backend
decides nothing: it reports an Outcome (exit code, OOM, timeout: the kubelet's facts,
not the model's) and streams the frames and the model's log to the sink, so verdicts are
made by the same host code as local runs.

The `kubernetes` client is an optional extra (`pip install numerai-sandbox[kubernetes]`):
it is imported only by the functions that talk to a cluster. The manifests are plain
dictionaries and need nothing but PyYAML to print.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import secrets
import tarfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from ..support.paths import APP, file_sha256
from .backend import Backend, BackendUnavailable, ContainerSpec, IsolationUnavailable, Limits, Outcome, StreamSink

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
POLL_SECONDS = 2.0
# Waiting reasons of the model container: it will never start (the cluster's fault, not the model's), or
# the kubelet retries, which we allow PULL_PATIENCE_SECONDS before calling it stuck.
NEVER_STARTS = {"InvalidImageName", "CreateContainerConfigError", "ErrImageNeverPull"}
RETRIED = {"ErrImagePull", "ImagePullBackOff", "CreateContainerError", "RunContainerError"}
PULL_PATIENCE_SECONDS = 180


class ClusterUnavailable(BackendUnavailable):
    """The cluster cannot be reached or refuses what we ask (never the model's fault)."""


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


@dataclass
class JobResult:
    """What came back for one pickle: the engine's facts, the harness's frames, the model's log."""

    outcome: Outcome
    report: bytes = b""
    logs: bytes = b""
    spec: ContainerSpec | None = None
    unavailable: str | None = None  # the cluster or registry could not run it: Error/backend_unavailable


# ---------------------------------------------------------------- names and manifests

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


# ---------------------------------------------------------------- the inputs image

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


def build_and_push_inputs(client, planned: Planned, progress: Callable[[str], None] = lambda line: None) -> str:
    """Build the pickle's inputs image with the local engine and push it; returns the pushed digest.
    The local image stays until `remove_inputs` (the next pickle reuses its shared layers)."""
    import docker.errors

    from .registry import RegistryError, push

    from .ownership import labels_for as owned_labels

    # Owned like a container: should this check be killed, the next one (or `clean`) removes it.
    labels = owned_labels("inputs", **{"inputs-of": planned.job_name})
    try:
        for event in client.api.build(fileobj=io.BytesIO(inputs_context(planned)), custom_context=True,
                                      tag=planned.inputs_ref, labels=labels, rm=True, forcerm=True, decode=True,
                                      network_mode="none"):
            if event.get("error"):
                raise RegistryError(f"building {planned.inputs_ref} failed: {event['error'].strip()}")
    except docker.errors.APIError as exc:
        raise RegistryError(f"building {planned.inputs_ref} failed: {exc.explanation or exc}") from exc
    return push(client, planned.inputs_ref, planned.inputs_ref, progress, keep_tag=True)


def remove_inputs(client, refs: Iterable[str]) -> None:
    from .registry import untag

    for ref in refs:
        untag(client, ref)


# ---------------------------------------------------------------- what the kubelet says

def outcome_from_pod(pod: dict, job_name: str, timed_out: bool = False, aborted: str | None = None,
                     stopped_by_cluster: bool = False) -> Outcome:
    """The engine's facts for one pod (as the API returns it, camelCase): exit code, OOM, the signal,
    or why the model's container never ran or did not run to its end. Nothing here comes from the
    model's process. `timed_out` is the host's own kill at the model's time limit; `stopped_by_cluster`
    means something else ended the pod first (the Job's deadline, an eviction, a deletion)."""
    outcome = Outcome(container=job_name, timed_out=timed_out, aborted=aborted)
    status = pod.get("status") or {}
    state = _model_state(pod)
    terminated = state.get("terminated")
    started = (terminated or {}).get("startedAt") or (state.get("running") or {}).get("startedAt")
    if terminated:
        outcome.exit_code = terminated.get("exitCode")
        outcome.oom_killed = terminated.get("reason") == "OOMKilled"
        outcome.run_seconds = _seconds_between(terminated.get("startedAt"), terminated.get("finishedAt"))
        if terminated.get("reason") in ("ContainerCannotRun", "StartError"):
            outcome.engine_error = f"{terminated.get('reason')}: {terminated.get('message') or ''}".strip()
    if not started:
        # The model never ran: scheduling, pulling or creating its container failed, or the Job's
        # deadline came first. Not the model's fault, whatever the clock says.
        outcome.timed_out = False
        outcome.engine_error = _why_not_started(pod, state, stopped_by_cluster)
    elif stopped_by_cluster and not timed_out and not outcome.oom_killed:
        why = status.get("message") or status.get("reason") or "the Job's deadline passed or the pod was deleted"
        outcome.engine_error = (f"the cluster stopped the pod before the model finished ({why}); the model's "
                                "own time limit had not passed: scheduling and pulling may have used up the Job's "
                                "activeDeadlineSeconds")
    return outcome


def _why_not_started(pod: dict, state: dict, stopped_by_cluster: bool) -> str:
    waiting = state.get("waiting") or {}
    if waiting.get("reason"):
        return f"the model's container did not start: {waiting['reason']}: {waiting.get('message') or ''}".strip()
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return (f"the pod could not be scheduled: {condition.get('reason')}: "
                    f"{condition.get('message') or ''}").strip()
    if stopped_by_cluster:
        return "the Job's deadline passed before the model's container started (scheduling or image pull too slow)"
    return "the model's container did not start"


def _seconds_between(start: str | None, end: str | None) -> float:
    from datetime import datetime

    if not start or not end:
        return 0.0
    parse = lambda text: datetime.fromisoformat(text.replace("Z", "+00:00"))  # noqa: E731
    return max(0.0, (parse(end) - parse(start)).total_seconds())


def _started_at(pod: dict) -> float | None:
    """When the model's container started (seconds since the epoch), per the kubelet."""
    from datetime import datetime

    for container in (pod.get("status") or {}).get("containerStatuses") or []:
        if container.get("name") == MODEL_CONTAINER:
            state = container.get("state") or {}
            started = (state.get("running") or state.get("terminated") or {}).get("startedAt")
            if started:
                return datetime.fromisoformat(started.replace("Z", "+00:00")).timestamp()
    return None


def _model_state(pod: dict) -> dict:
    for container in (pod.get("status") or {}).get("containerStatuses") or []:
        if container.get("name") == MODEL_CONTAINER:
            return container.get("state") or {}
    return {}


# ---------------------------------------------------------------- talking to the cluster

def load_clients(context: str | None = None):
    """(CoreV1Api, BatchV1Api, NetworkingV1Api, NodeV1Api, the ApiClient, the context's namespace)."""
    try:
        from kubernetes import client, config
    except ImportError as exc:
        raise ClusterUnavailable("the Kubernetes backend needs the kubernetes client: "
                                 "pip install 'numerai-sandbox[kubernetes]'") from exc
    namespace = "default"
    try:
        config.load_kube_config(context=context)
        _, active = config.list_kube_config_contexts()
        namespace = (active or {}).get("context", {}).get("namespace") or namespace
    except Exception:  # noqa: BLE001 - no kubeconfig: perhaps we run inside a cluster
        try:
            config.load_incluster_config()
        except Exception as exc:  # noqa: BLE001
            raise ClusterUnavailable(f"no Kubernetes cluster configured (KUBECONFIG, ~/.kube/config, or in-cluster): "
                                     f"{exc}") from exc
    api = client.ApiClient()
    return (client.CoreV1Api(api), client.BatchV1Api(api), client.NetworkingV1Api(api), client.NodeV1Api(api),
            api, namespace)


def discover_runtime_class(node_api, wanted: str = GVISOR_RUNTIME_CLASS) -> str | None:
    """`wanted` if the cluster has a RuntimeClass of that name, else None."""
    from kubernetes.client.exceptions import ApiException

    try:
        node_api.read_runtime_class(wanted)
        return wanted
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise ClusterUnavailable(f"cannot read RuntimeClass {wanted}: {exc.reason}") from exc


class PodBoard(threading.Thread):
    """One poller for every pod of a batch (one LIST per POLL_SECONDS, whatever the batch's size):
    the runs wait on it instead of each asking the API server."""

    def __init__(self, core, api, namespace: str, batch: str):
        super().__init__(daemon=True, name=f"pods-{batch}")
        self.core, self.api, self.namespace, self.batch = core, api, namespace, batch
        self.pods: dict[str, dict] = {}
        self.error: str | None = None
        self.changed = threading.Condition()
        self._stop_event = threading.Event()

    def run(self) -> None:
        while not self._stop_event.is_set():
            try:
                listed = self.core.list_namespaced_pod(self.namespace, label_selector=f"{BATCH_LABEL}={self.batch}")
                pods = {}
                for item in listed.items:
                    data = self.api.sanitize_for_serialization(item)
                    job = (data.get("metadata", {}).get("labels") or {}).get(RUN_LABEL)
                    if job:
                        pods[job] = data
                with self.changed:
                    self.pods, self.error = pods, None
                    self.changed.notify_all()
            except Exception as exc:  # noqa: BLE001 - a flaky API server: keep the last view, say why
                with self.changed:
                    self.error = f"{type(exc).__name__}: {str(exc)[:200]}"
                    self.changed.notify_all()
            self._stop_event.wait(POLL_SECONDS)

    def wait(self, timeout: float) -> None:
        with self.changed:
            self.changed.wait(timeout)

    def stop(self) -> None:
        self._stop_event.set()


@dataclass
class KubernetesBackend(Backend):
    """Sandboxes as Jobs of a Kubernetes cluster; the local Docker engine builds and pushes the inputs."""

    docker_client: object
    options: ClusterOptions
    core: object = None
    batch_api: object = None
    networking: object = None
    api: object = None
    batch: str = field(default_factory=batch_id)
    progress: Callable[[str], None] = lambda line: None
    name = "kubernetes"

    def __post_init__(self) -> None:
        self._board: PodBoard | None = None
        self._policy = False
        self._pushed: list[str] = []
        self._lock = threading.Lock()
        self._planned = 0  # Jobs named so far in this batch: every Job gets its own index

    def _plan(self, specs: list[ContainerSpec]) -> list[Planned]:
        with self._lock:
            first, self._planned = self._planned, self._planned + len(specs)
        return plan(specs, self.options.registry, self.batch, first)

    @classmethod
    def connect(cls, docker_client, registry: str, namespace: str | None = None, context: str | None = None,
                runtime_class: str | None = "auto", isolation: str = "runc", **options) -> "KubernetesBackend":
        """Connect to the cluster of the kubeconfig; runtime_class "auto" takes gvisor when the cluster has it."""
        from .leftovers import sweep_inputs_images

        sweep_inputs_images(docker_client)  # what killed checks left
        core, batch_api, networking, node_api, api, default_namespace = load_clients(context)
        chosen = discover_runtime_class(node_api) if runtime_class == "auto" else runtime_class
        if isolation == "gvisor" and chosen is None:
            raise IsolationUnavailable("--isolation gvisor needs a RuntimeClass named gvisor in the cluster "
                                       "(runsc installed on its nodes); there is none")
        opts = ClusterOptions(registry=registry, namespace=namespace or default_namespace, runtime_class=chosen,
                              **options)
        return cls(docker_client, opts, core, batch_api, networking, api)

    @property
    def client(self):
        """The local engine, which finds and builds the images (as for a local run) and pushes the inputs."""
        return self.docker_client

    # -------------------------------------------------------- the batch's shared objects

    def _ensure_batch_objects(self) -> PodBoard:
        with self._lock:
            if not self._policy:
                self._create(self.networking.create_namespaced_network_policy, network_policy(self.options, self.batch))
                self._policy = True
            if self._board is None:
                self._board = PodBoard(self.core, self.api, self.options.namespace, self.batch)
                self._board.start()
            return self._board

    def _create(self, method, body: dict) -> None:
        from kubernetes.client.exceptions import ApiException

        try:
            method(self.options.namespace, body)
        except ApiException as exc:
            raise ClusterUnavailable(f"the cluster refused {body['kind']} {body['metadata']['name']}: "
                                     f"{exc.status} {exc.reason}: {_api_message(exc)}") from exc

    # -------------------------------------------------------- one sandbox

    def run(self, spec: ContainerSpec, sink: StreamSink, on_started: Callable[[], None] = lambda: None,
            on_created: Callable[[str], None] = lambda name: None,
            on_waiting: Callable[[], None] = lambda: None) -> Outcome:
        """One Job; the cluster's scheduler does the queueing, so `on_waiting` is never called."""
        self._check_isolation([spec])
        planned = self._plan([spec])[0]
        self._push(planned)
        on_created(planned.job_name)
        outcome = self._run_pushed(planned, sink, on_started)
        if outcome.engine_error:  # the model never ran, or the cluster stopped it: not a verdict on the model
            raise ClusterUnavailable(f"Job {planned.job_name}: {outcome.engine_error}")
        return outcome

    def _check_isolation(self, specs: list[ContainerSpec]) -> None:
        if any(s.limits.isolation == "gvisor" for s in specs) and not self.options.runtime_class:
            raise IsolationUnavailable("--isolation gvisor needs a RuntimeClass for gVisor in the cluster "
                                       f"(e.g. `{GVISOR_RUNTIME_CLASS}`, with runsc on its nodes); there is none")

    def _push(self, planned: Planned) -> None:
        build_and_push_inputs(self.docker_client, planned, self.progress)
        with self._lock:
            self._pushed.append(planned.inputs_ref)

    def _run_pushed(self, planned: Planned, sink: StreamSink, on_started: Callable[[], None] = lambda: None) -> Outcome:
        board = self._ensure_batch_objects()
        self._create(self.batch_api.create_namespaced_job, job_manifest(planned, self.options, self.batch))
        try:
            return self._follow(planned, board, sink, on_started)
        finally:
            self._delete_job(planned.job_name)

    def _follow(self, planned: Planned, board: PodBoard, sink: StreamSink, on_started) -> Outcome:
        """Wait for the model's container to end (or its time to run out), then read the report and logs."""
        limits = planned.spec.limits
        job = planned.job_name
        give_up = time.time() + limits.timeout_seconds + self.options.start_allowance_seconds + 60
        started_seen = timed_out = stopped = False
        retried_since: float | None = None
        pod: dict = {}
        while True:
            board.wait(POLL_SECONDS * 2)
            pod = board.pods.get(job, pod)
            state = _model_state(pod)
            started = _started_at(pod)
            now = time.time()
            if started and not started_seen:
                started_seen = True
                on_started()
            if (pod.get("metadata") or {}).get("deletionTimestamp") or (pod.get("status") or {}).get("phase") == "Failed":
                stopped = not state.get("terminated") or (pod.get("status") or {}).get("phase") == "Failed"
                break  # the Job controller (deadline), an eviction or someone else ended it, not us
            if state.get("terminated"):
                break
            if started and now - started > limits.timeout_seconds:
                timed_out = True  # the host's clock, from the kubelet's start time: the model's limit
                break
            waiting = (state.get("waiting") or {}).get("reason")
            retried_since = (retried_since or now) if waiting in RETRIED else None
            if waiting in NEVER_STARTS or (retried_since and now - retried_since > PULL_PATIENCE_SECONDS):
                break
            if now > give_up:
                stopped = True
                break
        aborted = None
        if started_seen:
            aborted = self._read_report(job, sink)  # what the harness wrote so far, even after a timeout
            self._read_logs(job, sink)
        return outcome_from_pod(pod, job, timed_out=timed_out, aborted=aborted, stopped_by_cluster=stopped)

    def _read_report(self, job: str, sink: StreamSink) -> str | None:
        """The harness's frames, read from the report volume through the reporter container."""
        pod_name = self._pod_name(job)
        if pod_name is None:
            return None
        try:
            for chunk in self._report_chunks(pod_name):
                sink.stdout(chunk)
                if sink.abort_reason():
                    break
        except Exception as exc:  # noqa: BLE001 - the pod went away: the kubelet's facts still stand
            self.progress(f"{job}: could not read the report: {type(exc).__name__}: {exc}")
        return sink.abort_reason()

    def _report_chunks(self, pod_name: str) -> Iterator[bytes]:
        """`cat /report/frames` in the reporter container, through the exec API (binary websocket frames)."""
        from kubernetes.stream import stream

        response = stream(self.core.connect_get_namespaced_pod_exec, pod_name, self.options.namespace,
                          container=REPORTER_CONTAINER, command=["cat", FRAMES_PATH], stderr=True, stdin=False,
                          stdout=True, tty=False, binary=True, _preload_content=False)
        try:
            while response.is_open():
                response.update(timeout=5)
                if response.peek_stdout():
                    yield response.read_stdout()
            if response.peek_stdout():
                yield response.read_stdout()
        finally:
            response.close()

    def _read_logs(self, job: str, sink: StreamSink) -> None:
        """The model's own output (stdout and stderr: the harness sent its stdout to stderr)."""
        pod_name = self._pod_name(job)
        if pod_name is None:
            return
        try:
            response = self.core.read_namespaced_pod_log(pod_name, self.options.namespace, container=MODEL_CONTAINER,
                                                         _preload_content=False)
            for chunk in response.stream(64 * 1024):
                sink.stderr(chunk)
        except Exception:  # noqa: BLE001 - logs are evidence, not facts: a missing log changes no verdict
            pass

    def _pod_name(self, job: str) -> str | None:
        pod = self._board.pods.get(job) if self._board else None
        return ((pod or {}).get("metadata") or {}).get("name")

    def _delete_job(self, job: str) -> None:
        try:
            self.batch_api.delete_namespaced_job(job, self.options.namespace, propagation_policy="Background",
                                                 grace_period_seconds=0)
        except Exception:  # noqa: BLE001 - the Job's TTL removes it should this fail
            pass

    # -------------------------------------------------------- many sandboxes

    def run_batch(self, specs: list[ContainerSpec], jobs: int = 10,
                  on_done: Callable[[int, JobResult], None] = lambda index, result: None) -> list[JobResult]:
        """Run every spec, at most `jobs` Jobs at once; one JobResult per spec, in order.

        Inputs images are built and pushed one at a time (the engine is one machine); Jobs run in parallel."""
        self._check_isolation(specs)
        planned = self._plan(specs)
        build_lock = threading.Lock()
        results: list[JobResult | None] = [None] * len(specs)

        def one(index: int) -> None:
            collector = CollectingSink(specs[index].limits)
            unavailable = None
            try:
                with build_lock:
                    self._push(planned[index])
                outcome = self._run_pushed(planned[index], collector)
                unavailable = outcome.engine_error  # never ran, or the cluster stopped it
            except Exception as exc:  # noqa: BLE001 - one pickle's failure is reported, the batch goes on
                outcome = Outcome(container=planned[index].job_name, engine_error=f"{type(exc).__name__}: {exc}")
                unavailable = str(exc) if isinstance(exc, BackendUnavailable) else None
            result = JobResult(outcome, bytes(collector.report), bytes(collector.logs), specs[index], unavailable)
            results[index] = result
            on_done(index, result)

        with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="job") as pool:
            list(pool.map(one, range(len(specs))))
        return [r for r in results if r is not None]

    def close(self) -> None:
        """Stop polling, delete the batch's NetworkPolicy and the local inputs images."""
        if self._board is not None:
            self._board.stop()
        if self._policy:
            try:
                self.networking.delete_namespaced_network_policy(f"nsbx-{self.batch}-deny-all", self.options.namespace)
            except Exception:  # noqa: BLE001
                pass
        remove_inputs(self.docker_client, self._pushed)
        if self.api is not None:
            self.api.close()


class CollectingSink(StreamSink):
    """Keeps the frames and the model's log of one sandbox for the host to judge later (bounded)."""

    def __init__(self, limits: Limits):
        from .protocol import FrameParser

        self.report = bytearray()
        self.logs = bytearray()
        self.parser = FrameParser(max_predictions=limits.max_output_bytes)
        self.max_logs = limits.max_log_bytes

    def stdout(self, chunk: bytes) -> None:
        if not self.parser.oversized and not self.parser.broken:
            self.report += chunk
            self.parser.feed(chunk)

    def stderr(self, chunk: bytes) -> None:
        room = self.max_logs - len(self.logs)
        if room > 0:
            self.logs += chunk[:room]

    def abort_reason(self) -> str | None:
        return "output_too_large" if self.parser.oversized else None


def _api_message(exc) -> str:
    try:
        return json.loads(exc.body).get("message", "")[:300]
    except (TypeError, ValueError, AttributeError):
        return str(exc.body or "")[:300]
