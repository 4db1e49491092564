"""Pod start on the real node: `python -m bench.pod_start [-n 50]` (root; `make kube tools` first).

Starts a LocalCluster with the real node (the kubelet, containerd and runc, kube-proxy, CoreDNS)
and its probe image (local-cluster/probe, a static program in an image made from scratch), then
creates N pods one after another, each once the one before is Running, and times each from the
create request to the Running phase as a watch on the pod sees it. Prints the node's start time
and the p50/p95/max of pod create -> Running, with the machine's load average, as JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from localcluster import LocalCluster, Options
from localcluster.client import Client
from localcluster.node import ociimage


def percentile(values: list[float], share: float) -> float:
    """The nearest-rank percentile."""
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, round(share * len(ordered) + 0.5) - 1))]


def pod(name: str) -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": ociimage.PROBE_IMAGE, "imagePullPolicy": "Never"}],
        },
    }


def time_to_running(client: Client, name: str, timeout: float = 120.0) -> float:
    path = "/api/v1/namespaces/default/pods"
    started = time.monotonic()
    created = client.create(path, pod(name))
    version = created["metadata"]["resourceVersion"]
    deadline = started + timeout
    while time.monotonic() < deadline:
        for event in client.watch(
            path, fieldSelector=f"metadata.name={name}", resourceVersion=version, timeoutSeconds=30
        ):
            obj = event.get("object") or {}
            version = (obj.get("metadata") or {}).get("resourceVersion", version)
            if (obj.get("status") or {}).get("phase") == "Running":
                return time.monotonic() - started
    raise RuntimeError(f"pod {name} was not Running in {timeout:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.pod_start", description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=50, help="pods, one after another (50)")
    parser.add_argument(
        "--keep", action="store_true", help="keep the pods between runs (default: delete each)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pod-start-") as tmp:
        root = Path(tmp)
        archive = ociimage.probe_archive(root / "probe.tar")
        began = time.monotonic()
        cluster = LocalCluster(Options(root / "cluster", image_archives=[archive])).start()
        start = time.monotonic() - began
        try:
            client = cluster.client()
            times = []
            for i in range(args.n):
                times.append(time_to_running(client, f"bench-{i}"))  # the earlier pods keep running
            client.close()
        finally:
            cluster.stop()
    result = {
        "cluster_start_s": round(start, 2),
        "control_plane_s": round(cluster.timings["control_plane"], 2),
        "node_s": round(cluster.timings["node"], 2),
        "pods": args.n,
        "create_to_running_p50_s": round(statistics.median(times), 3),
        "create_to_running_p95_s": round(percentile(times, 0.95), 3),
        "create_to_running_max_s": round(max(times), 3),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
