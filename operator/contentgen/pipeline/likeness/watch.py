"""Likeness in the loop (docs/likeness.md#checkpoints, docs/cluster-training.md#stopping-early): the
`TrainingWatch` (providers/watch.py) the LoRA run hands a trainer that stores checkpoints as it
trains. Each checkpoint the evaluation scores (`evaluation.checkpoints` of them, spread over the
training as before) is scored as soon as it is stored: the same prompts, seeds, baseline and score
as any version's evaluation, its pictures drawn by the trainer's own model (no second copy) and
paid like any picture (each with its provider checkpoint `likeness-v{n}-s{step}-...` and kept as it
is made, so a retried pod pays for none twice), its grid and report stored at once under
`likeness/step-NNNNNN/`. A retried pod's trainer hands the earlier checkpoints again: their scores
are read from there, never made twice.

After every step the watch says whether to stop (stopping.py): a plateau of the likeness, a budget
the next steps would pass, a person's stop (pipeline/live.py). It reports the run under way on the
run's live channel (`status.training`: the step, the loss, each checkpoint's point as it comes, the
best so far), and keeps for the run's end what it scored (lora.py draws the curve, chooses the
model and stores the rest from it).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from contentgen.api import Artifact, CheckpointLikeness, UsageLine, now
from contentgen.api.base_models import likeness_model
from contentgen.api.lora import KEEP_BEST, LoraTrainingSpec, TrainingRun, TrainingStop, loss_curve
from contentgen.pricing.kinds.lora_training import KIND as TRAINING_PRICE
from contentgen.providers.base import ImageGenerator, LoraWeights
from contentgen.providers.progress import SubProgress
from contentgen.providers.watch import Drawer, Planned, SoFar, Stop
from contentgen.store import ObjectStore, keys

from ..context import StoreCheckpoint, StoreFiles
from ..links import provider_url
from .checkpoints import Scored, choose, spread
from .evaluation import WITHOUT, Candidate, Evaluation, curve_point, run_evaluations
from .faces import load_faces
from .plan import Plan
from .score import ImageScore, Likeness
from .stopping import Plateau, Rates, over_budget, plateau

if TYPE_CHECKING:
    from ..context import RunContext

log = logging.getLogger(__name__)


@dataclass
class Scoring:
    """What a checkpoint's scoring left: its point of the curve, its stored grid and report, and
    its evaluation where this process made it (None: read back from the store)."""

    point: CheckpointLikeness
    grid: Artifact
    report: Artifact
    evaluation: Evaluation | None = None


@dataclass
class LikenessWatch:
    """The watch of one LoRA run; see the module. `faces`: the subject's embeddings (None: nothing
    is scored, as where the dataset has none or the evaluation is off or skipped)."""

    ctx: RunContext
    spec: LoraTrainingSpec
    faces: Path | None
    cap_usd: float | None = None  # stopWhen.maxCostUsd, or what the monthly budgets leave the run
    cap_whose: str = "its budget"  # which of them it is, in words
    spent_before_usd: float = 0.0  # what the run billed before the training (captions)
    plan: Plan = field(init=False)
    planned: Planned | None = None
    scored: list[int] = field(default_factory=list)  # the steps scored, oldest first
    scorings: dict[int, Scoring] = field(default_factory=dict)
    billed: list[UsageLine] = field(default_factory=list)  # the pictures this process paid for
    failure: Exception | None = None  # what stopped the scoring (the training goes on)
    stop: Stop | None = None
    so_far: SoFar | None = None
    stored: int = 0  # the newest stored checkpoint's step
    scoring_seconds: list[float] = field(default_factory=list)  # wall seconds per checkpoint scored here
    drawer: Drawer | None = None  # the trainer's picture maker, once it handed one

    def __post_init__(self) -> None:
        evaluation, base = self.spec.evaluation, self.spec.training.base_model
        self.plan = Plan(evaluation.prompt_set, tuple(evaluation.seeds), likeness_model(base))

    # --- TrainingWatch --------------------------------------------------------------------------

    def prompts(self) -> Sequence[str]:
        if self.faces is None:
            return []
        trigger = self.spec.trigger_word
        filled = [p.filled(t) for _, _, _, p in self.plan.items() for t in (trigger, WITHOUT)]
        return list(dict.fromkeys(filled))

    def begin(self, planned: Planned) -> None:
        self.planned = planned
        if self.faces is not None:
            self.scored = spread(list(planned.checkpoints), self.spec.evaluation.checkpoints)
        self.report(now_=True)

    def checkpoint(self, step: int, lora_uri: str, drawer: Drawer | None) -> Stop | None:
        self.stored = max(self.stored, step)
        self.drawer = drawer or self.drawer
        if step in self.scored and step not in self.scorings and self.failure is None:
            found = self._read(step, lora_uri)
            if found is None and drawer is not None:
                found = self._scored(step, lora_uri, drawer)
            if found is not None:
                self.scorings[step] = found
        self.stop = self.stop or self._plateau()
        self.report(now_=True)
        return self.stop

    def step_ended(self, so_far: SoFar) -> Stop | None:
        self.so_far = so_far
        self.stop = self.stop or self._asked() or self._budget(so_far)
        self.report(now_=self.stop is not None)
        return self.stop

    # --- scoring --------------------------------------------------------------------------------

    def folder(self, step: int) -> str:
        return keys.lora_version(self.spec.owner, self.ctx.snapshot.uid, self.ctx.snapshot.version) + (
            f"likeness/step-{step:06d}/"
        )

    def _read(self, step: int, lora_uri: str) -> Scoring | None:
        """A checkpoint an earlier attempt scored: its report and grid as stored."""
        folder = self.folder(step)
        report, grid = (
            described(self.ctx.store, folder + "likeness.json"),
            described(self.ctx.store, folder + "likeness-grid.jpg"),
        )
        if report is None or grid is None:
            return None
        likeness = likeness_of(json.loads(self.ctx.store.get_bytes(folder + "likeness.json")))
        return Scoring(curve_point(likeness, step, lora_uri, grid.uri, report.uri), grid, report)

    def _scored(self, step: int, lora_uri: str, drawer: Drawer) -> Scoring | None:
        """A checkpoint scored now with `drawer`'s pictures; None where the scoring cannot go on (the
        failure is kept, the training goes on and the version says why)."""
        assert self.faces is not None
        began = time.monotonic()
        try:
            candidate = Candidate(provider_lora(self.ctx, lora_uri), name=f"s{step}", title=f" step {step}")
            [evaluation] = run_scored(
                self.ctx, self.spec, self.plan, [candidate], self.faces, drawer, self.billed
            )
            with self.ctx.storing_paid_output("the likeness evaluation's pictures"):
                grid, report = store_evaluation(
                    self.ctx, self.folder(step), evaluation.grid, evaluation.likeness
                )
        except Exception as failed:  # the training is worth more than its curve: it goes on
            log.warning("the likeness of checkpoint %d could not be scored", step, exc_info=True)
            self.failure = failed
            return None
        self.scoring_seconds.append(time.monotonic() - began)
        point = curve_point(evaluation.likeness, step, lora_uri, grid.uri, report.uri)
        return Scoring(point, grid, report, evaluation)

    def recalled(self, steps: Sequence[int]) -> dict[int, Evaluation]:
        """The evaluations of checkpoints an earlier attempt scored, as the run's end needs them:
        their reports and grids as stored, their pictures and the baseline's from where they were
        kept (nothing drawn or scored again; only the baseline's faces are found again, where this
        process scored no checkpoint to take them from). A step whose pictures are not all kept
        (the offline provider keeps none) is left out: the run's end evaluates it again."""
        recalled: dict[int, Evaluation] = {}
        names = [name for name, _, _, _ in self.plan.items()]
        folder = self.ctx.scratch("likeness-recalled")
        base: Evaluation | None = next((c.evaluation for c in self.scorings.values() if c.evaluation), None)
        for step in steps:
            scoring = self.scorings.get(step)
            if scoring is None or scoring.evaluation is not None:
                continue
            pictures = [self._kept(f"s{step}-lora-{name}", folder / f"s{step}-{name}.png") for name in names]
            if any(p is None for p in pictures):
                continue
            if base is None and (base := self._baseline(folder)) is None:
                return recalled
            grid = self.ctx.store.get_file(
                self.ctx.store.key_of(scoring.grid.uri), folder / f"s{step}-grid.jpg"
            )
            likeness = likeness_of(
                json.loads(self.ctx.store.get_bytes(self.ctx.store.key_of(scoring.report.uri)))
            )
            recalled[step] = Evaluation(
                likeness, grid, [p for p in pictures if p], base.baseline, base.baseline_scores, names
            )
        return recalled

    def _kept(self, name: str, path: Path) -> Path | None:
        """A picture kept in this run's folder for `name` (provider cluster's, pictures.Folder)."""
        made = keys.pictures_made(self.ctx.snapshot.uid, self.ctx.snapshot.version)
        key = f"{made}likeness-{name}/image-1.png"
        return self.ctx.store.get_file(key, path) if self.ctx.store.exists(key) else None

    def _baseline(self, folder: Path) -> Evaluation | None:
        """The baseline's pictures (stored once, likeness/baselines/) and their scores."""
        assert self.faces is not None
        from .evaluation import scores
        from .faces import FaceReader
        from .score import Generated

        weights_of = getattr(self.drawer, "weights_of", None)
        model = str(weights_of(self.plan.model)) if callable(weights_of) else self.plan.model
        paths, found = [], []
        reader = FaceReader()
        for name, seed, index, prompt in self.plan.items():
            key = keys.likeness_baseline(self.ctx.provider, model, self.plan.prompt_set, seed, index)
            if not self.ctx.store.exists(key):
                return None
            path = self.ctx.store.get_file(key, folder / f"baseline-{name}.png")
            paths.append(path)
            found.append(Generated(name, prompt.kind, reader.faces_in(path)))
        names, rows = load_faces(self.faces)
        empty = Likeness(verdict="no-faces", reasons=[], images=0, faces=0, no_face_rate=1.0)
        return Evaluation(empty, folder, baseline=paths, baseline_scores=scores(found, rows, names))

    def kept_bills(self, steps: Sequence[int]) -> list[UsageLine]:
        """What the pictures of `steps` and the baseline cost where an earlier attempt drew them in
        this run (their records, pictures.Folder: the GPU time their maker recorded, each under its
        id), the pictures this process drew left out (they are in `billed`)."""
        from contentgen.pricing import gpu_usage

        ours = {line.request for line in self.billed}
        names = [name for name, _, _, _ in self.plan.items()]
        folders = [f"s{step}-lora-{name}" for step in steps for name in names] + [
            f"baseline-{n}" for n in names
        ]
        prefix = keys.pictures_made(self.ctx.snapshot.uid, self.ctx.snapshot.version)
        lines: list[UsageLine] = []
        for name in folders:
            key = f"{prefix}likeness-{name}/image-1.json"
            if not self.ctx.store.exists(key):
                continue
            record = json.loads(self.ctx.store.get_bytes(key))
            request, seconds = record.get("request_id"), record.get("gpu_seconds")
            if isinstance(request, str) and isinstance(seconds, int | float) and request not in ours:
                lines += gpu_usage(self.ctx.provider, "likeness-evaluation", float(seconds), request)
        return lines

    def points(self) -> list[CheckpointLikeness]:
        """The curve so far, oldest first, the best so far marked `chosen`."""
        points = [self.scorings[s].point for s in sorted(self.scorings)]
        best = choose([Scored(p.step, p.verdict, p.median) for p in points]).step if points else None
        return [p.model_copy(update={"chosen": p.step == best}) for p in points]

    # --- stopping -------------------------------------------------------------------------------

    def _plateau(self) -> Stop | None:
        stop_when = self.spec.training.stop_when
        rule = stop_when.likeness_plateau if stop_when is not None else None
        if rule is None:
            return None
        points = [self.scorings[s].point for s in sorted(self.scorings)]
        why = plateau(
            [Scored(p.step, p.verdict, p.median) for p in points], Plateau(rule.patience, rule.min_gain)
        )
        return Stop("plateau", why) if why else None

    def _asked(self) -> Stop | None:
        asked = self.ctx.live.stop_asked()
        if asked is None or asked[0] != KEEP_BEST:  # another value: the operator refuses it
            return None
        who = asked[1]
        return Stop("asked", f"{who or 'a person'} asked it to stop and keep its best checkpoint so far", who)

    def usd_per_gpu_second(self, item: str) -> float | None:
        """The price table's GPU-hour price of the run's provider per second; None where its work is
        not billed by GPU time (so_far has none)."""
        if self.so_far is None or self.so_far.gpu_seconds is None:
            return None
        return self.ctx.settings.prices.price(self.ctx.provider, item, "gpu-hour") / 3600

    def _budget(self, so_far: SoFar) -> Stop | None:
        per_second = self.usd_per_gpu_second(TRAINING_PRICE.item)
        if self.cap_usd is None or per_second is None or so_far.seconds_per_step is None:
            return None
        assert so_far.gpu_seconds is not None
        pictures = sum(line.quantity * 3600 for line in self.billed if line.unit == "gpu-hour")
        scored_here = max(1, len({s for s, c in self.scorings.items() if c.evaluation is not None}))
        per_scoring = pictures / scored_here if pictures else 0.0
        rates = Rates(
            spent_usd=self.spent_before_usd + (so_far.gpu_seconds + pictures) * per_second,
            per_step_usd=so_far.seconds_per_step * so_far.gpus * per_second,
            per_scoring_usd=per_scoring * per_second,
        )
        at_checkpoint = so_far.step == self.stored
        ahead = so_far.next_checkpoint - so_far.step if at_checkpoint else 1
        scored_ahead = so_far.next_checkpoint in self.scored and so_far.step + ahead == so_far.next_checkpoint
        why = over_budget(rates, self.cap_usd, ahead, scored_ahead, whose=self.cap_whose)
        return Stop("budget", why) if why else None

    # --- the live view --------------------------------------------------------------------------

    def report(self, *, now_: bool = False) -> None:
        self.ctx.live.report(self.live(), now_=now_)

    def live(self, stopped: TrainingStop | None = None) -> TrainingRun:
        """The run under way, as status.training shows it."""
        planned, so_far = self.planned, self.so_far
        step = so_far.step if so_far is not None else (planned.first_step if planned is not None else 0)
        step = max(step, self.stored)  # a checkpoint is reported as it is stored, before its step ends
        steps = planned.last_step if planned is not None else 0
        rate = so_far.seconds_per_step if so_far is not None else None
        points = self.points()
        best = next((p.step for p in points if p.chosen), None)
        asked = self.ctx.live.stop_asked()
        losses: Sequence[tuple[int, float]] = so_far.losses if so_far is not None else ()
        return TrainingRun(
            version=self.ctx.snapshot.version,
            step=step,
            steps=steps,
            first_step=planned.first_step if planned is not None else 0,
            seconds_per_step=round(rate, 3) if rate is not None else None,
            eta_seconds=self._eta(step, steps, rate),
            loss=loss_curve(list(losses)),
            checkpoints=points,
            best_step=best,
            stop_asked=f"{asked[0]}{' by ' + asked[1] if asked[1] else ''}"[:256] if asked else "",
            stop=stopped,
            updated_at=now(),
        )

    def _eta(self, step: int, steps: int, rate: float | None) -> float | None:
        if rate is None or self.stop is not None:
            return None
        left = sum(1 for s in self.scored if s > step)
        per_scoring = sum(self.scoring_seconds) / len(self.scoring_seconds) if self.scoring_seconds else 0.0
        return round(max(0, steps - step) * rate + left * per_scoring, 1)


def likeness_of(stored: dict[str, Any]) -> Likeness:
    """A scorer's report as its likeness.json holds it (`Likeness.as_dict`)."""
    fields = dict(stored)
    scored = [ImageScore(**s) for s in fields.pop("scored", None) or []]
    return Likeness(**fields, scored=scored)


def described(store: ObjectStore, key: str) -> Artifact | None:
    """A stored object as an output names it; None where it is not stored."""
    info = store.head(key)
    if info is None:
        return None
    digest = info.sha256 or hashlib.sha256(store.get_bytes(key)).hexdigest()
    return Artifact(
        uri=store.uri(key), size_bytes=info.size_bytes, sha256=digest, content_type=info.content_type
    )


def provider_lora(ctx: RunContext, uri: str) -> LoraWeights:
    """A stored LoRA as the run's provider fetches it (a presigned link for an S3 store)."""
    return LoraWeights(url=provider_url(uri, ctx.store, ctx.settings.presign_seconds))


def store_evaluation(ctx: RunContext, folder: str, grid: Path, scored: Likeness) -> tuple[Artifact, Artifact]:
    """An evaluation's grid and per-picture report under `folder`, each written once."""
    return (
        ctx.store.put_once_file(f"{folder}likeness-grid.jpg", grid, "image/jpeg"),
        ctx.store.put_once_bytes(
            f"{folder}likeness.json", json.dumps(scored.as_dict(), indent=1).encode(), "application/json"
        ),
    )


def run_scored(
    ctx: RunContext,
    spec: LoraTrainingSpec,
    plan: Plan,
    candidates: Sequence[Candidate],
    faces: Path,
    generator: ImageGenerator,
    billed: list[UsageLine],
    span: SubProgress = lambda _: None,
) -> list[Evaluation]:
    """The evaluation's pictures through `generator` (the run's provider, or a training's own
    between its steps), paid like any generation: each with a provider checkpoint of its own and
    kept as it is made (provider cluster), in `billed` as it returns."""
    uid, version = ctx.snapshot.uid, ctx.snapshot.version
    return run_evaluations(
        generator,
        ctx.store,
        plan,
        spec.trigger_word,
        candidates,
        load_faces(faces),
        ctx.scratch("likeness"),
        span,
        lambda name: StoreCheckpoint(ctx.store, keys.checkpoint(uid, f"likeness-v{version}-{name}")),
        billed,
        kept_in=lambda name: StoreFiles(ctx.store, keys.pictures_made(uid, version) + f"likeness-{name}/"),
    )
