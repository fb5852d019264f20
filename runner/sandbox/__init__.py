"""Where the model runs: the engine backends and the harness they start.

backend  the limits, the container's shape and the facts a backend reports (no heavy imports)
engine   the Docker engine itself: reaching it, its failures told apart, the calls images/ and doctor share
docker   the Docker backend: limits, isolation (runc or gVisor's runsc), wait/kill, the container's facts
cgroup   a container's memory read from its cgroup while it runs · cpus: cores never shared between runs
pool     pre-started sandboxes (one model each) · idle: when one is left, their bound, which goes first
ownership, leftovers  which process owns a sandbox; `clean` of what killed runners left behind
terminal the user's terminal, lent to a shell
kubernetes  one Job per pickle on a cluster, for fleets (the `kubernetes` client is an optional extra);
         kubernetes_manifests its Jobs and policy as manifests · registry: where a cluster pulls our images
process  no engine: the harness as a confined child process of the host (Colab, Kaggle), with what it enforces
confine  the process sandbox's launcher: runs under the environment's Python, imports nothing of ours
harness  runs INSIDE the image: imports nothing of ours, reports facts, decides nothing
protocol the harness's frames on the host: parsed incrementally with caps, then once into dataclasses;
         frame_shapes the shape every frame must have before the host reads it
"""

from .backend import ContainerSpec, Limits, Mount, Outcome, StreamSink

__all__ = ["ContainerSpec", "Limits", "Mount", "Outcome", "StreamSink"]
