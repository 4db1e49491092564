"""provider: cluster's LoRA trainer on the tiny FLUX: checkpoints, a process killed mid-training
(SIGKILL, as a node loss), its retry resuming from the last checkpoint without redoing a step,
and the result the same as an uninterrupted training's."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest
import torch

from contentgen.api.lora.plan import plan_for
from contentgen.errors import InvalidInput, ModelNotFound
from contentgen.providers import trainer
from contentgen.providers.base import MemoryCheckpoint, TrainingRequest
from contentgen.providers.cluster.files import FolderFiles
from contentgen.providers.cluster.generation import lora_files
from contentgen.providers.cluster.training import adapters, loop, state
from contentgen.providers.cluster.training.plan import Plan

from .conftest import DEVICE
from .jobs import job
from .lora_weights import TOLERANCE, apart
from .tiny_flux import pictures
from .train_worker import PLAN, examples

pytestmark = pytest.mark.cluster_models
ROOT = Path(__file__).resolve().parents[2]


def test_checkpoint_steps_are_every_n_and_the_last():
    assert Plan(steps=10, checkpoint_every=4).checkpoint_steps() == [4, 8, 10]
    assert Plan(steps=10).checkpoint_steps() == [10]
    assert state.latest_state(["step-000002.pt", "step-000010.pt", "step-000004.safetensors"]) == (
        10,
        "step-000010.pt",
    )
    assert state.latest_state(["step-000004.safetensors"]) is None


def test_killed_training_resumes_from_its_last_checkpoint(models_root, tmp_path):
    model = models_root / "FLUX.1-dev"
    killed, checkpoints = tmp_path / "killed", tmp_path / "checkpoints"
    killed.mkdir()
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.cluster.train_worker",
            str(model),
            str(killed),
            str(checkpoints),
            "3",
            "flux.1",
        ],
        cwd=ROOT,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    try:
        deadline = time.monotonic() + 300
        while not (killed / "stalled").exists():
            assert worker.poll() is None, f"the training process ended early ({worker.returncode})"
            assert time.monotonic() < deadline, "the training process did not reach step 3 in 300 s"
            time.sleep(0.2)
    finally:
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=60)
    assert worker.returncode == -signal.SIGKILL
    # step 2 was stored (state, then its LoRA); step 3 ran and was lost with the process
    assert FolderFiles(checkpoints).names() == ["step-000002.pt", "step-000002.safetensors"]

    resumed_dir = tmp_path / "resumed"
    resumed_dir.mkdir()
    resumed = loop.train(job(model, examples(resumed_dir), PLAN, resumed_dir, FolderFiles(checkpoints)))
    assert (resumed.resumed_from, resumed.steps_run) == (2, 2)  # steps 3 and 4, never 1 and 2 again
    assert resumed.seconds_before > 0  # the killed process's time up to step 2, which it never reported
    assert [s.step for s in resumed.checkpoints] == [2, 4]
    assert FolderFiles(checkpoints).names() == [
        "step-000002.pt",
        "step-000002.safetensors",
        "step-000004.pt",
        "step-000004.safetensors",
    ]

    whole_dir = tmp_path / "whole"
    whole_dir.mkdir()
    whole = loop.train(job(model, examples(whole_dir), PLAN, whole_dir, FolderFiles(tmp_path / "w")))
    assert (whole.resumed_from, whole.steps_run, whole.seconds_before) == (0, 4, 0.0)
    assert apart(lora_files.load(resumed.final), lora_files.load(whole.final)) <= TOLERANCE
    # and the training did something: the LoRA's up weights left their zero start... or moved
    first = lora_files.load(checkpoints / "step-000002.safetensors")
    assert apart(first, lora_files.load(resumed.final)) > TOLERANCE

    again = loop.train(job(model, examples(resumed_dir), PLAN, resumed_dir, FolderFiles(checkpoints)))
    assert again.steps_run == 0  # a retry after the last step trains nothing
    assert apart(lora_files.load(again.final), lora_files.load(resumed.final)) <= TOLERANCE


def _dataset(folder: Path) -> Path:
    archive = folder / "dataset.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path, caption in pictures(folder / "pictures"):
            zf.write(path, f"images/{path.stem}.png")
            zf.writestr(f"captions/{path.stem}.txt", caption)
    return archive


def test_the_provider_trains_a_diffusers_format_lora(models_root, tmp_path):
    env = {"CONTENTGEN_CLUSTER_MODELS_DIR": str(models_root), "CONTENTGEN_CLUSTER_DEVICE": DEVICE}
    provider = trainer("cluster", env=env)
    seen: list[float] = []
    request = TrainingRequest(
        dataset_zip=_dataset(tmp_path),
        trigger_word="sks",
        checkpoints=FolderFiles(tmp_path / "stored"),
        plan=plan_for(
            app="fal-ai/flux-lora-fast-training", steps=2, rank=4, resolution=64, checkpoint_every=1
        ),
    )
    out = provider.train_lora(request, tmp_path, seen.append, MemoryCheckpoint())
    tensors = lora_files.load(out.weights)
    assert lora_files.key_format(tensors) == "diffusers"
    assert all(t.shape[0] == 4 or t.shape[1] == 4 for t in tensors.values())  # rank 4
    assert [c.step for c in out.checkpoints] == [1, 2]
    assert out.gpu_seconds > 0 and seen[-1] == 100
    assert out.request_id.startswith("cluster-")
    # a retry of the same training (its checkpoints in the same place) reports under the same id,
    # counted once; the same inputs trained again for another version under another
    again = provider.train_lora(
        replace(request, checkpoints=FolderFiles(tmp_path / "stored")),
        tmp_path / "a",
        seen.append,
        MemoryCheckpoint(),
    )
    other = provider.train_lora(
        replace(request, checkpoints=FolderFiles(tmp_path / "v2")),
        tmp_path / "b",
        seen.append,
        MemoryCheckpoint(),
    )
    assert again.request_id == out.request_id != other.request_id


def test_a_missing_model_or_optimizer_is_a_clear_error(models_root, tmp_path, monkeypatch):
    env = {"CONTENTGEN_CLUSTER_MODELS_DIR": str(models_root), "CONTENTGEN_CLUSTER_DEVICE": DEVICE}
    request = TrainingRequest(
        dataset_zip=tmp_path / "none.zip", trigger_word="sks", plan=plan_for(app="FLUX.1-pro", steps=1)
    )
    with pytest.raises(ModelNotFound, match=r"FLUX\.1-pro"):
        trainer("cluster", env=env).train_lora(request, tmp_path, lambda _: None, MemoryCheckpoint())
    with monkeypatch.context() as without:  # a worker without bitsandbytes (the GPU image has it)
        without.setitem(sys.modules, "bitsandbytes.optim.adamw", None)
        with pytest.raises(InvalidInput, match=r"training\.optimizer adamw8bit needs bitsandbytes"):
            adapters.optimizer(Plan(steps=1, optimizer="adamw8bit"), [])
    with pytest.raises(InvalidInput, match="CONTENTGEN_GPU_COUNT"):
        trainer("cluster", env={**env, "CONTENTGEN_GPU_COUNT": "zero"})


def test_checkpoints_go_to_the_store_once_under_the_version(models_root, tmp_path):
    """The pipeline's adapter (pipeline.context.StoreFiles): the states and LoRAs land write-once
    under loras/{owner}/{uid}/v{n}/checkpoints/, and a retry after the last step finds them."""
    from contentgen.errors import ContentgenError
    from contentgen.pipeline.context import StoreFiles
    from contentgen.store import keys
    from contentgen.store.local import LocalStore

    store = LocalStore(tmp_path / "store")
    prefix = keys.lora_version("alice", "uid-1", 3) + "checkpoints/"
    files = StoreFiles(store, prefix)
    plan = Plan(steps=2, rank=4, resolution=64, checkpoint_every=1)
    model = models_root / "FLUX.1-dev"
    first = loop.train(job(model, examples(tmp_path / "a"), plan, tmp_path, files))
    assert [s.lora for s in first.checkpoints] == [store.uri(prefix + state.lora_name(n)) for n in (1, 2)]
    assert files.names() == [f"step-00000{n}.{ext}" for n in (1, 2) for ext in ("pt", "safetensors")]
    retry_dir = tmp_path / "retry"
    retry_dir.mkdir()
    retry = loop.train(job(model, examples(tmp_path / "b"), plan, retry_dir, files))
    assert retry.steps_run == 0 and retry.final.read_bytes() == first.final.read_bytes()
    other = tmp_path / "other"
    other.write_bytes(b"other bytes")
    with pytest.raises(ContentgenError) as refused:
        files.put(state.lora_name(2), other)
    assert refused.value.reason == "ObjectExists"


class Stopped(BaseException):
    """The training's process ending where the test says."""


def test_the_8bit_optimizer_trains_and_a_retry_resumes_it(models_root, tmp_path):
    """training.optimizer adamw8bit: bitsandbytes' AdamW8bit (here on the CPU) keeps its moments in
    8 bits (a LoRA of rank 128: tensors of 4096 values and more, which it quantises), they go into
    the stored state, and a training stopped after its step-2 checkpoint ends, resumed, where an
    uninterrupted one ends."""
    import bitsandbytes

    plan = Plan(steps=4, rank=128, resolution=64, checkpoint_every=2, optimizer="adamw8bit")
    model = models_root / "FLUX.1-dev"
    assert isinstance(
        adapters.optimizer(plan, [torch.nn.Parameter(torch.zeros(1))]), bitsandbytes.optim.AdamW8bit
    )
    whole = loop.train(
        job(model, examples(tmp_path / "w"), plan, tmp_path / "w", FolderFiles(tmp_path / "ws"))
    )
    state = torch.load(tmp_path / "ws" / "step-000004.pt", weights_only=True)
    # bitsandbytes keeps its quantised moments under its own key of each parameter's state
    quantised = [s["__bnb_optimizer_quant_state__"] for s in state["optimizer"]["state"].values()]
    moments = [q[k] for q in quantised for k in ("state1", "state2")]
    assert moments and all(m.dtype == torch.uint8 for m in moments)
    first = lora_files.load(tmp_path / "ws" / "step-000002.safetensors")
    assert apart(first, lora_files.load(whole.final)) > TOLERANCE

    def stop_at_3(step: int, steps: int) -> None:
        if step == 3:
            raise Stopped

    stored = FolderFiles(tmp_path / "rs")
    with pytest.raises(Stopped):
        loop.train(job(model, examples(tmp_path / "a"), plan, tmp_path / "a", stored), stop_at_3)
    resumed = loop.train(job(model, examples(tmp_path / "b"), plan, tmp_path / "b", stored))
    assert (resumed.resumed_from, resumed.steps_run) == (2, 2)
    assert apart(lora_files.load(resumed.final), lora_files.load(whole.final)) <= TOLERANCE
