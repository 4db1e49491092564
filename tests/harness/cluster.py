"""The cluster worker's runs on tiny models: a worker's spec, the LoRAs made, a clip request
(tests/cluster, providers)."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import save_file

from contentgen.api import SpecSnapshot
from contentgen.providers.base import VideoRequest
from contentgen.providers.cluster.files import FolderFiles
from contentgen.providers.cluster.generation import lora_files
from contentgen.store import LocalStore
from tests.cluster.conftest import DEVICE


def worker_spec(store: LocalStore, models_root, tmp_path, monkeypatch, **spec: object) -> tuple[Path, Path]:  # type: ignore[no-untyped-def]
    """An ImageGeneration of provider cluster for `contentgen worker` on `store`, the tiny FLUX and
    two inference steps: (its spec file, its termination log)."""
    monkeypatch.setattr("contentgen.store.open_store", lambda url, **_: store)
    monkeypatch.chdir(tmp_path)
    for variable in ("CONTENTGEN_STORE", "CONTENTGEN_CATALOG", "FAL_KEY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("CONTENTGEN_CLUSTER_MODELS_DIR", str(models_root))
    monkeypatch.setenv("CONTENTGEN_CLUSTER_DEVICE", DEVICE)
    monkeypatch.setenv("CONTENTGEN_CLUSTER_INFERENCE_STEPS", "2")
    body = {"owner": "alice", "prompt": "a red fox", "provider": "cluster", **spec}
    snapshot = SpecSnapshot(
        kind="ImageGeneration", name="fox", namespace="ns", uid="uid-1", version=1, spec=body
    )
    path, log = tmp_path / "spec.json", tmp_path / "log"
    path.write_text(snapshot.model_dump_json(by_alias=True))
    return path, log


def random_lora(models_root: Path, folder: Path, seed: int, rank: int = 4) -> Path:
    """A LoRA on every attention projection of the tiny FLUX (diffusers' naming), of `rank`."""
    from diffusers import FluxTransformer2DModel

    model = FluxTransformer2DModel.from_pretrained(models_root / "FLUX.1-dev", subfolder="transformer")
    generator = torch.Generator().manual_seed(seed)
    tensors = {}
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and name.endswith(lora_files.TARGETS) and "blocks" in name:
            tensors[f"transformer.{name}.lora_A.weight"] = torch.randn(
                rank, module.in_features, generator=generator
            )
            tensors[f"transformer.{name}.lora_B.weight"] = torch.randn(
                module.out_features, rank, generator=generator
            )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"lora-{seed}{'' if rank == 4 else f'-r{rank}'}.safetensors"
    save_file(tensors, str(path))
    return path


def request(tmp_path: Path, name: str = "made", **changes: object) -> VideoRequest:
    fields: dict[str, object] = {
        "prompt": "a red fox runs through snow",
        "model": "wan-1.3b-t2v",
        "app": "diffusers WanPipeline",
        "frames": 9,
        "fps": 8,
        "width": 64,
        "height": 64,
        "resolution": "480p",
        "aspect_ratio": "1:1",
        "seed": 7,
        "frames_made": FolderFiles(tmp_path / name),
    }
    fields.update(changes)
    return VideoRequest(**fields)  # type: ignore[arg-type]
