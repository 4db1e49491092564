"""etcd, kube-apiserver, kube-controller-manager and kube-scheduler as local processes, each with
its own log under DIR/logs, talking over TLS with certificates from one CA (pki.py).

What is configured and why:
- etcd listens on loopback only, without TLS (only the API server talks to it), and does not fsync
  (a cluster for laptops and tests, not for keeping data through a power cut).
- kube-apiserver: Node and RBAC authorization, the default admission plugins plus NodeRestriction
  and OwnerReferencesPermissionEnforcement, ServiceAccount tokens signed by the cluster's key,
  the kubelet client certificate for `kubectl logs`, and an audit log of every request (metadata
  level: user, verb, URI with its query, response code) when one is asked for.
- kube-controller-manager runs every default controller, each under its own ServiceAccount
  (--use-service-account-credentials), so controllers meet RBAC as on a real cluster.
- kube-scheduler with its default profile.
Client rate limits of the controllers are raised: on a local cluster they would otherwise be what
limits how fast Jobs get pods, and the operator's benchmark measures the operator.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from . import kubeconfig, processes
from .binaries import Binaries
from .client import ApiError, Client
from .pki import Authority
from .ports import free_port

log = logging.getLogger("localcluster")

SERVICE_CIDR = "10.96.0.0/16"
SERVICE_IP = "10.96.0.1"
ISSUER = "https://kubernetes.default.svc.cluster.local"
API_NAMES = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)

# Every request at Metadata level (who, what, the URI with its query, the answer); the noisy
# read-only traffic of the control plane's own components is left out.
AUDIT_POLICY = {
    "apiVersion": "audit.k8s.io/v1",
    "kind": "Policy",
    "omitStages": ["RequestReceived"],
    "rules": [
        {"level": "None", "users": ["system:apiserver"]},
        {"level": "None", "nonResourceURLs": ["/healthz*", "/readyz*", "/livez*", "/version"]},
        {"level": "Metadata"},
    ],
}


@dataclass
class Component:
    name: str
    argv: list[str]
    log_file: Path
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_file.open("ab") as out:
            self.process = subprocess.Popen(  # noqa: S603 - our own binaries
                self.argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout: float = 20.0) -> None:
        processes.stop(self.process, timeout)

    def tail(self, lines: int = 30) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        return ""


@dataclass
class ControlPlane:
    """The control plane in `root`. `host` is where the API server listens (and what it
    advertises); `port` 0 picks a free one."""

    root: Path
    binaries: Binaries
    host: str = "127.0.0.1"
    port: int = 0
    audit_log: Path | None = None
    service_cidr: str = SERVICE_CIDR  # the real node gives each cluster its own (layout.py)
    extra_apiserver_args: list[str] = field(default_factory=list)
    components: dict[str, Component] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.root = self.root.resolve()
        self.logs = self.root / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.ca = Authority(self.root / "pki")
        self.port = self.port or free_port(self.host)
        self.url = f"https://{self.host}:{self.port}"
        self.admin_kubeconfig = self.root / "admin.kubeconfig"
        self.service_ip = str(ipaddress.ip_network(self.service_cidr)[1])  # the `kubernetes` Service's
        hosts = tuple(dict.fromkeys((self.host, "127.0.0.1", self.service_ip, *API_NAMES)))
        # named by its address: a directory started again on another one (the real node's subnet
        # is the first free one at each start) gets a certificate for it
        name = f"apiserver-{self.host}"
        self.serving = self.ca.issue(name, common_name="kube-apiserver", hosts=hosts, server=True)
        self.admin = self.ca.issue(
            "admin", common_name="localcluster-admin", organisations=("system:masters",), client=True
        )
        self.kubelet_client = self.ca.issue(
            "apiserver-kubelet-client", common_name="kube-apiserver-kubelet-client", client=True
        )
        self.sa_key = self.ca.signing_key("sa")
        # The aggregation layer's CA: nothing is aggregated, but the components read it at start
        # (kube-system/extension-apiserver-authentication) and complain without it.
        self.front_proxy_ca = Authority(self.root / "pki" / "front-proxy")
        self.front_proxy = self.front_proxy_ca.issue(
            "front-proxy-client", common_name="front-proxy-client", client=True
        )

    # --- the components ----------------------------------------------------------------------------

    def _kubeconfig_for(self, name: str, user: str, groups: tuple[str, ...] = ()) -> Path:
        pair = self.ca.issue(name, common_name=user, organisations=groups, client=True)
        return kubeconfig.write(
            self.root / f"{name}.kubeconfig",
            server=self.url,
            ca_pem=self.ca.pem,
            user=user,
            cert=pair.cert,
            key=pair.key,
        )

    def _etcd(self) -> Component:
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        argv = [
            str(self.binaries.etcd),
            "--name=local",
            f"--data-dir={self.root / 'etcd'}",
            f"--listen-client-urls={self.etcd_url}",
            f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-advertise-peer-urls=http://127.0.0.1:{peer}",
            f"--initial-cluster=local=http://127.0.0.1:{peer}",
            "--unsafe-no-fsync=true",
            "--log-level=warn",
            "--quota-backend-bytes=8589934592",
        ]
        return Component("etcd", argv, self.logs / "etcd.log")

    def _apiserver(self) -> Component:
        pki = self.ca.dir
        argv = [
            str(self.binaries.apiserver),
            f"--etcd-servers={self.etcd_url}",
            f"--bind-address={self.host}",
            f"--advertise-address={self.host}",
            f"--secure-port={self.port}",
            f"--tls-cert-file={self.serving.cert}",
            f"--tls-private-key-file={self.serving.key}",
            f"--client-ca-file={self.ca.cert_file}",
            f"--service-account-issuer={ISSUER}",
            f"--service-account-key-file={self.sa_key.cert}",
            f"--service-account-signing-key-file={self.sa_key.key}",
            f"--service-cluster-ip-range={self.service_cidr}",
            "--authorization-mode=Node,RBAC",
            "--enable-admission-plugins=NodeRestriction,OwnerReferencesPermissionEnforcement",
            f"--kubelet-client-certificate={self.kubelet_client.cert}",
            f"--kubelet-client-key={self.kubelet_client.key}",
            f"--kubelet-certificate-authority={self.ca.cert_file}",
            "--kubelet-preferred-address-types=InternalIP",
            "--allow-privileged=false",
            "--profiling=false",
            # On SIGTERM, open watches end within 2 s instead of being drained (by default the server
            # waits for every watch to end, up to its 30-60 s timeout): one API server and no load
            # balancer to move clients to another, so a client reconnects either way.
            "--shutdown-watch-termination-grace-period=2s",
            f"--cert-dir={pki}",
            f"--requestheader-client-ca-file={self.front_proxy_ca.cert_file}",
            "--requestheader-allowed-names=front-proxy-client",
            "--requestheader-username-headers=X-Remote-User",
            "--requestheader-group-headers=X-Remote-Group",
            "--requestheader-extra-headers-prefix=X-Remote-Extra-",
            f"--proxy-client-cert-file={self.front_proxy.cert}",
            f"--proxy-client-key-file={self.front_proxy.key}",
            # an aggregated API (KEDA's metrics apiserver, a process of this machine: managers.py) is
            # reached at its Service's endpoints, not at the Service's cluster IP, which only the
            # nodes' kube-proxy routes
            "--enable-aggregator-routing=true",
            *self.extra_apiserver_args,
        ]
        if self.audit_log is not None:
            policy = self.root / "audit-policy.yaml"
            policy.write_text(yaml.safe_dump(AUDIT_POLICY))
            argv += [
                f"--audit-policy-file={policy}",
                f"--audit-log-path={self.audit_log}",
                "--audit-log-format=json",
                "--audit-log-mode=blocking",
                "--audit-log-maxsize=0",
            ]
        return Component("kube-apiserver", argv, self.logs / "kube-apiserver.log")

    def _controller_manager(self, port: int) -> Component:
        config = self._kubeconfig_for("controller-manager", "system:kube-controller-manager")
        argv = [
            str(self.binaries.controller_manager),
            f"--kubeconfig={config}",
            f"--authentication-kubeconfig={config}",
            f"--authorization-kubeconfig={config}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={self.root / 'controller-manager'}",
            # its default, /usr/libexec/kubernetes/kubelet-plugins/volume/exec, would be made on the host
            f"--flex-volume-plugin-dir={self.root / 'volume-plugins'}",
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={self.sa_key.key}",
            f"--root-ca-file={self.ca.cert_file}",
            f"--cluster-signing-cert-file={self.ca.cert_file}",
            f"--cluster-signing-key-file={self.ca.key_file}",
            "--leader-elect=false",
            "--kube-api-qps=500",
            "--kube-api-burst=1000",
            "--concurrent-job-syncs=20",
            "--profiling=false",
        ]
        return Component("kube-controller-manager", argv, self.logs / "kube-controller-manager.log")

    def _scheduler(self, port: int) -> Component:
        config_file = self._kubeconfig_for("scheduler", "system:kube-scheduler")
        config = {
            "apiVersion": "kubescheduler.config.k8s.io/v1",
            "kind": "KubeSchedulerConfiguration",
            "clientConnection": {"kubeconfig": str(config_file), "qps": 500, "burst": 1000},
            "leaderElection": {"leaderElect": False},
        }
        path = self.root / "scheduler.yaml"
        path.write_text(yaml.safe_dump(config))
        argv = [
            str(self.binaries.scheduler),
            f"--config={path}",
            f"--authentication-kubeconfig={config_file}",
            f"--authorization-kubeconfig={config_file}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={self.root / 'scheduler'}",
        ]
        return Component("kube-scheduler", argv, self.logs / "kube-scheduler.log")

    # --- lifecycle ---------------------------------------------------------------------------------

    def client(self, **kw: object) -> Client:
        return Client(self.url, self.ca.cert_file, cert=self.admin.cert, key=self.admin.key, **kw)  # type: ignore[arg-type]

    def start(self, timeout: float = 60.0, *, controllers: bool = True) -> None:
        """etcd and kube-apiserver, then (unless controllers=False: an API server alone, as
        envtest runs it) kube-controller-manager and kube-scheduler."""
        deadline = time.monotonic() + timeout
        etcd = self.components["etcd"] = self._etcd()
        etcd.start()
        self._wait(etcd, deadline, self._etcd_healthy)
        self.start_apiserver(deadline)
        kubeconfig.write(
            self.admin_kubeconfig,
            server=self.url,
            ca_pem=self.ca.pem,
            user="admin",
            cert=self.admin.cert,
            key=self.admin.key,
        )
        if not controllers:
            return
        started = {make: self._serving(make) for make in (self._controller_manager, self._scheduler)}
        for make, (component, port) in started.items():
            while True:
                try:
                    self._wait(component, deadline, lambda port=port: _healthy(port))
                    break
                except RuntimeError:
                    # A free port can be taken by another cluster starting beside this one between
                    # our probe and its bind (make test at 04:00 on 11-29: kube-controller-manager
                    # exited on "address already in use" and the node's not-ready taint was never
                    # lifted): started again on another.
                    if "address already in use" not in component.tail(5) or time.monotonic() > deadline:
                        raise
                    log.warning("%s could not bind port %d; starting it on another", component.name, port)
                    component, port = self._serving(make)

    def _serving(self, make: Callable[[int], Component]) -> tuple[Component, int]:
        """A component that serves its health on a port of its own, started on a free one."""
        port = free_port()
        component = make(port)
        self.components[component.name] = component
        component.start()
        return component, port

    def start_apiserver(self, deadline: float | None = None) -> None:
        deadline = deadline or time.monotonic() + 120.0
        while True:
            apiserver = self.components["kube-apiserver"] = self._apiserver()
            apiserver.start()
            try:
                return self._wait(apiserver, deadline, self.ready)
            except RuntimeError:
                # Its port still held (a connection's, or the old process's socket not yet
                # released): started again, as a kubelet restarts a static pod that exited.
                bind = not apiserver.running() and "address already in use" in apiserver.tail(5)
                if not bind or time.monotonic() > deadline:
                    raise
                log.warning("kube-apiserver could not bind its port yet; starting it again")
                time.sleep(0.5)

    def restart_apiserver(self) -> None:
        """Stop kube-apiserver and start it again (every watch breaks; clients re-list)."""
        self.components["kube-apiserver"].stop(timeout=5.0)
        self.start_apiserver()

    def _etcd_healthy(self) -> bool:
        try:
            return httpx_get(f"{self.etcd_url}/health").get("health") == "true"
        except Exception:
            return False

    def ready(self) -> bool:
        try:
            client = self.client(timeout=5.0)
            try:
                return client.text("/readyz") == "ok"
            finally:
                client.close()
        except (ApiError, OSError, Exception):
            return False

    def _wait(self, component: Component, deadline: float, check: object) -> None:
        while time.monotonic() < deadline:
            if not component.running():
                raise RuntimeError(f"{component.name} exited:\n{component.tail()}")
            if check():  # type: ignore[operator]
                return
            time.sleep(0.1)
        raise RuntimeError(f"{component.name} was not ready in time:\n{component.tail()}")

    def stop(self) -> None:
        # kube-apiserver's graceful shutdown can linger for long after it stopped listening
        # (seen: 20 s): a few seconds, then it is killed, as a kubelet would after the grace period.
        for name in ("kube-scheduler", "kube-controller-manager", "kube-apiserver", "etcd"):
            if name in self.components:
                self.components[name].stop(timeout=5.0)

    def check(self) -> list[str]:
        """Components that have exited."""
        return [c.name for c in self.components.values() if not c.running()]


def _healthy(port: int) -> bool:
    """Whether a component's secure port on loopback answers /healthz (its serving certificate is
    its own self-signed one: the answer, not the certificate, is what is checked)."""
    import httpx

    try:
        return httpx.get(f"https://127.0.0.1:{port}/healthz", timeout=2.0, verify=False).text == "ok"  # noqa: S501
    except httpx.HTTPError:
        return False


def httpx_get(url: str) -> dict[str, object]:
    import httpx

    return httpx.get(url, timeout=2.0).json()  # type: ignore[no-any-return]


def environment_path() -> str:
    return os.environ.get("PATH", "")
