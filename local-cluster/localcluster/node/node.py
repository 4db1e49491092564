"""The process node: the one part of the local cluster that is not Kubernetes' own code, because
there is no container runtime. It is a kubelet in miniature, under the node's own identity
(system:node:NAME, so the real Node authorizer and NodeRestriction apply to it):

- it registers its Node (addresses, capacity and allocatable, the kubelet endpoint, node info)
  and renews its Lease in kube-node-lease every 10 s, as the kubelet's heartbeat does;
- it watches the pods the scheduler binds to it (a fieldSelector on spec.nodeName, re-listing
  after a 410 or a broken stream) and runs each one (pods.py) as local processes;
- it serves the kubelet API's /containerLogs over TLS (logs.py), so `kubectl logs` works through
  the API server;
- it finishes pod deletions (a DELETE with grace 0 once the containers have stopped), posts the
  kubelet's Events, and cleans up after pods that are gone.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import platform
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import kubeconfig
from ..client import ApiError, Client
from .images import Images
from .logs import KubeletServer, sar
from .network import Network
from .pods import PodWorker

log = logging.getLogger("localcluster.node")

LEASE_SECONDS = 40
RENEW_SECONDS = 10.0
STATUS_SECONDS = 60.0


def _now_micro() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Process:
    """A container process the node started (tests and benchmarks read these)."""

    namespace: str
    pod: str
    uid: str
    container: str
    argv: list[str]
    pid: int
    started: float = field(default_factory=time.time)


class ProcessNode:
    def __init__(
        self,
        client: Client,
        root: Path,
        *,
        name: str,
        images: Images,
        api_host: str,
        api_port: int,
        ca_file: Path,
        serving: tuple[Path, Path],
        host_ip: str = "127.0.0.1",
        network: Network | None = None,
        capacity: dict[str, str] | None = None,
        kubelet_version: str = "v1.36.3",
        backoff_base: float = 10.0,
    ) -> None:
        self.client = client
        self.root = root
        self.name = name
        self.images = images
        self.api_host, self.api_port = api_host, api_port
        self.ca_file = ca_file
        self.serving = serving
        self.host_ip = network.host_ip if network is not None else host_ip
        self.network = network
        self.mount_namespaces = os.geteuid() == 0 and shutil.which("unshare") is not None
        # Host paths a pod's process needs (its Python and packages, the node's and the cluster's
        # directories): a volume mounted over one of them is reached by rewritten paths instead.
        self.protected = sorted(
            {
                str(Path(p).resolve())
                for p in (sys.prefix, sys.base_prefix, *sys.path)
                if p and Path(p).is_absolute()
            }
            | {str(root.resolve().parent)}
        )
        self.allocatable = dict(
            capacity or {"cpu": "64", "memory": "256Gi", "pods": "1000", "ephemeral-storage": "500Gi"}
        )  # its capacity too (the node reserves nothing)
        self.kubelet_version = kubelet_version
        self.backoff_base = backoff_base
        self.workers: dict[str, PodWorker] = {}
        self.processes: list[Process] = []
        self.stopping = False
        self.running = threading.Event()  # cleared: containers wait to start (hold(), for tests)
        self.running.set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._sar_cache: dict[tuple[str, tuple[str, ...], str], tuple[bool, float]] = {}
        self.server = KubeletServer(
            self.host_ip,
            0,
            cert=serving[0],
            key=serving[1],
            ca=ca_file,
            logs=self._log_file,
            authorize=self._authorize,
        )
        self._threads: list[threading.Thread] = []

    # --- lifecycle ----------------------------------------------------------------------------------

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.server.start()
        self.register()
        self.renew_lease()
        for target, name in ((self._heartbeat, "node-heartbeat"), (self._informer, "node-pods")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the node: every container gets SIGTERM, then SIGKILL after 2 s."""
        self.stopping = True
        self._stop.set()
        with self._lock:
            workers = list(self.workers.values())
        for worker in workers:
            worker.wake.set()
        for worker in workers:
            worker.thread.join(timeout)
        self.server.stop()

    def set_capacity(self, resources: dict[str, str]) -> None:
        """Change what the node advertises (capacity and allocatable), e.g. `{"nvidia.com/gpu":
        "1"}`: posted at once, so the scheduler places pods by it from then on. A pod already bound
        keeps its place (as when a device plugin's count changes on a real node)."""
        with self._lock:
            self.allocatable.update(resources)
        self._post_status(self.node_object()["status"])

    def hold(self) -> None:
        """Containers not yet started wait (their pods stay Pending, ContainerCreating) until release()."""
        self.running.clear()

    def release(self) -> None:
        self.running.set()
        with self._lock:
            workers = list(self.workers.values())
        for worker in workers:
            worker.wake.set()

    # --- the Node and its Lease -------------------------------------------------------------------

    def node_object(self) -> dict[str, Any]:
        beat = _now()
        conditions = [
            (
                "MemoryPressure",
                "False",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
            ("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            ("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
            ("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
        ]
        return {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": self.name,
                "labels": {
                    "kubernetes.io/hostname": self.name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": {"x86_64": "amd64", "aarch64": "arm64"}.get(
                        platform.machine(), platform.machine()
                    ),
                    "localcluster.io/process-node": "true",
                },
            },
            "status": {
                "capacity": self.allocatable,
                "allocatable": self.allocatable,
                "addresses": [
                    {"type": "InternalIP", "address": self.host_ip},
                    {"type": "Hostname", "address": self.name},
                ],
                "daemonEndpoints": {"kubeletEndpoint": {"Port": self.server.port}},
                "nodeInfo": {
                    "machineID": "",
                    "systemUUID": "",
                    "bootID": "",
                    "kernelVersion": platform.release(),
                    "osImage": "localcluster process node",
                    "containerRuntimeVersion": "localcluster-process://1",
                    "kubeletVersion": self.kubelet_version,
                    "kubeProxyVersion": "",
                    "operatingSystem": "linux",
                    "architecture": "amd64",
                },
                "conditions": [
                    {
                        "type": t,
                        "status": s,
                        "reason": r,
                        "message": m,
                        "lastHeartbeatTime": beat,
                        "lastTransitionTime": beat,
                    }
                    for t, s, r, m in conditions
                ],
            },
        }

    def register(self) -> None:
        body = self.node_object()
        try:
            self.client.create("/api/v1/nodes", {k: v for k, v in body.items() if k != "status"})
        except ApiError as exc:
            if exc.code != 409:
                raise
        self._post_status(body["status"])

    def _post_status(self, status: dict[str, Any]) -> None:
        current = self.client.get(f"/api/v1/nodes/{self.name}")
        before = {c["type"]: c for c in (current.get("status") or {}).get("conditions") or []}
        for cond in status["conditions"]:
            old = before.get(cond["type"])
            if old is not None and old.get("status") == cond["status"]:
                cond["lastTransitionTime"] = old.get("lastTransitionTime", cond["lastTransitionTime"])
        self.client.patch(
            f"/api/v1/nodes/{self.name}/status", {"status": status}, "application/strategic-merge-patch+json"
        )

    def renew_lease(self) -> None:
        path = f"/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/{self.name}"
        spec = {"holderIdentity": self.name, "leaseDurationSeconds": LEASE_SECONDS, "renewTime": _now_micro()}
        lease = self.client.get_or_none(path)
        if lease is None:
            body = {
                "apiVersion": "coordination.k8s.io/v1",
                "kind": "Lease",
                "metadata": {
                    "name": self.name,
                    "namespace": "kube-node-lease",
                    "ownerReferences": [
                        {
                            "apiVersion": "v1",
                            "kind": "Node",
                            "name": self.name,
                            "uid": self.client.get(f"/api/v1/nodes/{self.name}")["metadata"]["uid"],
                        }
                    ],
                },
                "spec": spec,
            }
            self.client.create("/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases", body)
        else:
            lease["spec"].update(spec)
            self.client.request("PUT", path, body=lease)

    def _heartbeat(self) -> None:
        last_status = time.monotonic()
        while not self._stop.wait(RENEW_SECONDS):
            try:
                self.renew_lease()
                if time.monotonic() - last_status >= STATUS_SECONDS:
                    self._post_status(self.node_object()["status"])
                    last_status = time.monotonic()
            except Exception as exc:  # a node whose heartbeat ends is NotReady for good: go on
                log.warning("node: heartbeat failed: %s", exc)

    # --- pods ---------------------------------------------------------------------------------------

    def _informer(self) -> None:
        selector = {"fieldSelector": f"spec.nodeName={self.name}"}
        version = ""
        while not self._stop.is_set():
            try:
                if not version:
                    listing = self.client.get("/api/v1/pods", **selector)
                    version = listing["metadata"]["resourceVersion"]
                    seen = set()
                    for pod in listing["items"]:
                        seen.add(pod["metadata"]["uid"])
                        self.sync(pod)
                    self._forget_missing(seen)
                for event in self.client.watch(
                    "/api/v1/pods", resourceVersion=version, timeoutSeconds=300, **selector
                ):
                    if self._stop.is_set():
                        return
                    kind, obj = event["type"], event["object"]
                    if kind == "ERROR":
                        version = ""  # 410 Gone or another error: list again
                        break
                    version = obj["metadata"]["resourceVersion"]
                    if kind == "DELETED":
                        self.forget(obj["metadata"]["uid"])
                    elif kind != "BOOKMARK":
                        self.sync(obj)
            except (ApiError, OSError, ValueError) as exc:
                if not self._stop.is_set():
                    log.info("node: pod watch broke (%s); listing again", exc)
                    version = ""
                    self._stop.wait(1.0)
            except Exception as exc:
                if not self._stop.is_set():
                    log.info("node: pod watch broke (%s); listing again", exc)
                    version = ""
                    self._stop.wait(1.0)

    def sync(self, pod: dict[str, Any]) -> None:
        uid = pod["metadata"]["uid"]
        with self._lock:
            worker = self.workers.get(uid)
            if worker is not None:
                worker.update(pod)
                return
            phase = (pod.get("status") or {}).get("phase")
            if phase in ("Succeeded", "Failed"):  # finished before this node (re)started
                if pod["metadata"].get("deletionTimestamp"):
                    self.finish_deletion(pod)
                return
            worker = self.workers[uid] = PodWorker(self, pod)
        worker.thread.start()

    def forget(self, uid: str) -> None:
        with self._lock:
            worker = self.workers.pop(uid, None)
        if worker is not None:
            worker.wake.set()
            threading.Thread(target=self._cleanup, args=(worker,), daemon=True).start()

    def _forget_missing(self, present: set[str]) -> None:
        with self._lock:
            gone = [uid for uid in self.workers if uid not in present]
        for uid in gone:
            self.forget(uid)

    def _cleanup(self, worker: PodWorker) -> None:
        worker.pod["metadata"]["deletionTimestamp"] = (
            worker.pod["metadata"].get("deletionTimestamp") or _now()
        )
        worker.wake.set()
        worker.finished.wait(120)
        shutil.rmtree(worker.dir / "volumes", ignore_errors=True)  # logs stay for `kubectl logs` of the dead

    def finish_deletion(self, pod: dict[str, Any]) -> None:
        m = pod["metadata"]
        body = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "gracePeriodSeconds": 0,
            "preconditions": {"uid": m["uid"]},
        }
        try:
            self.client.delete(f"/api/v1/namespaces/{m['namespace']}/pods/{m['name']}", body)
        except ApiError as exc:
            if exc.code not in (404, 409):
                log.warning("node: could not finish deleting %s/%s: %s", m["namespace"], m["name"], exc)
        except OSError as exc:
            log.warning("node: could not finish deleting %s/%s: %s", m["namespace"], m["name"], exc)

    def record_process(self, worker: PodWorker, container: str, argv: list[str], pid: int) -> None:
        self.processes.append(Process(worker.namespace, worker.name, worker.uid, container, argv, pid))

    def pod_kubeconfig(self, worker: PodWorker, token_dir: Path) -> Path:
        """For a node without mount namespaces: a kubeconfig naming the pod's token file."""
        path: Path = worker.dir / "kubeconfig"
        if not path.exists():
            kubeconfig.write(
                path,
                server=f"https://{self.api_host}:{self.api_port}",
                ca_pem=self.ca_file.read_bytes(),
                user=worker.pod["spec"].get("serviceAccountName") or "default",
                token_file=token_dir / "token",
                namespace=worker.namespace,
            )
        return path

    # --- events ------------------------------------------------------------------------------------

    def event(self, pod: dict[str, Any], type_: str, reason: str, message: str, field_path: str = "") -> None:
        m = pod["metadata"]
        stamp = _now()
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{m['name']}.", "namespace": m["namespace"]},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": m["name"],
                "namespace": m["namespace"],
                "uid": m["uid"],
                **({"fieldPath": field_path} if field_path else {}),
            },
            "type": type_,
            "reason": reason,
            "message": message,
            "source": {"component": "kubelet", "host": self.name},
            "reportingComponent": "kubelet",
            "reportingInstance": self.name,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        try:
            self.client.create(f"/api/v1/namespaces/{m['namespace']}/events", body)
        except (ApiError, OSError) as exc:
            log.debug("node: event not posted: %s", exc)

    # --- the kubelet API ---------------------------------------------------------------------------

    def _log_file(self, namespace: str, pod: str, container: str, previous: bool) -> Any:
        with self._lock:
            worker = next(
                (w for w in self.workers.values() if (w.namespace, w.name) == (namespace, pod)), None
            )
        if worker is None:
            return None, lambda: False
        return worker.log_file(container, previous)

    def _authorize(self, user: str, groups: list[str], subresource: str) -> bool:
        key = (user, tuple(groups), subresource)
        cached = self._sar_cache.get(key)
        if cached is not None and time.monotonic() - cached[1] < 60:
            return cached[0]
        try:
            answer = self.client.create(
                "/apis/authorization.k8s.io/v1/subjectaccessreviews",
                sar(user, groups, self.name, subresource),
            )
            allowed = bool(answer.get("status", {}).get("allowed"))
        except (ApiError, OSError):
            return False
        self._sar_cache[key] = (allowed, time.monotonic())
        return allowed
