"""A cluster for the operator's integration tests: `contentgen local-cluster`'s control plane
(TLS, RBAC with the chart's roles, admission), its controllers and the local node running the
real worker for every Job, a local object store, a mongomock catalog that can be taken down, and
the real operator started with kopf as `contentgen operator` starts it, under its own
ServiceAccount (so every call it makes passes the chart's RBAC, or fails with a 403)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mongomock
import pymongo.errors
import yaml
from kopf.testing import KopfRunner

from contentgen.api import GROUP, KINDS
from contentgen.catalog.base import Catalog
from contentgen.cluster.apiserver import Request
from contentgen.cluster.errors import ApiError
from contentgen.cluster.local import LocalCluster, Options
from contentgen.cluster.server import ADMIN
from contentgen.controller.main import kopf_args
from contentgen.controller.settings import OperatorSettings
from contentgen.store import LocalStore
from tests import waiting


class FlakyCollection:
    """A mongomock collection that raises like an unreachable MongoDB while `down` is set."""

    def __init__(self, collection: Any, down: threading.Event) -> None:
        self._collection, self._down = collection, down

    def __getattr__(self, name: str) -> Any:
        if self._down.is_set():
            raise pymongo.errors.ServerSelectionTimeoutError("mongodb:27017: [Errno 111] Connection refused")
        return getattr(self._collection, name)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], Any], timeout: float = 90.0, what: str = "condition") -> Any:
    """Poll until `check()` is truthy; fail (not a timing assertion: a hang guard) otherwise."""
    return waiting.wait_for(check, timeout, what, interval=0.1)


@dataclass
class Cluster:
    local: LocalCluster
    store: LocalStore
    mongo: Any  # the mongomock collection behind the catalog
    mongo_down: threading.Event
    root: Path
    health_port: int
    env: dict[str, str] = field(default_factory=dict)

    @property
    def plane(self) -> Any:
        return self.local.plane

    @property
    def node(self) -> Any:
        assert self.local.node is not None
        return self.local.node

    # --- admin calls (kubectl's part) ------------------------------------------------------------

    def call(
        self,
        verb: str,
        group: str,
        plural: str,
        namespace: str = "",
        name: str = "",
        body: Any = None,
        **kw: Any,
    ) -> Any:
        t = self.plane.type_of(group, plural)
        return self.plane.handle(Request(ADMIN, verb, t, namespace, name, body=body, **kw)).body

    def ensure_namespace(self, namespace: str) -> None:
        try:
            self.call(
                "create",
                "",
                "namespaces",
                body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
            )
        except ApiError as exc:
            if exc.code != 409:
                raise

    def apply(self, manifest: dict[str, Any] | str, namespace: str) -> dict[str, Any]:
        obj = yaml.safe_load(manifest) if isinstance(manifest, str) else json.loads(json.dumps(manifest))
        self.ensure_namespace(namespace)
        obj.setdefault("metadata", {})["namespace"] = namespace
        return self.call("create", GROUP, KINDS[obj["kind"]].plural, namespace, body=obj)  # type: ignore[no-any-return]

    def patch(self, kind: str, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return self.call(  # type: ignore[no-any-return]
            "patch",
            GROUP,
            KINDS[kind].plural,
            namespace,
            name,
            patch,
            content_type="application/merge-patch+json",
        )

    def delete(self, kind: str, namespace: str, name: str) -> None:
        self.call("delete", GROUP, KINDS[kind].plural, namespace, name)

    def resource(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.plane.store.get((GROUP, KINDS[kind].plural), namespace, name)  # type: ignore[no-any-return]

    def status(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        obj = self.resource(kind, namespace, name)
        return (obj or {}).get("status") or {}

    def wait_phase(
        self, kind: str, namespace: str, name: str, phase: str, timeout: float = 120.0
    ) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            status = self.status(kind, namespace, name)
            return status if status.get("phase") == phase and status.get("observedGeneration") else None

        return wait_for(
            check,
            timeout,
            f"{kind} {namespace}/{name} to be {phase} (now {self.status(kind, namespace, name)})",
        )  # type: ignore[no-any-return]

    def jobs(self, namespace: str) -> list[dict[str, Any]]:
        return [json.loads(json.dumps(j)) for j in self.plane.store.items(("batch", "jobs"), namespace)]

    def events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        events = [
            e
            for e in self.plane.store.items(("", "events"), namespace)
            if e.get("involvedObject", {}).get("name") == name
        ]
        return sorted(events, key=lambda e: int(e["metadata"]["resourceVersion"]))

    def history(self, kind: str, namespace: str, name: str) -> list[dict[str, Any]]:
        """Every stored version of the resource, oldest first (from the watch history)."""
        key = (GROUP, KINDS[kind].plural)
        return [
            c.obj
            for c in self.plane.store.changes_since(self.plane.store.compacted)
            if c.key == key
            and c.obj["metadata"].get("namespace") == namespace
            and c.obj["metadata"]["name"] == name
        ]

    def runs(self, job_name: str | None = None) -> list[str]:
        """Job names, once per worker process the node started."""
        names = [p.pod.rsplit("-", 1)[0] for p in self.node.processes]
        return [n for n in names if job_name is None or n == job_name]

    def catalog_doc(self, uid: str) -> dict[str, Any] | None:
        return self.mongo.find_one({"_id": uid})  # type: ignore[no-any-return]


@contextmanager
def cluster(root: Path, monkeypatch: Any, *, rbac: list[dict[str, Any]] | None = None) -> Iterator[Cluster]:
    """The control plane, controllers and node, with the operator's kubeconfig (its
    ServiceAccount's token) in $KUBECONFIG for an operator started in this process."""
    local = LocalCluster(
        Options(root / "cluster", operator=False, job_backoff_seconds=0.5, max_running_jobs_per_namespace=2)
    )
    if rbac is not None:
        local.install = lambda: _install(local, rbac)  # type: ignore[method-assign]
    local.start()
    store = LocalStore(root / "store")
    down = threading.Event()
    collection = mongomock.MongoClient()["contentgen"]["jobs"]
    health_port = free_port()
    env = local.operator_environment()
    env.update(
        {
            "CONTENTGEN_STORE": store.root.as_uri(),
            "CONTENTGEN_MONGODB_URI": "mongodb://catalog.test:27017/contentgen",
            "CONTENTGEN_RECONCILE_INTERVAL_SECONDS": "0.3",
            "CONTENTGEN_RESYNC_INTERVAL_SECONDS": "5",
            "CONTENTGEN_HEALTH_PORT": str(health_port),
            "CONTENTGEN_MAX_RUNNING_JOBS_PER_NAMESPACE": "2",
            # kopf runs in this process; tests of the Lease start processes
            "CONTENTGEN_LEADER_ELECTION": "false",
        }
    )
    for key in ("PATH", "HOME", "LANG"):
        env.pop(key, None)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(
        "contentgen.catalog.open_catalog",
        lambda url=None, **_: Catalog(FlakyCollection(collection, down), lambda: None),
    )
    try:
        yield Cluster(local, store, collection, down, root, health_port, env)
    finally:
        if local.node is not None:
            local.node.release()
        local.stop()


def _install(local: LocalCluster, rbac: list[dict[str, Any]]) -> None:
    from contentgen.api.crd import rendered_crds

    for text in rendered_crds().values():
        local.control.apply(yaml.safe_load(text))
    for doc in rbac:
        local.control.apply(doc)


@contextmanager
def operator(c: Cluster, *, health: bool = True) -> Iterator[KopfRunner]:
    """The operator, started as `contentgen operator` starts it (after the Lease)."""
    settings = OperatorSettings() if health else OperatorSettings(health_port=0)
    runner = KopfRunner(kopf_args(settings), timeout=60)
    with runner:
        if health:
            wait_for(lambda: _healthy(c.health_port), 30, "the operator's health endpoint")
        yield runner


def _healthy(port: int) -> bool:
    import httpx

    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False
