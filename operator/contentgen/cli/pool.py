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
    """A pool of a FLUX model's pictures."""
    from contentgen.errors import InvalidInput
    from contentgen.providers import cluster_provider
    from contentgen.providers.cluster.generation import pipelines
    from contentgen.providers.cluster.generation.pool import DrawRequest, Pool

    provider = cluster_provider()
    base = provider.staged_model(args.model)  # ModelNotFound, in one line, before anything listens
    provider.keep_loras(args.kept_loras)

    def warm_up() -> int:
        before = pipelines.loads
        empty = DrawRequest("", "", 512, 512, 1, 0.0, "auto", (), ())
        for _ in provider.draw(base, empty, (), work, lambda: False):
            pass
        return pipelines.loads - before

    kept = provider.kept

    def draw(wanted, loras, folder, cancelled):  # type: ignore[no-untyped-def]
        if not isinstance(wanted, DrawRequest):
            raise InvalidInput(f"this pool draws {args.model}'s pictures, not clips")
        if kept is not None:  # the pool's LoRA files are named by the SHA-256 it checked on upload
            for (path, _), (sha256, _) in zip(loras, wanted.loras, strict=True):
                kept.vouch(path, sha256)
        return provider.draw(base, wanted, loras, folder, cancelled)

    return Pool(args.model, draw, work, warm_up, kept.account if kept is not None else None)


def _clips(args: argparse.Namespace, work: Path, model: str, resolution: str) -> Pool:
    """A pool of a video model's clips: `model` (api/video/table.py's) at `resolution` is what
    its staged directory draws; the pipeline is loaded at start by a clip of one frame and step."""
    from functools import partial

    from contentgen.api.video import MODELS
    from contentgen.errors import InvalidInput
    from contentgen.providers import video_generator
    from contentgen.providers.cluster.generation import pipelines
    from contentgen.providers.cluster.generation.pool import ClipRequest, Pool, relayed
    from contentgen.providers.cluster.generation.video import ClusterVideoGenerator
    from contentgen.providers.cluster.generation.video_models import STAGED, staged_directory

    generator = video_generator("cluster")
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

    return Pool(args.model, draw, work, warm_up)


def _gray(side: int) -> bytes:
    """A gray PNG of side × side pixels."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (side, side), (128, 128, 128)).save(out, "PNG")
    return out.getvalue()
