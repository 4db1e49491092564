"""The operator on a busy shared cluster (`make bench-shared`): does what other workloads do cost it?

Two runs of bench/operator.py's operator benchmark (N ImageGenerations in one namespace, the
benchmark playing the Job controller), each on a fresh control plane:

- quiet: nothing else on the cluster;
- busy: before the operator starts, 20,000 Pods and 5,000 Jobs of other workloads in 20 other
  namespaces (Pods bound to a node no kubelet serves, so they exist without running; Jobs
  suspended), and while it works, churn: creates, label updates and deletes of those Pods and
  Jobs at a steady rate, as deployments roll and batch work comes and goes.

Each run first lets the operator idle for IDLE_SECONDS (with the churn running in the busy run)
and measures its CPU time: the difference, over the foreign events of that window, is the CPU the
operator spends per foreign event. Then the N resources run with the churn going on, and the run
reports what bench/operator.py reports (resources/s, RSS per resource, bytes received) plus the
foreign events and the bytes an unselected watch of Pods and Jobs would have received (the
initial listing and every churn event: the size of each written object, as the API server
returns it and a watch would carry it).

Targets (issue 22): the operator's CPU and memory independent of foreign objects, within noise.

    .venv/bin/python -m bench.shared [--resources 1000] [--pods 20000] [--jobs 5000] [--churn 50]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.cluster import Cluster
from bench.operator import Figures, cpu_seconds, operator
from bench.sections import ROOT, replace_section

IDLE_SECONDS = 30.0
FOREIGN_NAMESPACES = 20


def pod(name: str, i: int) -> dict[str, Any]:
    """A pod of another workload, about the size of a real one's spec; bound to a node that no
    kubelet serves: it exists, it never runs."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {"app": f"web-{i % 50}", "pod-template-hash": f"{i % 997:x}", "tier": "frontend"},
            "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9090"},
        },
        "spec": {
            "nodeName": "elsewhere",
            "containers": [
                {
                    "name": "app",
                    "image": "registry.example.com/team/web:1.2.3",
                    "ports": [{"containerPort": 8080, "name": "http"}],
                    "env": [{"name": f"SETTING_{k}", "value": f"value-{k}-{i}"} for k in range(8)],
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                    "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}},
                }
            ],
        },
    }


def job(name: str, i: int) -> dict[str, Any]:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "labels": {"team": f"batch-{i % 20}"}},
        "spec": {
            "suspend": True,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "c", "image": "busybox:1", "args": ["sh", "-c", "exit 0"]}],
                }
            },
        },
    }


PATHS = {"pods": "/api/v1/namespaces/{ns}/pods", "jobs": "/apis/batch/v1/namespaces/{ns}/jobs"}
MAKE = {"pods": pod, "jobs": job}


class Busy:
    """Other workloads: a population of Pods and Jobs, then churn at `rate` writes a second."""

    def __init__(self, pods: int, jobs: int, rate: float) -> None:
        self.population = {"pods": pods, "jobs": jobs}
        self.rate = rate
        self.cluster: Cluster | None = None
        self.names: dict[str, list[tuple[str, str]]] = {"pods": [], "jobs": []}
        self.serial = 0
        self.events = 0  # churn writes that succeeded: a watch event each
        self.event_bytes = 0  # their objects' size, what an unselected watch would have received
        self.listing_bytes = 0  # the size of the foreign Pods and Jobs, an unselected list's
        self.idle_cpu_s = 0.0
        self.idle_events = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def populate(self, cluster: Cluster) -> None:
        self.cluster = cluster
        namespaces = cluster.namespaces(FOREIGN_NAMESPACES, prefix="other")
        for namespace in namespaces:  # what kube-controller-manager would have made (pods need it)
            cluster.post(
                f"/api/v1/namespaces/{namespace}/serviceaccounts",
                {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "default"}},
            )
        items = [
            (kind, namespaces[i % FOREIGN_NAMESPACES], f"{kind[:-1]}-{i}", i)
            for kind, count in self.population.items()
            for i in range(count)
        ]
        began = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda item: self._create(*item, check=True), items))
        print(
            f"{len(items)} foreign objects in {time.monotonic() - began:.0f} s",
            file=sys.stderr,
            flush=True,
        )
        for kind in self.names:  # what an unselected listing would have sent
            response = cluster.http.get(PATHS[kind].replace("/namespaces/{ns}", ""))
            self.listing_bytes += len(response.content)
        self.events = self.event_bytes = 0

    def _create(self, kind: str, namespace: str, name: str, i: int, check: bool = False) -> None:
        assert self.cluster is not None
        response = self.cluster.http.post(PATHS[kind].format(ns=namespace), json=MAKE[kind](name, i))
        if check:
            response.raise_for_status()
        if response.status_code < 300:
            with self.lock:
                self.names[kind].append((namespace, name))
                self.events += 1
                self.event_bytes += len(response.content)

    def _churn_once(self, rng: random.Random) -> None:
        """One write: a new object, a label changed, or one deleted (in equal parts, so the
        population stays the same); Pods four times as often as Jobs."""
        assert self.cluster is not None
        kind = "pods" if rng.random() < 0.8 else "jobs"
        what = rng.choice(("create", "update", "delete"))
        with self.lock:
            self.serial += 1
            serial = self.serial
            names = self.names[kind]
            victim = names.pop(rng.randrange(len(names))) if what == "delete" and names else None
            target = names[rng.randrange(len(names))] if names else None
        if what == "create" or target is None:
            namespace = f"other-{serial % FOREIGN_NAMESPACES}"
            self._create(kind, namespace, f"{kind[:-1]}-churn-{serial}", serial)
            return
        if what == "delete" and victim is not None:
            namespace, name = victim
            response = self.cluster.http.delete(f"{PATHS[kind].format(ns=namespace)}/{name}")
        else:
            namespace, name = target
            response = self.cluster.http.patch(
                f"{PATHS[kind].format(ns=namespace)}/{name}",
                json={"metadata": {"labels": {"revision": str(serial)}}},
                headers={"Content-Type": "application/merge-patch+json"},
            )
        if response.status_code < 300:
            with self.lock:
                self.events += 1
                self.event_bytes += len(response.content)

    def _churn(self) -> None:
        rng = random.Random(22)
        began = time.monotonic()
        done = 0
        with ThreadPoolExecutor(4) as pool:
            while not self.stopping.is_set():
                done += 1
                time.sleep(max(0.0, began + done / self.rate - time.monotonic()))
                pool.submit(self._churn_once, rng)

    def _start_churn(self) -> None:
        self.stopping.clear()
        self.thread = threading.Thread(target=self._churn, daemon=True)
        self.thread.start()

    def _stop_churn(self) -> None:
        self.stopping.set()
        if self.thread is not None:
            self.thread.join(30)

    def idle(self, cluster: Cluster, pid: int) -> None:
        before, events = cpu_seconds(pid), self.events
        if self.rate:
            self._start_churn()
        time.sleep(IDLE_SECONDS)
        self._stop_churn()
        self.idle_cpu_s = cpu_seconds(pid) - before
        self.idle_events = self.events - events

    def start(self) -> None:
        self.started_events, self.started_bytes = self.events, self.event_bytes
        if self.rate:
            self._start_churn()

    def stop(self) -> dict[str, Any]:
        self._stop_churn()
        return {
            "foreign_pods": self.population["pods"],
            "foreign_jobs": self.population["jobs"],
            "idle_seconds": IDLE_SECONDS,
            "idle_operator_cpu_s": round(self.idle_cpu_s, 3),
            "idle_foreign_events": self.idle_events,
            "foreign_events_during_run": self.events - self.started_events,
            "unselected_watch_would_receive_mb": round(
                (self.listing_bytes + self.event_bytes - self.started_bytes) / 2**20, 1
            ),
        }


def table(quiet: Figures, busy: Figures) -> str:
    q, b = quiet.extra or {}, busy.extra or {}
    events = b.get("idle_foreign_events") or 0
    per_event = (
        f"{1000 * (b['idle_operator_cpu_s'] - q['idle_operator_cpu_s']) / events:+.3f} ms" if events else "–"
    )
    rows = [
        "| run | foreign Pods / Jobs | foreign writes while idle / while running | "
        "operator CPU idle (30 s) | resources/s | peak RSS | RSS per resource (peak / settled) | "
        "operator CPU per resource | received by the operator | an unselected watch would receive |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, f, x in (("quiet", quiet, q), ("busy", busy, b)):
        rows.append(
            f"| {name} | {x.get('foreign_pods', 0):,} / {x.get('foreign_jobs', 0):,} | "
            f"{x.get('idle_foreign_events', 0):,} / {x.get('foreign_events_during_run', 0):,} | "
            f"{x.get('idle_operator_cpu_s', 0)} s | {f.per_second} | {f.peak_rss_mb} MB | "
            f"{f.rss_growth_kb_per_resource} / {f.settled_kb_per_resource} KB | {f.operator_cpu_ms} ms | "
            f"{f.received_kb_per_resource} KB per resource | "
            f"{x.get('unselected_watch_would_receive_mb', 0)} MB |"
        )
    rows.append("")
    rows.append(
        f"Operator CPU per foreign event (busy − quiet idle CPU, over the busy idle window's "
        f"{events:,} foreign writes): **{per_event}**; peak RSS busy − quiet: "
        f"**{(busy.peak_rss_mb or 0) - (quiet.peak_rss_mb or 0):+.1f} MB**."
    )
    return "\n".join(rows) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resources", type=int, default=1000)
    parser.add_argument("--pods", type=int, default=20000)
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--churn", type=float, default=50.0, help="foreign writes a second")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "shared-results.json")
    parser.add_argument("--readme", action="store_true", help="write the table into bench/README.md")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    results = {}
    for name, world in (("quiet", Busy(0, 0, 0.0)), ("busy", Busy(args.pods, args.jobs, args.churn))):
        with tempfile.TemporaryDirectory(prefix=f"bench-shared-{name}-") as tmp:
            keep = os.environ.get("BENCH_KEEP")
            root = Path(keep) / name if keep else Path(tmp)
            root.mkdir(parents=True, exist_ok=True)
            results[name] = operator(args.resources, 1, root, world)
        print(json.dumps(asdict(results[name])), flush=True)
    args.out.write_text(json.dumps({k: asdict(v) for k, v in results.items()}, indent=1) + "\n")
    text = table(results["quiet"], results["busy"])
    print(text)
    if args.readme:
        stamp = (
            f"{time.strftime('%Y-%m-%d %H:%M')} on {os.cpu_count()} CPUs, load average "
            f"{load:.1f} at the start (`make bench-shared`): {args.resources:,} ImageGenerations in "
            f"1 namespace; churn {args.churn:g} foreign writes/s\n\n"
        )
        replace_section("bench-shared", stamp + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
