"""Chaos (`make bench-chaos`): the operator keeps its promises while everything goes wrong.

200 ImageGenerations in 4 namespaces with at most 2 running Jobs per namespace, 1000 unrelated
Jobs (not the operator's: no label of ours) and 500 ConfigMaps in the way, an API server that
flaps (some requests of the operator's kinds fail with 500 every second or two; all watches are
dropped every few seconds: bench/operator_cluster.py --flapping), and the operator SIGKILLed five
times while it works (restarted each time, as its Deployment would). The benchmark plays the Job
controller: every Job it sees, it finishes (the result in the store, then Complete), and it
checks that a namespace never runs more than its 2 Jobs at once.

Passes when every resource reaches Succeeded, with exactly one Job per resource (no second Job
for a generation), never more than 2 unfinished Jobs in a namespace, and no leaked slot: after
the storm, 8 more resources in each namespace all run and succeed.

    .venv/bin/python -m bench.chaos [--resources 200] [--kills 5]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from bench.operator import (
    PYTHON,
    Cluster,
    _healthy,
    finish_job,
    image_generation,
    operator_env,
    wait,
    watch_jobs_and_resources,
)

NAMESPACES = 4
SLOTS = 2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resources", type=int, default=200)
    parser.add_argument("--kills", type=int, default=5)
    args = parser.parse_args()
    keep = os.environ.get("BENCH_KEEP")  # a directory to keep the logs in
    with tempfile.TemporaryDirectory(prefix="bench-chaos-") as tmp:
        root = Path(keep) if keep else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        report = run(root, args.resources, args.kills)
    print(json.dumps(report, indent=1))
    return 0 if report["passed"] else 1


def run(root: Path, n: int, kills: int) -> dict[str, Any]:
    cluster = Cluster(root, flapping=True)
    store = root / "store"
    env = operator_env(root, n)
    env["CONTENTGEN_MAX_RUNNING_JOBS_PER_NAMESPACE"] = str(SLOTS)
    env["CONTENTGEN_RECONCILE_INTERVAL_SECONDS"] = "1"
    health = int(env["CONTENTGEN_HEALTH_PORT"])
    log = (root / "operator.log").open("w")
    lock = threading.Lock()
    jobs: dict[str, dict[str, Any]] = {}  # namespace/name -> the Job as first seen
    unfinished: dict[str, set[str]] = defaultdict(set)
    most_running: dict[str, int] = defaultdict(int)
    finished: set[str] = set()
    succeeded: set[str] = set()
    pool = ThreadPoolExecutor(4)

    def job_seen(kind: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        key = f"{meta['namespace']}/{meta['name']}"
        done = any(c.get("type") == "Complete" for c in (obj.get("status") or {}).get("conditions") or [])
        with lock:
            if kind == "DELETED" or done:
                unfinished[meta["namespace"]].discard(key)
                return
            if key not in jobs:
                jobs[key] = obj
                unfinished[meta["namespace"]].add(key)
                most_running[meta["namespace"]] = max(
                    most_running[meta["namespace"]], len(unfinished[meta["namespace"]])
                )
                pool.submit(finish, obj)

    def finish(job: dict[str, Any]) -> None:
        time.sleep(0.3)  # a short run
        finish_job(cluster, store, job)
        with lock:
            finished.add(f"{job['metadata']['namespace']}/{job['metadata']['name']}")

    def resource_seen(kind: str, obj: dict[str, Any]) -> None:
        if (obj.get("status") or {}).get("phase") == "Succeeded":
            with lock:
                succeeded.add(f"{obj['metadata']['namespace']}/{obj['metadata']['name']}")

    def start_operator() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [PYTHON, "-m", "contentgen", "operator"], env=env, stdout=log, stderr=subprocess.STDOUT
        )

    process = start_operator()
    began = time.monotonic()
    try:
        wait(lambda: _healthy(health), 120, "the operator")
        names = cluster.namespaces(NAMESPACES)
        # In the way: Jobs that are not the operator's, and other objects.
        foreign = [
            (
                names[i % NAMESPACES],
                {
                    "apiVersion": "batch/v1",
                    "kind": "Job",
                    "metadata": {"name": f"foreign-{i}", "labels": {"team": "other"}},
                    "spec": {
                        "template": {
                            "spec": {
                                "restartPolicy": "Never",
                                "containers": [{"name": "c", "image": "busybox:1"}],
                            }
                        }
                    },
                },
            )
            for i in range(1000)
        ]
        others = [
            (
                names[i % NAMESPACES],
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "metadata": {"name": f"cm-{i}"},
                    "data": {"k": "v"},
                },
            )
            for i in range(500)
        ]
        with ThreadPoolExecutor(16) as creator:
            list(
                creator.map(
                    lambda nb: retry(lambda: cluster.post(f"/apis/batch/v1/namespaces/{nb[0]}/jobs", nb[1])),
                    foreign,
                )
            )
            list(
                creator.map(
                    lambda nb: retry(lambda: cluster.post(f"/api/v1/namespaces/{nb[0]}/configmaps", nb[1])),
                    others,
                )
            )
        watchers = watch_jobs_and_resources(cluster, job_seen, resource_seen)

        def create(batch: range) -> None:
            bodies = [(names[i % NAMESPACES], image_generation(f"r{i}", "chaos", "a storm")) for i in batch]
            with ThreadPoolExecutor(16) as creator:
                list(
                    creator.map(
                        lambda nb: retry(
                            lambda: cluster.post(
                                f"/apis/contentgen.io/v1alpha1/namespaces/{nb[0]}/imagegenerations", nb[1]
                            )
                        ),
                        bodies,
                    )
                )

        create(range(n))
        killed = 0
        for _ in range(kills):
            time.sleep(3.0)
            process.send_signal(signal.SIGKILL)
            process.wait(30)
            killed += 1
            process = start_operator()  # the same pod name: it takes its Lease back at once

        def succeeded_at_least(count: int) -> bool:
            with lock:
                print(
                    f"jobs {len(jobs)} finished {len(finished)} succeeded {len(succeeded)}",
                    file=sys.stderr,
                    flush=True,
                )
                return len(succeeded) >= count

        wait_every(lambda: succeeded_at_least(n), 1800, 5.0, f"{n} resources Succeeded")
        # No leaked slot: more work still runs everywhere.
        create(range(n, n + 8 * NAMESPACES))
        wait_every(lambda: succeeded_at_least(n + 8 * NAMESPACES), 600, 5.0, "the resources after the storm")
        total = n + 8 * NAMESPACES
        flapping = json.loads((root / "flapping.json").read_text())
        per_resource = defaultdict(list)
        for key, job in jobs.items():
            namespace = job["metadata"]["namespace"]
            per_resource[f"{namespace}/{job['metadata']['labels']['app.kubernetes.io/instance']}"].append(key)
        duplicates = {k: v for k, v in per_resource.items() if len(v) != 1}
        report = {
            "resources": total,
            "namespaces": NAMESPACES,
            "slots_per_namespace": SLOTS,
            "operator_kills": killed,
            "injected_500s": flapping["faults"],
            "dropped_watch_rounds": flapping["watch_drops"],
            "foreign_jobs": len(foreign),
            "succeeded": len(succeeded),
            "jobs": len(jobs),
            "resources_with_other_than_one_job": len(duplicates),
            "most_unfinished_jobs_in_a_namespace": max(most_running.values()),
            "seconds": round(time.monotonic() - began, 1),
        }
        report["passed"] = (
            len(succeeded) == total
            and len(jobs) == total
            and not duplicates
            and report["most_unfinished_jobs_in_a_namespace"] <= SLOTS
        )
        for watcher in watchers:
            watcher.stopping = True
        return report
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        cluster.stop()


def wait_every(check: Any, timeout: float, every: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
    raise RuntimeError(f"timed out waiting for {what}")


def retry(call: Any, attempts: int = 20) -> Any:
    """A client's retry of a 500 from the flapping server."""
    for attempt in range(attempts):
        try:
            return call()
        except RuntimeError as exc:
            if ": 500 " not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.1)
    return None


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
