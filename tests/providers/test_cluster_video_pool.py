"""A VideoGeneration's clip denoised by a warm pool of its model (issue 47,
providers/cluster/generation/pool.py and video.py, `contentgen pool` on a video model's staged
directory): the Job's worker sends its write-once folder with the request and applies the pool's
changes to it as they come, so the clip is the one its own Job makes (with a LoRA and without, the
model loaded once for all), and a pool cut mid-clip leaves the loop's latest state in the Job's
store, from which its retry resumes, here in the Job itself. On tiny Wan 2.1 from configs, on the
CPU, where the frames are equal bit for bit."""

from __future__ import annotations

import argparse
import logging
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from contentgen.cli.pool import _clips
from contentgen.errors import InvalidInput, TransientError
from contentgen.providers.base import LoraWeights, MemoryCheckpoint, VideoRequest
from contentgen.providers.cluster.generation import pipelines, video_state
from contentgen.providers.cluster.generation.pool import DrawRequest, Pool, PoolClient, serve
from contentgen.providers.cluster.generation.video import ClusterVideoGenerator
from tests.harness.cluster import request as clip_request
from tests.holding_proxy import HoldingProxy

from .cluster_models import device, refuse_hubs, tiny_lora, tiny_wan

pytestmark = pytest.mark.cluster_models

STEPS = 4
T2V = "Wan2.1-T2V-1.3B-Diffusers"


@pytest.fixture(scope="module")
def models_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    torch.set_num_threads(1)  # 2 shared cores
    root = tmp_path_factory.mktemp("models")
    tiny_wan(root / T2V)
    return root


@pytest.fixture
def pool(models_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Pool]]:
    """`contentgen pool --model Wan2.1-T2V-1.3B-Diffusers`'s pool (cli/pool.py), its states kept
    after every step, served on a free port of this machine."""
    connect = socket.socket.connect
    refuse_hubs(monkeypatch)

    def loopback_only(sock: socket.socket, address: object) -> None:  # the pool's, on this machine
        assert sock.family == socket.AF_UNIX or address[0] == "127.0.0.1", address  # type: ignore[index]
        connect(sock, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", loopback_only)
    for name, value in {
        "CONTENTGEN_CLUSTER_MODELS_DIR": str(models_root),
        "CONTENTGEN_CLUSTER_DEVICE": device(),
        "CONTENTGEN_CLUSTER_INFERENCE_STEPS": str(STEPS),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(ClusterVideoGenerator, "__init__", _every_step(ClusterVideoGenerator.__init__))
    pipelines.release()
    args = argparse.Namespace(model=T2V, routing="affinity")
    running = _clips(args, tmp_path / "pool", "wan-1.3b-t2v", "480p").start()
    _until(lambda: running.status()["state"] == "warm")
    server = serve(running, "127.0.0.1", 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", running
    server.shutdown()
    server.server_close()


def _every_step(init):  # type: ignore[no-untyped-def]
    def init_keeping_every_step(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        init(self, *args, **{**kwargs, "checkpoint_steps": 1})

    return init_keeping_every_step


def _until(check, what: str = "the pool did not get warm") -> None:  # type: ignore[no-untyped-def]
    import time

    deadline = time.monotonic() + 300  # a hang guard
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def clip(generator: ClusterVideoGenerator, req: VideoRequest, work: Path, seen: list[float] | None = None):
    work.mkdir(parents=True, exist_ok=True)
    return generator.generate_video(req, work, (seen if seen is not None else []).append, MemoryCheckpoint())


def frames(folder: Path) -> np.ndarray:
    with np.load(folder / video_state.FRAMES) as stored:
        return np.asarray(stored["frames"])


def test_a_pooled_clip_is_its_own_jobs_and_the_model_loads_once(
    models_root: Path, tmp_path: Path, pool: tuple[str, Pool], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, _ = pool
    lora = tiny_lora(models_root / T2V, tmp_path / "lora.safetensors")
    cases = {
        "plain": {},
        "lora": {"loras": (LoraWeights(url=lora.resolve().as_uri(), scale=0.8),)},
    }
    loads = pipelines.loads
    client = ClusterVideoGenerator(tmp_path / "no-models", inference_steps=STEPS, pool_url=url)
    pooled: dict[str, np.ndarray] = {}
    for name, changes in cases.items():
        seen: list[float] = []
        out = clip(
            client, clip_request(tmp_path, f"pooled-{name}", owner="alice", **changes), tmp_path / name, seen
        )
        assert out.path.is_file() and out.gpu_seconds and out.gpu_seconds > 0 and out.seed == 7
        # the Job's store holds what its own Job leaves: the request, the frames and their record
        assert sorted(p.name for p in (tmp_path / f"pooled-{name}").iterdir()) == [
            "frames.json",
            "frames.npz",
            "request.json",
        ]
        assert seen == sorted(seen) and seen[-1] == 100 and len([p for p in seen if 15 < p <= 85]) == STEPS
        pooled[name] = frames(tmp_path / f"pooled-{name}")
    assert pipelines.loads == loads  # loaded once, at the pool's start
    status = PoolClient(url).status()
    assert status["state"] == "warm" and status["requests"] == 2 and status["drawn"] == 2
    assert status["busySeconds"] > 0 and not list((tmp_path / "pool" / "pictures").iterdir())

    local = ClusterVideoGenerator(models_root, device=device(), inference_steps=STEPS)
    for name, changes in cases.items():
        pipelines.release()  # a new process's load
        clip(local, clip_request(tmp_path, f"fresh-{name}", **changes), tmp_path / f"fresh-{name}-work")
        assert np.array_equal(frames(tmp_path / f"fresh-{name}"), pooled[name]), name
    assert not np.array_equal(pooled["plain"], pooled["lora"])  # the LoRA was there


def test_a_pool_cut_mid_clip_leaves_its_state_in_the_jobs_store_and_the_retry_resumes_from_it(
    models_root: Path,
    tmp_path: Path,
    pool: tuple[str, Pool],
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, _ = pool
    port = int(url.rsplit(":", 1)[1])
    proxy = HoldingProxy(("127.0.0.1", port)).start()
    store = tmp_path / "made"

    def cut_after_a_state(percent: float) -> None:
        if [n for n in (store.iterdir() if store.is_dir() else ()) if n.name.endswith(".pt")]:
            proxy.stop()  # the pool's pod is gone, with its connections

    first = ClusterVideoGenerator(tmp_path / "no-models", inference_steps=STEPS, pool_url=proxy.endpoint)
    first_try = clip_request(tmp_path, owner="alice")
    (tmp_path / "attempt-1").mkdir()
    with pytest.raises(TransientError) as cut:
        first.generate_video(first_try, tmp_path / "attempt-1", cut_after_a_state, MemoryCheckpoint())
    assert cut.value.reason == "ProviderUnreachable"
    states = sorted(p.name for p in store.iterdir() if p.suffix == ".pt")
    assert states and "frames.npz" not in {p.name for p in store.iterdir()}
    # a killed pod's drawing ends with it; this pool, a thread of this process, ends the cut clip
    # at its next step (its client gone) and keeps nothing of it: only then is its pipeline free
    _until(lambda: not list((tmp_path / "pool" / "pictures").iterdir()), "the pool drew on after the cut")

    # the retry: its own Job this time (the chart's pool gone), from the state the pool kept
    caplog.set_level(logging.INFO, "contentgen.providers.cluster.generation.video")
    own = ClusterVideoGenerator(models_root, device=device(), inference_steps=STEPS)
    clip(own, clip_request(tmp_path, owner="alice"), tmp_path / "attempt-2")
    assert "resumed from" in caplog.text
    whole = ClusterVideoGenerator(models_root, device=device(), inference_steps=STEPS)
    clip(whole, clip_request(tmp_path, "uninterrupted"), tmp_path / "attempt-3")
    assert np.array_equal(frames(store), frames(tmp_path / "uninterrupted"))


def test_a_pool_draws_only_its_own_models_clips(tmp_path: Path, pool: tuple[str, Pool]) -> None:
    _, running = pool
    picture = DrawRequest("alice", "a cat", 64, 64, 2, 3.5, "auto", (), ((1, 7),))
    with pytest.raises(InvalidInput, match=re.escape(f"this pool denoises {T2V}'s clips, not pictures")):
        running.drawer(picture, (), tmp_path, lambda: False)


def test_a_pool_that_cannot_load_its_model_exits_saying_why(tmp_path: Path) -> None:
    """A staged directory with every part named but none loadable: the pool listens (its status
    says loading), its warm-up fails, and the process exits 1 with the reason in one line, so its
    pod restarts with the reason in its log rather than stay unready with nothing said."""
    import os
    import subprocess
    import sys

    broken = tmp_path / "models" / T2V
    for part in ("scheduler", "text_encoder", "tokenizer", "transformer", "vae"):
        (broken / part).mkdir(parents=True)
    (broken / "model_index.json").write_text("{}")
    env = {
        **os.environ,
        "CONTENTGEN_CLUSTER_MODELS_DIR": str(tmp_path / "models"),
        "CONTENTGEN_CLUSTER_DEVICE": "cpu",
        "HF_HUB_OFFLINE": "1",
    }
    command = [sys.executable, "-m", "contentgen", "pool", "--model", T2V, "--host", "127.0.0.1"]
    done = subprocess.run(
        [*command, "--port", "0", "--work-dir", str(tmp_path / "work")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith(f"contentgen pool: could not load {T2V}: "), done.stderr[-2000:]
