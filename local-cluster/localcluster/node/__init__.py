"""The node: Kubernetes' kubelet and kube-proxy with containerd and runc, the CNI plugins and
CoreDNS (real.py), and what it is made of."""
