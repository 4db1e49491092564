"""One process of a training on several CPU processes (gloo), as torchrun starts a Job's worker:
`python -m torch.distributed.run --standalone --nproc-per-node N -m tests.cluster.ddp_worker
MODELS OUT CHECKPOINTS STEPS BATCH STOP BASE`. Rank 0 asks the cluster provider to train the tiny
FLUX or another tiny family (BASE, its dataset an archive, its checkpoints a folder, a watch that stops after
step STOP where not 0), as the pipeline asks it; the other ranks follow it as `contentgen worker`
does (distributed.follow). Each rank leaves in OUT what the test compares: each expert's LoRA
gradient of the first step (`grads-R.pt`, before clipping: the plan clips nothing), the LoRAs it
holds at the end (`lora-R.pt`), and rank 0 the checkpoint store's writes (`puts.json`)."""

from __future__ import annotations

import json
import sys
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from contentgen.api.base_models import base_model
from contentgen.api.lora.plan import plan_for
from contentgen.providers import cluster_provider
from contentgen.providers.base import MemoryCheckpoint, TrainingRequest
from contentgen.providers.cluster.files import FolderFiles
from contentgen.providers.cluster.training import distributed, loop
from contentgen.providers.watch import Planned, SoFar, Stop

from .tiny_flux import pictures
from .tiny_wan import dataset as wan_dataset


class CountedFiles(FolderFiles):
    def __init__(self, folder: Path) -> None:
        super().__init__(folder)
        self.puts: Counter[str] = Counter()

    def put(self, name: str, path: Path) -> str:
        self.puts[name] += 1
        return super().put(name, path)


class StopAfter:
    """A watch that scores nothing and stops the training after step `step`."""

    def __init__(self, step: int) -> None:
        self.step = step

    def prompts(self) -> list[str]:
        return []

    def begin(self, planned: Planned) -> None:
        pass

    def checkpoint(self, step: int, lora_uri: str, drawer: Any) -> Stop | None:
        return None

    def step_ended(self, so_far: SoFar) -> Stop | None:
        return Stop("asked", f"after step {self.step}") if so_far.step >= self.step else None


def dataset(folder: Path) -> Path:
    archive = folder / "dataset.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path, caption in pictures(folder / "pictures"):
            zf.write(path, f"images/{path.stem}.png")
            zf.writestr(f"captions/{path.stem}.txt", caption)
    return archive


def record(out: Path, rank: int, patch: Callable[[Any, str, Any], None] = setattr) -> None:
    """Keep, for the test, the first step's gradients (each expert's that stepped, after the sum
    over the ranks) and the LoRAs held at the end, on this rank (`patch`: how the loop is
    instrumented; a test's monkeypatch in its own process)."""
    from peft.utils import get_peft_model_state_dict

    learn, trained = loop.Run._learn, loop.Run.trained

    def learned(run: loop.Run, names: set[str]) -> None:
        grads: dict[str, list[torch.Tensor]] = {}
        steps = {e.name: e.optimizer.step for e in run.model.experts}
        for expert in run.model.experts:

            def kept(*args: Any, _e: Any = expert, **kwargs: Any) -> Any:
                grads[_e.name] = [p.grad.detach().clone() for p in _e.params]
                return steps[_e.name](*args, **kwargs)

            expert.optimizer.step = kept  # type: ignore[method-assign]
        try:
            learn(run, names)
        finally:
            for expert in run.model.experts:
                expert.optimizer.step = steps[expert.name]  # type: ignore[method-assign]
        if not (out / f"grads-{rank}.pt").exists():
            torch.save(grads, out / f"grads-{rank}.pt")

    def ended(run: loop.Run, *args: Any) -> Any:
        loras = [
            {k: v.detach().clone() for k, v in get_peft_model_state_dict(e.transformer).items()}
            for e in run.model.experts
        ]
        torch.save(loras, out / f"lora-{rank}.pt")
        return trained(run, *args)

    patch(loop.Run, "_learn", learned)
    patch(loop.Run, "trained", ended)


def train(
    models: Path, out: Path, checkpoints: Path, steps: int, batch: int, stop: int = 0, base: str = "flux.1"
) -> Any:
    """Rank 0's part (one process's whole): the provider trains as the pipeline asks it; its output."""
    env = {"CONTENTGEN_CLUSTER_MODELS_DIR": str(models), "CONTENTGEN_CLUSTER_DEVICE": "cpu"}
    work = out / "work-0"
    work.mkdir(parents=True, exist_ok=True)
    files = CountedFiles(checkpoints)
    video = base_model(base).video  # a video family learns from clips; the others from the pictures
    request = TrainingRequest(
        dataset_zip=wan_dataset(work / "dataset.zip", clips=2, stills=1) if video else dataset(work),
        trigger_word="sks",
        checkpoints=files,
        watch=StopAfter(stop) if stop else None,
        plan=plan_for(
            base=base,
            steps=steps,
            rank=4,
            resolution=64,
            checkpoint_every=2,
            max_grad_norm=0.0,
            batch_size=batch,
            learning_rate=5e-3 if video else None,
        ),
    )
    output = cluster_provider(env).train_lora(request, work, lambda _: None, MemoryCheckpoint())
    (out / "puts.json").write_text(json.dumps(files.puts))
    return output


def main(models: Path, out: Path, checkpoints: Path, steps: int, batch: int, stop: int, base: str) -> int:
    torch.set_num_threads(1)
    me = distributed.world()
    record(out, me.rank)
    with distributed.joined(distributed.Team.join(me)) as team:
        if not me.main:
            return distributed.follow(team)
        status = 1
        try:
            output = train(models, out, checkpoints, steps, batch, stop, base)
            (out / "details.json").write_text(json.dumps(output.details))
            status = 0
        finally:
            distributed.leave_status(team, status, out)
        return status


if __name__ == "__main__":
    models, out, checkpoints = (Path(a) for a in sys.argv[1:4])
    steps, batch = int(sys.argv[4]), int(sys.argv[5])
    sys.exit(main(models, out, checkpoints, steps, batch, int(sys.argv[6]), sys.argv[7]))
