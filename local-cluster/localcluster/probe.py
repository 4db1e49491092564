"""Whether this machine runs the real node, said in one line: `python -m localcluster.probe DIR`
starts a cluster with the real node (the kubelet, containerd, runc, the CNI plugins, CoreDNS) and
the probe image, runs one pod to Succeeded, stops it, and prints what it found (exit status 0) or
the first line of why it could not (exit status 1).

`make test` runs it beside the suite and prints its line at the end (tests/conftest.py), so a run
on a machine nobody has tried, CI's first of all, says whether the cluster tests can move to the
real node there (issue 44), without the suite failing because the machine cannot.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from .cluster import NODE, LocalCluster, Options
from .node import host, ociimage

POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "probe", "namespace": "default"},
    "spec": {
        "restartPolicy": "Never",
        "terminationGracePeriodSeconds": 1,
        "containers": [
            {
                "name": "main",
                "image": ociimage.PROBE_IMAGE,
                "imagePullPolicy": "Never",
                "args": ["echo", "ok"],
            }
        ],
    },
}
POD_HANG_GUARD_S = 180.0


def probe(root: Path) -> str:
    """One line: the real node ran a pod here (and how long it took), or an exception says why not."""
    began = time.monotonic()
    archive = ociimage.probe_archive(root / "probe.tar")
    built = time.monotonic()
    cluster = LocalCluster(Options(root / "cluster", image_archives=[archive])).start()
    try:
        started = time.monotonic()
        client = cluster.client()
        client.create("/api/v1/namespaces/default/pods", POD)
        deadline = time.monotonic() + POD_HANG_GUARD_S
        while (phase := client.get("/api/v1/namespaces/default/pods/probe")["status"].get("phase")) not in (
            "Succeeded",
            "Failed",
        ):
            if time.monotonic() > deadline:
                raise TimeoutError(f"the probe pod is still {phase} after {POD_HANG_GUARD_S:.0f} s")
            time.sleep(0.2)
        if phase != "Succeeded":
            raise RuntimeError(
                f"the probe pod {phase}: {client.text('/api/v1/namespaces/default/pods/probe/log')}"
            )
        ran = time.monotonic()
        info = client.get(f"/api/v1/nodes/{NODE}")["status"]["nodeInfo"]
    finally:
        cluster.stop()
    return (
        f"the real node runs here: a pod Succeeded (image {built - began:.1f} s, node "
        f"{started - built:.1f} s, pod {ran - started:.1f} s); {info['containerRuntimeVersion']}, "
        f"kubelet {info['kubeletVersion']}, cgroup v{2 if host.cgroup_v2() else 1}"
    )


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m localcluster.probe DIR", file=sys.stderr)
        return 2
    try:
        print(probe(Path(argv[0])))
    except Exception as exc:  # what the machine lacks, whatever it is, in one line
        lines = str(exc).strip().splitlines() or [""]
        print(f"the real node does not run here: {type(exc).__name__}: {lines[0]}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
