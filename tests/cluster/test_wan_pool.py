"""A Wan 2.2 pair in a warm video pool (providers/cluster/generation/pool.py, video.py, video_loras.py): the
Job's worker uploads both files, the pool loads the high-noise one into `transformer` and the
low-noise one into `transformer_2` and draws the clip its own Job draws; the pair swapped draws
another. On the tiny Wan 2.2 A14B (tiny_wan.py), on the CPU."""

from __future__ import annotations

import argparse
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from contentgen.cli.pool import _clips
from contentgen.errors import InvalidInput
from contentgen.providers.base import LoraWeights, MemoryCheckpoint
from contentgen.providers.cluster.generation import pipelines, video_state
from contentgen.providers.cluster.generation.pool import ClipRequest, Pool, serve
from contentgen.providers.cluster.generation.video import ClusterVideoGenerator
from tests.harness.cluster import request as clip_request
from tests.providers.cluster_models import refuse_hubs, tiny_lora, tiny_wan

from .conftest import DEVICE
from .tiny_wan import WAN21, WAN22, tiny_wan22

pytestmark = pytest.mark.cluster_models
STEPS = 3


@pytest.fixture(scope="module")
def pair_root(tmp_path_factory: pytest.TempPathFactory, threads: None) -> Path:
    root = tmp_path_factory.mktemp("wan22")
    tiny_wan22(root / WAN22)
    tiny_wan(root / WAN21)
    return root


@pytest.fixture
def pool(pair_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Pool]]:
    """`contentgen pool --model Wan2.2-T2V-A14B-Diffusers`'s pool, served on a free local port."""
    connect = socket.socket.connect
    refuse_hubs(monkeypatch)

    def loopback_only(sock: socket.socket, address: object) -> None:
        assert sock.family == socket.AF_UNIX or address[0] == "127.0.0.1", address  # type: ignore[index]
        connect(sock, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", loopback_only)
    monkeypatch.setenv("CONTENTGEN_CLUSTER_MODELS_DIR", str(pair_root))
    monkeypatch.setenv("CONTENTGEN_CLUSTER_DEVICE", DEVICE)
    monkeypatch.setenv("CONTENTGEN_CLUSTER_INFERENCE_STEPS", str(STEPS))
    pipelines.release()
    running = _clips(
        argparse.Namespace(model=WAN22, routing="affinity"), tmp_path / "pool", "wan-2.2-a14b-t2v", "480p"
    ).start()
    deadline = time.monotonic() + 300
    while running.status()["state"] != "warm":
        assert time.monotonic() < deadline, "the pool did not get warm"
        time.sleep(0.05)
    server = serve(running, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", running
    server.shutdown()
    server.server_close()


def frames_of(generator: ClusterVideoGenerator, work: Path, name: str, pair: tuple[Path, Path]) -> np.ndarray:
    lora = LoraWeights(pair[0].resolve().as_uri(), low_noise_url=pair[1].resolve().as_uri())
    request = clip_request(work, name, model="wan-2.2-a14b-t2v", owner="alice", loras=(lora,))
    (work / f"{name}-run").mkdir(parents=True, exist_ok=True)
    generator.generate_video(request, work / f"{name}-run", lambda _: None, MemoryCheckpoint())
    with np.load(work / name / video_state.FRAMES) as stored:
        return np.asarray(stored["frames"])


def test_a_pooled_pair_loads_into_its_experts_as_its_own_job_does(pair_root, tmp_path, pool):
    high = tiny_lora(pair_root / WAN22, tmp_path / "high.safetensors", seed=1)
    low = tiny_lora(pair_root / WAN22, tmp_path / "low.safetensors", seed=2)
    client = ClusterVideoGenerator(tmp_path / "no-models", inference_steps=STEPS, pool_url=pool[0])
    pooled = frames_of(client, tmp_path, "pooled", (high, low))
    local = ClusterVideoGenerator(pair_root, device=DEVICE, inference_steps=STEPS)
    pipelines.release()
    assert np.array_equal(frames_of(local, tmp_path, "local", (high, low)), pooled)
    assert not np.array_equal(frames_of(local, tmp_path, "swapped", (low, high)), pooled)


def test_a_clip_request_says_which_files_are_low_noise():
    clip = ClipRequest(
        owner="alice",
        prompt="p",
        negative_prompt="",
        model="wan-2.2-a14b-t2v",
        resolution="480p",
        width=64,
        height=64,
        frames=9,
        fps=8,
        steps=3,
        seed=7,
        inputs={},
        loras=(("a" * 64, 0.8), ("b" * 64, 0.8), ("c" * 64, 1.0)),
        low_noise=(1,),
    )
    wire = clip.wire()
    assert wire["clip"]["lowNoise"] == [1]
    assert ClipRequest.parse(wire) == clip
    del wire["clip"]["lowNoise"]  # a Job's worker from before pairs: none
    assert ClipRequest.parse(wire).low_noise == ()


def test_a_pair_on_a_model_of_one_transformer_is_refused_before_it_loads(pair_root, tmp_path):
    high = tiny_lora(pair_root / WAN21, tmp_path / "high.safetensors", seed=1)
    generator = ClusterVideoGenerator(pair_root, device=DEVICE, inference_steps=STEPS)
    lora = LoraWeights(high.as_uri(), low_noise_url=high.as_uri())
    request = clip_request(tmp_path, "one", model="wan-1.3b-t2v", loras=(lora,))
    (tmp_path / "run").mkdir()
    with pytest.raises(
        InvalidInput, match=r"^loras\[0\] is a Wan 2.2 pair .* model wan-1.3b-t2v has one transformer"
    ):
        generator.generate_video(request, tmp_path / "run", lambda _: None, MemoryCheckpoint())
