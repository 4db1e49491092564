"""Pod networking: each pod in a network namespace of its own, on a bridge of the cluster's own
(10.X.0.0/16, the bridge at 10.X.0.1), so two pods may listen on the same port and each pod has
its own IP. The node, the API server and whatever the host serves on 10.X.0.1 are reachable from
pods; nothing else is (no NAT to the outside, no Services, no DNS of the cluster's own).

Needs root and iproute2 (`ip netns`); `Network.create` answers None where that is not at hand,
and the node then runs pods in the host's network (see README).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import logging
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("localcluster.network")

REGISTRY = Path("/run/localcluster")  # bridge name -> the pid of the node that owns it
NETNS_DIR = Path("/run/netns")
SUBNETS = range(200, 255)  # 10.X.0.0/16


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)  # noqa: S603, S607


def available() -> bool:
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    probe = f"lcprobe{os.getpid()}"
    try:
        _ip("netns", "add", probe)
        _ip("netns", "del", probe)
    except (subprocess.CalledProcessError, OSError):
        return False
    return True


@contextlib.contextmanager
def _registry_lock() -> Iterator[None]:
    REGISTRY.mkdir(parents=True, exist_ok=True)
    with (REGISTRY / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale() -> None:
    """Bridges and namespaces left by nodes that are gone (a crash, a SIGKILL)."""
    for entry in REGISTRY.glob("lcbr*.json"):
        info = json.loads(entry.read_text())
        if _alive(int(info["pid"])):
            continue
        prefix = info["netns_prefix"]
        for ns in NETNS_DIR.glob(f"{prefix}*") if NETNS_DIR.exists() else []:
            _ip("netns", "del", ns.name, check=False)
        _ip("link", "del", entry.stem, check=False)
        entry.unlink(missing_ok=True)


@dataclass(frozen=True)
class PodNetwork:
    netns: str
    ip: str

    @property
    def path(self) -> Path:
        return NETNS_DIR / self.netns


class Network:
    def __init__(self, bridge: str, subnet: int) -> None:
        self.bridge = bridge
        self.subnet = subnet
        self.prefix = f"lc{bridge[4:]}-"
        self.host_ip = f"10.{subnet}.0.1"
        self._free = (str(ipaddress.IPv4Address(f"10.{subnet}.0.0") + i) for i in range(2, 65534))
        self._released: list[str] = []
        self._lock = threading.Lock()

    @classmethod
    def create(cls) -> Network | None:
        if not available():
            return None
        with _registry_lock():
            _remove_stale()
            used = {e.stem: json.loads(e.read_text())["subnet"] for e in REGISTRY.glob("lcbr*.json")}
            routes = _ip("-4", "route").stdout
            subnet = next(s for s in SUBNETS if s not in used.values() and f"10.{s}." not in routes)
            bridge = f"lcbr{subnet:03d}{os.getpid() % 1000:03d}"[:15]
            _ip("link", "add", bridge, "type", "bridge")
            _ip("addr", "add", f"10.{subnet}.0.1/16", "dev", bridge)
            _ip("link", "set", bridge, "up")
            (REGISTRY / f"{bridge}.json").write_text(
                json.dumps({"pid": os.getpid(), "subnet": subnet, "netns_prefix": f"lc{bridge[4:]}-"})
            )
        return cls(bridge, subnet)

    def _next_ip(self) -> str:
        with self._lock:
            return self._released.pop(0) if self._released else next(self._free)

    def attach(self, pod_uid: str) -> PodNetwork:
        """A namespace for the pod with its veth on the bridge, loopback up, routed via the bridge."""
        tag = hashlib.sha1(f"{self.bridge}/{pod_uid}".encode()).hexdigest()[:8]  # noqa: S324 - a name
        netns, host_end, pod_end = f"{self.prefix}{tag}", f"lv{tag}", f"lp{tag}"
        ip = self._next_ip()
        _ip("netns", "add", netns)
        _ip("link", "add", host_end, "type", "veth", "peer", "name", pod_end)
        _ip("link", "set", host_end, "master", self.bridge, "up")
        _ip("link", "set", pod_end, "netns", netns)
        inside = ("netns", "exec", netns, "ip")
        _ip(*inside, "link", "set", "lo", "up")
        _ip(*inside, "link", "set", pod_end, "name", "eth0")
        _ip(*inside, "addr", "add", f"{ip}/16", "dev", "eth0")
        _ip(*inside, "link", "set", "eth0", "up")
        _ip(*inside, "route", "add", "default", "via", self.host_ip)
        return PodNetwork(netns, ip)

    def detach(self, pod: PodNetwork) -> None:
        _ip("netns", "del", pod.netns, check=False)  # takes its veth pair with it
        with self._lock:
            self._released.append(pod.ip)

    def destroy(self) -> None:
        for ns in NETNS_DIR.glob(f"{self.prefix}*") if NETNS_DIR.exists() else []:
            _ip("netns", "del", ns.name, check=False)
        _ip("link", "del", self.bridge, check=False)
        with _registry_lock():
            (REGISTRY / f"{self.bridge}.json").unlink(missing_ok=True)
