"""A local Kubernetes cluster without containers: the real etcd, kube-apiserver,
kube-controller-manager and kube-scheduler (built from their Go modules, see kube/), and one node
of our own that runs pods as local processes. See README.md."""

from .cluster import LocalCluster, Options
from .node.images import Image

__all__ = ["Image", "LocalCluster", "Options"]
