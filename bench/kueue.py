"""What reading Kueue's Workloads costs (`make bench-kueue`): the operator's lookup of a held Job's
Workload against a watch of all Workloads, on the real API server (etcd and kube-apiserver,
bench/cluster.py), with Kueue's Workload API as its release installs it (its CRD, from the install `make
kube` renders from Kueue's Go module: localcluster/controllers.py); the Workloads and their writes are
made here, at a scale no test cluster's Kueue would reach.

Kueue's Workloads carry none of the Job's labels (only those its `labelKeysToCopy` names; none by
default), so no label selector limits a watch to the operator's: a watch gets every Workload of
the namespaces it watches, each with its pod templates (Kueue copies the Job's), and then every
write Kueue makes to any of them (its scheduler writes a pending Workload's QuotaReserved message
as it tries again). The lookup the operator makes instead (controller/workloads.py) is one list
in the Job's namespace, selected by Kueue's `kueue.x-k8s.io/job-uid` label, per look at a held
Job: its Job's events, and its recheck (10 s doubling to at most a minute).

Setup: FOREIGN Workloads of other teams' Jobs in NAMESPACES namespaces and HELD of ours, each
with the pod template of one of our GPU Jobs (controller/jobs.render_job: about the size of a
real worker's). Measured: the bytes and the median time of one lookup; the bytes and the time of
the listing a watch starts with; the bytes a watch receives per Workload write.

    .venv/bin/python -m bench.kueue [--foreign 2000] [--namespaces 10] [--held 50] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.cluster import Cluster, wait
from contentgen.api import SpecSnapshot
from contentgen.controller.jobs import render_job
from contentgen.controller.settings import OperatorSettings
from localcluster.controllers import CONTROLLERS

GROUP = "/apis/kueue.x-k8s.io/v1beta2"
# Kueue's scheduler's words when a ClusterQueue has no GPU left (flavorassigner: Assignment.Message)
NO_GPU_LEFT = (
    "couldn't assign flavors to pod set main: insufficient unused quota for nvidia.com/gpu in flavor "
    "default-flavor, 1 more needed"
)


def workload_crd() -> dict[str, Any]:
    """Kueue's Workload CRD as its release installs it, without its conversion webhook (nothing
    here serves one; the Workloads are written and read in v1beta2, the version stored)."""
    kueue = CONTROLLERS["kueue"]
    if not kueue.built():
        raise SystemExit("bench.kueue: Kueue's install is not built: run `make kube`")
    (crd,) = [
        d
        for d in json.loads(kueue.manifests.read_text())
        if d["kind"] == "CustomResourceDefinition" and d["metadata"]["name"] == "workloads.kueue.x-k8s.io"
    ]
    crd["spec"].pop("conversion", None)
    return crd  # type: ignore[no-any-return]


def template() -> dict[str, Any]:
    """The pod template of a GPU ImageGeneration's Job, as Kueue copies it into the Workload."""
    snapshot = SpecSnapshot(
        kind="ImageGeneration",
        name="portrait",
        namespace="team",
        uid="5956e2d8-8464-423f-8acd-3294876e7ed9",
        generation=1,
        spec={"owner": "alice", "provider": "cluster", "prompt": "a lighthouse at dusk", "model": "flux-dev"},
    )
    settings = OperatorSettings(queue_name="gpus")
    job = render_job(snapshot, settings)
    return job["spec"]["template"]  # type: ignore[no-any-return]


def workload(name: str, job_uid: str, pod: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "kueue.x-k8s.io/v1beta2",
        "kind": "Workload",
        "metadata": {
            "name": name,
            "labels": {"kueue.x-k8s.io/job-uid": job_uid},
            "ownerReferences": [
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "name": name[4:],
                    "uid": job_uid,
                    "controller": True,
                }
            ],
        },
        "spec": {"queueName": "gpus", "podSets": [{"name": "main", "count": 1, "template": pod}]},
    }


def pending(c: Cluster, namespace: str, name: str) -> int:
    """Kueue's scheduler writing why the Workload waits; the bytes of the object a watch gets."""
    condition = {
        "type": "QuotaReserved",
        "status": "False",
        "reason": "Pending",
        "message": NO_GPU_LEFT,
        "lastTransitionTime": "2026-11-23T12:00:00Z",
    }
    response = c.http.patch(
        f"{GROUP}/namespaces/{namespace}/workloads/{name}/status",
        json={"status": {"conditions": [condition]}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    response.raise_for_status()
    return len(response.content)


def run(foreign: int, namespaces: int, held: int, rounds: int) -> dict[str, float]:
    pod = template()
    with tempfile.TemporaryDirectory(prefix="bench-kueue-") as tmp:
        c = Cluster(Path(tmp))
        try:
            c.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", workload_crd())
            wait(lambda: c.http.get(f"{GROUP}/workloads").status_code == 200, 60, "Workloads served")
            spaces = c.namespaces(namespaces, prefix="team")
            for i in range(foreign):
                ns = spaces[i % namespaces]
                c.post(f"{GROUP}/namespaces/{ns}/workloads", workload(f"job-other-{i}", f"other-{i}", pod))
            ours = [(spaces[i % namespaces], f"held-{i}") for i in range(held)]
            for ns, uid in ours:
                c.post(f"{GROUP}/namespaces/{ns}/workloads", workload(f"job-{uid}", uid, pod))
            write_bytes = [pending(c, ns, f"job-{uid}") for ns, uid in ours]
            lookups: list[tuple[float, int]] = []
            for _ in range(rounds):
                for ns, uid in ours:
                    began = time.perf_counter()
                    response = c.http.get(
                        f"{GROUP}/namespaces/{ns}/workloads",
                        params={"labelSelector": f"kueue.x-k8s.io/job-uid={uid}"},
                    )
                    response.raise_for_status()
                    assert len(response.json()["items"]) == 1
                    lookups.append((time.perf_counter() - began, len(response.content)))
            listings: list[tuple[float, int]] = []
            for _ in range(rounds):
                began = time.perf_counter()
                response = c.http.get(f"{GROUP}/workloads")
                response.raise_for_status()
                listings.append((time.perf_counter() - began, len(response.content)))
        finally:
            c.stop()
    return {
        "lookup_ms": 1000 * statistics.median(t for t, _ in lookups),
        "lookup_bytes": statistics.median(b for _, b in lookups),
        "listing_ms": 1000 * statistics.median(t for t, _ in listings),
        "listing_bytes": statistics.median(b for _, b in listings),
        "write_bytes": statistics.median(write_bytes),
        "workloads": foreign + held,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--foreign", type=int, default=2000)
    parser.add_argument("--namespaces", type=int, default=10)
    parser.add_argument("--held", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    r = run(args.foreign, args.namespaces, args.held, args.rounds)
    kib, mib = 1024, 1024 * 1024
    hourly = args.held * 60  # lookups of the held Jobs in an hour, once their rechecks reach the minute
    rows = [
        (
            "lookup of one held Job's Workload (label-selected list)",
            f"{r['lookup_bytes'] / kib:.1f} KiB, {r['lookup_ms']:.1f} ms",
        ),
        (
            "a watch's first listing (every Workload)",
            f"{r['listing_bytes'] / mib:.1f} MiB, {r['listing_ms']:.0f} ms",
        ),
        ("a watch, per Workload write (Kueue's scheduler, any team's)", f"{r['write_bytes'] / kib:.1f} KiB"),
        (
            f"lookups of {args.held} held Jobs for an hour",
            f"{hourly} requests, {hourly * r['lookup_bytes'] / mib:.1f} MiB",
        ),
    ]
    print(
        f"{int(r['workloads'])} Workloads ({args.held} of held Jobs of ours), median of {args.rounds} rounds:"
    )
    for what, measured in rows:
        print(f"| {what} | {measured} |")


if __name__ == "__main__":
    main()
