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
  step stored before it.
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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from contentgen.errors import InvalidInput, PermanentError
from contentgen.providers.base import CheckpointFiles

from . import flux, lora_files, memory

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

    def checkpoint_steps(self) -> list[int]:
        """The steps whose state is stored: every `checkpoint_every`-th, and the last (pure)."""
        every = self.checkpoint_every or self.steps
        return sorted({*range(every, self.steps + 1, every), self.steps})


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
    final: Path  # the last step's LoRA, in the work directory
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
    digest = hashlib.sha256(json.dumps([model, asdict(plan)], sort_keys=True).encode())
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
) -> Trained:
    """Train (or go on training) a LoRA; see the module's description. `choose` gives the memory
    plan, from the base a stored state was trained with (None: no state); without it, the weights
    as they are (the stored state's base on a retry)."""
    started = time.monotonic()
    run = _Run.begin(model_dir, examples, plan, on, work_dir, files, metadata or {}, choose or _as_stored)
    began, ran = time.monotonic(), 0
    for step in range(run.done.start + 1, plan.steps + 1):
        run.step(step)
        ran += 1
        if step in run.marks:
            run.keep(step, run.done.before + time.monotonic() - started)
        progress(step, plan.steps)
    return run.trained(time.monotonic() - began, ran)


@dataclass
class _Run:
    """A training under way: what its steps use (the cached latents and text encodings, the
    transformer with its adapter, the optimizer, the generator) and what was done."""

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
    ) -> _Run:
        """The memory plan chosen, the pipeline loaded, the examples cached, the adapter added,
        and a stored state resumed from where there is one."""
        identity = fingerprint(model_dir.name, plan, examples)
        found, state = _stored_state(files, work_dir, identity)
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
        pipe = flux.load_for_training(model_dir, on, chosen)
        latents, texts = _cache(pipe, examples, plan.resolution, on)
        transformer, scheduler = pipe.transformer, pipe.scheduler
        _keep_only_the_transformer(pipe, chosen, on)
        params = _with_adapter(transformer, plan)
        optimizer = _optimizer(plan, params)
        generator = torch.Generator("cpu").manual_seed(plan.seed)
        done = _Done()
        if found is not None and state is not None:
            done = _resumed(found, state, transformer, optimizer, generator, files, work_dir, metadata)
            log.info("resuming the LoRA training after step %d of %d", found[0], plan.steps)
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
        )

    def step(self, step: int) -> None:
        """One optimisation step, its loss recorded."""
        plan = self.plan
        loss = _loss(self.transformer, self.latents, self.texts, plan, self.on, self.generator, self.noise)
        loss.backward()  # type: ignore[no-untyped-call]
        if plan.max_grad_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.params, plan.max_grad_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.done.losses.append((step, round(float(loss.detach()), 6)))

    def keep(self, step: int, seconds: float) -> None:
        """The state after `step` and its LoRA, stored once (`seconds`: the training's so far)."""
        state_of = {"fingerprint": self.identity, "memory": self.chosen.base, "seconds": seconds}
        self.done.saved.append(
            _kept(
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
        )

    def trained(self, seconds: float, ran: int) -> Trained:
        """What the training made: the last LoRA (fetched from the store when every step was
        done before this process), its checkpoints and how the steps went."""
        final = self.work_dir / lora_name(self.plan.steps)
        if not final.exists():
            self.files.get(lora_name(self.plan.steps), final)
        on = self.on
        return Trained(
            final=final,
            checkpoints=self.done.saved,
            resumed_from=self.done.start,
            steps_run=ran,
            seconds_per_step=seconds / ran if ran else 0.0,
            seconds_before=self.done.before,
            peak_memory_bytes=int(torch.cuda.max_memory_allocated(on.where)) if on.cuda else 0,
            memory=self.chosen,
            losses=self.done.losses,
        )


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
    state: dict[str, Any] = torch.load(
        files.get(found[1], work_dir / found[1]), map_location="cpu", weights_only=True
    )
    if state["fingerprint"] != identity:
        raise PermanentError(
            f"the stored training state {found[1]} belongs to another dataset, model or plan: delete the "
            "version's checkpoints/ to start over",
            reason="CheckpointUnreadable",
        )
    return found, state


def _keep_only_the_transformer(pipe: Any, chosen: memory.MemoryPlan, on: flux.Device) -> None:
    """Only the transformer trains: the encoders and the VAE go (their outputs are cached)."""
    import gc

    pipe.text_encoder = pipe.text_encoder_2 = pipe.vae = None
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


def _loss(
    transformer: Any,
    latents: Sequence[torch.Tensor],
    texts: Sequence[Any],
    plan: Plan,
    on: flux.Device,
    generator: torch.Generator,
    levels: _NoiseLevels,
) -> torch.Tensor:
    """One step's flow-matching loss on an example drawn by `generator` (its draws in this order:
    the example, the noise, the noise level)."""
    index = int(torch.randint(len(latents), (1,), generator=generator))
    x0 = latents[index]
    noise = torch.randn(x0.shape, generator=generator).to(on.where, torch.float32)
    drawn, timestep = draw_sigma(
        plan.timestep_sampling, generator, levels.sigmas, levels.timesteps, levels.image_tokens, levels.config
    )
    sigma, timestep = drawn.to(on.where), timestep.to(on.where)
    noisy = ((1.0 - sigma) * x0 + sigma * noise).to(on.dtype)
    embeds, pooled, text_ids = texts[index]
    height, width = x0.shape[-2:]
    guidance = torch.full((1,), plan.guidance, device=on.where, dtype=on.dtype)
    prediction = transformer(
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
    torch.save(
        {
            "fingerprint": state_of["fingerprint"],
            "step": step,
            "lora": lora_state,
            "optimizer": optimizer.state_dict(),
            "generator": generator.get_state(),
            "memory": state_of["memory"],
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
