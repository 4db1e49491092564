"""provider cluster's work in an image without its libraries (the chart's gpu.image pointed at the
worker image): refused in one line that names the image to use, as InvalidInput (a worker exits
with it and is not retried), not an ImportError's traceback retried backoffLimit times. Found on
the real node, where a GPU Job ran the worker image (tests/kube/test_gpus.py). A pooled Job's
pictures are the warm pool's to draw, and its worker image is asked for nothing."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from contentgen import providers
from contentgen.errors import InvalidInput

MAKERS = (providers.trainer, providers.image_generator, providers.transcriber, providers.video_generator)


@pytest.mark.parametrize("make", MAKERS, ids=lambda m: m.__name__)
def test_cluster_work_without_its_libraries_is_refused_in_one_line(
    make: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    found = importlib.util.find_spec
    absent = {"torch", "diffusers", "faster_whisper"}
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name in absent else found(name, *a)
    )
    with pytest.raises(InvalidInput) as refused:
        make("cluster", env={})
    line = str(refused.value)
    assert "\n" not in line and line.startswith("provider cluster: this worker image has no ")
    assert "the chart's gpu.image, ghcr.io/contentgen/contentgen-worker-gpu" in line
    # the other providers do not ask
    assert make("offline", env={}) is not None
    # a pooled Job's pictures are the warm pool's to draw: its worker image draws nothing
    if make is providers.image_generator:
        assert make("cluster", env={"CONTENTGEN_CLUSTER_POOL_URL": "http://pool.gpu:8080"}) is not None
