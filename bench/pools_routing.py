"""A compiled warm pool's LoRA swaps and the router's affinity across pods (`make bench-pools`,
issue 79), on the tests' tiny FLUX (random weights, 512 × 512, `--steps` 4) and rank-4 random LoRAs
on this machine's CPU.

`--pods` (4) pool pods, each `contentgen pool --compile BACKEND --lora-rank R --kept-loras K`
(providers/cluster/generation/generation.py HotSwapLoras: the transformer compiled once at its warm-up, each
request's LoRAs hot-swapped into one adapter slot, the `--pod-loras` most used kept on the device),
serve `--requests` ImageGenerations across `--loras` LoRAs of two owners (bench/pools.py's plan:
each LoRA in turn, then one without), `--concurrency` at a time, twice on fresh pods: each Job's
worker choosing the pod that holds its LoRA, else the least loaded (`--routing affinity`, the
chart's default), then choosing by load alone (`--routing least-loaded`, what a Service's spreading
amounts to). The compiler is torch's aot_eager by default: TorchDynamo's graphs and their guards,
which decide every recompile, and AOTAutograd's, without code generation (inductor's C++ compile of
each pod's graphs takes minutes on this machine's two cores: `--compile inductor`).

Reported for each routing, from the pods' own statuses (`/v1/status` `loras`): LoRA files loaded
per picture (each a read from the store's file and a copy to the device); graphs compiled after
the warm-up per swap (recompiles per swap, goal 0); swap time (the slot's hot-swap, the composing of
its LoRAs included), mean and per swap; requests drawn by each pod. Goals (FAIL lines, exit 1):
every request succeeds; no graph compiled after a pod's warm-up; fewer loads per picture with
affinity than by load alone.

`--node real` (the default): the pods are the chart's pool Deployment on the local cluster's real
node (the cluster tests' cluster, `--pods` GPUs advertised; the pool's container the worker image
with torch on the models' volume, tests/kube/torch_layer.py) and every request an ImageGeneration
through the operator, its Job's worker reaching the pods by the chart's headless Service;
`--node process`: the pods and the Jobs' workers are processes of this machine (the pods' URLs
given to each worker, comma-separated). Results: bench/out/pools-routing.json; `--docs` writes the
table into docs/performance.md.

    .venv/bin/python -m bench.pools_routing [--node real|process] [--pods 4] [--requests 60]
        [--loras 20] [--pod-loras 8] [--concurrency 4] [--compile aot_eager] [--lora-rank 8] [--docs]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.pools import (
    DOCS,
    ROOT,
    environment,
    load_average,
    make_loras,
    models,
    plan,
    pool_process,
    run_jobs,
    status,
    wait_warm,
)

OUT = ROOT / "bench" / "out" / "pools-routing.json"
MARKERS = ("<!-- bench-pools-routing:start -->", "<!-- bench-pools-routing:end -->")
ROUTINGS = ("affinity", "least-loaded")


@dataclass
class Round:
    """One routing's run: the requests' ends and each pod's status at warm and after the last."""

    routing: str
    ok: int = 0
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0
    warm: list[dict[str, Any]] = field(default_factory=list)  # each pod's loras account once warm
    end: list[dict[str, Any]] = field(default_factory=list)  # ... and after the last request
    drawn: list[int] = field(default_factory=list)  # each pod's pictures

    def total(self, key: str, at: str = "end") -> float:
        return sum(float(pod.get(key) or 0) for pod in getattr(self, at))

    @property
    def pictures(self) -> int:
        return sum(self.drawn)

    @property
    def loads_per_picture(self) -> float:
        return (self.total("loads") - self.total("loads", "warm")) / max(1, self.pictures)

    @property
    def swaps(self) -> int:
        return int(self.total("swaps") - self.total("swaps", "warm"))

    @property
    def recompiles(self) -> int:
        return int(self.total("graphs") - self.total("graphs", "warm"))

    @property
    def swap_ms(self) -> float:
        spent = self.total("swapSeconds") - self.total("swapSeconds", "warm")
        return 1000 * spent / self.swaps if self.swaps else 0.0


@dataclass
class Measures:
    node: str
    pods: int
    requests: int
    loras: int
    pod_loras: int
    compiler: str
    rank: int
    steps: int
    rounds: list[Round] = field(default_factory=list)

    def of(self, routing: str) -> Round:
        return next(r for r in self.rounds if r.routing == routing)


def problems(m: Measures) -> list[str]:
    """The goals missed (pure)."""
    found = []
    for r in m.rounds:
        if r.failed or r.ok != m.requests:
            found.append(f"{r.routing}: {r.ok} of {m.requests} requests succeeded: {r.failed[:3]}")
        if r.recompiles:
            found.append(
                f"{r.routing}: {r.recompiles} graphs compiled after the warm-up over {r.swaps} swaps"
            )
    affinity, spread = m.of("affinity"), m.of("least-loaded")
    if not affinity.loads_per_picture < spread.loads_per_picture:
        found.append(
            f"affinity loaded {affinity.loads_per_picture:.2f} LoRA files a picture, not fewer than "
            f"least-loaded's {spread.loads_per_picture:.2f}"
        )
    return found


def markdown(m: Measures, when: str, load: str, seconds: float) -> str:
    where = (
        "the chart's pool Deployment on the local cluster's real node"
        if m.node == "real"
        else "`contentgen pool` processes"
    )
    lines = [
        f"{m.pods} pods ({where}), {m.requests} requests across {m.loras} LoRAs, {m.pod_loras} LoRAs kept on "
        f"each pod, compiled with {m.compiler} (a slot of rank {m.rank}), {m.steps} steps, tiny FLUX on "
        f"the CPU; {when}, {seconds:.0f} s, load average {load}:",
        "",
        "| routing | LoRA loads per picture | recompiles per swap | swap (mean) | swaps | pictures per pod |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in m.rounds:
        per_swap = f"{r.recompiles / r.swaps:.2f}" if r.swaps else "0"
        lines.append(
            f"| {r.routing} | {r.loads_per_picture:.2f} | {per_swap} ({r.recompiles} in all) | "
            f"{r.swap_ms:.1f} ms | {r.swaps} | {', '.join(map(str, r.drawn))} |"
        )
    return "\n".join(lines)


def with_table(page: str, table: str) -> str:
    start, end = MARKERS
    before, rest = page.split(start, 1)
    _, after = rest.split(end, 1)
    return f"{before}{start}\n{table}\n{end}{after}"


SIDE = 512  # the requests' pictures (bench/pools.py's imageSize square), which the warm-up compiles for


def pool_args(args: argparse.Namespace, routing: str) -> list[str]:
    return [
        *("--kept-loras", str(args.pod_loras), "--compile", args.compile),
        *("--lora-rank", str(args.lora_rank), "--routing", routing, "--warm-up-size", f"{SIDE}x{SIDE}"),
    ]


def loras_of(answer: dict[str, Any]) -> dict[str, Any]:
    return dict(answer.get("loras") or {})


def measure_process(args: argparse.Namespace, root: Path) -> Measures:
    """The pods and the Jobs' workers as processes of this machine."""
    models_root, store_dir = models(root / "models"), root / "store"
    make_loras(models_root, store_dir, args.loras)
    m = Measures(
        "process",
        args.pods,
        args.requests,
        args.loras,
        args.pod_loras,
        args.compile,
        args.lora_rank,
        args.steps,
    )
    requests = plan(args.requests, args.loras)
    for routing in ROUTINGS:
        print(f"bench.pools_routing: {routing} ({load_average()})", file=sys.stderr)
        r = Round(routing)
        env = environment(models_root, store_dir, args.steps)
        with contextlib.ExitStack() as pods:
            started = [
                pods.enter_context(
                    pool_process(env, root / routing / f"pod-{n}", extra=pool_args(args, routing))
                )
                for n in range(args.pods)
            ]
            began = time.monotonic()
            for url, process, _ in started:
                wait_warm(url, process, began)
            urls = [url for url, _, _ in started]
            r.warm = [loras_of(status(url)) for url in urls]
            pooled = environment(models_root, store_dir, args.steps, pool_url=",".join(urls))
            # a folder named for the routing: the requests' uids are its name's (bench/pools.spec_file),
            # so that one round resumes nothing of the other's
            folder = root / routing / f"jobs-{routing}"
            done = run_jobs(requests, pooled, folder, store_dir, args.concurrency, began)
            r.seconds = round(time.monotonic() - began, 1)
            answers = [status(url) for url in urls]
        r.end = [loras_of(a) for a in answers]
        r.drawn = [int(a.get("drawn") or 0) for a in answers]
        r.ok, r.failed = sum(d.ok for d in done), [f"{d.name}: {d.error}" for d in done if not d.ok]
        m.rounds.append(r)
    return m


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--node", choices=("real", "process"), default="real", help="where the pods run")
    parser.add_argument("--pods", type=int, default=4, help="the pool's pods")
    parser.add_argument("--requests", type=int, default=60, help="ImageGenerations of each routing")
    parser.add_argument("--loras", type=int, default=20, help="LoRAs, split between two owners")
    parser.add_argument("--pod-loras", type=int, default=8, help="each pod's --kept-loras")
    parser.add_argument("--concurrency", type=int, default=4, help="requests at once")
    parser.add_argument("--compile", default="aot_eager", help="each pod's torch.compile backend")
    parser.add_argument("--lora-rank", type=int, default=8, help="each pod's --lora-rank (the LoRAs' is 4)")
    parser.add_argument("--steps", type=int, default=4, help="denoising steps a picture")
    parser.add_argument("--docs", action="store_true", help="write the table into docs/performance.md")
    args = parser.parse_args(argv)
    for name in ("pods", "requests", "loras", "concurrency", "steps", "lora_rank"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')}: at least 1")
    began, loads = time.monotonic(), [load_average()]
    keep = os.environ.get("BENCH_KEEP")
    with tempfile.TemporaryDirectory(prefix="bench-pools-routing-") as tmp:
        root = Path(keep) if keep else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        if args.node == "real":
            from bench.pools_routing_real import measure_real

            m = measure_real(args, root)
        else:
            m = measure_process(args, root)
    loads.append(load_average())
    seconds = time.monotonic() - began
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    found = problems(m)
    table = markdown(m, when, f"{loads[0]} at the start, {loads[-1]} at the end", seconds)
    figures = {
        r.routing: {
            "loadsPerPicture": round(r.loads_per_picture, 3),
            "recompiles": r.recompiles,
            "swaps": r.swaps,
            "swapMs": round(r.swap_ms, 2),
        }
        for r in m.rounds
    }
    report = {"when": when, "seconds": round(seconds, 1), "load_average": loads, "figures": figures}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({**report, "measures": asdict(m), "problems": found}, indent=1) + "\n")
    print(table)
    for problem in found:
        print(f"FAIL {problem}")
    if args.docs:
        DOCS.write_text(with_table(DOCS.read_text(), table))
    return 0 if not found else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
