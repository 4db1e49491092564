"""A cluster for the operator's integration tests: the real control plane of `contentgen
local-cluster` (etcd, kube-apiserver, kube-controller-manager, kube-scheduler) with the chart's
install (RBAC, ConfigMap; not its Deployment) and its node (Kubernetes' kubelet, containerd and
runc), where every Job's worker is a container of the project's worker image
(tests/harness/real_node.py builds it, cached); the store a bucket of the real S3 server as
`contentgen local-cluster` has, its account the chart's Secret in each namespace the test makes,
the workers reaching it through a proxy that can hold a request; the sources the test serves at
`Cluster.media` on the node's host address; a mongomock catalog that can be taken down; and the
real operator started in this process as `contentgen operator` starts it, under its own
ServiceAccount's token (every call it makes passes the chart's RBAC, or fails with a 403), through
a fault proxy that can answer chosen requests with a 500 (localcluster.faults)."""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import logging
import secrets
import shutil
import signal
import tempfile
import threading
from collections import defaultdict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, TypedDict, Unpack
from urllib.parse import urlsplit

import mongomock
import pymongo.errors
import pytest
import yaml
from kopf.testing import KopfRunner

from contentgen.api import GROUP, KINDS, VERSION
from contentgen.catalog.base import Catalog
from contentgen.cli import local_cluster
from contentgen.controller.main import kopf_args
from contentgen.controller.settings import OperatorSettings
from contentgen.store import ObjectStore
from contentgen.store.base import ObjectInfo
from localcluster import LocalCluster, Options
from localcluster.client import MERGE, ApiError, Client, Unreachable
from localcluster.cluster import NODE
from localcluster.faults import FaultProxy
from localcluster.node.real import RealNode
from localcluster.ports import free_port
from localcluster.s3server import S3Server
from localcluster.seaweed import SeaweedServer
from tests import waiting
from tests.harness import real_node
from tests.holding_proxy import HoldingProxy
from tests.kube import fal_relay as relays
from tests.rbac.record import audit_decisions, audit_lines
from tests.s3server import follow_environment

__all__ = [
    "ApiError",
    "Cluster",
    "cluster",
    "free_port",
    "operated",
    "operator",
    "stop_shared",
    "unoperated",
    "wait_for",
]

OPERATOR_NAMESPACE, OPERATOR_ACCOUNT = "contentgen", "contentgen-operator"
S3_SECRET = local_cluster.S3_SECRET  # the store's account on the real node: the chart's Secret
# cluster(store="seaweedfs"): its STS sessions end this long after they are asked for (the
# server's own cut: STS's shortest is 15 minutes), the runs' credentials renewed at half of it
STS_SESSION, STS_WINDOW = "60s", 60


class FlakyCollection:
    """A mongomock collection that raises like an unreachable MongoDB while `down` is set."""

    def __init__(self, collection: Any, down: threading.Event) -> None:
        self._collection, self._down = collection, down

    def __getattr__(self, name: str) -> Any:
        if self._down.is_set():
            raise pymongo.errors.ServerSelectionTimeoutError("mongodb:27017: [Errno 111] Connection refused")
        return getattr(self._collection, name)


def wait_for(
    check: Callable[[], Any], timeout: float = 180.0, what: str | Callable[[], str] = "condition"
) -> Any:
    """Poll until `check()` is truthy; fail (not a timing assertion: a hang guard) otherwise."""
    return waiting.wait_for(check, timeout, what, interval=0.1)


def _path(kind_or_plural: str, namespace: str = "", name: str = "", group: str = GROUP) -> str:
    plural = KINDS[kind_or_plural].plural if kind_or_plural in KINDS else kind_or_plural
    base = f"/apis/{group}/{VERSION}" if group == GROUP else (f"/apis/{group}" if group else "/api/v1")
    ns = f"/namespaces/{namespace}" if namespace else ""
    return f"{base}{ns}/{plural}" + (f"/{name}" if name else "")


def _collection(kind: str) -> str:
    """A contentgen kind's resources, or the pods, in every namespace."""
    return _path(kind, group="" if kind == "pods" else GROUP)


class History:
    """Every version of every contentgen resource, as watches deliver them (kubectl get -w)."""

    def __init__(self, client: Client) -> None:
        """The contentgen resources, and the Pods (`started`: what the node ran)."""
        self.client = client
        self.versions: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
        # the Pods whose container started, in the order seen: (namespace, pod, its Job's name)
        self.started: list[tuple[str, str, str]] = []
        self._stop = threading.Event()
        self._before: set[str] = set()  # what was there at start(): an earlier module's on a shared cluster
        self._from: dict[str, str] = {}
        self._threads = [
            threading.Thread(target=self._watch, args=(kind,), daemon=True, name=f"history-{kind}")
            for kind in [*KINDS, "pods"]
        ]

    def start(self) -> None:
        for kind in [*KINDS, "pods"]:
            listing = wait_for(functools.partial(self._list, kind), 60, f"a list of {kind}")
            self._from[kind] = listing["metadata"]["resourceVersion"]
            self._before |= {obj["metadata"]["uid"] for obj in listing["items"]}
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()

    def _list(self, kind: str) -> dict[str, Any] | None:
        try:
            return self.client.get(_collection(kind))  # type: ignore[no-any-return]
        except ApiError as exc:
            if exc.code == 429:  # a CRD just made: its storage is (re)initializing
                return None
            raise

    def _watch(self, kind: str) -> None:
        version = self._from[kind]
        while not self._stop.is_set():
            try:
                if not version:
                    listing = self.client.get(_collection(kind))
                    version = listing["metadata"]["resourceVersion"]
                    for obj in listing["items"]:
                        self._record(kind, obj)
                path = _collection(kind)
                for event in self.client.watch(path, resourceVersion=version, timeoutSeconds=60):
                    if self._stop.is_set():
                        return
                    if event["type"] == "ERROR":
                        version = ""
                        break
                    version = event["object"]["metadata"]["resourceVersion"]
                    if event["type"] in ("ADDED", "MODIFIED"):
                        self._record(kind, event["object"])
            except Exception:
                version = ""
                self._stop.wait(0.5)

    def _record(self, kind: str, obj: dict[str, Any]) -> None:
        m = obj["metadata"]
        if m["uid"] in self._before:
            return
        if kind == "pods":
            ran = bool(_state(obj) & {"running", "terminated"})
            job = (m.get("labels") or {}).get("job-name", "")
            if ran and job and (m["namespace"], m["name"], job) not in self.started:
                self.started.append((m["namespace"], m["name"], job))
            return
        versions = self.versions[(kind, m["namespace"], m["name"])]
        if not versions or versions[-1]["metadata"]["resourceVersion"] != m["resourceVersion"]:
            versions.append(obj)


@dataclass
class Cluster:
    local: LocalCluster
    admin: Client
    proxy: FaultProxy
    store: ObjectStore
    mongo: Any  # the mongomock collection behind the catalog
    mongo_down: threading.Event
    root: Path
    health_port: int
    history_log: History
    audit_log: Path
    env: dict[str, str] = field(default_factory=dict)
    s3: S3Server | None = None  # the store's server (its access log on)
    s3_proxy: HoldingProxy | None = None  # where the workers reach it
    media: str = ""  # the sources' base URL (served_media), on the node's host address
    held: str = ""  # what hold() holds: "new" pods, or those "bound"
    audit_from: int = 0  # where this module's part of the audit log begins (a shared cluster's)
    sts: SeaweedServer | None = None  # cluster(store="seaweedfs"): the store, with STS (s3 is None)
    # mongomock is not safe for threads (a read beside a replace can see a document half written):
    # the operator's catalog and every read a test makes of it take this lock, as the embedded
    # catalog does its own.
    guard: Any = field(default_factory=threading.RLock)

    @property
    def node(self) -> RealNode:
        return self.local.real

    @property
    def node_name(self) -> str:
        return NODE

    def hold(self, *, bound: bool = False) -> None:
        """New pods start nothing until `release()`: the node is cordoned (the pods Pending,
        unscheduled: a pod bound to a node needs its kubelet to be deleted, and a test that holds
        may delete), or with `bound`, its containerd stopped (the pods bound, Pending: delete none
        meanwhile)."""
        if bound:
            self.node.freeze_runtime()
        else:
            self._cordon(True)
        self.held = "bound" if bound else "new"

    def release(self) -> None:
        if self.held == "bound":
            self.node.thaw_runtime()
        else:
            self._cordon(False)
        self.held = ""

    def _cordon(self, on: bool) -> None:
        self.admin.patch(f"/api/v1/nodes/{NODE}", {"spec": {"unschedulable": on}}, MERGE)

    def enforce_quota(self, namespace: str, hard: dict[str, str], name: str = "quota") -> None:
        """A ResourceQuota `name` in `namespace`, made and waited for until it is enforced: the API
        server's quota admission checks only what the quota controller has written into its
        status.hard, so a pod made before that is admitted as if there were no quota (make test on
        11-26: a Job's pod ran to Succeeded past a fresh `limits.cpu` quota)."""
        path = f"/api/v1/namespaces/{namespace}/resourcequotas"
        metadata = {"name": name}
        self.admin.create(
            path, {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": metadata, "spec": {"hard": hard}}
        )

        def enforced() -> bool:
            return set((self.admin.get(f"{path}/{name}").get("status") or {}).get("hard") or {}) >= set(hard)

        wait_for(
            enforced,
            60,
            f"the quota controller to enforce the ResourceQuota {namespace}/{name}",
        )

    def set_capacity(self, resources: dict[str, str]) -> None:
        """What the node advertises, e.g. `{"nvidia.com/gpu": "1"}` (LocalCluster.set_capacity)."""
        self.local.set_capacity(resources)

    @property
    def host_ip(self) -> str:
        """Where pods reach this machine (serve their sources here)."""
        return self.local.host_ip

    # --- admin calls (kubectl's part) ------------------------------------------------------------

    def ensure_namespace(self, namespace: str) -> None:
        try:
            self.admin.create(
                "/api/v1/namespaces",
                {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
            )
        except ApiError as exc:
            if exc.code != 409:
                raise
            if self._terminating(namespace):  # a shared cluster's earlier module made it (_tidied)
                wait_for(lambda: not self._terminating(namespace), 120, f"namespace {namespace} to go")
                return self.ensure_namespace(namespace)
        if self.s3 is not None:  # the workers' account in each namespace (the chart's README)
            keys = {"AWS_ACCESS_KEY_ID": self.s3.access_key, "AWS_SECRET_ACCESS_KEY": self.s3.secret_key}
            secret = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": S3_SECRET},
                "stringData": keys,
            }
            with contextlib.suppress(ApiError):  # 409: there already
                self.admin.create(f"/api/v1/namespaces/{namespace}/secrets", secret)

    def _terminating(self, namespace: str) -> bool:
        found = self.admin.get_or_none(f"/api/v1/namespaces/{namespace}")
        return found is not None and (found.get("status") or {}).get("phase") == "Terminating"

    def apply(self, manifest: dict[str, Any] | str, namespace: str) -> dict[str, Any]:
        obj = yaml.safe_load(manifest) if isinstance(manifest, str) else json.loads(json.dumps(manifest))
        self.ensure_namespace(namespace)
        obj.setdefault("metadata", {})["namespace"] = namespace
        return self.admin.create(_path(obj["kind"], namespace), obj)  # type: ignore[no-any-return]

    def patch(self, kind: str, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        return self.admin.patch(_path(kind, namespace, name), patch, MERGE)  # type: ignore[no-any-return]

    def delete(self, kind: str, namespace: str, name: str, *, propagation: str = "") -> None:
        """`propagation`: Orphan is `kubectl delete --cascade=orphan`."""
        options = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": propagation}
        self.admin.delete(_path(kind, namespace, name), options if propagation else None)

    def get(self, plural: str, namespace: str, name: str, group: str = "") -> dict[str, Any] | None:
        return self.admin.get_or_none(_path(plural, namespace, name, group))  # type: ignore[no-any-return]

    def resource(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self.get(kind, namespace, name, GROUP)

    def status(self, kind: str, namespace: str, name: str) -> dict[str, Any]:
        obj = self.resource(kind, namespace, name)
        return (obj or {}).get("status") or {}

    def wait_phase(
        self, kind: str, namespace: str, name: str, phase: str, timeout: float = 240.0
    ) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            status = self.status(kind, namespace, name)
            return status if status.get("phase") == phase and status.get("observedGeneration") else None

        return wait_for(  # type: ignore[no-any-return]
            check,
            timeout,
            f"{kind} {namespace}/{name} to be {phase} (now {self.status(kind, namespace, name)})",
        )

    def object_at(self, uri: str) -> ObjectInfo | None:
        """What the store holds at a status's URI (file:// or s3://, as the store is), or None."""
        return self.store.head(self.store.key_of(uri))

    def read(self, uri: str) -> bytes:
        return self.store.get_bytes(self.store.key_of(uri))

    def jobs(self, namespace: str) -> list[dict[str, Any]]:
        return list(self.admin.get(_path("jobs", namespace, group="batch/v1"))["items"])

    def pods(self, namespace: str) -> list[dict[str, Any]]:
        return list(self.admin.get(_path("pods", namespace, group=""))["items"])

    def events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        events = self.admin.get(
            _path("events", namespace, group=""), fieldSelector=f"involvedObject.name={name}"
        )["items"]
        return sorted(events, key=lambda e: int(e["metadata"]["resourceVersion"]))

    def history(self, kind: str, namespace: str, name: str) -> list[dict[str, Any]]:
        """Every version of the resource the watches saw, oldest first."""
        return list(self.history_log.versions.get((kind, namespace, name), []))

    def kill_worker(self, namespace: str, job_name: str, sig: signal.Signals = signal.SIGKILL) -> str:
        """Signal the running worker of a Job's pod, its whole process group (a container's
        processes), as a node loss or the OOM killer ends a pod: no SIGTERM, nothing the worker
        can do first. The pod's name."""
        pods = [
            p
            for p in self.pods(namespace)
            if (p["metadata"].get("labels") or {}).get("job-name") == job_name and "running" in _state(p)
        ]
        assert len(pods) == 1, f"{len(pods)} running workers of Job {namespace}/{job_name}"
        self.node.kill_container(pods[0]["status"]["containerStatuses"][0]["containerID"], sig)
        return str(pods[0]["metadata"]["name"])

    def runs(self, job_name: str | None = None) -> list[str]:
        """Job names, once per worker the node started (a Pod whose container started)."""
        names = [job for _, _, job in self.history_log.started]
        return [n for n in names if job_name is None or n == job_name]

    def catalog_doc(self, uid: str) -> dict[str, Any] | None:
        with self.guard:
            return self.mongo.find_one({"_id": uid})  # type: ignore[no-any-return]

    def catalog(self) -> Catalog:
        """The catalog the operator writes, read from a test's thread."""
        return Catalog(self.mongo, lambda: None, guard=self.guard)

    def decisions(self) -> list[SimpleNamespace]:
        """What the API server's authorizers decided for each request (its audit log) since this
        module's cluster was entered."""
        return audit_decisions(self.audit_log, self.audit_from)

    def audit_lines(self) -> list[str]:
        """The audit log's lines since this module's cluster was entered."""
        return audit_lines(self.audit_log, self.audit_from)

    def describe(self) -> str:
        """What a failed test's report shows: every contentgen resource, Job and pod (what the
        operator decides from), then the operator's and the node's last log lines."""
        lines = []
        try:
            for kind in KINDS:
                for obj in self.admin.get(_path(kind))["items"]:
                    st = obj.get("status") or {}
                    ready: dict[str, Any] = next(
                        (c for c in st.get("conditions") or [] if c["type"] == "Ready"), {}
                    )
                    lines.append(
                        _brief(kind, obj, f"gen={obj['metadata'].get('generation')} phase={st.get('phase')}")
                        + f" reason={ready.get('reason')} observed={st.get('observedGeneration')} "
                        f"job={st.get('jobName')}"
                    )
            for obj in self.admin.get("/apis/batch/v1/jobs")["items"]:
                st = obj.get("status") or {}
                conditions = [c["type"] for c in st.get("conditions") or [] if c.get("status") == "True"]
                lines.append(
                    _brief(
                        "Job",
                        obj,
                        f"active={st.get('active')} ready={st.get('ready')} conditions={conditions}",
                    )
                )
            for obj in self.admin.get("/api/v1/pods")["items"]:
                phase = (obj.get("status") or {}).get("phase")
                lines.append(_brief("Pod", obj, f"phase={phase} node={obj['spec'].get('nodeName')}"))
        except Exception as exc:  # the report still gets the log
            lines.append(f"(the cluster could not be read: {exc})")
        assert self.local.control is not None
        for log in sorted(self.local.control.logs.glob("kube-*.log")):
            with contextlib.suppress(OSError):
                problems = [x for x in log.read_text(errors="replace").splitlines()[-5000:] if x[:1] in "EW"]
                lines.append(f"--- {log.name}: its last warnings and errors ---")
                lines.extend(problems[-30:])
        lines.append("--- the operator's and the node's last log lines ---")
        lines.extend(LOG.lines())
        return "\n".join(lines)


def _state(pod: dict[str, Any]) -> set[str]:
    """The states its containers are in (waiting, running, terminated)."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return {state for x in statuses for state in x.get("state") or {}}


def _brief(kind: str, obj: dict[str, Any], state: str) -> str:
    """One object in one line: kind, namespace/name, `state`, and whether it is being deleted."""
    m = obj["metadata"]
    return (
        f"{kind} {m['namespace']}/{m['name']} {state} deleting={bool(m.get('deletionTimestamp'))} "
        f"finalizers={m.get('finalizers')}"
    )


class LogRing(logging.Handler):
    """The last log lines of the operator (its decisions and Job events at DEBUG) and the node
    (INFO and up), for failed tests' reports: pytest shows only the failing test's own phase."""

    def __init__(self, size: int = 400) -> None:
        super().__init__(logging.DEBUG)
        self.records: deque[str] = deque(maxlen=size)
        self.setFormatter(logging.Formatter("%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.records.append(self.format(record))
        except Exception:
            self.handleError(record)

    def lines(self) -> list[str]:
        return list(self.records)

    def attach(self) -> None:
        """The operator's decisions and Job events (DEBUG), the rest from INFO."""
        levels = {"contentgen.operator": logging.DEBUG, "contentgen": logging.INFO}
        levels.update({"localcluster": logging.INFO, "kopf": logging.INFO})
        for name, level in levels.items():
            logger = logging.getLogger(name)
            if self not in logger.handlers and name != "contentgen.operator":
                logger.addHandler(self)
            if logger.getEffectiveLevel() > level:
                logger.setLevel(level)


LOG = LogRing()

# The engines' own proofs that take the machine's two cores for ten minutes each (a TrainJob across
# two nodes preempted and resumed, a burst of 40 pooled pictures scaling a pool past one pod and
# back): past what `make test` can hold (tests/README.md: the budget), so `make test-engines` runs
# them and `make test` leaves them out (-m "not engines"): never a skip.
engines_at_length = pytest.mark.engines


def chart_rbac(root: Path, values: dict[str, Any]) -> list[dict[str, Any]]:
    """`default_manifests(root)` with the operator's ClusterRole as the chart renders it for
    `values` (its JobSet or TrainJob rules, say)."""
    from tests.harness.chart import rendered

    def ours(d: dict[str, Any]) -> bool:
        return bool(d["kind"] == "ClusterRole" and d["metadata"]["name"] == "contentgen-operator")

    role = next(d for d in rendered(values) if ours(d))
    return [role if ours(d) else d for d in default_manifests(root)]


def default_manifests(root: Path, store: str = "versitygw") -> list[dict[str, Any]]:
    """The CRDs and the chart's install without its Deployment (the operator runs in the tests):
    local-cluster's (versitygw: the namespace's copy of the store's Secret), or with `store`
    "seaweedfs" the chart's own defaults (each run's own credentials), for the bucket BUCKET."""
    from scripts import chart as chart_files

    install = None
    if store == "seaweedfs":
        rendered = yaml.safe_load_all(chart_files.install_manifest({"store.url": f"s3://{BUCKET}"}))
        install = [d for d in rendered if d and d["kind"] != "CustomResourceDefinition"]
    config = local_cluster.settings(root, offline=True, max_running_jobs=2)
    docs = local_cluster.manifests(root, config, install=install)
    return [d for d in docs if d["kind"] != "Deployment"]


BUCKET = "contentgen"


@dataclass
class _Started:
    """What a cluster's modules share: the control plane and its nodes, the S3 server and the
    workers' proxy to it, the sources served, and the environment the operator reads (less what
    each module has of its own: `_entered`)."""

    local: LocalCluster
    admin: Client
    server: S3Server | SeaweedServer
    s3_proxy: HoldingProxy
    root: Path
    audit: Path
    env: dict[str, str]
    token: str
    media: str
    namespaces: set[str]  # those there when it started: a module's others go when it ends


class ClusterOptions(TypedDict, total=False):
    """What a cluster is started with (`cluster`, `unoperated`): see `_started`."""

    rbac: list[dict[str, Any]] | None
    gpus: int
    gpu_image: bool
    fal_relay: str
    controllers: tuple[str, ...]
    controller_config: dict[str, dict[str, Any]] | None
    nodes: int
    worker: tuple[str, Path] | None
    store: str


@contextmanager
def cluster(root: Path, monkeypatch: Any, **options: Unpack[ClusterOptions]) -> Iterator[Cluster]:
    """A cluster of the caller's own (`_started` with `options`), entered as a module enters one,
    with the operator's kubeconfig in $KUBECONFIG for an operator started in this process."""
    with _started(root, **options) as started, _entered(started, monkeypatch, root) as made:
        yield made


@contextmanager
def _started(
    root: Path,
    *,
    rbac: list[dict[str, Any]] | None = None,
    gpus: int = 0,
    gpu_image: bool = False,
    fal_relay: str = "",
    controllers: tuple[str, ...] = (),
    controller_config: dict[str, dict[str, Any]] | None = None,
    nodes: int = 1,
    worker: tuple[str, Path] | None = None,
    store: str = "versitygw",
) -> Iterator[_Started]:
    """The control plane and its nodes, the store and the sources, which modules enter
    (`_entered`: the operator's kubeconfig, its ServiceAccount's token through a fault proxy). `rbac`
    replaces the chart's default install (the CRDs are always installed); `gpus`: what the node
    advertises (nvidia.com/gpu), the worker image standing in for the GPU worker image (these
    tests schedule, they do not draw) unless `gpu_image`: the GPU worker image itself, built
    (real_node.needs_gpu_image); the store is the bucket `contentgen` of the real S3 server
    (versitygw, with its access log) on the node's address, the workers reaching it through
    `Cluster.s3_proxy` (the operator and the test directly); `fal_relay`: the URL of a fal fake the
    test serves (tests/kube/fal_relay.py), where the workers' requests to fal's hosts go (the
    worker image layered with the relay as its entry point, reaching the fake at the Service
    `fal_relay.SERVICE` in `default`, which points at this URL's port on the node's host address:
    serve the fake on 0.0.0.0); `controllers`: the real controllers run beside the control plane
    (localcluster/managers.py: "kueue", "jobset", "trainer"), `controller_config` merged over their
    releases' configurations; `nodes`: real nodes, each advertising `gpus`; `worker`: the reference
    and archive of an image to run in the worker image's place (a test's layered on it); `store`
    "seaweedfs": the store is SeaweedFS with IAM and STS instead (localcluster/seaweed.py, its
    sessions cut to STS_SESSION), the workers holding their runs' own credentials as the chart's
    defaults give them (s3.workerCredentials perRun), no Secret of the bucket's key anywhere but
    in this process."""
    from contentgen.api.crd import crds

    if real_node.SKIP_REASON:
        pytest.skip(real_node.SKIP_REASON)
    LOG.attach()
    audit = root / "audit.jsonl"
    manifests = default_manifests(root / "cluster", store)
    if rbac is not None:
        manifests = [*crds().values(), *rbac]
    server: S3Server | SeaweedServer = (
        SeaweedServer(root / "sts", max_session=STS_SESSION)
        if store == "seaweedfs"
        else S3Server(root / "s3", secret_key=secrets.token_hex(16), access_log=root / "s3-access.log")
    )
    options, worker_image = _real_node(root, manifests, audit, gpus, fal_relay, gpu_image)
    options.controllers, options.controller_config = controllers, controller_config or {}
    options.nodes = nodes
    if worker is not None:
        worker_image, options.image_archives = worker[0], [worker[1], *options.image_archives[1:]]
    local = LocalCluster(options).start()
    assert local.control is not None
    admin = local.client()
    s3_proxy = None
    media = contextlib.ExitStack()
    try:
        if isinstance(server, S3Server):
            server.host = local.host_ip
        server.start()
        address = (server.host, server.port if isinstance(server, S3Server) else server.ports["s3"])
        s3_proxy = HoldingProxy(address, host=local.host_ip).start()
        env = {
            "POD_NAMESPACE": OPERATOR_NAMESPACE,
            "HOSTNAME": "contentgen-operator-test",
            "CONTENTGEN_MONGODB_URI": "mongodb://catalog.test:27017/contentgen",
            "CONTENTGEN_ALLOW_PRIVATE_SOURCES": "true",
            "CONTENTGEN_LOG_FORMAT": "plain",
            "CONTENTGEN_WORKER_IMAGE": worker_image,
            "CONTENTGEN_RECONCILE_INTERVAL_SECONDS": "0.3",
            "CONTENTGEN_RESYNC_INTERVAL_SECONDS": "5",
            "CONTENTGEN_METRICS_PORT": "0",
            "CONTENTGEN_MAX_RUNNING_JOBS_PER_NAMESPACE": "2",
            # kopf runs in this process; tests of the Lease start processes
            "CONTENTGEN_LEADER_ELECTION": "false",
            # the chart's share policy reads the grants from it (the chart sets this where it installs one)
            "CONTENTGEN_SHARE_POLICY_CONFIG_MAP": "contentgen-shares",
            "CONTENTGEN_STORE": f"s3://{BUCKET}",
            "CONTENTGEN_S3_ENDPOINT_URL": s3_proxy.endpoint,  # the workers'
            "CONTENTGEN_S3_REGION": server.region,
            "CONTENTGEN_S3_SECRET": S3_SECRET,  # the workers' account: the chart's Secret
            **server.env,  # this process's own client: the operator's and the test's
        }
        if isinstance(server, SeaweedServer):  # the chart's defaults: each run's own credentials
            del env["CONTENTGEN_S3_SECRET"]
            env.update(
                CONTENTGEN_STORE_ACCESS="per-run",
                CONTENTGEN_STS_ROLE_ARN=server.role_arn,
                CONTENTGEN_STS_ENDPOINT_URL=server.endpoint,
                CONTENTGEN_STS_WINDOW_SECONDS=str(STS_WINDOW),
            )
        from tests.harness.kube import served_media  # it imports this module

        served = media.enter_context(served_media(host=local.host_ip))
        if gpus and not gpu_image:  # the GPU image's reference names the worker image
            local.real.tag(worker_image, OperatorSettings().gpu_worker_image)
        if fal_relay:
            at = relays.Relay(fal_relay, port=urlsplit(fal_relay).port or 80)
            local.install(relays.service_to(at, local.host_ip, "default"))
        yield _Started(
            local,
            admin,
            server,
            s3_proxy,
            root,
            audit,
            env,
            local.token(OPERATOR_NAMESPACE, OPERATOR_ACCOUNT),
            served,
            {n["metadata"]["name"] for n in admin.get("/api/v1/namespaces")["items"]} | {"default"},
        )
    finally:
        media.close()
        admin.close()
        local.stop()
        if s3_proxy is not None:
            s3_proxy.stop()
        server.stop(grace=1.0)  # its files are this test's, read already


@contextmanager
def _entered(started: _Started, monkeypatch: Any, root: Path) -> Iterator[Cluster]:
    """A module's own part of a cluster: the operator's kubeconfig through a fault proxy of its
    own, its environment, a catalog, the watches' history and the audit log from now on."""
    local = started.local
    assert local.control is not None
    proxy = FaultProxy(local.control.url, local.control.ca).start()
    history = History(local.client())
    history.start()
    down = threading.Event()
    collection: Any = mongomock.MongoClient()["contentgen"]["jobs"]
    guard = threading.RLock()
    health_port = free_port("0.0.0.0")  # kopf listens on every address: free on each
    kubeconfig = root / "operator.kubeconfig"
    local.write_kubeconfig(
        kubeconfig, token=started.token, user=OPERATOR_ACCOUNT, namespace=OPERATOR_NAMESPACE
    )
    kubeconfig.write_text(kubeconfig.read_text().replace(local.control.url, proxy.url))
    env = {**started.env, "KUBECONFIG": str(kubeconfig), "CONTENTGEN_HEALTH_PORT": str(health_port)}
    try:
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        follow_environment()  # this cluster's S3 account, not the one a client of this process saw first
        from contentgen.store.s3 import S3Store, s3_client

        with contextlib.suppress(s3_client().exceptions.BucketAlreadyOwnedByYou):
            s3_client().create_bucket(Bucket=BUCKET)
        # Namespace annotations (budgets, owners) are read at most every 30 s; the tests that change
        # one wait for the next read, which need not take half a minute here.
        monkeypatch.setattr("contentgen.controller.reconciler.NAMESPACE_CACHE_SECONDS", 3.0)
        monkeypatch.setattr(
            "contentgen.catalog.open_catalog",
            lambda url=None, **_: Catalog(FlakyCollection(collection, down), lambda: None, guard=guard),
        )
        made = Cluster(
            local,
            started.admin,
            proxy,
            S3Store(BUCKET, ""),
            collection,
            down,
            started.root,
            health_port,
            history,
            started.audit,
            env,
            started.server if isinstance(started.server, S3Server) else None,
            started.s3_proxy,
            sts=started.server if isinstance(started.server, SeaweedServer) else None,
            media=started.media,
            audit_from=_lines_end(started.audit),
            guard=guard,
        )
        for namespace in ("default", OPERATOR_NAMESPACE):
            made.ensure_namespace(namespace)
        yield made
    finally:
        history.stop()
        proxy.stop()


def _lines_end(path: Path) -> int:
    """Where the next line of a log being written begins."""
    return path.read_bytes().rfind(b"\n") + 1 if path.exists() else 0


def _tidied(started: _Started) -> None:
    """A shared cluster as it started, for the next module (whose operator would otherwise take up
    this one's resources): every contentgen resource, Job and event gone, the namespaces the module
    made deleted (not waited for: `ensure_namespace` waits where a name comes again), the nodes
    schedulable and their runtimes running, the bucket empty."""
    admin = started.admin

    def tidy(method: str, path: str, body: Any = None) -> None:
        """One idempotent request, asked again where the apiserver's answer did not come in time
        (CI, 11-30: a DELETE of a LoraTraining unanswered for 30 s beside other nodes' tests); an
        answered refusal (gone already, 404) is not asked again."""
        for attempt in range(3):
            try:
                admin.request(
                    method,
                    path,
                    body=body,
                    timeout=60,
                    content_type=MERGE if method == "PATCH" else "application/json",
                )
                return
            except ApiError:
                return
            except Unreachable:
                if attempt == 2:
                    raise

    for node in started.local.nodes:
        node.thaw_runtime()
        tidy("PATCH", f"/api/v1/nodes/{node.name}", {"spec": {"unschedulable": False}})
    for kind in KINDS:
        for obj in admin.get(_path(kind))["items"]:
            m = obj["metadata"]
            at = _path(kind, m["namespace"], m["name"])
            if m.get("finalizers"):  # no operator runs to remove its own
                tidy("PATCH", at, {"metadata": {"finalizers": None}})
            tidy("DELETE", at)
    background = {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"}
    for namespace in admin.get("/api/v1/namespaces")["items"]:
        name = namespace["metadata"]["name"]
        if name not in started.namespaces:
            tidy("DELETE", f"/api/v1/namespaces/{name}")
            continue
        for job in admin.get(_path("jobs", name, group="batch/v1"))["items"]:
            tidy("DELETE", _path("jobs", name, job["metadata"]["name"], "batch/v1"), background)
        tidy("DELETE", _path("events", name, group=""))
    import boto3

    env = started.server.env
    s3 = boto3.client(  # its own account, whatever a client of this process saw last
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=env["AWS_DEFAULT_REGION"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET):
        if keys := [{"Key": o["Key"]} for o in page.get("Contents", [])]:
            s3.delete_objects(Bucket=BUCKET, Delete={"Objects": keys})


def _real_node(
    root: Path, manifests: list[dict[str, Any]], audit: Path, gpus: int, fal_relay: str, gpu_image: bool
) -> tuple[Options, str]:
    """The node's options, and the worker image's reference: the project's worker image, or with
    `fal_relay` that image layered with the relay as its entry point; with `gpu_image`, the GPU
    worker image too."""
    worker_image, worker_archive = real_node.image("contentgen-worker"), _archives()["contentgen-worker"]
    if fal_relay:
        from scripts import images as built

        layered = relays.images(["contentgen-worker"], "default", built.cache_dir() / "fal-relay")
        worker_image, worker_archive = layered["contentgen-worker"]
    archives = [worker_archive]
    if gpu_image:
        archives.append(_archives((real_node.GPU,))[real_node.GPU])
    options = Options(
        root / "cluster", manifests=manifests, audit_log=audit, image_archives=archives, gpus=gpus
    )
    return options, worker_image


@functools.cache
def _archives(names: tuple[str, ...] = real_node.NAMES) -> dict[str, Path]:
    """The project's images `names`, built or found current once per test process (the sources'
    copy they are built from removed when it ends)."""
    context = Path(tempfile.mkdtemp(prefix="kube-images-"))
    atexit.register(shutil.rmtree, context, True)
    return real_node.image_archives(context, names)


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


@contextmanager
def unoperated(
    tmp_path_factory: pytest.TempPathFactory, name: str = "cluster", **options: Unpack[ClusterOptions]
) -> Iterator[Cluster]:
    """A test module's cluster for tests that each start the operator (`operator`) with settings
    of their own (a test's monkeypatch.setenv before it); `options` as `cluster`'s. Without
    options, the cluster that the modules of SHARED_CLUSTER (tests/conftest.py), run one after
    another by one worker, share: each module has its own kubeconfig and fault proxy, catalog,
    history and part of the audit log, and what it leaves behind is tidied away when it ends
    (`_tidied`); the cluster stops when the worker's next test is not one of them (conftest.py)."""
    with pytest.MonkeyPatch.context() as mp:
        if options:
            with cluster(tmp_path_factory.mktemp(name), mp, **options) as c:
                yield c
            return
        started = _shared_cluster(tmp_path_factory)
        try:
            with _entered(started, mp, tmp_path_factory.mktemp(name)) as c:
                yield c
        finally:
            _tidied(started)


_shared: tuple[_Started, contextlib.ExitStack] | None = None


def _shared_cluster(tmp_path_factory: pytest.TempPathFactory) -> _Started:
    global _shared
    if _shared is None:
        stack = contextlib.ExitStack()
        root = tmp_path_factory.mktemp("shared-cluster")
        _shared = (stack.enter_context(_started(root)), stack)
    return _shared[0]


def stop_shared() -> None:
    """The shared cluster stopped, if it runs."""
    global _shared
    if _shared is not None:
        stack, _shared = _shared[1], None
        stack.close()


@contextmanager
def operated(tmp_path_factory: pytest.TempPathFactory, name: str = "cluster") -> Iterator[Cluster]:
    """A test module's cluster with the operator running in this process."""
    with unoperated(tmp_path_factory, name) as c, operator(c):
        yield c
