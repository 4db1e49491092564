"""The operator at scale (`make bench-operator`): the real operator, as its own process under its
ServiceAccount's token, against the real etcd and kube-apiserver (bench/cluster.py), with N
ImageGenerations in 1 or 20 namespaces. No kube-controller-manager and no node: the benchmark plays
the Job controller, finishing each Job the way a worker and the Job controller would (the result
in the store, then the Job's SuccessCriteriaMet and Complete conditions), so that what is measured
is the operator and the API server, not 5,000 worker processes on two cores.

Reported per (N, namespaces):
- resources/s until every Job exists, from the first create;
- median and p99 from a Job's completion to its resource's Succeeded, with Jobs completing at
  a steady 50 per second (as in a busy cluster; a burst is the chaos bench's business);
- the operator's API requests per resource (until the Jobs exist, and in all);
- the operator's peak RSS and its growth per resource;
- CPU time per resource of the operator, the API server (with etcd) and this client until every
  Job exists:
  on a shared two-core machine, what bounds resources/s;
- the same for a raw baseline in the same run, on a fresh control plane of its own: the Jobs the
  operator would render, created directly with the kubernetes client (16 threads), no operator.
  operator ÷ baseline is the headline.

API requests are counted per user from the API server's audit log.

    .venv/bin/python -m bench.operator [--sizes 100,1000,5000] [--namespaces 1,20] [--readme]

(as a module: run as a script from bench/, this file would shadow the standard library's `operator`)
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl

import httpx

from bench.cluster import OPERATOR_USER, Cluster, Received, wait
from bench.sections import replace_section

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
WORKERS = 16
COMPLETIONS_PER_SECOND = 50


@dataclass
class Figures:
    mode: str  # operator | baseline
    resources: int
    namespaces: int
    seconds_to_jobs: float
    per_second: float
    completion_median_s: float | None = None
    completion_p99_s: float | None = None
    calls_until_jobs: float | None = None
    calls_in_all: float | None = None
    peak_rss_mb: float | None = None
    rss_growth_kb_per_resource: float | None = None  # peak over the idle operator, per resource
    settled_kb_per_resource: float | None = None  # once every resource has settled, over idle
    # CPU time per resource until every Job exists: where the machine's two cores go
    operator_cpu_ms: float | None = None
    plane_cpu_ms: float | None = None
    client_cpu_ms: float | None = None  # this process: creating the resources (or the Jobs)
    # bytes the operator received over TCP (watches and answers), from the first create on
    received_kb_per_resource: float | None = None
    extra: dict[str, Any] | None = None  # what a World measured (bench/shared.py)


class Watch(threading.Thread):
    """Follows a collection across namespaces; `seen(name, object)` for every event."""

    def __init__(self, cluster: Cluster, path: str, seen: Callable[[str, dict[str, Any]], None]) -> None:
        super().__init__(daemon=True)
        self.cluster, self.path, self.seen = cluster, path, seen
        self.ready = threading.Event()
        self.stopping = False

    def run(self) -> None:
        """List, then watch from the list's version; a dropped watch is watched again from the last
        version seen, a 410 or an error lists again (what an informer does)."""
        client = self.cluster.client(timeout=None)
        version = ""
        while not self.stopping:
            try:
                if not version:
                    listing = client.get(self.path)
                    if listing.status_code != 200:
                        time.sleep(0.2)
                        continue
                    body = listing.json()
                    for item in body["items"]:
                        self.seen("ADDED", item)
                    version = body["metadata"]["resourceVersion"]
                    self.ready.set()
                # httpx replaces a URL's query with `params`: the path's selector goes in them.
                path, _, query = self.path.partition("?")
                params = {
                    **dict(parse_qsl(query)),
                    "watch": "true",
                    "resourceVersion": version,
                    "allowWatchBookmarks": "true",
                }
                with client.stream("GET", path, params=params) as response:
                    if response.status_code != 200:
                        version = ""
                        continue
                    for line in response.iter_lines():
                        if self.stopping:
                            return
                        if not line:
                            continue
                        event = json.loads(line)
                        if event["type"] == "ERROR":
                            version = ""  # 410 Gone: list again
                            break
                        version = event["object"]["metadata"].get("resourceVersion", version)
                        if event["type"] != "BOOKMARK":
                            self.seen(event["type"], event["object"])
            except (httpx.HTTPError, ValueError):
                if self.stopping:
                    return
                time.sleep(0.2)


MANAGED_JOBS = "/apis/batch/v1/jobs?labelSelector=app.kubernetes.io%2Fmanaged-by%3Dcontentgen-operator"
IMAGEGENERATIONS = "/apis/contentgen.io/v1alpha1/imagegenerations"


Seen = Callable[[str, dict[str, Any]], None]


def watch_jobs_and_resources(cluster: Cluster, job_seen: Seen, resource_seen: Seen) -> list[Watch]:
    """Watch the operator's Jobs (label-selected) and the ImageGenerations; return once both listed."""
    watchers = [Watch(cluster, MANAGED_JOBS, job_seen), Watch(cluster, IMAGEGENERATIONS, resource_seen)]
    for watcher in watchers:
        watcher.start()
        watcher.ready.wait(60)
    return watchers


def image_generation(name: str, owner: str, prompt: str) -> dict[str, Any]:
    """An offline ImageGeneration of one image: what the benchmarks create."""
    return {
        "apiVersion": "contentgen.io/v1alpha1",
        "kind": "ImageGeneration",
        "metadata": {"name": name},
        "spec": {"owner": owner, "prompt": prompt, "provider": "offline", "numImages": 1},
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def plane_seconds(cluster: Cluster) -> float:
    return sum(cpu_seconds(pid) for pid in cluster.pids())


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def snapshot_job(name: str, namespace: str, index: int) -> dict[str, Any]:
    from contentgen.api import SpecSnapshot
    from contentgen.controller.jobs import render_job
    from contentgen.controller.settings import OperatorSettings

    uid = f"00000000-0000-4000-8000-{index:012d}"
    spec = {"owner": "bench", "prompt": "a lighthouse", "provider": "offline", "numImages": 1}
    snapshot = SpecSnapshot(kind="ImageGeneration", name=name, namespace=namespace, uid=uid, spec=spec)
    job = render_job(snapshot, OperatorSettings(store="file:///tmp/bench", offline=True))
    job["metadata"]["ownerReferences"] = []  # no owner: the baseline has no resources
    job["spec"]["template"]["spec"]["serviceAccountName"] = "default"
    return job


def baseline(n: int, namespaces: int, root: Path) -> Figures:
    """The Jobs created directly with the kubernetes client: what the API server can take."""
    import kubernetes

    cluster = Cluster(root)
    try:
        names = cluster.namespaces(namespaces)
        jobs = [snapshot_job(f"r{i}", names[i % namespaces], i) for i in range(n)]
        config = kubernetes.client.Configuration()
        kubernetes.config.load_kube_config(
            config_file=str(cluster.control.admin_kubeconfig), client_configuration=config
        )
        api = kubernetes.client.BatchV1Api(kubernetes.client.ApiClient(config))
        api.api_client.rest_client.pool_manager.connection_pool_kw["maxsize"] = WORKERS
        before = rss_kb(os.getpid(), "VmHWM")
        plane_cpu, client_cpu = plane_seconds(cluster), cpu_seconds(os.getpid())
        began = time.monotonic()
        with ThreadPoolExecutor(WORKERS) as pool:
            list(
                pool.map(
                    lambda job: api.create_namespaced_job(
                        job["metadata"]["namespace"], job, _request_timeout=60
                    ),
                    jobs,
                )
            )
        elapsed = time.monotonic() - began
        plane_cpu = plane_seconds(cluster) - plane_cpu
        client_cpu = cpu_seconds(os.getpid()) - client_cpu
        peak = rss_kb(os.getpid(), "VmHWM")
        return Figures(
            "baseline",
            n,
            namespaces,
            round(elapsed, 2),
            round(n / elapsed, 1),
            calls_until_jobs=1.0,
            calls_in_all=1.0,
            peak_rss_mb=round(peak / 1024, 1),
            rss_growth_kb_per_resource=round(max(0, peak - before) / n, 1),
            plane_cpu_ms=round(1000 * plane_cpu / n, 2),
            client_cpu_ms=round(1000 * client_cpu / n, 2),
        )
    finally:
        cluster.stop()


class World(Protocol):
    """What else happens on the cluster (bench/shared.py: other workloads' pods and Jobs)."""

    def populate(self, cluster: Cluster) -> None:
        """Before the operator starts."""

    def idle(self, cluster: Cluster, pid: int) -> None:
        """While the operator idles, before the resources are created."""

    def start(self) -> None:
        """From the first create..."""

    def stop(self) -> dict[str, Any]:
        """...until every resource has settled: what it measured."""


def request_costs(n: int, root: Path) -> dict[str, dict[str, float]]:
    """The API server's (and etcd's) CPU time per request of each kind the operator's path makes,
    on a fresh control plane, n of each from 16 threads: the Job (the baseline's one request), the
    user's ImageGeneration, its status patch to JobCreated (the operator's, from `decide`), and the
    JobCreated Event. Together they bound what operator ÷ baseline can be where the API server's
    CPU is what limits both."""
    from contentgen.api import KINDS, now
    from contentgen.controller.decide import Observed, World, decide
    from contentgen.controller.events import event_body
    from contentgen.controller.reconciler import status_patch

    cluster = Cluster(root)
    try:
        (namespace,) = cluster.namespaces(1, prefix="costs")
        kind = KINDS["ImageGeneration"]
        made: list[dict[str, Any]] = []
        lock = threading.Lock()

        def create_resource(i: int) -> None:
            response = cluster.http.post(
                f"/apis/contentgen.io/v1alpha1/namespaces/{namespace}/imagegenerations",
                json=image_generation(f"c{i}", "bench", "a lighthouse"),
            )
            response.raise_for_status()
            with lock:
                made.append(response.json())

        def patch_status(body: dict[str, Any]) -> None:
            meta = body["metadata"]
            res = Observed(kind, meta["name"], namespace, meta["uid"], 1, body["spec"], {})
            decision = decide(res, World(now=now(), may_start=True))
            response = cluster.http.patch(
                f"/apis/contentgen.io/v1alpha1/namespaces/{namespace}/imagegenerations/{meta['name']}/status",
                json={"status": status_patch({}, decision.status)},
                headers={"Content-Type": "application/merge-patch+json"},
            )
            response.raise_for_status()

        def post_event(body: dict[str, Any]) -> None:
            event = event_body(body, "Normal", "JobCreated", f"created Job {body['metadata']['name']}-g1")
            cluster.post(f"/api/v1/namespaces/{namespace}/events", event)

        def create_job(i: int) -> None:
            job = snapshot_job(f"j{i}", namespace, i)
            cluster.post(f"/apis/batch/v1/namespaces/{namespace}/jobs", job)

        steps: list[tuple[str, Callable[[Any], None], Callable[[], list[Any]]]] = [
            ("create Job (the baseline)", create_job, lambda: list(range(n))),
            ("create ImageGeneration (the user)", create_resource, lambda: list(range(n))),
            ("patch its status to JobCreated", patch_status, lambda: list(made)),
            ("create an Event", post_event, lambda: list(made)),
        ]
        costs: dict[str, dict[str, float]] = {}
        for name, call, items in steps:
            work = items()
            plane, began = plane_seconds(cluster), time.monotonic()
            with ThreadPoolExecutor(WORKERS) as pool:
                list(pool.map(call, work))
            elapsed = time.monotonic() - began
            costs[name] = {
                "api_server_cpu_ms": round(1000 * (plane_seconds(cluster) - plane) / len(work), 2),
                "per_second": round(len(work) / elapsed, 1),
            }
        return costs
    finally:
        cluster.stop()


def costs_table(costs: dict[str, dict[str, float]]) -> str:
    rows = ["| request | API server + etcd CPU per request | requests/s (16 threads) |", "|---|---|---|"]
    rows += [f"| {k} | {v['api_server_cpu_ms']} ms | {v['per_second']} |" for k, v in costs.items()]
    baseline = next(iter(costs.values()))["api_server_cpu_ms"]
    path = sum(v["api_server_cpu_ms"] for v in costs.values())  # the Job is one of them
    rows.append(
        f"| the operator's path (the user's create, the Job, the status, an Event) | {path:.2f} ms | "
        f"bound on operator ÷ baseline where the API server is the limit: **{baseline / path:.2f}×** |"
    )
    return "\n".join(rows) + "\n"


def operator(n: int, namespaces: int, root: Path, world: World | None = None) -> Figures:
    cluster = Cluster(root)
    if world is not None:
        world.populate(cluster)
    store = cluster.store
    log = (root / "operator.log").open("w")
    env = operator_env(root, n)
    health = int(env["CONTENTGEN_HEALTH_PORT"])
    process = subprocess.Popen(
        [PYTHON, "-m", "contentgen", "operator"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    jobs: dict[str, float] = {}
    succeeded: dict[str, float] = {}
    lock = threading.Lock()

    def job_seen(kind: str, obj: dict[str, Any]) -> None:
        if kind in ("ADDED", "MODIFIED"):
            with lock:
                jobs.setdefault(f"{obj['metadata']['namespace']}/{obj['metadata']['name']}", time.monotonic())

    def resource_seen(kind: str, obj: dict[str, Any]) -> None:
        if (obj.get("status") or {}).get("phase") == "Succeeded":
            with lock:
                succeeded.setdefault(
                    f"{obj['metadata']['namespace']}/{obj['metadata']['name']}", time.monotonic()
                )

    try:
        wait(lambda: _healthy(health), 120, "the operator")
        names = cluster.namespaces(namespaces)
        watchers = watch_jobs_and_resources(cluster, job_seen, resource_seen)
        time.sleep(1.0)
        if world is not None:
            world.idle(cluster, process.pid)
        idle = rss_kb(process.pid)
        calls_before = cluster.requests.by(OPERATOR_USER)
        received = Received(process.pid)
        received.start()
        if world is not None:
            world.start()
        bodies = [
            (names[i % namespaces], image_generation(f"r{i}", "bench", "a lighthouse")) for i in range(n)
        ]
        cpu = [cpu_seconds(process.pid), plane_seconds(cluster), cpu_seconds(os.getpid())]
        began = time.monotonic()
        with ThreadPoolExecutor(WORKERS) as pool:
            list(
                pool.map(
                    lambda nb: cluster.post(
                        f"/apis/contentgen.io/v1alpha1/namespaces/{nb[0]}/imagegenerations", nb[1]
                    ),
                    bodies,
                )
            )
        wait(lambda: len(jobs) >= n, 3600, f"{n} Jobs")
        to_jobs = max(jobs.values()) - began
        now = [cpu_seconds(process.pid), plane_seconds(cluster), cpu_seconds(os.getpid())]
        cpu = [b - a for a, b in zip(cpu, now, strict=True)]
        time.sleep(2.0)  # let the last status writes land before counting
        calls_until_jobs = cluster.requests.by(OPERATOR_USER) - calls_before

        # Finish every Job as a worker and the Job controller would: the result, then Complete.
        completed: dict[str, float] = {}
        listing = cluster.http.get(
            "/apis/batch/v1/jobs",
            params={"labelSelector": "app.kubernetes.io/managed-by=contentgen-operator"},
        ).json()["items"]

        def finish(job: dict[str, Any]) -> None:
            completed[
                f"{job['metadata']['namespace']}/{job['metadata']['labels']['app.kubernetes.io/instance']}"
            ] = time.monotonic()
            finish_job(cluster, store, job)

        # A steady stream of completions, as Jobs finish in a cluster: COMPLETIONS_PER_SECOND.
        start = time.monotonic()

        def paced(item: tuple[int, dict[str, Any]]) -> None:
            time.sleep(max(0.0, start + item[0] / COMPLETIONS_PER_SECOND - time.monotonic()))
            finish(item[1])

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(paced, enumerate(listing)))
        wait(lambda: len(succeeded) >= n, 3600, f"{n} resources Succeeded")
        latencies = sorted(succeeded[k] - completed[k] for k in completed if k in succeeded)
        time.sleep(8.0)  # kopf's per-object workers end after their idle timeout
        extra = world.stop() if world is not None else None
        received_bytes = received.stop()
        peak = rss_kb(process.pid, "VmHWM")
        settled = rss_kb(process.pid)
        calls_in_all = cluster.requests.by(OPERATOR_USER) - calls_before
        if os.environ.get("BENCH_CALLS"):  # what the requests were, for a look
            print(json.dumps(cluster.requests.breakdown(OPERATOR_USER)), file=sys.stderr)
        for watcher in watchers:
            watcher.stopping = True
        return Figures(
            "operator",
            n,
            namespaces,
            round(to_jobs, 2),
            round(n / to_jobs, 1),
            completion_median_s=round(statistics.median(latencies), 3),
            completion_p99_s=round(latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))], 3),
            calls_until_jobs=round(calls_until_jobs / n, 2),
            calls_in_all=round(calls_in_all / n, 2),
            peak_rss_mb=round(peak / 1024, 1),
            rss_growth_kb_per_resource=round(max(0, peak - idle) / n, 1),
            settled_kb_per_resource=round(max(0, settled - idle) / n, 1),
            received_kb_per_resource=round(received_bytes / 1024 / n, 1),
            operator_cpu_ms=round(1000 * cpu[0] / n, 2),
            plane_cpu_ms=round(1000 * cpu[1] / n, 2),
            client_cpu_ms=round(1000 * cpu[2] / n, 2),
            extra=extra,
        )
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
        cluster.stop()


def finish_job(cluster: Cluster, store: Path, job: dict[str, Any]) -> None:
    """What the worker and the Job controller do when a Job succeeds: the result in the store,
    then the Job's SuccessCriteriaMet and Complete conditions."""
    from contentgen.api import GeneratedImage, RunResult, now
    from contentgen.store import keys

    meta = job["metadata"]
    labels = meta["labels"]
    uid, generation = labels["contentgen.io/uid"], int(labels["contentgen.io/generation"])
    version = int(labels.get("contentgen.io/version") or 1)
    key = keys.result_key("image-generation", labels["contentgen.io/owner"], uid, version)
    image = GeneratedImage(uri=(store / "x.png").as_uri(), width=1, height=1, size_bytes=1, sha256="0" * 64)
    result = RunResult(
        kind="ImageGeneration",
        provider="offline",
        uid=uid,
        generation=generation,
        version=version,
        placeholder=True,
        images=[image],
        finished_at=now(),
    )
    path = store / key
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(result.model_dump_json(by_alias=True, exclude_none=True))
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    conditions = [
        {"type": kind, "status": "True", "reason": "CompletionsReached", "lastTransitionTime": stamp}
        for kind in ("SuccessCriteriaMet", "Complete")
    ]
    status = {
        "status": {"startTime": stamp, "completionTime": stamp, "succeeded": 1, "conditions": conditions}
    }
    for _ in range(10):  # a flapping API server may refuse it: a Job controller retries
        response = cluster.http.patch(
            f"/apis/batch/v1/namespaces/{meta['namespace']}/jobs/{meta['name']}/status",
            json=status,
            headers={"Content-Type": "application/merge-patch+json"},
        )
        if response.status_code < 500:
            response.raise_for_status()
            return
        time.sleep(0.2)
    response.raise_for_status()


def operator_env(root: Path, n: int) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(root),
        "KUBECONFIG": str(root / "operator.kubeconfig"),
        "HOSTNAME": "bench-operator",
        "POD_NAMESPACE": "contentgen",
        "CONTENTGEN_STORE": (root / "store").as_uri(),
        "CONTENTGEN_OFFLINE": "true",
        "CONTENTGEN_MAX_RUNNING_JOBS_PER_NAMESPACE": str(10 * n),
        "CONTENTGEN_HEALTH_PORT": str(health_port()),
        "CONTENTGEN_METRICS_PORT": "0",
        "CONTENTGEN_LOG_FORMAT": "plain",
        **{k: v for k, v in os.environ.items() if k.startswith(("MALLOC_", "PYTHON"))},
    }


def health_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(port: int) -> bool:
    """The operator leads and kopf runs (a standby answers /healthz too, as "standby")."""
    try:
        response = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and response.text.strip() == "leader"


def table(results: list[Figures]) -> str:
    rows = [
        "| N | namespaces | run | until every Job exists | resources/s "
        "| completion → Succeeded, median / p99 | API requests per resource (until Jobs / in all) "
        "| peak RSS | RSS per resource (peak / settled) "
        "| CPU per resource until Jobs: operator / API server / client | received by the operator |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for f in results:
        latency = (
            f"{f.completion_median_s} s / {f.completion_p99_s} s"
            if f.completion_median_s is not None
            else "–"
        )
        rows.append(
            f"| {f.resources} | {f.namespaces} | {f.mode} | {f.seconds_to_jobs} s | {f.per_second} | "
            f"{latency} | {f.calls_until_jobs} / {f.calls_in_all} | {f.peak_rss_mb} MB | "
            f"{f.rss_growth_kb_per_resource} / {f.settled_kb_per_resource or '–'} KB | "
            f"{f.operator_cpu_ms if f.operator_cpu_ms is not None else '–'} / {f.plane_cpu_ms} / "
            f"{f.client_cpu_ms} ms | "
            + (f"{f.received_kb_per_resource} KB/resource |" if f.received_kb_per_resource else "– |")
        )
    pairs = {}
    for f in results:
        pairs.setdefault((f.resources, f.namespaces), {})[f.mode] = f
    rows.append("")
    rows.append(
        "| N | namespaces | operator ÷ baseline (resources/s) "
        "| operator RSS per added resource (from the next smaller N) |"
    )
    rows.append("|---|---|---|---|")
    smaller: dict[int, Figures] = {}  # namespaces -> the operator run at the previous N
    for (n, ns), pair in sorted(pairs.items()):
        if "operator" in pair and "baseline" in pair:
            op, before = pair["operator"], smaller.get(ns)
            marginal = (
                f"{(op.peak_rss_mb - before.peak_rss_mb) * 1024 / (n - before.resources):.1f} KB"
                if before is not None
                else "–"
            )
            smaller[ns] = op
            ratio = op.per_second / pair["baseline"].per_second
            rows.append(f"| {n} | {ns} | **{ratio:.2f}×** | {marginal} |")
    return "\n".join(rows) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1000,5000")
    parser.add_argument("--namespaces", default="1,20")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "operator-results.json")
    parser.add_argument(
        "--readme", action="store_true", help="write the tables into docs/performance.md and bench/README.md"
    )
    parser.add_argument(
        "--costs",
        type=int,
        default=1000,
        help="also measure the API server's CPU per request kind, this many of each (0: not)",
    )
    args = parser.parse_args()
    load = os.getloadavg()[0]
    results: list[Figures] = []
    for n in [int(x) for x in args.sizes.split(",") if x]:
        for namespaces in [int(x) for x in args.namespaces.split(",")]:
            for run in (baseline, operator):
                with tempfile.TemporaryDirectory(prefix="bench-operator-") as tmp:
                    keep = os.environ.get("BENCH_KEEP")  # a directory to keep the logs in
                    root = Path(keep) / f"{run.__name__}-{n}-{namespaces}" if keep else Path(tmp)
                    root.mkdir(parents=True, exist_ok=True)
                    figures = run(n, namespaces, root)
                print(json.dumps(asdict(figures)), flush=True)
                results.append(figures)
    costs: dict[str, dict[str, float]] = {}
    if args.costs:
        with tempfile.TemporaryDirectory(prefix="bench-costs-") as tmp:
            costs = request_costs(args.costs, Path(tmp))
        print(json.dumps(costs), flush=True)
    args.out.write_text(
        json.dumps({"runs": [asdict(f) for f in results], "request_costs": costs}, indent=1) + "\n"
    )
    text = table(results) + (f"\n{costs_table(costs)}" if costs else "")
    print(text)
    if args.readme:
        stamp = (
            f"{time.strftime('%Y-%m-%d %H:%M')} on {os.cpu_count()} CPUs, load average {load:.1f} at "
            f"the start, {os.getloadavg()[0]:.1f} at the end (`python -m bench.operator "
            f"{' '.join(sys.argv[1:])}`):\n\n"
        )
        replace_section("bench-operator", stamp + text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
