"""Warm pools (`make bench-pools`, issue 47): ImageGenerations of provider cluster across LoRAs of
two owners, drawn by a warm pool of tiny FLUX pipelines, against a Job per request, measured in
the same run on this machine's CPU.

With `--node real` (the default) every request is an ImageGeneration through the operator on the
local cluster's real node, the pool the chart's Deployment (bench/pools_real.py). With `--node
process` every request runs as its Job's container runs it, `contentgen worker --spec FILE` (a
process of this machine, the spec as the operator writes it, its LoRA resolved to the store, the
pictures stored in a file store), and the pool is `contentgen pool` (cli/pool.py), one process as
one pool pod. With `--node gpu` the processes draw on this machine's GPU at FLUX.1-dev's
real size (bench/pools_gpu.py). Otherwise the models are the tests' tiny FLUX
(tests/cluster/tiny_flux.py: random weights, shaped like FLUX.1) and rank-4 random LoRAs, on the
CPU: the numbers say what the pool's mechanism costs and saves, not what a GPU does with
FLUX.1-dev.

Two runs, one after the other:
- **job**: `--baseline` requests spread over the plan (`sample`), each a fresh worker that loads
  the base model (`--job-concurrency` at once: one GPU, one Job at a time by default);
- **pool**: all `--requests`, `--concurrency` workers at once, each handing its drawing to the
  pool (CONTENTGEN_CLUSTER_POOL_URL); the pool process is started with the first request (a pool
  scaled to zero, brought back by the waiting Job), stopped after the last.

Measured: time to first picture (a request's worker start to its exit, its one picture stored):
cold (every Job per request; the pooled requests started before the pool was warm) and warm (the
pooled others), p50/p95;
pictures per pod-hour (a Job holds its GPU for its life; the pool's pod from its start to the
last picture, loading and idle included; a pooled Job's worker holds none); base-model loads per
picture (diffusers' "Loading pipeline components" in each process's output, and the pool's own
count); the pool process's CPU time per picture from warm to its last picture (each request's
LoRA loaded and unloaded, the drawing, the serving) against the drawing alone's (`generation.draw`
on a kept pipeline without a LoRA, in a process of its own, before the runs), and the same by wall
time (the pool's `busySeconds`, what each request is billed); torch on one thread everywhere; and,
for every request of the baseline, the pooled picture's SHA-256 against the fresh process's. It
fails (exit 1, FAIL lines) when a goal is missed (`problems`). Results go to
bench/out/pools.json; `--docs` writes the table into docs/performance.md.

    .venv/bin/python -m bench.pools [--requests 100] [--loras 20] [--baseline 10] [--steps 4]
        [--concurrency 2] [--job-concurrency 1] [--floor 3] [--kept-loras 32] [--node real|process|gpu]
        [--device cpu|cuda] [--size tiny|full] [--docs]
    .venv/bin/python -m bench.pools --table-from bench/out/pools-gpu.json [--docs]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, TypeVar

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out" / "pools.json"
CACHE = ROOT / "bench" / "out" / "pools" / "tiny-flux-cache"
DOCS = ROOT / "docs" / "performance.md"
CONTENTGEN = (sys.executable, "-m", "contentgen")  # the project's environment, wherever it is
OWNERS = ("alice", "bob")
PROMPT = "a photo of sks"
SCALE = 0.8
# What the pool must do to pass (issue 47): its base loaded once for its life, a picture at most
# 1.2× the drawing alone's CPU time, more pictures per pod-hour than a Job per request, a warm
# request faster than a Job's, and the fresh process's pictures.
MAX_PICTURE_RATIO = 1.2
# diffusers' progress bar of `DiffusionPipeline.from_pretrained` at its start: once per pipeline
# loaded (its 100% line comes twice, at the last update and at the close)
LOAD_LINE = re.compile(r"Loading pipeline components\.\.\.:\s+0%")
MARKERS = {  # where --docs writes each node's table in docs/performance.md
    "process": ("<!-- bench-pools:start -->", "<!-- bench-pools:end -->"),
    "real": ("<!-- bench-pools-real:start -->", "<!-- bench-pools-real:end -->"),
    "gpu": ("<!-- bench-pools-gpu:start -->", "<!-- bench-pools-gpu:end -->"),
    "clips": ("<!-- bench-pools-clips:start -->", "<!-- bench-pools-clips:end -->"),  # bench/pools_clips.py
}
# What each node draws with unless told (--device, --size, --steps): the GPU node at real size.
DEFAULTS = {
    "process": ("cpu", "tiny", 4),
    "real": ("cpu", "tiny", 4),
    "gpu": ("cuda", "full", 28),
}
SIZES = {"tiny": (512, "square"), "full": (1024, "square_hd")}  # a picture's side, its imageSize


# --- decisions (pure) -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    index: int
    owner: str
    lora: int | None  # which of the LoRAs; None: the base alone
    seed: int

    @property
    def name(self) -> str:
        return f"req-{self.index:03d}"


def plan(requests: int, loras: int, owners: Sequence[str] = OWNERS) -> list[Request]:
    """`requests` requests over `loras` LoRAs split between `owners` (LoRA k is owner
    k % len(owners)'s), each LoRA in turn and then one without a LoRA (its owner in turn), every
    request its own seed: the first loras + 1 requests use every LoRA once and the base once, and
    any first few are of every owner."""
    if requests < 1 or loras < 1 or not owners:
        raise ValueError("plan: requests, loras and owners must be at least 1")
    made = []
    for index in range(requests):
        k = index % (loras + 1)
        if k == loras:
            owner, lora = owners[(index // (loras + 1)) % len(owners)], None
        else:
            owner, lora = owners[k % len(owners)], k
        made.append(Request(index, owner, lora, 1000 + index))
    return made


def sample(requests: Sequence[Request], count: int) -> list[Request]:
    """`count` of `requests` spread evenly over them (the first among them): the Job-per-request
    baseline, late pooled requests (after many LoRAs came and went) and, where the plan has one
    among them, a request without a LoRA compared with a fresh process's."""
    count = min(count, len(requests))
    return [requests[i * len(requests) // count] for i in range(count)]


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), by the nearest rank; nan for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def loads_in(output: str) -> int:
    """The pipelines a process loaded, from its output (diffusers' progress bar)."""
    return len(LOAD_LINE.findall(output))


@dataclass(frozen=True)
class Done:
    """One request's worker, as it ended."""

    name: str
    started: float  # seconds after its run began
    seconds: float  # its start to its exit: the time to its (one) picture
    ok: bool
    loads: int
    picture: str  # the stored picture's SHA-256 ("" when none)
    gpu_seconds: float  # what it was billed (its usage)
    error: str = ""
    lora: int | None = None  # the request's LoRA (None: the base alone)


@dataclass
class Measures:
    requests: int
    loras: int
    steps: int
    draw_seconds: float  # the drawing alone, median wall time
    draw_cpu_seconds: float  # and its CPU time
    draw_samples: list[list[float]] = field(default_factory=list)  # [wall, CPU] of each drawing
    draw_bracketed: bool = False  # timed before and after the runs
    job: list[Done] = field(default_factory=list)
    job_pod_seconds: float = 0.0  # the Jobs' lives, summed
    pool: list[Done] = field(default_factory=list)
    pool_pod_seconds: float = 0.0  # the pool process's life
    pool_cold_seconds: float = 0.0  # the pool process's start to warm
    pool_status: dict[str, Any] = field(default_factory=dict)
    pool_loads_seen: int = 0  # from the pool's output
    # the pool process's CPU seconds and pictures drawn from warm to the last picture
    pool_cpu_seconds: float = 0.0
    pool_cpu_pictures: int = 0
    equal: int = 0  # pooled pictures equal to the fresh process's
    compared: int = 0
    unequal: list[str] = field(default_factory=list)
    device: str = "cpu"  # where the pictures are drawn
    size: str = "tiny"  # the tiny FLUX, or FLUX.1-dev's architecture at its real size
    draw_load_seconds: float = 0.0  # the drawing alone's process loading its pipeline
    page_cache_dropped: bool = False  # before the pool's start: its load read the disk
    machine: str = ""  # the GPU, where there is one

    @property
    def by_wall(self) -> bool:
        """Whether the ratio is judged by wall time: on a GPU, whose time the picture is (a CPU
        thread waiting for it spins), not on a shared CPU, whose wall time measures its tenants."""
        return self.device != "cpu"


def compare(job: Sequence[Done], pool: Sequence[Done]) -> tuple[int, int, list[str]]:
    """(equal, compared, the names that differ) over the requests both runs drew."""
    pooled = {d.name: d.picture for d in pool if d.ok}
    both = [d for d in job if d.ok and d.name in pooled]
    differ = [d.name for d in both if d.picture != pooled[d.name]]
    return len(both) - len(differ), len(both), differ


def by_lora(pool: Sequence[Done]) -> dict[str, list[float]]:
    """The pooled requests' billed seconds (the pool's drawing, their LoRAs' loading included) by
    what the pool had to do for their LoRA: `first` (the first request of a LoRA, in the order
    they started: its file loaded), `kept` (a LoRA asked for before) and `none` (the base alone)."""
    split: dict[str, list[float]] = {"first": [], "kept": [], "none": []}
    seen: set[int] = set()
    for d in sorted((d for d in pool if d.ok), key=lambda d: d.started):
        key = "none" if d.lora is None else ("kept" if d.lora in seen else "first")
        split[key].append(d.gpu_seconds)
        if d.lora is not None:
            seen.add(d.lora)
    return split


def split_row(m: Measures) -> str:
    """Each kind of pooled request's mean billed seconds against the drawing alone's."""
    said, split = [], by_lora(m.pool)
    for key, words in (("first", "a LoRA's first request"), ("kept", "a kept LoRA"), ("none", "no LoRA")):
        values = split[key]
        if values and m.draw_seconds > 0:
            mean = statistics.fmean(values)
            said.append(f"{words} {mean / m.draw_seconds:.2f}× ({mean:.2f} s, {len(values)})")
    return "; ".join(said)


def per_hour(pictures: int, seconds: float) -> float:
    return pictures * 3600 / seconds if seconds > 0 else 0.0


def figures(m: Measures) -> dict[str, float]:
    """The numbers the goals and the table are made of."""
    job_ok, pool_ok = [d for d in m.job if d.ok], [d for d in m.pool if d.ok]
    # cold: started before the pool was warm (they waited for its load); warm: the others
    cold = [d for d in pool_ok if d.started < m.pool_cold_seconds]
    warm = [d for d in pool_ok if d.started >= m.pool_cold_seconds]
    drawn = int(m.pool_status.get("drawn") or 0)
    busy = float(m.pool_status.get("busySeconds") or 0.0)
    per_picture = busy / drawn if drawn else math.nan
    cpu_per_picture = m.pool_cpu_seconds / m.pool_cpu_pictures if m.pool_cpu_pictures else math.nan
    return {
        "job_p50": percentile([d.seconds for d in job_ok], 50),
        "job_p95": percentile([d.seconds for d in job_ok], 95),
        "pool_cold_p50": percentile([d.seconds for d in cold], 50),
        "pool_cold_p95": percentile([d.seconds for d in cold], 95),
        "pool_cold_count": float(len(cold)),
        "warm_p50": percentile([d.seconds for d in warm], 50),
        "warm_p95": percentile([d.seconds for d in warm], 95),
        "job_per_hour": per_hour(len(job_ok), m.job_pod_seconds),
        "pool_per_hour": per_hour(len(pool_ok), m.pool_pod_seconds),
        "job_loads_per_picture": sum(d.loads for d in job_ok) / len(job_ok) if job_ok else math.nan,
        "pool_loads": float(max(int(m.pool_status.get("loads") or 0), m.pool_loads_seen)),
        "pool_loads_per_picture": max(int(m.pool_status.get("loads") or 0), m.pool_loads_seen) / len(pool_ok)
        if pool_ok
        else math.nan,
        "pool_per_picture": per_picture,
        "picture_ratio": per_picture / m.draw_seconds if m.draw_seconds > 0 else math.nan,
        "pool_cpu_per_picture": cpu_per_picture,
        "cpu_ratio": cpu_per_picture / m.draw_cpu_seconds if m.draw_cpu_seconds > 0 else math.nan,
        "job_per_picture_billed": statistics.median([d.gpu_seconds for d in job_ok]) if job_ok else math.nan,
    }


def bracketed(m: Measures) -> str:
    """How the drawing alone's median was taken: before and after the runs (on a shared CPU), or
    before them."""
    if m.draw_bracketed:
        return f", the median of {len(m.draw_samples)} before and after the runs"
    return f", the median of {len(m.draw_samples)} before the runs" if m.by_wall else ""


def lora_loads(status: dict[str, Any], pictures: int) -> str:
    """The pool's LoRA account (its status's `loras`: kept between requests) per picture."""
    loras = status.get("loras")
    if not isinstance(loras, dict) or not pictures:
        return "(not said: each request's loaded and unloaded)"
    loads = int(loras.get("loads") or 0)
    said = (
        f"**{loads / pictures:.2f}** ({loads} loads for {pictures} pictures; "
        f"{loras.get('kept')} kept at the end, {loras.get('capacity')} at most)"
    )
    if swaps := int(loras.get("swaps") or 0):  # a compiled pool's (--compile): hot-swaps into its slot
        mean = 1000 * float(loras.get("swapSeconds") or 0) / swaps
        said += (
            f"; compiled with {loras.get('compiler')}: {swaps} hot-swaps of {mean:.0f} ms on average, "
            f"{loras.get('graphs')} graphs compiled in all (the warm-up's included), "
            f"{loras.get('fallbacks')} drawn apart"
        )
    return said


def problems(m: Measures) -> list[str]:
    """Each goal missed, in one line (none: passed)."""
    f = figures(m)
    found = []
    failed = [d for d in (*m.job, *m.pool) if not d.ok]
    if failed:
        found.append(f"{len(failed)} request(s) failed, e.g. {failed[0].name}: {failed[0].error}")
    if len(m.pool) != m.requests or len([d for d in m.pool if d.ok]) != m.requests:
        found.append(f"the pool drew {len([d for d in m.pool if d.ok])} of {m.requests} requests")
    if f["pool_loads"] != 1:
        found.append(
            f"the pool loaded its base {f['pool_loads']:.0f} times (status {m.pool_status.get('loads')}, "
            f"output {m.pool_loads_seen}): goal once for its life"
        )
    if any(d.loads for d in m.pool):
        found.append("a pooled request's worker loaded a pipeline of its own: goal none")
    if m.by_wall and not f["picture_ratio"] <= MAX_PICTURE_RATIO:
        found.append(
            f"the pool's time per picture is {f['picture_ratio']:.2f}× the drawing alone's "
            f"({f['pool_per_picture']:.2f} s against {m.draw_seconds:.2f} s): goal ≤ {MAX_PICTURE_RATIO}×"
        )
    if not m.by_wall and not f["cpu_ratio"] <= MAX_PICTURE_RATIO:
        found.append(
            f"the pool's CPU time per picture is {f['cpu_ratio']:.2f}× the drawing alone's "
            f"({f['pool_cpu_per_picture']:.2f} s against {m.draw_cpu_seconds:.2f} s): "
            f"goal ≤ {MAX_PICTURE_RATIO}×"
        )
    if not f["pool_per_hour"] > f["job_per_hour"]:
        found.append(
            f"pictures per pod-hour: pool {f['pool_per_hour']:.0f}, Job per request {f['job_per_hour']:.0f}: "
            "goal more with the pool"
        )
    if not f["warm_p50"] < f["job_p50"]:
        found.append(
            f"time to first picture: warm p50 {f['warm_p50']:.1f} s, a Job per request's p50 "
            f"{f['job_p50']:.1f} s: goal faster warm"
        )
    if m.compared == 0:
        found.append("no pooled picture was compared with a fresh process's")
    elif m.unequal:
        found.append(
            f"{len(m.unequal)} of {m.compared} pooled pictures differ from a fresh process's "
            f"(e.g. {m.unequal[0]}): goal equal"
        )
    return found


NODES = {
    "process": "node `process` (the workers and the pool as processes of this machine)",
    "real": "the local cluster's real node (every worker and the pool a container under the kubelet, "
    "containerd and runc; each request an ImageGeneration through the operator)",
    "gpu": "node `gpu` (the workers and the pool as processes of a machine with a GPU)",
}


def drawn_with(m: Measures) -> str:
    """What the pictures were drawn with, for the table's heading."""
    side = SIZES[m.size][0]
    model = "FLUX.1-dev's architecture with random bf16 weights" if m.size == "full" else "tiny FLUX"
    where = f"on {m.machine}" if m.machine else ("on the CPU" if m.device == "cpu" else f"on {m.device}")
    return f"{model} {where}, {side} × {side}"


def markdown(m: Measures, load: str, when: str, seconds: float, node: str = "process") -> str:
    f = figures(m)
    ratio = f["picture_ratio"] if m.by_wall else f["cpu_ratio"]
    goal = f"≤ {MAX_PICTURE_RATIO}× ({'met' if ratio <= MAX_PICTURE_RATIO else 'missed'})"
    cold = (
        f"{m.pool_cold_seconds:.1f} s to warm"
        + (", its load from the disk (the page cache dropped)" if m.page_cache_dropped else "")
        + (f"; the drawing alone's load {m.draw_load_seconds:.1f} s" if m.draw_load_seconds else "")
    )
    status = m.pool_status
    pool_ok, job_ok = len([d for d in m.pool if d.ok]), len([d for d in m.job if d.ok])
    rows = [
        (
            "requests (LoRAs, owners)",
            f"{m.requests} ({m.loras} LoRAs of {len(OWNERS)} owners, 1 in {m.loras + 1} without)",
            f"{len(m.job)} (spread over the plan)",
            "",
        ),
        ("failed", str(len(m.pool) - pool_ok), str(len(m.job) - job_ok), "0"),
        (
            "time to first picture, cold: p50 / p95",
            f"{f['pool_cold_p50']:.1f} s / {f['pool_cold_p95']:.1f} s ({f['pool_cold_count']:.0f} started "
            f"while the pool came up from zero: {cold})",
            f"{f['job_p50']:.1f} s / {f['job_p95']:.1f} s (every request)",
            "",
        ),
        (
            "time to first picture, warm: p50 / p95",
            f"**{f['warm_p50']:.1f} s** / {f['warm_p95']:.1f} s",
            "(none: every Job is cold)",
            "warm p50 < the Jobs' p50",
        ),
        (
            "pictures per pod-hour",
            f"**{f['pool_per_hour']:.0f}** ({pool_ok} in {m.pool_pod_seconds:.0f} s of the pool's pod)",
            f"{f['job_per_hour']:.0f} ({job_ok} in {m.job_pod_seconds:.0f} s of Jobs)",
            "more with the pool",
        ),
        (
            "base-model loads per picture",
            f"**{f['pool_loads_per_picture']:.3f}** ({f['pool_loads']:.0f} load for the pod's life)",
            f"{f['job_loads_per_picture']:.2f}",
            "1 per pool pod's life",
        ),
        (
            "LoRA files loaded per picture",
            lora_loads(status, len([d for d in m.pool if d.ok])),
            "1.00 (each Job loads its LoRA)",
            "",
        ),
        *(
            []
            if m.by_wall
            else [
                (
                    "CPU time per picture ÷ the drawing alone's",
                    f"**{f['cpu_ratio']:.2f}×** ({f['pool_cpu_per_picture']:.2f} s a picture over "
                    f"{m.pool_cpu_pictures} pictures; drawing alone {m.draw_cpu_seconds:.2f} s"
                    f"{bracketed(m)})",
                    "",
                    goal,
                )
            ]
        ),
        (
            "wall time per picture ÷ the drawing alone's" + ("" if m.by_wall else " (shared CPU)"),
            f"**{f['picture_ratio']:.2f}×** ({f['pool_per_picture']:.2f} s billed a picture; "
            f"drawing alone {m.draw_seconds:.2f} s{bracketed(m) if m.by_wall else ''})",
            f"({f['job_per_picture_billed']:.2f} s billed a picture, the load included)",
            goal if m.by_wall else "",
        ),
        (
            "… by the request's LoRA (mean billed ÷ the drawing alone; requests)",
            split_row(m),
            "",
            "",
        ),
        (
            "pictures equal to a fresh process's (SHA-256)",
            f"**{m.equal} of {m.compared}**",
            "(the fresh processes)",
            "all",
        ),
        (
            "the pool's own account",
            f"{status.get('requests')} requests, {status.get('drawn')} drawn, "
            f"busy {status.get('busySeconds')} s, warm {status.get('warmSeconds')} s",
            "",
            "",
        ),
    ]
    lines = [
        f"Warm pool against a Job per request, {when}, {NODES[node]}, {drawn_with(m)}, "
        f"{m.steps} steps; "
        f"{seconds / 60:.1f} min; load average {load}:",
        "",
        "| measure | pool | Job per request | goal |",
        "| --- | --- | --- | --- |",
        *(f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows),
    ]
    return "\n".join(lines)


def with_table(page: str, table: str, node: str = "process") -> str:
    start, end = MARKERS[node]
    if start not in page or end not in page:
        raise ValueError(f"docs/performance.md: no {start} ... {end} to write the table between")
    before, rest = page.split(start, 1)
    return before + start + "\n" + table + "\n" + end + rest.split(end, 1)[1]


# --- adapters -------------------------------------------------------------------------------------


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def models(root: Path, size: str = "tiny") -> Path:
    """A models' root with FLUX.1-dev staged: the tiny FLUX (built once, cached), or at its real
    size (bench/pools_gpu.py)."""
    from bench.pools_gpu import stage

    return stage(root, size, CACHE)


def lora_key(owner: str, k: int) -> str:
    return f"loras/{owner}/bench-lora-{k}/v1/lora.safetensors"


def make_loras(models_root: Path, store_dir: Path, count: int, size: str = "tiny") -> None:
    """`count` random LoRAs of the staged FLUX (rank 4 on the tiny one's attention; at real size,
    the trainer's: bench/pools_gpu.py), in the store where their owners' trainings would have put
    them."""
    from bench.pools_gpu import lora

    if size != "full":
        from tests.harness.cluster import random_lora  # not at full size: it imports av and pytest
    for k, request in enumerate(plan(count, count)[:count]):
        target = store_dir / lora_key(request.owner, k)
        if size == "full":
            lora(models_root, target, k + 1)
            continue
        made = random_lora(models_root, store_dir / "made", k + 1)
        target.parent.mkdir(parents=True, exist_ok=True)
        made.replace(target)


def request_spec(request: Request, size: str = "tiny") -> dict[str, Any]:
    """The ImageGeneration's spec without its LoRA: one picture of provider cluster, its seed."""
    return {
        "owner": request.owner,
        "prompt": PROMPT,
        "provider": "cluster",
        "model": "flux-dev",
        "imageSize": SIZES[size][1],
        "numImages": 1,
        "seed": request.seed,
    }


def spec_file(request: Request, run: str, store_dir: Path, folder: Path, size: str = "tiny") -> Path:
    """The ImageGeneration's spec as the operator hands it to its Job (its loraRef resolved); a
    uid of its own per run, so that the pool's run resumes nothing the Jobs' run drew (a retried
    worker takes the pictures its uid already has)."""
    from contentgen.api import SpecSnapshot

    spec = request_spec(request, size)
    loras = []
    if request.lora is not None:
        name = f"bench-lora-{request.lora}"
        spec["model"] = "flux-lora"
        spec["loras"] = [{"loraRef": {"name": name}, "scale": SCALE}]
        uri = (store_dir / lora_key(request.owner, request.lora)).as_uri()
        loras = [{"uri": uri, "scale": SCALE, "name": name, "uid": f"uid-{name}", "version": 1}]
    snapshot = SpecSnapshot.model_validate(
        {
            "kind": "ImageGeneration",
            "name": request.name,
            "namespace": request.owner,
            "uid": f"uid-{run}-{request.name}",
            "version": 1,
            "spec": spec,
            "loras": loras,
        }
    )
    path = folder / f"{request.name}.json"
    path.write_text(snapshot.model_dump_json(by_alias=True))
    return path


def environment(
    models_root: Path, store_dir: Path, steps: int, pool_url: str = "", device: str = "cpu"
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONTENTGEN_")}
    env.update(
        {
            "CONTENTGEN_STORE": store_dir.as_uri(),
            "CONTENTGEN_CLUSTER_MODELS_DIR": str(models_root),
            "CONTENTGEN_CLUSTER_DEVICE": device,
            "CONTENTGEN_CLUSTER_INFERENCE_STEPS": str(steps),
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if device == "cpu":
        # torch on one thread in every process: with two on two shared cores, a thread spins
        # while its partner waits for a core, and CPU time measures the machine's load (the
        # drawing alone took 0.53 s of CPU at load 5 and 2.28 s at load 25)
        env["OMP_NUM_THREADS"] = "1"
    env.pop("FAL_KEY", None)
    if pool_url:
        env["CONTENTGEN_CLUSTER_POOL_URL"] = pool_url
    return env


def picture_hash(store_dir: Path, result: dict[str, Any]) -> str:
    [image] = result["images"]
    return stored_hash(str(image.get("uri") or image.get("url") or ""))


def stored_hash(uri: str) -> str:
    """The SHA-256 of an output the file store holds at `uri` ("" where it holds none)."""
    path = Path(urllib.request.url2pathname(uri.removeprefix("file://")))
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else ""


@dataclass(frozen=True)
class Ran:
    """A Job's worker process, run to its exit: what it said and left."""

    code: int
    began: float  # time.monotonic() at its start
    seconds: float
    output: str  # stdout and stderr
    result: dict[str, Any]  # its termination message ({} where it left none)
    cpu: float  # its CPU seconds, user and system

    def error(self) -> str:
        """Why it failed, in a line: its result's message, else its output's last line."""
        lines = self.output.strip().splitlines()
        return str(self.result.get("message") or (lines[-1] if lines else f"exit {self.code}"))[:300]


def run_spec(name: str, spec: Path, env: dict[str, str], folder: Path) -> Ran:
    """`contentgen worker --spec SPEC` as a Job's container runs it, in folder/NAME, to its exit."""
    log, output, work = folder / f"{name}.log", folder / f"{name}.out", folder / name
    work.mkdir()
    began = time.monotonic()
    with output.open("w") as out:
        worker = subprocess.Popen(
            [*CONTENTGEN, "worker", "--spec", str(spec), "--termination-log", str(log)],
            cwd=work,
            env={**env, "CONTENTGEN_WORK_DIR": str(work)},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        code, cpu = _waited(worker, 1800)  # hang guard
    seconds = time.monotonic() - began
    try:
        result = json.loads(log.read_text())
    except (OSError, ValueError):
        result = {}
    return Ran(code, began, seconds, output.read_text(errors="replace"), result, cpu)


def _waited(process: subprocess.Popen[bytes], timeout: float) -> tuple[int, float]:
    """The process's exit status and CPU seconds (os.wait4), killed after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, used = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return process.returncode, used.ru_utime + used.ru_stime
        if time.monotonic() > deadline:
            process.kill()
        time.sleep(0.05)


def run_worker(
    request: Request, spec: Path, env: dict[str, str], folder: Path, store_dir: Path, t0: float
) -> Done:
    """One request's Job: `contentgen worker` on its spec, to its exit."""
    ran = run_spec(request.name, spec, env, folder)
    ok = ran.code == 0 and bool(ran.result.get("images"))
    return Done(
        name=request.name,
        started=round(ran.began - t0, 3),
        seconds=round(ran.seconds, 3),
        ok=ok,
        loads=loads_in(ran.output),
        picture=picture_hash(store_dir, ran.result) if ok else "",
        gpu_seconds=round(
            sum(float(u.get("quantity") or 0) for u in ran.result.get("usage") or []) * 3600, 3
        ),
        error="" if ok else ran.error(),
        lora=request.lora,
    )


def run_jobs(
    requests: Sequence[Request],
    env: dict[str, str],
    folder: Path,
    store_dir: Path,
    concurrency: int,
    t0: float,
    size: str = "tiny",
) -> list[Done]:
    folder.mkdir(parents=True, exist_ok=True)
    specs = {r.name: spec_file(r, folder.name, store_dir, folder, size) for r in requests}
    return each(requests, concurrency, lambda r: run_worker(r, specs[r.name], env, folder, store_dir, t0))


class _Ended(Protocol):  # a request's end, as Done and pools_clips.Clip say it
    @property
    def seconds(self) -> float: ...
    @property
    def ok(self) -> bool: ...
    @property
    def error(self) -> str: ...


E = TypeVar("E", bound=_Ended)


def each(requests: Sequence[Request], at_once: int, run: Callable[[Request], E]) -> list[E]:
    """`run` on every request, `at_once` at a time, in the requests' order; each said on stderr as
    it ends."""

    def one(request: Request) -> E:
        ended = run(request)
        said = "ok" if ended.ok else f"FAILED {ended.error}"
        print(
            f"  {request.name} {request.owner} lora {request.lora}: {ended.seconds:.1f} s, {said}",
            file=sys.stderr,
            flush=True,
        )
        return ended

    with ThreadPoolExecutor(max_workers=at_once) as workers:
        return list(workers.map(one, requests))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def status(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/v1/status", timeout=10) as answer:
        return dict(json.loads(answer.read()))


@contextlib.contextmanager
def pool_process(
    env: dict[str, str], folder: Path, kept_loras: int = 32, extra: Sequence[str] = ()
) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """`contentgen pool` on a free loopback port, with `extra` arguments (else --kept-loras
    `kept_loras`): (its URL, the process, its output file)."""
    port = free_port()
    output = folder / "pool.out"
    folder.mkdir(parents=True, exist_ok=True)
    with output.open("w") as out:
        process = subprocess.Popen(
            [
                *(*CONTENTGEN, "pool", "--model", "FLUX.1-dev"),
                *("--host", "127.0.0.1", "--port", str(port), "--work-dir", str(folder / "work")),
                *(extra or ("--kept-loras", str(kept_loras))),
            ],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield f"http://127.0.0.1:{port}", process, output
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_warm(url: str, process: subprocess.Popen[bytes], began: float, hang_guard: float = 900) -> float:
    """Seconds from `began` until the pool says warm."""
    while time.monotonic() - began < hang_guard:
        if process.poll() is not None:
            raise RuntimeError(f"the pool exited ({process.returncode}) before it was warm")
        with contextlib.suppress(OSError, ValueError):
            if status(url).get("state") == "warm":
                return time.monotonic() - began
        time.sleep(0.2)
    raise RuntimeError(f"the pool was not warm in {hang_guard:.0f} s")


def floor_here(models_root: str, steps: int, repeat: int, device: str = "cpu", side: int = 512) -> None:
    """In the floor's own process: print {"load": seconds, "draws": [[wall, CPU], ...]}: its
    pipeline's load, then `repeat` drawings after one to warm up."""
    from contentgen.providers.cluster.generation import flux, generation

    began = time.monotonic()
    pipe = flux.load_pipeline(Path(models_root) / "FLUX.1-dev", flux.device(device))
    load = time.monotonic() - began
    times = []
    for i in range(repeat + 1):
        picture = generation.Picture(PROMPT, side, side, 7 + i, steps, generation.DEV_GUIDANCE)
        wall, cpu = time.monotonic(), time.process_time()
        generation.draw(pipe, picture, Path("floor.png"))
        times.append([time.monotonic() - wall, time.process_time() - cpu])
    print(json.dumps({"load": load, "draws": times[1:]}))


def medians(samples: Sequence[Sequence[float]]) -> tuple[float, float]:
    """The medians of [wall, CPU] samples."""
    return float(statistics.median(t[0] for t in samples)), float(statistics.median(t[1] for t in samples))


def draw_floor(
    models_root: Path, steps: int, repeat: int, device: str = "cpu", size: str = "tiny"
) -> tuple[list[list[float]], float]:
    """The drawing alone: `generation.draw` on a kept pipeline, no LoRA, at the size's side, in a
    process of its own with the torch threads the pool has: each drawing's [wall, CPU] seconds,
    and the seconds its pipeline took to load."""
    side = SIZES[size][0]
    code = (
        f"from bench.pools import floor_here; "
        f"floor_here({str(models_root)!r}, {steps}, {repeat}, {device!r}, {side})"
    )
    with tempfile.TemporaryDirectory(prefix="bench-pools-floor-") as tmp:
        env = environment(models_root, Path(tmp), steps, device=device)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
            timeout=1800,
            check=False,
        )
    if done.returncode != 0:
        raise RuntimeError(f"the drawing alone failed: {done.stderr.strip().splitlines()[-1:]}")
    said = json.loads(done.stdout.strip().splitlines()[-1])
    print(
        f"  the drawing alone (wall, CPU): {said['draws']} s, loaded in {said['load']:.1f} s", file=sys.stderr
    )
    return [[float(wall), float(cpu)] for wall, cpu in said["draws"]], float(said["load"])


def process_cpu(pid: int) -> float:
    """The CPU seconds (user and system, all threads) process `pid` has used."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(args: argparse.Namespace, root: Path) -> Measures:
    gpu = args.node == "gpu"
    print(f"bench.pools: staging FLUX.1-dev ({args.size}, {load_average()})", file=sys.stderr)
    models_root = models(root / "models", args.size)
    store_dir = root / "store"
    print(f"bench.pools: {args.loras} LoRAs, the drawing alone ({load_average()})", file=sys.stderr)
    make_loras(models_root, store_dir, args.loras, args.size)
    before, load = draw_floor(models_root, args.steps, args.floor, args.device, args.size)
    m = Measures(args.requests, args.loras, args.steps, *medians(before), draw_samples=before)
    m.device, m.size, m.draw_load_seconds = args.device, args.size, round(load, 3)
    if gpu:
        from bench.pools_gpu import gpu_name

        m.machine = gpu_name()
    requests = plan(args.requests, args.loras)

    print(f"bench.pools: a Job per request, {args.baseline} ({load_average()})", file=sys.stderr)
    began = time.monotonic()
    m.job = run_jobs(
        sample(requests, args.baseline),
        environment(models_root, store_dir, args.steps, device=args.device),
        root / "job",
        store_dir,
        args.job_concurrency,
        began,
        args.size,
    )
    m.job_pod_seconds = round(sum(d.seconds for d in m.job), 3)
    print(f"  {time.monotonic() - began:.0f} s", file=sys.stderr)

    print(f"bench.pools: the pool, {args.requests} ({load_average()})", file=sys.stderr)
    if gpu:  # a node that never read the model: the pool's load reads the disk
        from bench.pools_gpu import drop_page_cache

        m.page_cache_dropped = drop_page_cache()
    pool_env = environment(models_root, store_dir, args.steps, device=args.device)
    compiled = ("--compile", args.compile, "--lora-rank", str(args.lora_rank)) if args.compile else ()
    extra = ("--kept-loras", str(args.kept_loras), *compiled)
    with pool_process(pool_env, root / "pool", extra=extra) as (url, process, output):
        started = time.monotonic()
        warm: list[float] = []
        at_warm: list[tuple[float, int]] = []  # the pool's CPU seconds and pictures once warm

        def watch() -> None:
            warm.append(wait_warm(url, process, started))
            at_warm.append((process_cpu(process.pid), int(status(url).get("drawn") or 0)))

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        m.pool = run_jobs(
            requests,
            environment(models_root, store_dir, args.steps, pool_url=url, device=args.device),
            root / "pooled",
            store_dir,
            args.concurrency,
            started,
            args.size,
        )
        m.pool_pod_seconds = round(time.monotonic() - started, 3)
        watcher.join(timeout=60)
        m.pool_cold_seconds = round(warm[0], 3) if warm else math.nan
        m.pool_status = status(url)
        if at_warm:
            m.pool_cpu_seconds = round(process_cpu(process.pid) - at_warm[0][0], 3)
            m.pool_cpu_pictures = int(m.pool_status.get("drawn") or 0) - at_warm[0][1]
    m.pool_loads_seen = loads_in(output.read_text(errors="replace"))
    m.equal, m.compared, m.unequal = compare(m.job, m.pool)
    if not gpu:
        # the drawing alone again: the ratio's baseline brackets the runs, so a machine that
        # drifts between the first and the last minute moves both sides (a GPU lent whole does
        # not drift with other tenants: its minutes go to the runs)
        print(f"bench.pools: the drawing alone again ({load_average()})", file=sys.stderr)
        m.draw_samples = before + draw_floor(models_root, args.steps, args.floor, args.device, args.size)[0]
        m.draw_seconds, m.draw_cpu_seconds = medians(m.draw_samples)
        m.draw_bracketed = True
    return m


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100, help="requests drawn by the pool")
    parser.add_argument("--loras", type=int, default=20, help="LoRAs, split between two owners")
    parser.add_argument(
        "--baseline", type=int, default=10, help="requests (spread over the plan) run as a Job per request"
    )
    parser.add_argument(
        "--steps", type=int, default=None, help="denoising steps a picture (default: 4; on node gpu 28)"
    )
    parser.add_argument("--concurrency", type=int, default=2, help="pooled requests' workers at once")
    parser.add_argument("--job-concurrency", type=int, default=1, help="Jobs per request at once")
    parser.add_argument("--floor", type=int, default=3, help="drawings timed for the drawing alone")
    parser.add_argument(
        "--kept-loras",
        type=int,
        default=32,
        help="the pool's --kept-loras (0: each request's LoRA loaded and unloaded)",
    )
    parser.add_argument(
        "--compile",
        default="",
        metavar="BACKEND",
        help="the pool's --compile (inductor on a GPU: the transformer compiled at its warm-up, each "
        "request's LoRA hot-swapped into it); default: none (--node real: the chart's auto)",
    )
    parser.add_argument(
        "--lora-rank",
        type=int,
        default=16,
        help="with --compile: the pool's --lora-rank (the LoRAs' is 16 at real size)",
    )
    parser.add_argument(
        "--node",
        choices=("process", "real", "gpu"),
        default="real",
        help="where the workers run: pods of the local cluster's real node (bench/pools_real.py, the "
        "default), processes of this machine, or processes of a machine with a GPU drawing FLUX.1-dev "
        "at its real size (bench/pools_gpu.py)",
    )
    parser.add_argument("--device", choices=("cpu", "cuda"), help="where to draw (default: the node's)")
    parser.add_argument(
        "--size", choices=tuple(SIZES), help="the tiny FLUX or FLUX.1-dev's size (default: the node's)"
    )
    parser.add_argument("--docs", action="store_true", help="write the table into docs/performance.md")
    parser.add_argument(
        "--table-from",
        metavar="FILE",
        help="measure nothing: the table of a run's saved results (bench/out/pools*.json) again, as this "
        "code writes it (with --docs, into docs/performance.md)",
    )
    args = parser.parse_args()
    if args.table_from:
        return table_from(Path(args.table_from), args.docs)
    device, size, steps = DEFAULTS[args.node]
    args.device, args.size = args.device or device, args.size or size
    args.steps = steps if args.steps is None else args.steps
    if args.node == "real" and (args.device, args.size) != ("cpu", "tiny"):
        parser.error("--node real draws the tiny FLUX on the CPU")
    for name in ("requests", "loras", "baseline", "steps", "concurrency", "job_concurrency", "floor"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: at least 1")
    if args.baseline > args.requests:
        parser.error("--baseline: at most --requests (the baseline runs some of the plan's requests)")
    keep = os.environ.get("BENCH_KEEP")  # a directory to keep the workers' outputs in
    began, loads = time.monotonic(), [load_average()]
    with tempfile.TemporaryDirectory(prefix="bench-pools-") as tmp:
        root = Path(keep) if keep else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        if args.node == "real":
            from bench.pools_real import measure_real

            m = measure_real(args, root)
        else:
            m = measure(args, root)
    loads.append(load_average())
    seconds = time.monotonic() - began
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    load = f"{loads[0]} at the start, {loads[-1]} at the end (1, 5, 15 min)"
    found = problems(m)
    report = {
        "when": when,
        "node": args.node,
        "load_average": loads,
        "seconds": round(seconds, 1),
        "figures": figures(m),
        "measures": asdict(m),
        "problems": found,
        "passed": not found,
    }
    out = OUT if args.node == "process" else OUT.with_name(f"pools-{args.node}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    return said(markdown(m, load, when, seconds, args.node), found, args.node, args.docs)


def said(table: str, found: list[str], node: str, docs: bool) -> int:
    """The table and each goal missed on stdout, the table into the docs with `docs`: the exit status."""
    print(table)
    for problem in found:
        print(f"FAIL {problem}")
    if docs:
        DOCS.write_text(with_table(DOCS.read_text(), table, node))
    return 0 if not found else 1


def saved(report: dict[str, Any]) -> Measures:
    """A run's Measures as its results file keeps them."""
    fields = dict(report["measures"])
    for run in ("job", "pool"):
        fields[run] = [Done(**d) for d in fields[run]]
    return Measures(**fields)


def table_from(path: Path, docs: bool) -> int:
    """`--table-from`: a saved run's table (and its failures) again."""
    report = json.loads(path.read_text())
    m, loads = saved(report), report["load_average"]
    load = f"{loads[0]} at the start, {loads[-1]} at the end (1, 5, 15 min)"
    table = markdown(m, load, report["when"], float(report["seconds"]), report["node"])
    return said(table, problems(m), report["node"], docs)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
