"""A warm pool worker of provider cluster (docs/cluster-gpus.md#warm-pools): keeps one base model's
FLUX pipeline loaded on this machine's GPU and draws the pictures ImageGeneration Jobs send it
(their workers with CONTENTGEN_CLUSTER_POOL_URL), owners served in turn, the LoRAs of recent
requests kept loaded (`--kept-loras`), a request's own activated at its scales. The base model is
loaded at start; `GET /v1/status` says `loading`, then `warm`. On SIGTERM (a rolling upgrade, an
eviction) it says `stopping`, takes no new request, finishes the one it draws and exits. The
models' root, device and GPUs are the worker's settings (CONTENTGEN_CLUSTER_MODELS_DIR,
CONTENTGEN_CLUSTER_DEVICE, CONTENTGEN_GPU_COUNT)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from contentgen.cli.flags import int_at_least


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
    from contentgen.providers import cluster_provider
    from contentgen.providers.cluster import pipelines
    from contentgen.providers.cluster.pool import DrawRequest, Pool, serve, serve_until_stopped

    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s", stream=sys.stderr)
    provider = cluster_provider()
    base = provider.base_model(args.model)  # ModelNotFound, in one line, before anything listens
    provider.keep_loras(args.kept_loras)
    work = Path(args.work_dir)

    def warm_up() -> int:
        before = pipelines.loads
        empty = DrawRequest("", "", 512, 512, 1, 0.0, "auto", (), ())
        for _ in provider.draw(base, empty, (), work, lambda: False):
            pass
        return pipelines.loads - before

    kept = provider.kept

    def draw(wanted, loras, folder, cancelled):  # type: ignore[no-untyped-def]
        if kept is not None:  # the pool's LoRA files are named by the SHA-256 it checked on upload
            for (path, _), (sha256, _) in zip(loras, wanted.loras, strict=True):
                kept.vouch(path, sha256)
        return provider.draw(base, wanted, loras, folder, cancelled)

    pool = Pool(args.model, draw, work, warm_up, kept.account if kept is not None else None).start()
    server = serve(pool, args.host, args.port)
    print(f"contentgen pool: {args.model} on {args.host}:{server.server_address[1]}", file=sys.stderr)
    serve_until_stopped(pool, server)  # SIGTERM: finishes what it took, then exits
    return 0
