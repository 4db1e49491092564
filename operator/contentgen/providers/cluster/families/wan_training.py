"""The LoRA training loop on Wan (diffusers + peft): Wan 2.1's one transformer, or Wan 2.2 A14B's
two experts trained as two LoRAs on their own timestep ranges. The FLUX trainer's loop
(training.py) in every way a person sees: the plan (training.Plan), the memory plan chosen before
anything is loaded (wan_memory.py), checkpoints and resume bit for bit, the loss curve, the watch
that scores each checkpoint as it is stored and may stop the training, training.continueFrom.

- **Cached.** Every clip's latents (the VAE over its 4k+1 frames; a still as one frame) and every
  caption's UMT5 encoding are computed once (wan_data.py); the text encoder is loaded only for
  that and then dropped, the VAE too unless the watch's clips are drawn (kept on the CPU, on the
  card only to decode). Only the transformers take the card.
- **Flow matching as Wan is trained** (its sampler, diffusers' FlowMatchEulerDiscreteScheduler and
  UniPC on flow sigmas, and the trainers built for it, DiffSynth-Studio's and musubi-tuner's): a
  clip's latents x0, noise e, a noise level σ; the transformer sees (1 − σ) x0 + σ e at timestep
  1000σ and is taught the velocity e − x0 (mean squared error, unweighted). σ is drawn as
  `training.timestepSampling` says: `shift` (the default) draws σ uniformly and shifts it as the
  staged scheduler shifts its sampling (σ' = sσ / (1 + (s − 1)σ), s its flow_shift: 3.0 for Wan 2.1
  at 480p, 12.0 for Wan 2.2 T2V A14B), as DiffSynth-Studio draws from its shifted training schedule
  and musubi-tuner's `--timestep_sampling shift`; `logit-normal` and `uniform` as for FLUX.
- **Wan 2.2 A14B's experts**: each step's draw routes its sample to the expert that owns its
  timestep (the high-noise `transformer` at and above the boundary × 1000, the low-noise
  `transformer_2` below: diffusers' WanPipeline's split, wan_models.Experts), whose LoRA alone
  learns from it, with its own optimizer; the other waits (in CPU memory where the plan makes the
  experts take turns). Two LoRA files come out, one per expert.
- **Image-to-video** models learn from clips: the first frame is given as WanImageToVideoPipeline
  gives it (its mask and latents concatenated to the noisy latents; Wan 2.1's CLIP image encoding
  beside the text), and its stills are left out.
- **Resume**: the state after every `checkpoint_every` steps (each LoRA and optimizer, the
  generator that draws examples, noise and timesteps, the losses, which expert each step trained)
  is stored once, then its LoRA files; a killed process's retry goes on from the newest.

Multi-GPU is not this module's: a training of several GPUs is providers/cluster/training/distributed.py's
(model-agnostic), which may wrap `WanRun.step`'s forward and backward; this loop runs on one device.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from contentgen.errors import InvalidInput
from contentgen.providers.base import CheckpointFiles, Continued, ContinuedState
from contentgen.providers.watch import Drawer, Planned, SoFar, Stop, TrainingWatch

from .. import memory
from ..generation import flux, lora_files
from ..training import loop as training
from ..training.loop import (
    LOGIT_MEAN,
    LOGIT_STD,
    Plan,
    Saved,
    Unkept,
    attention_for_training,
    lora_name,
    state_name,
)
from . import wan_data, wan_memory, wan_models

log = logging.getLogger(__name__)

HIGH, LOW, ONE = "high", "low", "transformer"


def low_noise_name(step: int) -> str:
    return f"step-{step:06d}-low-noise.safetensors"


@dataclass
class WanTrained:
    final: Path  # the newest checkpoint's LoRA (the high-noise expert's for a pair)
    final_low: Path | None = None  # a pair's low-noise expert's
    checkpoints: list[Saved] = field(default_factory=list)
    resumed_from: int = 0
    steps_run: int = 0
    seconds_per_step: float = 0.0
    seconds_before: float = 0.0
    peak_memory_bytes: int = 0
    memory: wan_memory.WanPlan = field(default_factory=wan_memory.WanPlan)
    losses: list[tuple[int, float]] = field(default_factory=list)
    routed: list[tuple[int, float, str]] = field(default_factory=list)  # (step, timestep, expert)
    stopped: Stop | None = None
    first_step: int = 0
    last_step: int = 0
    drawing_seconds: float = 0.0
    continued: ContinuedState | None = None
    experts: wan_models.Experts | None = None


# What draws the watch's clips, from the training's pipeline (its transformers, VAE and scheduler),
# the encodings of the watch's prompts, the device and the memory plan (wan_live.py).
Drawers = Callable[[Any, dict[str, Any], flux.Device, wan_memory.WanPlan], Drawer]


def fingerprint(
    model: str, plan: Plan, examples: Sequence[wan_data.Example], experts: wan_models.Experts | None
) -> str:
    """What a stored state belongs to: the model, its experts' boundary, the plan and the dataset
    (pure but for reading the examples)."""
    planned = asdict(plan)
    if not planned["first"]:
        del planned["first"]
    boundary = experts.boundary if experts is not None else None
    digest = hashlib.sha256(json.dumps(["wan", model, boundary, planned], sort_keys=True).encode())
    for example in examples:
        digest.update(hashlib.sha256(example.path.read_bytes()).digest())
        digest.update(f"{example.kind}:{example.caption}".encode())
    return digest.hexdigest()


def draw_noise_level(
    sampling: str, generator: torch.Generator, shift: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step's σ and its timestep 1000σ, from `generator` (see the module): shift, logit-normal
    or uniform."""
    if sampling == "uniform":
        sigma = torch.rand(1, generator=generator)[0].clamp(min=1e-6)
    elif sampling == "logit-normal":
        sigma = torch.sigmoid(torch.randn(1, generator=generator)[0] * LOGIT_STD + LOGIT_MEAN)
    elif sampling == "shift":
        u = torch.rand(1, generator=generator)[0].clamp(min=1e-6)
        sigma = shift * u / (1 + (shift - 1) * u)
    else:
        raise InvalidInput(f"training.timestepSampling {sampling!r} is not shift, logit-normal or uniform")
    return sigma.to(torch.float32), (sigma * wan_models.TRAIN_TIMESTEPS).to(torch.float32)


def flow_loss(
    transformer: Any,
    example: wan_data.Cached,
    sigma: torch.Tensor,
    timestep: torch.Tensor,
    noise: torch.Tensor,
    on: flux.Device,
    *,
    offload: bool = False,
) -> torch.Tensor:
    """One sample's flow-matching loss (see the module): the transformer's velocity at (1 − σ) x0 +
    σ e, timestep 1000σ, against e − x0; an image-to-video model's condition beside the latents. With
    `offload`, the blocks' checkpointed inputs are kept in CPU memory (the recomputed block stays on
    the card: backward runs outside this)."""
    x0, where = example.latents, on.where
    noisy = (1.0 - sigma.to(where)) * x0 + sigma.to(where) * noise
    inputs = noisy if example.condition is None else torch.cat([noisy, example.condition], dim=1)
    saving = (
        torch.autograd.graph.save_on_cpu(pin_memory=True) if offload and on.cuda else contextlib.nullcontext()
    )
    with saving:
        prediction = transformer(
            hidden_states=inputs.to(on.dtype),
            timestep=timestep.expand(1).to(where),
            encoder_hidden_states=example.text,
            encoder_hidden_states_image=example.image,
            return_dict=False,
        )[0]
    return torch.nn.functional.mse_loss(prediction.float(), noise - x0)


def share_above(boundary: float, shift: float) -> float:
    """The share of `shift` draws whose timestep is at or above `boundary` × 1000: the high-noise
    expert's share of a pair's steps (pure; σ' ≥ b where u ≥ b / (s − (s − 1) b))."""
    return 1.0 - boundary / (shift - (shift - 1.0) * boundary)


@dataclass
class _Expert:
    name: str
    transformer: Any
    params: list[torch.nn.Parameter]
    optimizer: torch.optim.Optimizer


@dataclass
class _Done:
    start: int = 0
    before: float = 0.0
    saved: list[Saved] = field(default_factory=list)
    losses: list[tuple[int, float]] = field(default_factory=list)
    routed: list[tuple[int, float, str]] = field(default_factory=list)


def train(
    model_dir: Path,
    examples: Sequence[wan_data.Example],
    plan: Plan,
    on: flux.Device,
    work_dir: Path,
    files: CheckpointFiles,
    progress: Callable[[int, int], None] = lambda step, steps: None,
    metadata: dict[str, str] | None = None,
    choose: Callable[[str | None], wan_memory.WanPlan] | None = None,
    *,
    table_boundary: float | None = None,
    watch: TrainingWatch | None = None,
    drawers: Drawers | None = None,
    continued: Continued | None = None,
    gpus: int = 1,
) -> WanTrained:
    """Train (or go on training) a Wan LoRA, or a Wan 2.2 pair; see the module. `choose` gives the
    memory plan from the base a stored state was trained with (None: no state); `table_boundary`
    the experts' boundary where the model's index says none."""
    started = time.monotonic()
    run = WanRun.begin(
        model_dir,
        examples,
        plan,
        on,
        work_dir,
        files,
        metadata or {},
        choose or (lambda stored: wan_memory.WanPlan(base=_base(stored))),
        table_boundary,
        training._Watched(watch, drawers, gpus),  # type: ignore[arg-type]
        continued,
    )
    return training.drive(run, started, progress)


def _base(stored: str | None) -> Any:
    return stored if stored in memory.WEIGHT_BYTES else "bf16"


@dataclass
class WanRun:
    """A Wan training under way: its cached examples, its experts (one, or a pair), the generator,
    what was done, and its watch."""

    plan: Plan
    on: flux.Device
    work_dir: Path
    files: CheckpointFiles
    identity: str
    chosen: wan_memory.WanPlan
    metadata: dict[str, str]
    cached: list[wan_data.Cached]
    experts: dict[str, _Expert]
    split: wan_models.Experts | None
    shift: float
    generator: torch.Generator
    done: _Done
    marks: set[int]
    watched: Any  # training._Watched
    continued: ContinuedState | None = None
    on_card: str = ""  # the expert on the card where they take turns

    @classmethod
    def begin(
        cls,
        model_dir: Path,
        examples: Sequence[wan_data.Example],
        plan: Plan,
        on: flux.Device,
        work_dir: Path,
        files: CheckpointFiles,
        metadata: dict[str, str],
        choose: Callable[[str | None], wan_memory.WanPlan],
        table_boundary: float | None,
        watched: Any,
        continued: Continued | None = None,
    ) -> WanRun:
        """The memory plan chosen, the pipeline loaded, the examples cached, the adapters added, and
        a stored state resumed (this training's own, else the continued version's)."""
        split = wan_models.experts_of(model_dir, table_boundary)
        i2v = wan_models.image_to_video(model_dir)
        examples = _usable(examples, i2v)
        source = training._continued_state(continued) if continued is not None else None
        if source is not None:
            plan = replace(plan, first=source[0], steps=source[0] + plan.steps)
        identity = fingerprint(model_dir.name, plan, examples, split)
        found, state = training._stored_state(files, work_dir, identity)
        went_on: ContinuedState | None = None
        if source is not None and continued is not None:
            went_on = ContinuedState(continued.version, source[0], continued.files.uri(source[1]))
            if found is None:
                found, state = source, training._read_state(continued.files, work_dir, source[1])
                training._check_continuable(continued, source[0], state, model_dir.name, plan)
        chosen = choose(str(state["memory"]) if state is not None and "memory" in state else None)
        log.info("memory plan: %s", chosen.describe())
        metadata = {
            **metadata,
            "contentgen.steps": str(plan.steps),
            "contentgen.rank": str(plan.rank),
            "contentgen.lora_targets": plan.targets,
            "contentgen.memory_plan": chosen.base,
        }
        attention_for_training(on)
        pipe = wan_models.load_for_training(model_dir, on, chosen.base)
        prompts = list(watched.watch.prompts()) if watched.drawers and watched.watch else []
        cached, encoded = _cache(pipe, examples, plan.resolution, on, chosen, prompts, i2v)
        experts = {
            name: _Expert(name, transformer, *_with_adapter(transformer, plan))
            for name, transformer in _transformers(pipe, split).items()
        }
        run = cls(
            plan=plan,
            on=on,
            work_dir=work_dir,
            files=files,
            identity=identity,
            chosen=chosen,
            metadata=metadata,
            cached=cached,
            experts=experts,
            split=split,
            shift=wan_models.flow_shift(pipe.scheduler),
            generator=torch.Generator("cpu").manual_seed(plan.seed),
            done=_Done(start=plan.first),
            marks=set(plan.checkpoint_steps()),
            watched=watched,
            continued=went_on,
        )
        run._place(next(iter(experts)))
        if found is not None and state is not None and source is not None and found == source:
            run._put_back(state, found[0], own=False)
            log.info("going on from version %s's step %d", continued and continued.version, found[0])
        elif found is not None and state is not None:
            run._put_back(state, found[0], own=True)
            run._files_of(found, state)
            log.info("resuming the Wan LoRA training after step %d of %d", found[0], plan.steps)
        if encoded and watched.drawers is not None:
            watched.drawer = watched.drawers(pipe, encoded, on, chosen)
        return run

    # --- the steps ------------------------------------------------------------------------------

    def step(self, step: int) -> None:
        """One optimisation step on one example, by the expert its timestep routes it to."""
        example = self.cached[int(torch.randint(len(self.cached), (1,), generator=self.generator))]
        sigma, timestep = draw_noise_level(self.plan.timestep_sampling, self.generator, self.shift)
        name = ONE if self.split is None else self.split.owner(float(timestep))
        noise = torch.randn(example.latents.shape, generator=self.generator).to(self.on.where)
        expert = self._place(name)
        loss = flow_loss(
            expert.transformer, example, sigma, timestep, noise, self.on, offload=self.chosen.offload
        )
        loss.backward()  # type: ignore[no-untyped-call]
        if self.plan.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(expert.params, self.plan.max_grad_norm)
        expert.optimizer.step()
        expert.optimizer.zero_grad(set_to_none=True)
        self.done.losses.append((step, round(float(loss.detach()), 6)))
        self.done.routed.append((step, round(float(timestep), 3), name))

    def _place(self, name: str) -> _Expert:
        """The expert `name` on the card (every expert, where the plan keeps them all there); where
        they take turns, the other waits in CPU memory with its optimizer's moments."""
        expert = self.experts[name]
        if self.on_card in (name, "*"):
            return expert
        first = not self.on_card
        if self.chosen.base != "nf4":  # bitsandbytes placed its 4-bit weights as it loaded them
            if self.chosen.experts_resident:
                for each in self.experts.values():
                    each.transformer.to(self.on.where)
            else:
                if self.on_card:
                    _moved(self.experts[self.on_card], torch.device("cpu"))
                _moved(expert, self.on.where)
        self.on_card = "*" if self.chosen.experts_resident else name
        if self.on.cuda and first:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(self.on.where)
        return expert

    # --- checkpoints ----------------------------------------------------------------------------

    def keep(self, step: int, seconds: float) -> Stop | None:
        """The state after `step` and its LoRA files, each stored once, then the watch's answer."""
        from peft.utils import get_peft_model_state_dict

        loras = {
            name: {k: v.detach().cpu().clone() for k, v in get_peft_model_state_dict(e.transformer).items()}
            for name, e in self.experts.items()
        }
        name = state_name(step)
        torch.save(
            {
                "fingerprint": self.identity,
                "step": step,
                **self._tensors(loras),
                "generator": self.generator.get_state(),
                "memory": self.chosen.base,
                "plan": asdict(self.plan),
                "model": self.metadata.get("contentgen.base_model", ""),
                "saved": [[s.step, s.lora, s.state] for s in self.done.saved],
                "losses": [list(pair) for pair in self.done.losses],
                "routed": [list(r) for r in self.done.routed],
                "seconds": seconds,
            },
            self.work_dir / name,
        )
        state_uri = self.files.put(name, self.work_dir / name)
        saved = self._save_loras(step, loras, state_uri)
        self.done.saved.append(saved)
        return self._judged(saved, held=True)

    def _tensors(self, loras: dict[str, dict[str, torch.Tensor]]) -> dict[str, Any]:
        """Each expert's LoRA and optimizer under the state's keys: `lora` and `optimizer` for the
        one transformer or the high-noise expert (what training.continueFrom's checks read), and
        `lora_low`, `optimizer_low` for the low-noise one."""
        out: dict[str, Any] = {}
        for name, expert in self.experts.items():
            suffix = "_low" if name == LOW else ""
            out[f"lora{suffix}"] = loras[name]
            out[f"optimizer{suffix}"] = expert.optimizer.state_dict()
        return out

    def _save_loras(self, step: int, loras: dict[str, dict[str, torch.Tensor]], state_uri: str) -> Saved:
        """The step's LoRA files: the one transformer's or the high-noise expert's, then the
        low-noise expert's."""
        metadata = {**self.metadata, "contentgen.step": str(step)}
        first = HIGH if self.split is not None else ONE
        path = lora_files.save(self.work_dir / lora_name(step), loras[first], self._meta(metadata, first))
        uri = self.files.put(lora_name(step), path)
        if self.split is not None:
            low = lora_files.save(self.work_dir / low_noise_name(step), loras[LOW], self._meta(metadata, LOW))
            self.files.put(low_noise_name(step), low)
        return Saved(step, uri, state_uri)

    def _meta(self, metadata: dict[str, str], expert: str) -> dict[str, str]:
        if self.split is None:
            return metadata
        return {
            **metadata,
            "contentgen.expert": f"{expert}-noise",
            "contentgen.boundary": str(self.split.boundary),
            "contentgen.loads_into": "transformer" if expert == HIGH else "transformer_2",
        }

    def _put_back(self, state: dict[str, Any], step: int, *, own: bool) -> None:
        """A stored state's LoRAs, optimizers, generator and losses; its checkpoints and time where it
        is this training's own (`own`), not another version's."""
        from peft.utils import set_peft_model_state_dict

        try:
            for name, expert in self.experts.items():
                suffix = "_low" if name == LOW else ""
                set_peft_model_state_dict(expert.transformer, state[f"lora{suffix}"])
                expert.optimizer.load_state_dict(state[f"optimizer{suffix}"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise InvalidInput(
                f"training.continueFrom: the state of step {step} does not fit this spec's LoRA ({exc}): a "
                "training goes on only with the same base model, rank, loraTargets and optimizer"
            ) from None
        self.generator.set_state(state["generator"])
        self.done = _Done(
            start=step,
            before=float(state.get("seconds", 0.0)) if own else 0.0,
            saved=[Saved(s, *uris) for s, *uris in state["saved"]] if own else [],
            losses=[(int(s), float(v)) for s, v in state.get("losses") or [] if int(s) <= step],
            routed=[(int(s), float(t), str(e)) for s, t, e in state.get("routed") or [] if int(s) <= step],
        )

    def _files_of(self, found: tuple[int, str], state: dict[str, Any]) -> None:
        """The resumed state's own checkpoint: its LoRA files stored where the process was killed
        between the state and them."""
        step, name = found
        names = set(self.files.names())
        wanted = [lora_name(step)] + ([low_noise_name(step)] if self.split is not None else [])
        if all(n in names for n in wanted):
            self.done.saved.append(Saved(step, self.files.uri(lora_name(step)), self.files.uri(name)))
            return
        loras = {n: state[f"lora{'_low' if n == LOW else ''}"] for n in self.experts}
        self.done.saved.append(self._save_loras(step, loras, self.files.uri(name)))

    # --- the watch ------------------------------------------------------------------------------

    def seconds(self, started: float) -> float:
        drawn: float = self.watched.drawn_seconds
        return self.done.before + time.monotonic() - started - drawn

    def rate(self, began: float, ran: int) -> float | None:
        return (time.monotonic() - began - self.watched.drawn_seconds) / ran if ran else None

    def _judged(self, saved: Saved, *, held: bool) -> Stop | None:
        watch, drawer = self.watched.watch, self.watched.drawer
        if watch is None:
            return None
        if drawer is not None and held:
            drawer.lora_uri = saved.lora
        result: Stop | None = watch.checkpoint(saved.step, saved.lora, drawer if held else None)
        return result

    def replay(self, seconds: float) -> Stop | None:
        """As training.py's: the watch told the plan, then the checkpoints stored before, then asked."""
        watch = self.watched.watch
        if watch is None:
            return None
        watch.begin(Planned(self.plan.first, self.plan.steps, tuple(sorted(self.marks))))
        for saved in [s for s in self.done.saved if s.step > self.plan.first]:
            if (stop := self._judged(saved, held=saved.step == self.done.start)) is not None:
                return stop
        return self.ended(self.done.start, seconds, None)

    def ended(self, step: int, seconds: float, rate: float | None) -> Stop | None:
        watch = self.watched.watch
        if watch is None:
            return None
        gpus = self.watched.gpus
        ahead = [m for m in self.marks if m > step]
        answer: Stop | None = watch.step_ended(
            SoFar(
                step=step,
                gpu_seconds=seconds * gpus,
                seconds_per_step=rate,
                next_checkpoint=min(ahead, default=self.plan.steps),
                gpus=gpus,
                losses=self.done.losses,
            )
        )
        return answer

    def trained(self, seconds: float, ran: int, stop: Stop | None) -> WanTrained:
        own = [s for s in self.done.saved if s.step > self.plan.first]
        last = self.done.start + ran
        if not own:
            raise Unkept(last, self.done.before, self.watched.drawn_seconds)
        step = own[-1].step
        final = self._local(lora_name(step))
        final_low = self._local(low_noise_name(step)) if self.split is not None else None
        return WanTrained(
            final=final,
            final_low=final_low,
            checkpoints=own,
            resumed_from=self.done.start if self.done.start > self.plan.first else 0,
            steps_run=ran,
            seconds_per_step=seconds / ran if ran else 0.0,
            seconds_before=self.done.before,
            peak_memory_bytes=int(torch.cuda.max_memory_allocated(self.on.where)) if self.on.cuda else 0,
            memory=self.chosen,
            losses=self.done.losses,
            routed=self.done.routed,
            stopped=stop if last < self.plan.steps else None,
            first_step=self.plan.first,
            last_step=last,
            drawing_seconds=self.watched.drawn_seconds,
            continued=self.continued,
            experts=self.split,
        )

    def _local(self, name: str) -> Path:
        path = self.work_dir / name
        if not path.exists():
            self.files.get(name, path)
        return path


def _moved(expert: _Expert, where: torch.device) -> None:
    """An expert's transformer and its optimizer's moments to `where` (AdamW's step counts stay)."""
    expert.transformer.to(where)
    for state in expert.optimizer.state.values():
        for key, value in state.items():
            if isinstance(value, torch.Tensor) and key != "step":
                state[key] = value.to(where)


def _usable(examples: Sequence[wan_data.Example], i2v: bool) -> list[wan_data.Example]:
    """The examples a model learns from: an image-to-video model's clips (a still is its own first
    frame: nothing to learn), every example elsewhere."""
    if not i2v:
        return list(examples)
    clips = [e for e in examples if e.kind == "clip"]
    if not clips:
        raise InvalidInput(
            "dataset.media: an image-to-video Wan learns from clips (its first frame given, the rest "
            "learnt), and this dataset has stills only: use dataset.media auto or clips, or a text-to-video "
            "training.baseModel"
        )
    if len(clips) < len(examples):
        left = len(examples) - len(clips)
        log.info("image-to-video: %d stills left out, %d clips trained", left, len(clips))
    return clips


def _transformers(pipe: Any, split: wan_models.Experts | None) -> dict[str, Any]:
    if split is None:
        return {ONE: pipe.transformer}
    return {HIGH: pipe.transformer, LOW: pipe.transformer_2}


def _with_adapter(transformer: Any, plan: Plan) -> tuple[list[torch.nn.Parameter], torch.optim.Optimizer]:
    """The LoRA added to the preset's layers (its initial weights from the plan's seed), in fp32, with
    gradient checkpointing; its parameters and their optimizer."""
    from peft import LoraConfig

    transformer.requires_grad_(False)
    torch.manual_seed(plan.seed)
    linear = [n for n, m in transformer.named_modules() if isinstance(m, torch.nn.Linear)]
    transformer.add_adapter(
        LoraConfig(
            r=plan.rank,
            lora_alpha=plan.rank,
            init_lora_weights="gaussian",
            target_modules=wan_models.target_modules(linear, plan.targets),
        )
    )
    params = [p for p in transformer.parameters() if p.requires_grad]
    for p in params:
        p.data = p.data.to(torch.float32)
    if plan.gradient_checkpointing:
        transformer.enable_gradient_checkpointing()
    transformer.train()
    return params, training._optimizer(plan, params)


def _cache(
    pipe: Any,
    examples: Sequence[wan_data.Example],
    resolution: int,
    on: flux.Device,
    chosen: wan_memory.WanPlan,
    prompts: Sequence[str],
    i2v: bool,
) -> tuple[list[wan_data.Cached], dict[str, Any]]:
    """Each example's latents and caption's encoding (and an image-to-video model's condition), and
    the watch's prompts' encodings with the empty negative prompt's; the text encoder is dropped
    after, and the VAE too unless the watch's clips are drawn (kept on the CPU)."""
    import gc

    text_on = on.where if chosen.text_encoder_on_gpu or not on.cuda else torch.device("cpu")
    pipe.text_encoder.to(text_on)
    texts: dict[str, torch.Tensor] = {}
    for caption in [e.caption for e in examples]:
        if caption not in texts:
            texts[caption] = wan_data.encode_text(pipe, caption, text_on).to(on.where, on.dtype)
    encoded = {p: wan_data.encode_text(pipe, p, text_on).to(on.where, on.dtype) for p in [*prompts, ""]}
    pipe.text_encoder = None
    gc.collect()
    vae_on = on.where if chosen.vae_on_gpu or not on.cuda else torch.device("cpu")
    pipe.vae.to(vae_on)
    if chosen.vae_tiling:
        pipe.vae.enable_tiling()
    if i2v and getattr(pipe, "image_encoder", None) is not None:
        pipe.image_encoder.to(vae_on)
    cached = []
    for example in examples:
        video = wan_data.pixels(example, resolution)
        latents = wan_data.encode_video(pipe.vae, video).to(on.where)
        condition = wan_data.first_frame_condition(pipe, video).to(on.where) if i2v else None
        image = wan_data.image_embeds(pipe, video, vae_on) if i2v else None
        cached.append(
            wan_data.Cached(
                latents=latents,
                text=texts[example.caption],
                condition=condition,
                image=image.to(on.where, on.dtype) if image is not None else None,
            )
        )
    pipe.vae.disable_tiling()
    if prompts:
        pipe.vae.to("cpu")
    else:
        pipe.vae = None
    if getattr(pipe, "image_encoder", None) is not None and not prompts:
        pipe.image_encoder = None
    gc.collect()
    if on.cuda:
        torch.cuda.empty_cache()
    return cached, ({p: encoded[p] for p in [*prompts, ""]} if prompts else {})
