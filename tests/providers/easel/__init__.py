"""Easel: a picture provider that exists only in the tests, declared in this one package (its row:
the models it draws, each by its app, the pictures a request makes, its key and prices; and its
image generator, what the pipeline builds), to prove that adding a picture provider needs no
product file and no edit of the model tables. It draws a gradient seeded by the prompt, the seed
and the key, at the size asked; it bills by the megapixel at its app's price.

`register` adds it by one call (contentgen.providers.add)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from contentgen import providers
from contentgen.api.image import IMAGE_SIZES
from contentgen.api.providers import Provider
from contentgen.providers import Env, Registered, api_key
from contentgen.providers.base import Checkpoint, ImageGenerator, ImageOutput, ImageRequest
from contentgen.providers.progress import SubProgress

ENTRY = Provider(
    "easel",
    key="EASEL_API_KEY",
    prices_by_app=True,
    max_images=2,
    draws={"flux-dev": "easel/flux-dev", "flux-schnell": "easel/flux-schnell"},
    draws_why="the only models Easel serves",
    note="the tests' own painter",
    prices={"easel/flux-dev": {"megapixel": 0.05}, "easel/flux-schnell": {"megapixel": 0.01}},
)


class EaselPainter(ImageGenerator):
    name = ENTRY.name

    def __init__(self, key: str) -> None:
        self.key = key

    def generate_images(
        self, request: ImageRequest, work_dir: Path, progress: SubProgress, checkpoint: Checkpoint
    ) -> list[ImageOutput]:
        if request.model not in ENTRY.draws or request.num_images > ENTRY.max_images:
            raise AssertionError(f"admission let through what Easel refuses: {request}")
        width, height = IMAGE_SIZES[request.image_size]
        made = []
        for n in range(request.num_images):
            words = f"{request.prompt}|{request.seed}|{n}|{self.key}".encode()
            low, high = np.frombuffer(hashlib.sha256(words).digest()[:6], dtype=np.uint8).reshape(2, 3)
            ramp = np.linspace(0.0, 1.0, width)[None, :, None]
            row = (low + (high.astype(float) - low) * ramp).astype(np.uint8)
            path = work_dir / f"easel-{n}.png"
            Image.fromarray(np.repeat(row, height, axis=0)).save(path)
            made.append(ImageOutput(path, width, height, "image/png", request.seed, f"easel-{n}"))
            progress(100 * (n + 1) / request.num_images)
        return made


def _painter(env: Env) -> ImageGenerator:
    return EaselPainter(api_key(ENTRY, env))


REGISTERED = Registered(ENTRY, image_generator=_painter)


def register(monkeypatch: pytest.MonkeyPatch) -> None:
    """Easel among the providers, until the test ends."""
    providers.add(REGISTERED, monkeypatch.setitem)
