"""Where one real node's parts live: its addresses, names and paths, all derived from one number
(the subnet index X, unique on this machine while the node lives) and the node's directory. Pure:
nothing here touches the machine.

Each node runs in a network namespace of its own (`lcX`), joined to the host by a veth pair:

    host  lcXh 10.X.0.1/24  <->  lcXn 10.X.0.2/24 (the node's IP)   [namespace lcX]
                                  bridge lcXpods 10.X.128.1/17: the pods, 10.X.128.0/17
    Services: 10.X.64.0/18 (the `kubernetes` Service 10.X.64.1); DNS: CoreDNS on 10.X.0.2:53

The host routes the pod and Service ranges through the node's IP, so a pod and a Service are reached
from the host by their own IPs; pods reach the host (the API server, anything it serves) at
10.X.0.1. iptables (kube-proxy's and the CNI plugins'), the bridge and every veth live in the
namespace, so two nodes on one machine share none of them, and deleting the namespace removes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SUBNETS = range(200, 255)
RUN = Path("/run/localcluster")  # the machine's registry of nodes and its lock
NODES = RUN / "nodes"  # the real nodes' registry: one lcX.json per live node
CGROUP_PREFIX = "localcluster"


@dataclass(frozen=True)
class Layout:
    subnet: int
    directory: Path  # the node's own directory (config, state, logs), inside the cluster's

    @property
    def key(self) -> str:
        return f"lc{self.subnet}"

    # --- the network ---------------------------------------------------------------------------------

    @property
    def netns(self) -> str:
        return self.key

    @property
    def netns_path(self) -> Path:
        return Path("/run/netns") / self.netns

    @property
    def host_veth(self) -> str:
        return f"{self.key}h"

    @property
    def node_veth(self) -> str:
        return f"{self.key}n"

    @property
    def bridge(self) -> str:
        return f"{self.key}pods"

    @property
    def host_ip(self) -> str:
        return f"10.{self.subnet}.0.1"

    @property
    def node_ip(self) -> str:
        return f"10.{self.subnet}.0.2"

    @property
    def link_cidr(self) -> str:
        return f"10.{self.subnet}.0.0/24"

    @property
    def pod_cidr(self) -> str:
        return f"10.{self.subnet}.128.0/17"

    @property
    def pod_gateway(self) -> str:
        return f"10.{self.subnet}.128.1"

    @property
    def service_cidr(self) -> str:
        return f"10.{self.subnet}.64.0/18"

    @property
    def dns_ip(self) -> str:
        return self.node_ip

    @property
    def network_name(self) -> str:
        """The CNI network's name (libcni keys its cache files by it)."""
        return f"localcluster-{self.subnet}"

    def owns_ip(self, ip: str) -> bool:
        """Whether an address is in this node's pod range (10.X.128.0/17)."""
        parts = ip.split(".")
        return len(parts) == 4 and parts[:2] == ["10", str(self.subnet)] and int(parts[2]) >= 128

    # --- cgroups -------------------------------------------------------------------------------------

    @property
    def cgroup(self) -> str:
        """The node's cgroup, under each hierarchy's root: the kubelet's cgroupRoot (its pods under
        kubepods/), and node/ for containerd, its shims, the kubelet, kube-proxy and CoreDNS."""
        return f"{CGROUP_PREFIX}{self.subnet}"

    # --- paths ---------------------------------------------------------------------------------------

    @property
    def run_dir(self) -> Path:
        """Sockets (a unix socket's path must stay under 108 bytes: the node's directory may not)."""
        return RUN / self.key

    @property
    def state_file(self) -> Path:
        return NODES / f"{self.key}.json"

    @property
    def containerd_socket(self) -> Path:
        return self.run_dir / "containerd.sock"

    @property
    def containerd_root(self) -> Path:
        return self.directory / "containerd" / "root"

    @property
    def containerd_state(self) -> Path:
        return self.directory / "containerd" / "state"

    @property
    def runc_root(self) -> Path:
        return self.directory / "containerd" / "runc"

    @property
    def cni_conf_dir(self) -> Path:
        return self.directory / "cni" / "net.d"

    @property
    def cni_data_dir(self) -> Path:
        return self.directory / "cni" / "ipam"

    @property
    def kubelet_root(self) -> Path:
        return self.directory / "kubelet"

    @property
    def kubelet_link(self) -> Path:
        """The kubelet's --root-dir: a link to kubelet_root in run_dir, as the kubelet makes unix
        sockets under its root (pod-resources/NNNNNNNNNN) and a long node directory (a user's
        --dir, a test's temporary folder) put them over 108 bytes: the kubelet exited at start."""
        return self.run_dir / "kubelet"

    @property
    def pod_logs(self) -> Path:
        return self.directory / "pod-logs"

    @property
    def logs(self) -> Path:
        return self.directory / "logs"

    @property
    def config_dir(self) -> Path:
        return self.directory / "config"

    def runtime_dirs(self) -> list[Path]:
        """What stop removes: the runtime's and the kubelet's state (images, snapshots, pods).
        Configuration and logs stay for reading after the fact."""
        return [self.directory / "containerd", self.directory / "cni", self.kubelet_root, self.pod_logs]
