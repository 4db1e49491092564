"""provider cluster's training on several processes (distributed.py), on the CPU with gloo, as
torchrun starts them in a Job's pod: a training by two processes is the training one process does on
the whole batch, whatever the family, and a state stored by two goes on at one and at four.

- The tiny FLUX: two processes learn from a batch of 4 (two samples each, their gradients summed
  over the two): the first step's gradient is the same on both ranks, bit for bit, and one
  process's on the same 4 samples to float rounding (the sum's order differs: 1e-6 of each tensor);
  after the steps, both hold the same LoRA, bit for bit. Stopped after step 2 of 4, its state goes
  on at one process and at four, each to the LoRA a continuous one-process training gives, to
  TOLERANCE of each tensor's size (the reductions' order differs with the world size).
- The tiny Wan 2.2 pair: two processes, each sample routed to the expert its timestep owns (a
  rank's samples may reach one expert only), give both experts' first gradients and LoRAs one
  process gives, as FLUX's do.
- Every checkpoint file is written once, by rank 0; the other ranks write nothing.
- One process's gradient accumulated over 3 samples is the gradient of the 3 in one batch.
- A newer picture family (the tiny Z-Image, families/pictures.py) and LTX-2's video family (the
  tiny LTX-2, families/ltx2_training.py, from clips): two processes give the LoRA one process gives,
  as FLUX's do (their runs marked slow: about 40 CPU-s more each).
- The video families' clips are H.264 that contentgen/h264.py encodes to the same bytes every time.
  Before it, x264 made one of several encodings of the same 64-pixel frames, so the two trainings,
  each encoding its own dataset, learned from pictures a few levels apart in some runs: LTX-2's
  first gradients 1e-4 to 1e-3 off one run in five, Wan's pair 2.6e-3 one run in three.

The torchrun runs cost about 20 CPU-s per process (their imports), so there are three: two
processes for each family, and four for FLUX's state going on."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from contentgen.api.base_models import base_model
from contentgen.errors import InvalidInput
from contentgen.providers.cluster.files import FolderFiles
from contentgen.providers.cluster.generation import flux
from contentgen.providers.cluster.training import distributed, loop
from contentgen.providers.cluster.training.plan import Plan

from .conftest import DEVICE
from .ddp_worker import record
from .ddp_worker import train as train_here
from .jobs import job
from .lora_weights import apart
from .tiny_ltx2 import tiny_ltx2
from .tiny_z_image import tiny_z_image
from .train_worker import examples

pytestmark = [pytest.mark.cluster_models, pytest.mark.timeout(900)]
ROOT = Path(__file__).resolve().parents[2]
STEPS, BATCH = 4, 4
PAIR = "wan-2.2-t2v-a14b"
TOLERANCE = 1e-4  # of each tensor's largest value: another world size sums in another order


def _torchrun(
    processes: int, models: Path, out: Path, checkpoints: Path, stop: int = 0, base: str = "flux.1"
) -> None:
    out.mkdir(parents=True, exist_ok=True)
    args = [str(models), str(out), str(checkpoints), str(STEPS), str(BATCH), str(stop), base]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            f"--nproc-per-node={processes}",
            "-m",
            "tests.cluster.ddp_worker",
            *args,
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "CONTENTGEN_CLUSTER_MODELS_DIR": str(models),
            "CONTENTGEN_WORK_DIR": str(out),
            "HF_HUB_OFFLINE": "1",
            "OMP_NUM_THREADS": "1",
        },
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-4000:]


def _lora(out: Path, rank: int = 0, expert: int = 0) -> dict[str, torch.Tensor]:
    loras: list[dict[str, torch.Tensor]] = torch.load(out / f"lora-{rank}.pt")
    return loras[expert]


def _grads(out: Path, rank: int = 0) -> list[torch.Tensor]:
    """The first step's gradients of every expert that stepped, in the experts' order."""
    grads: dict[str, list[torch.Tensor]] = torch.load(out / f"grads-{rank}.pt")
    return [g for name in sorted(grads) for g in grads[name]]


def _relative(a: torch.Tensor, b: torch.Tensor) -> float:
    scale = max(a.abs().max().item(), b.abs().max().item())
    return (a - b).abs().max().item() / scale if scale else 0.0


def test_each_rank_computes_its_share_of_the_batch():
    shares = [distributed.share(10, distributed.World(rank=r, size=4)) for r in range(4)]
    assert [list(s) for s in shares] == [[0, 1, 2], [3, 4, 5], [6, 7], [8, 9]]
    with pytest.raises(InvalidInput, match=r"training\.batchSize 2 is less than the 4 processes"):
        distributed.share(2, distributed.World(rank=0, size=4))


def test_torchrun_runs_the_worker_in_every_process_of_the_pod():
    one_node = distributed.command(["--spec", "s.json"], {"PET_NPROC_PER_NODE": "8"})
    assert one_node[1:] == [
        "-m",
        "torch.distributed.run",
        "--nproc-per-node=8",
        "--standalone",
        "--max-restarts=0",
        "-m",
        "contentgen",
        "worker",
        "--spec",
        "s.json",
    ]
    # across nodes the rest comes from the PET_* variables JobSet's and Trainer's pods carry
    several = distributed.command([], {"PET_NPROC_PER_NODE": "4", "PET_NNODES": "2"})
    assert "--standalone" not in several and "--nproc-per-node=4" in several
    assert distributed.asked({}) == (1, 1)


@pytest.mark.skipif(DEVICE != "cpu", reason="gloo between CPU processes")
def test_two_processes_train_as_one_and_go_on_at_one_and_at_four(models_root, tmp_path, monkeypatch):
    # one process, the whole training: the reference
    alone = tmp_path / "alone"
    alone.mkdir()
    record(alone, 0, monkeypatch.setattr)
    train_here(models_root, alone, alone / "checkpoints", STEPS, BATCH)

    # two processes, stopped after step 2 (a watch's stop, said to both)
    two, stored = tmp_path / "two", tmp_path / "stored-at-two"
    _torchrun(2, models_root, two, stored, stop=2)
    first_0, first_1 = _grads(two, 0), _grads(two, 1)
    assert all(torch.equal(a, b) for a, b in zip(first_0, first_1, strict=True))  # summed over both
    assert max(_relative(a, b) for a, b in zip(first_0, _grads(alone), strict=True)) < 1e-5
    held_0, held_1 = _lora(two, 0), _lora(two, 1)
    assert all(torch.equal(held_0[k], held_1[k]) for k in held_0)  # the same LoRA on both ranks
    assert json.loads((two / "puts.json").read_text()) == {"step-000002.pt": 1, "step-000002.safetensors": 1}
    assert sorted(p.name for p in (two / "rank-1").iterdir()) == ["dataset.zip", "examples"]  # wrote nothing
    assert FolderFiles(stored).names() == ["step-000002.pt", "step-000002.safetensors"]

    # its state goes on at one process and at four, to the continuous training's LoRA
    at_one, at_four = tmp_path / "one", tmp_path / "four"
    shutil.copytree(stored, at_one / "checkpoints")
    record(at_one, 0, monkeypatch.setattr)
    resumed = train_here(models_root, at_one, at_one / "checkpoints", STEPS, BATCH)
    assert (resumed.details["resumedAfterStep"], resumed.details["stepsRun"]) == (2, 2)
    shutil.copytree(stored, at_four / "checkpoints")
    _torchrun(4, models_root, at_four, at_four / "checkpoints")
    assert json.loads((at_four / "details.json").read_text())["resumedAfterStep"] == 2
    written = {"step-000004.pt": 1, "step-000004.safetensors": 1}
    assert json.loads((at_four / "puts.json").read_text()) == written
    continuous = _lora(alone)
    assert apart(continuous, _lora(at_one)) <= TOLERANCE
    assert apart(continuous, _lora(at_four)) <= TOLERANCE
    assert all(torch.equal(_lora(at_four, 0)[k], _lora(at_four, 3)[k]) for k in continuous)


@pytest.mark.skipif(DEVICE != "cpu", reason="gloo between CPU processes")
def test_two_processes_train_a_wan_pair_as_one(wan_root, tmp_path, monkeypatch):
    alone = tmp_path / "alone"
    alone.mkdir()
    record(alone, 0, monkeypatch.setattr)
    train_here(wan_root, alone, alone / "checkpoints", STEPS, BATCH, base=PAIR)
    two = tmp_path / "two"
    _torchrun(2, wan_root, two, two / "checkpoints", base=PAIR)
    grads = torch.load(two / "grads-0.pt")
    assert set(grads) == {"high", "low"}  # a batch of 4 reached both experts in its first step
    assert max(_relative(a, b) for a, b in zip(_grads(two), _grads(alone), strict=True)) < 1e-5
    for expert in (0, 1):
        assert all(torch.equal(v, _lora(two, 1, expert)[k]) for k, v in _lora(two, 0, expert).items())
        assert apart(_lora(alone, 0, expert), _lora(two, 0, expert)) <= TOLERANCE
    written = {
        f"step-00000{n}{end}": 1 for n in (2, 4) for end in (".pt", ".safetensors", "-low-noise.safetensors")
    }
    assert json.loads((two / "puts.json").read_text()) == written


def test_accumulated_samples_give_the_gradient_of_one_batch(models_root, tmp_path):
    plan = Plan(steps=1, rank=4, resolution=64, batch=3, max_grad_norm=0.0)
    run = loop.Run.begin(job(models_root / "FLUX.1-dev", examples(tmp_path), plan, tmp_path))
    model, on = run.model, run.job.on
    [expert] = model.experts
    samples = [model.sample(run.generator) for _ in range(plan.batch)]
    for sample in samples:  # as a step does: each sample's backward, weighted, accumulated
        (model.loss(sample, expert) / plan.batch).backward()
    accumulated = [p.grad.clone() for p in expert.params]
    expert.optimizer.zero_grad(set_to_none=True)

    # the same samples in one batch through the transformer
    draws = [s.drawn for s in samples]  # (example, noise, sigma, timestep)
    x0 = torch.cat([model.latents[index] for index, *_ in draws])
    noise = torch.cat([d[1] for d in draws]).to(on.where)
    sigma = torch.stack([d[2] for d in draws]).view(-1, 1, 1, 1).to(on.where)
    timestep = torch.stack([d[3] for d in draws]).to(on.where)
    embeds = torch.cat([model.texts[d[0]][0] for d in draws])
    pooled = torch.cat([model.texts[d[0]][1] for d in draws])
    height, width = x0.shape[-2:]
    prediction = expert.transformer(
        hidden_states=flux.pack(((1.0 - sigma) * x0 + sigma * noise).to(on.dtype)),
        timestep=(timestep / 1000).to(on.dtype),
        guidance=torch.full((plan.batch,), plan.guidance, device=on.where, dtype=on.dtype),
        pooled_projections=pooled,
        encoder_hidden_states=embeds,
        txt_ids=model.texts[0][2],
        img_ids=flux.image_ids(height, width, on),
        return_dict=False,
    )[0]
    torch.nn.functional.mse_loss(flux.unpack(prediction, height, width).float(), noise - x0).backward()
    batched = [p.grad.clone() for p in expert.params]
    assert len({d[0] for d in draws}) > 1 or len({float(d[2]) for d in draws}) > 1  # not one sample
    assert max(_relative(a, b) for a, b in zip(accumulated, batched, strict=True)) < 1e-5


@pytest.mark.slow
@pytest.mark.parametrize(
    ("base", "build"), [("z-image-turbo", tiny_z_image), ("ltx-2", tiny_ltx2)], ids=["z-image", "ltx-2"]
)
def test_two_processes_train_a_newer_family_s_lora_as_one(tmp_path, monkeypatch, base, build):
    models = tmp_path / "models"
    build(models / base_model(base).cluster_dir)
    alone = tmp_path / "alone"
    alone.mkdir()
    record(alone, 0, monkeypatch.setattr)
    train_here(models, alone, alone / "checkpoints", STEPS, BATCH, base=base)
    two = tmp_path / "two"
    _torchrun(2, models, two, two / "checkpoints", base=base)
    assert max(_relative(a, b) for a, b in zip(_grads(two), _grads(alone), strict=True)) < 1e-5
    assert all(torch.equal(v, _lora(two, 1)[k]) for k, v in _lora(two, 0).items())  # the ranks agree
    assert apart(_lora(alone), _lora(two)) <= TOLERANCE
    written = {f"step-00000{n}{end}": 1 for n in (2, 4) for end in (".pt", ".safetensors")}
    assert json.loads((two / "puts.json").read_text()) == written  # rank 0 wrote each once
