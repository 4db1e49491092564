"""Warm pools for clips (`make bench-pools-clips`, issue 47): VideoGenerations of provider cluster,
each run as its Job's container runs it (`contentgen worker --spec`), either denoising itself (the
Job loads the video model) or handing its denoising to a `contentgen pool` of the model's staged
directory (the clip's write-once folder sent with the request, the pool's states and frames
relayed back into the Job's store, the Job encoding the MP4), measured in the same run on this
machine's CPU with the tests' tiny Wan 2.1 (random weights, shaped like Wan2.1-T2V-1.3B) and
rank-4 random LoRAs. The numbers say what the pool's mechanism costs and saves for a clip, not
what Wan does on a GPU, where the load the pool saves is tens of GB.

Two runs, one after the other, as bench/pools.py runs pictures:
- **job**: `--baseline` requests spread over the plan, each a fresh worker that loads the model,
  one at a time (one GPU);
- **pool**: all `--requests`, `--concurrency` workers at once, each handing its denoising to the
  pool (CONTENTGEN_CLUSTER_POOL_URL); the pool is started with the first request (scaled to zero,
  brought back by the waiting Job) and stopped after the last.

Measured: time to a stored clip (a request's worker start to its exit), cold and warm, p50/p95;
clips per pod-hour; model loads per clip (diffusers' "Loading pipeline components" in each
process's output, and the pool's own count); the pool process's CPU time per clip from warm to its
last clip and the pooled Job's worker's, against a Job's worker's (its load included); and, for
every request of the baseline, the pooled clip's video (SHA-256) against the Job's. It fails
(exit 1, FAIL lines) when a goal is missed: every request succeeds, the pool loads its model once
and no pooled worker loads one, a warm request's p50 under a Job's, and every pooled clip equal to
its Job's. Results go to
bench/out/pools-clips.json; `--docs` writes the table into docs/performance.md; BENCH_KEEP=DIR
keeps every worker's output there, as bench/pools.py does.

    .venv/bin/python -m bench.pools_clips [--requests 12] [--loras 4] [--baseline 4] [--frames 5]
        [--steps 4] [--concurrency 2] [--docs]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.pools import (
    CONTENTGEN,
    DOCS,
    Request,
    each,
    environment,
    free_port,
    load_average,
    loads_in,
    lora_key,
    per_hour,
    percentile,
    plan,
    process_cpu,
    run_spec,
    sample,
    status,
    stored_hash,
    wait_warm,
    with_table,
)

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "pools-clips.json"
MODEL_DIR = "Wan2.1-T2V-1.3B-Diffusers"  # the staged directory of wan-1.3b-t2v at 480p
PROMPT = "a red fox runs through snow"
SCALE = 0.8
BUCKET = "bench-loras"
SECRET = "bench-secret-0123456789"  # the bench's own S3 server, on loopback, for its run


@dataclass
class Clip:
    name: str
    started: float  # seconds from the run's start
    seconds: float  # the worker's start to its exit
    cpu: float  # the worker process's CPU seconds (user and system)
    ok: bool
    loads: int
    video: str  # the stored MP4's SHA-256
    error: str = ""


def stage(root: Path, store_dir: Path, loras: int) -> Path:
    """The models' root with the tiny Wan staged, and `loras` random LoRAs of it in the store."""
    from tests.providers.cluster_models import tiny_lora, tiny_wan

    models_root = root / "models"
    tiny_wan(models_root / MODEL_DIR)
    for k, request in enumerate(plan(loras, loras)[:loras]):
        target = store_dir / lora_key(request.owner, k)
        target.parent.mkdir(parents=True, exist_ok=True)
        tiny_lora(models_root / MODEL_DIR, target, seed=k + 1)
    return models_root


def spec_file(request: Request, run: str, served: str, folder: Path, frames: int) -> Path:
    """The VideoGeneration's spec as the operator hands it to its Job: a Wan LoRA by its URL
    (LoraTrainings make FLUX LoRAs; docs/videos.md#loras), here in the bench's S3 bucket."""
    from contentgen.api import SpecSnapshot

    spec: dict[str, Any] = {
        "owner": request.owner,
        "provider": "cluster",
        "prompt": PROMPT,
        "model": "wan-1.3b-t2v",
        "aspectRatio": "1:1",
        "numFrames": frames,
        "fps": 8,
        "seed": request.seed,
    }
    if request.lora is not None:
        spec["loras"] = [{"url": f"{served}/{lora_key(request.owner, request.lora)}", "scale": SCALE}]
    snapshot = SpecSnapshot.model_validate(
        {
            "kind": "VideoGeneration",
            "name": request.name,
            "namespace": request.owner,
            "uid": f"uid-{run}-{request.name}",
            "version": 1,
            "spec": spec,
        }
    )
    path = folder / f"{request.name}.json"
    path.write_text(snapshot.model_dump_json(by_alias=True))
    return path


@contextlib.contextmanager
def served(folder: Path, root: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """The files under `folder` in a bucket of the real S3 server (versitygw, `make s3-server`):
    its base URL (s3://bench-loras) and the account's environment, for the Jobs' LoRA URLs."""
    import boto3

    from localcluster.s3server import S3Server

    server = S3Server(root, access_key="bench", secret_key=SECRET).start()
    try:
        account = {"aws_access_key_id": "bench", "aws_secret_access_key": SECRET}
        s3 = boto3.client("s3", endpoint_url=server.endpoint, region_name=server.region, **account)
        s3.create_bucket(Bucket=BUCKET)
        for path in sorted(p for p in folder.rglob("*.safetensors")):
            s3.upload_file(str(path), BUCKET, path.relative_to(folder).as_posix())
        yield f"s3://{BUCKET}", server.env
    finally:
        server.stop()


def run_worker(request: Request, spec: Path, env: dict[str, str], folder: Path, t0: float) -> Clip:
    """One request's Job: `contentgen worker` on its spec, to its exit, with its CPU time."""
    ran = run_spec(request.name, spec, env, folder)
    ok = ran.code == 0 and bool(ran.result.get("video"))
    return Clip(
        name=request.name,
        started=round(ran.began - t0, 3),
        seconds=round(ran.seconds, 3),
        cpu=round(ran.cpu, 3),
        ok=ok,
        loads=loads_in(ran.output),
        video=stored_hash(str(ran.result["video"].get("uri") or "")) if ok else "",
        error="" if ok else ran.error(),
    )


def run_all(
    requests: Sequence[Request],
    env: dict[str, str],
    folder: Path,
    files: str,
    frames: int,
    at_once: int,
    t0: float,
) -> list[Clip]:
    """The requests' Jobs, `at_once` at a time (their LoRAs' URLs at `files`)."""
    folder.mkdir(parents=True, exist_ok=True)
    specs = {r.name: spec_file(r, folder.name, files, folder, frames) for r in requests}
    return each(requests, at_once, lambda r: run_worker(r, specs[r.name], env, folder, t0))


def measure(args: argparse.Namespace, root: Path) -> dict[str, Any]:
    store = root / "store"
    models_root = stage(root, store, args.loras)
    requests = plan(args.requests, args.loras)
    baseline = sample(requests, args.baseline)
    with served(store, root / "s3") as (files, account):
        env = {**environment(models_root, store, args.steps), **account}
        t0 = time.monotonic()
        print(f"job: {len(baseline)} clips, each loading the model", file=sys.stderr, flush=True)
        job = run_all(baseline, env, root / "job", files, args.frames, 1, t0)
        print(f"pool: {len(requests)} clips, {args.concurrency} at once", file=sys.stderr, flush=True)
        pooled = pool_run(args, root, env, requests, files, t0)
    return {
        "requests": len(requests),
        "loras": args.loras,
        "frames": args.frames,
        "steps": args.steps,
        "concurrency": args.concurrency,
        "job": [asdict(c) for c in job],
        **pooled,
        "equal": _equal(baseline, job, requests, pooled["cold"] + pooled["warm"]),
    }


def pool_run(
    args: argparse.Namespace,
    root: Path,
    env: dict[str, str],
    requests: Sequence[Request],
    files: str,
    t0: float,
) -> dict[str, Any]:
    """The pool started with the first request (scaled to zero, brought back by it), then the
    others, `--concurrency` at a time; the pool's CPU counted from warm to its last clip."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    began = time.monotonic()
    command = [*CONTENTGEN, "pool", "--model", MODEL_DIR, "--host", "127.0.0.1", "--port", str(port)]
    with (root / "pool.out").open("w") as out:
        pool = subprocess.Popen(
            [*command, "--work-dir", str(root / "pool-work")], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        pooled_env = {**env, "CONTENTGEN_CLUSTER_POOL_URL": url}
        with ThreadPoolExecutor(max_workers=1) as first:
            cold = first.submit(run_all, requests[:1], pooled_env, root / "pool", files, args.frames, 1, t0)
            warm_after = wait_warm(url, pool, began)
            cold_clips = cold.result()
        warm_cpu, warm_at = process_cpu(pool.pid), time.monotonic()
        warm = run_all(requests[1:], pooled_env, root / "pool-warm", files, args.frames, args.concurrency, t0)
        pool_cpu = process_cpu(pool.pid) - warm_cpu
        pool_seconds = time.monotonic() - began
        account = status(url)
    finally:
        pool.terminate()
        pool.wait(60)
    return {
        "cold": [asdict(c) for c in cold_clips],
        "warm": [asdict(c) for c in warm],
        "warm_after": round(warm_after, 3),
        "warm_seconds": round(time.monotonic() - warm_at, 3),
        "pool_cpu_per_clip": round(pool_cpu / max(1, len(warm)), 3),
        "pool_seconds": round(pool_seconds, 3),
        "pool_loads": loads_in((root / "pool.out").read_text(errors="replace")),
        "account": account,
    }


def _equal(
    baseline: Sequence[Request],
    job: Sequence[Clip],
    requests: Sequence[Request],
    pooled: Sequence[dict[str, Any]],
) -> list[bool]:
    """For each request of the baseline: its pooled clip is its Job's, byte for byte."""
    by_name = {r.name: c for r, c in zip(requests, pooled, strict=True)}
    return [c.ok and c.video == by_name[r.name]["video"] for r, c in zip(baseline, job, strict=True)]


def problems(m: dict[str, Any]) -> list[str]:
    """The goals the run missed (none: it passed)."""
    pooled = m["cold"] + m["warm"]
    found = []
    if not all(c["ok"] for c in m["job"] + pooled):
        found.append("a request failed")
    workers = sum(c["loads"] for c in pooled)
    if m["account"].get("loads") != 1 or m["pool_loads"] != 1 or workers:
        found.append(f"the pool loaded the model {m['account'].get('loads')} times, its workers {workers}")
    warm = [c["seconds"] for c in m["warm"] if c["ok"]]
    jobs = [c["seconds"] for c in m["job"] if c["ok"]]
    if not warm or not jobs or statistics.median(warm) >= statistics.median(jobs):
        found.append("a warm request is not faster than a Job")
    if not all(m["equal"]):
        found.append(f"{m['equal'].count(False)} pooled clips differ from their Job's")
    return found


def markdown(m: dict[str, Any], when: str, load: str) -> str:
    """The table docs/performance.md shows (`--docs`)."""
    job, warm, cold = m["job"], m["warm"], m["cold"]
    jobs = [c["seconds"] for c in job if c["ok"]]
    warms = [c["seconds"] for c in warm if c["ok"]]
    clips, loads = len(warm) + len(cold), m["account"].get("loads", 0)
    in_jobs = f"{percentile(jobs, 50):.1f} s / {percentile(jobs, 95):.1f} s (p50 / p95, every request)"
    pooled_cpu = statistics.median(c["cpu"] for c in warm)
    job_loads = sum(c["loads"] for c in job) / len(job)
    warm_p = f"**{percentile(warms, 50):.1f} s** / {percentile(warms, 95):.1f} s"
    cold_p = f"{cold[0]['seconds']:.1f} s (warm after {m['warm_after']:.1f} s)"
    per_pod = f"**{per_hour(clips, m['pool_seconds']):.0f}** ({clips} in {m['pool_seconds']:.0f} s)"
    per_job = f"{per_hour(len(jobs), sum(jobs)):.0f} ({len(jobs)} in {sum(jobs):.0f} s)"
    cpu = f"**{m['pool_cpu_per_clip']:.2f} s** + {pooled_cpu:.2f} s"
    job_cpu = f"{statistics.median(c['cpu'] for c in job):.2f} s (the load included)"
    account = m["account"]
    busy = account.get("busySeconds")
    said = f"{account.get('requests')} requests, {account.get('drawn')} denoised, busy {busy} s"
    rows = [
        (
            "requests",
            f"{m['requests']} ({m['loras']} LoRAs of 2 owners, and none)",
            f"{len(job)} (of the plan)",
        ),
        ("failed", str(sum(not c["ok"] for c in warm + cold)), str(sum(not c["ok"] for c in job))),
        ("time to a stored clip, cold", cold_p, in_jobs),
        ("time to a stored clip, warm: p50 / p95", warm_p, ""),
        ("clips per pod-hour", per_pod, per_job),
        ("model loads per clip", f"**{loads / clips:.3f}** ({loads} for the pod's life)", f"{job_loads:.2f}"),
        ("CPU per clip: pool + pooled Job's worker", cpu, job_cpu),
        ("clips equal to the Job's (SHA-256 of the MP4)", f"**{sum(m['equal'])} of {len(m['equal'])}**", ""),
        ("the pool's own account", said, ""),
    ]
    head = (
        f"Warm pool of clips against a Job per request, {when}, tiny Wan 2.1 on the CPU, {m['frames']} "
        f"frames at 480 × 480, {m['steps']} steps, {m['concurrency']} pooled workers at once; load "
        f"average {load} at the start:"
    )
    table = ["| measure | pool | Job per request |", "| --- | --- | --- |"]
    return "\n".join([head, "", *table, *(f"| {a} | {b} | {c} |" for a, b, c in rows)])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=12)
    parser.add_argument("--loras", type=int, default=4)
    parser.add_argument("--baseline", type=int, default=4)
    parser.add_argument("--frames", type=int, default=5)
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=2)
    parser.add_argument("--docs", action="store_true", help="write the table into docs/performance.md")
    args = parser.parse_args(argv)
    load, when = load_average(), datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    keep = os.environ.get("BENCH_KEEP")  # a directory to keep the workers' outputs in
    with tempfile.TemporaryDirectory(prefix="bench-pools-clips-") as tmp:
        root = Path(keep) if keep else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        m = measure(args, root)
    m.update(when=when, load=load)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(m, indent=2))
    table = markdown(m, when, load)
    print(table)
    found = problems(m)
    for problem in found:
        print(f"FAIL {problem}")
    if args.docs:
        DOCS.write_text(with_table(DOCS.read_text(), table, "clips"))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
