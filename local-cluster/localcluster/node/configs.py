"""The real node's configuration files, rendered from its Layout: containerd's, the CNI network's,
the kubelet's, kube-proxy's and CoreDNS's. Pure functions; real.py writes what they return.

The settings that matter on a machine like this one (root without CAP_SYS_RESOURCE, cgroup v1 in
hybrid mode, a host CNI directory holding another tool's network), and why, are in the README's
"The real node" section.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .layout import Layout

PAUSE_IMAGE = "localcluster.local/pause:3.10.2"
CLUSTER_DOMAIN = "cluster.local"

# Plugins containerd loads by default that a node here has no use for; the `opt` plugin would
# create /opt/containerd on the host.
DISABLED_PLUGINS = (
    "io.containerd.internal.v1.opt",
    "io.containerd.snapshotter.v1.aufs",
    "io.containerd.snapshotter.v1.btrfs",
    "io.containerd.snapshotter.v1.devmapper",
    "io.containerd.snapshotter.v1.zfs",
    "io.containerd.tracing.processor.v1.otlp",
)


def toml_string(value: str) -> str:
    return json.dumps(value)  # a TOML basic string is a JSON string for the paths written here


def containerd_config(layout: Layout, *, runc: str, cni_bin_dir: str) -> str:
    """containerd's config (version 2: read by containerd 1.6 and 1.7, and migrated by 2.x)."""
    socket = str(layout.containerd_socket)
    disabled = ", ".join(toml_string(p) for p in DISABLED_PLUGINS)
    cri = '[plugins."io.containerd.grpc.v1.cri"'
    return f"""version = 2
root = {toml_string(str(layout.containerd_root))}
state = {toml_string(str(layout.containerd_state))}
disabled_plugins = [{disabled}]

[grpc]
  address = {toml_string(socket)}

[ttrpc]
  address = {toml_string(socket + ".ttrpc")}

{cri}]
  sandbox_image = {toml_string(PAUSE_IMAGE)}
  # containerd gives sandboxes oom_score_adj -998; without CAP_SYS_RESOURCE a negative value is
  # EACCES and every sandbox fails in runc ("can't get final child's PID from pipe: EOF")
  restrict_oom_score_adj = true
  # the pods' network namespaces under the state directory rather than the host's /var/run/netns
  netns_mounts_under_state_dir = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  max_container_log_line_size = 16384

{cri}.containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"
  discard_unpacked_layers = false

{cri}.containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

{cri}.containerd.runtimes.runc.options]
  BinaryName = {toml_string(runc)}
  Root = {toml_string(str(layout.runc_root))}
  SystemdCgroup = false

{cri}.cni]
  bin_dir = {toml_string(cni_bin_dir)}
  conf_dir = {toml_string(str(layout.cni_conf_dir))}
  max_conf_num = 1

{cri}.registry]
  config_path = {toml_string(str(layout.directory / "containerd" / "certs.d"))}
"""


def cni_network(layout: Layout) -> dict[str, Any]:
    """The pods' network: a bridge of the node's own, addresses from host-local kept in the node's
    directory (not the host's /var/lib/cni), no masquerading (pods reach nothing beyond this
    machine's own addresses)."""
    return {
        "cniVersion": "1.0.0",
        "name": layout.network_name,
        "plugins": [
            {
                "type": "bridge",
                "bridge": layout.bridge,
                "isGateway": True,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": layout.pod_cidr, "gateway": layout.pod_gateway}]],
                    "routes": [{"dst": "0.0.0.0/0"}],
                    "dataDir": str(layout.cni_data_dir),
                },
            },
            {"type": "portmap", "capabilities": {"portMappings": True}},
        ],
    }


def kubelet_config(
    layout: Layout,
    *,
    ca_file: Path,
    serving: tuple[Path, Path],
    cgroup_v1: bool,
    max_pods: int,
) -> dict[str, Any]:
    config: dict[str, Any] = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": layout.node_ip,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": 10248,
        "tlsCertFile": str(serving[0]),
        "tlsPrivateKeyFile": str(serving[1]),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(ca_file)},
        },
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": f"unix://{layout.containerd_socket}",
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": f"/{layout.cgroup}",
        "cgroupsPerQOS": True,
        "failSwapOn": False,
        "clusterDomain": CLUSTER_DOMAIN,
        "clusterDNS": [layout.dns_ip],
        "resolvConf": "",  # pods see the cluster's DNS alone, not this machine's resolver
        "podLogsDir": str(layout.pod_logs),
        "volumePluginDir": str(layout.kubelet_root / "volume-plugins"),
        "maxPods": max_pods,
        "serializeImagePulls": False,
        # A test node on a small disk: images are never collected from under pods, and nothing is
        # evicted before the machine is truly out of room.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "50Mi",
            "nodefs.available": "1%",
            "nodefs.inodesFree": "1%",
            "imagefs.available": "1%",
        },
        "evictionPressureTransitionPeriod": "10s",
        "nodeStatusReportFrequency": "1m",
        "registerNode": True,
        "protectKernelDefaults": False,
        "makeIPTablesUtilChains": False,
        "localStorageCapacityIsolation": True,
    }
    if cgroup_v1:
        config["failCgroupV1"] = False  # 1.35+ refuses cgroup v1 unless told
    return config


def kube_proxy_config(layout: Layout, *, kubeconfig: Path, name: str) -> dict[str, Any]:
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "mode": "iptables",
        "hostnameOverride": name,
        "bindAddress": layout.node_ip,
        "clusterCIDR": layout.pod_cidr,
        "healthzBindAddress": f"{layout.node_ip}:10256",
        "metricsBindAddress": "127.0.0.1:10249",
        "iptables": {"masqueradeAll": False, "syncPeriod": "30s", "minSyncPeriod": "0s"},
        # 0: leave the machine-wide conntrack table size and timeouts as they are
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
    }


def corefile(layout: Layout, *, kubeconfig: Path) -> str:
    """Names in cluster.local from the API (Services, their endpoints, pods by IP); nothing is
    forwarded beyond: this machine reaches no other DNS server."""
    return f""".:53 {{
    bind {layout.dns_ip}
    errors
    ready {layout.dns_ip}:8181
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        kubeconfig {kubeconfig}
        pods insecure
        ttl 5
    }}
    cache 5
    loadbalance
}}
"""


# The permissions CoreDNS's kubernetes plugin needs (kubeadm's system:coredns role).
COREDNS_RBAC: list[dict[str, Any]] = [
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": "localcluster:coredns"},
        "rules": [
            {
                "apiGroups": [""],
                "resources": ["endpoints", "services", "pods", "namespaces"],
                "verbs": ["list", "watch"],
            },
            {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
        ],
    },
    {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": "localcluster:coredns"},
        "roleRef": {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "ClusterRole",
            "name": "localcluster:coredns",
        },
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "system:coredns"}],
    },
]
