"""A control plane in the test process with its controllers and the local node running, pods
running small Python scripts instead of `contentgen worker` (the node's command is injectable).
Requests go through `ControlPlane.handle` as an admin; waits are hang guards, never timings."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from contentgen.cluster.apiserver import ControlPlane, Request, Response, User
from contentgen.cluster.jobs import JobController
from contentgen.cluster.kubelet import ApiAccess, LocalNode
from contentgen.cluster.loop import Controller
from contentgen.cluster.manager import ControllerManager
from tests import waiting

ADMIN = User("kubernetes-admin", ("system:masters",))
BACKOFF_BASE = 0.4  # seconds (10 in Kubernetes)
API_URL = "https://127.0.0.1:6443"
CA_PEM = "-----BEGIN CERTIFICATE-----\nnot a real one\n-----END CERTIFICATE-----\n"


def python_command(pod: dict[str, Any], container: dict[str, Any]) -> list[str]:
    """The containers here are Python scripts: args are the interpreter's."""
    return [sys.executable, *(container.get("args") or [])]


def wait_for(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    return waiting.wait_for(check, timeout, what, interval=0.02)


@dataclass
class Cluster:
    cp: ControlPlane
    node: LocalNode
    jobs: JobController
    controllers: list[Controller]
    root: Path

    def call(
        self,
        verb: str,
        group: str,
        plural: str,
        namespace: str = "",
        name: str = "",
        body: Any = None,
        **kw: Any,
    ) -> Response:
        return self.cp.handle(
            Request(ADMIN, verb, self.cp.type_of(group, plural), namespace, name, body=body, **kw)
        )

    def create(
        self, group: str, plural: str, body: dict[str, Any], namespace: str = "default"
    ) -> dict[str, Any]:
        t = self.cp.type_of(group, plural)
        result: dict[str, Any] = self.call(
            "create", group, plural, namespace if t.namespaced else "", body=body
        ).body
        return result

    def get(self, group: str, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.cp.store.get((group, plural), namespace, name)

    def list(self, group: str, plural: str, namespace: str | None = "default") -> list[dict[str, Any]]:
        with self.cp.store.lock:
            return [dict(o) for o in self.cp.store.items((group, plural), namespace)]

    def history(self, group: str, plural: str, namespace: str, name: str) -> list[dict[str, Any]]:
        """Every stored version of an object, oldest first (from the store's change log)."""
        with self.cp.store.lock:
            changes = self.cp.store.changes_since(self.cp.store.compacted)
        return [
            c.obj
            for c in changes
            if c.key == (group, plural)
            and c.obj["metadata"].get("namespace", "") == namespace
            and c.obj["metadata"]["name"] == name
        ]

    def events(self, namespace: str, name: str) -> list[tuple[str, str]]:
        ordered = sorted(
            self.list("", "events", namespace), key=lambda e: int(e["metadata"]["resourceVersion"])
        )
        return [(e["reason"], e["message"]) for e in ordered if e["involvedObject"]["name"] == name]

    def pods_of(self, job: dict[str, Any]) -> list[dict[str, Any]]:
        uid = job["metadata"]["uid"]
        return [
            p
            for p in self.list("", "pods", job["metadata"]["namespace"])
            if any(r.get("uid") == uid for r in p["metadata"].get("ownerReferences") or [])
        ]

    def job_condition(self, namespace: str, name: str, type_: str) -> dict[str, Any] | None:
        job = self.get("batch", "jobs", namespace, name)
        for cond in ((job or {}).get("status") or {}).get("conditions") or []:
            if cond["type"] == type_ and cond["status"] == "True":
                return dict(cond)
        return None


def job_manifest(
    name: str, *args: str, env: list[dict[str, Any]] | None = None, **spec: Any
) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "worker", "image": "contentgen-worker:test", "args": list(args)}
    if env:
        container["env"] = env
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "terminationGracePeriodSeconds": 5,
                    "containers": [container],
                }
            },
            **spec,
        },
    }


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    cp = ControlPlane()
    cp.token_issuer = lambda namespace, name, uid: f"token-for:{namespace}:{name}"
    node = LocalNode(
        cp,
        tmp_path / "node",
        command=python_command,
        access=ApiAccess(url=API_URL, ca_file_env="TEST_KUBE_CA_FILE"),
        env={"FROM_IMAGE": "image", "GREETING": "from the image"},
        env_overrides={"FORCED": "yes", "LEVEL": "forced"},
        poll=0.05,
    )
    manager = ControllerManager(cp, ca_pem=CA_PEM, backoff_base=BACKOFF_BASE).start()
    node.start()
    controllers: list[Controller] = [*manager.controllers, node]
    c = Cluster(cp, node, manager.jobs, controllers, tmp_path)
    wait_for(lambda: c.get("", "serviceaccounts", "default", "default"), "the default ServiceAccount")
    try:
        yield c
    finally:
        node.release()
        node.stop()
        manager.stop()
        cp.store.close()
    for controller in controllers:  # a controller that failed unexpectedly fails the test
        assert not controller.errors, (controller.name, controller.errors)
