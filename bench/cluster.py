"""The real control plane for the operator's benchmarks (bench/operator.py, bench/chaos.py,
bench/shared.py): etcd and kube-apiserver v1.36 from `make kube` (localcluster), the CRDs and the
chart's install (RBAC, ConfigMap; not its Deployment: the benchmark runs the operator itself, as
its own process under its ServiceAccount's token), and the API server's audit log, from which the
requests of each user are counted.

etcd and kube-apiserver only, no controllers and no node (as envtest runs it): nothing acts on
Jobs or Pods but the benchmark, so what is measured is the operator and the API server it shares
the machine with. (The whole cluster with the real node, its Job controller and the project's
images: bench/faults.py.)

`proxy=True` puts localcluster's fault proxy between the operator and the API server (injected
500s, cut watches); the benchmark's own requests go to the API server directly.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from contentgen.cli import local_cluster
from localcluster import binaries, kubeconfig
from localcluster.client import ApiError, Client
from localcluster.controlplane import ControlPlane
from localcluster.faults import FaultProxy

OPERATOR_NAMESPACE, OPERATOR_ACCOUNT = "contentgen", "contentgen-operator"
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_ACCOUNT}"
STORE = "store"


def chart_manifests(root: Path) -> list[dict[str, Any]]:
    """The CRDs and the chart's install (as local-cluster applies it), without the Deployment."""
    docs = local_cluster.manifests(root, local_cluster.settings(root, offline=True, max_running_jobs=4))
    return [d for d in docs if d["kind"] != "Deployment"]


def install(client: Client, manifests: list[dict[str, Any]]) -> None:
    """Server-side apply: the CRDs first, waited for until Established, then the rest."""
    crds = [m for m in manifests if m["kind"] == "CustomResourceDefinition"]
    for crd in crds:
        client.apply(crd)
    for crd in crds:
        path = f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}"
        wait(
            lambda path=path: any(  # type: ignore[misc]
                c["type"] == "Established" and c["status"] == "True"
                for c in (client.get(path).get("status") or {}).get("conditions") or []
            ),
            30,
            f"the CRD {crd['metadata']['name']}",
        )
    for manifest in manifests:
        if manifest["kind"] != "CustomResourceDefinition":
            client.apply(manifest)


def wait(check: Callable[[], Any], timeout: float, what: str, every: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(every)
    raise RuntimeError(f"timed out waiting for {what}")


class Requests:
    """Requests per user, read from the API server's audit log (one ResponseComplete line per
    request; the log is written before the response is sent)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._counts: Counter[str] = Counter()
        self._by_kind: Counter[tuple[str, str, str]] = Counter()
        self._lock = threading.Lock()

    def _read(self) -> None:
        if not self.path.exists():
            return
        with self.path.open("rb") as f:
            f.seek(self._offset)
            data = f.read()
        end = data.rfind(b"\n") + 1  # a line being written stays for the next read
        self._offset += end
        for line in data[:end].splitlines():
            event = json.loads(line)
            if event.get("stage") != "ResponseComplete":
                continue
            user = event["user"]["username"]
            ref = event.get("objectRef") or {}
            resource = ref.get("resource", "") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
            self._counts[user] += 1
            self._by_kind[(user, event["verb"], resource)] += 1

    def by(self, user: str) -> int:
        with self._lock:
            self._read()
            return self._counts[user]

    def breakdown(self, user: str) -> dict[str, int]:
        with self._lock:
            self._read()
            return {f"{v} {r}": n for (u, v, r), n in self._by_kind.most_common() if u == user}


class Cluster:
    def __init__(self, root: Path, *, proxy: bool = False, workers: int = 16) -> None:
        self.root = root.resolve()
        self.audit = self.root / "audit.jsonl"
        self.store = self.root / STORE
        self.control = ControlPlane(self.root / "cluster", binaries.find(), audit_log=self.audit)
        self.control.start(controllers=False)
        admin = self.control.client()
        try:
            install(admin, chart_manifests(self.root / "cluster"))
        finally:
            admin.close()
        self.requests = Requests(self.audit)
        self.server = self.control.url
        self.ssl = ssl.create_default_context(cafile=str(self.control.ca.cert_file))
        self.ssl.load_cert_chain(str(self.control.admin.cert), str(self.control.admin.key))
        self.http = self.client(timeout=60, connections=workers + 4)
        self.proxy = FaultProxy(self.control.url, self.control.ca).start() if proxy else None
        self.operator_kubeconfig = self.root / "operator.kubeconfig"
        kubeconfig.write(
            self.operator_kubeconfig,
            server=self.proxy.url if self.proxy else self.control.url,
            ca_pem=self.control.ca.pem,
            user=OPERATOR_ACCOUNT,
            token=self.token(OPERATOR_NAMESPACE, OPERATOR_ACCOUNT),
            namespace=OPERATOR_NAMESPACE,
        )

    def client(self, timeout: float | None = 60, connections: int = 4) -> httpx.Client:
        """An admin client (the cluster's admin certificate) to the API server itself."""
        return httpx.Client(
            base_url=self.server,
            verify=self.ssl,
            timeout=timeout,
            limits=httpx.Limits(max_connections=connections, max_keepalive_connections=connections),
        )

    def token(self, namespace: str, account: str) -> str:
        response = self.http.post(
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token",
            json={
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": 86400},
            },
        )
        response.raise_for_status()
        return str(response.json()["status"]["token"])

    def post(self, path: str, body: dict[str, Any]) -> None:
        response = self.http.post(path, json=body)
        if response.status_code >= 300:
            raise ApiError(response.status_code, response.text[:300])

    def namespaces(self, count: int, prefix: str = "bench") -> list[str]:
        names = [f"{prefix}-{i}" for i in range(count)]
        for name in names:
            self.post(
                "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
            )
        return names

    def pids(self) -> list[int]:
        """The control plane's processes (etcd and kube-apiserver; the controllers when they run)."""
        return [c.process.pid for c in self.control.components.values() if c.running() and c.process]

    def restart_apiserver(self) -> None:
        self.control.restart_apiserver()

    def stop(self) -> None:
        self.http.close()
        if self.proxy is not None:
            self.proxy.stop()
        self.control.stop()


class Received(threading.Thread):
    """Bytes a process received over TCP (all its connections: watches and answers), from the
    kernel's per-socket counters (`ss -tinp`: bytes_received), sampled twice a second; a socket
    that closes between two samples loses its last half second."""

    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.stopping = threading.Event()
        self.start_counts = self.sample()
        self.counts = dict(self.start_counts)

    def sample(self) -> dict[tuple[str, str], int]:
        import subprocess

        out = subprocess.run(["ss", "-tinpH"], capture_output=True, text=True, check=False).stdout
        counts: dict[tuple[str, str], int] = {}
        key: tuple[str, str] | None = None
        for line in out.splitlines():
            if not line[:1].isspace():
                fields = line.split()
                key = (fields[2], fields[3]) if f"pid={self.pid}," in line and len(fields) > 3 else None
            elif key is not None and "bytes_received:" in line:
                counts[key] = int(line.split("bytes_received:", 1)[1].split()[0])
                key = None
        return counts

    def run(self) -> None:
        while not self.stopping.wait(0.5):
            for key, count in self.sample().items():
                self.counts[key] = max(self.counts.get(key, 0), count)

    def total(self) -> int:
        """Bytes received since this was made."""
        for key, count in self.sample().items():
            self.counts[key] = max(self.counts.get(key, 0), count)
        return sum(self.counts.values()) - sum(self.start_counts.values())

    def stop(self) -> int:
        self.stopping.set()
        return self.total()
