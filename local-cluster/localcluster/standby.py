"""A second Node that is only an object: Ready, its Lease renewed, tainted so that nothing is
scheduled on it. For a test in which the real node stops answering: where every node of a cluster
is not ready, the node controller takes the control plane's side of the partition for the broken
one ("master disruption mode"), lifts the unreachable taint and evicts nothing, so on a one-node
cluster the taint manager's eviction, and what follows it, never happens.

    standby = StandbyNode(cluster.control.client()).start()
    ...
    standby.stop()   # the Node and its Lease deleted
"""

from __future__ import annotations

import contextlib
import threading
from datetime import UTC, datetime
from typing import Any

from .client import ApiError, Client, Unreachable

LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
TAINT = "localcluster.io/standby"


def _micro() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def node_object(name: str) -> dict[str, Any]:
    beat = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    ready = {
        "type": "Ready",
        "status": "True",
        "reason": "KubeletReady",
        "message": "a standby node: an object whose Lease is renewed, no kubelet",
        "lastHeartbeatTime": beat,
        "lastTransitionTime": beat,
    }
    room = {"cpu": "1", "memory": "1Gi", "pods": "0"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}},
        "spec": {"taints": [{"key": TAINT, "effect": "NoSchedule"}]},
        "status": {"conditions": [ready], "capacity": room, "allocatable": room},
    }


class StandbyNode:
    def __init__(self, client: Client, name: str = "standby", renew_seconds: float = 5.0) -> None:
        self.client = client
        self.name = name
        self.renew_seconds = renew_seconds
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._renew, name=f"standby-{name}", daemon=True)

    def start(self) -> StandbyNode:
        body = node_object(self.name)
        created = self.client.create("/api/v1/nodes", {k: v for k, v in body.items() if k != "status"})
        self.client.patch(
            f"/api/v1/nodes/{self.name}/status",
            {"status": body["status"]},
            "application/strategic-merge-patch+json",
        )
        owner = {"apiVersion": "v1", "kind": "Node", "name": self.name, "uid": created["metadata"]["uid"]}
        lease = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": self.name, "namespace": "kube-node-lease", "ownerReferences": [owner]},
            "spec": {"holderIdentity": self.name, "leaseDurationSeconds": 40, "renewTime": _micro()},
        }
        self.client.create(LEASES, lease)
        self._thread.start()
        return self

    def _renew(self) -> None:
        while not self._stopping.wait(self.renew_seconds):
            with contextlib.suppress(ApiError, Unreachable):  # the next beat tries again
                self.client.patch(f"{LEASES}/{self.name}", {"spec": {"renewTime": _micro()}})

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(10)
        with contextlib.suppress(ApiError):  # its Lease goes with it (owner reference)
            self.client.delete(f"/api/v1/nodes/{self.name}")
