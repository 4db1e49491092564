"""bench/pools_routing.py on the local cluster's real node (`--node real`, the default): the cluster
tests' cluster (tests/kube/harness.py: the operator in this process under the chart's RBAC, the store
a bucket of the real S3 server, the node advertising `--pods` GPUs); the pool the chart's Deployment
(`pools.items`: replicas `--pods`, `keptLoras`, `compile`, `loraRank`, `routing`) and its headless
Service, its container the worker image with torch found on the models' volume
(tests/kube/torch_layer.py: this checkout's .venv, the GPU worker image's pins, the tiny FLUX on
`gpu.models.hostPath`); every request an ImageGeneration of provider cluster with `denoising: pool`
and its LoRA by s3:// URL, `--concurrency` in flight (the operator runs that many Jobs at once), its
Job's worker (the worker image without torch) choosing the pod. The pods' statuses are read at
their pod addresses, from this machine."""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import yaml

from bench.pools import CACHE, OWNERS, PROMPT, SCALE, Request, load_average, plan, status
from bench.pools_routing import ROUTINGS, Measures, Round, loras_of

POOL = "flux-dev"
DEPLOYMENT = f"contentgen-pool-{POOL}"
SMALL = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "3Gi"}}
HANG_GUARD = 900.0


def values(args: argparse.Namespace, routing: str, models: Path) -> dict[str, Any]:
    item = {
        "name": POOL,
        "baseModel": "FLUX.1-dev",
        "replicas": args.pods,
        "keptLoras": args.pod_loras,
        "compile": args.compile,
        "loraRank": args.lora_rank,
        "routing": routing,
        "warmUpSize": "512x512",  # the requests' size (imageSize square): compiled at the start
        "resources": SMALL,
    }
    return {
        "gpu": {"models": {"hostPath": str(models)}, "inferenceSteps": args.steps},
        "pools": {"denoising": "pool", "items": [item]},
    }


def rendered(args: argparse.Namespace, routing: str, models: Path) -> list[dict[str, Any]]:
    from scripts.chart import template

    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as file:
        yaml.safe_dump(values(args, routing, models), file)
        file.flush()
        return [d for d in yaml.safe_load_all(template("--values", file.name)) if d]


def pool_objects(docs: list[dict[str, Any]], image: str) -> list[dict[str, Any]]:
    made = [d for d in docs if (d["metadata"].get("labels") or {}).get("contentgen.io/pool") == POOL]
    (deployment,) = [d for d in made if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    container.update(image=image, imagePullPolicy="Never")
    container["env"].append({"name": "OMP_NUM_THREADS", "value": "1"})
    return made


def stage(root: Path) -> Path:
    """The models' directory the pods mount: the tiny FLUX as FLUX.1-dev and the torch layer's
    packages, readable by the workers' user."""
    from tests.cluster.tiny_flux import tiny_flux
    from tests.kube import torch_layer

    models = root / "models"
    models.mkdir(parents=True)
    models.chmod(0o755)
    shutil.copytree(tiny_flux(CACHE), models / "FLUX.1-dev")
    for path in (models / "FLUX.1-dev").rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    torch_layer.packages(models / ".site-packages")
    return models


def upload_loras(models: Path, root: Path, count: int) -> dict[int, str]:
    """`count` random LoRAs in the bucket, LoRA k an upload of its owner in the plan (a resource may
    name no other key of the store: InputNotShared): LoRA k's s3:// URL."""
    from contentgen.store import keys
    from contentgen.store.s3 import s3_client
    from tests.harness.cluster import random_lora
    from tests.kube.harness import BUCKET

    client, urls = s3_client(), {}
    for k in range(count):
        key = keys.upload(OWNERS[k % len(OWNERS)], f"routing-lora-{k}", "lora.safetensors")
        client.put_object(
            Bucket=BUCKET, Key=key, Body=random_lora(models, root / "loras", k + 1).read_bytes()
        )
        urls[k] = f"s3://{BUCKET}/{key}"
    return urls


def manifest(request: Request, urls: dict[int, str]) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "owner": request.owner,
        "prompt": PROMPT,
        "provider": "cluster",
        "model": "flux-dev",
        "imageSize": "square",
        "numImages": 1,
        "seed": request.seed,
        "denoising": "pool",
    }
    if request.lora is not None:
        spec.update(model="flux-lora", loras=[{"url": urls[request.lora], "scale": SCALE}])
    return {
        "apiVersion": "contentgen.io/v1alpha1",
        "kind": "ImageGeneration",
        "metadata": {"name": request.name},
        "spec": spec,
    }


def pool_pods(c: Any) -> list[dict[str, Any]]:
    from tests.kube.harness import OPERATOR_NAMESPACE

    return [
        p
        for p in c.pods(OPERATOR_NAMESPACE)
        if (p["metadata"].get("labels") or {}).get("contentgen.io/pool") == POOL
        and not p["metadata"].get("deletionTimestamp")
    ]


def ready_urls(c: Any, count: int) -> list[str]:
    """The pod URLs of `count` Ready pool pods, waited for."""
    began = time.monotonic()
    while time.monotonic() - began < HANG_GUARD:
        ready = [
            f"http://{p['status']['podIP']}:8090"
            for p in pool_pods(c)
            if any(
                x["type"] == "Ready" and x["status"] == "True" for x in p["status"].get("conditions") or []
            )
        ]
        if len(ready) == count:
            return sorted(ready)
        time.sleep(0.5)
    raise RuntimeError(f"{count} pool pods were not Ready in {HANG_GUARD:.0f} s")


def one(c: Any, namespace: str, request: Request, urls: dict[int, str]) -> str:
    """The request applied and followed to its end: "" when it succeeded, else why not."""
    c.apply(manifest(request, urls), namespace)
    began = time.monotonic()
    while time.monotonic() - began < HANG_GUARD:
        found = c.status("ImageGeneration", namespace, request.name)
        if found.get("phase") in ("Succeeded", "Failed"):
            ok = found["phase"] == "Succeeded" and len(found.get("images") or []) == 1
            print(f"  {namespace}/{request.name}: {found['phase']}", file=sys.stderr, flush=True)
            return "" if ok else f"{request.name}: {found.get('message') or found['phase']}"
        time.sleep(0.2)
    return f"{request.name}: no end in {HANG_GUARD:.0f} s"


def round_of(
    c: Any, args: argparse.Namespace, routing: str, pool: list[dict[str, Any]], urls: dict[int, str]
) -> Round:
    from tests.kube.harness import OPERATOR_NAMESPACE

    r, namespace = Round(routing), f"routing-{routing}"
    c.ensure_namespace(namespace)
    c.local.install(pool)
    pods = ready_urls(c, args.pods)
    r.warm = [loras_of(status(url)) for url in pods]
    began = time.monotonic()
    requests = plan(args.requests, args.loras)
    with ThreadPoolExecutor(max_workers=args.concurrency) as workers:
        ends = list(workers.map(lambda q: one(c, namespace, q, urls), requests))
    r.seconds = round(time.monotonic() - began, 1)
    answers = [status(url) for url in pods]
    r.end, r.drawn = [loras_of(a) for a in answers], [int(a.get("drawn") or 0) for a in answers]
    r.failed = [e for e in ends if e]
    r.ok = len(ends) - len(r.failed)
    c.admin.delete(f"/apis/apps/v1/namespaces/{OPERATOR_NAMESPACE}/deployments/{DEPLOYMENT}")
    began = time.monotonic()
    while pool_pods(c) and time.monotonic() - began < HANG_GUARD:
        time.sleep(0.5)
    return r


def measure_real(args: argparse.Namespace, root: Path) -> Measures:
    import pytest

    from tests.harness.chart import operator_settings
    from tests.kube import torch_layer
    from tests.kube.harness import OPERATOR_NAMESPACE, cluster, operator

    models = stage(root)
    worker = torch_layer.image(root / "torch-layer")
    m = Measures(
        "real", args.pods, args.requests, args.loras, args.pod_loras, args.compile, args.lora_rank, args.steps
    )
    with (
        pytest.MonkeyPatch.context() as mp,
        cluster(root / "cluster", mp, gpus=args.pods, worker=worker) as c,
    ):
        urls = upload_loras(models, root, args.loras)
        # the models' hostPath volume is outside the release namespace's Pod Security level (restricted)
        level = {"pod-security.kubernetes.io/enforce": "privileged"}
        c.admin.patch(f"/api/v1/namespaces/{OPERATOR_NAMESPACE}", {"metadata": {"labels": level}})
        first = rendered(args, ROUTINGS[0], models)
        for name, value in operator_settings(first, ("CONTENTGEN_CLUSTER_", "CONTENTGEN_GPU_")).items():
            mp.setenv(name, value)
        mp.setenv("CONTENTGEN_GPU_WORKER_IMAGE", worker[0])
        mp.setenv("CONTENTGEN_MAX_RUNNING_JOBS_PER_NAMESPACE", str(args.concurrency))
        with operator(c):
            for routing in ROUTINGS:
                print(f"bench.pools_routing (real node): {routing} ({load_average()})", file=sys.stderr)
                pool = pool_objects(rendered(args, routing, models), worker[0])
                m.rounds.append(round_of(c, args, routing, pool, urls))
    return m
