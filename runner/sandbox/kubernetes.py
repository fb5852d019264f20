"""Sandboxes as Kubernetes Jobs: one Job per pickle, for checking fleets of pickles on a cluster.

The same ContainerSpec a local run uses becomes, per pickle, a Job (the manifests:
runner/sandbox/kubernetes_manifests.py). Inputs: the pickle and the live data are baked into a
per-pickle *inputs image* (the live data layers are shared by every pickle of a batch, so they
are pushed once), pushed to the registry the user names. The kubelet pulls it over the node's
network; the pod itself never needs one.

The report: the harness's frames go to a file on an emptyDir (/report/frames), never to
the pod log (which mixes stdout and stderr and is rotated at 10 MiB); a small `reporter`
container of the same pod keeps the pod alive until the host has read that file through
the exec API, byte for byte, into the same FrameParser a local run uses. The backend
decides nothing: it reports an Outcome (exit code, OOM, timeout: the kubelet's facts,
not the model's; a model that never ran, or that the cluster stopped, is the Outcome's
`failure`) and streams the frames and the model's log to the sink, so verdicts are made by
the same host code as local runs.

The `kubernetes` client is an optional extra (`pip install numerai-sandbox[kubernetes]`):
it is imported only by the functions that talk to a cluster.
"""

from __future__ import annotations

import io
import json
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

from .backend import (NOT_STARTED, STOPPED, UNREACHABLE, Backend, BackendUnavailable, ContainerSpec,
                      IsolationUnavailable, Outcome, PlatformFailure, StreamSink)
from .kubernetes_manifests import (BATCH_LABEL, FRAMES_PATH, GVISOR_RUNTIME_CLASS, MODEL_CONTAINER, REPORTER_CONTAINER,
                                   RUN_LABEL, ClusterOptions, Planned, batch_id, inputs_context, job_manifest,
                                   network_policy, plan)

POLL_SECONDS = 2.0
# Waiting reasons of the model container: it will never start (the cluster's fault, not the model's), or
# the kubelet retries, which we allow PULL_PATIENCE_SECONDS before calling it stuck.
NEVER_STARTS = {"InvalidImageName", "CreateContainerConfigError", "ErrImageNeverPull"}
RETRIED = {"ErrImagePull", "ImagePullBackOff", "CreateContainerError", "RunContainerError"}
PULL_PATIENCE_SECONDS = 180


class ClusterUnavailable(BackendUnavailable):
    """The cluster cannot be reached or refuses what we ask (never the model's fault)."""

    platform = "kubernetes"


# ---------------------------------------------------------------- the inputs image

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
    or why the model's container never ran or did not run to its end (`failure`). Nothing here comes from
    the model's process. `timed_out` is the host's own kill at the model's time limit; `stopped_by_cluster`
    means something else ended the pod first (the Job's deadline, an eviction, a deletion)."""
    outcome = Outcome(container=job_name, timed_out=timed_out, aborted=aborted)

    def failed(kind: str, why: str) -> PlatformFailure:
        return PlatformFailure(kind, f"Job {job_name}: {why}", "kubernetes")

    status = pod.get("status") or {}
    state = _model_state(pod)
    terminated = state.get("terminated")
    started = (terminated or {}).get("startedAt") or (state.get("running") or {}).get("startedAt")
    if terminated:
        outcome.exit_code = terminated.get("exitCode")
        outcome.oom_killed = terminated.get("reason") == "OOMKilled"
        outcome.run_seconds = _seconds_between(terminated.get("startedAt"), terminated.get("finishedAt"))
        if terminated.get("reason") in ("ContainerCannotRun", "StartError"):
            outcome.failure = failed(NOT_STARTED, f"{terminated.get('reason')}: {terminated.get('message') or ''}".strip())
    if not started:
        # The model never ran: scheduling, pulling or creating its container failed, or the Job's
        # deadline came first. Not the model's fault, whatever the clock says.
        outcome.timed_out = False
        outcome.failure = failed(NOT_STARTED, _why_not_started(pod, state, stopped_by_cluster))
    elif stopped_by_cluster and not timed_out and not outcome.oom_killed:
        why = status.get("message") or status.get("reason") or "the Job's deadline passed or the pod was deleted"
        outcome.failure = failed(STOPPED, f"the cluster stopped the pod before the model finished ({why}); the "
                                 "model's own time limit had not passed: scheduling and pulling may have used up the "
                                 "Job's activeDeadlineSeconds")
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
                                 "pip install 'numerai-sandbox[kubernetes]'", kind=UNREACHABLE) from exc
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
                                     f"{exc}", kind=UNREACHABLE) from exc
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
    runs_here = False  # on the cluster's nodes: this machine's memory says nothing about them

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
                                       "(runsc installed on its nodes); there is none", "kubernetes")
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
        """One Job; the cluster's scheduler does the queueing, so `on_waiting` is never called. A model that never
        ran, or that the cluster stopped, comes back as the Outcome's `failure` (the kubelet's reason)."""
        self._check_isolation([spec])
        planned = self._plan([spec])[0]
        self._push(planned)
        on_created(planned.job_name)
        return self._run_pushed(planned, sink, on_started)

    def _check_isolation(self, specs: list[ContainerSpec]) -> None:
        if any(s.limits.isolation == "gvisor" for s in specs) and not self.options.runtime_class:
            raise IsolationUnavailable("--isolation gvisor needs a RuntimeClass for gVisor in the cluster "
                                       f"(e.g. `{GVISOR_RUNTIME_CLASS}`, with runsc on its nodes); there is none",
                                       "kubernetes")

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


def _api_message(exc) -> str:
    try:
        return json.loads(exc.body).get("message", "")[:300]
    except (TypeError, ValueError, AttributeError):
        return str(exc.body or "")[:300]
