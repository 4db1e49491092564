"""One pod on the node: its sandbox (a network namespace, volumes, the token), its containers as
processes, restarted by the pod's restartPolicy with the kubelet's back-off, probed, stopped
gracefully on deletion, and its status written as the kubelet writes it (a strategic merge patch
of the kubelet's own conditions and the container statuses; the phase computed as
pkg/kubelet/kubelet_pods.go getPhase does).

Init containers run first, one at a time; then every container at once. What the kubelet does and
this node does not: images, resource limits and eviction, security contexts (processes run as the
node's user), lifecycle hooks, ephemeral containers, in-place resize, and volumes other than
emptyDir, secret, configMap, downwardAPI and projected. README has the list.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from ..client import STRATEGIC, ApiError, Client
from .env import ConfigError, Mounts, container_env, service_env, termination_message
from .images import Image, Images, ImageUnknown, NotFound
from .logs import LogWriter, plain_text
from .network import Network
from .probes import Outcome, Prober, run_probe
from .volumes import Volumes

log = logging.getLogger("localcluster.node")

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


class ProcessNode(Protocol):
    """What a pod's worker needs of the node that runs it (node.py's ProcessNode): the node hands
    itself to each worker, so this module does not import node.py (which imports this one)."""

    client: Client
    root: Path
    images: Images
    api_host: str
    api_port: int
    host_ip: str
    network: Network | None
    mount_namespaces: bool
    protected: list[str]
    allocatable: dict[str, str]
    backoff_base: float
    stopping: bool
    running: threading.Event

    def finish_deletion(self, pod: dict[str, Any]) -> None: ...
    def record_process(self, worker: PodWorker, container: str, argv: list[str], pid: int) -> None: ...
    def pod_kubeconfig(self, worker: PodWorker, token_dir: Path) -> Path: ...
    def event(
        self, pod: dict[str, Any], type_: str, reason: str, message: str, field_path: str = ""
    ) -> None: ...


def host_paths(values: Any) -> list[str]:
    """Absolute paths named by these values (plain, or as file:// URIs)."""
    out = []
    for value in values:
        text = str(value).removeprefix("file://")
        if text.startswith("/"):
            out.append(text)
    return out


def hides(mount_path: str, needed: list[str]) -> bool:
    """Would a mount at `mount_path` cover one of the host paths the process needs?"""
    top = mount_path.rstrip("/") or "/"
    return any(p == top or p.startswith(top.rstrip("/") + "/") for p in needed)


MIN_GRACE = 2.0  # kuberuntime minimumGracePeriodInSeconds
MAX_BACKOFF = 300.0
BACKOFF_RESET = 600.0  # a container that ran this long starts its back-off again


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


@dataclass
class ContainerState:
    name: str
    image: str
    state: dict[str, Any] = field(default_factory=lambda: {"waiting": {"reason": "ContainerCreating"}})
    last_state: dict[str, Any] = field(default_factory=dict)
    restarts: int = 0
    ready: bool = False
    started: bool = False
    container_id: str = ""
    done: bool = False  # terminated and not to be restarted
    log_file: Path | None = None
    previous_log: Path | None = None

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = {
            "name": self.name,
            "image": self.image,
            "imageID": "",
            "ready": self.ready,
            "restartCount": self.restarts,
            "started": self.started,
            "state": self.state,
            "lastState": self.last_state,
        }
        if self.container_id:
            status["containerID"] = self.container_id
        return status


class PodWorker:
    """Runs one pod (a thread of its own) until its containers are done or it is deleted."""

    def __init__(self, node: ProcessNode, pod: dict[str, Any]) -> None:
        m = pod["metadata"]
        self.node = node
        self.pod = pod  # the latest the node saw (the informer updates it)
        self.namespace, self.name, self.uid = m["namespace"], m["name"], m["uid"]
        self.dir = node.root / "pods" / self.uid
        self.wake = threading.Event()
        self.started_at = now()
        self.pod_ip = node.host_ip
        self.network: Any = None
        self.volumes: Volumes | None = None
        self.mounts = Mounts()
        self.real_mounts: list[list[str]] = []
        self.containers: dict[str, ContainerState] = {}
        self.init_done = False
        self.initialized = False
        self.sandbox_ready = False
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._killing: dict[str, str] = {}  # container -> why it is being stopped
        self._lock = threading.RLock()
        self._written: dict[str, Any] | None = None
        self._warned: set[tuple[str, str]] = set()
        self.finished = threading.Event()
        self.thread = threading.Thread(
            target=self._main, name=f"pod-{self.namespace}-{self.name}", daemon=True
        )

    # --- what the node calls -------------------------------------------------------------------------

    def update(self, pod: dict[str, Any]) -> None:
        self.pod = pod
        self.wake.set()

    @property
    def deleting(self) -> bool:
        return bool(self.pod["metadata"].get("deletionTimestamp")) or self.node.stopping

    def log_file(self, container: str, previous: bool) -> tuple[Path | str, Callable[[], bool]]:
        """The log of the container's current (or previous) run, or why there is none (the
        kubelet's words, pkg/kubelet/kubelet_pods.go validateContainerLogStatus)."""
        state = self.containers.get(container)
        if state is None:
            return f'container "{container}" in pod "{self.name}" is not available', lambda: False
        if previous:
            if state.previous_log is None:
                return (
                    f'previous terminated container "{container}" in pod "{self.name}" not found',
                    lambda: False,
                )
            return state.previous_log, lambda: False
        if state.log_file is None:
            reason = (state.state.get("waiting") or {}).get("reason", "ContainerCreating")
            return (
                f'container "{container}" in pod "{self.name}" is waiting to start: {reason}',
                lambda: False,
            )
        return state.log_file, lambda: container in self.processes

    # --- the lifecycle ---------------------------------------------------------------------------

    def _main(self) -> None:
        try:
            self._run()
        except Exception:
            log.exception("pod %s/%s: the node failed to run it", self.namespace, self.name)
        finally:
            self._teardown()
            self.finished.set()

    def _run(self) -> None:
        spec = self.pod["spec"]
        inits, mains = spec.get("initContainers") or [], spec.get("containers") or []
        for c in [*inits, *mains]:
            self.containers[c["name"]] = ContainerState(c["name"], c.get("image", ""))
        self.write_status()
        if not self._sandbox():
            return self._abandon()
        for c in inits:
            loop = ContainerLoop(self, c, init=True)
            loop.run()
            if not self._init_succeeded(c["name"]):
                return self._finish()
        self.init_done = self.initialized = True
        self.write_status()
        loops = [ContainerLoop(self, c) for c in mains]
        threads = [
            threading.Thread(target=loop.run, daemon=True, name=f"ctr-{self.name}-{loop.name}")
            for loop in loops
        ]
        for t in threads:
            t.start()
        while any(t.is_alive() for t in threads):
            self._renew_tokens()
            self.wait(10.0)
        self._finish()

    def _init_succeeded(self, name: str) -> bool:
        terminated = self.containers[name].state.get("terminated") or {}
        return not self.deleting and terminated.get("exitCode") == 0

    def _sandbox(self) -> bool:
        """Network, volumes and mounts; False when the pod was deleted first."""
        if self.node.network is not None and not self.pod["spec"].get("hostNetwork"):
            self.network = self.node.network.attach(self.uid)
            self.pod_ip = self.network.ip
        while True:
            if self.deleting:
                return False
            try:
                self.volumes = Volumes(
                    self.node.client, self.pod, self.dir / "volumes", self.pod_ip, self.node.allocatable
                )
                self.volumes.prepare()
                break
            except ConfigError as exc:
                self.warn("FailedMount", str(exc))
                self.wait(2.0)
            except OSError as exc:  # the API server away while its Secrets and tokens are read
                log.warning("pod %s/%s: volumes not ready yet: %s", self.namespace, self.name, exc)
                self.wait(2.0)
        self.sandbox_ready = True
        self.write_status()
        return True

    def _renew_tokens(self) -> None:
        if self.volumes is not None and self.volumes.tokens:
            with contextlib.suppress(ConfigError):
                self.volumes.renew_tokens()

    def wait(self, seconds: float) -> None:
        self.wake.wait(seconds)
        self.wake.clear()

    def _abandon(self) -> None:
        """Deleted before its containers ran: they end as the kubelet reports them."""
        for state in self.containers.values():
            if "terminated" not in state.state:
                state.state = {
                    "terminated": {
                        "exitCode": 137,
                        "reason": "ContainerStatusUnknown",
                        "message": "The container could not be located when the pod was terminated",
                        "startedAt": None,
                        "finishedAt": now(),
                    }
                }
        self._finish()

    def _finish(self) -> None:
        # The final status is written again until the API server takes it (as the kubelet's status
        # manager does): a pod that ended while it was away would stay Running, its Job unfinished.
        while not self.write_status() and not self.node.stopping:
            self.wait(2.0)
        if self.pod["metadata"].get("deletionTimestamp") and not self.node.stopping:
            self.node.finish_deletion(self.pod)

    def _teardown(self) -> None:
        if self.network is not None and self.node.network is not None:
            self.node.network.detach(self.network)
            self.network = None

    # --- status ----------------------------------------------------------------------------------------

    def phase(self) -> str:
        """pkg/kubelet/kubelet_pods.go getPhase: a container that ended counts as stopped from the
        moment it ended (not once the node decided not to restart it), so a pod never goes back
        from Running to Pending."""
        spec = self.pod["spec"]
        policy = spec.get("restartPolicy", "Always")
        mains = [self.containers[c["name"]] for c in spec.get("containers") or []]
        if not self.init_done:
            failed_init = any(
                (s.state.get("terminated") or {}).get("exitCode", 0) != 0 and s.done
                for n, s in self.containers.items()
                if n in {c["name"] for c in spec.get("initContainers") or []}
            )
            return "Failed" if failed_init and (policy == "Never" or self.deleting) else "Pending"
        succeeded = all((s.state.get("terminated") or {}).get("exitCode") == 0 for s in mains)
        if self.deleting and all(s.done for s in mains):
            # terminal: never Pending or Running (generateAPIPodStatus), even if a container never
            # started (deleted while the node held it)
            return "Succeeded" if succeeded else "Failed"
        stopped = [s for s in mains if "terminated" in s.state or "terminated" in s.last_state]
        if any("running" not in s.state and s not in stopped for s in mains):
            return "Pending"  # one has not started yet
        if any("running" in s.state for s in mains):
            return "Running"
        if policy == "Always":
            return "Running"
        if succeeded:
            return "Succeeded"
        return "Failed" if policy == "Never" else "Running"

    def _conditions(self, phase: str) -> list[dict[str, Any]]:
        mains = [self.containers[c["name"]] for c in self.pod["spec"].get("containers") or []]
        all_ready = bool(mains) and all(s.ready for s in mains)
        if all_ready:
            ready: dict[str, Any] = {"status": "True"}
        elif phase in ("Succeeded", "Failed"):
            ready = {"status": "False", "reason": "PodCompleted" if phase == "Succeeded" else "PodFailed"}
        else:
            unready = ", ".join(s.name for s in mains if not s.ready)
            ready = {
                "status": "False",
                "reason": "ContainersNotReady",
                "message": f"containers with unready status: [{unready}]",
            }
        sandbox = self.sandbox_ready and phase not in ("Succeeded", "Failed")
        own = [
            {"type": "PodReadyToStartContainers", "status": "True" if sandbox else "False"},
            {
                "type": "Initialized",
                "status": "True"
                if self.initialized or not self.pod["spec"].get("initContainers")
                else "False",
            },
            {"type": "Ready", **ready},
            {"type": "ContainersReady", **ready},
        ]
        before = {c.get("type"): c for c in (self.pod.get("status") or {}).get("conditions") or []}
        out = []
        for cond in own:
            old = before.get(cond["type"])
            same = old is not None and old.get("status") == cond["status"]
            out.append(
                {
                    "reason": None,  # conditions merge by type: a field dropped must be nulled
                    "message": None,
                    **cond,
                    "lastProbeTime": None,
                    "lastTransitionTime": old.get("lastTransitionTime") if same and old else now(),
                }
            )
        return out

    def write_status(self) -> bool:
        """Write the pod's status where it changed; False when the API server did not take it."""
        with self._lock:
            phase = self.phase()
            inits = {c["name"] for c in self.pod["spec"].get("initContainers") or []}
            status: dict[str, Any] = {
                "phase": phase,
                "conditions": self._conditions(phase),
                "hostIP": self.node.host_ip,
                "hostIPs": [{"ip": self.node.host_ip}],
                "startTime": (self.pod.get("status") or {}).get("startTime") or self.started_at,
                "containerStatuses": [s.status() for n, s in self.containers.items() if n not in inits],
            }
            if inits:
                status["initContainerStatuses"] = [self.containers[n].status() for n in inits]
            if self.sandbox_ready:
                status["podIP"] = self.pod_ip
                status["podIPs"] = [{"ip": self.pod_ip}]
            comparable = {
                **status,
                "conditions": [
                    {k: v for k, v in c.items() if k != "lastTransitionTime"} for c in status["conditions"]
                ],
            }
            if comparable == self._written:
                return True
            body = {"metadata": {"uid": self.uid}, "status": status}
            try:
                answer = self.node.client.patch(
                    f"/api/v1/namespaces/{self.namespace}/pods/{self.name}/status", body, STRATEGIC
                )
                self.pod = answer
                self._written = comparable
                return True
            except ApiError as exc:
                if exc.code not in (404, 409, 422):
                    log.warning("pod %s/%s: status not written: %s", self.namespace, self.name, exc)
                    return False
                return True
            except OSError as exc:  # the API server restarting
                log.warning("pod %s/%s: status not written: %s", self.namespace, self.name, exc)
                return False

    # --- events ------------------------------------------------------------------------------------

    def event(self, type_: str, reason: str, message: str, container: str = "") -> None:
        self.node.event(
            self.pod, type_, reason, message, f"spec.containers{{{container}}}" if container else ""
        )

    def warn(self, reason: str, message: str, container: str = "") -> None:
        if (reason, message) not in self._warned:  # once per distinct problem
            self._warned.add((reason, message))
            self.event("Warning", reason, message, container)

    # --- stopping containers --------------------------------------------------------------------------

    def grace(self) -> float:
        if self.node.stopping:
            return MIN_GRACE
        m, spec = self.pod["metadata"], self.pod.get("spec") or {}
        value = m.get("deletionGracePeriodSeconds")
        if value is None:
            value = spec.get("terminationGracePeriodSeconds", 30)
        return max(MIN_GRACE, float(value))


class ContainerLoop:
    """One container: configure, start, watch, restart as the pod's restartPolicy says."""

    def __init__(self, worker: PodWorker, container: dict[str, Any], init: bool = False) -> None:
        self.w = worker
        self.c = container
        self.name = container["name"]
        self.init = init
        self.state = worker.containers[self.name]
        self.dir = worker.dir / "containers" / self.name
        self.kill_reason = ""

    @property
    def node(self) -> ProcessNode:
        return self.w.node

    def run(self) -> None:
        backoff = self.node.backoff_base
        while not self.node.running.is_set() and not self.w.deleting:  # hold()
            self.w.wait(0.5)
        while not self.w.deleting:
            image = self._image()
            if image is None:
                return self._never_started()
            try:
                env, argv, cwd, message_file = self._configure(image)
            except ConfigError as exc:
                self._set({"waiting": {"reason": "CreateContainerConfigError", "message": str(exc)}})
                self.w.warn("Failed", f"Error: {exc}", self.name)
                self.w.wait(2.0)
                continue
            except OSError as exc:  # the API server away while its ConfigMaps or Secrets are read
                log.warning(
                    "pod %s/%s: %s not started yet: %s", self.w.namespace, self.w.name, self.name, exc
                )
                self.w.wait(2.0)
                continue
            except NotFound as exc:
                self._start_error(str(exc))
                code, ran = 128, 0.0
            else:
                code, ran = self._execute(env, argv, cwd, message_file)
            if self.w.deleting:
                break
            restart = self._restart(code)
            if not restart:
                break
            backoff = self.node.backoff_base if ran >= BACKOFF_RESET else backoff
            self.state.restarts += 1
            self.state.last_state = self.state.state
            message = (
                f"back-off {backoff:.0f}s restarting failed container={self.name} "
                f"pod={self.w.name}_{self.w.namespace}({self.w.uid})"
            )
            self._set({"waiting": {"reason": "CrashLoopBackOff", "message": message}})
            self.w.event("Warning", "BackOff", "Back-off restarting failed container " + self.name, self.name)
            deadline = time.monotonic() + backoff
            while time.monotonic() < deadline and not self.w.deleting:
                self.w.wait(min(1.0, deadline - time.monotonic()))
            backoff = min(MAX_BACKOFF, backoff * 2)
        self.state.done = True
        self.w.write_status()

    def _restart(self, code: int) -> bool:
        if self.init:
            return code != 0 and self.w.pod["spec"].get("restartPolicy", "Always") != "Never"
        policy = self.w.pod["spec"].get("restartPolicy", "Always")
        return policy == "Always" or (policy == "OnFailure" and code != 0)

    def _set(self, state: dict[str, Any], ready: bool | None = None) -> None:
        self.state.state = state
        self.state.started = "running" in state and self.state.started
        if ready is not None:
            self.state.ready = ready
        if "running" not in state:
            self.state.ready = False
        self.w.write_status()

    def _image(self) -> Image | None:
        while not self.w.deleting:
            try:
                return self.node.images.get(self.c.get("image", ""))
            except ImageUnknown as exc:
                reason = (
                    "ImagePullBackOff"
                    if self.state.state.get("waiting", {}).get("reason") == "ErrImagePull"
                    else "ErrImagePull"
                )
                self._set({"waiting": {"reason": reason, "message": str(exc)}})
                self.w.warn("Failed", str(exc), self.name)
                self.w.wait(5.0)
        return None

    def _never_started(self) -> None:
        self.state.done = True

    def _start_error(self, text: str) -> None:
        stamp = now()
        self.state.state = {
            "terminated": {
                "exitCode": 128,
                "reason": "StartError",
                "message": text,
                "startedAt": stamp,
                "finishedAt": stamp,
            }
        }
        self.w.warn("Failed", f"Error: {text}", self.name)
        self.w.write_status()

    # --- configuration ------------------------------------------------------------------------------

    def _configure(self, image: Image) -> tuple[dict[str, str], list[str], str, Path]:
        w, node = self.w, self.node
        assert w.volumes is not None
        self.dir.mkdir(parents=True, exist_ok=True)
        message_file = self.dir / f"termination-log-{self.state.restarts}"
        message_file.touch()
        services = service_env(node.api_host, node.api_port)
        declared = container_env(
            w.pod,
            self.c,
            secrets=lambda ns, n: self._lookup("secrets", ns, n),
            configmaps=lambda ns, n: self._lookup("configmaps", ns, n),
            pod_ip=w.pod_ip,
            services=services,
            allocatable=node.allocatable,
        )
        # What the process needs of this machine's file system may not be hidden by a mount.
        needed = [*node.protected, *host_paths(declared.values()), *host_paths(image.env.values())]
        mounts, real = Mounts(), []
        message_path = self.c.get("terminationMessagePath") or "/dev/termination-log"
        for mount in self.c.get("volumeMounts") or []:
            base = w.volumes.paths.get(mount["name"])
            if base is None:
                raise ConfigError(f'unable to find volume "{mount["name"]}"')
            host = base / mount["subPath"] if mount.get("subPath") else base
            path = mount["mountPath"]
            if node.mount_namespaces and not hides(path, needed):
                real.append([str(host), path, "file" if host.is_file() else "dir"])
            else:
                mounts.add(path, host)
        if node.mount_namespaces and not hides(message_path, needed):
            real.append([str(message_file), message_path, "file"])
        else:
            mounts.add(message_path, message_file)
        root_dir = self.dir / "root"
        root_dir.mkdir(exist_ok=True)
        env = {
            "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            **image.env,
            "HOSTNAME": w.name,
        }
        env = {k: mounts.rewrite(v) for k, v in env.items()}
        env.update({k: mounts.rewrite(v) for k, v in declared.items()})
        env["PATH"] = ":".join(image.path_map.get(d, d) for d in env["PATH"].split(":"))
        if not node.mount_namespaces:
            env.update(self._fallback_env(image, w, message_file))
        if "TMPDIR" not in env and (tmp := mounts.host("/tmp")):  # noqa: S108 - the container's /tmp
            env["TMPDIR"] = tmp
        workdir = self.c.get("workingDir") or image.workdir
        cwd = mounts.host(workdir) or (
            workdir if os.path.isdir(workdir) and workdir != "/" else str(root_dir)
        )
        argv = node.images.argv(
            image,
            {
                **self.c,
                "args": [mounts.rewrite(str(a)) for a in self.c.get("args") or []]
                if self.c.get("args") is not None
                else None,
            },
        )
        self.real_mounts = real
        return env, argv, cwd, message_file

    def _fallback_env(self, image: Image, w: PodWorker, message_file: Path) -> dict[str, str]:
        token_dir = next((Path(h) for h, p, _ in self._sa_mounts(w)), None)
        values = {
            "token_file": str(token_dir / "token") if token_dir else "",
            "ca_file": str(token_dir / "ca.crt") if token_dir else "",
            "api_url": f"https://{self.node.api_host}:{self.node.api_port}",
            "termination_log": str(message_file),
            "kubeconfig": str(self.node.pod_kubeconfig(w, token_dir)) if token_dir else "",
        }
        return {k: v.format(**values) for k, v in image.fallback_env.items()}

    def _sa_mounts(self, w: PodWorker) -> list[tuple[str, str, str]]:
        assert w.volumes is not None
        out = []
        for mount in self.c.get("volumeMounts") or []:
            if mount["mountPath"] == SA_DIR:
                out.append((str(w.volumes.paths[mount["name"]]), SA_DIR, "dir"))
        return out

    def _lookup(self, resource: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self.node.client.get_or_none(f"/api/v1/namespaces/{namespace}/{resource}/{name}")  # type: ignore[no-any-return]
        except ApiError as exc:
            raise ConfigError(f"failed to sync {resource[:-1]} cache: {exc}") from None

    # --- running ------------------------------------------------------------------------------------

    def _execute(
        self, env: dict[str, str], argv: list[str], cwd: str, message_file: Path
    ) -> tuple[int, float]:
        w, node = self.w, self.node
        run = self.state.restarts
        log_file = w.dir / "logs" / self.name / f"{run}.log"
        spec_file = self.dir / f"start-{run}.json"
        sandboxed = w.network is not None or (node.mount_namespaces and self.real_mounts)
        if sandboxed:
            spec = {
                "netns": str(w.network.path) if w.network is not None else None,
                "mounts": self.real_mounts if node.mount_namespaces else [],
                "argv": argv,
                "env": env,
                "cwd": cwd,
            }
            fd = os.open(spec_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(spec, f)
            command = [sys.executable, "-m", "localcluster.node.enter", str(spec_file)]
            launch_env = {
                "PATH": os.environ.get("PATH", ""),
                "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
            }
        else:
            command, launch_env = argv, env
        writer = LogWriter(log_file)
        try:
            proc = subprocess.Popen(  # noqa: S603 - the node's own launcher, by design
                command,
                env=launch_env,
                cwd=cwd if not sandboxed else None,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except OSError as exc:
            writer.close()
            self._start_error(f'exec: "{argv[0]}": {exc.strerror}')
            return 128, 0.0
        assert proc.stdout is not None and proc.stderr is not None
        writer.follow(proc.stdout, "stdout")
        writer.follow(proc.stderr, "stderr")
        self.state.previous_log, self.state.log_file = self.state.log_file, log_file
        started_at, began = now(), time.monotonic()
        cid = f"localcluster://{proc.pid}"
        self.state.container_id = cid
        node.record_process(w, self.name, argv, proc.pid)
        w.processes[self.name] = proc
        self.w.event(
            "Normal",
            "Pulled",
            f'Container image "{self.c.get("image", "")}" already present on machine',
            self.name,
        )
        self.w.event("Normal", "Created", f"Created container: {self.name}", self.name)
        self.w.event("Normal", "Started", f"Started container {self.name}", self.name)
        probes = self._probes()
        startup = "startupProbe" not in self.c
        self.state.started = startup
        self._set({"running": {"startedAt": started_at}}, ready="readinessProbe" not in self.c)
        self.state.started = startup
        self.w.write_status()
        for p in probes:
            p.start()
        try:
            self._watch(proc)
        finally:  # probes never outlive their container, even when the API server is gone
            for p in probes:
                p.stop()
        writer.close()
        w.processes.pop(self.name, None)
        spec_file.unlink(missing_ok=True)
        code = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
        reason = "Completed" if code == 0 else "Error"
        terminated: dict[str, Any] = {
            "exitCode": code,
            "reason": reason,
            "startedAt": started_at,
            "finishedAt": now(),
            "containerID": cid,
        }
        policy = self.c.get("terminationMessagePolicy", "File")
        text = plain_text(log_file)
        tail_file = self.dir / "log-tail"
        tail_file.write_bytes(text[-1 << 20 :])
        if message := termination_message(message_file, tail_file, code, policy, reason):
            terminated["message"] = message
        self.kill_reason = ""
        self._set({"terminated": terminated}, ready=False)
        return code, time.monotonic() - began

    def _probe_grace(self) -> float:
        for kind in ("livenessProbe", "startupProbe"):
            value = (self.c.get(kind) or {}).get("terminationGracePeriodSeconds")
            if value is not None:
                return max(MIN_GRACE, float(value))
        return self.w.grace()

    def _watch(self, proc: subprocess.Popen[bytes]) -> None:
        """Until the process ends: SIGTERM when the pod is deleted or a probe kills it, SIGKILL
        after the grace period."""
        kill_at: float | None = None
        while proc.poll() is None:
            if kill_at is None and (self.w.deleting or self.kill_reason):
                grace = self.w.grace() if self.w.deleting else self._probe_grace()
                if not self.node.stopping:
                    why = self.kill_reason or f"Stopping container {self.name}"
                    self.w.event("Normal", "Killing", why, self.name)
                _signal(proc, signal.SIGTERM)
                kill_at = time.monotonic() + grace
            elif kill_at is not None and time.monotonic() >= kill_at:
                _signal(proc, signal.SIGKILL)
                kill_at = float("inf")
            self.w.wait(0.2)

    def _probes(self) -> list[Prober]:
        probes = []

        def check(kind: str) -> Callable[[], Outcome]:
            return lambda: run_probe(self.c[kind], self.c, self.w.pod_ip, self._exec)

        def changed(kind: str, result: bool | None, message: str) -> None:
            if result is None or result is False:
                label = {
                    "livenessProbe": "Liveness",
                    "readinessProbe": "Readiness",
                    "startupProbe": "Startup",
                }[kind]
                self.w.event("Warning", "Unhealthy", f"{label} probe failed: {message}", self.name)
            if kind == "readinessProbe" and result is not None and "running" in self.state.state:
                self.state.ready = result
                self.w.write_status()
            elif kind == "startupProbe" and result is True:
                self.state.started = True
                self.w.write_status()
            elif kind in ("livenessProbe", "startupProbe") and result is False:
                label = "liveness" if kind == "livenessProbe" else "startup"
                self.kill_reason = f"Container {self.name} failed {label} probe, will be restarted"
                self.w.wake.set()

        for kind in ("startupProbe", "livenessProbe", "readinessProbe"):
            if kind in self.c:
                probes.append(
                    Prober(kind, self.c[kind], check(kind), changed, started=lambda: self.state.started)
                )
        return probes

    def _exec(self, command: list[str], timeout: float) -> int:
        """An exec probe: the command in the container's network namespace, with its environment."""
        w = self.w
        prefix = ["ip", "netns", "exec", w.network.netns] if w.network is not None else []
        proc = subprocess.run(  # noqa: S603 - the probe's command, as the kubelet runs it
            [*prefix, *command], capture_output=True, timeout=timeout, check=False
        )
        return proc.returncode


def _signal(proc: subprocess.Popen[bytes], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)
