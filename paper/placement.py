"""Where the actors of a run go on a multi-node Ray cluster (a head and worker nodes).

Every actor of a run asks for no CPU, and Ray puts an actor that asks for nothing on a random node,
the head included: a supervisor on a worker node would die with that node and restart nothing. So:
- on the head, which a run cannot lose: the supervisor, and the alert dispatcher and metrics
  endpoint (the supervisor restarts the dispatcher there; Ray gives the head node HEAD_RESOURCE);
- on the worker nodes, spread over them: every supervised actor (coordinator, strategy shards,
  feeds). Worker nodes offer `worker_resource` (`ray start --resources='{"arb_worker": 1000}'`);
  each actor asks for a sliver of it, so only worker nodes qualify, and a restarted actor, built by
  the same factory, lands on a worker node that is still alive.

`Placement.options(name)` is what graph.start passes to `.options(...)` for the actor named
`<role>@<tag>`; `Placement.check(ray.nodes())` refuses a cluster with nowhere to put the actors.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

HEAD_RESOURCE = "node:__internal_head__"   # Ray's own resource of the head node
WORKER_RESOURCE = "arb_worker"
ON_HEAD = ("supervisor", "alerts", "metrics")
ON_WORKERS = ("coordinator",)
ON_WORKERS_NUMBERED = ("strategy-", "feed-")   # strategy-0, feed-upbit ...
SLIVER = 0.001                 # of a resource per actor: 1000 actors per unit a node offers
UNITS_PER_WORKER = 1000        # what a worker node offers: room for a million actors


@dataclass(frozen=True)
class Placement:
    """Head for the supervisor (and the unsupervised actors), worker nodes for the rest, spread."""

    worker_resource: str = WORKER_RESOURCE

    def __post_init__(self) -> None:
        if not self.worker_resource or self.worker_resource.startswith("node:"):
            raise ValueError(f"placement: worker_resource must name a custom resource, got {self.worker_resource!r}")

    def node_resources(self) -> dict[str, float]:
        """What each worker node must offer (`ray start --resources=...`, Cluster.add_node(resources=...))."""
        return {self.worker_resource: float(UNITS_PER_WORKER)}

    def on_head(self, name: str) -> bool:
        """Whether the actor named `<role>@<tag>` belongs on the head node (else on a worker node)."""
        role = name.partition("@")[0]
        if role in ON_HEAD:
            return True
        if role in ON_WORKERS or any(role.startswith(p) and role != p for p in ON_WORKERS_NUMBERED):
            return False
        raise ValueError(f"placement: unknown actor {name!r}: expected <role>@<tag> with a role of "
                         f"{ON_HEAD + ON_WORKERS} or {ON_WORKERS_NUMBERED} and a suffix (strategy-0, feed-upbit)")

    def options(self, name: str) -> dict[str, Any]:
        """Ray actor options for the actor named `name`: its name and where it may run."""
        if self.on_head(name):
            return {"name": name, "resources": {HEAD_RESOURCE: SLIVER}}
        # SPREAD: the nodes that offer the resource in turn, not all on whichever Ray picks first
        return {"name": name, "resources": {self.worker_resource: SLIVER}, "scheduling_strategy": "SPREAD"}

    def check(self, nodes: list[dict]) -> None:
        """Refuse a cluster (ray.nodes()) without a live head or a live worker node offering the resource."""
        alive = [n for n in nodes if n.get("Alive")]
        if not any(n.get("Resources", {}).get(HEAD_RESOURCE) for n in alive):
            raise RuntimeError(f"placement: no live head node (resource {HEAD_RESOURCE!r}) among {len(nodes)} nodes")
        if not any(n.get("Resources", {}).get(self.worker_resource, 0) >= SLIVER for n in alive):
            raise RuntimeError(f"placement: no live worker node offers {self.worker_resource!r}, so the run's "
                               f"actors would wait forever; start the worker nodes with "
                               f"--resources='{{\"{self.worker_resource}\": {UNITS_PER_WORKER}}}'")
