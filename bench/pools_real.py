"""Warm pools on the local cluster's real node (`make bench-pools ARGS="--node real"`, issue 47):
bench/pools.py's plan, goals and table, with every request an ImageGeneration through the operator
on the real control plane and every worker a container under the kubelet, containerd and runc.

- The cluster is the cluster tests' (tests/kube/harness.py: the operator in this process under the
  chart's RBAC, the store a bucket of the real S3 server) with `--job-concurrency` GPUs advertised
  and the GPU worker image itself (`make images`: 8.5 GB, and about 17 GB of containerd's once).
- The models are staged as a platform team stages them: the tests' tiny FLUX as FLUX.1-dev under
  the bucket's `models/` (`gpu.models.storePrefix`), and `--loras` random rank-4 LoRAs under
  `bench-loras/OWNER/`, which the requests name by s3:// URL (`loras[].url`).
- **job**: `--baseline` requests spread over the plan with `denoising: job`: each Job's pod (the
  GPU worker image, one GPU) loads the base model and draws.
- **pool**: all `--requests` with `denoising: pool`: the chart's pool Deployment and Service
  (`pools.items`, rendered by helm, torch on one thread as in the drawing alone) applied with the
  first requests (a pool brought up from zero), each Job's worker (the worker image without torch)
  handing its drawing to the Service.

Requests are kept `--concurrency` in flight (the operator runs that many Jobs at once), so a
request's time to its first picture is its ImageGeneration's creation to its Succeeded, as its
owner sees it (the operator's, the Job controller's and the kubelet's reaction included). A Job
holds its GPU from its pod's start to its worker's end; the pool's pod from the Deployment's
creation to the last picture. The pool's CPU seconds are its container's cgroup's. Pictures are
compared by SHA-256 with the same request's Job-per-request picture."""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import math
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.pools import (
    CACHE,
    LOAD_LINE,
    SCALE,
    Done,
    Measures,
    Request,
    compare,
    draw_floor,
    load_average,
    medians,
    models,
    plan,
    request_spec,
    sample,
)

NS = "bench-pools"
POOL = "flux-dev"
DEPLOYMENT = "contentgen-pool-flux-dev"  # the chart's name for pool `flux-dev` of release `contentgen`
SMALL = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"memory": "6Gi"}}  # this machine's
HANG_GUARD = 900.0  # seconds a request may take before the run gives up on it
GPU_HOUR_USD = 4.0  # the chart's prices.cluster.gpuHourUsd here: a run's actualUsd says its GPU seconds


def lora_url(owner: str, k: int) -> str:
    return f"s3://contentgen/bench-loras/{owner}/lora-{k}.safetensors"


def manifest(request: Request, run: str) -> dict[str, Any]:
    """The request as an ImageGeneration of provider cluster, drawn by its own Job (`run` job) or
    the pool (`run` pool)."""
    spec = {**request_spec(request), "denoising": run}
    if request.lora is not None:
        spec["model"] = "flux-lora"
        spec["loras"] = [{"url": lora_url(request.owner, request.lora), "scale": SCALE}]
    return {
        "apiVersion": "contentgen.io/v1alpha1",
        "kind": "ImageGeneration",
        "metadata": {"name": f"{run}-{request.name}", "namespace": NS},
        "spec": spec,
    }


def values(c: Any, steps: int, kept_loras: int) -> dict[str, Any]:
    """The chart's values for one pool (docs/cluster-gpus.md#warm-pools), with this machine's
    resources and the store where the pods reach it."""
    from tests.kube.harness import BUCKET

    return {
        "store": {"url": f"s3://{BUCKET}", "endpointUrl": c.s3_proxy.endpoint, "region": c.s3.region},
        "s3": {"existingSecret": "contentgen-s3"},
        "gpu": {
            "models": {"storePrefix": f"s3://{BUCKET}/models"},
            "inferenceSteps": steps,
            "jobs": {"ImageGeneration": {"resources": SMALL}},
        },
        "pools": {
            "denoising": "pool",
            "items": [
                {
                    "name": POOL,
                    "baseModel": "FLUX.1-dev",
                    "replicas": 1,
                    "resources": SMALL,
                    "keptLoras": kept_loras,
                }
            ],
        },
        "prices": {"cluster": {"gpuHourUsd": GPU_HOUR_USD}},
    }


def one_thread(deployment: dict[str, Any]) -> dict[str, Any]:
    """The pool's container with torch on one thread, as the drawing alone has it (bench/pools.py)."""
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    container.setdefault("env", []).append({"name": "OMP_NUM_THREADS", "value": "1"})
    return deployment


def seconds_between(start: str, end: str) -> float:
    """Seconds between two of Kubernetes' RFC 3339 times."""
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def held_seconds(pod: dict[str, Any]) -> float:
    """The GPU seconds a Job's pod held: its start to its worker's end."""
    ended = ((pod["status"].get("containerStatuses") or [{}])[0].get("state") or {}).get("terminated")
    return seconds_between(pod["status"]["startTime"], ended["finishedAt"]) if ended else 0.0


def container_cpu_seconds(container_id: str) -> float:
    """The CPU seconds of the container's cgroup (v1 cpuacct.usage, v2 cpu.stat's usage_usec)."""
    short = container_id.split("://")[-1]
    root = Path("/sys/fs/cgroup")
    for pattern in (f"cpu,cpuacct/**/*{short}*/cpuacct.usage", f"cpuacct/**/*{short}*/cpuacct.usage"):
        for found in root.glob(pattern):
            return int(found.read_text()) / 1e9
    for found in root.glob(f"**/*{short}*/cpu.stat"):
        usage = dict(line.split() for line in found.read_text().splitlines())
        return int(usage["usage_usec"]) / 1e6
    raise RuntimeError(f"no cgroup of container {short} under {root}")


class Run:
    """Requests of one run kept `concurrency` in flight, each timed from its creation to its end."""

    def __init__(self, c: Any, run: str, t0: float) -> None:
        self.c, self.run, self.t0 = c, run, t0
        self.held: dict[str, float] = {}  # request name -> the GPU seconds its Job's pod held

    def one(self, request: Request) -> Done:
        c, name = self.c, f"{self.run}-{request.name}"
        began = time.monotonic()
        c.apply(manifest(request, self.run), NS)
        status: dict[str, Any] = {}
        while time.monotonic() - began < HANG_GUARD:
            status = c.status("ImageGeneration", NS, name)
            if status.get("phase") in ("Succeeded", "Failed"):
                break
            time.sleep(0.05)
        seconds = time.monotonic() - began
        ok = status.get("phase") == "Succeeded" and len(status.get("images") or []) == 1
        pod = self.pod(status.get("jobName", ""))
        logs = self.logs(pod) if pod and ok else ""  # a failed request's Done says its error
        self.held[request.name] = held_seconds(pod) if pod else 0.0
        billed = float((status.get("cost") or {}).get("actualUsd") or 0) / GPU_HOUR_USD * 3600
        done = Done(
            name=request.name,
            started=round(began - self.t0, 3),
            seconds=round(seconds, 3),
            ok=ok,
            loads=len(LOAD_LINE.findall(logs)),
            picture=hashlib.sha256(c.read(status["images"][0]["uri"])).hexdigest() if ok else "",
            gpu_seconds=round(billed, 3),
            error="" if ok else str(status.get("message") or status.get("phase") or "no end")[:300],
            lora=request.lora,
        )
        print(
            f"  {name} {request.owner} lora {request.lora}: {done.seconds:.1f} s, "
            f"{'ok' if ok else 'FAILED ' + done.error}",
            file=sys.stderr,
            flush=True,
        )
        return done

    def pod(self, job: str) -> dict[str, Any] | None:
        """The last pod of the Job `job`, as the kubelet left it."""
        found = self.c.admin.get(f"/api/v1/namespaces/{NS}/pods", labelSelector=f"job-name={job}")["items"]
        return found[-1] if found else None

    def logs(self, pod: dict[str, Any]) -> str:
        return str(self.c.admin.text(f"/api/v1/namespaces/{NS}/pods/{pod['metadata']['name']}/log"))

    def all(self, requests: list[Request], concurrency: int) -> list[Done]:
        with ThreadPoolExecutor(max_workers=concurrency) as workers:
            return list(workers.map(self.one, requests))


def pool_pod(c: Any) -> dict[str, Any] | None:
    from tests.kube.harness import OPERATOR_NAMESPACE

    pods = [
        p
        for p in c.pods(OPERATOR_NAMESPACE)
        if (p["metadata"].get("labels") or {}).get("contentgen.io/pool") == POOL
        and not p["metadata"].get("deletionTimestamp")
    ]
    return pods[0] if pods else None


def ready(pod: dict[str, Any] | None) -> bool:
    conditions = ((pod or {}).get("status") or {}).get("conditions") or []
    return any(x["type"] == "Ready" and x["status"] == "True" for x in conditions)


@contextlib.contextmanager
def cluster_for(root: Path, gpus: int) -> Iterator[tuple[Any, Any]]:
    """The cluster tests' cluster with the GPU worker image, and its MonkeyPatch (the operator's
    environment)."""
    import pytest

    from tests.kube.harness import cluster

    with pytest.MonkeyPatch.context() as mp, cluster(root, mp, gpus=gpus, gpu_image=True) as c:
        yield c, mp


def stage(c: Any, root: Path, loras: int) -> Path:
    """The tiny FLUX under the bucket's models/ and the LoRAs under bench-loras/; the models' root
    on this machine (for the drawing alone)."""
    from contentgen.store.s3 import s3_client
    from tests.cluster.tiny_flux import tiny_flux
    from tests.harness.cluster import random_lora
    from tests.kube.harness import BUCKET
    from tests.staged_models import upload_model

    client = s3_client()
    upload_model(client, BUCKET, "models", "FLUX.1-dev", tiny_flux(CACHE))
    models_root = models(root / "models")
    for k, request in enumerate(plan(loras, loras)[:loras]):
        made = random_lora(models_root, root / "loras", k + 1)
        key = lora_url(request.owner, k).removeprefix(f"s3://{BUCKET}/")
        client.put_object(Bucket=BUCKET, Key=key, Body=made.read_bytes())
    return models_root


def measure_real(args: argparse.Namespace, root: Path) -> Measures:
    from contentgen.providers.cluster.generation.pool import PoolClient
    from tests.harness.chart import operator_settings, rendered
    from tests.kube.harness import operator

    requests = plan(args.requests, args.loras)
    with cluster_for(root / "cluster", args.job_concurrency) as (c, mp):
        print(f"bench.pools (real node): staging, the drawing alone ({load_average()})", file=sys.stderr)
        models_root = stage(c, root, args.loras)
        before, load = draw_floor(models_root, args.steps, args.floor)
        m = Measures(args.requests, args.loras, args.steps, *medians(before), draw_samples=before)
        m.draw_load_seconds = round(load, 3)
        docs = rendered(values(c, args.steps, args.kept_loras))
        pool = [d for d in docs if (d["metadata"].get("labels") or {}).get("contentgen.io/pool") == POOL]
        pool = [one_thread(d) if d["kind"] == "Deployment" else d for d in pool]
        prefixes = ("CONTENTGEN_GPU_", "CONTENTGEN_CLUSTER_", "CONTENTGEN_PRICES")
        for name, value in operator_settings(docs, prefixes).items():
            mp.setenv(name, value)
        at_once = max(args.concurrency, args.job_concurrency)
        mp.setenv("CONTENTGEN_MAX_RUNNING_JOBS_PER_NAMESPACE", str(at_once))
        c.ensure_namespace(NS)
        with operator(c):
            say = f"bench.pools (real node): a Job per request, {args.baseline} ({load_average()})"
            print(say, file=sys.stderr)
            began = time.monotonic()
            jobs = Run(c, "job", began)
            m.job = jobs.all(sample(requests, args.baseline), args.job_concurrency)
            m.job_pod_seconds = round(sum(jobs.held.values()), 3)
            print(f"  {time.monotonic() - began:.0f} s", file=sys.stderr)

            print(f"bench.pools (real node): the pool, {args.requests} ({load_average()})", file=sys.stderr)
            started = time.monotonic()
            c.local.install(pool)
            warm: list[float] = []
            at_warm: list[tuple[float, int, str, str]] = []  # CPU s, drawn, container id, URL
            stop = threading.Event()

            def watch() -> None:
                while not stop.is_set() and time.monotonic() - started < HANG_GUARD:
                    pod = pool_pod(c)
                    if ready(pod):
                        assert pod is not None
                        warm.append(time.monotonic() - started)
                        cid = pod["status"]["containerStatuses"][0]["containerID"]
                        url = f"http://{pod['status']['podIP']}:8090"
                        drawn = int(PoolClient(url).status().get("drawn") or 0)
                        at_warm.append((container_cpu_seconds(cid), drawn, cid, url))
                        return
                    time.sleep(0.1)

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            m.pool = Run(c, "pool", started).all(requests, args.concurrency)
            m.pool_pod_seconds = round(time.monotonic() - started, 3)
            stop.set()
            watcher.join(timeout=60)
            if not at_warm:
                raise RuntimeError("the pool's pod was never Ready")
            cpu, drawn, cid, url = at_warm[0]
            m.pool_cold_seconds = round(warm[0], 3)
            m.pool_status = PoolClient(url).status()
            m.pool_cpu_seconds = round(container_cpu_seconds(cid) - cpu, 3)
            m.pool_cpu_pictures = int(m.pool_status.get("drawn") or 0) - drawn
            pod = pool_pod(c)
            assert pod is not None
            path = f"/api/v1/namespaces/{pod['metadata']['namespace']}/pods/{pod['metadata']['name']}/log"
            m.pool_loads_seen = len(LOAD_LINE.findall(str(c.admin.text(path))))
        m.equal, m.compared, m.unequal = compare(m.job, m.pool)
        print(f"bench.pools (real node): the drawing alone again ({load_average()})", file=sys.stderr)
        m.draw_samples = before + draw_floor(models_root, args.steps, args.floor)[0]
        m.draw_seconds, m.draw_cpu_seconds = medians(m.draw_samples)
        m.draw_bracketed = True
    if math.isnan(m.pool_cold_seconds):
        raise RuntimeError("the pool was never warm")
    return m
