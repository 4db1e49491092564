"""provider cluster's videos (providers/cluster/generation/video.py) on tiny Wan and LTX-Video pipelines made
from configs with random weights (cluster_models.py), staged under the names a platform team stages
the real ones, on the CPU, with no way to a hub."""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest

from contentgen.errors import GpuMemoryTooSmall, InvalidInput, ModelNotFound, PermanentError
from contentgen.providers.base import LoraWeights, MemoryCheckpoint, VideoRequest
from contentgen.providers.cluster import memory
from contentgen.providers.cluster.files import FolderFiles
from contentgen.providers.cluster.generation import pipelines, video, video_state
from contentgen.providers.cluster.generation.video import ClusterVideoGenerator, VideoJob, plan_memory
from tests.harness.cluster import request

from .cluster_models import device, refuse_hubs, tiny_lora, tiny_ltx, tiny_wan

pytestmark = pytest.mark.cluster_models

STEPS = 3


@pytest.fixture(scope="module")
def models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    torch.set_num_threads(1)  # 2 shared cores
    root = tmp_path_factory.mktemp("models")
    tiny_wan(root / "Wan2.1-T2V-1.3B-Diffusers")
    tiny_wan(root / "Wan2.1-I2V-14B-480P-Diffusers", image=True)
    tiny_ltx(root / "LTX-Video")
    return root


@pytest.fixture
def generator(models_root: Path, monkeypatch: pytest.MonkeyPatch) -> ClusterVideoGenerator:
    refuse_hubs(monkeypatch)
    return ClusterVideoGenerator(models_root, device=device(), gpus=2, inference_steps=STEPS)


def generate(
    generator: ClusterVideoGenerator, req: VideoRequest, work: Path, seen: list[float] | None = None
):
    work.mkdir(parents=True, exist_ok=True)
    return generator.generate_video(req, work, (seen if seen is not None else []).append, MemoryCheckpoint())


def decoded(path: Path) -> tuple[np.ndarray, float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        frames = np.stack([f.to_ndarray(format="rgb24") for f in container.decode(stream)])
        return frames, float(stream.average_rate)


def kept(folder: Path) -> np.ndarray:
    with np.load(folder / video_state.FRAMES) as stored:
        return np.asarray(stored["frames"])


def test_a_clip_is_denoised_step_by_step_kept_and_encoded(generator, tmp_path):
    seen: list[float] = []
    out = generate(generator, request(tmp_path), tmp_path / "work", seen)
    frames, rate = decoded(out.path)
    assert frames.shape == (9, 64, 64, 3) and rate == 8
    assert out.content_type == "video/mp4" and out.seed == 7 and not out.placeholder
    assert out.request_id.startswith("cluster-") and out.gpu_seconds > 0
    # progress rises with every denoising step, then the encode, to 100
    assert seen == sorted(seen) and seen[-1] == 100
    assert len([p for p in seen if 15 < p <= 85]) == STEPS
    # the decoded frames kept, with their record, before the encode
    record = json.loads((tmp_path / "made" / video_state.RECORD).read_text())
    assert record["request_id"] == out.request_id and record["gpu_seconds"] == out.gpu_seconds
    assert kept(tmp_path / "made").shape == (9, 64, 64, 3)
    assert "cpu" in record["memory_plan"]


def test_the_same_seed_makes_the_same_frames_and_a_lora_changes_them(generator, tmp_path, models_root):
    generate(generator, request(tmp_path, "first"), tmp_path / "w1")
    generate(generator, request(tmp_path, "again"), tmp_path / "w2")
    assert np.array_equal(kept(tmp_path / "first"), kept(tmp_path / "again"))
    lora = tiny_lora(models_root / "Wan2.1-T2V-1.3B-Diffusers", tmp_path / "lora.safetensors")
    with_lora = request(tmp_path, "lora", loras=(LoraWeights(lora.as_uri(), 1.0),))
    generate(generator, with_lora, tmp_path / "w3")
    assert not np.array_equal(kept(tmp_path / "first"), kept(tmp_path / "lora"))
    # the LoRA is unloaded after its request: the next one draws the first's frames again
    generate(generator, request(tmp_path, "after"), tmp_path / "w4")
    assert np.array_equal(kept(tmp_path / "first"), kept(tmp_path / "after"))


def test_a_retried_pod_takes_the_kept_frames_instead_of_denoising(generator, tmp_path, monkeypatch):
    import contentgen.providers.offline_video as offline_video

    encoded: list[np.ndarray] = []  # the frames each attempt encodes
    encode = offline_video.encode

    def spy(path: Path, frames, **kwargs):  # type: ignore[no-untyped-def]
        encoded.append(np.stack(list(frames)))
        return encode(path, iter(encoded[-1]), **kwargs)

    monkeypatch.setattr(offline_video, "encode", spy)
    first = generate(generator, request(tmp_path), tmp_path / "w1")
    loads = pipelines.loads

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("denoised again")

    monkeypatch.setattr(video, "denoise", refuse)
    seen: list[float] = []
    again = generate(generator, request(tmp_path), tmp_path / "w2", seen)
    assert pipelines.loads == loads  # nothing loaded either
    assert (again.request_id, again.gpu_seconds, again.seed) == (first.request_id, first.gpu_seconds, 7)
    assert np.array_equal(encoded[1], encoded[0]) and decoded(again.path)[0].shape == (9, 64, 64, 3)
    assert seen[-1] == 100
    # killed between the frames and their record: taken, its GPU time lost with the pod
    (tmp_path / "made" / video_state.RECORD).unlink()
    lost = generate(generator, request(tmp_path), tmp_path / "w3")
    assert lost.gpu_seconds == 0 and lost.request_id != first.request_id
    # frames that are not an array of frames are refused, never encoded
    damaged = FolderFiles(tmp_path / "damaged")
    (tmp_path / "damaged" / video_state.REQUEST).write_bytes(
        (tmp_path / "made" / video_state.REQUEST).read_bytes()
    )
    (tmp_path / "damaged" / video_state.FRAMES).write_bytes(b"not a zip")
    with pytest.raises(PermanentError, match="is not the frames"):
        generate(generator, request(tmp_path, frames_made=damaged), tmp_path / "w5")
    # frames made for another request are never mixed in
    with pytest.raises(PermanentError, match="made for another request"):
        generate(generator, request(tmp_path, prompt="another prompt"), tmp_path / "w4")


def test_a_request_without_a_seed_goes_on_with_the_one_drawn_first(generator, tmp_path, monkeypatch):
    first = generate(generator, request(tmp_path, seed=None), tmp_path / "w1")
    monkeypatch.setattr(video, "denoise", lambda *a, **k: pytest.fail("denoised again"))
    assert generate(generator, request(tmp_path, seed=None), tmp_path / "w2").seed == first.seed


def test_wan_animates_a_picture(generator, tmp_path):
    from PIL import Image

    picture = tmp_path / "picture.png"
    Image.new("RGB", (96, 64), (200, 40, 40)).save(picture)
    req = request(tmp_path, model="wan-14b-i2v", image_path=picture, aspect_ratio="auto")
    frames, rate = decoded(generate(generator, req, tmp_path / "work").path)
    assert frames.shape == (9, 64, 64, 3) and rate == 8


def test_ltx_video_from_text_and_from_a_picture(generator, tmp_path):
    from PIL import Image

    text = generate(generator, request(tmp_path, "text", model="ltx-video", fps=24), tmp_path / "w1")
    frames, rate = decoded(text.path)
    assert frames.shape == (9, 64, 64, 3) and rate == 24
    picture = tmp_path / "picture.png"
    Image.new("RGB", (64, 64), (20, 200, 40)).save(picture)
    req = request(tmp_path, "image", model="ltx-video", image_path=picture)
    frames, _ = decoded(generate(generator, req, tmp_path / "w2").path)
    assert frames.shape == (9, 64, 64, 3)


def test_a_size_that_is_not_the_models_multiple_is_drawn_at_it_and_resized(generator, tmp_path):
    # LTX draws at multiples of 32 (its 720p is 1280 x 704): the video is the size asked
    req = request(tmp_path, model="ltx-video", width=80, height=48)
    frames, _ = decoded(generate(generator, req, tmp_path / "work").path)
    assert frames.shape == (9, 48, 80, 3)
    assert kept(tmp_path / "made").shape == (9, 64, 64, 3)


def test_a_model_not_staged_is_one_line_naming_the_directory_and_what_to_stage(tmp_path, monkeypatch):
    refuse_hubs(monkeypatch)
    generator = ClusterVideoGenerator(tmp_path / "models", device="cpu", inference_steps=STEPS)
    with pytest.raises(ModelNotFound) as error:
        generate(generator, request(tmp_path), tmp_path / "work")
    message = str(error.value)
    assert "\n" not in message
    assert str(tmp_path / "models" / "Wan2.1-T2V-1.3B-Diffusers") in message
    assert "Wan-AI/Wan2.1-T2V-1.3B-Diffusers" in message
    # 720p image-to-video is the 720P checkpoint
    with pytest.raises(ModelNotFound, match=r"Wan2\.1-I2V-14B-720P-Diffusers"):
        generate(generator, request(tmp_path, "b", model="wan-14b-i2v", resolution="720p"), tmp_path / "w2")


def test_memory_plans_resident_tiled_offloaded_or_refused():
    job = VideoJob("wan", 832, 480, 81, 1536)
    weights = {"transformer": 3 * memory.GIB, "text_encoder": 11 * memory.GIB, "vae": memory.GIB // 2}

    def card(gib: float) -> memory.Card:
        return memory.Card(free=int(gib * memory.GIB), total=80 * memory.GIB, capability=(9, 0), name="H100")

    assert plan_memory(memory.Card(free=0, total=0), weights, job).chosen_by == "cpu"
    roomy = plan_memory(card(70), weights, job)
    assert not roomy.offload and not roomy.vae_tiling
    tiled = plan_memory(card(21.4), weights, job)  # the frames decoded whole do not fit; in tiles they do
    assert not tiled.offload and tiled.vae_tiling
    small = plan_memory(card(20), weights, job)
    assert small.offload and small.vae_tiling and "offload" in small.describe()
    with pytest.raises(GpuMemoryTooSmall, match="even with model CPU offload"):
        plan_memory(card(4), weights, job)


def test_the_estimates_cover_wan_s_peaks_measured_at_real_size():
    """Wan 2.1 T2V 1.3B at 832 × 480 × 81 frames on an H200 (bench/video_gpu.py, docs/cluster-gpus.md):
    torch's peak allocation, every component resident, decoded whole and in tiles. The constants
    before that measurement (1,536 bytes a pixel, 512-pixel tiles) gave 20.4 GB for a 24.2 GB peak:
    on a 24 GB card the planner would have kept the decode whole, and run out of memory."""
    job = VideoJob("wan", 832, 480, 81, 1536)
    # its components as component_bytes counts them: 1.42 B bf16, UMT5-XXL 5.68 B bf16, the VAE in fp32
    weights = {"transformer": 2_837_993_600, "text_encoder": 11_361_820_672, "vae": 507_570_124}
    (_, _, whole), (_, _, tiled), _ = video.layouts(weights, job)
    assert whole >= 24_219_405_824 and tiled >= 16_826_224_640
    # and not so far above as to waste the card
    assert whole < 1.2 * 24_219_405_824 and tiled < 1.2 * 16_826_224_640
    card = memory.Card(free=int(23.3 * memory.GIB), total=24 * memory.GIB, capability=(8, 9), name="L4")
    on_a_24gb_card = plan_memory(card, weights, job)
    assert on_a_24gb_card.vae_tiling and not on_a_24gb_card.offload


def test_provider_cluster_is_the_video_generator(models_root, monkeypatch):
    from contentgen.providers import video_generator

    env = {"CONTENTGEN_CLUSTER_MODELS_DIR": str(models_root), "CONTENTGEN_CLUSTER_DEVICE": "cpu"}
    made = video_generator("cluster", env=env)
    assert isinstance(made, ClusterVideoGenerator) and made.root == models_root


def test_contentgen_run_makes_a_cluster_video_billed_by_gpu_time(models_root, tmp_path, monkeypatch, capsys):
    """The whole run: the pipeline's request to provider cluster, the video stored and described,
    its cost the GPU time the frames took, in GPU-hours."""
    import yaml

    from contentgen.api import RunResult
    from contentgen.cli.main import main

    refuse_hubs(monkeypatch)
    monkeypatch.chdir(tmp_path)
    for variable in ("CONTENTGEN_STORE", "CONTENTGEN_CATALOG", "FAL_KEY", "CONTENTGEN_PRICES"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("CONTENTGEN_CLUSTER_MODELS_DIR", str(models_root))
    monkeypatch.setenv("CONTENTGEN_CLUSTER_DEVICE", device())
    monkeypatch.setenv("CONTENTGEN_CLUSTER_INFERENCE_STEPS", "2")
    spec = {
        "apiVersion": "contentgen.io/v1alpha1",
        "kind": "VideoGeneration",
        "metadata": {"name": "tiny-wan"},
        "spec": {
            "owner": "demo-user",
            "prompt": "a red fox runs through snow",
            "provider": "cluster",
            "model": "wan-1.3b-t2v",
            "numFrames": 5,
            "fps": 8,
            "aspectRatio": "1:1",
            "seed": 3,
        },
    }
    (tmp_path / "video.yaml").write_text(yaml.safe_dump(spec))
    code = main(["run", "--result", "r.json", "video.yaml"])
    out = capsys.readouterr()
    assert code == 0, out.out + out.err
    result = RunResult.model_validate_json((tmp_path / "r.json").read_text())
    assert (result.provider, result.placeholder) == ("cluster", False)
    made = result.video
    assert made is not None and (made.frames, made.fps, made.width, made.height) == (5, 8, 480, 480)
    frames, rate = decoded(Path(made.uri.removeprefix("file://")))
    assert frames.shape == (5, 480, 480, 3) and rate == 8
    [line] = result.usage or []
    assert (line.provider, line.item, line.unit) == ("cluster", "video-generation", "gpu-hour")
    assert line.quantity > 0 and line.request.startswith("cluster-")


def test_the_weights_are_sized_from_their_safetensors_headers(models_root):
    """What a plan is chosen on, read without loading a weight: each component's parameters × the
    bytes it is loaded in (bf16 on a GPU, Wan's VAE and image encoder fp32; fp32 on the CPU)."""
    import torch
    from diffusers import WanTransformer3DModel

    from contentgen.providers.cluster.generation import flux

    model = models_root / "Wan2.1-I2V-14B-480P-Diffusers"
    transformer = WanTransformer3DModel.from_pretrained(
        str(model), subfolder="transformer", local_files_only=True
    )
    parameters = sum(p.numel() for p in transformer.parameters())
    on_cpu = video.component_bytes(model, flux.Device(torch.device("cpu"), torch.float32))
    assert set(on_cpu) == {"transformer", "text_encoder", "vae", "image_encoder"}
    assert on_cpu["transformer"] == 4 * parameters
    on_gpu = video.component_bytes(model, flux.Device(torch.device("cuda"), torch.bfloat16))
    assert on_gpu["transformer"] == 2 * parameters and on_gpu["vae"] == on_cpu["vae"]
    assert on_gpu["image_encoder"] == on_cpu["image_encoder"]


def _lora_file(path: Path, shapes: dict[str, tuple[int, ...]]) -> Path:
    import torch
    from safetensors.torch import save_file

    save_file({k: torch.zeros(shape) for k, shape in shapes.items()}, str(path))
    return path


# A LoraTraining's LoRA as the cluster's trainer and fal's write it (lora_files.py: diffusers'
# names under transformer.), and as kohya/ai-toolkit write FLUX LoRAs
FLUX_DIFFUSERS = {
    "transformer.transformer_blocks.0.attn.to_q.lora_A.weight": (4, 3072),
    "transformer.transformer_blocks.0.attn.to_q.lora_B.weight": (3072, 4),
    "transformer.single_transformer_blocks.0.attn.to_q.lora_A.weight": (4, 3072),
    "transformer.single_transformer_blocks.0.attn.to_q.lora_B.weight": (3072, 4),
}
FLUX_KOHYA = {
    "lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight": (4, 3072),
    "lora_unet_double_blocks_0_img_attn_qkv.lora_up.weight": (9216, 4),
    "lora_unet_double_blocks_0_img_attn_qkv.alpha": (),
}


@pytest.mark.parametrize("model", ["wan-1.3b-t2v", "ltx-video"])
@pytest.mark.parametrize("shapes", [FLUX_DIFFUSERS, FLUX_KOHYA], ids=["diffusers", "kohya"])
def test_a_flux_lora_is_refused_in_one_line_before_the_card_is_touched(
    generator, tmp_path, monkeypatch, model, shapes
):
    lora = _lora_file(tmp_path / "flux.safetensors", shapes)
    loads = pipelines.loads
    monkeypatch.setattr(video.devices, "check_torch", lambda *a: pytest.fail("the device was touched"))
    req = request(tmp_path, model=model, loras=(LoraWeights(lora.as_uri() + "?sig=1", 0.8),))
    with pytest.raises(InvalidInput) as error:
        generate(generator, req, tmp_path / "work")
    message = str(error.value)
    assert "\n" not in message and message.startswith(f"loras[0]: {lora.as_uri()} is a FLUX.1 LoRA")
    assert model in message and "sig=" not in message
    assert pipelines.loads == loads and not (tmp_path / "made" / video_state.FRAMES).exists()


def test_a_lora_of_another_model_or_size_is_refused_before_the_card_is_touched(
    generator, tmp_path, models_root, monkeypatch
):
    monkeypatch.setattr(video.devices, "check_torch", lambda *a: pytest.fail("the device was touched"))
    wan = tiny_lora(models_root / "Wan2.1-T2V-1.3B-Diffusers", tmp_path / "wan.safetensors")
    with pytest.raises(InvalidInput, match=r"^loras\[0\]: .* names layer blocks\.0\.attn1\.to_\w, which "
                       r"model ltx-video's transformer does not have: not a LTX-Video LoRA"):  # fmt: skip
        generate(
            generator,
            request(tmp_path, model="ltx-video", loras=(LoraWeights(wan.as_uri()),)),
            tmp_path / "a",
        )
    # the names of Wan's layers, the width of a larger Wan's (a 14B LoRA on the 1.3B)
    wider = _lora_file(
        tmp_path / "wide.safetensors",
        {
            "transformer.blocks.0.attn1.to_q.lora_A.weight": (4, 5120),
            "transformer.blocks.0.attn1.to_q.lora_B.weight": (5120, 4),
        },
    )
    with pytest.raises(InvalidInput, match=r"made for a Wan 2\.1 of another size: its layer "
                       r"blocks\.0\.attn1\.to_q is 5120 wide where model wan-1\.3b-t2v's is 24"):  # fmt: skip
        generate(generator, request(tmp_path, "b", loras=(LoraWeights(wider.as_uri()),)), tmp_path / "b")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a LoRA")
    with pytest.raises(InvalidInput, match=r"^loras\[0\]: .* is not a safetensors file"):
        generate(generator, request(tmp_path, "c", loras=(LoraWeights(junk.as_uri()),)), tmp_path / "c")


def test_a_lora_diffusers_loads_nothing_of_is_refused_before_denoising(generator, tmp_path, monkeypatch):
    # an SD-style kohya file: no name the checks know; LTX's loader loads none of it, with a warning
    other = _lora_file(
        tmp_path / "sd.safetensors",
        {
            "lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight": (4, 320),
            "lora_unet_down_blocks_0_attentions_0_proj_in.lora_up.weight": (320, 4),
        },
    )
    monkeypatch.setattr(video, "denoise", lambda *a, **k: pytest.fail("denoised"))
    for model, name in (("ltx-video", "l"), ("wan-1.3b-t2v", "w")):
        req = request(tmp_path, name, model=model, loras=(LoraWeights(other.as_uri()),))
        with pytest.raises(InvalidInput, match=rf"^loras: model {model} could not load them \(.+\): give"):
            generate(generator, req, tmp_path / name)


def test_lora_mismatch_is_pure_on_the_headers(models_root, tmp_path):
    layers = video.transformer_layers(models_root / "Wan2.1-T2V-1.3B-Diffusers")
    own = video._shapes(tiny_lora(models_root / "Wan2.1-T2V-1.3B-Diffusers", tmp_path / "own.safetensors"))
    assert video.lora_mismatch(own, layers, "wan-1.3b-t2v", "Wan 2.1") is None
    # a format diffusers converts (Wan's own names) is left to it
    original = {"diffusion_model.blocks.0.self_attn.q.lora_A.weight": (4, 24)}
    assert video.lora_mismatch(original, layers, "wan-1.3b-t2v", "Wan 2.1") is None
    assert "FLUX.1" in str(video.lora_mismatch(FLUX_KOHYA, layers, "wan-1.3b-t2v", "Wan 2.1"))
