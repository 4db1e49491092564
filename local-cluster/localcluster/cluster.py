"""A whole local cluster in one directory: the control plane (controlplane.py) and one process node
(node/), started together, with manifests applied once it is up, and DIR/kubeconfig written last
(its appearance means "ready"). This package knows nothing of what it runs: the caller gives it
the images (entry points on this machine) and the manifests (CRDs, RBAC, Deployments, ...).

    cluster = LocalCluster(Options(Path("DIR"), images={...}, manifests=[...])).start()
    ... KUBECONFIG=DIR/kubeconfig kubectl get nodes ...
    cluster.stop()
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from . import binaries, kubeconfig
from .client import MERGE, ApiError, Client
from .controlplane import SERVICE_CIDR, ControlPlane
from .node import Images, Network, ProcessNode
from .node.images import Image
from .node.real import RealNode

log = logging.getLogger("localcluster")

NODE = "local"


@dataclass
class Options:
    directory: Path
    images: dict[str, Image] = field(default_factory=dict)
    manifests: list[dict[str, Any]] = field(default_factory=list)
    port: int = 0
    network: Literal["auto", "isolated", "host"] = "auto"
    audit_log: Path | None = None
    node_capacity: dict[str, str] | None = None
    # GPUs the node advertises (nvidia.com/gpu in its capacity), so the real scheduler places GPU
    # pods by them; the node runs their containers as any other (on this machine's CPU or GPU).
    # On the real node an extended resource written into the Node's status, as Kubernetes' docs
    # advertise one by hand ("Advertise Extended Resources for a Node"): no device plugin
    gpus: int = 0
    backoff_base: float = 10.0  # the kubelet's container restart back-off (10 s, doubling to 5 min)
    wait_for: list[tuple[str, str]] = field(default_factory=list)  # Deployments to be Available first
    # "process": the process node (images are entry points on this machine, `images`); "real":
    # a kubelet with containerd and runc (images from `image_archives`; `images` and
    # `node_capacity` are refused with it, `network` and `backoff_base` do not apply)
    node: Literal["process", "real"] = "process"
    # the real node's images: OCI or docker archives (`docker save`, `buildah push ...
    # docker-archive:`, `podman save`), imported into containerd at start; pods name them by the
    # references the archives carry, with imagePullPolicy IfNotPresent or Never
    image_archives: list[Path] = field(default_factory=list)


# How long start() waits at most for each stage (the control plane ready, the node schedulable):
# a hang guard, not a measure. Every wait ends at once when the process it waits on exits, saying
# why; on a loaded 2-core machine a start that works can take minutes (the control plane alone
# missed a 60 s deadline under the whole suite), so only a hang reaches this.
START_HANG_GUARD_S = 300.0

GPU_RESOURCE = "nvidia.com/gpu"
DEFAULT_CAPACITY = {"cpu": "64", "memory": "256Gi", "pods": "1000", "ephemeral-storage": "500Gi"}


def real_node_refusal(options: Options) -> str | None:
    """What the real node cannot do of what the options ask (one line), None when it can all."""
    if options.node != "real":
        return None
    if options.images:
        return (
            "Options.images: the real node runs images from archives (Options.image_archives), "
            "not entry points"
        )
    if options.node_capacity:
        return "Options.node_capacity: the real node's capacity is the machine's; use node='process'"
    return None


def node_capacity(options: Options) -> dict[str, str]:
    capacity = dict(options.node_capacity or DEFAULT_CAPACITY)
    if options.gpus:
        capacity[GPU_RESOURCE] = str(options.gpus)
    return capacity


class LocalCluster:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.dir = options.directory.resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.kubeconfig = self.dir / "kubeconfig"
        self.network: Network | None = None
        self.control: ControlPlane | None = None
        self.node: ProcessNode | None = None
        self.real: RealNode | None = None
        self.version = ""
        # seconds: the control plane to a ready API server; the node to schedulable (for the real
        # node, its network and reaper made before the control plane too)
        self.timings: dict[str, float] = {}

    @property
    def host_ip(self) -> str:
        """Where the API server listens and the pods can reach the host."""
        if self.real is not None:
            return self.real.layout.host_ip
        return self.network.host_ip if self.network is not None else "127.0.0.1"

    @property
    def isolated(self) -> bool:
        return self.network is not None

    def start(self, timeout: float = START_HANG_GUARD_S, *, announce: bool = True) -> LocalCluster:
        """Start everything; DIR/kubeconfig is written last (unless announce=False: the caller
        writes it with `write_kubeconfig(cluster.kubeconfig)` once its own parts are ready)."""
        self.kubeconfig.unlink(missing_ok=True)
        found = binaries.find()
        began = time.monotonic()
        if (refusal := real_node_refusal(self.options)) is not None:
            raise ValueError(refusal)
        if self.options.node == "real":
            self.real = RealNode(self.dir / "node", name=NODE, archives=self.options.image_archives)
            try:
                self.real.prepare()  # NodeUnavailable: one line saying what this machine lacks
            except BaseException:
                self.real.stop()
                raise
        elif self.options.network in ("auto", "isolated"):
            self.network = Network.create()
            if self.network is None and self.options.network == "isolated":
                raise RuntimeError(
                    "--network isolated needs root and iproute2 (ip netns); use --network host"
                )
        try:
            self.control = ControlPlane(
                self.dir / "control-plane",
                found,
                host=self.host_ip,
                port=self.options.port,
                audit_log=self.options.audit_log,
                service_cidr=self.real.layout.service_cidr if self.real is not None else SERVICE_CIDR,
            )
            prepared = time.monotonic()
            self.control.start(timeout)
            if self.real is not None:
                self.real.adopt([c.process.pid for c in self.control.components.values() if c.process])
            controlled = time.monotonic()
            self._start_node(timeout)
            deadline = time.monotonic() + timeout
            self._wait_schedulable(deadline)
            if self.real is not None and self.options.gpus:
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
        if self.real is not None:
            self.real.start(control, timeout)
            self.version = found_version(control)
            return
        ca = control.ca
        identity = ca.issue(
            f"node-{NODE}", common_name=f"system:node:{NODE}", organisations=("system:nodes",), client=True
        )
        serving = ca.issue(
            f"kubelet-{NODE}",
            common_name=f"system:node:{NODE}",
            organisations=("system:nodes",),
            hosts=(self.host_ip, NODE),
            server=True,
        )
        client = Client(
            control.url, ca.cert_file, cert=identity.cert, key=identity.key, user_agent="localcluster-node"
        )
        version = self.version = found_version(control)
        self.node = ProcessNode(
            client,
            self.dir / "node",
            name=NODE,
            images=Images(self.options.images),
            api_host=control.host,
            api_port=control.port,
            ca_file=ca.cert_file,
            serving=(serving.cert, serving.key),
            network=self.network,
            capacity=node_capacity(self.options),
            kubelet_version=version,
            backoff_base=self.options.backoff_base,
        )
        self.node.start()

    def _wait_schedulable(self, deadline: float) -> None:
        """Until the node controller has seen the node Ready and lifted its not-ready taint."""
        client = self.client()
        try:
            while time.monotonic() < deadline:
                if self.real is not None and (exited := self.real.check()):
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
            f"see its pods' logs in {self.dir}/node/pods"
        )

    def set_capacity(self, resources: dict[str, str]) -> None:
        """Change what the node advertises, e.g. `{"nvidia.com/gpu": "1"}`, the scheduler placing
        pods by it from then on (a pod already bound keeps its place). The real node's kubelet keeps
        an extended resource written into the Node's capacity and follows it in its allocatable;
        both are written here so that the scheduler sees it at once."""
        if self.real is None:
            assert self.node is not None
            self.node.set_capacity(resources)
            return
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
        if self.node is not None:
            self.node.stop()
        if self.control is not None:
            self.control.stop()
        if self.real is not None:  # after the control plane: its teardown ends what is left
            self.real.stop()
        if self.network is not None:
            self.network.destroy()


def found_version(control: ControlPlane) -> str:
    client = control.client()
    try:
        return str(client.get("/version")["gitVersion"])
    finally:
        client.close()
