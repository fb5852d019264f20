"""Where the model runs: the engine backends and the harness they start.

backend  the limits, the container's shape and the facts a backend reports (no heavy imports)
docker   the local Docker engine: limits, isolation (runc or gVisor's runsc), wait/kill, cleanup and sweeps
kubernetes  one Job per pickle on a cluster, for fleets (the `kubernetes` client is an optional extra)
registry the registry a cluster pulls our images from
process  no engine: the harness as a confined child process of the host (Colab, Kaggle), with what it enforces
confine  the process sandbox's launcher: runs under the environment's Python, imports nothing of ours
harness  runs INSIDE the image: imports nothing of ours, reports facts, decides nothing
"""

from .backend import ContainerSpec, Limits, Mount, Outcome, StreamSink

__all__ = ["ContainerSpec", "Limits", "Mount", "Outcome", "StreamSink"]
