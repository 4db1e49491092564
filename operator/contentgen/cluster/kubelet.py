"""The kubelet of one local node ("local"): it binds pending pods to itself and runs each pod's
container as a local process, reporting through the API as a kubelet does.

What a pod gets, as on a node:
- its environment resolved like the kubelet's (value with `$(VAR)` expansion, envFrom,
  secretKeyRef/configMapKeyRef with `optional`, fieldRef); a missing Secret, ConfigMap or key
  keeps the pod Pending with the container waiting in CreateContainerConfigError (the kubelet's
  message) until it appears; the `kubernetes` service variables pointing at the API server;
- its volumes as per-pod host directories (emptyDir, secret, configMap, and the projected
  ServiceAccount token), and its container paths (mount paths, the termination-message path,
  the working directory) mapped to them: environment values and arguments that are such paths
  are rewritten, since the process runs on the host;
- a ServiceAccount token (TokenRequest through the API, or a `token_issuer` hook) written to a
  file whose path goes to the process in `access.token_file_env`, with the API URL and CA file;
- a status as the kubelet writes it: Pending -> Running -> Succeeded/Failed, the conditions
  PodReadyToStartContainers/Initialized/ContainersReady/Ready (PodScheduled when bound),
  containerStatuses with waiting/running/terminated, exitCode, reason Completed/Error,
  startedAt/finishedAt, and the termination message (last 4096 bytes of the file, or
  FallbackToLogsOnError's log tail);
- on deletion SIGTERM to its process group, SIGKILL after the grace period (at least 2 s, the
  kubelet's minimum), the Failed phase, then the deletion finished (gracePeriodSeconds 0).

The container image is never pulled: the process is the project's own `contentgen` entry
point (`command`, injectable). Not enforced: resource limits, security contexts, probes,
container restarts (restartPolicy OnFailure/Always), image pull secrets, networking (processes
share the host's network). See tests/README.
"""

from __future__ import annotations

import contextlib
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
from typing import Any
from urllib.parse import urlsplit

from . import events, meta
from .errors import ApiError
from .jobpolicy import deleting
from .loop import MASTERS, Controller
from .podenv import ConfigError, Mounts, container_env, service_env, termination_message
from .store import Change, clone

log = logging.getLogger(__name__)

PODS, SECRETS, CONFIGMAPS, SERVICEACCOUNTS = (
    ("", "pods"),
    ("", "secrets"),
    ("", "configmaps"),
    ("", "serviceaccounts"),
)
SA_MOUNT = "/var/run/secrets/kubernetes.io/serviceaccount"
MIN_GRACE_SECONDS = 2.0  # kuberuntime minimumGracePeriodInSeconds
KUBELET_CONDITIONS = ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady")
LOCAL_IP = "127.0.0.1"


class StartError(Exception):
    """The container's process cannot be started (reason StartError, exit code 128)."""


@dataclass
class Process:
    """One container process the node started (tests read these)."""

    namespace: str
    pod: str
    uid: str
    container: str
    argv: list[str]
    pid: int
    started: float  # time.time()
    exited: float | None = None
    exit_code: int | None = None
    signals: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ApiAccess:
    """How a pod's process reaches the API server: the URL and CA file the node hands it, and
    the names of the variables that carry them (an empty name: not passed)."""

    url: str = ""
    ca_file: Path | None = None
    url_env: str = "CONTENTGEN_KUBE_API"
    token_file_env: str = "CONTENTGEN_KUBE_TOKEN_FILE"  # noqa: S105 - a variable name
    ca_file_env: str = ""


Command = Callable[[dict[str, Any], dict[str, Any]], list[str]]  # (pod, container) -> argv
TokenIssuer = Callable[[str, str, dict[str, Any]], str]  # (namespace, serviceaccount, pod) -> token


def contentgen_command(pod: dict[str, Any], container: dict[str, Any]) -> list[str]:
    """What the worker image runs: its entry point `contentgen` with the container's args (an
    explicit `command` must name `contentgen` too: nothing else is installed)."""
    exe = str(Path(sys.executable).parent / "contentgen")
    command = list(container.get("command") or [])
    if command and command[0] not in ("contentgen", "/usr/local/bin/contentgen"):
        raise StartError(f'exec: "{command[0]}": executable file not found in $PATH')
    return [exe, *command[1:], *(container.get("args") or [])]


class LocalNode(Controller):
    """The node. `root` holds each pod's directories (pods/<uid>/: volumes, serviceaccount,
    containers/<name>/termination-log, logs/<name>.log). `command` turns (pod, container) into
    the argv to run; `token_issuer` mints ServiceAccount tokens (default: the TokenRequest API);
    `access` is what pods are told about the API server; `env` stands for the image's
    environment (pod variables override it), `env_overrides` wins over the pod's variables;
    `termination_log_env` names the variable carrying the termination-message file's host path.
    `poll` bounds how long a pod waits before looking again (changes wake it at once)."""

    name = "kubelet"
    watches = (PODS, SECRETS, CONFIGMAPS, SERVICEACCOUNTS)
    resync_period = 10.0

    def __init__(
        self,
        cp: Any,
        root: Path,
        *,
        node_name: str = "local",
        user: Any = None,
        command: Command = contentgen_command,
        token_issuer: TokenIssuer | None = None,
        access: ApiAccess | None = None,
        env: dict[str, str] | None = None,
        env_overrides: dict[str, str] | None = None,
        termination_log_env: str = "CONTENTGEN_TERMINATION_LOG",
        poll: float = 0.2,
    ) -> None:
        from .apiserver import User

        super().__init__(cp, user or User(f"system:node:{node_name}", ("system:nodes", MASTERS)))
        self.root = Path(root)
        self.node_name = node_name
        self.command = command
        self.token_issuer = token_issuer
        self.access = access or ApiAccess()
        self.base_env = dict(env or {})
        self.env_overrides = dict(env_overrides or {})
        self.termination_log_env = termination_log_env
        self.poll = poll
        self.processes: list[Process] = []
        self._workers: dict[str, PodWorker] = {}  # pod uid -> worker
        self._done: set[str] = set()  # pod uids whose container ran (never run twice)
        self._lock = threading.Lock()
        self._running = threading.Event()
        self._running.set()
        cp.pod_logs = self.log_path  # the API server relays pods/log from the node

    # --- for tests and the HTTP front end -------------------------------------------------------

    def hold(self) -> None:
        """Pods keep starting but their processes wait (Pending, ContainerCreating)."""
        self._running.clear()

    def release(self) -> None:
        self._running.set()
        self._wake_all()

    def log_path(self, namespace: str, pod: str, container: str = "") -> Path | None:
        """The log of a pod's container (what `kubectl logs` would read), if it ran."""
        for process in reversed(self.processes):
            if (process.namespace, process.pod) == (namespace, pod) and container in ("", process.container):
                return self.root / "pods" / process.uid / "logs" / f"{process.container}.log"
        return None

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the node: its processes are killed (nothing more is reported to the API)."""
        super().stop(timeout)
        self._wake_all()
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.thread.join(timeout)

    # --- following pods ------------------------------------------------------------------------

    def observe(self, change: Change) -> None:
        m = change.obj["metadata"]
        if change.key == PODS:
            self.enqueue((m.get("namespace", ""), m["name"]))
        else:  # a Secret, ConfigMap or ServiceAccount: waiting containers look again
            self._wake_all(m.get("namespace", ""))

    def resync(self) -> None:
        with self.cp.store.lock:
            for pod in self.cp.store.items(PODS):
                self.enqueue((pod["metadata"]["namespace"], pod["metadata"]["name"]))

    def _wake_all(self, namespace: str | None = None) -> None:
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            if namespace is None or worker.namespace == namespace:
                worker.wake.set()

    def sync(self, key: tuple[str, str]) -> None:
        ns, name = key
        pod = self.read(*PODS, ns, name)
        with self._lock:
            for worker in self._workers.values():
                if (worker.namespace, worker.name) == key:
                    worker.wake.set()  # it sees the deletion (or that the pod is gone) itself
        if pod is None:
            return
        spec, uid = pod.get("spec") or {}, pod["metadata"]["uid"]
        if not spec.get("nodeName"):
            if spec.get("schedulerName", "default-scheduler") == "default-scheduler" and not deleting(pod):
                self._bind(pod)
            return
        if spec["nodeName"] != self.node_name:
            return
        with self._lock:
            if uid in self._workers:
                return
            if uid in self._done or (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                finished = True
            else:
                finished = False
                worker = PodWorker(self, pod)
                self._workers[uid] = worker
        if finished:
            if deleting(pod):
                self.finish_deletion(pod)
            return
        worker.thread.start()

    def _bind(self, pod: dict[str, Any]) -> None:
        """What the default scheduler's binder does: a Binding to this node, guarded by the pod's
        uid (the server sets spec.nodeName and PodScheduled)."""
        m = pod["metadata"]
        binding = {
            "apiVersion": "v1",
            "kind": "Binding",
            "metadata": {"name": m["name"], "namespace": m["namespace"], "uid": m["uid"]},
            "target": {"kind": "Node", "name": self.node_name},
        }
        try:
            self.call("create", self.type(*PODS), m["namespace"], m["name"], binding, subresource="binding")
        except ApiError as exc:
            if exc.code in (404, 409):  # gone, replaced, bound already or being deleted
                return
            raise
        events.record(
            self,
            pod,
            "Pod",
            "v1",
            "Normal",
            "Scheduled",
            f"Successfully assigned {m['namespace']}/{m['name']} to {self.node_name}",
            component="default-scheduler",
        )

    # --- writes shared with the pod workers ----------------------------------------------------

    def write_status(
        self, ns: str, name: str, uid: str, build: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> bool:
        """Read, change and write the pod's status (retrying on conflicts). False: pod gone."""
        for _ in range(20):
            current = self.read(*PODS, ns, name)
            if current is None or current["metadata"]["uid"] != uid:
                return False
            status = build(clone(current.get("status") or {}))
            if status == (current.get("status") or {}):
                return True
            body = {
                "metadata": {
                    "name": name,
                    "namespace": ns,
                    "resourceVersion": current["metadata"]["resourceVersion"],
                },
                "status": status,
            }
            try:
                self.call("update", self.type(*PODS), ns, name, body, subresource="status")
                return True
            except ApiError as exc:
                if exc.code == 404:
                    return False
                if exc.code != 409:
                    raise
        return False

    def finish_deletion(self, pod: dict[str, Any]) -> None:
        m = pod["metadata"]
        options = {"gracePeriodSeconds": 0, "preconditions": {"uid": m["uid"]}}
        try:
            self.call("delete", self.type(*PODS), m["namespace"], m["name"], options)
        except ApiError as exc:
            if exc.code not in (404, 409):
                raise

    def worker_done(self, worker: PodWorker) -> None:
        with self._lock:
            self._workers.pop(worker.uid, None)
            if worker.ran:
                self._done.add(worker.uid)


class PodWorker:
    """One pod on the node, in its own thread: prepare, (wait while held), configure, run, report."""

    def __init__(self, node: LocalNode, pod: dict[str, Any]) -> None:
        m = pod["metadata"]
        self.node = node
        self.namespace, self.name, self.uid = m["namespace"], m["name"], m["uid"]
        self.wake = threading.Event()
        self.dir = node.root / "pods" / self.uid
        self.ran = False
        self.started_at = meta.now()
        self._warned: set[tuple[str, str]] = set()
        self.thread = threading.Thread(
            target=self._main, name=f"pod-{self.namespace}-{self.name}", daemon=True
        )

    # --- the pod as the API has it ------------------------------------------------------------

    def pod(self) -> dict[str, Any] | None:
        pod = self.node.read(*PODS, self.namespace, self.name)
        return pod if pod is not None and pod["metadata"]["uid"] == self.uid else None

    def deleted(self, pod: dict[str, Any] | None) -> bool:
        return pod is None or deleting(pod) or self.node.stopping

    def pause(self) -> None:
        self.wake.wait(self.node.poll)
        self.wake.clear()

    # --- the lifecycle --------------------------------------------------------------------------

    def _main(self) -> None:
        try:
            self._run()
        except Exception:
            log.exception("kubelet: pod %s/%s failed", self.namespace, self.name)
        finally:
            self.node.worker_done(self)

    def _run(self) -> None:
        pod = self.pod()
        if pod is None:
            return
        containers = pod["spec"].get("containers") or []
        container = containers[0]
        self._report(pod, container, {"waiting": {"reason": "ContainerCreating"}}, sandbox=False)
        if len(containers) != 1:  # not something this node can run: it says so and waits
            message = f"the local node runs pods of one container; this one has {len(containers)}"
            self._report(
                pod,
                container,
                {"waiting": {"reason": "CreateContainerError", "message": message}},
                sandbox=False,
            )
            self._warn(pod, "Failed", f"Error: {message}")
            while not self.deleted(pod):
                self.pause()
                pod = self.pod()
            return self._terminate_unstarted(pod, container)
        while True:  # the sandbox: volumes and the ServiceAccount token
            pod = self.pod()
            if pod is None or self.deleted(pod):
                return self._terminate_unstarted(pod, container)
            try:
                mounts, access_env = self._prepare(pod, container)
                break
            except ConfigError as exc:
                self._warn(pod, "FailedMount", str(exc))
                self.pause()
        while not self.node._running.is_set():  # hold()
            pod = self.pod()
            if self.deleted(pod):
                return self._terminate_unstarted(pod, container)
            self.pause()
        while True:  # the container's configuration
            pod = self.pod()
            if pod is None or self.deleted(pod):
                return self._terminate_unstarted(pod, container)
            try:
                env = self._environment(pod, container, mounts, access_env)
                break
            except ConfigError as exc:
                waiting = {"waiting": {"reason": "CreateContainerConfigError", "message": str(exc)}}
                self._report(pod, container, waiting, sandbox=True)
                self._warn(pod, "Failed", f"Error: {exc}")
                self.pause()
        self._execute(pod, container, mounts, env)

    def _execute(
        self, pod: dict[str, Any], container: dict[str, Any], mounts: Mounts, env: dict[str, str]
    ) -> None:
        name = container["name"]
        message_file = self.dir / "containers" / name / "termination-log"
        log_file = self.dir / "logs" / f"{name}.log"
        args = [mounts.rewrite(str(a)) for a in container.get("args") or []]
        try:
            argv = self.node.command(pod, {**container, "args": args})
            workdir = (
                mounts.rewrite(container["workingDir"])
                if container.get("workingDir")
                else str(self.dir / "root")
            )
            Path(workdir).mkdir(parents=True, exist_ok=True)
            with log_file.open("ab") as out:
                proc = subprocess.Popen(  # noqa: S603 - the node's own command, by design
                    argv,
                    env=env,
                    cwd=workdir,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
        except (StartError, OSError) as exc:
            self.ran = True
            text = str(exc) if isinstance(exc, StartError) else f'exec: "{argv[0]}": {exc.strerror}'
            now = meta.now()
            terminated = {
                "exitCode": 128,
                "reason": "StartError",
                "message": text,
                "startedAt": now,
                "finishedAt": now,
            }
            self._warn(pod, "Failed", f"Error: {text}")
            return self._finish(container, {"terminated": terminated}, "Failed")
        self.ran = True
        process = Process(self.namespace, self.name, self.uid, name, argv, proc.pid, time.time())
        self.node.processes.append(process)
        started = meta.now()
        cid = f"local://{proc.pid}"
        self._event(pod, "Normal", "Created", f"Created container: {name}", name)
        self._event(pod, "Normal", "Started", f"Started container {name}", name)
        self._report(
            pod, container, {"running": {"startedAt": started}}, sandbox=True, ready=True, container_id=cid
        )
        kill_at: float | None = None
        while proc.poll() is None:
            current = self.pod()
            if kill_at is None and self.deleted(current):
                grace = (
                    _grace(current) if current is not None and not self.node.stopping else MIN_GRACE_SECONDS
                )
                if current is not None and not self.node.stopping:
                    self._event(current, "Normal", "Killing", f"Stopping container {name}", name)
                _signal(proc, signal.SIGTERM, process)
                kill_at = time.monotonic() + grace
            elif kill_at is not None and time.monotonic() >= kill_at and "SIGKILL" not in process.signals:
                _signal(proc, signal.SIGKILL, process)
            self.pause()
        code = proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
        process.exited, process.exit_code = time.time(), code
        reason = "Completed" if code == 0 else "Error"
        terminated = {
            "exitCode": code,
            "reason": reason,
            "startedAt": started,
            "finishedAt": meta.now(),
            "containerID": cid,
        }
        policy = container.get("terminationMessagePolicy", "File")
        if message := termination_message(message_file, log_file, code, policy, reason):
            terminated["message"] = message
        self._finish(
            container, {"terminated": terminated}, "Succeeded" if code == 0 else "Failed", container_id=cid
        )

    def _finish(
        self, container: dict[str, Any], state: dict[str, Any], phase: str, container_id: str = ""
    ) -> None:
        pod = self.pod()
        if pod is None or self.node.stopping:
            return
        self._report(pod, container, state, sandbox=False, phase=phase, container_id=container_id)
        pod = self.pod()
        if pod is not None and deleting(pod):
            self.node.finish_deletion(pod)

    def _terminate_unstarted(self, pod: dict[str, Any] | None, container: dict[str, Any]) -> None:
        """A pod deleted before its container ran ends Failed, as the kubelet reports it."""
        if pod is None or self.node.stopping:
            return
        now = meta.now()
        terminated = {
            "exitCode": 137,
            "reason": "ContainerStatusUnknown",
            "message": "The container could not be located when the pod was terminated",
            "startedAt": None,
            "finishedAt": now,
        }
        self._report(pod, container, {"terminated": terminated}, sandbox=False, phase="Failed")
        self.node.finish_deletion(pod)

    # --- the sandbox ----------------------------------------------------------------------------

    def _prepare(self, pod: dict[str, Any], container: dict[str, Any]) -> tuple[Mounts, dict[str, str]]:
        spec, ns = pod["spec"], self.namespace
        volumes = {v["name"]: v for v in spec.get("volumes") or []}
        host_volumes: dict[str, Path] = {}
        access_env: dict[str, str] = {}
        for name, volume in volumes.items():
            target = self.dir / "volumes" / name
            if "emptyDir" in volume:
                target.mkdir(parents=True, exist_ok=True)
            elif "secret" in volume or "configMap" in volume:
                self._write_volume(volume, target)
            elif "projected" in volume and _is_token_volume(volume):
                continue  # the ServiceAccount token, mounted below
            else:
                raise ConfigError(
                    f'MountVolume.SetUp failed for volume "{name}" : not a volume type the local node has'
                )
            host_volumes[name] = target
        mounts = Mounts()
        for mount in container.get("volumeMounts") or []:
            if mount["name"] in host_volumes:
                base = host_volumes[mount["name"]]
                mounts.add(mount["mountPath"], base / mount["subPath"] if mount.get("subPath") else base)
        message_file = self.dir / "containers" / container["name"] / "termination-log"
        message_file.parent.mkdir(parents=True, exist_ok=True)
        message_file.touch()
        (self.dir / "logs").mkdir(parents=True, exist_ok=True)
        mounts.add(container.get("terminationMessagePath") or "/dev/termination-log", message_file)
        if self.node.termination_log_env:
            access_env[self.node.termination_log_env] = str(message_file)
        access = self.node.access
        if access.url and access.url_env:
            access_env[access.url_env] = access.url
        if self._automount(pod):
            sa_dir = self.dir / "serviceaccount"
            sa_dir.mkdir(parents=True, exist_ok=True)
            (sa_dir / "token").write_text(self._token(pod))
            (sa_dir / "namespace").write_text(ns)
            if access.ca_file is not None:
                (sa_dir / "ca.crt").write_bytes(access.ca_file.read_bytes())
                if access.ca_file_env:
                    access_env[access.ca_file_env] = str(sa_dir / "ca.crt")
            mounts.add(SA_MOUNT, sa_dir)
            if access.token_file_env:
                access_env[access.token_file_env] = str(sa_dir / "token")
        return mounts, access_env

    def _write_volume(self, volume: dict[str, Any], target: Path) -> None:
        if "secret" in volume:
            source, kind = volume["secret"], "Secret"
            obj = self.node.read(*SECRETS, self.namespace, source.get("secretName", ""))
            data = {k: _b64(v) for k, v in ((obj or {}).get("data") or {}).items()}
            name = source.get("secretName", "")
        else:
            source, kind = volume["configMap"], "ConfigMap"
            obj = self.node.read(*CONFIGMAPS, self.namespace, source.get("name", ""))
            data = {k: str(v).encode() for k, v in ((obj or {}).get("data") or {}).items()}
            name = source.get("name", "")
        if obj is None and not source.get("optional"):
            raise ConfigError(
                f'MountVolume.SetUp failed for volume "{volume["name"]}" : {kind.lower()} "{name}" not found'
            )
        target.mkdir(parents=True, exist_ok=True)
        items = source.get("items") or [{"key": k, "path": k} for k in data]
        for item in items:
            if item["key"] in data:
                path = target / item["path"]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(data[item["key"]])

    def _automount(self, pod: dict[str, Any]) -> bool:
        spec = pod["spec"]
        if spec.get("automountServiceAccountToken") is not None:
            return bool(spec["automountServiceAccountToken"])
        account = self.node.read(
            *SERVICEACCOUNTS, self.namespace, spec.get("serviceAccountName") or "default"
        )
        return bool((account or {}).get("automountServiceAccountToken", True))

    def _token(self, pod: dict[str, Any]) -> str:
        account = pod["spec"].get("serviceAccountName") or "default"
        if self.node.token_issuer is not None:
            return self.node.token_issuer(self.namespace, account, pod)
        request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {
                "audiences": [],
                "expirationSeconds": 3607,
                "boundObjectRef": {"apiVersion": "v1", "kind": "Pod", "name": self.name, "uid": self.uid},
            },
        }
        try:
            response = self.node.call(
                "create",
                self.node.type(*SERVICEACCOUNTS),
                self.namespace,
                account,
                request,
                subresource="token",
            )
        except ApiError as exc:
            raise ConfigError(
                f'MountVolume.SetUp failed for volume "kube-api-access" : failed to fetch token: {exc}'
            ) from None
        return str(response.body["status"]["token"])

    def _environment(
        self, pod: dict[str, Any], container: dict[str, Any], mounts: Mounts, access_env: dict[str, str]
    ) -> dict[str, str]:
        services: dict[str, str] = {}
        if self.node.access.url:
            url = urlsplit(self.node.access.url)
            services = service_env(url.hostname or LOCAL_IP, url.port or 443)
        declared = container_env(
            pod,
            container,
            secrets=lambda ns, n: self.node.read(*SECRETS, ns, n),
            configmaps=lambda ns, n: self.node.read(*CONFIGMAPS, ns, n),
            pod_ip=LOCAL_IP,
            services=services,
        )
        env = {
            "PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "HOME": str(self.dir / "root"),
            **self.node.base_env,
            "HOSTNAME": self.name,
        }
        env.update({k: mounts.rewrite(v) for k, v in declared.items()})
        if "TMPDIR" not in env and (tmp := mounts.host("/tmp")):  # noqa: S108 - the container's /tmp
            env["TMPDIR"] = tmp
        env.update(self.node.env_overrides)
        env.update(access_env)
        return env

    # --- status and events ----------------------------------------------------------------------

    def _report(
        self,
        pod: dict[str, Any],
        container: dict[str, Any],
        state: dict[str, Any],
        *,
        sandbox: bool,
        ready: bool = False,
        phase: str = "",
        container_id: str = "",
    ) -> None:
        phase = phase or ("Running" if "running" in state else "Pending")
        name = container["name"]
        status: dict[str, Any] = {
            "name": name,
            "image": container.get("image", ""),
            "imageID": "",
            "ready": ready,
            "restartCount": 0,
            "started": "running" in state,
            "state": state,
            "lastState": {},
        }
        if container_id:
            status["containerID"] = container_id
        if ready:
            containers_ready = {"type": "ContainersReady", "status": "True"}
        elif phase in ("Succeeded", "Failed"):
            reason = "PodCompleted" if phase == "Succeeded" else "PodFailed"
            containers_ready = {"type": "ContainersReady", "status": "False", "reason": reason}
        else:
            message = f"containers with unready status: [{name}]"
            containers_ready = {
                "type": "ContainersReady",
                "status": "False",
                "reason": "ContainersNotReady",
                "message": message,
            }
        own = [
            {"type": "PodReadyToStartContainers", "status": "True" if sandbox else "False"},
            {"type": "Initialized", "status": "True"},
            {**containers_ready, "type": "Ready"},
            containers_ready,
        ]

        def build(current: dict[str, Any]) -> dict[str, Any]:
            before = {c.get("type"): c for c in current.get("conditions") or []}
            conditions = []
            for cond in own:
                old = before.get(cond["type"])
                same = old is not None and old.get("status") == cond["status"]
                conditions.append(
                    {
                        **cond,
                        "lastProbeTime": None,
                        "lastTransitionTime": old.get("lastTransitionTime") if same and old else meta.now(),
                    }
                )
            conditions += [
                c for c in current.get("conditions") or [] if c.get("type") not in KUBELET_CONDITIONS
            ]
            out = {
                **{k: v for k, v in current.items() if k in ("qosClass", "nominatedNodeName")},
                "phase": phase,
                "conditions": conditions,
                "hostIP": LOCAL_IP,
                "hostIPs": [{"ip": LOCAL_IP}],
                "podIP": LOCAL_IP,
                "podIPs": [{"ip": LOCAL_IP}],
                "startTime": current.get("startTime") or self.started_at,
                "containerStatuses": [status],
            }
            return out

        self.node.write_status(self.namespace, self.name, self.uid, build)

    def _event(self, pod: dict[str, Any], type_: str, reason: str, message: str, container: str = "") -> None:
        events.record(
            self.node,
            pod,
            "Pod",
            "v1",
            type_,
            reason,
            message,
            component="kubelet",
            host=self.node.node_name,
            field_path=f"spec.containers{{{container}}}" if container else "",
        )

    def _warn(self, pod: dict[str, Any], reason: str, message: str) -> None:
        if (reason, message) not in self._warned:  # once per distinct problem
            self._warned.add((reason, message))
            self._event(pod, "Warning", reason, message)


def _grace(pod: dict[str, Any]) -> float:
    m, spec = pod["metadata"], pod.get("spec") or {}
    value = m.get("deletionGracePeriodSeconds")
    if value is None:
        value = spec.get("terminationGracePeriodSeconds", 30)
    return max(MIN_GRACE_SECONDS, float(value))


def _signal(proc: subprocess.Popen[bytes], sig: signal.Signals, process: Process) -> None:
    process.signals.append(sig.name)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def _is_token_volume(volume: dict[str, Any]) -> bool:
    sources = (volume.get("projected") or {}).get("sources") or []
    return any("serviceAccountToken" in s for s in sources)


def _b64(value: str) -> bytes:
    import base64

    return base64.b64decode(value)
