"""The video step and a warm video pool's clips at real size on this machine's GPU
(`make bench-video-gpu`, issue 47): Wan 2.1 T2V 1.3B at 480p, each clip drawn by provider
cluster's own video generator (`ClusterVideoGenerator.generate_video`, as a Job's worker and a
pool pod draw it) in one process, so that the first clip loads the pipeline and the later ones find
it loaded in the process, as a warm pool pod keeps it (`pipelines.pipeline`).

- **Wan 2.1 T2V 1.3B staged** at its real size: its architecture from its configs
  (tests/providers/wan_t2v.py) with random weights drawn on the GPU, saved as the diffusers
  directory a platform team stages (`Wan2.1-T2V-1.3B-Diffusers`, about 14 GB with its UMT5-XXL
  text encoder) and a character tokenizer (a prompt's tokens, not their values, cost time); nothing
  is downloaded. A weight's value changes neither a load's time nor a clip's, only the clip.
- **LoRAs a user brings**: rank `--rank` on every attention projection of the transformer's blocks
  (self and cross, q, k, v and out), float32, random, in diffusers' format.
- **The clips**, one after the other, each timed from the request to its encoded MP4 with its
  GPU-seconds (the generator's), its memory plan and the GPU's peak memory in use: `cold` (the
  pipeline's load from the disk included: what every Job per request pays), `warm` (the pipeline
  loaded: what a pool pod pays), `lora-a` and `lora-b` (a LoRA loaded for the clip and unloaded
  after it: a video pool keeps none between clips), and `again` (the cold clip's request once more,
  after the LoRAs: its frames against the cold clip's, which a LoRA left behind would change).

Each clip's line is printed and appended to `--out` (JSON lines) as it ends, so a run cut short
keeps what it measured; with `--deadline`, a clip that would end past it (by the longest warm clip
so far) is skipped and said so. `--size tiny --device cpu` runs the same path on the tests' tiny Wan on a
machine without a GPU (tests/bench/test_video_gpu.py).

    python -m bench.video_gpu [--size full|tiny] [--device cuda|cpu] [--models DIR] [--frames 81]
        [--frame 16:9|WxH] [--steps 50] [--rank 16] [--drop-caches] [--deadline S] [--out FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

MODEL_DIR = "Wan2.1-T2V-1.3B-Diffusers"  # wan-1.3b-t2v's staged directory at 480p
PROMPT = "a red fox runs through snow at dawn, the camera follows it low over the drifts"
SCALE = 0.8
TARGETS = ("to_q", "to_k", "to_v", "to_out.0")  # of each block's attn1 (self) and attn2 (cross)


def stage(models_root: Path, size: str) -> Path:
    """The staged directory of wan-1.3b-t2v under `models_root` (built once per root)."""
    target = models_root / MODEL_DIR
    if (target / "model_index.json").exists():
        return target
    models_root.mkdir(parents=True, exist_ok=True)
    if size == "tiny":
        from tests.providers.cluster_models import tiny_wan

        return tiny_wan(target, unipc=True)
    import torch
    from diffusers import AutoencoderKLWan, UniPCMultistepScheduler, WanPipeline, WanTransformer3DModel
    from transformers import UMT5Config, UMT5EncoderModel

    from scripts.gpu_full import made_on_gpu
    from tests.cluster.tiny_flux import t5_tokenizer
    from tests.providers.cluster_models import WAN21_SCHEDULER
    from tests.providers.wan_t2v import TEXT_TOKENS, WAN_T2V_13B

    building = models_root / f".{MODEL_DIR}.building"
    config = WAN_T2V_13B
    pipe = WanPipeline(
        tokenizer=t5_tokenizer(building / "tokenizer", TEXT_TOKENS),
        text_encoder=made_on_gpu(torch, lambda: UMT5EncoderModel(UMT5Config(**config["text_encoder"]))),
        vae=made_on_gpu(torch, lambda: AutoencoderKLWan(**config["vae"])),
        scheduler=UniPCMultistepScheduler.from_config(WAN21_SCHEDULER),
        transformer=made_on_gpu(torch, lambda: WanTransformer3DModel(**config["transformer"])),
    )
    pipe.save_pretrained(building)
    del pipe
    torch.cuda.empty_cache()
    building.rename(target)
    return target


def lora(model_dir: Path, path: Path, rank: int, seed: int) -> Path:
    """A random LoRA of rank `rank` on TARGETS of every block, its shapes read from the staged
    transformer's config on the meta device (nothing loaded), saved as diffusers saves one."""
    import torch
    from diffusers import WanTransformer3DModel
    from safetensors.torch import save_file

    config = WanTransformer3DModel.load_config(model_dir / "transformer")
    with torch.device("meta"):
        transformer = WanTransformer3DModel.from_config(config)
    generator = torch.Generator().manual_seed(seed)
    tensors: dict[str, Any] = {}
    for name, module in transformer.named_modules():
        if isinstance(module, torch.nn.Linear) and ".attn" in name and name.endswith(TARGETS):
            down = torch.randn(rank, module.in_features, generator=generator) / module.in_features**0.5
            up = torch.randn(module.out_features, rank, generator=generator) * 0.02
            tensors[f"transformer.{name}.lora_A.weight"] = down
            tensors[f"transformer.{name}.lora_B.weight"] = up
    save_file(tensors, str(path), metadata={"format": "pt"})
    return path


@contextlib.contextmanager
def peak_memory(device: str) -> Iterator[dict[str, int]]:
    """The GPU memory in use at its highest while the block runs (the whole device's, sampled, as
    `make gpu-check` samples it: the VAE and the encoders allocate through torch, but not only)
    and torch's own peak allocation; nothing on the CPU."""
    found: dict[str, int] = {}
    if device != "cuda":
        yield found
        return
    import torch

    from scripts.gpu_check import PeakMemory

    torch.cuda.reset_peak_memory_stats()
    with PeakMemory(torch) as sampled:
        yield found
    found["peak_in_use"] = sampled.peak
    found["peak_allocated"] = torch.cuda.max_memory_allocated()
    found["peak_reserved"] = torch.cuda.max_memory_reserved()


def clip(
    generator: Any, work: Path, name: str, frames: int, size: str, seed: int, loras: Sequence[Path]
) -> dict[str, Any]:
    """One clip through the generator, as a Job's worker asks for it; what it took."""
    from contentgen.api.video.table import frame_size
    from contentgen.files import sha256_file
    from contentgen.providers.base import LoraWeights, MemoryCheckpoint, VideoRequest
    from contentgen.providers.cluster.files import FolderFiles
    from contentgen.providers.cluster.generation.video_state import RECORD

    width, height = (int(n) for n in size.split("x")) if "x" in size else frame_size("480p", size)
    folder = work / name
    request = VideoRequest(
        prompt=PROMPT,
        model="wan-1.3b-t2v",
        app="diffusers WanPipeline",
        frames=frames,
        fps=16,
        width=width,
        height=height,
        resolution="480p",
        aspect_ratio="" if "x" in size else size,
        seed=seed,
        loras=tuple(LoraWeights(url=path.resolve().as_uri(), scale=SCALE) for path in loras),
        frames_made=FolderFiles(folder / "frames-made"),
    )
    device = generator.device_name
    with peak_memory(device) as peak:
        started = time.monotonic()
        output = generator.generate_video(request, folder, lambda percent: None, MemoryCheckpoint())
        seconds = time.monotonic() - started
    record = json.loads((folder / "frames-made" / RECORD).read_text())
    return {
        "clip": name,
        "frames": frames,
        "size": f"{width}x{height}",
        "loras": len(loras),
        "seed": seed,
        "seconds": round(seconds, 3),
        "gpu_seconds": round(output.gpu_seconds, 3),
        "memory_plan": record.get("memory_plan", ""),
        "video_sha256": sha256_file(output.path),
        "frames_shape": list(_frames(work, name).shape),
        **{key: round(value / 2**30, 2) for key, value in peak.items()},
    }


def _frames(work: Path, name: str) -> Any:
    """The clip's decoded frames, as the generator kept them in its write-once folder."""
    import numpy as np

    from contentgen.providers.cluster.generation.video_state import FRAMES

    with np.load(work / name / "frames-made" / FRAMES) as stored:
        return stored["frames"]


def frames_differ(work: Path, one: str, other: str) -> int:
    """The largest difference between two clips' decoded frames (0 to 255; 0: the same clip)."""
    import numpy as np

    first, second = (_frames(work, name).astype(np.int16) for name in (one, other))
    return int(np.abs(first - second).max())


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    from contentgen.providers.cluster.generation.video import ClusterVideoGenerator

    models_root = Path(args.models)
    began = time.monotonic()
    model_dir = stage(models_root, args.size)
    staged = {"clip": "staged", "seconds": round(time.monotonic() - began, 1), "size": args.size}
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    loras = [lora(model_dir, work / f"lora-{n}.safetensors", args.rank, n + 1) for n in range(2)]
    staged["lora_bytes"] = loras[0].stat().st_size
    if args.drop_caches:  # the first load reads the weights from the disk, as a new pod's node does
        os.sync()
        with contextlib.suppress(OSError):
            Path("/proc/sys/vm/drop_caches").write_text("3\n")
    lines = [staged]
    _emit(args.out, staged)
    generator = ClusterVideoGenerator(models_root, device=args.device, inference_steps=args.steps or None)
    plan = [("cold", 1, []), ("warm", 2, []), ("lora-a", 3, loras[:1]), ("again", 1, [])]
    plan.append(("lora-b", 4, loras[1:]))
    longest = 0.0
    for name, seed, with_loras in plan:
        if args.deadline and time.monotonic() - began + longest > args.deadline:
            skipped = {"clip": name, "skipped": f"would end past --deadline {args.deadline:g} s"}
            lines.append(skipped)
            _emit(args.out, skipped)
            continue
        found = clip(generator, work, name, args.frames, args.frame, seed, with_loras)
        longest = max(longest, found["seconds"] if name != "cold" else 0.0)
        if name == "again":
            found["largest_difference_from_cold"] = frames_differ(work, "cold", "again")
        lines.append(found)
        _emit(args.out, found)
    return lines


def _emit(out: str, line: dict[str, Any]) -> None:
    print(json.dumps(line), flush=True)
    if out:
        with open(out, "a") as handle:
            handle.write(json.dumps(line) + "\n")


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=["full", "tiny"], default="full")
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda")
    parser.add_argument("--models", default="/tmp/video-gpu/models", help="the models' root")
    parser.add_argument("--work", default="/tmp/video-gpu/work", help="the clips' work folders")
    parser.add_argument("--frames", type=int, default=81, help="wan-1.3b-t2v's default: 81")
    parser.add_argument(
        "--frame", default="16:9", help="an aspect ratio at 480p (16:9: 832 x 480), or WxH (tiny runs)"
    )
    parser.add_argument("--steps", type=int, default=0, help="0: the model card's (50)")
    parser.add_argument("--rank", type=int, default=16)
    parser.add_argument("--drop-caches", action="store_true", help="(as root) the first load from the disk")
    parser.add_argument(
        "--deadline", type=float, default=0, help="seconds from the start: no clip begun that would end after"
    )
    parser.add_argument("--out", default="", help="append each clip's line to this file")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    lines = run(parser().parse_args(argv))
    again = next((line for line in lines if line["clip"] == "again"), {})
    if again.get("largest_difference_from_cold", 0) != 0:
        print(f"FAIL: the cold clip's request drew another clip after the LoRAs: {again}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
