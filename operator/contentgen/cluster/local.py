"""`contentgen local-cluster`: a cluster in a box. The control plane (TLS, RBAC, admission), its
controllers and a local node that runs every Job's pod as a `contentgen worker` process, the
project's CRDs and the chart's RBAC, and the real operator as its own process under its own
ServiceAccount (so the chart's RBAC is enforced on it), with the store and catalog under DIR.
`DIR/kubeconfig` (admin, TLS, token) is written once all of it is ready.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from contentgen.api.crd import rendered_crds

from .kubelet import ApiAccess, LocalNode
from .manager import ControllerManager
from .server import ADMIN, LocalControlPlane

log = logging.getLogger("contentgen.local-cluster")

OPERATOR_NAMESPACE = "contentgen"
OPERATOR_ACCOUNT = "contentgen-operator"
CHART_RBAC = Path(__file__).with_name("chart-rbac.yaml")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Options:
    directory: Path
    offline: bool = False
    port: int = 0
    max_running_jobs_per_namespace: int = 4
    job_backoff_seconds: float = (
        10.0  # the Job controller's pod-recreation backoff base (10 s as in Kubernetes)
    )
    operator: bool = True  # run the operator process (tests may run their own)
    operator_env: dict[str, str] = field(default_factory=dict)
    audit_log: Path | None = None  # every authorization decision, as JSON lines


class LocalCluster:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.dir = options.directory.resolve()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.control = LocalControlPlane(self.dir / "control-plane", port=options.port)
        self.plane = self.control.plane
        self.controllers = ControllerManager(
            self.plane, ca_pem=self.control.ca_pem.decode(), backoff_base=options.job_backoff_seconds
        )
        self.node: LocalNode | None = None
        self.operator: subprocess.Popen[bytes] | None = None
        self.operator_log = self.dir / "operator.log"
        self.health_port = 0
        self.restarts = 0
        self._stopping = threading.Event()
        self._supervisor: threading.Thread | None = None
        if options.audit_log is not None:
            self.plane.audit = options.audit_log.open("a", buffering=1)

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> LocalCluster:
        self.control.start()
        self.controllers.start()
        self.install()
        self.node = LocalNode(
            self.plane,
            self.dir / "node",
            token_issuer=lambda namespace, account, _pod: self.control.token_for(namespace, account),
            access=ApiAccess(self.control.url, self.control.ca_file, ca_file_env="CONTENTGEN_KUBE_CA_FILE"),
            env={"PATH": os.environ.get("PATH", ""), "LANG": "C.UTF-8", "HOME": "/tmp"},  # noqa: S108 - the image's
        )
        self.node.start()
        if self.options.operator:
            self.start_operator()
        self.control.write_kubeconfig(self.dir / "kubeconfig")
        return self

    def stop(self) -> None:
        self._stopping.set()
        self.stop_operator()
        if self.node is not None:
            self.node.stop()
        self.controllers.stop()
        self.control.stop()
        self.plane.close_audit()

    def install(self) -> None:
        """The CRDs, as `kubectl apply` would make them, then the chart's RBAC."""
        for text in rendered_crds().values():
            self.control.apply(yaml.safe_load(text))
        for doc in yaml.safe_load_all(CHART_RBAC.read_text()):
            if doc:
                self.control.apply(doc)

    # --- the operator ---------------------------------------------------------------------------

    def operator_environment(self) -> dict[str, str]:
        kubeconfig = self.dir / "operator.kubeconfig"
        token = self.control.token_for(OPERATOR_NAMESPACE, OPERATOR_ACCOUNT)
        self.control.write_kubeconfig(kubeconfig, token=token, user=OPERATOR_ACCOUNT)
        self.health_port = free_port()
        env = {
            "PATH": os.environ.get("PATH", ""),
            "HOME": str(self.dir),
            "LANG": "C.UTF-8",
            "KUBECONFIG": str(kubeconfig),
            "HOSTNAME": "contentgen-operator-local",
            "POD_NAMESPACE": OPERATOR_NAMESPACE,
            "CONTENTGEN_STORE": (self.dir / "store").as_uri(),
            "CONTENTGEN_MONGODB_URI": (self.dir / "catalog").as_uri(),
            "CONTENTGEN_ALLOW_PRIVATE_SOURCES": "true",  # sources on loopback are this cluster's own
            "CONTENTGEN_OFFLINE": "true" if self.options.offline else "false",
            "CONTENTGEN_MAX_RUNNING_JOBS_PER_NAMESPACE": str(self.options.max_running_jobs_per_namespace),
            "CONTENTGEN_HEALTH_PORT": str(self.health_port),
            "CONTENTGEN_METRICS_PORT": "0",
            "CONTENTGEN_LOG_FORMAT": "plain",
            "CONTENTGEN_WORKER_IMAGE": "contentgen-worker:local",
        }
        # CONTENTGEN_* settings in local-cluster's own environment configure its operator too
        # (e.g. CONTENTGEN_FAL_KEY_SECRET__NAME to use a Secret with a fal key).
        env.update({k: v for k, v in os.environ.items() if k.startswith("CONTENTGEN_") and k not in env})
        env.update(self.options.operator_env)
        return env

    def start_operator(self) -> None:
        """Start the operator and keep it running: like a Deployment's pod, it is restarted when it
        exits (a crash, a SIGKILL), as the same pod (the same name, so it takes its Lease back)."""
        self._env = self.operator_environment()
        self._spawn_operator()
        self.wait_operator_ready()
        self._supervisor = threading.Thread(target=self._supervise, name="operator-supervisor", daemon=True)
        self._supervisor.start()

    def _spawn_operator(self) -> None:
        with self.operator_log.open("ab") as out:
            self.operator = subprocess.Popen(
                [sys.executable, "-m", "contentgen", "operator"],
                env=self._env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        (self.dir / "operator.pid").write_text(f"{self.operator.pid}\n")

    def _supervise(self) -> None:
        while not self._stopping.is_set():
            process = self.operator
            if process is not None and process.poll() is not None and not self._stopping.is_set():
                log.warning("the operator exited (%s); restarting it", process.returncode)
                self.restarts += 1
                self._spawn_operator()
            self._stopping.wait(0.5)

    def wait_operator_ready(self, timeout: float = 120.0) -> None:
        import urllib.request

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.operator is not None and self.operator.poll() is not None:
                raise RuntimeError(
                    f"the operator exited ({self.operator.returncode}); see {self.operator_log}"
                )
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.health_port}/healthz", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"the operator did not become ready in {timeout:.0f} s; see {self.operator_log}")

    def stop_operator(self) -> None:
        self._stopping.set()
        if self.operator is not None and self.operator.poll() is None:
            self.operator.send_signal(signal.SIGTERM)
            try:
                self.operator.wait(30)
            except subprocess.TimeoutExpired:
                self.operator.kill()
                self.operator.wait(10)

    def admin(self) -> Any:
        return ADMIN

    def run(self) -> None:
        """In the foreground until SIGINT or SIGTERM."""
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        while not stop.wait(1.0):
            pass
