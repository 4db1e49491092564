"""A warm pool worker of provider cluster (docs/cluster-gpus.md#warm-pools): keeps one base model's
pipeline loaded on this machine's GPU and draws what the Jobs of its kind send it (their workers
with CONTENTGEN_CLUSTER_POOL_URL), owners served in turn: a FLUX model's pictures for
ImageGenerations, the LoRAs of recent requests kept loaded (`--kept-loras`), a request's own
activated at its scales; a video model's clips for VideoGenerations (a staged directory of
providers/cluster/generation/video_models.py), each clip's LoRAs loaded for it and unloaded after.
The base model is loaded at start; `GET /v1/status` says `loading`, then `warm`. On SIGTERM (a
rolling upgrade, an eviction) it says `stopping`, takes no new request, finishes the one it draws
and exits. The models' root, device and GPUs are the worker's settings
(CONTENTGEN_CLUSTER_MODELS_DIR, CONTENTGEN_CLUSTER_DEVICE, CONTENTGEN_GPU_COUNT)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from contentgen.cli.flags import int_at_least

if TYPE_CHECKING:
    from contentgen.providers.cluster.generation.pool import Pool


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model",
        default=os.environ.get("CONTENTGEN_CLUSTER_FLUX_MODEL", "FLUX.1-dev"),
        help="the staged base model (a directory under the models' root; default: %(default)s)",
    )
    parser.add_argument("--host", default="0.0.0.0", help="the address to listen on (default: %(default)s)")  # noqa: S104
    parser.add_argument("--port", type=int, default=8090, help="the port (default: %(default)s)")
    parser.add_argument(
        "--kept-loras",
        type=int_at_least(0),
        default=32,
        help="LoRAs kept loaded between requests, the least recently used dropped first; 0: each "
        "request's loaded and unloaded (default: %(default)s)",
    )
    parser.add_argument(
        "--compile",
        default=os.environ.get("CONTENTGEN_CLUSTER_COMPILE", "auto"),
        metavar="BACKEND",
        help="a FLUX pool's transformer compiled once at start (torch.compile with BACKEND: inductor, "
        "aot_eager, ...) and each request's LoRAs hot-swapped into it without recompiling; auto: "
        "inductor on a GPU, none on the CPU; none: not compiled, each LoRA an adapter of its own "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--lora-rank",
        type=int_at_least(1),
        default=64,
        help="with --compile: the largest rank a request's LoRAs sum to that is hot-swapped (a larger "
        "one is drawn apart, uncompiled); every layer of the transformer's blocks carries it "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--warm-up-size",
        type=picture_size,
        default=None,
        metavar="WxH",
        help="with --compile: the picture size the warm-up compiles the transformer for (another size "
        "compiles once more at its first request); default: an ImageGeneration's default size",
    )
    parser.add_argument(
        "--routing",
        choices=("affinity", "least-loaded"),
        default="affinity",
        help="how the Jobs' workers choose among the pool's pods, said in its status: the pod that "
        "holds a request's LoRAs, else the least loaded (affinity), or always the least loaded "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--work-dir",
        default=os.environ.get("CONTENTGEN_WORK_DIR", "contentgen-data/pool"),
        help="where uploaded LoRA files and pictures in flight are kept (default: %(default)s)",
    )


def run(args: argparse.Namespace) -> int:
    from contentgen.providers.cluster.generation.pool import serve, serve_until_stopped
    from contentgen.providers.cluster.generation.video_models import staged_as

    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    work = Path(args.work_dir)
    video = staged_as(args.model)
    pool = _clips(args, work, *video) if video is not None else _pictures(args, work)
    server = serve(pool.start(), args.host, args.port)
    print(f"contentgen pool: {args.model} on {args.host}:{server.server_address[1]}", file=sys.stderr)
    serve_until_stopped(pool, server)  # SIGTERM: finishes what it took, then exits
    if pool.failed.is_set():  # its pod restarts, the reason in its log, rather than stay unready
        print(f"contentgen pool: could not load {args.model}: {pool.failure}", file=sys.stderr)
        return 1
    return 0


def _pictures(args: argparse.Namespace, work: Path) -> Pool:
    """A pool of a picture model's pictures (FLUX.1's, or a newer family's: compiled only for FLUX.1)."""
    from contentgen.api.image import ImageGenerationSpec
    from contentgen.errors import InvalidInput
    from contentgen.providers import cluster_provider
    from contentgen.providers.cluster import picture_models
    from contentgen.providers.cluster.generation import pipelines
    from contentgen.providers.cluster.generation.pool import DrawRequest, Pool

    provider = cluster_provider()
    base = provider.staged_model(args.model)  # ModelNotFound, in one line, before anything listens
    drawn = picture_models.for_directory(base)
    if not drawn.hot_swaps and args.compile not in ("auto", "none"):
        raise InvalidInput(
            f"--compile {args.compile}: {args.model} is a {drawn.name} model, whose LoRAs are not swapped "
            "into a compiled transformer here (FLUX.1's are): use --compile auto or none"
        )
    compiler = _compiler(args.compile, provider.device_name) if drawn.hot_swaps else ""
    provider.keep_loras(args.kept_loras, compiler=compiler, rank=args.lora_rank)

    def warm_up() -> int:
        """The pipeline loaded; compiled, where it is, by a picture of the default size (another
        size compiles once more, at its first request)."""
        before = pipelines.loads
        width, height = (
            args.warm_up_size or provider.sizes[ImageGenerationSpec.model_fields["image_size"].default]
        )
        empty = DrawRequest("", "", width, height, 1, 0.0, "auto", (), ((1, 0),) if compiler else ())
        for drawn in provider.draw(base, empty, (), work, lambda: False):
            drawn.path.unlink()
        return pipelines.loads - before

    kept = provider.kept

    def draw(wanted, loras, folder, cancelled):  # type: ignore[no-untyped-def]
        if not isinstance(wanted, DrawRequest):
            raise InvalidInput(f"this pool draws {args.model}'s pictures, not clips")
        if kept is not None:  # the pool's LoRA files are named by the SHA-256 it checked on upload
            for (path, _), (sha256, _) in zip(loras, wanted.loras, strict=True):
                kept.vouch(path, sha256)
        return provider.draw(base, wanted, loras, folder, cancelled)

    account = kept.account if kept is not None else None
    return Pool(args.model, draw, work, warm_up, account, routing=args.routing)


def _clips(args: argparse.Namespace, work: Path, model: str, resolution: str) -> Pool:
    """A pool of a video model's clips: `model` (api/video/table.py's) at `resolution` is what
    its staged directory draws; the pipeline is loaded at start by a clip of one frame and step."""
    from functools import partial

    from contentgen.api.providers import OWN_GPUS
    from contentgen.api.video import MODELS
    from contentgen.errors import InvalidInput
    from contentgen.providers import video_generator
    from contentgen.providers.cluster.generation import pipelines
    from contentgen.providers.cluster.generation.pool import ClipRequest, Pool, relayed
    from contentgen.providers.cluster.generation.video import ClusterVideoGenerator
    from contentgen.providers.cluster.generation.video_models import STAGED, staged_directory

    generator = video_generator(OWN_GPUS)
    assert isinstance(generator, ClusterVideoGenerator)
    generator.pool_url = ""  # this process denoises
    generator.check_staged(model, resolution)  # ModelNotFound, in one line, before anything listens
    side = STAGED[model].multiple
    still = b"" if MODELS[model].takes("text") else _gray(side)  # an image-to-video model animates one

    def warm_up() -> int:
        before = pipelines.loads
        first = ClipRequest("", "warm", "", model, resolution, side, side, 1, 8, 1, 0, {}, (), (), still)
        generator.clip_for_pool(first, (), work / "warm-up", lambda: False, lambda line: None)
        return pipelines.loads - before

    def draw(clip, loras, folder, cancelled):  # type: ignore[no-untyped-def]
        if not isinstance(clip, ClipRequest) or staged_directory(clip.model, clip.resolution) != args.model:
            what = f"{clip.model} at {clip.resolution}" if isinstance(clip, ClipRequest) else "pictures"
            raise InvalidInput(f"this pool denoises {args.model}'s clips, not {what}")
        return relayed(partial(generator.clip_for_pool, clip, loras, folder, cancelled))

    return Pool(args.model, draw, work, warm_up, routing=args.routing)


def picture_size(text: str) -> tuple[int, int]:
    """`--warm-up-size`'s WIDTHxHEIGHT (argparse says what is wrong)."""
    width, _, height = text.lower().partition("x")
    if not (width.isdigit() and height.isdigit() and int(width) >= 64 and int(height) >= 64):
        raise argparse.ArgumentTypeError(f"{text!r}: give WIDTHxHEIGHT in pixels, e.g. 1024x1024")
    return int(width), int(height)


def _compiler(asked: str, device: str) -> str:
    """The torch.compile backend of a FLUX pool ("" for none): auto is inductor on a GPU (Triton's
    kernels) and none on the CPU, where inductor's C++ compile takes minutes and gains little."""
    if asked == "auto":
        from contentgen.providers.cluster.generation import flux

        return "inductor" if flux.device(device).cuda else ""
    return "" if asked == "none" else asked


def _gray(side: int) -> bytes:
    """A gray PNG of side × side pixels."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (side, side), (128, 128, 128)).save(out, "PNG")
    return out.getvalue()
