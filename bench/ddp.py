"""A training on several processes (issue 69): steps per second of the tiny FLUX
(tests/cluster/tiny_flux.py) at world sizes 1, 2 and 4 on the CPU, each process a torchrun one
with gloo between them, as a Job's pod runs them (providers/cluster/training/distributed.py).

A correctness and overhead figure, not a speed claim: on the CPU of a 2-core machine the
processes share the cores, so more processes are not faster; what it shows is what a step costs
on each world size with its batch shared (the DDP allreduce, the per-step broadcast of the watch's
answer, the collective of the loss) and that the same batch gives the same LoRA on each world
size (the largest difference, relative to each tensor's size, from world size 1's).

Two batches: one sample per process (the default, batchSize unset: weak scaling) and a fixed
batch of 4 (the same training at each world size). Each run trains STEPS steps after a warm-up
of 2 (the first steps build gloo's buffers and the autograd graph), timing only those; one
process per core is the machine's: `OMP_NUM_THREADS=1`.

python -m bench.ddp [--steps 30] [--out bench/out/ddp.json]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WARM = 2


def worker(model: Path, out: Path, steps: int, batch: int) -> None:
    """One process of the run (torchrun's, or the only one): WARM + `steps` steps timed by rank 0,
    the LoRA held at the end saved by rank 0."""
    import torch
    from peft.utils import get_peft_model_state_dict

    from contentgen.api.base_models import base_model
    from contentgen.providers.cluster.families.flux_training import FLUX, Example
    from contentgen.providers.cluster.files import FolderFiles
    from contentgen.providers.cluster.generation import flux
    from contentgen.providers.cluster.training import distributed, loop
    from contentgen.providers.cluster.training.family import Job
    from contentgen.providers.cluster.training.plan import Plan
    from tests.cluster.tiny_flux import pictures

    torch.set_num_threads(1)
    me = distributed.world()
    team = distributed.Team.join(me) if me.several else distributed.SOLO
    work = out / f"rank-{me.rank}"
    work.mkdir(parents=True, exist_ok=True)
    examples = [Example(p, c) for p, c in pictures(work / "pictures")]
    plan = Plan(steps=WARM + steps, rank=4, resolution=64, batch=batch or me.size)
    marks: dict[int, float] = {}

    def mark(step: int, steps: int) -> None:
        marks.setdefault(step, time.monotonic())

    trained = loop.Run.trained

    def ended(run: loop.Run, *args: Any) -> Any:
        if me.main:
            transformer = run.model.experts[0].transformer
            lora = {k: v.detach().clone() for k, v in get_peft_model_state_dict(transformer).items()}
            torch.save(lora, out / "lora.pt")
        return trained(run, *args)

    loop.Run.trained = ended  # type: ignore[method-assign,assignment]
    on = flux.device("cpu")
    with distributed.joined(team):
        team.begin(False)
        files: Any = FolderFiles(out / "checkpoints") if me.main else None
        shared = distributed.SharedFiles(files, team) if me.several else files
        job = Job(FLUX, model, examples, plan, on, work, shared, base_model("flux.1"), team=team)
        loop.train(job, mark)
    if me.main:
        seconds = marks[WARM + steps] - marks[WARM]
        (out / "timing.json").write_text(json.dumps({"steps": steps, "seconds": seconds}))


def run(model: Path, processes: int, steps: int, batch: int) -> dict[str, Any]:
    """One training at `processes`: its steps per second, samples per second and its LoRA's
    distance from world size 1's."""
    out = Path(tempfile.mkdtemp(prefix=f"ddp-{processes}-"))
    args = ["-m", "bench.ddp", "--worker", str(model), str(out), str(steps), str(batch)]
    if processes > 1:
        args = ["-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    began = os.times()
    subprocess.run([sys.executable, *args], cwd=ROOT, env=env, check=True, capture_output=True)
    ended = os.times()
    timing = json.loads((out / "timing.json").read_text())
    per_step = batch or processes
    return {
        "processes": processes,
        "batch": per_step,
        "steps_per_second": round(timing["steps"] / timing["seconds"], 3),
        "samples_per_second": round(per_step * timing["steps"] / timing["seconds"], 3),
        "cpu_seconds": round(
            ended.children_user + ended.children_system - began.children_user - began.children_system, 1
        ),
        "lora": str(out / "lora.pt"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out" / "ddp.json")
    parser.add_argument(
        "--worker", nargs=4, metavar=("MODEL", "OUT", "STEPS", "BATCH"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.worker:
        model, out, steps, batch = args.worker
        worker(Path(model), Path(out), int(steps), int(batch))
        return
    import torch

    from tests.cluster.lora_weights import apart
    from tests.cluster.tiny_flux import tiny_flux

    model = tiny_flux(ROOT / "bench" / "out" / "tiny-flux")
    rows = []
    for batch in (0, 4):
        reference: dict[str, Any] | None = None
        for processes in (1, 2, 4):
            row = run(model, processes, args.steps, batch)
            lora = torch.load(row.pop("lora"))
            reference = reference or lora
            row["apart_from_one_process"] = apart(reference, lora) if batch else None
            rows.append(row)
            print(json.dumps(row), flush=True)
    load = os.getloadavg()
    result = {"rows": rows, "load_average": [round(x, 2) for x in load], "cores": os.cpu_count()}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
