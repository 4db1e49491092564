"""The real node: Kubernetes' own kubelet and kube-proxy (built with the control plane), containerd
and runc, the CNI plugins, CoreDNS, and the pause image made from Kubernetes' pause.c, each
process in the node's network namespace and cgroup (layout.py), torn down without leftovers
(teardown.py), also when its owner is SIGKILLed.

    node = RealNode(DIR / "node", archives=[...])
    node.prepare()            # NodeUnavailable (one line: what to install) where it cannot run
    control = ControlPlane(..., host=node.layout.host_ip, service_cidr=node.layout.service_cidr)
    node.start(control)       # registered, its images imported, CoreDNS answering
    ...
    node.stop()
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import yaml

from .. import binaries, kubeconfig
from ..controlplane import ControlPlane
from ..processes import started
from . import configs, host, nodenet, ociimage, seed
from .host import NodeUnavailable, Programs
from .layout import Layout
from .teardown import State, teardown

log = logging.getLogger("localcluster.node")

# containerd's CRI plugin logs this right before it answers CRI calls (see `_containerd_ready`)
CRI_STARTED = b'msg="Start streaming server"'
COMPONENTS = ("kubelet", "kube-proxy", "coredns")  # stopped gently first, then everything is killed


class RealNode:
    def __init__(
        self,
        directory: Path,
        *,
        name: str = "local",
        archives: list[Path] | None = None,
        max_pods: int = 250,
    ) -> None:
        self.directory = directory.resolve()
        self.name = name
        self.archives = [Path(a) for a in archives or []]
        self.max_pods = max_pods
        self.programs: Programs | None = None
        self.state: State | None = None
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self._reaper: subprocess.Popen[bytes] | None = None
        self._lifeline: int | None = None  # the pipe's write end: closed when this process ends
        self._silenced: list[int] = []  # processes stop_answering stopped, in that order
        self.cgroup_v1 = not host.cgroup_v2()

    @property
    def layout(self) -> Layout:
        assert self.state is not None, "prepare() first"
        return self.state.layout

    # --- before the control plane ----------------------------------------------------------------------

    def prepare(self) -> None:
        """Check the machine, claim a subnet, start the reaper, make the network namespace."""
        self.programs = host.check()
        self.kubelet, self.kube_proxy = binaries.find_node()
        from .. import coredns  # not at import: `python -m localcluster.coredns` builds it

        try:
            self.coredns = coredns.binary()
        except coredns.CoreDNSMissing as exc:
            raise NodeUnavailable(str(exc)) from None
        self.pause = ociimage.pause_archive()
        for archive in self.archives:
            if not archive.is_file():
                raise NodeUnavailable(
                    f"Options.image_archives: {archive} is not a file (an OCI or docker archive)"
                )
        self.directory.mkdir(parents=True, exist_ok=True)
        self.state = nodenet.claim(self.directory)
        self._start_reaper()
        nodenet.create(self.layout)

    def _start_reaper(self) -> None:
        state = self.state
        assert state is not None
        read, write = os.pipe()
        self.layout.logs.mkdir(parents=True, exist_ok=True)
        with (self.layout.logs / "reaper.log").open("ab") as out:
            self._reaper = subprocess.Popen(  # noqa: S603
                [sys.executable, "-m", "localcluster.node.reaper", str(self.layout.state_file)],
                stdin=read,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives a kill of this process's group
            )
        os.close(read)
        self._lifeline = write
        state.reaper, state.reaper_start = self._reaper.pid, started(self._reaper.pid)
        state.write()

    # --- start ---------------------------------------------------------------------------------------

    def start(self, control: ControlPlane, timeout: float = 60.0) -> None:
        """containerd with the pause image and the archives (from a seed: seed.py; else imported
        while the kubelet, kube-proxy and CoreDNS start: `timeout` counts from there, a large
        archive takes its time), then the kubelet, kube-proxy and CoreDNS."""
        deadline = time.monotonic() + timeout
        layout, programs = self.layout, self.programs
        assert programs is not None
        for directory in (
            layout.config_dir,
            layout.cni_conf_dir,
            layout.kubelet_root,
            layout.pod_logs,
            layout.run_dir,
        ):
            directory.mkdir(parents=True, exist_ok=True)
        layout.kubelet_link.unlink(missing_ok=True)
        layout.kubelet_link.symlink_to(layout.kubelet_root)
        self._cgroups()
        files = self._write_configs(control)
        self._apply(control, configs.COREDNS_RBAC)
        images = [self.pause, *self.archives]
        seeded = seed.plant(layout.containerd_root, programs, images)
        log = layout.logs / "containerd.log"
        since = log.stat().st_size if log.exists() else 0  # the log is appended to at each start
        self._spawn("containerd", [programs.containerd, "--config", str(files["containerd"])])
        self._wait(deadline, "containerd", lambda: self._containerd_ready(since))
        if not seeded:
            self._ctr("images", "import", str(self.pause))
        self._spawn(
            "kubelet",
            [
                str(self.kubelet),
                f"--config={files['kubelet']}",
                f"--kubeconfig={files['kubelet-kubeconfig']}",
                f"--root-dir={layout.kubelet_link}",
                f"--cert-dir={layout.kubelet_root / 'pki'}",
                f"--node-ip={layout.node_ip}",
                f"--hostname-override={self.name}",
                "--v=1",
            ],
        )
        self._spawn("kube-proxy", [str(self.kube_proxy), f"--config={files['kube-proxy']}", "--v=1"])
        self._spawn("coredns", [str(self.coredns), "-conf", str(files["coredns"])])
        for archive in [] if seeded else self.archives:
            self._ctr("images", "import", str(archive))
        deadline = time.monotonic() + timeout
        self._wait(deadline, "coredns", self._dns_ready)
        self._wait(deadline, "kube-proxy", self._proxy_ready)

    def _cgroups(self) -> None:
        """The node's cgroup in every hierarchy (the kubelet's cgroupRoot must exist), and node/ in
        one, which every node process joins at its start: what teardown kills and removes."""
        for top in host.hierarchies():
            cgroup = top / self.layout.cgroup
            cgroup.mkdir(exist_ok=True)
            if top.name == "cpuset":
                for name in ("cpuset.cpus", "cpuset.mems"):
                    if not (cgroup / name).read_text().strip():
                        (cgroup / name).write_text((top / name).read_text())
            if not self.cgroup_v1:
                available = (top / "cgroup.controllers").read_text().split()
                for controller in available:
                    with contextlib.suppress(OSError):
                        (top / "cgroup.subtree_control").write_text(f"+{controller}")
                        (cgroup / "cgroup.subtree_control").write_text(f"+{controller}")
        (self._tracking() / "node").mkdir(exist_ok=True)

    def adopt(self, pids: list[int]) -> None:
        """Put processes of the caller's (the control plane's) in the node's cgroup, so that the
        reaper ends them too should the owner die."""
        cgroup = self._tracking() / "control-plane"
        cgroup.mkdir(parents=True, exist_ok=True)
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, OSError):
                (cgroup / "cgroup.procs").write_text(str(pid))

    def _tracking(self) -> Path:
        tops = host.hierarchies()
        named = {t.name: t for t in tops}
        top = tops[0] if not self.cgroup_v1 else named.get("pids") or named.get("memory") or tops[0]
        return top / self.layout.cgroup

    def _write_configs(self, control: ControlPlane) -> dict[str, Path]:
        layout, ca = self.layout, control.ca
        programs = self.programs
        assert programs is not None
        identity = ca.issue(
            f"node-{self.name}",
            common_name=f"system:node:{self.name}",
            organisations=("system:nodes",),
            client=True,
        )
        serving = ca.issue(
            f"kubelet-{self.name}-{layout.subnet}",  # its IP is the subnet's
            common_name=f"system:node:{self.name}",
            organisations=("system:nodes",),
            hosts=(layout.node_ip, self.name),
            server=True,
        )
        files: dict[str, Path] = {}

        def config(name: str, text: str) -> Path:
            path = files[name] = layout.config_dir / name
            path.write_text(text)
            return path

        def client_kubeconfig(name: str, user: str, groups: tuple[str, ...] = ()) -> Path:
            pair = ca.issue(name, common_name=user, organisations=groups, client=True)
            path = files[f"{name}-kubeconfig"] = layout.config_dir / f"{name}.kubeconfig"
            return kubeconfig.write(
                path, server=control.url, ca_pem=ca.pem, user=user, cert=pair.cert, key=pair.key
            )

        config(
            "containerd",
            configs.containerd_config(layout, runc=programs.runc, cni_bin_dir=programs.cni_bin_dir),
        )
        (layout.cni_conf_dir / "10-localcluster.conflist").write_text(json.dumps(configs.cni_network(layout)))
        files["kubelet-kubeconfig"] = kubeconfig.write(
            layout.config_dir / "kubelet.kubeconfig",
            server=control.url,
            ca_pem=ca.pem,
            user=f"system:node:{self.name}",
            cert=identity.cert,
            key=identity.key,
        )
        kubelet = configs.kubelet_config(
            layout,
            ca_file=ca.cert_file,
            serving=(serving.cert, serving.key),
            cgroup_v1=self.cgroup_v1,
            max_pods=self.max_pods,
        )
        config("kubelet", yaml.safe_dump(kubelet))
        proxy = client_kubeconfig("kube-proxy", "system:kube-proxy")
        config(
            "kube-proxy", yaml.safe_dump(configs.kube_proxy_config(layout, kubeconfig=proxy, name=self.name))
        )
        dns = client_kubeconfig("coredns", "system:coredns")
        config("coredns", configs.corefile(layout, kubeconfig=dns))
        return files

    @staticmethod
    def _apply(control: ControlPlane, manifests: list[dict[str, Any]]) -> None:
        client = control.client()
        try:
            for manifest in manifests:
                client.apply(manifest)
        finally:
            client.close()

    def _spawn(self, name: str, argv: list[str]) -> None:
        """Start a node process inside the node's cgroup and network namespace."""
        procs = self._tracking() / "node" / "cgroup.procs"
        wrapper = ["sh", "-c", 'echo $$ > "$1" && shift && exec "$@"', "sh", str(procs)]
        netns = ["nsenter", f"--net={self.layout.netns_path}", "--"]
        with (self.layout.logs / f"{name}.log").open("ab") as out:
            self.processes[name] = subprocess.Popen(  # noqa: S603 - our own binaries
                [*wrapper, *netns, *argv],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def _ctr(self, *args: str) -> str:
        programs = self.programs
        assert programs is not None
        done = subprocess.run(  # noqa: S603
            [programs.ctr, "--address", str(self.layout.containerd_socket), "--namespace", "k8s.io", *args],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"ctr {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout

    def _containerd_ready(self, since: int) -> bool:
        """containerd answers, and its CRI plugin is initialized: the kubelet exits at once on a CRI
        that answers "server is not initialized yet". The plugin says nothing when it is; it logs
        "Start streaming server" right before (containerd 1.6's pkg/cri/server/service.go `Run`)."""
        if not self.layout.containerd_socket.exists():
            return False
        try:
            self._ctr("version")
        except RuntimeError:
            return False
        with contextlib.suppress(OSError), (self.layout.logs / "containerd.log").open("rb") as log:
            log.seek(since)
            return CRI_STARTED in log.read()
        return False

    def _dns_ready(self) -> bool:
        return self._get(f"http://{self.layout.dns_ip}:8181/ready")

    def _proxy_ready(self) -> bool:
        return self._get(f"http://{self.layout.node_ip}:10256/healthz")

    @staticmethod
    def _get(url: str) -> bool:
        try:
            return httpx.get(url, timeout=1.0).status_code == 200
        except httpx.HTTPError:
            return False

    def _wait(self, deadline: float, name: str, check: Any) -> None:
        """Until `check()`; at once when any node process has exited (kube-proxy waits on a
        kubelet that is gone as long as it is let)."""
        while time.monotonic() < deadline:
            for exited in self.check():
                code = self.processes[exited].returncode
                raise RuntimeError(f"{exited} exited with {code}: {self.tail(exited)}")
            if check():
                return
            time.sleep(0.05)
        raise RuntimeError(f"{name} was not ready in time: {self.tail(name)}")

    def tail(self, name: str, lines: int = 5) -> str:
        with contextlib.suppress(OSError):
            return " | ".join(
                (self.layout.logs / f"{name}.log").read_text(errors="replace").splitlines()[-lines:]
            )
        return ""

    def check(self) -> list[str]:
        """Node processes that have exited."""
        return [name for name, p in self.processes.items() if p.poll() is not None]

    # --- faults ---------------------------------------------------------------------------------------

    def kill_container(self, container_id: str, sig: signal.Signals = signal.SIGKILL) -> None:
        """Signal every process of a container (`containerd://ID` as a pod's status names it, or
        ID), as the OOM killer or a node's loss ends it: nothing the container can do first."""
        self._ctr("tasks", "kill", "--all", "--signal", sig.name, container_id.split("://")[-1])

    def freeze_runtime(self) -> None:
        """containerd stopped (SIGSTOP) until `thaw_runtime()`: pods bound to the node stay
        Pending, their sandboxes not made, while the kubelet goes on answering; the containers
        already running run on (their shims are their own processes)."""
        self.processes["containerd"].send_signal(signal.SIGSTOP)

    def thaw_runtime(self) -> None:
        self.processes["containerd"].send_signal(signal.SIGCONT)

    def tag(self, image: str, reference: str) -> None:
        """An imported image under a second reference (`ctr images tag`)."""
        self._ctr("images", "tag", "--force", image, reference)

    # --- a fault: the node goes silent ----------------------------------------------------------------

    def stop_answering(self, pods: Iterable[str] = ()) -> None:
        """The node as one powered off or cut off from the network, seen from the control plane:
        its kubelet stopped (SIGSTOP: no Lease renewed, no pod status reported, nothing stopped
        that it is asked to stop), and the processes of `pods` (their uids) frozen with it, so that
        what their containers would do meanwhile neither happens nor is seen. The other pods run
        on, unwatched. `answer_again()` resumes them all."""
        kubelet = self.processes["kubelet"]
        kubelet.send_signal(signal.SIGSTOP)
        self._silenced.append(kubelet.pid)
        for uid in pods:
            for pid in host.pod_processes(uid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGSTOP)
                    self._silenced.append(pid)

    def answer_again(self) -> None:
        """Resume what `stop_answering` stopped: the pods' processes, then the kubelet."""
        while self._silenced:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self._silenced.pop(), signal.SIGCONT)

    # --- stop ----------------------------------------------------------------------------------------

    def stop(self) -> list[str]:
        """Stop it all and leave nothing behind; what could not be removed (empty when all went)."""
        self.answer_again()  # a stopped process would take no SIGTERM
        left: list[str] = []
        if self.state is not None:
            for name in COMPONENTS:
                process = self.processes.get(name)
                if process is not None and process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for name in COMPONENTS:
                process = self.processes.get(name)
                if process is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        process.wait(5)
            left = teardown(self.layout)
            for process in self.processes.values():
                with contextlib.suppress(subprocess.TimeoutExpired):
                    process.wait(5)
        if self._lifeline is not None:
            os.close(self._lifeline)
            self._lifeline = None
        if self._reaper is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._reaper.wait(30)
        if left:
            log.warning("the node left behind: %s", ", ".join(left))
        return left
