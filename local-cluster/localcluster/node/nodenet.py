"""The real node's network namespace and its link to the host (layout.py draws it), and the
machine's registry of live nodes (NODES/lcX.json) that hands each node a subnet of its own."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
from pathlib import Path

from ..processes import locked, started
from .layout import NODES, RUN, SUBNETS, Layout
from .teardown import State, file_id, remove_dead


def registry_lock() -> contextlib.AbstractContextManager[None]:
    return locked(RUN / ".lock")


def _ip(*args: str) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)  # noqa: S603, S607
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def free_subnet(taken: set[int], routes: str) -> int:
    """The first subnet index neither registered nor routed on this machine (10.X.*)."""
    routed = {int(m) for m in re.findall(r"\b10\.(\d+)\.", routes)}
    for subnet in SUBNETS:
        if subnet not in taken and subnet not in routed:
            return subnet
    raise RuntimeError(f"no free 10.X.0.0/16 for a node's network (X in {SUBNETS.start}-{SUBNETS.stop - 1})")


def claim(directory: Path) -> State:
    """Register a node for this process: its subnet, with the dead nodes' leftovers torn down."""
    with registry_lock():
        remove_dead()
        taken = {int(p.stem[2:]) for p in NODES.glob("lc*.json")}
        subnet = free_subnet(taken, _ip("-4", "route"))
        state = State(
            subnet, str(directory), os.getpid(), started(os.getpid()), directory_id=file_id(directory)
        )
        state.write()
        return state


def _sysctl(layout: Layout, name: str, value: str) -> None:
    path = "/proc/sys/" + name.replace(".", "/")
    subprocess.run(  # noqa: S603
        ["nsenter", f"--net={layout.netns_path}", "sh", "-c", f"[ ! -e {path} ] || echo {value} > {path}"],  # noqa: S607
        check=True,
    )


def create(layout: Layout) -> None:
    """The namespace, its veth to the host, addresses and routes (see layout.py)."""
    ns = layout.netns
    _ip("netns", "add", ns)
    _ip("link", "add", layout.host_veth, "type", "veth", "peer", "name", layout.node_veth, "netns", ns)
    _ip("addr", "add", f"{layout.host_ip}/24", "dev", layout.host_veth)
    _ip("link", "set", layout.host_veth, "up")
    _ip("-n", ns, "link", "set", "lo", "up")
    _ip("-n", ns, "addr", "add", f"{layout.node_ip}/24", "dev", layout.node_veth)
    _ip("-n", ns, "link", "set", layout.node_veth, "up")
    _ip("-n", ns, "route", "add", "default", "via", layout.host_ip)
    for cidr in (layout.pod_cidr, layout.service_cidr):
        _ip("route", "add", cidr, "via", layout.node_ip, "dev", layout.host_veth)
    # inside the node's namespace only: it routes between the pods, the host and Service IPs, and
    # bridged traffic between two pods passes kube-proxy's iptables rules
    _sysctl(layout, "net.ipv4.ip_forward", "1")
    _sysctl(layout, "net.bridge.bridge-nf-call-iptables", "1")


def link_names(a: Layout, b: Layout) -> tuple[str, str]:
    """The veth pair between two nodes of one cluster: its end in a's namespace, its end in b's."""
    return f"{a.key}to{b.subnet}", f"{b.key}to{a.subnet}"


def link(a: Layout, b: Layout) -> None:
    """Two nodes of one cluster joined as nodes on one network are: a veth pair between their
    namespaces, each end addressed as its node (a point-to-point /32 to the other's IP), and each
    node's pods routed to the other's by way of it. Nothing on the host: the host reaches each node
    on its own link, and a pod the other node's pods (and the host, the API server, anything served
    on the host's address) without the host forwarding between them. Deleting either namespace
    deletes the pair."""
    in_a, in_b = link_names(a, b)
    _ip("-n", a.netns, "link", "add", in_a, "type", "veth", "peer", "name", in_b, "netns", b.netns)
    for near, far, end in ((a, b, in_a), (b, a, in_b)):
        _ip("-n", near.netns, "addr", "add", near.node_ip, "peer", f"{far.node_ip}/32", "dev", end)
        _ip("-n", near.netns, "link", "set", end, "up")
        _ip("-n", near.netns, "route", "add", far.pod_cidr, "via", far.node_ip, "dev", end)
