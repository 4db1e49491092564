"""Chaos (`make bench-chaos`): the operator keeps its promises while everything goes wrong, on the
real control plane.

The control plane is the real etcd and kube-apiserver (bench/cluster.py). The benchmark plays the
Job controller and the worker, as bench/operator.py does: every Job it sees, it finishes a moment
later (the result in the store, then SuccessCriteriaMet and Complete), retrying while the API
server is away (bench/faults.py is the cluster with the real Job controller, node and worker
image under faults). The operator runs as its own process under its ServiceAccount's token,
through localcluster's fault proxy.

200 ImageGenerations in 4 namespaces with at most 2 running Jobs per namespace; 1000 unrelated
Jobs (suspended, no label of ours) and 500 ConfigMaps in the way. While they run:
- the fault proxy answers requests of the operator's kinds with 500s, a burst every second or two,
  and cuts every watch now and then;
- kube-apiserver is restarted twice (every watch breaks; a watch resumed from before the restart
  is answered 410 Gone, so clients list again);
- the operator is SIGKILLed five times and started again each time (as its Deployment would).

Passes when every resource reaches Succeeded with exactly one Job per resource (no second Job for
a generation: counted from a final listing of the Jobs, not from the watch), never more than 2
unfinished Jobs in a namespace (as the benchmark's watch saw them), and no leaked slot: after the
storm, 8 more resources in each namespace all run and succeed.

    .venv/bin/python -m bench.chaos [--resources 200] [--kills 5] [--apiserver-restarts 2]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

from bench.cluster import Cluster
from bench.cluster import wait as wait_until
from bench.operator import (
    PYTHON,
    _healthy,
    finish_job,
    image_generation,
    operator_env,
    watch_jobs_and_resources,
)
from localcluster.client import ApiError

NAMESPACES = 4
SLOTS = 2
BURST_SECONDS = 2.0
# What the fault proxy fails now and then: the operator's writes, lists and watches.
FAULTS = [
    ("create", "jobs"),
    ("patch", "imagegenerations/status"),
    ("create", "events"),
    ("patch", "imagegenerations"),
    ("list", "imagegenerations"),
    ("list", "jobs"),
    ("watch", "jobs"),
    ("watch", "imagegenerations"),
    ("watch", "pods"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resources", type=int, default=200)
    parser.add_argument("--kills", type=int, default=5)
    parser.add_argument("--apiserver-restarts", type=int, default=2)
    args = parser.parse_args()
    keep = os.environ.get("BENCH_KEEP")  # a directory to keep the logs in
    with tempfile.TemporaryDirectory(prefix="bench-chaos-") as tmp:
        root = Path(keep) if keep else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        report = run(root, args.resources, args.kills, args.apiserver_restarts)
    print(json.dumps(report, indent=1))
    return 0 if report["passed"] else 1


class Flapping(threading.Thread):
    """Bursts of 500s on the operator's requests, and now and then every watch cut."""

    def __init__(self, cluster: Cluster) -> None:
        super().__init__(daemon=True)
        self.cluster = cluster
        self.drops = 0
        self.stopping = threading.Event()

    def run(self) -> None:
        proxy = self.cluster.proxy
        assert proxy is not None
        rng = random.Random(7)
        bursts: dict[tuple[str, str], float] = {}  # key -> when its burst is over
        while not self.stopping.wait(rng.uniform(0.5, 2.0)):
            now = time.monotonic()
            for key, over in list(bursts.items()):
                if over <= now:  # what the burst's window did not serve is withdrawn
                    proxy.withdraw(*key)
                    del bursts[key]
            key = rng.choice(FAULTS)
            # A burst: up to 1-3 such requests fail within the next BURST_SECONDS, as on a real
            # flapping server, where failures come in windows of time. (Failures kept until the
            # next request, whenever it came, made a client that backs off meet one on every
            # attempt: the informer's watches, retried every 30 s, never got through.)
            proxy.withdraw(*key)
            proxy.inject(*key, times=rng.randint(1, 3))
            bursts[key] = now + BURST_SECONDS
            if rng.random() < 0.3:
                proxy.drop_watches()
                self.drops += 1


def run(root: Path, n: int, kills: int, restarts: int) -> dict[str, Any]:
    began = time.monotonic()
    cluster = Cluster(root, proxy=True)
    env = operator_env(root, n)
    env["CONTENTGEN_MAX_RUNNING_JOBS_PER_NAMESPACE"] = str(SLOTS)
    env["CONTENTGEN_RECONCILE_INTERVAL_SECONDS"] = "1"
    health = int(env["CONTENTGEN_HEALTH_PORT"])
    log = (root / "operator.log").open("w")
    lock = threading.Lock()
    jobs: dict[str, dict[str, Any]] = {}  # namespace/name -> the Job as first seen
    unfinished: dict[str, set[str]] = defaultdict(set)
    most_running: dict[str, int] = defaultdict(int)
    succeeded: set[str] = set()
    flapping = Flapping(cluster)
    finisher = ThreadPoolExecutor(4)

    def finish(job: dict[str, Any]) -> None:
        """The Job controller's part: a short run, then the result and Complete (retried while
        the API server restarts)."""
        time.sleep(0.3)
        for _ in range(120):
            try:
                finish_job(cluster, cluster.store, job)
                return
            except (httpx.TransportError, httpx.HTTPStatusError) as exc:
                if isinstance(exc, httpx.HTTPStatusError) and exc.response.status_code < 500:
                    raise
                time.sleep(0.5)

    def job_seen(kind: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        key = f"{meta['namespace']}/{meta['name']}"
        conditions = (obj.get("status") or {}).get("conditions") or []
        done = any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True" for c in conditions)
        with lock:
            first = key not in jobs
            jobs.setdefault(key, obj)
            if kind == "DELETED" or done:
                unfinished[meta["namespace"]].discard(key)
            elif first:
                unfinished[meta["namespace"]].add(key)
                most_running[meta["namespace"]] = max(
                    most_running[meta["namespace"]], len(unfinished[meta["namespace"]])
                )
                finisher.submit(finish, obj)

    def resource_seen(kind: str, obj: dict[str, Any]) -> None:
        if (obj.get("status") or {}).get("phase") == "Succeeded":
            with lock:
                succeeded.add(f"{obj['metadata']['namespace']}/{obj['metadata']['name']}")

    def start_operator() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [PYTHON, "-m", "contentgen", "operator"], env=env, stdout=log, stderr=subprocess.STDOUT
        )

    process = start_operator()
    exits: list[int] = []  # exit codes of the operator's own exits (not our kills)
    supervising = threading.Event()

    def supervise() -> None:
        """What its Deployment does: an operator that exits is started again (after a second)."""
        nonlocal process
        while not supervising.wait(1.0):
            with lock:
                code = process.poll()
                if code is not None:
                    exits.append(code)
                    process = start_operator()

    threading.Thread(target=supervise, daemon=True).start()
    try:
        wait_until(lambda: _healthy(health), 120, "the operator")
        names = cluster.namespaces(NAMESPACES, prefix="chaos")
        in_the_way(cluster, names)
        watchers = watch_jobs_and_resources(cluster, job_seen, resource_seen)
        flapping.start()

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
        # The storm: the operator killed every few seconds, the API server restarted in between.
        storm = ["kill"] * kills + ["restart"] * restarts
        random.Random(11).shuffle(storm)
        killed = restarted = 0
        for blow in storm:
            time.sleep(4.0)
            if blow == "kill":
                with lock:
                    process.send_signal(signal.SIGKILL)
                    process.wait(30)
                    killed += 1
                    process = start_operator()  # the same pod name: it takes its Lease back at once
            else:
                cluster.restart_apiserver()
                restarted += 1

        def succeeded_at_least(count: int) -> bool:
            with lock:
                print(f"jobs {len(jobs)} succeeded {len(succeeded)}", file=sys.stderr, flush=True)
                return len(succeeded) >= count

        wait_until(lambda: succeeded_at_least(n), 1800, f"{n} resources Succeeded", every=5.0)
        # No leaked slot: more work still runs everywhere.
        total = n + 8 * NAMESPACES
        create(range(n, total))
        wait_until(lambda: succeeded_at_least(total), 900, "the resources after the storm", every=5.0)
        flapping.stopping.set()
        for watcher in watchers:
            watcher.stopping = True
        listed = list_managed_jobs(cluster)
        per_generation = Counter(
            (
                j["metadata"]["namespace"],
                j["metadata"]["labels"]["app.kubernetes.io/instance"],
                j["metadata"]["labels"]["contentgen.io/generation"],
            )
            for j in listed
        )
        duplicates = {"/".join(k): v for k, v in per_generation.items() if v != 1}
        report = {
            "resources": total,
            "namespaces": NAMESPACES,
            "slots_per_namespace": SLOTS,
            "job_controller_and_worker": "the benchmark",
            "operator_kills": killed,
            "operator_exits_on_its_own": len(exits),
            "apiserver_restarts": restarted,
            "injected_500s": sum(cluster.proxy.injected.values()) if cluster.proxy else 0,
            "watch_cuts": flapping.drops,
            "foreign_jobs": FOREIGN_JOBS,
            "succeeded": len(succeeded),
            "jobs": len(listed),
            "generations_with_other_than_one_job": len(duplicates),
            "most_unfinished_jobs_in_a_namespace": max(most_running.values()),
            "seconds": round(time.monotonic() - began, 1),
        }
        report["passed"] = (
            len(succeeded) == total
            and len(listed) == total
            and not duplicates
            and report["most_unfinished_jobs_in_a_namespace"] <= SLOTS
        )
        return report
    finally:
        finisher.shutdown(wait=False, cancel_futures=True)
        supervising.set()
        flapping.stopping.set()
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        cluster.stop()


FOREIGN_JOBS, CONFIG_MAPS = 1000, 500


def in_the_way(cluster: Cluster, names: list[str]) -> None:
    """Jobs that are not the operator's (no label of ours; suspended, so that the Job controller
    keeps them but makes no pods), and ConfigMaps."""
    foreign = [
        (
            names[i % NAMESPACES],
            "jobs",
            {
                "apiVersion": "batch/v1",
                "kind": "Job",
                "metadata": {"name": f"foreign-{i}", "labels": {"team": "other"}},
                "spec": {
                    "suspend": True,
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "c", "image": "busybox:1"}],
                        }
                    },
                },
            },
        )
        for i in range(FOREIGN_JOBS)
    ]
    others = [
        (
            names[i % NAMESPACES],
            "configmaps",
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"cm-{i}"}, "data": {"k": "v"}},
        )
        for i in range(CONFIG_MAPS)
    ]
    group = {"jobs": "/apis/batch/v1", "configmaps": "/api/v1"}
    with ThreadPoolExecutor(16) as creator:
        list(
            creator.map(
                lambda item: retry(
                    lambda: cluster.post(f"{group[item[1]]}/namespaces/{item[0]}/{item[1]}", item[2])
                ),
                [*foreign, *others],
            )
        )


def list_managed_jobs(cluster: Cluster) -> list[dict[str, Any]]:
    response = cluster.http.get(
        "/apis/batch/v1/jobs", params={"labelSelector": "app.kubernetes.io/managed-by=contentgen-operator"}
    )
    response.raise_for_status()
    return list(response.json()["items"])


def retry(call: Callable[[], Any], attempts: int = 60) -> Any:
    """A client's retry while the API server flaps or restarts (connection errors, 5xx, 429). A
    create answered 409 after a failed attempt had gone through: done."""
    for attempt in range(attempts):
        try:
            return call()
        except ApiError as exc:
            if exc.code == 409 and attempt:
                return None
            if exc.code < 429 or attempt == attempts - 1:
                raise
        except (httpx.TransportError, OSError):
            if attempt == attempts - 1:
                raise
        time.sleep(0.5)
    return None


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
