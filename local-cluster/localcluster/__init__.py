"""A local Kubernetes cluster: the real etcd, kube-apiserver, kube-controller-manager and
kube-scheduler (built from their Go modules, see kube/), and one node: the process node, of our
own, that runs pods as local processes, or the real node (a kubelet, containerd and runc). See
README.md."""

from .cluster import LocalCluster, Options
from .node.host import NodeUnavailable
from .node.images import Image

__all__ = ["Image", "LocalCluster", "NodeUnavailable", "Options"]
