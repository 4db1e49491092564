"""A local Kubernetes cluster: the real etcd, kube-apiserver, kube-controller-manager and
kube-scheduler (built from their Go modules, see kube/), and one real node (a kubelet, containerd
and runc: node/real.py). See README.md."""

from .cluster import LocalCluster, Options
from .node.host import NodeUnavailable

__all__ = ["LocalCluster", "NodeUnavailable", "Options"]
