"""Leaving nothing behind: what a real node made on this machine, found from its Layout and undone.

`teardown(layout)` is idempotent and touches only what is keyed to that node (its cgroup, its
network namespace and host veth, mounts under its directories, its shims' sockets, its log links),
so it is safe beside other live nodes. It runs at stop; from the reaper, a process of its own that
waits on a pipe from the node's owner and tears the node down when the owner dies, even by SIGKILL;
and at the next node's start, for a node whose owner and reaper are both gone (reaper.py).
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from ..processes import started
from .host import hierarchies
from .layout import NODES, Layout

MNT_DETACH = 2
CONTAINER_LOG_LINKS = Path("/var/log/containers")  # the kubelet's, fixed in its code
SHIM_SOCKETS = Path("/run/containerd/s")  # containerd 1.x's shims' sockets, fixed in its code
CNI_CACHE = Path("/var/lib/cni/results")  # libcni's default cache
DEVICE_PLUGINS = Path("/var/lib/kubelet/device-plugins")  # the kubelet's, whatever its root dir


@dataclass
class State:
    """What the registry keeps per live node (NODES/lcX.json)."""

    subnet: int
    directory: str
    owner: int
    owner_start: str
    reaper: int = 0
    reaper_start: str = ""
    directory_id: str = ""  # device:inode of the directory, to find it again should it be renamed

    @property
    def layout(self) -> Layout:
        return Layout(self.subnet, self.locate())

    def locate(self) -> Path:
        """The node's directory: where it was, or where it went (a test runner renames old
        temporary directories) as found from the mounts still under it."""
        recorded = Path(self.directory)
        if not self.directory_id or file_id(recorded) == self.directory_id:
            return recorded
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = Path(_unescape(line.split()[4]))
            for parent in point.parents:
                if file_id(parent) == self.directory_id:
                    return parent
        return recorded

    def write(self) -> None:
        path = self.layout.state_file
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> State | None:
        try:
            return cls(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def live(self) -> bool:
        """Its owner or its reaper still runs (the same processes: pid and start time match)."""
        return started(self.owner) == self.owner_start or (
            bool(self.reaper) and started(self.reaper) == self.reaper_start
        )


def file_id(path: Path) -> str:
    try:
        stat = path.stat()
    except OSError:
        return ""
    return f"{stat.st_dev}:{stat.st_ino}"


# --- the parts ---------------------------------------------------------------------------------------


def cgroup_dirs(layout: Layout) -> list[Path]:
    return [h / layout.cgroup for h in hierarchies() if (h / layout.cgroup).is_dir()]


def _tree(top: Path) -> list[Path]:
    """Every cgroup under top, deepest first."""
    found = [Path(d) for d, _, _ in os.walk(top)]
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def _pids(directory: Path) -> set[int]:
    pids: set[int] = set()
    for cgroup in _tree(directory):
        with contextlib.suppress(OSError):
            pids.update(int(p) for p in (cgroup / "cgroup.procs").read_text().split())
    return pids


def kill_all(layout: Layout, timeout: float = 15.0) -> None:
    """SIGKILL every process in the node's cgroups (containerd, shims, containers, the kubelet,
    kube-proxy, CoreDNS) until none is left."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = set().union(*(_pids(d) for d in cgroup_dirs(layout))) - {os.getpid()}
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def _unescape(field: str) -> str:
    return field.encode().decode("unicode_escape") if "\\" in field else field


def mounts_under(*roots: Path) -> list[str]:
    """Mount points at or under the roots, deepest first."""
    points = []
    prefixes = [str(r) for r in roots]
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = _unescape(line.split()[4])
        if any(point == p or point.startswith(p + "/") for p in prefixes):
            points.append(point)
    return sorted(points, key=lambda p: p.count("/"), reverse=True)


def unmount_all(*roots: Path) -> list[str]:
    """Detach every mount under the roots (the overlays of container root file systems, the pods'
    network namespaces and volumes); what could not be undone."""
    libc = ctypes.CDLL(None, use_errno=True)
    for _ in range(20):
        points = mounts_under(*roots)
        if not points:
            return []
        for point in points:
            libc.umount2(point.encode(), MNT_DETACH)
    return mounts_under(*roots)


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], capture_output=True, check=False)  # noqa: S603, S607


def remove_network(layout: Layout) -> None:
    _ip("netns", "del", layout.netns)
    _ip("link", "del", layout.host_veth)


def remove_cgroups(layout: Layout, timeout: float = 10.0) -> list[Path]:
    deadline = time.monotonic() + timeout
    left: list[Path] = []
    while time.monotonic() < deadline:
        left = []
        for top in cgroup_dirs(layout):
            for cgroup in _tree(top):
                try:
                    cgroup.rmdir()
                except FileNotFoundError:
                    pass
                except OSError:
                    left.append(cgroup)
        if not left:
            return []
        kill_all(layout, timeout=1.0)
        time.sleep(0.1)
    return left


def shim_socket(address: Path, namespace: str, grouping: str) -> Path:
    """Where containerd 1.x's runc shim for `grouping` (a pod's sandbox id) listens."""
    digest = hashlib.sha256(os.path.join(str(address), namespace, grouping).encode()).hexdigest()
    return SHIM_SOCKETS / digest


def _dead_socket(path: Path) -> bool:
    with socket.socket(socket.AF_UNIX) as probe:
        try:
            probe.connect(str(path))
        except OSError:
            return True
    return False


def remove_files(layout: Layout, others_live: bool) -> None:
    tasks = layout.containerd_state / "io.containerd.runtime.v2.task"
    for namespace in tasks.iterdir() if tasks.is_dir() else []:
        for container in namespace.iterdir():
            shim_socket(layout.containerd_socket, namespace.name, container.name).unlink(missing_ok=True)
            (CNI_CACHE / f"cni-loopback-{container.name}-lo").unlink(missing_ok=True)
    sandboxes = layout.containerd_state / "io.containerd.grpc.v1.cri" / "sandboxes"
    for sandbox in sandboxes.iterdir() if sandboxes.is_dir() else []:
        (CNI_CACHE / f"cni-loopback-{sandbox.name}-lo").unlink(missing_ok=True)
    if CONTAINER_LOG_LINKS.is_dir():
        for link in CONTAINER_LOG_LINKS.iterdir():
            with contextlib.suppress(OSError):
                if link.is_symlink() and os.readlink(link).startswith(str(layout.pod_logs) + "/"):
                    link.unlink()
    if CNI_CACHE.is_dir():
        for cached in CNI_CACHE.glob(f"{layout.network_name}-*"):
            cached.unlink(missing_ok=True)
    if not others_live:  # what the runtime and the kubelet made on the host, if nobody else uses it
        kubelet_socket = DEVICE_PLUGINS / "kubelet.sock"
        if kubelet_socket.is_socket() and _dead_socket(kubelet_socket):
            kubelet_socket.unlink(missing_ok=True)
        for directory in (
            SHIM_SOCKETS,
            SHIM_SOCKETS.parent,
            CONTAINER_LOG_LINKS,
            CNI_CACHE,
            CNI_CACHE.parent,
            DEVICE_PLUGINS,
            DEVICE_PLUGINS.parent,
        ):
            with contextlib.suppress(OSError):
                directory.rmdir()  # only when empty
    left = mounts_under(layout.directory, layout.run_dir)
    if not left:  # never rmtree across a mount
        for directory in layout.runtime_dirs():
            shutil.rmtree(directory, ignore_errors=True)
        shutil.rmtree(layout.run_dir, ignore_errors=True)


def others_live(layout: Layout) -> bool:
    for path in NODES.glob("lc*.json"):
        state = State.read(path)
        if state is not None and state.subnet != layout.subnet and state.live():
            return True
    return False


def succeeded(layout: Layout) -> bool:
    """Another node holds this node's subnet now: the registry names another directory for it.
    Only a node whose registry entry went last (teardown) frees the subnet, and a new one takes it
    only when no route of it is left, so what that subnet names is the newcomer's."""
    state = State.read(layout.state_file)
    return state is not None and state.locate() != layout.directory


def leftovers(layout: Layout) -> list[str]:
    """What of the node is still on this machine (empty once it is all gone): its processes,
    mounts, network namespace, host veth, cgroups, registry entry, sockets and log links. Once
    another node took its subnet (a test's neighbour started meanwhile), only what lies under its
    own directory is its own to look for."""
    if succeeded(layout):
        found = [f"mount {point}" for point in mounts_under(layout.directory)]
        return found + [f"directory {d}" for d in layout.runtime_dirs() if d.exists()]
    found = [f"process {pid}" for d in cgroup_dirs(layout) for pid in sorted(_pids(d))]
    found += [f"mount {point}" for point in mounts_under(layout.directory, layout.run_dir)]
    if layout.netns_path.exists():
        found.append(f"network namespace {layout.netns}")
    if Path(f"/sys/class/net/{layout.host_veth}").exists():
        found.append(f"link {layout.host_veth}")
    found += [f"cgroup {d}" for d in cgroup_dirs(layout)]
    found += [f"file {p}" for p in (layout.state_file, layout.run_dir) if p.exists()]
    found += [f"directory {d}" for d in layout.runtime_dirs() if d.exists()]
    if CONTAINER_LOG_LINKS.is_dir():
        found += [
            f"log link {link}"
            for link in CONTAINER_LOG_LINKS.iterdir()
            if link.is_symlink() and os.readlink(link).startswith(str(layout.pod_logs) + "/")
        ]
    if CNI_CACHE.is_dir():
        found += [f"CNI cache {p}" for p in CNI_CACHE.glob(f"{layout.network_name}-*")]
        tasks = layout.containerd_state / "io.containerd.runtime.v2.task" / "k8s.io"
        ids = [d.name for d in tasks.iterdir()] if tasks.is_dir() else []
        found += [f"CNI cache {p}" for i in ids if (p := CNI_CACHE / f"cni-loopback-{i}-lo").exists()]
    return found


def teardown(layout: Layout) -> list[str]:
    """Undo the node; what is left that could not be undone (empty when all went)."""
    kill_all(layout)
    stuck = unmount_all(layout.directory, layout.run_dir)
    remove_network(layout)
    cgroups = remove_cgroups(layout)
    remove_files(layout, others_live(layout))
    layout.state_file.unlink(missing_ok=True)
    return [*stuck, *map(str, cgroups)]


def remove_dead() -> None:
    """Tear down every registered node whose owner and reaper are both gone (a SIGKILL of the
    whole session, a reboot's leftovers in /run do not survive one). Call with the registry locked."""
    for path in NODES.glob("lc*.json"):
        state = State.read(path)
        if state is not None and not state.live():  # one being written is left to its writer
            teardown(state.layout)
