"""The training loop, whatever the family (family.py): written for one GPU or several, and for
resuming.

- **The plan's memory** is chosen before anything is loaded (the family's memory terms); a retry
  goes on with the base its stored state was trained with, so that it keeps the same numerics.
- **Each step** learns from a global batch of `plan.batch` samples, each drawn by the family from
  the training's one generator (its example, noise and noise level, and the expert its timestep
  routes it to), every process drawing every sample alike and computing its share
  (distributed.share), one backward per sample. Each sample's loss is weighted 1 / batch; on
  several processes the LoRAs' gradients are then summed over them (`Team.sum_gradients`): the
  same LoRA as one process on the whole batch, whatever the world size, so a state goes on at
  another. Each expert a sample trained is clipped to `max_grad_norm` and takes its optimizer's
  step; an expert no sample reached waits (Wan 2.2's pair).
- **Every `checkpoint_every` steps, and at the last**, the state (every LoRA and optimizer, the
  generator, the losses, which expert each sample trained) is written once to the checkpoint store
  (state.py), then the LoRA files; a killed process's retry resumes from the newest state and never
  repeats a step stored before it. Rank 0 alone writes (the others' store is
  distributed.SharedFiles).
- **With a watch** (providers/watch.py: the likeness evaluation, a budget, a person's stop), each
  checkpoint is handed to it as soon as it is stored, with the family's drawer of pictures (or
  clips) made by the model this process holds and that checkpoint's LoRA; after every step it may
  stop the training at that boundary; a retry hands it the checkpoints stored before, whose scores
  it takes from the store.
- **A continued training** (training.continueFrom) starts from another version's stored state, its
  steps numbered on from it, keeping what it must and applying what it may change
  (providers/continuing.py)."""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from contentgen.providers.base import ContinuedState
from contentgen.providers.watch import Planned, SoFar, Stop, TrainingWatch

from ..generation import lora_files
from . import distributed, state
from .adapters import attention_for_training
from .family import Job, Model
from .plan import Plan
from .state import Done, Saved

log = logging.getLogger(__name__)


@dataclass
class Trained:
    finals: list[Path]  # the newest checkpoint's LoRA files, one per expert, in the work directory
    checkpoints: list[Saved] = field(default_factory=list)
    resumed_from: int = 0  # the step a retry started after (0: from the beginning)
    steps_run: int = 0  # steps this process ran
    seconds_per_step: float = 0.0  # the mean of this process's steps
    # seconds earlier processes trained up to the stored state this one resumed from (their GPU
    # time, which no run reported: a killed pod reports nothing)
    seconds_before: float = 0.0
    peak_memory_bytes: int = 0  # on a GPU: the most torch's allocator held
    peak_reserved_bytes: int = 0  # ... and the most it reserved from the device
    memory: Any = None  # the family's memory plan it trained with
    losses: list[tuple[int, float]] = field(default_factory=list)  # (step, loss) of every step
    routed: list[tuple[int, float, str]] = field(default_factory=list)  # (step, timestep, expert)
    stopped: Stop | None = None  # the watch stopped it at `last_step`, before the plan's last
    first_step: int = 0  # the step it started after (a continued state's)
    last_step: int = 0  # the last step trained
    drawing_seconds: float = 0.0  # this process's time drawing the watch's pictures (billed as such)
    continued: ContinuedState | None = None  # the other version's state it went on from

    @property
    def final(self) -> Path:
        return self.finals[0]


class Unkept(Exception):
    """A training stopped before it stored any checkpoint: after `step`, the seconds the processes
    before this one trained, and this one's drawing (the provider says what it held)."""

    def __init__(self, step: int, seconds_before: float, drawing_seconds: float) -> None:
        super().__init__(f"stopped after step {step}, before any checkpoint")
        self.step, self.seconds_before, self.drawing_seconds = step, seconds_before, drawing_seconds


def train(job: Job, progress: Callable[[int, int], None] = lambda step, steps: None) -> Trained:
    """Train (or go on training) the job's LoRA; see the module. `plan.steps` counts from
    `plan.first`, or from a continued state's step."""
    started = time.monotonic()
    return drive(Run.begin(job), started, progress)


def drive(run: Run, started: float, progress: Callable[[int, int], None]) -> Trained:
    """The steps from where the run's state ends to the plan's last, each checkpoint kept as it is
    marked, until the plan ends or the watch (or a person) stops it; what it trained."""
    plan = run.plan
    began, ran = time.monotonic(), 0
    stop = run.replay(run.seconds(started))
    for step in range(run.done.start + 1, plan.steps + 1):
        if stop is not None:
            break
        run.step(step)
        ran += 1
        if step in run.marks:
            stop = run.keep(step, run.seconds(started))
        progress(step - plan.first, plan.steps - plan.first)
        stop = stop or run.ended(step, run.seconds(started), run.rate(began, ran))
    return run.trained(time.monotonic() - began - run.drawn_seconds, ran, stop)


def fingerprint(parts: Sequence[Any], files: Sequence[Path], labels: Sequence[str] = ()) -> str:
    """What a stored state belongs to: `parts` (the model, the plan...) as JSON, then each of
    `files` (the dataset's) and its label (its caption) (pure but for reading the files)."""
    digest = hashlib.sha256(json.dumps(list(parts), sort_keys=True).encode())
    for path, label in zip(files, labels or [""] * len(files), strict=True):
        digest.update(hashlib.sha256(path.read_bytes()).digest() + label.encode())
    return digest.hexdigest()


@dataclass
class Run:
    """A training under way: its job, the family's model, the generator, what was done."""

    job: Job
    plan: Plan
    model: Model
    identity: str
    chosen: Any
    metadata: dict[str, str]
    generator: torch.Generator
    done: Done
    continued: ContinuedState | None = None

    @classmethod
    def begin(cls, job: Job) -> Run:
        """The memory plan chosen, the model loaded (its examples cached, its adapters added), and
        a stored state resumed from where there is one (this training's own, else the continued
        version's)."""
        source = state.continued_state(job.continued) if job.continued is not None else None
        if source is not None:
            job = _numbered_on(job, source[0])
        identity = job.family.fingerprint(job)
        found, stored = state.stored_state(job.files, job.work_dir, identity)
        went_on, terms = None, None
        if source is not None and job.continued is not None:
            if found is None:
                found, stored = source, state.read_state(job.continued.files, job.work_dir, source[1])
                terms = state.went_on_terms(job.continued, source[0], stored, job.staged, job.plan)
            # a retry of a continue says what the first attempt applied: it is in its own state
            applied = tuple(terms.applied if terms is not None else (stored or {}).get("changed") or ())
            went_on = ContinuedState(
                job.continued.version, source[0], job.continued.files.uri(source[1]), applied
            )
        choose = job.choose or chooser(job, "auto")
        chosen = job.team.tell(choose(str(stored["memory"]) if stored and "memory" in stored else None))
        log.info("memory plan: %s", chosen.describe())
        attention_for_training(job.on)
        run = cls(
            job=job,
            plan=job.plan,
            model=job.family.load(job, chosen),
            identity=identity,
            chosen=chosen,
            metadata=_metadata(job, chosen),
            generator=torch.Generator("cpu").manual_seed(job.plan.seed),
            done=Done(start=job.plan.first),
            continued=went_on,
        )
        run.model.place(run.model.experts[0].name)
        if found is not None and stored is not None:
            run.resume(found, stored, own=terms is None)
        return run

    def resume(self, found: tuple[int, str], stored: dict[str, Any], *, own: bool) -> None:
        """A stored state put back: this training's own (its checkpoints, time; its LoRA files
        stored where it was killed before them), or a continued version's."""
        self.done = state.restored(stored, self.model.experts, self.generator, found[0], own=own)
        if not own:
            changed = "; ".join(self.continued.changed) if self.continued else ""
            log.info(
                "going on from version %s's step %d for %d steps%s",
                self.continued.version if self.continued else "?",
                found[0],
                self.plan.steps - found[0],
                f", applying {changed}" if changed else "",
            )
            return
        log.info("resuming the LoRA training after step %d of %d", found[0], self.plan.steps)
        files, state_uri = self.job.files, self.job.files.uri(found[1])
        names = [name for name, _ in self.model.files(found[0])]
        if all(n in files.names() for n in names):
            uris = [files.uri(n) for n in names]
            self.done.saved.append(Saved(found[0], uris[0], state_uri, tuple(uris[1:])))
        else:  # killed between the state and its LoRA files
            experts = [e.name for e in self.model.experts]
            loras = [stored[state.key(i, experts, "lora")] for i in range(len(experts))]
            self.done.saved.append(self._save_loras(found[0], loras, state_uri))

    # --- the steps ------------------------------------------------------------------------------

    def step(self, step: int) -> None:
        """One optimisation step on the batch's samples, this process's share of them (each its own
        backward: one sample's activations at a time), its loss recorded: the batch's mean."""
        plan, team = self.plan, self.job.team
        samples = [self.model.sample(self.generator) for _ in range(plan.batch)]
        total = 0.0
        for index in distributed.share(plan.batch, team.world):
            expert = self.model.place(samples[index].expert)
            loss = self.model.loss(samples[index], expert)
            if plan.batch > 1:
                loss = loss / plan.batch
            loss.backward()
            total += float(loss.detach())
        self._learn({s.expert for s in samples})
        self.done.losses.append((step, round(team.total(total), 6)))
        self.done.routed += [(step, round(s.timestep, 3), s.expert) for s in samples]

    def _learn(self, trained: set[str]) -> None:
        """The step of each expert a sample of the batch trained (on any process): its gradients
        summed over the processes, clipped, its optimizer's step."""
        for expert in self.model.experts:
            if expert.name not in trained:
                continue
            self.job.team.sum_gradients(expert.params)
            if self.plan.max_grad_norm > 0:
                torch.nn.utils.clip_grad_norm_(expert.params, self.plan.max_grad_norm)
            expert.optimizer.step()
            expert.optimizer.zero_grad(set_to_none=True)

    # --- checkpoints ----------------------------------------------------------------------------

    def keep(self, step: int, seconds: float) -> Stop | None:
        """The state after `step` and its LoRA files, each stored once (`seconds`: the training's so
        far), then handed to the watch: its answer."""
        from peft.utils import get_peft_model_state_dict

        loras = [
            {k: v.detach().cpu().clone() for k, v in get_peft_model_state_dict(e.transformer).items()}
            for e in self.model.experts
        ]
        name = state.state_name(step)
        path = self.job.work_dir / name
        if distributed.writes_here(self.job.files):  # another rank: rank 0 stores them, and says where
            about = {
                "fingerprint": self.identity,
                "memory": self.chosen.base,
                "seconds": seconds,
                "plan": self.plan.stated(),
                "model": self.job.staged,
                "changed": list(self.continued.changed) if self.continued is not None else [],
            }
            torch.save(
                state.kept_state(step, self.model.experts, loras, self.generator, self.done, about), path
            )
        saved = self._save_loras(step, loras, self.job.files.put(name, path))
        self.done.saved.append(saved)
        return self._judged(saved, held=True)

    def _save_loras(self, step: int, loras: Sequence[dict[str, torch.Tensor]], state_uri: str) -> Saved:
        """The step's LoRA files, one per expert, each stored once."""
        uris = []
        for (name, own), lora in zip(self.model.files(step), loras, strict=True):
            path = self.job.work_dir / name
            if distributed.writes_here(self.job.files):
                lora_files.save(path, lora, {**self.metadata, "contentgen.step": str(step), **own})
            uris.append(self.job.files.put(name, path))
        return Saved(step, uris[0], state_uri, tuple(uris[1:]))

    # --- the watch ------------------------------------------------------------------------------

    @property
    def drawn_seconds(self) -> float:
        return float(getattr(self.model.drawer, "seconds", 0.0))

    def seconds(self, started: float) -> float:
        """The training's time so far (this process's since `started`, and the processes' before it
        up to the state it resumed from), the watch's pictures left out: they are billed as such."""
        return self.done.before + time.monotonic() - started - self.drawn_seconds

    def rate(self, began: float, ran: int) -> float | None:
        """This process's seconds per step, its pictures left out (None before a step)."""
        return (time.monotonic() - began - self.drawn_seconds) / ran if ran else None

    @property
    def watch(self) -> TrainingWatch | None:
        return self.job.watch

    def _judged(self, saved: Saved, *, held: bool) -> Stop | None:
        drawer = self.model.drawer
        if self.watch is None:
            return None
        if drawer is not None and held:
            drawer.lora_uri = saved.lora
        return self.watch.checkpoint(saved.step, saved.lora, drawer if held else None)

    def replay(self, seconds: float) -> Stop | None:
        """A retry hands the watch the checkpoints stored before it, oldest first (it holds only the
        newest one's LoRA), then asks whether to stop before its first step; the watch learns what
        the training plans first."""
        if self.watch is None:
            return None
        marks = tuple(self.plan.checkpoint_steps())
        self.watch.begin(Planned(self.plan.first, self.plan.steps, marks))
        for saved in [s for s in self.done.saved if s.step > self.plan.first]:
            if (stop := self._judged(saved, held=saved.step == self.done.start)) is not None:
                return stop
        return self.ended(self.done.start, seconds, None)

    def ended(self, step: int, seconds: float, rate: float | None) -> Stop | None:
        """The watch's answer after `step` (GPU-seconds × the pod's GPUs)."""
        if self.watch is None:
            return None
        gpus = self.job.gpus
        ahead = [m for m in self.marks if m > step]
        return self.watch.step_ended(
            SoFar(
                step=step,
                gpu_seconds=seconds * gpus,
                seconds_per_step=rate,
                next_checkpoint=min(ahead, default=self.plan.steps),
                gpus=gpus,
                losses=self.done.losses,
            )
        )

    @property
    def marks(self) -> set[int]:
        return set(self.plan.checkpoint_steps())

    def trained(self, seconds: float, ran: int, stop: Stop | None) -> Trained:
        """What the training made: its newest checkpoint's LoRA files (fetched from the store where
        every step was done before this process), its checkpoints and how the steps went."""
        own = [s for s in self.done.saved if s.step > self.plan.first]
        last = self.done.start + ran
        if not own:  # a person stopped it before its first checkpoint
            raise Unkept(last, self.done.before, self.drawn_seconds)
        on = self.job.on
        return Trained(
            finals=[self._local(name) for name, _ in self.model.files(own[-1].step)],
            checkpoints=own,
            resumed_from=self.done.start if self.done.start > self.plan.first else 0,
            steps_run=ran,
            seconds_per_step=seconds / ran if ran else 0.0,
            seconds_before=self.done.before,
            peak_memory_bytes=int(torch.cuda.max_memory_allocated(on.where)) if on.cuda else 0,
            peak_reserved_bytes=int(torch.cuda.max_memory_reserved(on.where)) if on.cuda else 0,
            memory=self.chosen,
            losses=self.done.losses,
            routed=self.done.routed,
            stopped=stop if last < self.plan.steps else None,
            first_step=self.plan.first,
            last_step=last,
            drawing_seconds=self.drawn_seconds,
            continued=self.continued,
        )

    def _local(self, name: str) -> Path:
        path = self.job.work_dir / name
        if not distributed.writes_here(self.job.files):  # another rank: rank 0 hands out the result
            return Path()
        if not path.exists():
            self.job.files.get(name, path)
        return path


def _numbered_on(job: Job, step: int) -> Job:
    """A continued job's plan: its steps numbered on from the state's `step`."""
    from dataclasses import replace

    return replace(job, plan=replace(job.plan, first=step, steps=step + job.plan.steps))


def _metadata(job: Job, chosen: Any) -> dict[str, str]:
    plan = job.plan
    return {
        **job.metadata,
        "contentgen.steps": str(plan.steps),
        "contentgen.rank": str(plan.rank),
        "contentgen.lora_targets": plan.targets,
        "contentgen.memory_plan": chosen.base,
    }


def chooser(job: Job, wanted: str) -> Callable[[str | None], Any]:
    """The memory plan's choice for the job, checked now, before anything is loaded
    (GpuMemoryTooSmall with the numbers); the chooser gives the `wanted` plan, or on a retry the
    base its stored state was trained with."""
    from dataclasses import replace

    choose = job.family.memory(job)
    choose(wanted)

    def chosen(stored: str | None) -> Any:
        plan = choose(stored or wanted)
        return replace(plan, chosen_by="resumed") if stored and plan.free else plan

    return chosen
