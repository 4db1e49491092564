"""A whole local cluster in one directory: the control plane (controlplane.py) and one real node
(node/real.py: a kubelet, containerd and runc), started together, with manifests applied once it
is up, and DIR/kubeconfig written last (its appearance means "ready"). This package knows nothing
of what it runs: the caller gives it the images (archives) and the manifests (CRDs, RBAC,
Deployments, ...).

    cluster = LocalCluster(Options(Path("DIR"), image_archives=[...], manifests=[...])).start()
    ... KUBECONFIG=DIR/kubeconfig kubectl get nodes ...
    cluster.stop()
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import binaries, kubeconfig
from .client import MERGE, ApiError, Client
from .controlplane import ControlPlane
from .node.real import RealNode

log = logging.getLogger("localcluster")

NODE = "local"


@dataclass
class Options:
    directory: Path
    manifests: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0
    audit_log: Path | None = None
    # GPUs the node advertises (nvidia.com/gpu in its capacity), so the real scheduler places GPU
    # pods by them; the node runs their containers as any other (on this machine's CPU or GPU).
    # An extended resource written into the Node's status, as Kubernetes' docs advertise one by
    # hand ("Advertise Extended Resources for a Node"): no device plugin
    gpus: int = 0
    wait_for: list[tuple[str, str]] = field(default_factory=list)  # Deployments to be Available first
    # the node's images: OCI or docker archives (`docker save`, `buildah push ... docker-archive:`,
    # `podman save`), imported into containerd (once: node/seed.py); pods name them by the
    # references the archives carry, with imagePullPolicy IfNotPresent or Never
    image_archives: list[Path] = field(default_factory=list)


# How long start() waits at most for each stage (the control plane ready, the node schedulable):
# a hang guard, not a measure. Every wait ends at once when the process it waits on exits, saying
# why; on a loaded 2-core machine a start that works can take minutes (the control plane alone
# missed a 60 s deadline under the whole suite), so only a hang reaches this.
START_HANG_GUARD_S = 300.0

GPU_RESOURCE = "nvidia.com/gpu"


class LocalCluster:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.dir = options.directory.resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.kubeconfig = self.dir / "kubeconfig"
        self.control: ControlPlane | None = None
        self.real = RealNode(self.dir / "node", name=NODE, archives=options.image_archives)
        self.version = ""
        # seconds: the control plane to a ready API server; the node to schedulable (its network
        # and reaper made before the control plane too)
        self.timings: dict[str, float] = {}

    @property
    def host_ip(self) -> str:
        """Where the API server listens and the pods can reach the host."""
        return self.real.layout.host_ip  # once start() has prepared the node

    def start(self, timeout: float = START_HANG_GUARD_S, *, announce: bool = True) -> LocalCluster:
        """Start everything; DIR/kubeconfig is written last (unless announce=False: the caller
        writes it with `write_kubeconfig(cluster.kubeconfig)` once its own parts are ready)."""
        self.kubeconfig.unlink(missing_ok=True)
        found = binaries.find()
        began = time.monotonic()
        try:
            self.real.prepare()  # NodeUnavailable: one line saying what this machine lacks
        except BaseException:
            self.real.stop()
            raise
        try:
            self.control = ControlPlane(
                self.dir / "control-plane",
                found,
                host=self.host_ip,
                port=self.options.port,
                audit_log=self.options.audit_log,
                service_cidr=self.real.layout.service_cidr,
            )
            prepared = time.monotonic()
            self.control.start(timeout)
            self.real.adopt([c.process.pid for c in self.control.components.values() if c.process])
            controlled = time.monotonic()
            self._start_node(timeout)
            deadline = time.monotonic() + timeout
            self._wait_schedulable(deadline)
            if self.options.gpus:
                self.set_capacity({GPU_RESOURCE: str(self.options.gpus)})
            self.timings = {
                "control_plane": controlled - prepared,
                "node": prepared - began + time.monotonic() - controlled,
            }
            self.install(self.options.manifests)
            for namespace, name in self.options.wait_for:
                self.wait_available(namespace, name, deadline)
        except BaseException:
            self.stop()
            raise
        if announce:
            self.write_kubeconfig(self.kubeconfig)
        return self

    def _start_node(self, timeout: float) -> None:
        control = self.control
        assert control is not None
        admin = control.client()
        # The API server's kubelet client may read logs (kubeadm binds it the same way).
        admin.apply(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "ClusterRoleBinding",
                "metadata": {"name": "localcluster:kube-apiserver-kubelet-client"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "system:kubelet-api-admin",
                },
                "subjects": [
                    {
                        "apiGroup": "rbac.authorization.k8s.io",
                        "kind": "User",
                        "name": "kube-apiserver-kubelet-client",
                    }
                ],
            }
        )
        admin.close()
        self.real.start(control, timeout)
        self.version = found_version(control)

    def _wait_schedulable(self, deadline: float) -> None:
        """Until the node controller has seen the node Ready and lifted its not-ready taint."""
        client = self.client()
        try:
            while time.monotonic() < deadline:
                if exited := self.real.check():
                    raise RuntimeError(f"the node's {exited[0]} exited: {self.real.tail(exited[0])}")
                node = client.get_or_none(f"/api/v1/nodes/{NODE}")
                if node is None:  # the kubelet has not registered it yet
                    time.sleep(0.1)
                    continue
                taints = [
                    t for t in (node.get("spec") or {}).get("taints") or [] if t.get("effect") == "NoSchedule"
                ]
                if not taints:
                    return
                time.sleep(0.1)
        finally:
            client.close()
        raise RuntimeError("the node did not become schedulable in time")

    def wait_available(self, namespace: str, name: str, deadline: float) -> None:
        client = self.client()
        try:
            while time.monotonic() < deadline:
                found = client.get_or_none(f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}")
                conditions = {
                    c["type"]: c["status"]
                    for c in ((found or {}).get("status") or {}).get("conditions") or []
                }
                if conditions.get("Available") == "True" and (found or {})["status"].get("readyReplicas"):
                    return
                time.sleep(0.2)
        finally:
            client.close()
        raise RuntimeError(
            f"the Deployment {namespace}/{name} was not Available in time; "
            f"see its pods' logs in {self.real.layout.pod_logs}"
        )

    def set_capacity(self, resources: dict[str, str]) -> None:
        """Change what the node advertises, e.g. `{"nvidia.com/gpu": "1"}`, the scheduler placing
        pods by it from then on (a pod already bound keeps its place). The real node's kubelet keeps
        an extended resource written into the Node's capacity and follows it in its allocatable;
        both are written here so that the scheduler sees it at once."""
        client = self.client()
        try:
            status = {"status": {"capacity": resources, "allocatable": resources}}
            client.patch(f"/api/v1/nodes/{NODE}/status", status, MERGE)
        finally:
            client.close()

    def client(self, **kw: Any) -> Client:
        assert self.control is not None
        return self.control.client(**kw)

    def install(self, manifests: list[dict[str, Any]]) -> None:
        """Apply the manifests in order (server-side apply), CRDs first and waited for until
        Established, so objects of their kinds can follow."""
        client = self.client()
        try:
            crds = [m for m in manifests if m.get("kind") == "CustomResourceDefinition"]
            for crd in crds:
                client.apply(crd)
            for crd in crds:
                self._wait_established(client, crd["metadata"]["name"])
            for manifest in manifests:
                if manifest.get("kind") != "CustomResourceDefinition":
                    self._apply(client, manifest)
        finally:
            client.close()

    def _apply(self, client: Client, manifest: dict[str, Any]) -> None:
        for _ in range(50):
            try:
                client.apply(manifest)
                return
            except ApiError as exc:  # a namespace's default ServiceAccount not there yet, ...
                if exc.code not in (403, 404, 409):
                    raise
                time.sleep(0.2)
        client.apply(manifest)

    @staticmethod
    def _wait_established(client: Client, name: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            crd = client.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
            conditions = {c["type"]: c["status"] for c in (crd.get("status") or {}).get("conditions") or []}
            if conditions.get("Established") == "True":
                return
            time.sleep(0.1)
        raise RuntimeError(f"the CRD {name} was not established in {timeout:.0f} s")

    def token(self, namespace: str, account: str, seconds: int = 86400) -> str:
        """A token for a ServiceAccount (TokenRequest)."""
        client = self.client()
        try:
            answer = client.create(
                f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token",
                {
                    "apiVersion": "authentication.k8s.io/v1",
                    "kind": "TokenRequest",
                    "spec": {"expirationSeconds": seconds},
                },
            )
        finally:
            client.close()
        return str(answer["status"]["token"])

    def write_kubeconfig(
        self, path: Path, *, token: str | None = None, user: str = "admin", namespace: str = "default"
    ) -> Path:
        control = self.control
        assert control is not None
        if token is not None:
            return kubeconfig.write(
                path, server=control.url, ca_pem=control.ca.pem, user=user, token=token, namespace=namespace
            )
        return kubeconfig.write(
            path,
            server=control.url,
            ca_pem=control.ca.pem,
            user=user,
            cert=control.admin.cert,
            key=control.admin.key,
            namespace=namespace,
        )

    def stop(self) -> None:
        self.kubeconfig.unlink(missing_ok=True)
        if self.control is not None:
            self.control.stop()
        self.real.stop()  # after the control plane: its teardown ends what is left


def found_version(control: ControlPlane) -> str:
    client = control.client()
    try:
        return str(client.get("/version")["gitVersion"])
    finally:
        client.close()
