"""The Kubernetes Jobs backend: manifests validated in strict mode, the pod's container run for real,
the kubelet's facts judged by the same host code, and the full path on a real cluster when there is one.

There is no cluster here, so what a cluster would do is split in three: the manifests, checked
against Kubernetes' own schemas by kubernetes-validate (strict: no unknown or misspelt field);
the model container's command and inputs image, run by the local Docker engine exactly as the
pod spec says (read-only root, the report on its own volume); and the pod statuses the kubelet
reports, turned into Outcomes and verdicts by the code local runs use.
"""

from __future__ import annotations

import itertools
import json
import os
from pathlib import Path

import pytest

from conftest import engine_tags
from runner.sandbox.backend import ContainerSpec, Limits, Mount

KUBERNETES_VERSIONS = ["1.29.0", "1.33.0"]  # an older supported release and a current one
REGISTRIES = ["127.0.0.1:5000", "registry.example.com/team/numerai"]
LIMITS = {
    "numerai": Limits(),
    "raised": Limits(memory_bytes=6 * 1024**3, cpus=2.0, timeout_seconds=3600),
    "fractional": Limits(memory_bytes=512 * 1024**2, cpus=0.5, timeout_seconds=90),
    "odd": Limits(memory_bytes=int(2.5 * 1024**3) + 1, cpus=1.25, timeout_seconds=20 * 60),
}


def spec_for(model: Path, live: Path, bench: Path, limits: Limits = Limits(), debug: bool = False,
             image: str = "sha256:" + "ab" * 32) -> ContainerSpec:
    return ContainerSpec(image=image, name="numerai-sandbox-run-test",
                         command=["--max-output-bytes", str(limits.max_output_bytes), "--exit-on-stdin-eof"]
                         + (["--debug"] if debug else []),
                         mounts=[Mount(model, "/input/model.pkl"), Mount(live, "/input/live.parquet"),
                                 Mount(bench, "/input/live_benchmark_models.parquet")],
                         limits=limits, user="1000:1000",
                         environment={"HOME": "/tmp", "MPLCONFIGDIR": "/tmp/matplotlib"}, labels={"python": "3.11"})


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("k8s-inputs")
    files = {"a": b"pickle a", "b": b"pickle b", "live": b"live data", "bench": b"benchmarks"}
    for name, body in files.items():
        (root / name).write_bytes(body)
    return {name: root / name for name in files}


def validate_strict(obj: dict, version: str) -> None:
    import kubernetes_validate

    kubernetes_validate.validate(obj, version, strict=True)


OPTION_SETS = list(itertools.product(["gvisor", None], LIMITS, REGISTRIES))


@pytest.mark.parametrize("runtime_class, limits_name, registry", OPTION_SETS,
                         ids=[f"{r or 'runc'}-{limits}-{reg.split('/')[0]}" for r, limits, reg in OPTION_SETS])
def test_manifests_for_every_option_validate_strictly(inputs, runtime_class, limits_name, registry):
    from runner.sandbox.kubernetes_manifests import BATCH_LABEL, ClusterOptions, manifests

    limits = LIMITS[limits_name]
    specs = [spec_for(inputs["a"], inputs["live"], inputs["bench"], limits),
             spec_for(inputs["b"], inputs["live"], inputs["bench"], limits, debug=True)]
    options = ClusterOptions(registry=registry, namespace="numerai-checks", runtime_class=runtime_class,
                             image_pull_secret="regcred" if registry.startswith("registry.") else None)
    objects = manifests(specs, options, batch="b1")
    for obj, version in itertools.product(objects, KUBERNETES_VERSIONS):
        validate_strict(obj, version)
    policy, jobs = objects[0], objects[1:]
    assert policy["kind"] == "NetworkPolicy" and len(jobs) == 2
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]  # deny all, both ways: no rules at all
    assert "ingress" not in policy["spec"] and "egress" not in policy["spec"]
    for job in jobs:
        pod = job["spec"]["template"]["spec"]
        assert policy["spec"]["podSelector"]["matchLabels"].items() <= job["spec"]["template"]["metadata"]["labels"].items()
        assert job["spec"]["template"]["metadata"]["labels"][BATCH_LABEL] == "b1"
        assert job["spec"]["backoffLimit"] == 0 and pod["restartPolicy"] == "Never"
        assert job["spec"]["activeDeadlineSeconds"] == int(limits.timeout_seconds) + options.start_allowance_seconds
        assert pod.get("runtimeClassName") == runtime_class
        assert pod["automountServiceAccountToken"] is False and pod["enableServiceLinks"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        model = next(c for c in pod["containers"] if c["name"] == "model")
        assert model["resources"]["requests"] == model["resources"]["limits"]  # Guaranteed, like Numerai's
        assert model["image"].startswith(registry + "/numerai-sandbox-inputs:py3.11-")
        for container in pod["containers"]:
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True and context["allowPrivilegeEscalation"] is False
            assert context["capabilities"] == {"drop": ["ALL"]} and context["runAsUser"] != 0
            assert container["resources"]["requests"] == container["resources"]["limits"]
        assert "--exit-on-stdin-eof" not in model["command"]  # nothing holds a pod's stdin
        tmp = next(v for v in pod["volumes"] if v["name"] == "tmp")
        assert tmp["emptyDir"]["medium"] == "Memory"
        if options.image_pull_secret:
            assert pod["imagePullSecrets"] == [{"name": "regcred"}]
    # The pickles share the live data (the lower layers of their inputs images), not their images.
    assert jobs[0]["spec"]["template"]["spec"]["containers"][0]["image"] != \
        jobs[1]["spec"]["template"]["spec"]["containers"][0]["image"]


def test_limits_become_exact_quantities(inputs):
    from runner.sandbox.kubernetes_manifests import ClusterOptions, manifests

    expected = {"numerai": ("1", "4Gi"), "raised": ("2", "6Gi"), "fractional": ("500m", "512Mi"),
                "odd": ("1250m", str(int(2.5 * 1024**3) + 1))}
    for name, (cpu, memory) in expected.items():
        job = manifests([spec_for(inputs["a"], inputs["live"], inputs["bench"], LIMITS[name])],
                        ClusterOptions(registry="127.0.0.1:5000"))[1]
        resources = job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
        assert resources == {"cpu": cpu, "memory": memory}, name


def test_a_misspelt_field_fails_strict_validation(inputs):
    """The strict schemas really are strict: the test above would catch a typo of ours."""
    import kubernetes_validate

    from runner.sandbox.kubernetes_manifests import ClusterOptions, manifests

    job = manifests([spec_for(inputs["a"], inputs["live"], inputs["bench"])], ClusterOptions(registry="r.io"))[1]
    job["spec"]["template"]["spec"]["restartPolcy"] = "Never"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_strict(job, KUBERNETES_VERSIONS[-1])


def test_yaml_is_plain_and_round_trips(inputs):
    import yaml

    from runner.sandbox.kubernetes_manifests import ClusterOptions, manifests, to_yaml

    objects = manifests([spec_for(inputs["a"], inputs["live"], inputs["bench"])] * 2,
                        ClusterOptions(registry="127.0.0.1:5000", runtime_class="gvisor"))
    text = to_yaml(objects)
    assert "&id" not in text and "*id" not in text  # no YAML anchors
    assert list(yaml.safe_load_all(text)) == objects


def test_identical_inputs_name_the_same_image_and_any_byte_changes_it(inputs, tmp_path):
    from runner.sandbox.kubernetes_manifests import plan

    specs = [spec_for(inputs["a"], inputs["live"], inputs["bench"]), spec_for(inputs["a"], inputs["live"], inputs["bench"])]
    first, second = plan(specs, "127.0.0.1:5000", "b")
    assert first.inputs_ref == second.inputs_ref and first.job_name != second.job_name
    changed = tmp_path / "a"
    changed.write_bytes(b"pickle a!")
    third = plan([spec_for(changed, inputs["live"], inputs["bench"])], "127.0.0.1:5000", "b")[0]
    assert third.inputs_ref != first.inputs_ref
    # The shared live data come first, the pickle last (its own layer on top).
    assert [target for target, _ in first.layers][-1] == "/input/model.pkl"


def test_dry_run_entry_point_prints_valid_manifests_for_a_set_of_pickles(client, models):
    import yaml

    from runner.run.plan import kubernetes_manifests

    text = kubernetes_manifests([models["good_1arg"], models["good_2arg"], models["raises"]], "127.0.0.1:5000",
                                runtime_class="gvisor", limits=Limits(timeout_seconds=300))
    objects = list(yaml.safe_load_all(text))
    assert [o["kind"] for o in objects] == ["NetworkPolicy", "Job", "Job", "Job"]
    for obj in objects:
        validate_strict(obj, KUBERNETES_VERSIONS[-1])
    assert {o["metadata"]["annotations"]["numerai-sandbox/model"] for o in objects[1:]} == \
        {"good_1arg.pkl", "good_2arg.pkl", "raises.pkl"}


def test_dry_run_rejects_a_bad_registry(tmp_path):
    from runner.run import UsageError
    from runner.run.plan import kubernetes_manifests

    with pytest.raises(UsageError, match="not a registry"):
        kubernetes_manifests([tmp_path / "model.pkl"], "HTTP://nope")


# ---------------------------------------------------------------- the pod's container, run by Docker

def test_the_pods_model_container_runs_as_specified_and_its_report_is_judged_as_locally(
        client, image311, models, local_registry, gvisor, tmp_path):
    """Build and push the inputs images of two pickles, then run their model containers with the
    command, user, read-only root and volumes of the Job (the second as a gVisor RuntimeClass pod, under
    runsc): the report file they leave is parsed by the same FrameParser, and the verdict is the local one."""
    from runner import data
    from runner.sandbox.protocol import FrameParser, read_frames
    from runner.sandbox.kubernetes import build_and_push_inputs, remove_inputs
    from runner.sandbox.kubernetes_manifests import FRAMES_PATH, ClusterOptions, job_manifest, plan
    from runner.verdict import validate

    live = data.synthetic_default()
    specs = [spec_for(models[name], live.live, live.benchmarks, image=image311.id) for name in ("good_1arg", "nan_output")]
    planned = plan(specs, local_registry, "t1")
    refs = [p.inputs_ref for p in planned]
    try:
        for item in planned:
            build_and_push_inputs(client, item)
        # The pickles' images share every layer but their own pickle's.
        layers = [client.images.get(ref).attrs["RootFS"]["Layers"] for ref in refs]
        assert layers[0][:-1] == layers[1][:-1] and layers[0][-1] != layers[1][-1]
        base = client.images.get(image311.id).attrs["RootFS"]["Layers"]
        assert layers[0][:len(base)] == base and len(layers[0]) == len(base) + 3
        tags = registry_tags(local_registry, "numerai-sandbox-inputs")
        assert {ref.rsplit(":", 1)[1] for ref in refs} <= set(tags)
        verdicts = []
        for item, runtime_class in zip(planned, (None, "gvisor")):
            options = ClusterOptions(registry=local_registry, runtime_class=runtime_class)
            container = job_manifest(item, options, "t1")["spec"]["template"]["spec"]["containers"][0]
            assert ("ulimit -p 512" in container["command"][2]) == (runtime_class is not None)
            report_dir = tmp_path / item.job_name
            report_dir.mkdir()
            report_dir.chmod(0o777)
            output = run_like_the_pod(client, container, report_dir, "runsc" if runtime_class else None)
            frames = (report_dir / Path(FRAMES_PATH).name).read_bytes()
            parser = FrameParser(max_predictions=Limits().max_output_bytes)
            parser.feed(frames)
            read = read_frames(parser)
            assert read.finished and not read.broken, output
            validation = validate.validate(read.result, read.predictions, data.live_ids(live.live))
            verdicts.append(validation.failed.rule if validation.failed else "success")
            assert b"NSBX1" not in output.encode()  # the log holds the model's output, never the frames
        assert verdicts == ["success", "nan"]
    finally:
        remove_inputs(client, refs)
    assert not set(refs) & engine_tags(client)


def registry_tags(registry: str, repository: str) -> list[str]:
    from conftest import registry_get

    return registry_get(f"http://{registry}/v2/{repository}/tags/list")["tags"]


def run_like_the_pod(client, container: dict, report_dir: Path, runtime: str | None = None) -> str:
    """Run a Job's model container with Docker as the kubelet would: its image, command, user, env,
    read-only root, a memory-backed /tmp and the report volume (a host dir here, to read it after)."""
    import docker

    from runner.sandbox.ownership import labels_for
    from runner.sandbox.engine import remove

    uid = container["securityContext"]["runAsUser"]
    host_config = client.api.create_host_config(
        network_mode="none", read_only=True, tmpfs={"/tmp": "rw,nosuid,nodev,size=1g,mode=1777"}, cap_drop=["ALL"],
        security_opt=["no-new-privileges"], mem_limit=container["resources"]["limits"]["memory"].replace("Gi", "g"),
        mounts=[docker.types.Mount("/report", str(report_dir), type="bind", read_only=False)], runtime=runtime)
    created = client.api.create_container(
        container["image"], entrypoint=container["command"][:1], command=container["command"][1:],
        user=f"{uid}:{container['securityContext']['runAsGroup']}", working_dir=container["workingDir"],
        environment={e["name"]: e["value"] for e in container["env"]}, labels=labels_for("script"),
        network_disabled=True, host_config=host_config)
    try:
        client.api.start(created["Id"])
        code = client.api.wait(created["Id"], timeout=300)["StatusCode"]
        output = client.api.logs(created["Id"], stdout=True, stderr=True).decode("utf-8", "replace")
        assert code == 0, output
        return output
    finally:
        remove(client, created["Id"])


# ---------------------------------------------------------------- the kubelet's facts, judged as locally

def pod(model_state: dict, phase: str = "Running", conditions: list | None = None, reason: str | None = None) -> dict:
    return {"metadata": {"name": "nsbx-x-0000-pod"},
            "status": {"phase": phase, "reason": reason, "conditions": conditions or [],
                       "containerStatuses": [{"name": "model", "state": model_state},
                                             {"name": "reporter", "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}}


def terminated(exit_code: int, reason: str = "Error") -> dict:
    return {"terminated": {"exitCode": exit_code, "reason": reason, "startedAt": "2026-01-01T00:00:00Z",
                           "finishedAt": "2026-01-01T00:00:07Z"}}


def judge(outcome, frames: list[tuple[str, dict]]):
    from runner.sandbox.protocol import FrameParser, read_frames
    from runner.verdict import diagnose
    from runner.verdict.context import Context

    parser = FrameParser(max_predictions=1 << 20)
    for kind, body in frames:
        payload = json.dumps(body).encode()
        parser.feed(f"NSBX1 {kind} {len(payload)}\n".encode() + payload)
    ctx = Context("3.11", {"numpy": "2.1.3"}, Limits(), Path("/nonexistent/model.pkl"), pickle_candidates=["3.11"])
    return diagnose.from_outcome(outcome, read_frames(parser), ctx)


PREDICTING = [("hello", {}), ("phase", {"phase": "predicting"})]


@pytest.mark.parametrize("state, frames, flags, expected", [
    (terminated(137, "OOMKilled"), PREDICTING, {}, "out_of_memory"),
    (terminated(139), PREDICTING, {}, "crashed"),
    (terminated(0), PREDICTING, {}, "no_output"),
    ({"running": {"startedAt": "2026-01-01T00:00:00Z"}}, PREDICTING, {"timed_out": True}, "timeout"),
    (terminated(137), PREDICTING, {"stopped_by_cluster": True}, "backend_unavailable"),
    ({"waiting": {"reason": "ImagePullBackOff", "message": "pull access denied"}}, [], {}, "backend_unavailable"),
    ({"waiting": {"reason": "ContainerCreating"}}, [], {"stopped_by_cluster": True}, "backend_unavailable"),
], ids=["oom", "segfault", "exit-0", "host-timeout", "job-deadline", "pull-failed", "never-started"])
def test_pod_states_become_the_verdicts_a_local_run_gives(state, frames, flags, expected):
    from runner.sandbox.kubernetes import outcome_from_pod

    outcome = outcome_from_pod(pod(state), "nsbx-x-0000", **flags)
    verdict = judge(outcome, frames)
    assert verdict.reason == expected, verdict.message
    # The Job's deadline is not the model's time limit (pulling may have used it up): Error, never timeout.
    if expected == "backend_unavailable":  # the cluster's fault, never the model's: Error, with the kubelet's reason
        assert verdict.blame.value == "platform" and "Job nsbx-x-0000: " in verdict.message
        assert verdict.evidence["platform"] == "kubernetes" and verdict.evidence["failure"] == outcome.failure.kind


def test_an_unschedulable_pod_is_the_clusters_fault():
    from runner.sandbox.kubernetes import outcome_from_pod

    unschedulable = pod({}, phase="Failed", reason="DeadlineExceeded", conditions=[
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/3 nodes: Insufficient memory"}])
    unschedulable["status"]["containerStatuses"] = []
    outcome = outcome_from_pod(unschedulable, "nsbx-x-0000", stopped_by_cluster=True)
    assert not outcome.timed_out and "Insufficient memory" in outcome.failure.detail


# ---------------------------------------------------------------- a real cluster

@pytest.mark.skipif(not os.environ.get("KUBECONFIG") or not os.environ.get("NUMERAI_SANDBOX_TEST_REGISTRY"),
                    reason="needs a real cluster: KUBECONFIG naming it and NUMERAI_SANDBOX_TEST_REGISTRY, a registry "
                           "its nodes pull from and this machine's Docker pushes to (none here)")
def test_full_path_on_a_real_cluster(client, image311, models):
    """Three pickles as Jobs on the cluster, two at once, as `check --backend kubernetes` runs them: the verdicts
    are the ones local runs give."""
    from runner.usecases.check import Batch
    from runner.run import RunRequest
    from runner.sandbox.kubernetes import KubernetesBackend

    names = ["good_1arg", "raises", "nan_output"]
    backend = KubernetesBackend.connect(client, os.environ["NUMERAI_SANDBOX_TEST_REGISTRY"],
                                        namespace=os.environ.get("NUMERAI_SANDBOX_TEST_NAMESPACE"))
    template = RunRequest(model=models[names[0]], python="3.11", limits=Limits(timeout_seconds=300))
    try:
        reports = Batch([models[n] for n in names], template, 2, history=False, backend=backend).run()
    finally:
        backend.close()
    assert [(r.reason, r.subcode) for r in reports] == [(None, None), ("model_exception", None), ("invalid_output", "nan")]


# ---------------------------------------------------------------- the backend, on a cluster emulated by Docker

class EmulatedCluster:
    """Just enough of the Kubernetes API for the backend, played by the local engine: a Job's model
    container runs as its manifest says (image, command, user, read-only root, memory limit, runtime
    class); the pod's status is the container's state as a kubelet would report it; the reporter's
    `cat /report/frames` reads the report volume (a host dir). Everything the backend decides from
    these answers is its real code: following, timing out, reading, deleting, the batch's N at once."""

    def __init__(self, client, root: Path):
        self.client, self.root = client, root
        self.jobs: dict[str, dict] = {}  # job name -> {"manifest", "container", "report_dir"}
        self.policies: dict[str, dict] = {}
        self.max_running = 0

    # NetworkingV1Api
    def create_namespaced_network_policy(self, namespace, body):
        self.policies[body["metadata"]["name"]] = body

    def delete_namespaced_network_policy(self, name, namespace):
        del self.policies[name]

    # BatchV1Api
    def create_namespaced_job(self, namespace, body):
        import docker

        from runner.sandbox.ownership import labels_for

        assert self.policies, "the deny-all NetworkPolicy comes before any Job"
        name = body["metadata"]["name"]
        pod = body["spec"]["template"]["spec"]
        container = pod["containers"][0]
        report_dir = self.root / name
        report_dir.mkdir()
        report_dir.chmod(0o777)
        memory = container["resources"]["limits"]["memory"]
        host_config = self.client.api.create_host_config(
            network_mode="none", read_only=True, cap_drop=["ALL"], security_opt=["no-new-privileges"],
            tmpfs={"/tmp": "rw,nosuid,nodev,size=1g,mode=1777"}, mem_limit=memory.replace("Gi", "g").replace("Mi", "m"),
            memswap_limit=memory.replace("Gi", "g").replace("Mi", "m"),
            mounts=[docker.types.Mount("/report", str(report_dir), type="bind", read_only=False)],
            runtime="runsc" if pod.get("runtimeClassName") == "gvisor" else None)
        created = self.client.api.create_container(
            container["image"], entrypoint=container["command"][:1], command=container["command"][1:],
            user=f"{container['securityContext']['runAsUser']}:{container['securityContext']['runAsGroup']}",
            working_dir=container["workingDir"], environment={e["name"]: e["value"] for e in container["env"]},
            labels=labels_for("script"), network_disabled=True, host_config=host_config)
        self.client.api.start(created["Id"])
        self.jobs[name] = {"manifest": body, "container": created["Id"], "report_dir": report_dir}
        self.max_running = max(self.max_running, sum(1 for j in list(self.jobs.values()) if self._running(j)))

    def delete_namespaced_job(self, name, namespace, **kwargs):
        from runner.sandbox.engine import remove

        remove(self.client, self.jobs.pop(name)["container"])

    def _running(self, job) -> bool:
        """Whether the Job's container runs; one another thread's Job deletion removed runs no more."""
        import docker

        try:
            return self.client.api.inspect_container(job["container"])["State"]["Running"]
        except docker.errors.NotFound:
            return False

    # CoreV1Api
    def list_namespaced_pod(self, namespace, label_selector):
        from types import SimpleNamespace

        key, value = label_selector.split("=")
        items = []
        for name, job in list(self.jobs.items()):
            labels = job["manifest"]["spec"]["template"]["metadata"]["labels"]
            if labels.get(key) != value:
                continue
            try:
                state = self.client.api.inspect_container(job["container"])["State"]
            except Exception:  # noqa: BLE001 - deleted meanwhile
                continue
            if state["Running"]:
                model = {"running": {"startedAt": state["StartedAt"][:19] + "Z"}}
            else:
                model = {"terminated": {"exitCode": state["ExitCode"], "startedAt": state["StartedAt"][:19] + "Z",
                                        "finishedAt": state["FinishedAt"][:19] + "Z",
                                        "reason": "OOMKilled" if state["OOMKilled"] else
                                        ("Completed" if state["ExitCode"] == 0 else "Error")}}
            items.append({"metadata": {"name": f"{name}-pod", "labels": labels},
                          "status": {"phase": "Running", "containerStatuses": [
                              {"name": "model", "state": model},
                              {"name": "reporter", "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}]}})
        return SimpleNamespace(items=items)

    def read_namespaced_pod_log(self, pod_name, namespace, container, _preload_content):
        from types import SimpleNamespace

        logs = self.client.api.logs(self.jobs[pod_name[:-4]]["container"], stdout=True, stderr=True)
        return SimpleNamespace(stream=lambda size: iter([logs]))

    # ApiClient
    def sanitize_for_serialization(self, item):
        return item

    def close(self):
        pass


def on_emulated_cluster(cluster: EmulatedCluster, options):
    """The real KubernetesBackend talking to the emulated cluster; only the exec stream is the cluster's."""
    from runner.sandbox.kubernetes import KubernetesBackend

    class OnEmulatedCluster(KubernetesBackend):
        def _report_chunks(self, pod_name):
            frames = cluster.jobs[pod_name[:-4]]["report_dir"] / "frames"
            yield frames.read_bytes() if frames.exists() else b""

    return OnEmulatedCluster(cluster.client, options, cluster, cluster, cluster, cluster)


def test_a_run_through_the_kubernetes_backend_is_the_same_run(client, image311, models, local_registry, tmp_path):
    """A Run with the Kubernetes backend: Pending, Running, Validating and the verdict are a local run's."""
    from runner.support.console import Console
    from runner.run import RunRequest
    from runner.run.run import execute
    from runner.sandbox.kubernetes import ClusterOptions

    cluster = EmulatedCluster(client, tmp_path)
    backend = on_emulated_cluster(cluster, ClusterOptions(registry=local_registry))
    try:
        reports = {name: execute(RunRequest(model=models[name], python="3.11", limits=Limits(timeout_seconds=300)),
                                 Console(quiet=True), backend) for name in ("good_1arg", "returns_none")}
    finally:
        backend.close()
    good, none = reports["good_1arg"], reports["returns_none"]
    assert (good.status.value, good.reason, good.n_predictions) == ("Success", None, 6720)
    assert [e["status"] for e in good.timeline] == ["Pending", "Running", "Validating", "Success"]
    assert good.container["name"].startswith("numerai-sandbox-run-") and good.container["id"].startswith("nsbx-")
    assert (none.status.value, none.reason, none.subcode) == ("Failed", "invalid_output", "returned_none")
    assert not cluster.jobs and not cluster.policies


def test_a_check_on_an_emulated_cluster_runs_n_at_once_and_gives_the_local_verdicts(
        client, image311, models, local_registry, tmp_path):
    """check's batch through the Kubernetes backend, two Jobs at once: every Job deleted, the verdicts local."""
    from runner.usecases.check import Batch
    from runner.run import RunRequest
    from runner.sandbox.kubernetes import ClusterOptions

    cluster = EmulatedCluster(client, tmp_path)
    names = ["good_1arg", "raises", "nan_output", "sleep_forever"]
    backend = on_emulated_cluster(cluster, ClusterOptions(registry=local_registry))
    template = RunRequest(model=models[names[0]], python="3.11", limits=Limits(timeout_seconds=15))
    try:
        reports = Batch([models[name] for name in names], template, 2, history=False, backend=backend).run()
    finally:
        backend.close()
    assert cluster.max_running <= 2
    assert not cluster.jobs and not cluster.policies  # every Job deleted, the NetworkPolicy too
    assert [(r.reason, r.subcode) for r in reports] == [(None, None), ("model_exception", None),
                                                        ("invalid_output", "nan"), ("timeout", None)]
    assert "ValueError: the model is broken on purpose" in reports[1].logs_tail  # the model's output came back
    # This test's per-check image is gone (one a killed earlier run left, tagged for its own registry, is not ours).
    ours = f"{local_registry}/numerai-sandbox-inputs"
    assert not [t for t in engine_tags(client) if t.startswith(ours)]
