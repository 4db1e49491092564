"""A whole local cluster in one directory: the control plane (controlplane.py), its real nodes
(node/real.py: a kubelet, containerd and runc each; one unless asked for more) and the controllers
asked for (managers.py: JobSet, Kueue, Kubeflow Trainer), started together, with manifests applied
once it is up, and DIR/kubeconfig written last (its appearance means "ready"). This package knows nothing
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

from . import binaries, controllers, kubeconfig
from .client import MERGE, ApiError, Client
from .controlplane import ControlPlane
from .managers import Managers
from .node import nodenet
from .node.real import RealNode

log = logging.getLogger("localcluster")

NODE = "local"  # the first node's name; the others' are local-2, local-3, ...


def node_name(index: int) -> str:
    return NODE if index == 0 else f"{NODE}-{index + 1}"


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
    gpus: int = 0  # on each node
    wait_for: list[tuple[str, str]] = field(default_factory=list)  # Deployments to be Available first
    # real nodes, each with a network namespace of its own, joined to each other (nodenet.link):
    # a pod on one reaches the pods of the others as on any cluster
    nodes: int = 1
    # the node's images: OCI or docker archives (`docker save`, `buildah push ... docker-archive:`,
    # `podman save`), imported into containerd (once: node/seed.py); pods name them by the
    # references the archives carry, with imagePullPolicy IfNotPresent or Never
    image_archives: list[Path] = field(default_factory=list)
    # controllers run beside the control plane (managers.py: "jobset", "kueue", "trainer", "keda"), each
    # with `controller_config[name]` merged over its release's configuration
    controllers: tuple[str, ...] = ()
    controller_config: dict[str, dict[str, Any]] = field(default_factory=dict)


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
        self.managers: Managers | None = None
        self.nodes = [
            RealNode(
                self.dir / ("node" if i == 0 else f"node-{i + 1}"),
                name=node_name(i),
                archives=options.image_archives,
            )
            for i in range(max(1, options.nodes))
        ]
        self.real = self.nodes[0]  # the node the API server's address is on
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
        for name in self.options.controllers:
            controllers.binary(name)  # ControllerMissing: one line, `make kube`, before anything starts
        began = time.monotonic()
        try:
            for node in self.nodes:
                node.prepare()  # NodeUnavailable: one line saying what this machine lacks
            for other in self.nodes[1:]:
                nodenet.link(self.real.layout, other.layout)
            for i, one in enumerate(self.nodes[1:], 1):
                for other in self.nodes[i + 1 :]:
                    nodenet.link(one.layout, other.layout)
        except BaseException:
            for node in self.nodes:
                node.stop()
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
            if self.options.controllers:
                self.managers = Managers(
                    self.dir / "controllers",
                    self.control,
                    self.options.controllers,
                    self.host_ip,
                    self.options.controller_config,
                )
                self.managers.start()  # while the node starts
                self.real.adopt(self.managers.pids())
            self._start_node(timeout)
            deadline = time.monotonic() + timeout
            self._wait_schedulable(deadline)
            if self.managers is not None:
                self.managers.wait(deadline)
            if self.options.gpus:
                for i in range(len(self.nodes)):
                    self.set_capacity({GPU_RESOURCE: str(self.options.gpus)}, node_name(i))
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
        for node in self.nodes:
            node.start(control, timeout)
        self.version = found_version(control)

    def _wait_schedulable(self, deadline: float) -> None:
        """Until the node controller has seen every node Ready and lifted its not-ready taint."""
        client = self.client()
        waiting = {node_name(i): real for i, real in enumerate(self.nodes)}
        try:
            while time.monotonic() < deadline:
                if self.control is not None and (gone := self.control.check()):
                    tail = self.control.components[gone[0]].tail()
                    raise RuntimeError(f"the control plane's {gone[0]} exited: {tail}")
                for name, real in list(waiting.items()):
                    if exited := real.check():
                        raise RuntimeError(f"the node {name}'s {exited[0]} exited: {real.tail(exited[0])}")
                    node = client.get_or_none(f"/api/v1/nodes/{name}")
                    if node is None:  # the kubelet has not registered it yet
                        continue
                    spec = node.get("spec") or {}
                    if not [t for t in spec.get("taints") or [] if t.get("effect") == "NoSchedule"]:
                        del waiting[name]
                if not waiting:
                    return
                time.sleep(0.1)
        finally:
            client.close()
        raise RuntimeError(f"the nodes {', '.join(waiting)} did not become schedulable in time")

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

    def set_capacity(self, resources: dict[str, str], node: str = NODE) -> None:
        """Change what a node advertises, e.g. `{"nvidia.com/gpu": "1"}`, the scheduler placing
        pods by it from then on (a pod already bound keeps its place). The real node's kubelet keeps
        an extended resource written into the Node's capacity and follows it in its allocatable;
        both are written here so that the scheduler sees it at once."""
        client = self.client()
        try:
            status = {"status": {"capacity": resources, "allocatable": resources}}
            client.patch(f"/api/v1/nodes/{node}/status", status, MERGE)
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
        if self.managers is not None:
            self.managers.stop()
        if self.control is not None:
            self.control.stop()
        for node in reversed(self.nodes):
            node.stop()  # after the control plane: the first one's teardown ends what is left


def found_version(control: ControlPlane) -> str:
    client = control.client()
    try:
        return str(client.get("/version")["gitVersion"])
    finally:
        client.close()
