"""What this machine offers a real node: root, the container runtime's programs, the CNI plugins,
the cgroup version. `check()` answers the programs to run, or raises NodeUnavailable with one line
saying what is missing and how to install it."""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

CNI_DIRS = ("/usr/lib/cni", "/opt/cni/bin")  # Debian's containernetworking-plugins, then upstream's
CNI_PLUGINS = ("bridge", "host-local", "loopback", "portmap")
CGROUP_ROOT = Path("/sys/fs/cgroup")
INSTALL = "apt-get install containerd runc containernetworking-plugins iptables iproute2"


class NodeUnavailable(RuntimeError):
    """This machine cannot run a real node; the message is one line saying what to do."""


@dataclass(frozen=True)
class Programs:
    containerd: str
    ctr: str
    runc: str
    cni_bin_dir: str
    iptables: str
    ip: str
    nsenter: str


def cgroup_v2(root: Path = CGROUP_ROOT) -> bool:
    """cgroup v2 alone (the unified hierarchy at the root); v1 or hybrid otherwise."""
    return (root / "cgroup.controllers").exists()


def hierarchies(root: Path = CGROUP_ROOT) -> list[Path]:
    """Every cgroup hierarchy's root directory: /sys/fs/cgroup on v2; on v1 each mounted one
    (cpu, memory, ..., name=systemd, and the empty unified one of hybrid mode)."""
    if cgroup_v2(root):
        return [root]
    found = []
    for line in Path("/proc/self/mounts").read_text().splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] in ("cgroup", "cgroup2") and fields[1].startswith(str(root) + "/"):
            found.append(Path(fields[1]))
    return sorted(set(found))


def in_pod(cgroups: str, uid: str) -> bool:
    """Whether a process whose /proc/PID/cgroup reads `cgroups` is in the pod `uid`: the kubelet
    names a pod's cgroup pod<uid> (cgroupfs driver), or pod<uid with underscores> (systemd)."""
    names = (f"/pod{uid}/", f"pod{uid.replace('-', '_')}.slice/")
    return any(name in line + "/" for line in cgroups.splitlines() for name in names)


def pod_processes(uid: str, proc: Path = Path("/proc")) -> list[int]:
    """The processes of the pod `uid` on this machine (its sandbox's and its containers')."""
    found = []
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                cgroups = (entry / "cgroup").read_text()
            except OSError:  # ended meanwhile
                continue
            if in_pod(cgroups, uid):
                found.append(int(entry.name))
    return found


def missing_programs(which: dict[str, str | None], cni_dir: str | None) -> list[str]:
    """The names of what is missing, from what `which` found (pure, for the one-line refusal)."""
    missing = [name for name, path in which.items() if path is None]
    if cni_dir is None:
        missing.append("CNI plugins (" + ", ".join(CNI_PLUGINS) + ")")
    return missing


def _cni_dir() -> str | None:
    for directory in CNI_DIRS:
        if all(os.access(Path(directory) / p, os.X_OK) for p in CNI_PLUGINS):
            return directory
    return None


def check() -> Programs:
    if os.geteuid() != 0:
        raise NodeUnavailable(
            "the local cluster's node needs root (containerd, network namespaces, cgroups): run it "
            "as root (sudo), or in a container or VM where you are root"
        )
    names = ("containerd", "ctr", "runc", "iptables", "ip", "nsenter")
    which = {name: shutil.which(name) for name in names}
    cni_dir = _cni_dir()
    missing = missing_programs(which, cni_dir)
    if missing:
        raise NodeUnavailable(
            f"the real node needs {', '.join(missing)} on this machine, which has none: {INSTALL}"
        )
    if not hierarchies():
        raise NodeUnavailable("the real node needs cgroups mounted at /sys/fs/cgroup (v1 or v2)")
    paths = {name: str(path) for name, path in which.items() if path is not None}
    assert cni_dir is not None
    return Programs(cni_bin_dir=cni_dir, **paths)


SUITE_SETTING = "CONTENTGEN_TEST_REAL_NODE"


def required_setting(environ: Mapping[str, str] = os.environ) -> str:
    """CONTENTGEN_TEST_REAL_NODE as given; unset, "1" in CI (CI=true, as CI services set it) and
    under `make test` (which sets it): a machine there that cannot run the node fails the tier
    instead of passing with it skipped (issue 71)."""
    setting = environ.get(SUITE_SETTING, "")
    if not setting and environ.get("CI", "").lower() in ("true", "1", "yes"):
        return "1"
    return setting


def suite_skip_reason(environ: Mapping[str, str] = os.environ) -> str:
    """Why a test suite's real-node tests do not run here, or "" where they run: on a machine
    that passes `check()`, unless CONTENTGEN_TEST_REAL_NODE=0; with =1 they run regardless, and a
    machine that lacks something fails them with its one line instead of skipping them."""
    setting = required_setting(environ)
    if setting == "0":
        return f"{SUITE_SETTING}=0"
    try:
        check()
    except NodeUnavailable as exc:
        return "" if setting == "1" else f"{exc} ({SUITE_SETTING}=1 runs them regardless)"
    return ""
