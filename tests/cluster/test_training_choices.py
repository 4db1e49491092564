"""The cluster trainer's choices on the tiny FLUX: the noise levels each timestep sampling draws,
the gradient clipped to its norm, an 8-bit base (torchao int8, on the CPU) trained, stored and
resumed bit for bit with the plan it started with, each LoRA preset's file loaded by diffusers'
own loader with every tensor equal, and a kohya-format FLUX LoRA (Civitai's common format)
drawing with the cluster's generator."""

from __future__ import annotations

import hashlib
import json
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from contentgen.api.lora.plan import plan_for
from contentgen.errors import InvalidInput
from contentgen.providers.base import ImageRequest, LoraWeights, MemoryCheckpoint, TrainingRequest
from contentgen.providers.cluster import memory
from contentgen.providers.cluster.families.flux_training import Example, draw_sigma, flux_shift
from contentgen.providers.cluster.files import FolderFiles
from contentgen.providers.cluster.generation import flux, lora_files
from contentgen.providers.cluster.provider import ClusterProvider
from contentgen.providers.cluster.training import adapters, loop
from contentgen.providers.cluster.training.plan import Plan

from .conftest import DEVICE
from .jobs import job
from .lora_weights import TOLERANCE, apart
from .tiny_flux import pictures

pytestmark = pytest.mark.cluster_models


def examples(folder: Path) -> list[Example]:
    return [Example(p, c) for p, c in pictures(folder / "pictures")]


def test_each_timestep_sampling_draws_its_noise_levels():
    from diffusers import FlowMatchEulerDiscreteScheduler

    # FLUX.1-dev's scheduler config
    scheduler = FlowMatchEulerDiscreteScheduler(
        shift=3.0,
        use_dynamic_shifting=True,
        base_shift=0.5,
        max_shift=1.15,
        base_image_seq_len=256,
        max_image_seq_len=4096,
    )
    sigmas, timesteps = scheduler.sigmas.float(), scheduler.timesteps.float()

    def draws(sampling: str, tokens: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(0)
        drawn = []
        for _ in range(4000):
            sigma, timestep = draw_sigma(sampling, generator, sigmas, timesteps, tokens, scheduler.config)
            assert torch.isclose(timestep, sigma * 1000, atol=1e-3) and 0 <= float(sigma) <= 1
            drawn.append(float(sigma))
        return torch.tensor(drawn)

    above = {s: float((draws(s, 4096) > 0.5).float().mean()) for s in ("uniform", "shift", "logit-normal")}
    assert abs(above["uniform"] - 0.5) < 0.03  # the old way: half the draws above 0.5
    assert abs(above["shift"] - 0.76) < 0.03  # 1024 px: FLUX's shift e^1.15
    assert abs(float((draws("shift", 1024) > 0.5).float().mean()) - 0.65) < 0.03  # 512 px
    middle = draws("logit-normal", 4096)
    assert abs(float(((middle > 0.25) & (middle < 0.75)).float().mean()) - 0.728) < 0.03  # N(0, 1)
    # the sampler's own schedule at 1024 px and 28 steps: 21 of its 28 steps above 0.5, which the
    # shifted draws follow and uniform ones do not
    scheduler.set_timesteps(28, mu=flux_shift(4096, scheduler.config))
    inference = float((scheduler.sigmas[:-1] > 0.5).float().mean())
    assert inference == 21 / 28 and abs(inference - above["shift"]) < 0.03
    with pytest.raises(InvalidInput, match="timestepSampling"):
        draw_sigma("cosmap", torch.Generator(), sigmas, timesteps, 4096, scheduler.config)


def test_the_gradient_is_clipped_to_its_norm(models_root, tmp_path, monkeypatch):
    norms: list[float] = []
    step = torch.optim.AdamW.step

    def recording(self, *args, **kwargs):
        grads = [p.grad.norm() for group in self.param_groups for p in group["params"] if p.grad is not None]
        norms.append(float(torch.linalg.vector_norm(torch.stack(grads))))
        return step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", recording)
    model = models_root / "FLUX.1-dev"
    for clip in (0.0, 1e-4):
        plan = Plan(steps=2, rank=4, resolution=64, max_grad_norm=clip)
        folder = tmp_path / f"clip-{clip}"
        loop.train(job(model, examples(folder), plan, folder, FolderFiles(folder / "c")))
    unclipped, clipped = norms[:2], norms[2:]
    assert min(unclipped) > 1e-3  # the tiny FLUX's gradients are far larger than the bound
    assert max(clipped) <= 1e-4 * 1.001  # every step's update made from a gradient of norm 1e-4


def test_an_8bit_base_trains_and_resumes_with_the_plan_it_started_with(models_root, tmp_path):
    """training.memoryPlan int8: the transformer's linear weights stored in int8 (torchao, here on
    the CPU), the plan in the stored state, and a training stopped after its step-2 checkpoint
    resumed with it (whatever the card would choose now) ending where an uninterrupted one ends."""
    model = models_root / "FLUX.1-dev"
    plan = Plan(steps=4, rank=4, resolution=64, checkpoint_every=2)

    def int8(stored: str | None) -> memory.MemoryPlan:
        return memory.MemoryPlan(base="int8") if stored is None else memory.MemoryPlan(base=stored or "bf16")  # type: ignore[arg-type]

    whole = loop.train(
        job(model, examples(tmp_path / "w"), plan, tmp_path / "w", FolderFiles(tmp_path / "ws"), choose=int8)
    )
    assert whole.memory.base == "int8"
    state = torch.load(tmp_path / "ws" / "step-000004.pt", weights_only=True)
    assert state["memory"] == "int8"
    plain = loop.train(
        job(model, examples(tmp_path / "p"), plan, tmp_path / "p", FolderFiles(tmp_path / "ps"))
    )
    assert plain.memory.base == "bf16"
    assert apart(lora_files.load(plain.final), lora_files.load(whole.final)) > TOLERANCE  # another base

    class Stopped(BaseException):
        pass

    def stop_at_3(step: int, steps: int) -> None:
        if step == 3:
            raise Stopped

    stored = FolderFiles(tmp_path / "rs")
    with pytest.raises(Stopped):
        loop.train(job(model, examples(tmp_path / "a"), plan, tmp_path / "a", stored, choose=int8), stop_at_3)
    asked: list[str | None] = []

    def bf16_now(stored: str | None) -> memory.MemoryPlan:  # a card on which auto would choose bf16
        asked.append(stored)
        return memory.MemoryPlan(base=stored or "bf16")  # type: ignore[arg-type]

    resumed = loop.train(job(model, examples(tmp_path / "b"), plan, tmp_path / "b", stored, choose=bf16_now))
    assert asked == ["int8"] and resumed.memory.base == "int8" and resumed.resumed_from == 2
    assert apart(lora_files.load(resumed.final), lora_files.load(whole.final)) <= TOLERANCE


def test_the_provider_records_the_plan_and_refuses_nf4_without_a_gpu(models_root, tmp_path):
    archive = tmp_path / "dataset.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path, _ in pictures(tmp_path / "pictures"):
            zf.write(path, f"images/{path.stem}.png")
    provider = ClusterProvider(models_root, device=DEVICE)
    request = TrainingRequest(
        dataset_zip=archive,
        trigger_word="sks",
        checkpoints=FolderFiles(tmp_path / "stored"),
        plan=plan_for(
            app="FLUX.1-dev", steps=1, rank=4, resolution=64, memory_plan="int8", lora_targets="all-linear"
        ),
    )
    out = provider.train_lora(request, tmp_path / "work", lambda _: None, MemoryCheckpoint())
    assert out.details["memoryPlan"].startswith("int8 (torchao int8 weight-only)")
    config = json.loads(out.config.read_text())
    assert (config["memory_plan"], config["lora_targets"], config["guidance"]) == ("int8", "all-linear", 1.0)
    assert (config["timestep_sampling"], config["max_grad_norm"]) == ("shift", 1.0)
    if DEVICE == "cpu":  # bitsandbytes' 4-bit weights load on a CUDA GPU only: refused before any load
        nf4 = replace(request, plan=replace(request.plan, memory_plan="nf4"))
        with pytest.raises(InvalidInput, match=r"training\.memoryPlan nf4 needs a CUDA GPU"):
            provider.train_lora(nf4, tmp_path / "nf4", lambda _: None, MemoryCheckpoint())
    # NF4's wiring: diffusers' bitsandbytes config as QLoRA uses it (what loads it needs a GPU)
    config4 = flux.quantisation("nf4")
    assert (config4.load_in_4bit, config4.bnb_4bit_quant_type, config4.bnb_4bit_use_double_quant) == (
        True,
        "nf4",
        True,
    )
    assert config4.bnb_4bit_compute_dtype == torch.bfloat16


@pytest.mark.parametrize(
    ("preset", "layers"), [("attention", 11), ("attention+feedforward", 15), ("all-linear", 20)]
)
def test_each_preset_loads_in_diffusers_own_loader(models_root, tmp_path, preset, layers):
    """The tiny FLUX has one double and one single block: attention 8 + 3 layers, the double
    block's feed-forward 4 more, all-linear every linear layer of both (their modulation's too)."""
    from diffusers import FluxPipeline
    from peft.utils import get_peft_model_state_dict

    model = models_root / "FLUX.1-dev"
    plan = Plan(steps=1, rank=4, learning_rate=5e-3, resolution=64, targets=preset)  # type: ignore[arg-type]
    trained = loop.train(job(model, examples(tmp_path), plan, tmp_path, FolderFiles(tmp_path / "c")))
    tensors = lora_files.load(trained.final)
    assert lora_files.key_format(tensors) == "diffusers" and len(tensors) == 2 * layers
    pipe = FluxPipeline.from_pretrained(str(model), local_files_only=True)
    pipe.load_lora_weights(str(trained.final), adapter_name="ours")
    loaded = get_peft_model_state_dict(pipe.transformer, adapter_name="ours")
    assert {f"transformer.{k}" for k in loaded} == set(tensors)
    assert all(torch.equal(loaded[k.removeprefix("transformer.")].cpu(), v) for k, v in tensors.items())


def _kohya_lora(model_dir: Path, path: Path) -> Path:
    """A kohya-format FLUX LoRA (sd-scripts' and Civitai's naming: BFL's layer names under
    lora_unet_, lora_down/lora_up and an alpha per layer) for the tiny FLUX: its double block's
    image and text attention and MLP, its single block's output layer, rank 4, alpha 2. (Not the
    single block's linear1: diffusers' converter splits it at FLUX.1-dev's own sizes, 3 × 3072 +
    12288 rows, which a tiny model does not have; a real FLUX.1-dev file has it.)"""
    from diffusers import FluxTransformer2DModel
    from safetensors.torch import save_file

    t = FluxTransformer2DModel.from_pretrained(str(model_dir), subfolder="transformer", local_files_only=True)
    double, single = t.transformer_blocks[0], t.single_transformer_blocks[0]
    inner, mlp = double.attn.to_q.out_features, double.ff.net[0].proj.out_features
    shapes = {
        "double_blocks_0_img_attn_qkv": (inner, 3 * inner),
        "double_blocks_0_img_attn_proj": (inner, inner),
        "double_blocks_0_img_mlp_0": (inner, mlp),
        "double_blocks_0_img_mlp_2": (mlp, inner),
        "double_blocks_0_txt_attn_qkv": (inner, 3 * inner),
        "double_blocks_0_txt_mlp_0": (inner, mlp),
        "single_blocks_0_linear2": (inner + single.proj_mlp.out_features, inner),
    }
    generator = torch.Generator().manual_seed(11)
    tensors = {}
    for name, (size_in, size_out) in shapes.items():
        tensors[f"lora_unet_{name}.lora_down.weight"] = torch.randn(4, size_in, generator=generator)
        tensors[f"lora_unet_{name}.lora_up.weight"] = torch.randn(size_out, 4, generator=generator)
        tensors[f"lora_unet_{name}.alpha"] = torch.tensor(2.0)
    save_file(tensors, str(path))
    return path


def test_a_kohya_format_lora_draws_with_the_cluster_generator(models_root, tmp_path):
    kohya = _kohya_lora(models_root / "FLUX.1-dev", tmp_path / "civitai.safetensors")
    assert lora_files.key_format(lora_files.load(kohya)) == "kohya"
    provider = ClusterProvider(models_root, device=DEVICE, inference_steps=2, sizes={"square": (64, 64)})

    def picture(name: str, *loras: tuple[Path, float]) -> str:
        folder = tmp_path / name
        folder.mkdir()
        request = ImageRequest(
            prompt="a photo of sks",
            model="flux-lora" if loras else "flux-dev",
            image_size="square",
            seed=3,
            loras=tuple(LoraWeights(url=p.resolve().as_uri(), scale=s) for p, s in loras),
        )
        [out] = provider.generate_images(request, folder, lambda _: None, MemoryCheckpoint())
        return hashlib.sha256(out.path.read_bytes()).hexdigest()

    none = picture("none")
    assert picture("kohya", (kohya, 1.0)) != none  # diffusers converted it, and it changes the picture
    assert picture("zero", (kohya, 0.0)) == none  # scale 0 is no LoRA
    assert picture("none-again") == none  # nothing of it stayed on the kept pipeline


def test_a_kohya_loras_layers_land_where_their_names_say_with_alpha_over_rank(models_root, tmp_path):
    """Not only another picture: each kohya layer (the image attention's fused qkv split into
    to_q, to_k, to_v; the projection; the MLP; the single block's output; a CLIP layer under
    lora_te1_, as Civitai's files that train the text side carry) is on the diffusers layer it
    names, with the weight change up @ down × alpha / rank, while the generator has it loaded."""
    from diffusers import FluxPipeline
    from safetensors.torch import save_file

    from contentgen.providers.cluster.generation import generation

    model = models_root / "FLUX.1-dev"
    tensors = lora_files.load(_kohya_lora(model, tmp_path / "k.safetensors"))
    pipe = FluxPipeline.from_pretrained(str(model), local_files_only=True)
    clip = pipe.text_encoder
    clip_attn = (clip.text_model if hasattr(clip, "text_model") else clip).encoder.layers[0].self_attn
    clip_q = clip_attn.q_proj
    generator = torch.Generator().manual_seed(12)
    text = "lora_te1_text_model_encoder_layers_0_self_attn_q_proj"
    for name in (text, text.replace("q_proj", "out_proj")):  # sd-scripts trains every projection
        tensors[f"{name}.lora_down.weight"] = torch.randn(4, clip_q.in_features, generator=generator)
        tensors[f"{name}.lora_up.weight"] = torch.randn(clip_q.out_features, 4, generator=generator)
        tensors[f"{name}.alpha"] = torch.tensor(2.0)
    save_file(tensors, str(tmp_path / "with-text.safetensors"))
    double, single = pipe.transformer.transformer_blocks[0], pipe.transformer.single_transformer_blocks[0]
    inner = double.attn.to_q.out_features
    # peft wraps each layer it adapts in a new module, so the layers are looked up once loaded

    def change(name: str, rows: slice = slice(None)) -> torch.Tensor:
        up, down = tensors[f"{name}.lora_up.weight"], tensors[f"{name}.lora_down.weight"]
        return (up[rows] @ down) * (2.0 / 4)

    qkv = "lora_unet_double_blocks_0_img_attn_qkv"
    wanted = {
        "to_q": (lambda: double.attn.to_q, change(qkv, slice(0, inner))),
        "to_k": (lambda: double.attn.to_k, change(qkv, slice(inner, 2 * inner))),
        "to_v": (lambda: double.attn.to_v, change(qkv, slice(2 * inner, 3 * inner))),
        "to_out": (lambda: double.attn.to_out[0], change("lora_unet_double_blocks_0_img_attn_proj")),
        "ff": (lambda: double.ff.net[2], change("lora_unet_double_blocks_0_img_mlp_2")),
        "proj_out": (lambda: single.proj_out, change("lora_unet_single_blocks_0_linear2")),
        "clip q_proj": (lambda: clip_attn.q_proj, change(text)),
    }
    with generation.loras_loaded(pipe, [(tmp_path / "with-text.safetensors", 1.0)]):
        for what, (find, expected) in wanted.items():
            layer = find()
            assert hasattr(layer, "lora_A"), f"{what}: the LoRA did not land on it"
            [adapter] = layer.lora_A.keys()
            found = layer.get_delta_weight(adapter).float()
            assert torch.allclose(found, expected, rtol=1e-4, atol=1e-5), what
    assert not hasattr(double.attn.to_q, "lora_A") or not double.attn.to_q.lora_A  # unloaded after


def test_an_8bit_generation_plan_draws_and_takes_a_lora(models_root, tmp_path):
    """The generation's 8-bit transformer (torchao int8, on the CPU): it draws, a LoRA loads on
    its quantised layers and changes the picture, and tiling is set per request."""
    from contentgen.providers.cluster.generation import generation

    model = models_root / "FLUX.1-dev"
    pipe = flux.load_pipeline(model, flux.device(DEVICE), memory.MemoryPlan(base="int8", vae_tiling=True))
    assert type(pipe.transformer.transformer_blocks[0].attn.to_q.weight).__name__ != "Parameter"
    assert pipe.vae.use_tiling
    flux.tiling(pipe, False)
    assert not pipe.vae.use_tiling
    picture = generation.Picture("a photo of sks", 64, 64, seed=3, steps=2)
    plain = generation.draw(pipe, picture, tmp_path / "plain.png").read_bytes()
    lora = _kohya_lora(model, tmp_path / "k.safetensors")
    with generation.loras_loaded(pipe, [(lora, 1.0)]):
        with_lora = generation.draw(pipe, picture, tmp_path / "lora.png").read_bytes()
    assert with_lora != plain
    assert generation.draw(pipe, picture, tmp_path / "again.png").read_bytes() == plain


def test_training_on_a_gpu_turns_cudnn_attention_off_and_on_the_cpu_leaves_it() -> None:
    """cuDNN's fused attention failed FLUX.1-dev's backward on an H100 and an H200 (torch 2.11,
    docs/cluster-gpus.md): the trainer turns it off where it trains on a GPU, and only there."""
    before = torch.backends.cuda.cudnn_sdp_enabled()
    try:
        torch.backends.cuda.enable_cudnn_sdp(True)
        adapters.attention_for_training(flux.Device(torch.device("cpu"), torch.float32))
        assert torch.backends.cuda.cudnn_sdp_enabled()
        adapters.attention_for_training(flux.Device(torch.device("cuda"), torch.bfloat16))
        assert not torch.backends.cuda.cudnn_sdp_enabled()
        assert torch.backends.cuda.flash_sdp_enabled() and torch.backends.cuda.mem_efficient_sdp_enabled()
    finally:
        torch.backends.cuda.enable_cudnn_sdp(before)
