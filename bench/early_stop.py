"""Early stop on a likeness plateau (issue 67): how much a training saves by stopping when its
checkpoints' likeness stops rising, and how much likeness that loses, on likeness curves of our
own making; and what scoring each checkpoint inside the training loop costs on the tiny FLUX.

**The curves** (`curves`): a training of 1000 steps whose checkpoints are scored as the pipeline
scores them (`evaluation.checkpoints` of them, spread over the training). A run's true median
similarity rises from the base model's (0.05-0.20) to its peak (0.35-0.75) at a fraction `p` of
the training, then falls as it overfits (by 0-0.25 at the last step), or, in a fifth of the runs,
turns into copies of training images (the median rises on, the verdict `poor`, as
pipeline/likeness/score.py's copy rule makes it). What a checkpoint's evaluation measures is that
median plus noise (its pictures are 6 prompts × 2 seeds: SD 0.01-0.04, a run each), and its
verdict is the scorer's: `good` at or over the threshold 0.313 with a gain of 0.10 over the base,
unless it copies. The stop rule is the pipeline's own (pipeline/likeness/stopping.py `plateau`,
after each scored checkpoint, as the watch asks it), and both the full run and the stopped one
choose their model with the pipeline's `choose`. Rules are chosen on a development set (peaks
uniform over the training) and reported on a held-out set drawn otherwise (other seeds, peaks
skewed early as LoRAs of a person usually are, noisier measurements).

For each run: the steps saved; the likeness lost, the true median of the full run's chosen
checkpoint minus that of the stopped run's (what a person gets, not what was measured); and,
for honesty, the runs it stopped too early (more than 0.02 lost) and too late (more than
`patience` scored checkpoints after the checkpoint nearest the true peak, or not at all though
that many checkpoints followed it). GPU-seconds saved are the steps not run × 0.586 s (a
FLUX.1-dev training step at 512 px on an H100, docs/cluster-gpus.md) and the checkpoints not
scored × 12 pictures × 1.33 s (a 1024-px picture's 5.31 s there, scaled to the 512-px likeness
pictures by their pixels: an estimate, not a measurement).

**The loop's cost** (`--cpu`): the tiny FLUX (tests/cluster/tiny_flux.py) trained 100 steps with a
checkpoint every 20, on the CPU: without a watch, and with the watch's pictures drawn between
steps by the trainer's own model (live.py: 5 checkpoints × 6 pictures and a baseline of 6), against
drawing the same pictures after the training as the generator does (the pipeline loaded once,
each checkpoint's LoRA loaded and unloaded). Faces are not searched (the tiny FLUX draws noise):
what is measured is what the loop adds to the training's time.

python -m bench.early_stop [--runs 600] [--cpu] [--out bench/out/early-stop.json]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from contentgen.pipeline.likeness.checkpoints import Scored, choose, spread
from contentgen.pipeline.likeness.stopping import Plateau, plateau

THRESHOLD, MIN_GAIN = 0.313, 0.10  # pipeline/likeness/score.py's
STEPS = 1000
STEP_SECONDS, PICTURE_SECONDS, PICTURES = 0.586, 1.33, 12
EARLY = 0.5  # a curve that peaks at or before half its training "peaks early"
LOST = 0.02


@dataclass(frozen=True)
class Run:
    base: float
    top: float
    peak: float  # the fraction of the training where the true median peaks
    fall: float  # how far it falls by the last step
    copies: bool  # overfits into copies: the median rises on, poor
    noise: float
    seed: int

    def true(self, step: int) -> float:
        t = step / STEPS
        if t <= self.peak:
            return self.base + (self.top - self.base) * (t / self.peak) ** 0.7
        after = (t - self.peak) / max(1e-9, 1.0 - self.peak)
        return self.top + (0.15 * after if self.copies else -self.fall * after)

    def copying(self, step: int) -> bool:
        return self.copies and step / STEPS > self.peak + 0.1

    def measured(self, steps: Sequence[int]) -> list[Scored]:
        pick = random.Random(self.seed)
        points = []
        for step in steps:
            median = self.true(step) + pick.gauss(0, self.noise)
            good = median >= THRESHOLD and median - self.base >= MIN_GAIN and not self.copying(step)
            points.append(Scored(step, "good" if good else "poor", round(median, 4)))
        return points


def runs(count: int, seed: int, *, held_out: bool) -> list[Run]:
    pick = random.Random(seed)
    made = []
    for n in range(count):
        peak = pick.betavariate(2, 3) if held_out else pick.uniform(0.15, 1.0)
        made.append(
            Run(
                base=pick.uniform(0.05, 0.2),
                top=pick.uniform(0.35, 0.75),
                peak=min(1.0, max(0.1, peak)),
                fall=pick.uniform(0.0, 0.25),
                copies=pick.random() < 0.2,
                noise=pick.uniform(0.015, 0.045) if held_out else pick.uniform(0.01, 0.04),
                seed=seed * 100_003 + n,
            )
        )
    return made


@dataclass(frozen=True)
class Outcome:
    stopped_at: int  # STEPS where it ran every step
    lost: float  # the true median lost against the full run's choice
    too_early: bool
    too_late: bool
    early: bool  # the curve peaks early
    gpu_seconds_saved: float


def judge(run: Run, every: int, scored_at_most: int, rule: Plateau) -> Outcome:
    stored = sorted({*range(every, STEPS + 1, every), STEPS})
    steps = spread(stored, scored_at_most)
    points = run.measured(steps)
    full = choose(points)
    stopped_at, kept = STEPS, points
    for n in range(1, len(points) + 1):
        if plateau(points[:n], rule):
            stopped_at, kept = points[n - 1].step, points[:n]
            break
    lost = run.true(full.step) - run.true(choose(kept).step)
    nearest = min(range(len(steps)), key=lambda i: abs(steps[i] / STEPS - run.peak))
    late_mark = steps[min(len(steps) - 1, nearest + rule.patience)]
    never = stopped_at == STEPS and nearest + rule.patience < len(steps) - 1
    unscored = sum(1 for s in steps if s > stopped_at)
    saved = (STEPS - stopped_at) * STEP_SECONDS + unscored * PICTURES * PICTURE_SECONDS
    return Outcome(
        stopped_at,
        round(lost, 4),
        lost > LOST,
        never or (stopped_at < STEPS and stopped_at > late_mark),
        run.peak <= EARLY,
        saved,
    )


def summary(outcomes: Sequence[Outcome]) -> dict[str, float]:
    early = [o for o in outcomes if o.early] or list(outcomes)
    full_seconds = STEPS * STEP_SECONDS

    def saved(group: Sequence[Outcome]) -> float:
        return round(100 * statistics.mean((STEPS - o.stopped_at) / STEPS for o in group), 1)

    return {
        "runs": len(outcomes),
        "stepsSavedPct": saved(outcomes),
        "stepsSavedPctPeakEarly": saved(early),
        "gpuSecondsSaved": round(statistics.mean(o.gpu_seconds_saved for o in outcomes), 1),
        "gpuSecondsSavedPctOfTraining": round(
            100 * statistics.mean(o.gpu_seconds_saved for o in outcomes) / full_seconds, 1
        ),
        "meanLost": round(statistics.mean(o.lost for o in outcomes), 4),
        "p95Lost": round(sorted(o.lost for o in outcomes)[int(0.95 * (len(outcomes) - 1))], 4),
        "tooEarlyPct": round(100 * sum(o.too_early for o in outcomes) / len(outcomes), 1),
        "tooLatePct": round(100 * sum(o.too_late for o in outcomes) / len(outcomes), 1),
        "stoppedPct": round(100 * sum(o.stopped_at < STEPS for o in outcomes) / len(outcomes), 1),
    }


SPACINGS = {"every 100, 10 scored": (100, 10), "every 250, 4 scored (the defaults)": (250, 8)}
PATIENCE = (1, 2, 3, 4)
GAINS = (0.0, 0.01, 0.02, 0.03)


def curves(count: int) -> dict[str, object]:
    dev, held = runs(count, 67, held_out=False), runs(count, 6767, held_out=True)
    found: dict[str, object] = {"dev": {}, "heldOut": {}}
    for name, (every, at_most) in SPACINGS.items():
        for patience in PATIENCE:
            for gain in GAINS:
                rule, key = Plateau(patience, gain), f"{name}; patience {patience}, minGain {gain}"
                for label, group in (("dev", dev), ("heldOut", held)):
                    found[label][key] = summary([judge(r, every, at_most, rule) for r in group])  # type: ignore[index]
    return found


def cpu_cost() -> dict[str, float]:
    """The tiny FLUX trained with and without the loop's pictures, and the same pictures drawn after."""
    import tempfile

    import torch

    from contentgen.api.base_models import base_model
    from contentgen.providers.cluster.families.flux_live import InLoopPictures
    from contentgen.providers.cluster.families.flux_training import FLUX, Example
    from contentgen.providers.cluster.files import FolderFiles
    from contentgen.providers.cluster.generation import flux, generation
    from contentgen.providers.cluster.training import loop
    from contentgen.providers.cluster.training.family import Job
    from contentgen.providers.cluster.training.plan import Plan
    from contentgen.providers.watch import Planned, SoFar, Stop
    from tests.cluster.tiny_flux import pictures, tiny_flux

    torch.set_num_threads(1)
    prompts = [f"a photo of tw, portrait {n}" for n in range(6)] + [
        f"a photo of a person, portrait {n}" for n in range(6)
    ]
    plan = Plan(steps=100, rank=4, resolution=64, checkpoint_every=20)
    on = flux.device("cpu")

    class Drawing:
        """A watch whose checkpoints' pictures are drawn by the trainer (6 with the LoRA, and a
        baseline of 6 once), faces not searched."""

        def __init__(self) -> None:
            self.seconds = 0.0
            self.baseline = False

        def prompts(self) -> Sequence[str]:
            return prompts

        def begin(self, planned: Planned) -> None:
            return None

        def checkpoint(self, step: int, lora_uri: str, drawer: object) -> Stop | None:
            assert isinstance(drawer, InLoopPictures)
            began = time.monotonic()
            todo = [(p, True) for p in prompts[:6]] + (
                [(p, False) for p in prompts[6:]] if not self.baseline else []
            )
            for n, (prompt, with_lora) in enumerate(todo):
                picture = generation.Picture(prompt, 64, 64, seed=n, steps=2)
                drawer.draw(prompt, picture, with_lora=with_lora, path=work / f"p-{step}-{n}.png")
            self.baseline = True
            self.seconds += time.monotonic() - began
            return None

        def step_ended(self, so_far: SoFar) -> Stop | None:
            return None

    class Provider:
        name, gpus = "cluster", 1

        def weights_of(self, model: str) -> str:
            return model

    timings: dict[str, list[float]] = {
        "plainSecondsPerStep": [],
        "loopSecondsPerStep": [],
        "plainTrainSeconds": [],
        "loopTrainSeconds": [],
        "loopPicturesSeconds": [],
        "afterPicturesSeconds": [],
    }
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        model = tiny_flux(root / "cache")
        examples = [Example(p, c) for p, c in pictures(root / "pictures")]

        def job(work: Path, files: FolderFiles, **options: Any) -> Job:
            return Job(FLUX, model, examples, plan, on, work, files, base_model("flux.1"), **options)

        for attempt in range(5):
            work = root / f"a{attempt}"
            work.mkdir()

            def plain_run(work: Path = work) -> loop.Trained:
                began = time.monotonic()
                made = loop.train(job(work, FolderFiles(work / "plain")))
                timings["plainTrainSeconds"].append(time.monotonic() - began)
                timings["plainSecondsPerStep"].append(made.seconds_per_step)
                return made

            def loop_run(work: Path = work) -> None:
                watch = Drawing()
                began = time.monotonic()
                made = loop.train(job(work, FolderFiles(work / "loop"), watch=watch, drawers=Provider()))
                timings["loopTrainSeconds"].append(time.monotonic() - began - watch.seconds)
                timings["loopSecondsPerStep"].append(made.seconds_per_step)
                timings["loopPicturesSeconds"].append(watch.seconds)

            if attempt % 2:  # each first in turn: the machine's other load hits both alike
                loop_run()
                plain = plain_run()
            else:
                plain = plain_run()
                loop_run()
            began = time.monotonic()
            generator = flux.load_pipeline(model, on)
            for checkpoint in plain.checkpoints:
                lora = work / "plain" / Path(checkpoint.lora).name
                with generation.loras_loaded(generator, [(lora, 1.0)]):
                    for n, prompt in enumerate(prompts[:6]):
                        picture = generation.Picture(prompt, 64, 64, seed=n, steps=2)
                        generation.draw(generator, picture, work / "x.png")
            for n, prompt in enumerate(prompts[6:]):
                picture = generation.Picture(prompt, 64, 64, seed=n, steps=2)
                generation.draw(generator, picture, work / "x.png")
            timings["afterPicturesSeconds"].append(time.monotonic() - began)
    return {k: round(statistics.median(v), 3) for k, v in timings.items()}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=600)
    parser.add_argument("--cpu", action="store_true", help="also measure the loop's cost on the tiny FLUX")
    parser.add_argument("--out", default="bench/out/early-stop.json")
    args = parser.parse_args(argv)
    import os

    results: dict[str, object] = {"loadAverage": os.getloadavg(), "curves": curves(args.runs)}
    if args.cpu:
        results["cpu"] = cpu_cost()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=1))
    json.dump({k: v for k, v in results.items() if k != "curves"}, sys.stdout, indent=1)
    print()
    return 0


__all__ = ["Run", "asdict", "judge", "main", "runs", "summary"]

if __name__ == "__main__":
    sys.exit(main())
