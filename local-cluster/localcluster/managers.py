"""The controllers (controllers.py: JobSet, Kueue, Kubeflow Trainer, KEDA) as processes of a cluster,
beside kube-controller-manager, each as its release installs it, but outside the node:

- Its install (controllers/bin/NAME.json, rendered from its module's own kustomize folders) is
  applied as it is: its Namespace, ServiceAccount, RBAC and CRDs. Not its Deployment, Services,
  Secret or APIServices: the manager runs here as a process, under its ServiceAccount's token, so
  it meets the RBAC its release grants it and no more.
- Its configuration is the one its release ships (the manager's ConfigMap), with what a process
  outside the node needs changed: its webhook server on the host's address with a certificate
  the cluster's CA issued, the webhook configurations and CRD conversion webhooks pointing there
  by URL (the release's point at a Service in front of its pod), health on loopback, metrics off,
  leader election off (one replica), its own certificate management off (it makes certificates
  for that Service's name), ports free on this machine. `config` merges more over it (a test's
  `waitForPodsReady`).
- Kueue's integrations are what contentgen runs (batch/job, JobSet, TrainJob where Trainer runs),
  and only their webhooks and Kueue's own are installed: Kueue answers the others' as no-ops, and
  they would put every Pod's, Deployment's and StatefulSet's creation behind this process. Its
  visibility API server (an aggregated API) is off.
- Kueue reads its metrics certificate from a fixed path, /etc/kueue/metrics/certs, whenever its
  own certificate management is off (cmd/kueue/main.go), metrics served or not: it runs in a mount
  namespace of its own whose /etc is the machine's with that folder added (an overlay on a tmpfs),
  as its container would have it; nothing on the machine is written.
- KEDA's operator takes flags and environment, not a configuration file: the release's
  (config/manager/manager.yaml) less leader election and its own certificate rotation, health on
  loopback, metrics off, every namespace watched, its own namespace named (a pod reads it from its
  ServiceAccount's mount). Its gRPC metrics service serves on loopback with a certificate from the
  cluster's CA, which it needs to start.
- KEDA's metrics apiserver (`keda-adapter`, with `keda`): the aggregated API
  `external.metrics.k8s.io` the HorizontalPodAutoscaler that KEDA makes reads to take a workload
  from one pod to more (KEDA's operator takes it from zero to one itself). Its release's RBAC is
  applied, and once it answers its APIService, pointing at a Service without a selector whose
  Endpoints are this process (the API server routes to an aggregated API's endpoints:
  controlplane.py); it authenticates the API server's requests by the front proxy's CA, asks the
  API server whether the caller may read, and asks the operator's gRPC service for the values,
  with a certificate from the cluster's CA for the host's address and the Service's name.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import logging
import os
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from . import kubeconfig, processes
from .client import ApiError, Client
from .controllers import CONTROLLERS, Controller, binary
from .controlplane import ControlPlane
from .ports import free_port

log = logging.getLogger("localcluster")

# What the manager process is, not what it manages: left out of its install.
NOT_INSTALLED = ("Deployment", "Service", "Secret", "APIService")
# Installed once the manager answers: objects its own webhooks admit.
AFTER_WEBHOOKS = ("ClusterTrainingRuntime", "TrainingRuntime")
WEBHOOK_KINDS = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
TOKEN_SECONDS = 365 * 86400

# Kueue's job frameworks contentgen runs, and the API group each one's webhooks are for
KUEUE_FRAMEWORKS = {
    "batch/job": "batch",
    "jobset.x-k8s.io/jobset": "jobset.x-k8s.io",
    "trainer.kubeflow.org/trainjob": "trainer.kubeflow.org",
}

# Run in a mount namespace of its own: /etc as the machine's, with $2's tls.crt and tls.key at
# /etc/$3 (an overlay whose upper layer is a tmpfs mounted on the empty folder $1), then exec $4...
WITH_ETC_FILES = r"""set -e
scratch=$1 certs=$2 place=$3
shift 3
mount -t tmpfs -o size=1m,mode=0755 localcluster "$scratch"
mkdir -p "$scratch/upper/$place" "$scratch/work"
cp "$certs/tls.crt" "$certs/tls.key" "$scratch/upper/$place/"
mount -t overlay localcluster -o "lowerdir=/etc,upperdir=$scratch/upper,workdir=$scratch/work" /etc
exec "$@"
"""


def merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` merged into `base`, mappings key by key, anything else replaced."""
    out = copy.deepcopy(dict(base))
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def manager_config(docs: list[dict[str, Any]]) -> dict[str, Any]:
    """The configuration the release gives its manager (its ConfigMap's one file)."""
    for doc in docs:
        if doc.get("kind") == "ConfigMap":
            for key, text in (doc.get("data") or {}).items():
                if key.endswith("controller_manager_config.yaml"):
                    return yaml.safe_load(text) or {}
    return {}


def _client_config(url: str, ca_pem: bytes) -> dict[str, str]:
    return {"url": url, "caBundle": base64.b64encode(ca_pem).decode()}


def _keep_webhook(hook: Mapping[str, Any], groups: frozenset[str] | None) -> bool:
    if groups is None:
        return True
    return all(set(rule.get("apiGroups") or []) <= groups for rule in hook.get("rules") or [])


def install_objects(
    docs: list[dict[str, Any]], base_url: str, ca_pem: bytes, groups: frozenset[str] | None = None
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(what is installed before the manager starts, its webhook configurations, what its webhooks
    must admit), from its release's install. Webhooks and conversion webhooks point at `base_url`
    with the cluster's CA; with `groups`, only the webhooks whose rules are all for those API groups
    are kept."""
    first: list[dict[str, Any]] = []
    hooks: list[dict[str, Any]] = []
    later: list[dict[str, Any]] = []
    for doc in map(copy.deepcopy, docs):
        kind = doc.get("kind")
        if kind in NOT_INSTALLED or (kind == "ConfigMap" and manager_config([doc])):
            continue
        if kind in WEBHOOK_KINDS:
            kept = [h for h in doc.get("webhooks") or [] if _keep_webhook(h, groups)]
            for hook in kept:
                path = (hook["clientConfig"].get("service") or {}).get("path", "/")
                hook["clientConfig"] = _client_config(base_url + path, ca_pem)
            if kept:
                hooks.append({**doc, "webhooks": kept})
            continue
        if kind == "CustomResourceDefinition":
            conversion = doc["spec"].get("conversion") or {}
            if conversion.get("strategy") == "Webhook":
                path = conversion["webhook"]["clientConfig"].get("service", {}).get("path", "/convert")
                conversion["webhook"]["clientConfig"] = _client_config(base_url + path, ca_pem)
        (later if kind in AFTER_WEBHOOKS else first).append(doc)
    return first, hooks, later


def _service_account(docs: list[dict[str, Any]]) -> tuple[str, str]:
    (account,) = [d["metadata"] for d in docs if d.get("kind") == "ServiceAccount"]
    return account["namespace"], account["name"]


@dataclass
class Manager:
    """One controller's manager process."""

    controller: Controller
    directory: Path
    health_port: int = 0
    ready_url: str = ""  # where it says it is ready, over TLS (the metrics apiserver's), if not health_port
    ca_file: Path | None = None  # what that URL's certificate is checked against
    process: subprocess.Popen[bytes] | None = None
    hooks: list[dict[str, Any]] = field(default_factory=list)
    later: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.controller.name

    @property
    def log_file(self) -> Path:
        return self.directory / f"{self.name}.log"

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ready(self) -> bool:
        url = self.ready_url or f"http://127.0.0.1:{self.health_port}/readyz"
        try:
            verify: str | bool = str(self.ca_file) if self.ca_file is not None else True
            return httpx.get(url, timeout=1.0, verify=verify).status_code == 200
        except httpx.HTTPError:
            return False

    def tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        return ""


class Managers:
    """The controllers `names` of the cluster whose control plane is `control`, their webhooks
    served on `host` (where the API server reaches this machine); `config[name]` merged over each
    one's configuration."""

    def __init__(
        self,
        root: Path,
        control: ControlPlane,
        names: tuple[str, ...],
        host: str,
        config: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self.root, self.control, self.host = root, control, host
        self.config = dict(config or {})
        unknown = set(names) - set(CONTROLLERS)
        if unknown:
            known = ", ".join(CONTROLLERS)
            raise ValueError(f"no such controller: {', '.join(sorted(unknown))} (known: {known})")
        self.managers = [Manager(CONTROLLERS[n], root / n) for n in CONTROLLERS if n in names]
        if "keda-adapter" in names and "keda" not in names:
            raise ValueError("keda-adapter (KEDA's metrics apiserver) asks KEDA's operator: run keda too")
        self.keda_grpc = 0  # KEDA's operator's gRPC metrics service, which its metrics apiserver asks

    def pids(self) -> list[int]:
        return [m.process.pid for m in self.managers if m.process is not None]

    def start(self) -> None:
        """Install each one's API and RBAC, and start its manager (not waited for: `wait`)."""
        client = self.control.client()
        try:
            for manager in self.managers:
                self._start(client, manager)
        finally:
            client.close()

    def _start(self, client: Client, manager: Manager) -> None:
        controller, directory = manager.controller, manager.directory
        exe = binary(controller.name)
        directory.mkdir(parents=True, exist_ok=True)
        docs = json.loads(controller.manifests.read_text())
        port, manager.health_port = free_port(self.host), free_port()
        frameworks = self._kueue_frameworks() if controller.name == "kueue" else []
        groups = (
            frozenset({"kueue.x-k8s.io", *(KUEUE_FRAMEWORKS[f] for f in frameworks)}) if frameworks else None
        )
        first, manager.hooks, manager.later = install_objects(
            docs, f"https://{self.host}:{port}", self.control.ca.pem, groups
        )
        own = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": controller.namespace}}
        _apply_all(client, [own, *first])  # Trainer's base leaves its Namespace to an overlay
        for crd in (d for d in first if d["kind"] == "CustomResourceDefinition"):
            _established(client, crd["metadata"]["name"])
        namespace, account = _service_account(docs)
        config_file = kubeconfig.write(
            directory / "kubeconfig",
            server=self.control.url,
            ca_pem=self.control.ca.pem,
            user=account,
            token=_token(client, namespace, account),
        )
        certs = self._certificates(controller, directory / "certs")
        env = {**os.environ, "KUBECONFIG": str(config_file)}
        if controller.name == "keda":  # flags and environment: no configuration file
            self.keda_grpc = free_port()
            argv = [str(exe), *keda_flags(manager.health_port, self.keda_grpc, certs)]
            env.update(WATCH_NAMESPACE="", POD_NAMESPACE=namespace, KEDA_CLUSTER_OBJECT_NAMESPACE=namespace)
        elif controller.name == "keda-adapter":
            argv = [str(exe), *adapter_flags(self.host, port, self.keda_grpc, certs, config_file)]
            env.update(WATCH_NAMESPACE="", POD_NAMESPACE=namespace, KEDA_CLUSTER_OBJECT_NAMESPACE=namespace)
            manager.ready_url, manager.ca_file = f"https://{self.host}:{port}/readyz", certs / "ca.crt"
            manager.later += adapter_service(docs, self.host, port, self.control.ca.pem)
        else:
            settings = merge(
                manager_config(docs), self._settings(controller, namespace, port, manager.health_port, certs)
            )
            if frameworks:
                settings["integrations"] = {**settings.get("integrations", {}), "frameworks": frameworks}
            settings = merge(settings, self.config.get(controller.name, {}))
            settings_file = directory / "config.yaml"
            settings_file.write_text(yaml.safe_dump(settings))
            argv = [str(exe), f"--config={settings_file}"]
        if controller.name == "kueue":
            scratch = directory / "etc"
            scratch.mkdir(exist_ok=True)
            argv = [
                "unshare", "--mount", "--propagation", "private", "--",
                "sh", "-c", WITH_ETC_FILES, "sh", str(scratch), str(certs), "kueue/metrics/certs", *argv,
            ]  # fmt: skip
        if controller.name == "trainer":  # its webhook's certificates: controller-runtime's default place
            env["TMPDIR"] = str(_temp_dir_with(directory / "tmp", "k8s-webhook-server/serving-certs", certs))
        with manager.log_file.open("ab") as out:
            manager.process = subprocess.Popen(  # noqa: S603 - our own binaries
                argv,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )

    def _kueue_frameworks(self) -> list[str]:
        """Kueue's integrations: TrainJob's only where Trainer runs."""
        trainer = any(m.name == "trainer" for m in self.managers)
        return [f for f in KUEUE_FRAMEWORKS if trainer or not f.startswith("trainer.")]

    def _certificates(self, controller: Controller, certs: Path) -> Path:
        """Its webhook server's certificate for the host's address, from the cluster's CA, as
        controller-runtime reads it (tls.crt, tls.key)."""
        certs.mkdir(exist_ok=True)
        adapter = controller.name == "keda-adapter"
        serving = self.control.ca.issue(
            f"{controller.name}-webhook-{self.host}",
            common_name=controller.name,
            # the API server reaches an APIService's server by its Service's name; KEDA's metrics
            # apiserver is a client of the operator's gRPC service too
            hosts=(self.host, *((f"{ADAPTER_SERVICE}.{controller.namespace}.svc",) if adapter else ())),
            server=True,
            client=adapter,
        )
        (certs / "tls.crt").write_bytes(serving.cert.read_bytes())
        (certs / "tls.key").write_bytes(serving.key.read_bytes())
        (certs / "tls.key").chmod(0o600)
        (certs / "ca.crt").write_bytes(self.control.ca.pem)  # KEDA's gRPC server trusts its clients by it
        return certs

    def _settings(
        self, controller: Controller, namespace: str, port: int, health: int, certs: Path
    ) -> dict[str, Any]:
        """What differs from its release's configuration, running here (see the module's doc)."""
        webhook: dict[str, Any] = {"host": self.host, "port": port, "certDir": str(certs)}
        settings: dict[str, Any] = {
            "health": {"healthProbeBindAddress": f"127.0.0.1:{health}"},
            "metrics": {"bindAddress": "0"},
            "leaderElection": {"leaderElect": False},
        }
        if controller.name == "kueue":
            return merge(
                settings,
                {
                    "namespace": namespace,
                    "webhook": webhook,
                    "internalCertManagement": {"enable": False},
                    "featureGates": {"VisibilityOnDemand": False},
                },
            )
        if controller.name == "jobset":
            return merge(settings, {"webhook": webhook, "internalCertManagement": {"enable": False}})
        # trainer: no certDir (see TMPDIR above); its TrainJob status server on a port of its own
        del webhook["certDir"]
        return merge(
            settings,
            {"webhook": webhook, "certManagement": {"enable": False}, "statusServer": {"port": free_port()}},
        )

    def wait(self, deadline: float, node_check: Callable[[], None] = lambda: None) -> None:
        """Until every manager answers ready; then its webhooks and what they admit are installed."""
        client = self.control.client()
        try:
            for manager in self.managers:
                while not manager.ready():
                    if not manager.running():
                        raise RuntimeError(f"{manager.name} exited:\n{manager.tail()}")
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{manager.name} was not ready in time:\n{manager.tail()}")
                    node_check()
                    time.sleep(0.1)
                _apply_all(client, manager.hooks)
            for manager in self.managers:
                _apply_all(client, manager.later)
        finally:
            client.close()

    def check(self) -> list[str]:
        """Managers that have exited."""
        return [m.name for m in self.managers if m.process is not None and not m.running()]

    def stop(self) -> None:
        for manager in self.managers:
            processes.stop(manager.process, 10.0)


def keda_flags(health: int, grpc: int, certs: Path) -> list[str]:
    """KEDA's operator's command line: its release's less what a process outside the node has not."""
    return [
        "--zap-log-level=info",
        "--zap-encoder=console",
        "--zap-time-encoding=rfc3339",
        "--leader-elect=false",
        "--enable-cert-rotation=false",
        f"--health-probe-bind-address=127.0.0.1:{health}",
        "--metrics-bind-address=0",
        f"--metrics-service-bind-address=127.0.0.1:{grpc}",
        f"--cert-dir={certs}",
    ]


ADAPTER_SERVICE = "keda-metrics-apiserver"  # the Service its release's APIService names


def adapter_flags(host: str, port: int, grpc: int, certs: Path, config: Path) -> list[str]:
    """KEDA's metrics apiserver's command line: its release's, served on the host's address with a
    certificate from the cluster's CA, its clients' (delegated authentication and authorization,
    the lister) through its ServiceAccount's kubeconfig, asking the operator's gRPC service on
    loopback (checked as the host's address, which its certificate names)."""
    return [
        f"--secure-port={port}",
        f"--bind-address={host}",
        f"--cert-dir={certs}",
        f"--tls-cert-file={certs / 'tls.crt'}",
        f"--tls-private-key-file={certs / 'tls.key'}",
        f"--authentication-kubeconfig={config}",
        f"--authorization-kubeconfig={config}",
        f"--lister-kubeconfig={config}",
        f"--metrics-service-address=127.0.0.1:{grpc}",
        f"--metrics-service-grpc-authority={host}",
        f"--port={free_port()}",  # its own Prometheus metrics, on loopback's free port
        "--zap-log-level=info",
        "--zap-encoder=console",
    ]


def adapter_service(docs: list[dict[str, Any]], host: str, port: int, ca_pem: bytes) -> list[dict[str, Any]]:
    """What puts KEDA's metrics apiserver behind the API server once it answers: its release's
    APIService, its Service without a selector and the Endpoints of this process (the API server
    routes an aggregated API to its Service's endpoints: controlplane.py), the CA its certificate
    is checked against."""
    (api,) = [copy.deepcopy(d) for d in docs if d.get("kind") == "APIService"]
    (service,) = [copy.deepcopy(d) for d in docs if d.get("kind") == "Service"]
    namespace = service["metadata"]["namespace"]
    assert service["metadata"]["name"] == api["spec"]["service"]["name"] == ADAPTER_SERVICE
    service["spec"] = {"ports": [{"name": "https", "port": 443, "targetPort": port}]}
    endpoints = {
        "apiVersion": "v1",
        "kind": "Endpoints",
        "metadata": {"name": ADAPTER_SERVICE, "namespace": namespace},
        "subsets": [{"addresses": [{"ip": host}], "ports": [{"name": "https", "port": port}]}],
    }
    api["spec"].pop("insecureSkipTLSVerify", None)
    api["spec"]["service"]["port"] = 443
    api["spec"]["caBundle"] = base64.b64encode(ca_pem).decode()
    return [service, endpoints, api]


def _apply_all(client: Client, docs: list[dict[str, Any]]) -> None:
    for doc in docs:
        for attempt in range(50):
            try:
                client.apply(doc)
                break
            except ApiError as exc:  # a namespace just made, a CRD not yet served, a webhook not yet in force
                if exc.code not in (404, 409, 500) or attempt == 49:
                    raise
                time.sleep(0.2)


def _established(client: Client, name: str, timeout: float = 60.0) -> None:
    """Until the CRD is served: a manager started before watches nothing of its kind."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        crd = client.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
        conditions = (crd.get("status") or {}).get("conditions") or []
        if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
            return
        time.sleep(0.1)
    raise RuntimeError(f"the CRD {name} was not established in {timeout:.0f} s")


def _token(client: Client, namespace: str, account: str) -> str:
    answer = client.create(
        f"/api/v1/namespaces/{namespace}/serviceaccounts/{account}/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": TOKEN_SECONDS},
        },
    )
    return str(answer["status"]["token"])


def _temp_dir_with(tmp: Path, place: str, target: Path) -> Path:
    """A temporary folder for a process ($TMPDIR) in which `place` is `target`."""
    link = tmp / place
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(target)
    return tmp
