"""The LoRA training loop on FLUX (diffusers + peft), as diffusers' DreamBooth LoRA example for
FLUX trains it, written for one GPU and for resuming:

- the captions' text encodings and the pictures' latents are computed once, then the text
  encoders and the VAE leave the device (only the transformer trains);
- the base transformer stored as the memory plan says (memory.py: bf16, an 8-bit or a 4-bit
  base), chosen before anything is loaded; a retry resumes with the plan its stored state was
  trained with, so that it goes on with the same numerics;
- flow matching: a picture's latents x0, noise e, a noise level sigma drawn as `timestep_sampling`
  says (`draw_sigma`: FLUX's resolution-dependent shift, logit-normal or the scheduler's uniform
  schedule); the transformer sees (1 - sigma) x0 + sigma e at guidance `guidance` (1.0) and is
  taught the velocity e - x0 (mean squared error); the gradient clipped to `max_grad_norm`;
- a rank-r LoRA (alpha = r) on the layers of `targets` (lora_files.target_modules); the base
  weights stay frozen (bf16 on a GPU, fp32 on the CPU, or quantised), the LoRA's in fp32; gradient
  checkpointing on the transformer;
- every `checkpoint_every` steps, and at the last, the state (LoRA, optimizer, step, the
  generator that draws pictures, noise and timesteps) is written once to the checkpoint store,
  then the LoRA file; a killed process's retry resumes from the newest state and never repeats a
  step stored before it;
- with a watch (providers/watch.py: the likeness evaluation, a budget, a person's stop), each
  checkpoint is handed to it as soon as it is stored, with pictures drawn by this process's model
  and that checkpoint's LoRA (live.py: the evaluation's prompts are encoded before the text
  encoders go, the VAE is kept), and after every step it may stop the training at that boundary;
  a retry hands it the checkpoints stored before, whose scores it takes from the store;
- a continued training (training.continueFrom) starts from another version's stored state: its
  LoRA, optimizer, generator and losses, its steps numbered on from that state's; refused in one
  line when its base model, rank, targets, optimizer or memory plan differ;
- on several GPUs (distributed.py: a `Team` of torchrun's processes), each step learns from a
  global batch of `batch` samples that every rank draws alike and computes its share of, the
  transformer wrapped for DDP: the same LoRA as one process on the whole batch, whatever the world
  size, so a state goes on at another; rank 0 alone writes (the others' store is `SharedFiles`) and
  has the watch (the others follow its answers and draw their share of its pictures).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import re
import time
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar

import torch

from contentgen.errors import InvalidInput, PermanentError
from contentgen.providers.base import CheckpointFiles, Continued, ContinuedState
from contentgen.providers.watch import Drawer, Planned, SoFar, Stop, TrainingWatch

from .. import memory
from ..generation import flux, lora_files
from . import distributed

log = logging.getLogger(__name__)

# FLUX.1-dev's distilled guidance while training: 1.0, as the recommended commands of diffusers'
# FLUX example (its README's --guidance_scale=1) and ai-toolkit's FLUX configs (pictures are drawn
# at 3.5).
GUIDANCE = 1.0
TimestepSampling = Literal["shift", "logit-normal", "uniform"]
# diffusers' compute_density_for_timestep_sampling(weighting_scheme="logit_normal") defaults
LOGIT_MEAN, LOGIT_STD = 0.0, 1.0
MAX_GRAD_NORM = 1.0  # diffusers' FLUX example's --max_grad_norm
WEIGHT_DECAY = 1e-4
_STATE = re.compile(r"^step-(\d{6})\.pt$")

Optimizer = Literal["adamw", "adamw8bit"]


@dataclass(frozen=True)
class Plan:
    steps: int
    rank: int = 16
    learning_rate: float = 1e-4
    resolution: int = 512
    checkpoint_every: int = 0  # 0: only the last step
    optimizer: Optimizer = "adamw"
    gradient_checkpointing: bool = True
    seed: int = 0
    targets: lora_files.Targets = "attention+feedforward"
    guidance: float = GUIDANCE
    timestep_sampling: TimestepSampling = "shift"
    max_grad_norm: float = MAX_GRAD_NORM  # 0: no clipping
    first: int = 0  # the step it starts after: a continued state's (its steps end at `steps`)
    batch: int = 1  # samples each step learns from, shared among the processes (distributed.share)

    def checkpoint_steps(self) -> list[int]:
        """The steps whose state is stored: every `checkpoint_every`-th after `first`, and the last
        (pure)."""
        every = self.checkpoint_every or self.steps - self.first
        return sorted({*range(self.first + every, self.steps + 1, every), self.steps})


@dataclass(frozen=True)
class Example:
    picture: Path
    caption: str


@dataclass(frozen=True)
class Saved:
    step: int
    lora: str  # where the checkpoint store put the LoRA file (its URI)
    state: str


@dataclass
class Trained:
    final: Path  # the newest checkpoint's LoRA, in the work directory
    checkpoints: list[Saved] = field(default_factory=list)
    resumed_from: int = 0  # the step a retry started after (0: from the beginning)
    steps_run: int = 0  # steps this process ran
    seconds_per_step: float = 0.0  # the mean of this process's steps
    # seconds earlier processes trained up to the stored state this one resumed from (their GPU
    # time, which no run reported: a killed pod reports nothing)
    seconds_before: float = 0.0
    peak_memory_bytes: int = 0  # on a GPU: the most the device held
    memory: memory.MemoryPlan = field(default_factory=memory.MemoryPlan)  # the plan it trained with
    losses: list[tuple[int, float]] = field(default_factory=list)  # (step, loss) of every step, in order
    stopped: Stop | None = None  # the watch stopped it at `last_step`, before the plan's last
    first_step: int = 0  # the step it started after (a continued state's)
    last_step: int = 0  # the last step trained
    drawing_seconds: float = 0.0  # this process's time drawing the watch's pictures (billed as pictures)
    continued: ContinuedState | None = None  # the other version's state it went on from


def read_dataset(archive: Path, folder: Path, trigger_word: str) -> list[Example]:
    """The pictures of a dataset archive with their captions (captions/0001.txt or 0001.txt next
    to the picture; the trigger word alone where neither is there)."""
    suffixes = (".jpg", ".jpeg", ".png", ".webp")
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
        pictures = sorted(n for n in names if n.lower().endswith(suffixes) and not n.endswith("/"))
        examples: list[Example] = []
        for name in pictures:
            stem = Path(name).stem
            target = folder / f"{len(examples):04d}{Path(name).suffix.lower()}"
            target.write_bytes(zf.read(name))
            caption_names = (f"captions/{stem}.txt", str(Path(name).with_suffix(".txt")))
            caption = next((zf.read(c).decode("utf-8").strip() for c in caption_names if c in names), "")
            examples.append(Example(target, caption or trigger_word))
    if not examples:
        raise InvalidInput(f"the dataset {archive.name} holds no pictures")
    return examples


def fingerprint(model: str, plan: Plan, examples: Sequence[Example]) -> str:
    """What a stored state belongs to: the model, the plan and the dataset (pure but for reading
    the pictures)."""
    planned = asdict(plan)
    for key, was in (("first", 0), ("batch", 1)):  # as they were: the fingerprint states had before
        if planned[key] == was:
            del planned[key]
    digest = hashlib.sha256(json.dumps([model, planned], sort_keys=True).encode())
    for example in examples:
        digest.update(hashlib.sha256(example.picture.read_bytes()).digest() + example.caption.encode())
    return digest.hexdigest()


def latest_state(names: Sequence[str]) -> tuple[int, str] | None:
    """The newest stored state among a checkpoint store's names (pure)."""
    found = [(int(m.group(1)), n) for n in names if (m := _STATE.match(n))]
    return max(found) if found else None


def lora_name(step: int) -> str:
    return f"step-{step:06d}.safetensors"


def state_name(step: int) -> str:
    return f"step-{step:06d}.pt"


# What draws a watch's pictures, made from the training's pipeline (its transformer, VAE and
# scheduler), the encodings of the watch's prompts, the device and the memory plan (live.py).
Drawers = Callable[[Any, dict[str, Any], flux.Device, memory.MemoryPlan], Drawer]


def train(
    model_dir: Path,
    examples: Sequence[Example],
    plan: Plan,
    on: flux.Device,
    work_dir: Path,
    files: CheckpointFiles,
    progress: Callable[[int, int], None] = lambda step, steps: None,
    metadata: dict[str, str] | None = None,
    choose: Callable[[str | None], memory.MemoryPlan] | None = None,
    *,
    watch: TrainingWatch | None = None,
    drawers: Drawers | None = None,
    continued: Continued | None = None,
    gpus: int = 1,
    team: distributed.Team = distributed.SOLO,
) -> Trained:
    """Train (or go on training) a LoRA; see the module's description. `choose` gives the memory
    plan, from the base a stored state was trained with (None: no state); without it, the weights
    as they are (the stored state's base on a retry). `plan.steps` counts from `plan.first`, or from
    a continued state's step. `gpus`: what the watch's GPU-seconds are × (the GPUs held). `team`:
    the processes it trains with (`files`, the watch and `continued` as distributed.py hands them)."""
    started = time.monotonic()
    run = _Run.begin(
        model_dir,
        examples,
        plan,
        on,
        work_dir,
        files,
        metadata or {},
        choose or _as_stored,
        _Watched(watch, drawers, gpus),
        continued,
        team,
    )
    return drive(run, started, progress)


_T_co = TypeVar("_T_co", covariant=True)


class Stepped(Protocol[_T_co]):
    """A training under way, as drive() runs it: FLUX's (_Run) or Wan's (wan_training.WanRun)."""

    @property
    def plan(self) -> Plan: ...
    @property
    def done(self) -> Any: ...  # .start: the last step a state holds
    @property
    def marks(self) -> set[int]: ...
    @property
    def watched(self) -> Any: ...  # .drawn_seconds: the watch's pictures, not training time
    def replay(self, seconds: float) -> Stop | None: ...
    def step(self, step: int) -> None: ...
    def keep(self, step: int, seconds: float) -> Stop | None: ...
    def ended(self, step: int, seconds: float, rate: float | None) -> Stop | None: ...
    def seconds(self, started: float) -> float: ...
    def rate(self, began: float, ran: int) -> float | None: ...
    def trained(self, seconds: float, ran: int, stop: Stop | None) -> _T_co: ...


def drive(run: Stepped[_T_co], started: float, progress: Callable[[int, int], None]) -> _T_co:
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
    return run.trained(time.monotonic() - began - run.watched.drawn_seconds, ran, stop)


@dataclass
class _Watched:
    """The watch a training reports to, and the pictures it draws for it (None without a watch)."""

    watch: TrainingWatch | None = None
    drawers: Drawers | None = None
    gpus: int = 1
    drawer: Any = None  # live.InLoopPictures, once the pipeline is loaded

    @property
    def drawn_seconds(self) -> float:
        return float(getattr(self.drawer, "seconds", 0.0))


@dataclass
class _Run:
    """A training under way: what its steps use (the cached latents and text encodings, the
    transformer with its adapter, the optimizer, the generator), what was done, and its watch."""

    plan: Plan
    on: flux.Device
    work_dir: Path
    files: CheckpointFiles
    identity: str
    chosen: memory.MemoryPlan
    metadata: dict[str, str]
    latents: Any
    texts: Any
    transformer: Any
    params: list[torch.nn.Parameter]
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    noise: _NoiseLevels
    done: _Done
    marks: set[int]
    watched: _Watched
    continued: ContinuedState | None = None
    team: distributed.Team = distributed.SOLO
    model: Any = None  # the transformer as its steps call it: wrapped for DDP in a team

    @classmethod
    def begin(
        cls,
        model_dir: Path,
        examples: Sequence[Example],
        plan: Plan,
        on: flux.Device,
        work_dir: Path,
        files: CheckpointFiles,
        metadata: dict[str, str],
        choose: Callable[[str | None], memory.MemoryPlan],
        watched: _Watched,
        continued: Continued | None = None,
        team: distributed.Team = distributed.SOLO,
    ) -> _Run:
        """The memory plan chosen, the pipeline loaded, the examples cached, the adapter added,
        and a stored state resumed from where there is one (this training's own, else the
        continued version's)."""
        source = _continued_state(continued) if continued is not None else None
        if source is not None:
            plan = replace(plan, first=source[0], steps=source[0] + plan.steps)
        identity = fingerprint(model_dir.name, plan, examples)
        found, state = _stored_state(files, work_dir, identity)
        went_on: ContinuedState | None = None
        if found is None and source is not None and continued is not None:
            found, state = source, _read_state(continued.files, work_dir, source[1])
            _check_continuable(continued, source[0], state, model_dir.name, plan)
            went_on = ContinuedState(continued.version, source[0], continued.files.uri(source[1]))
        elif source is not None and continued is not None:
            went_on = ContinuedState(continued.version, source[0], continued.files.uri(source[1]))
        chosen = team.tell(choose(str(state["memory"]) if state is not None and "memory" in state else None))
        log.info("memory plan: %s", chosen.describe())
        metadata = {
            **metadata,
            "contentgen.steps": str(plan.steps),
            "contentgen.rank": str(plan.rank),
            "contentgen.lora_targets": plan.targets,
            "contentgen.memory_plan": chosen.base,
        }
        attention_for_training(on)
        pipe = flux.load_for_training(model_dir, on, chosen)
        latents, texts = _cache(pipe, examples, plan.resolution, on)
        encoded = _encoded(pipe, watched.watch.prompts(), on) if watched.drawers and watched.watch else {}
        transformer, scheduler = pipe.transformer, pipe.scheduler
        _keep_only_the_transformer(pipe, chosen, on, keep_vae=bool(encoded))
        params = _with_adapter(transformer, plan)
        optimizer = _optimizer(plan, params)
        generator = torch.Generator("cpu").manual_seed(plan.seed)
        done = _Done(start=plan.first)
        if found is not None and state is not None and went_on is not None and found == source:
            done = _went_on(found, state, transformer, optimizer, generator)
            log.info(
                "going on from version %d's step %d for %d steps",
                went_on.version,
                found[0],
                plan.steps - found[0],
            )
        elif found is not None and state is not None:
            done = _resumed(found, state, transformer, optimizer, generator, files, work_dir, metadata)
            log.info("resuming the LoRA training after step %d of %d", found[0], plan.steps)
        if encoded and watched.drawers is not None:
            watched.drawer = watched.drawers(pipe, encoded, on, chosen)
        return cls(
            plan=plan,
            on=on,
            work_dir=work_dir,
            files=files,
            identity=identity,
            chosen=chosen,
            metadata=metadata,
            latents=latents,
            texts=texts,
            transformer=transformer,
            params=params,
            optimizer=optimizer,
            generator=generator,
            noise=_NoiseLevels(scheduler, plan),
            done=done,
            marks=set(plan.checkpoint_steps()),
            watched=watched,
            continued=went_on,
            team=team,
            model=team.wrap(transformer, on.cuda),
        )

    def seconds(self, started: float) -> float:
        """The training's time so far (this process's since `started`, and the processes' before it
        up to the state it resumed from), the watch's pictures left out: they are billed as such."""
        return self.done.before + time.monotonic() - started - self.watched.drawn_seconds

    def rate(self, began: float, ran: int) -> float | None:
        """This process's seconds per step, its pictures left out (None before a step)."""
        return (time.monotonic() - began - self.watched.drawn_seconds) / ran if ran else None

    def step(self, step: int) -> None:
        """One optimisation step on the batch's samples, this process's share of them (each its own
        backward: one sample's activations at a time), its loss recorded: the batch's mean."""
        plan, team = self.plan, self.team
        draws = [_draw(self.latents, plan, self.generator, self.noise) for _ in range(plan.batch)]
        mine = distributed.share(plan.batch, team.world)
        weight = distributed.weight(plan.batch, team.world)
        total = 0.0
        for index in mine:
            with team.accumulating(self.model, last=index == mine[-1]):
                loss = _sampled(
                    self.transformer, self.model, self.latents, self.texts, draws[index], plan, self.on
                )
                if weight != 1.0:
                    loss = loss * weight
                loss.backward()  # type: ignore[no-untyped-call]
            total += float(loss.detach())
        mean = team.total(total) / team.world.size
        if plan.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.params, plan.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.done.losses.append((step, round(mean, 6)))

    def keep(self, step: int, seconds: float) -> Stop | None:
        """The state after `step` and its LoRA, stored once (`seconds`: the training's so far), then
        handed to the watch: its answer."""
        state_of = {
            "fingerprint": self.identity,
            "memory": self.chosen.base,
            "seconds": seconds,
            "plan": asdict(self.plan),
            "model": self.metadata.get("contentgen.base_model", ""),
        }
        saved = _kept(
            step,
            self.transformer,
            self.optimizer,
            self.generator,
            self.done,
            state_of,
            self.files,
            self.work_dir,
            self.metadata,
        )
        self.done.saved.append(saved)
        return self._judged(saved, held=True)

    def _judged(self, saved: Saved, *, held: bool) -> Stop | None:
        watch, drawer = self.watched.watch, self.watched.drawer
        if watch is None:
            return None
        if drawer is not None and held:
            drawer.lora_uri = saved.lora
        return watch.checkpoint(saved.step, saved.lora, drawer if held else None)

    def replay(self, seconds: float) -> Stop | None:
        """A retry hands the watch the checkpoints stored before it, oldest first (it holds only the
        newest one's LoRA), then asks whether to stop before its first step; the watch learns what
        the training plans first."""
        watch = self.watched.watch
        if watch is None:
            return None
        watch.begin(Planned(self.plan.first, self.plan.steps, tuple(sorted(self.marks))))
        for saved in [s for s in self.done.saved if s.step > self.plan.first]:
            if (stop := self._judged(saved, held=saved.step == self.done.start)) is not None:
                return stop
        return self.ended(self.done.start, seconds, None)

    def ended(self, step: int, seconds: float, rate: float | None) -> Stop | None:
        """The watch's answer after `step` (GPU-seconds × the pod's GPUs)."""
        watch = self.watched.watch
        if watch is None:
            return None
        gpus = self.watched.gpus
        ahead = [m for m in self.marks if m > step]
        return watch.step_ended(
            SoFar(
                step=step,
                gpu_seconds=seconds * gpus,
                seconds_per_step=rate,
                next_checkpoint=min(ahead, default=self.plan.steps),
                gpus=gpus,
                losses=self.done.losses,
            )
        )

    def trained(self, seconds: float, ran: int, stop: Stop | None) -> Trained:
        """What the training made: its newest checkpoint's LoRA (fetched from the store when every
        step was done before this process), its checkpoints and how the steps went."""
        own = [s for s in self.done.saved if s.step > self.plan.first]
        last = self.done.start + ran
        on = self.on
        if not own:  # a person stopped it before its first checkpoint
            raise Unkept(last, self.done.before, self.watched.drawn_seconds)
        final = self.work_dir / lora_name(own[-1].step)
        if not distributed.writes_here(self.files):  # another rank: rank 0 hands out the result
            final = Path()
        elif not final.exists():
            self.files.get(lora_name(own[-1].step), final)
        return Trained(
            final=final,
            checkpoints=own,
            resumed_from=self.done.start if self.done.start > self.plan.first else 0,
            steps_run=ran,
            seconds_per_step=seconds / ran if ran else 0.0,
            seconds_before=self.done.before,
            peak_memory_bytes=int(torch.cuda.max_memory_allocated(on.where)) if on.cuda else 0,
            memory=self.chosen,
            losses=self.done.losses,
            stopped=stop if last < self.plan.steps else None,
            first_step=self.plan.first,
            last_step=last,
            drawing_seconds=self.watched.drawn_seconds,
            continued=self.continued,
        )


class Unkept(Exception):
    """A training stopped before it stored any checkpoint: after `step`, the seconds the processes
    before this one trained, and this one's drawing (the provider says what it held)."""

    def __init__(self, step: int, seconds_before: float, drawing_seconds: float) -> None:
        super().__init__(f"stopped after step {step}, before any checkpoint")
        self.step, self.seconds_before, self.drawing_seconds = step, seconds_before, drawing_seconds


@dataclass
class _Done:
    """What the steps before this process did: the last of them, the seconds they took, the
    checkpoints they saved and their losses."""

    start: int = 0
    before: float = 0.0
    saved: list[Saved] = field(default_factory=list)
    losses: list[tuple[int, float]] = field(default_factory=list)


def attention_for_training(on: flux.Device) -> None:
    """On a GPU, the transformer's attention without cuDNN's fused kernel, for this process.

    torch 2.11 made cuDNN's attention the default on Hopper, and its backward failed FLUX.1-dev's
    training step on an H100 (an illegal memory access) and an H200 (`mha_graph.execute(...)
    .is_good()`) in `make gpu-check FULL=1` (2026-11-26, torch 2.11.0+cu130), as in pytorch/pytorch
    #196678 and #190321, whose mitigation this is; flash and memory-efficient attention trained it
    (docs/cluster-gpus.md). The image's torch 2.10 does not choose cuDNN's first (#196678 calls it
    2.11's regression): there this changes nothing, and a move to 2.11 keeps training."""
    if on.cuda:
        torch.backends.cuda.enable_cudnn_sdp(False)


def _stored_state(
    files: CheckpointFiles, work_dir: Path, identity: str
) -> tuple[tuple[int, str] | None, dict[str, Any] | None]:
    """The latest stored training state and its contents, read first: the plan it was trained
    with is the plan it goes on with. Refused when it is another dataset's, model's or plan's."""
    found = latest_state(files.names())
    if found is None:
        return None, None
    state = _read_state(files, work_dir, found[1])
    if state["fingerprint"] != identity:
        raise PermanentError(
            f"the stored training state {found[1]} belongs to another dataset, model or plan: delete the "
            "version's checkpoints/ to start over",
            reason="CheckpointUnreadable",
        )
    return found, state


def _read_state(files: CheckpointFiles, work_dir: Path, name: str) -> dict[str, Any]:
    path = files.get(name, work_dir / f"read-{name}")
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    path.unlink()
    return state


def _continued_state(continued: Continued) -> tuple[int, str]:
    """The state of the continued version a training goes on from: the step asked, or its last;
    refused in one line where the version kept none."""
    names = continued.files.names()
    field = f"training.continueFrom: version {continued.version}"
    if continued.step is None:
        found = latest_state(names)
        if found is None:
            raise InvalidInput(
                f"{field} kept no training state to go on from (trained on another provider, or before "
                "states were kept)"
            )
        return found
    if state_name(continued.step) not in names:
        stored = sorted(int(m.group(1)) for n in names if (m := _STATE.match(n)))
        kept = ", ".join(str(s) for s in stored) or "none"
        raise InvalidInput(f"{field} has no stored state at step {continued.step} (kept: {kept})")
    return continued.step, state_name(continued.step)


def _check_continuable(
    continued: Continued, step: int, state: dict[str, Any], model: str, plan: Plan
) -> None:
    """Refuse in one line a continued state this training cannot go on from: another base model,
    rank, targets or optimizer (the memory plan is the state's: memory_chooser refuses a named one
    that differs). A state kept before its plan was (no `plan`) is read by its LoRA's shapes."""
    field = f"training.continueFrom: version {continued.version}'s step {step}"
    was = state.get("plan") or {}
    differ = []
    if state.get("model") and state["model"] != model:
        differ.append(f"base model {state['model']} (this spec: {model})")
    for key, name in (("rank", "rank"), ("targets", "loraTargets"), ("optimizer", "optimizer")):
        if key in was and was[key] != getattr(plan, key):
            differ.append(f"{name} {was[key]} (this spec: {getattr(plan, key)})")
    if not was:
        ranks = {int(v.shape[0]) for k, v in state["lora"].items() if "lora_A" in k}
        if ranks and ranks != {plan.rank}:
            differ.append(f"rank {', '.join(map(str, sorted(ranks)))} (this spec: {plan.rank})")
    if differ:
        raise InvalidInput(
            f"{field} was trained with {'; '.join(differ)}: a training goes on only with the same ones"
        )


def _went_on(
    found: tuple[int, str],
    state: dict[str, Any],
    transformer: Any,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
) -> _Done:
    """Another version's state put back as where this training starts: its LoRA, optimizer,
    generator and losses (the curve goes on from them); its checkpoints and time are that
    version's own."""
    from peft.utils import set_peft_model_state_dict

    step = found[0]
    try:
        set_peft_model_state_dict(transformer, state["lora"])
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, ValueError, KeyError) as exc:
        raise InvalidInput(
            f"training.continueFrom: the state of step {step} does not fit this spec's LoRA ({exc}): a "
            "training goes on only with the same rank, loraTargets and optimizer"
        ) from None
    generator.set_state(state["generator"])
    losses = [(int(s), float(v)) for s, v in state.get("losses") or [] if int(s) <= step]
    return _Done(start=step, losses=losses)


def _encoded(pipe: Any, prompts: Sequence[str], on: flux.Device) -> dict[str, Any]:
    """The watch's prompts' encodings, made while the text encoders are here, on the device."""
    encoded = {}
    for prompt in prompts:
        embeds, pooled, ids = flux.encode_prompt(pipe, prompt)
        encoded[prompt] = (
            embeds.to(on.where, on.dtype),
            pooled.to(on.where, on.dtype),
            ids.to(on.where, on.dtype),
        )
    return encoded


def _keep_only_the_transformer(
    pipe: Any, chosen: memory.MemoryPlan, on: flux.Device, *, keep_vae: bool = False
) -> None:
    """Only the transformer trains: the encoders go (their outputs are cached), and the VAE unless
    a watch's pictures are drawn (kept on the CPU, on the device only to decode)."""
    import gc

    pipe.text_encoder = pipe.text_encoder_2 = None
    if keep_vae:
        pipe.vae.to("cpu")
    else:
        pipe.vae = None
    gc.collect()
    if chosen.base != "nf4":  # bitsandbytes placed its 4-bit weights as it loaded them
        pipe.transformer.to(on.where)
    if on.cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(on.where)


def _with_adapter(transformer: Any, plan: Plan) -> list[torch.nn.Parameter]:
    """The LoRA added to the plan's targets (its initial weights from the plan's seed): the
    parameters that train, in float32."""
    from peft import LoraConfig

    transformer.requires_grad_(False)
    torch.manual_seed(plan.seed)  # the LoRA's initial weights
    linear = [n for n, m in transformer.named_modules() if isinstance(m, torch.nn.Linear)]
    transformer.add_adapter(
        LoraConfig(
            r=plan.rank,
            lora_alpha=plan.rank,
            init_lora_weights="gaussian",
            target_modules=lora_files.target_modules(linear, plan.targets),
        )
    )
    params = [p for p in transformer.parameters() if p.requires_grad]
    for p in params:
        p.data = p.data.to(torch.float32)
    if plan.gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
    transformer.train()
    return params


def _resumed(
    found: tuple[int, str],
    state: dict[str, Any],
    transformer: Any,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    files: CheckpointFiles,
    work_dir: Path,
    metadata: dict[str, str],
) -> _Done:
    """The stored state put back (the LoRA, the optimizer, the random generator) and what it had
    done; its step's LoRA file stored where the state was killed before it."""
    from peft.utils import set_peft_model_state_dict

    step, name = found
    set_peft_model_state_dict(transformer, state["lora"])
    optimizer.load_state_dict(state["optimizer"])
    generator.set_state(state["generator"])
    done = _Done(
        start=step,
        before=float(state.get("seconds", 0.0)),
        saved=[Saved(s, *state_uris) for s, *state_uris in state["saved"]],
        losses=[(int(s), float(v)) for s, v in state.get("losses") or [] if int(s) <= step],
    )
    if lora_name(step) in files.names():
        done.saved.append(Saved(step, files.uri(lora_name(step)), files.uri(name)))
    else:  # killed between the state and its LoRA file
        done.saved.append(
            _save_lora(files, work_dir, step, state["lora"], metadata, state_uri=files.uri(name))
        )
    return done


class _NoiseLevels:
    """The scheduler's noise levels as one step draws from them."""

    def __init__(self, scheduler: Any, plan: Plan) -> None:
        self.sigmas = scheduler.sigmas.to(torch.float32)
        self.timesteps = scheduler.timesteps.to(torch.float32)
        self.image_tokens = (plan.resolution // 16) ** 2
        self.config = scheduler.config


@dataclass(frozen=True)
class Draw:
    """One sample of a step, as `generator` drew it: the example, its noise (on the CPU), the noise
    level and its timestep."""

    index: int
    noise: torch.Tensor
    sigma: torch.Tensor
    timestep: torch.Tensor


def _draw(
    latents: Sequence[torch.Tensor], plan: Plan, generator: torch.Generator, levels: _NoiseLevels
) -> Draw:
    """One sample's draws, in this order: the example, the noise, the noise level (every rank of a
    team draws every sample of the batch, so the generator stays the same on all)."""
    index = int(torch.randint(len(latents), (1,), generator=generator))
    noise = torch.randn(latents[index].shape, generator=generator)
    sigma, timestep = draw_sigma(
        plan.timestep_sampling, generator, levels.sigmas, levels.timesteps, levels.image_tokens, levels.config
    )
    return Draw(index, noise, sigma, timestep)


def _sampled(
    transformer: Any,
    model: Any,
    latents: Sequence[torch.Tensor],
    texts: Sequence[Any],
    drawn: Draw,
    plan: Plan,
    on: flux.Device,
) -> torch.Tensor:
    """The flow-matching loss of one drawn sample, through `model` (the transformer, or its DDP
    wrapper in a team)."""
    x0 = latents[drawn.index]
    noise = drawn.noise.to(on.where, torch.float32)
    sigma, timestep = drawn.sigma.to(on.where), drawn.timestep.to(on.where)
    noisy = ((1.0 - sigma) * x0 + sigma * noise).to(on.dtype)
    embeds, pooled, text_ids = texts[drawn.index]
    height, width = x0.shape[-2:]
    guidance = torch.full((1,), plan.guidance, device=on.where, dtype=on.dtype)
    prediction = model(
        hidden_states=flux.pack(noisy),
        timestep=(timestep / 1000).expand(1).to(on.dtype),
        guidance=guidance if transformer.config.guidance_embeds else None,
        pooled_projections=pooled,
        encoder_hidden_states=embeds,
        txt_ids=text_ids,
        img_ids=flux.image_ids(height, width, on),
        return_dict=False,
    )[0]
    return torch.nn.functional.mse_loss(flux.unpack(prediction, height, width).float(), noise - x0)


def _kept(
    step: int,
    transformer: Any,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    done: _Done,
    state_of: dict[str, Any],
    files: CheckpointFiles,
    work_dir: Path,
    metadata: dict[str, str],
) -> Saved:
    """A checkpoint: the training's state at `step` (what a retried pod goes on from), then the
    step's LoRA, each stored."""
    from peft.utils import get_peft_model_state_dict

    lora_state = {k: v.detach().cpu().clone() for k, v in get_peft_model_state_dict(transformer).items()}
    name = state_name(step)
    if not distributed.writes_here(files):  # another rank: rank 0 stores them, and says where
        state_uri = files.put(name, work_dir / name)
        return _save_lora(files, work_dir, step, lora_state, metadata, state_uri=state_uri)
    torch.save(
        {
            "fingerprint": state_of["fingerprint"],
            "step": step,
            "lora": lora_state,
            "optimizer": optimizer.state_dict(),
            "generator": generator.get_state(),
            "memory": state_of["memory"],
            "plan": state_of["plan"],
            "model": state_of["model"],
            "saved": [[s.step, s.lora, s.state] for s in done.saved],
            "losses": [list(pair) for pair in done.losses],
            "seconds": state_of["seconds"],
        },
        work_dir / name,
    )
    state_uri = files.put(name, work_dir / name)
    return _save_lora(files, work_dir, step, lora_state, metadata, state_uri=state_uri)


def _as_stored(stored: str | None) -> memory.MemoryPlan:
    base: memory.Base = "bf16"
    for known in memory.WEIGHT_BYTES:
        if stored == known:
            base = known
    return memory.MemoryPlan(base=base)


def draw_sigma(
    sampling: str,
    generator: torch.Generator,
    sigmas: torch.Tensor,
    timesteps: torch.Tensor,
    image_tokens: int,
    config: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step's noise level and its timestep (sigma × the training timesteps), from `generator`:

    - uniform: a timestep of the scheduler's training schedule, each as likely (FLUX's schedule
      is unshifted at training: half the draws above sigma 0.5);
    - logit-normal: sigmoid of a normal draw (mean LOGIT_MEAN, std LOGIT_STD), diffusers'
      `compute_density_for_timestep_sampling(weighting_scheme="logit_normal")`: most draws mid-way;
    - shift: a uniform draw shifted as FLUX's sampler shifts its schedule for `image_tokens`
      (mu from the scheduler's base_shift/max_shift over base/max image tokens, sigma' =
      e^mu / (e^mu + 1/sigma - 1)): at 1024 px 76 % of draws above 0.5, at 512 px 65 %."""
    if sampling == "uniform":
        at = int(torch.rand(1, generator=generator) * len(timesteps))
        return sigmas[at], timesteps[at]
    scale = float(getattr(config, "num_train_timesteps", 1000))
    if sampling == "logit-normal":
        sigma = torch.sigmoid(torch.randn(1, generator=generator)[0] * LOGIT_STD + LOGIT_MEAN)
    elif sampling == "shift":
        mu = flux_shift(image_tokens, config)
        u = torch.rand(1, generator=generator)[0].clamp(min=1e-6)
        sigma = math.exp(mu) / (math.exp(mu) + (1.0 / u - 1.0))
    else:
        raise InvalidInput(f"training.timestepSampling {sampling!r} is not shift, logit-normal or uniform")
    return sigma.to(torch.float32), (sigma * scale).to(torch.float32)


def flux_shift(image_tokens: int, config: Any) -> float:
    """FLUX's mu for a picture of `image_tokens` tokens: linear from base_shift at
    base_image_seq_len to max_shift at max_image_seq_len (diffusers' `calculate_shift`; 0.5 at 256
    tokens, 1.15 at 4096)."""
    base_tokens = float(getattr(config, "base_image_seq_len", 256))
    max_tokens = float(getattr(config, "max_image_seq_len", 4096))
    base_shift = float(getattr(config, "base_shift", 0.5))
    max_shift = float(getattr(config, "max_shift", 1.15))
    slope = (max_shift - base_shift) / (max_tokens - base_tokens)
    return image_tokens * slope + (base_shift - slope * base_tokens)


def _save_lora(
    files: CheckpointFiles,
    work_dir: Path,
    step: int,
    lora_state: dict[str, torch.Tensor],
    metadata: dict[str, str],
    *,
    state_uri: str,
) -> Saved:
    name = lora_name(step)
    if distributed.writes_here(files):
        lora_files.save(work_dir / name, lora_state, {**metadata, "contentgen.step": str(step)})
    return Saved(step, files.put(name, work_dir / name), state_uri)


def _optimizer(plan: Plan, params: list[torch.nn.Parameter]) -> torch.optim.Optimizer:
    if plan.optimizer == "adamw8bit":
        try:
            from bitsandbytes.optim.adamw import AdamW8bit
        except ImportError:
            raise InvalidInput(
                "training.optimizer adamw8bit needs bitsandbytes, which this worker does not have: use adamw"
            ) from None
        optimizer: torch.optim.Optimizer = AdamW8bit(  # type: ignore[no-untyped-call]
            params, lr=plan.learning_rate, weight_decay=WEIGHT_DECAY
        )
        return optimizer
    return torch.optim.AdamW(params, lr=plan.learning_rate, weight_decay=WEIGHT_DECAY)


def _cache(
    pipe: Any, examples: Sequence[Example], resolution: int, on: flux.Device
) -> tuple[list[torch.Tensor], list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]]:
    """Each picture's latents (fp32) and each caption's encodings, computed once (where the
    encoders are), kept on the device the transformer trains on."""
    texts: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = {}
    latents = []
    for example in examples:
        if example.caption not in texts:
            embeds, pooled, ids = flux.encode_prompt(pipe, example.caption)
            texts[example.caption] = (
                embeds.to(on.where, on.dtype),
                pooled.to(on.where, on.dtype),
                ids.to(on.where, on.dtype),
            )
        picture = flux.encode_picture(pipe, _pixels(example.picture, resolution))
        latents.append(picture.float().to(on.where))
    return latents, [texts[e.caption] for e in examples]


def _pixels(path: Path, resolution: int) -> torch.Tensor:
    """The picture's centre square at `resolution` (a multiple of 16), 1 × 3 × R × R in [-1, 1]."""
    import numpy as np
    from PIL import Image

    with Image.open(path) as opened:
        picture = opened.convert("RGB")
    side = min(picture.size)
    left, top = (picture.width - side) // 2, (picture.height - side) // 2
    square = picture.crop((left, top, left + side, top + side)).resize(
        (resolution, resolution), Image.Resampling.BICUBIC
    )
    array = np.asarray(square, dtype=np.float32) / 127.5 - 1.0
    return torch.from_numpy(array).permute(2, 0, 1).unsqueeze(0)
