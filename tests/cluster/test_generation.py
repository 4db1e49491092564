"""provider: cluster's image generator on the tiny FLUX: the same seed gives the same picture, a
LoRA (ours, or a file in the naming fal's trainer writes) changes it, scale 0 is no LoRA, and our
LoRA files have the shape fal's flux-lora reads."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from contentgen.providers import image_generator
from contentgen.providers.base import ImageRequest, LoraWeights, MemoryCheckpoint
from contentgen.providers.cluster.families.flux_training import Example
from contentgen.providers.cluster.files import FolderFiles
from contentgen.providers.cluster.generation import flux, lora_files
from contentgen.providers.cluster.provider import ClusterProvider
from contentgen.providers.cluster.training import loop
from contentgen.providers.cluster.training.plan import Plan

from .conftest import DEVICE
from .jobs import job
from .tiny_flux import pictures

pytestmark = pytest.mark.cluster_models


@pytest.fixture(scope="module")
def provider(models_root) -> ClusterProvider:
    return ClusterProvider(models_root, device=DEVICE, inference_steps=2, sizes={"square": (64, 64)})


@pytest.fixture(scope="module")
def our_lora(models_root, tmp_path_factory) -> Path:
    work = tmp_path_factory.mktemp("trained")
    examples = [Example(p, c) for p, c in pictures(work / "pictures")]
    plan = Plan(steps=2, rank=4, learning_rate=5e-3, resolution=64)
    return loop.train(job(models_root / "FLUX.1-dev", examples, plan, work, FolderFiles(work / "c"))).final


@pytest.fixture(scope="module")
def fal_lora(models_root, tmp_path_factory) -> Path:
    """A LoRA in the naming of fal's flux-lora-fast-training output (diffusers keys under
    `transformer.`, lora_A/lora_B), with more layers and another rank than ours: every
    attention projection plus the feed-forward and single blocks' projections, rank 8."""
    from diffusers import FluxTransformer2DModel

    model = FluxTransformer2DModel.from_pretrained(models_root / "FLUX.1-dev", subfolder="transformer")
    wanted = (*lora_files.TARGETS, "ff.net.0.proj", "ff.net.2", "proj_mlp", "proj_out")
    generator = torch.Generator().manual_seed(7)
    tensors = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and name.endswith(wanted) and "blocks" in name:
            tensors[f"transformer.{name}.lora_A.weight"] = torch.randn(
                8, module.in_features, generator=generator
            )
            tensors[f"transformer.{name}.lora_B.weight"] = torch.randn(
                module.out_features, 8, generator=generator
            )
    from safetensors.torch import save_file

    path = tmp_path_factory.mktemp("fal") / "pytorch_lora_weights.safetensors"
    save_file(tensors, str(path))
    return path


def _picture(provider, tmp_path: Path, name: str, *loras: tuple[Path, float], seed: int = 3) -> str:
    folder = tmp_path / name
    folder.mkdir()
    request = ImageRequest(
        prompt="a photo of sks",
        model="flux-lora" if loras else "flux-dev",
        image_size="square",
        seed=seed,
        loras=tuple(LoraWeights(url=path.resolve().as_uri(), scale=scale) for path, scale in loras),
    )
    [out] = provider.generate_images(request, folder, lambda _: None, MemoryCheckpoint())
    assert (out.width, out.height, out.seed) == (64, 64, seed) and out.gpu_seconds > 0
    return hashlib.sha256(out.path.read_bytes()).hexdigest()


def test_same_seed_same_picture_and_loras_change_it(provider, our_lora, fal_lora, tmp_path):
    plain = _picture(provider, tmp_path, "plain")
    assert _picture(provider, tmp_path, "again") == plain
    assert _picture(provider, tmp_path, "other-seed", seed=4) != plain
    assert _picture(provider, tmp_path, "ours", (our_lora, 1.0)) != plain
    assert _picture(provider, tmp_path, "ours-off", (our_lora, 0.0)) == plain
    assert _picture(provider, tmp_path, "fal", (fal_lora, 1.0)) != plain
    assert _picture(provider, tmp_path, "fal-off", (fal_lora, 0.0)) == plain
    # and nothing stays loaded from one request to the next
    assert _picture(provider, tmp_path, "after", seed=3) == plain


def test_our_lora_has_the_shape_fal_reads(models_root, our_lora):
    """fal's flux-lora takes diffusers-format files: `transformer.<layer>.lora_A.weight` (rank ×
    in) and `.lora_B.weight` (out × rank) for layers of diffusers' FluxTransformer2DModel."""
    from diffusers import FluxTransformer2DModel

    model = FluxTransformer2DModel.from_pretrained(models_root / "FLUX.1-dev", subfolder="transformer")
    layers = dict(model.named_modules())
    tensors = lora_files.load(our_lora)
    assert lora_files.key_format(tensors) == "diffusers"
    for key, tensor in tensors.items():
        layer = layers[key.removeprefix("transformer.").rsplit(".lora_", 1)[0]]
        assert isinstance(layer, torch.nn.Linear)
        expected = (4, layer.in_features) if ".lora_A." in key else (layer.out_features, 4)
        assert tuple(tensor.shape) == expected, key
    assert lora_files.key_format(["lora_unet_double_blocks_0_img_attn_qkv.lora_down.weight"]) == "kohya"


def test_flux_pro_and_missing_loras_are_refused(models_root, tmp_path):
    env = {"CONTENTGEN_CLUSTER_MODELS_DIR": str(models_root), "CONTENTGEN_CLUSTER_DEVICE": DEVICE}
    generator = image_generator("cluster", env=env)
    from contentgen.errors import InvalidInput

    with pytest.raises(InvalidInput, match="flux-pro has no open weights"):
        generator.generate_images(ImageRequest("x", "flux-pro"), tmp_path, lambda _: None, MemoryCheckpoint())
    gone = ImageRequest("x", "flux-lora", loras=(LoraWeights((tmp_path / "gone").as_uri()),))
    with pytest.raises(InvalidInput, match=r"loras\[0\]"):
        generator.generate_images(gone, tmp_path, lambda _: None, MemoryCheckpoint())


def test_the_gpu_check_measures_a_training_and_a_generation(models_root, tmp_path):
    from contentgen.providers.cluster import selfcheck

    report = selfcheck.check(models_root / "FLUX.1-dev", pictures(tmp_path), DEVICE, steps=2)
    assert report.device.startswith(DEVICE)
    assert report.seconds_per_step > 0 and report.generate_seconds > 0
    assert (report.peak_memory_bytes > 0) == DEVICE.startswith("cuda")


class Killed(BaseException):
    """A pod's end where the test says (not an error the provider could catch)."""


def _three(provider, folder: Path, files: FolderFiles, *, seed: int | None = 11, stop_after: int = 0):
    """A request for three pictures into `files`; with `stop_after`, killed once that many were made."""
    folder.mkdir(parents=True, exist_ok=True)
    made = 0

    def progress(percent: float) -> None:
        nonlocal made
        if 20 < percent < 100:  # after each picture (20 is the pipeline's loading)
            made += 1
            if made == stop_after:
                raise Killed

    request = ImageRequest(
        "a photo of sks", "flux-dev", num_images=3, image_size="square", seed=seed, outputs=files
    )
    return provider.generate_images(request, folder, progress, MemoryCheckpoint())


def _digests(outputs) -> list[str]:
    return [hashlib.sha256(o.path.read_bytes()).hexdigest() for o in outputs]


def test_a_retry_takes_the_pictures_already_made_and_makes_the_rest(provider, tmp_path, monkeypatch):
    """Interrupted after picture 1 of 3, the retry makes pictures 2 and 3 only (two pipeline calls),
    and the three are those an uninterrupted run makes; picture 1 keeps its request id and GPU
    time (counted once), the new ones get their own."""
    from contentgen.providers.cluster.generation import generation

    whole = _three(provider, tmp_path / "whole", FolderFiles(tmp_path / "whole-store"))
    assert [o.seed for o in whole] == [11, 12, 13]
    assert len({o.request_id for o in whole}) == 3 and all(o.gpu_seconds > 0 for o in whole)

    stored = FolderFiles(tmp_path / "store")
    with pytest.raises(Killed):
        _three(provider, tmp_path / "first", stored, stop_after=1)
    assert stored.names() == ["image-1.json", "image-1.png", "request.json"]
    first = json.loads((tmp_path / "store" / "image-1.json").read_text())

    calls = []
    draw = generation.draw
    monkeypatch.setattr(
        generation,
        "draw",
        lambda pipe, picture, path, *rest: calls.append(picture.seed) or draw(pipe, picture, path, *rest),
    )
    retried = _three(provider, tmp_path / "retry", stored)
    assert calls == [12, 13]  # pictures 2 and 3, never 1 again
    assert _digests(retried) == _digests(whole)
    assert (retried[0].request_id, retried[0].gpu_seconds) == (first["request_id"], first["gpu_seconds"])
    assert len({o.request_id for o in retried}) == 3 and retried[1].gpu_seconds > 0

    calls.clear()
    monkeypatch.setattr(flux, "load_pipeline", lambda *_: pytest.fail("no picture was left to make"))
    again = _three(provider, tmp_path / "again", stored)
    assert calls == [] and [o.request_id for o in again] == [o.request_id for o in retried]


def test_picture_k_is_the_one_picture_of_seed_plus_k_minus_1(provider, tmp_path):
    three = _three(provider, tmp_path / "three", FolderFiles(tmp_path / "three-store"), seed=2**32 - 2)
    assert [o.seed for o in three] == [2**32 - 2, 2**32 - 1, 0]  # the API's seeds: 0 to 2**32 - 1
    assert len(set(_digests(three))) == 3
    assert _picture(provider, tmp_path, "second", seed=2**32 - 1) == _digests(three)[1]
    assert _picture(provider, tmp_path, "third", seed=0) == _digests(three)[2]


def test_a_seed_drawn_once_is_kept_by_the_retry(provider, tmp_path):
    stored = FolderFiles(tmp_path / "store")
    with pytest.raises(Killed):
        _three(provider, tmp_path / "first", stored, seed=None, stop_after=1)
    drawn = json.loads((tmp_path / "store" / "request.json").read_text())["seed"]
    retried = _three(provider, tmp_path / "retry", stored, seed=None)
    assert [o.seed for o in retried] == [(drawn + k) % 2**32 for k in range(3)]


def test_pictures_made_for_other_inputs_are_refused(provider, tmp_path, monkeypatch):
    from contentgen.errors import PermanentError

    stored = FolderFiles(tmp_path / "store")
    made = _three(provider, tmp_path / "first", stored, seed=1)
    with pytest.raises(PermanentError, match="made for another request") as refused:
        _three(provider, tmp_path / "other", stored, seed=2)
    assert refused.value.reason == "CheckpointUnreadable"
    # the pod died between picture 2 and its record: the picture is taken, its GPU time unknown
    (tmp_path / "store" / "image-2.json").unlink()
    monkeypatch.setattr(flux, "load_pipeline", lambda *_: pytest.fail("no picture was left to make"))
    taken = _three(provider, tmp_path / "taken", stored, seed=1)
    assert _digests(taken) == _digests(made) and taken[1].gpu_seconds == 0
    assert taken[1].request_id not in {o.request_id for o in made}
    (tmp_path / "store" / "image-3.png").write_bytes(b"not this picture")
    with pytest.raises(PermanentError, match=r"picture 3 .* is not the one its record describes"):
        _three(provider, tmp_path / "again", stored, seed=1)
