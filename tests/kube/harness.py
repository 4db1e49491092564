"""A cluster for the operator's integration tests: the API server double, the fake kubelet
running the real worker, a local object store, a mongomock catalog that can be taken down, and
the real operator started with kopf exactly as `contentgen operator` starts it."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mongomock
import pymongo.errors
import yaml
from kopf.testing import KopfRunner

from contentgen.api import GROUP, KINDS
from contentgen.api.crd import crd
from contentgen.catalog.base import Catalog
from contentgen.controller.main import kopf_args
from contentgen.controller.settings import OperatorSettings
from contentgen.store import LocalStore
from tests.kube.apiserver import FakeApiServer
from tests.kube.kubelet import FakeKubelet
from tests.waiting import wait_for

TOKENS = {"operator-token": "operator", "worker-token": "worker", "admin-token": "admin"}


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


@dataclass
class Cluster:
    api: FakeApiServer
    kubelet: FakeKubelet
    store: LocalStore
    mongo: Any  # the mongomock collection behind the catalog
    mongo_down: threading.Event
    root: Path
    health_port: int
    env: dict[str, str] = field(default_factory=dict)

    # --- helpers for tests ---------------------------------------------------------------------

    def apply(self, manifest: dict[str, Any] | str, namespace: str) -> dict[str, Any]:
        obj = yaml.safe_load(manifest) if isinstance(manifest, str) else manifest
        kind = KINDS[obj["kind"]]
        obj.setdefault("metadata", {})["namespace"] = namespace
        return self.api.create(GROUP, kind.plural, obj)

    def resource(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.api.get(GROUP, KINDS[kind].plural, namespace, name)

    def status(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        obj = self.resource(kind, namespace, name)
        return (obj or {}).get("status") or {}

    def wait_phase(
        self, kind: str, namespace: str, name: str, phase: str, timeout: float = 90.0
    ) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            status = self.status(kind, namespace, name)
            return status if status.get("phase") == phase and status.get("observedGeneration") else None

        return wait_for(
            check,
            timeout,
            f"{kind} {namespace}/{name} to be {phase} (now {self.status(kind, namespace, name)})",
        )

    def jobs(self, namespace: str) -> list[dict[str, Any]]:
        return self.api.list("batch", "jobs", namespace)

    def events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        events = [
            e
            for e in self.api.list("", "events", namespace)
            if e.get("involvedObject", {}).get("name") == name
        ]
        return sorted(events, key=lambda e: int(e["metadata"]["resourceVersion"]))

    def history(self, kind: str, namespace: str, name: str) -> list[dict[str, Any]]:
        """Every stored version of the resource, oldest first (from the watch log)."""
        plural = KINDS[kind].plural
        with self.api.lock:
            return [
                obj
                for _, key, _, obj in self.api.log
                if key[2] == plural
                and obj["metadata"].get("namespace") == namespace
                and obj["metadata"]["name"] == name
            ]

    def catalog_doc(self, uid: str) -> dict[str, Any] | None:
        return self.mongo.find_one({"_id": uid})


@contextmanager
def cluster(root: Path, monkeypatch: Any) -> Iterator[Cluster]:
    api = FakeApiServer([crd(k) for k in KINDS.values()], TOKENS).start()
    (root / "tokens").mkdir(parents=True)
    worker_token = root / "tokens" / "worker"
    worker_token.write_text("worker-token")
    kubeconfig = root / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "double", "cluster": {"server": api.url}}],
                "users": [{"name": "operator", "user": {"token": "operator-token"}}],
                "contexts": [{"name": "double", "context": {"cluster": "double", "user": "operator"}}],
                "current-context": "double",
            }
        )
    )
    # The chart creates the peering object; with it, kopf runs with peering (leader election).
    api.create("kopf.dev", "clusterkopfpeerings", {"metadata": {"name": "contentgen"}})
    store = LocalStore(root / "store")
    down = threading.Event()
    collection = mongomock.MongoClient()["contentgen"]["jobs"]
    kubelet = FakeKubelet(api, worker_token, root / "pods", {})
    health_port = free_port()
    env = {
        "KUBECONFIG": str(kubeconfig),
        "CONTENTGEN_STORE": store.root.as_uri(),
        "CONTENTGEN_MONGODB_URI": "mongodb://catalog.test:27017/contentgen",
        "CONTENTGEN_RECONCILE_INTERVAL_SECONDS": "0.3",
        "CONTENTGEN_ALLOW_PRIVATE_SOURCES": "true",  # sources are served from 127.0.0.1 here
        "CONTENTGEN_METRICS_PORT": "0",
        "CONTENTGEN_HEALTH_PORT": str(health_port),
        "CONTENTGEN_LOG_FORMAT": "plain",
        "CONTENTGEN_MAX_RUNNING_JOBS_PER_NAMESPACE": "2",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(
        "contentgen.catalog.open_catalog",
        lambda url=None: Catalog(FlakyCollection(collection, down), lambda: None),
    )
    try:
        yield Cluster(api, kubelet, store, collection, down, root, health_port, env)
    finally:
        kubelet.release()
        api.stop()


@contextmanager
def operator(c: Cluster, *, health: bool = True) -> Iterator[KopfRunner]:
    """The operator, started as `contentgen operator` starts it. A second replica in the same
    process runs without the health endpoint (the port is taken)."""
    settings = OperatorSettings() if health else OperatorSettings(health_port=0)
    runner = KopfRunner(kopf_args(settings), timeout=30)
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
