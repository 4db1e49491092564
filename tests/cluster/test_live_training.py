"""Likeness in the loop on the real trainer (the tiny FLUX, docs/cluster-training.md#stopping-early):
each checkpoint is scored as soon as it is stored, with pictures the training itself draws between
its steps (replaced by photographs per checkpoint, live_pictures.py: the tiny FLUX draws no face).

- A likeness that peaks at step 40 of 100 and stays there (another person at 20, the subject from
  40 on) with `likenessPlateau: {patience: 2}`: the training stops at step 80, two checkpoints past
  its peak; its model is step 40's LoRA; it ran (and its loss and bill hold) 80 steps, and says what
  the 20 steps and one checkpoint's pictures not made saved. Its first process is SIGKILLed while it
  draws step 60's pictures; the Job's retry resumes the loop: no picture is drawn twice, no
  checkpoint scored twice (20 and 40 are read from the store), no stored key written twice.
- A person stops a run (its stop file, as `contentgen assets stop` writes it) after step 50: it ends
  Succeeded at that step boundary with its best checkpoint so far; a stop before any checkpoint ends
  Failed, StoppedBeforeCheckpoint, billed for the steps it ran.
- A version goes on from the stopped one for 100 more steps (training.continueFrom): steps 51-150,
  its loss curve joining the first's, its lineage naming it; another rank is refused in one line
  before anything is fetched."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from contentgen.api import RunResult
from contentgen.cli.main import main
from tests.harness.stores import CountingStore
from tests.run.checkpoint_pictures import manifest

from .live_pictures import PLATEAU, drawn, install, install_clips

pytestmark = pytest.mark.cluster_models
ROOT = Path(__file__).resolve().parents[2]
PROMPTS = 6  # likeness-v1, one seed


def spec_of(path: Path, **training: Any) -> Path:
    """The manifest with training settings added."""
    doc = yaml.safe_load(path.read_text())
    doc["spec"]["training"].update(training)
    path.write_text(yaml.safe_dump(doc))
    return path


def counting_store(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> CountingStore:
    store = CountingStore(workspace / "contentgen-data" / "store")
    monkeypatch.setattr("contentgen.store.open_store", lambda url, **_: store)
    return store


def run(workspace: Path, *args: str) -> int:
    return main(["run", "--source", str(workspace / "subject.mp4"), *args])


def stored(uri: str) -> bytes:
    return Path(uri.removeprefix("file://")).read_bytes()


def test_a_plateau_stops_the_training_and_a_killed_pod_resumes_its_loop(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    lora = spec_of(
        manifest(workspace / "lora.yaml", every=20, checkpoints=5),
        stopWhen={"likenessPlateau": {"patience": 2}},
    )
    log = workspace / "drawn.log"
    # the first process: killed while it draws step 60's pictures (after the baseline's, 20's, 40's)
    stall = PROMPTS + 2 * PROMPTS + 2
    killed_at_its_stall(workspace, lora, log, stall, 600, "pictures")
    first = drawn(log)
    assert len(first) == stall
    store = counting_store(workspace, monkeypatch)
    before = {info.key: info.size_bytes for info in store.list("")}
    scored: list[int] = []
    from contentgen.pipeline.likeness import watch

    score = watch.LikenessWatch._scored

    def counted(self: Any, step: int, *rest: Any) -> Any:
        scored.append(step)
        return score(self, step, *rest)

    monkeypatch.setattr(watch.LikenessWatch, "_scored", counted)
    reports: list[tuple[int, int]] = []  # (step, checkpoints scored) as the live view was told
    from contentgen.pipeline import live

    report = live.LocalLive.report

    def told(self: Any, training: Any, *, now_: bool = False) -> None:
        reports.append((training.step, len(training.checkpoints)))
        report(self, training, now_=now_)

    monkeypatch.setattr(live.LocalLive, "report", told)
    install(PLATEAU, log, monkeypatch=monkeypatch)
    capsys.readouterr()
    assert run(workspace, "--result", "r.json", str(lora)) == 0, capsys.readouterr().err

    # the loop resumed: the checkpoints scored before the kill read back, never scored again
    assert scored == [60, 80]
    every = drawn(log)
    assert len(every) == len(set(every)) == 4 * PROMPTS + PROMPTS  # each picture drawn once, ever
    result = RunResult.model_validate_json((workspace / "r.json").read_text())
    assert result.lora is not None and result.lora.likeness is not None
    version, likeness, stop = result.lora, result.lora.likeness, result.lora.stopped
    # stopped at 80, two checkpoints past its peak at 40 (patience 2); the model is 40's LoRA
    assert stop is not None and (stop.how, stop.step, stop.planned_steps, stop.steps_saved) == (
        "plateau",
        80,
        100,
        20,
    )
    assert "bettered step 40's (good" in stop.why
    assert stop.gpu_seconds_saved is not None and stop.gpu_seconds_saved > 0
    assert stop.saved_usd is not None and stop.saved_usd > 0  # at the price table's GPU-hour price
    assert [(p.step, p.verdict, p.chosen) for p in likeness.checkpoints] == [
        (20, "poor", False),
        (40, "good", True),
        (60, "good", False),
        (80, "good", False),
    ]
    assert (likeness.chosen_step, likeness.final_step, version.chosen_step) == (40, 80, 40)
    prefix = f"loras/demo/{result.uid}/v1/"
    assert stored(version.model_uri) == store.get_bytes(f"{prefix}checkpoints/step-000040.safetensors")
    assert version.final_model_uri == store.uri(f"{prefix}checkpoints/step-000080.safetensors")
    assert version.state_uri == store.uri(f"{prefix}checkpoints/step-000080.pt")
    assert not store.exists(f"{prefix}checkpoints/step-000100.pt")  # steps 81-100 never ran
    # billed for the steps it ran: its loss (and its GPU time's line) stop at 80, as its config asked 100
    losses = json.loads(stored(version.loss_uri))["steps"]
    assert [step for step, _ in losses] == list(range(1, 81))
    usage = result.usage or []
    assert len([line for line in usage if line.item == "lora-training"]) == 1
    pictures = [line for line in usage if line.item == "likeness-evaluation"]
    assert len(pictures) == len({line.request for line in pictures}) == 4 * PROMPTS + PROMPTS
    # the live view grew while the run went on, a checkpoint at a time
    counts = [n for _, n in reports]
    assert counts == sorted(counts) and {2, 3, 4} <= set(counts)
    assert any(step < 80 for step, n in reports if n == 3)
    # no stored key written twice, nor one the killed process wrote written again
    assert store.outputs_written_twice() == {}
    assert [key for key in store.writes if key in before] == []


def test_a_stop_keeps_the_best_checkpoint_so_far_and_a_version_goes_on_from_it(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from contentgen.pipeline import live
    from contentgen.pipeline.settings import PipelineSettings
    from contentgen.pipeline.training_controls import ask_local_stop
    from contentgen.providers.cluster.training import loop

    log = workspace / "drawn.log"
    install(PLATEAU, log, monkeypatch=monkeypatch)
    store = counting_store(workspace, monkeypatch)
    monkeypatch.setattr(live._Throttle, "due", lambda self, now_=False: True)  # the stop file read at once
    lora = manifest(workspace / "lora.yaml", every=20)
    uid = None
    step = loop.Run.step

    def stopped_after_50(self: Any, number: int) -> None:  # a person asks, as assets stop does
        step(self, number)
        if number == 50:
            ask_local_stop(PipelineSettings().work_dir, str(uid), 1, by="alice", at=_now())

    monkeypatch.setattr(loop.Run, "step", stopped_after_50)
    from contentgen.pipeline.local_run import local_uid

    uid = local_uid("LoraTraining", "default", "jx")
    assert run(workspace, "--result", "r1.json", str(lora)) == 0, capsys.readouterr().err
    first = RunResult.model_validate_json((workspace / "r1.json").read_text())
    assert first.lora is not None and first.lora.stopped is not None and first.lora.likeness is not None
    stop = first.lora.stopped
    assert (stop.how, stop.by, stop.step, stop.steps_saved) == ("asked", "alice", 50, 50)
    assert [p.step for p in first.lora.likeness.checkpoints] == [20, 40]  # scored before the stop
    assert first.lora.chosen_step == 40 and first.lora.likeness.final_step == 50
    assert first.lora.state_uri.endswith("/v1/checkpoints/step-000040.pt")  # the newest state kept
    monkeypatch.setattr(loop.Run, "step", step)

    # go on from version 1 (its state at step 40, the newest it kept) for 100 more steps
    doc = yaml.safe_load(lora.read_text())
    doc["spec"]["training"]["continueFrom"] = {"version": 1}
    lora.write_text(yaml.safe_dump(doc))
    assert run(workspace, "--result", "r2.json", str(lora)) == 0, capsys.readouterr().err
    second = RunResult.model_validate_json((workspace / "r2.json").read_text())
    assert second.lora is not None and second.lora.continued_from is not None
    went_on = second.lora.continued_from
    assert (went_on.version, went_on.step) == (1, 40) and went_on.state_uri == first.lora.state_uri
    losses = json.loads(stored(second.lora.loss_uri))["steps"]
    assert [s for s, _ in losses] == list(range(1, 141))  # the first's 40, then 41-140
    assert [p.step for p in second.lora.likeness.checkpoints][-1] == 140
    assert json.loads(stored(second.lora.config_uri))["continue_from"] == {"version": 1, "step": 40}
    assert store.outputs_written_twice() == {}

    # another rank: refused in one line, before anything is fetched or trained
    doc["spec"]["training"]["rank"] = 8
    lora.write_text(yaml.safe_dump(doc))
    capsys.readouterr()
    assert run(workspace, str(lora)) != 0
    error = capsys.readouterr().err
    assert "training.continueFrom: version 1 was trained with rank 4 (this spec: 8)" in error


def test_a_stop_before_any_checkpoint_fails_and_bills_the_steps_run(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from contentgen.pipeline import live
    from contentgen.pipeline.local_run import local_uid
    from contentgen.pipeline.settings import PipelineSettings
    from contentgen.pipeline.training_controls import ask_local_stop
    from contentgen.providers.cluster.training import loop

    monkeypatch.setattr(live._Throttle, "due", lambda self, now_=False: True)
    lora = manifest(workspace / "lora.yaml", every=50)
    uid = local_uid("LoraTraining", "default", "jx")
    step = loop.Run.step

    def stopped_after_3(self: Any, number: int) -> None:
        step(self, number)
        if number == 3:
            ask_local_stop(PipelineSettings().work_dir, uid, 1, by="bob", at=_now())

    monkeypatch.setattr(loop.Run, "step", stopped_after_3)
    assert run(workspace, "--result", "r.json", str(lora)) != 0
    assert "StoppedBeforeCheckpoint: the training was stopped after step 3" in capsys.readouterr().err
    failed = json.loads((workspace / "r.json").read_text())
    assert failed["reason"] == "StoppedBeforeCheckpoint"
    [line] = [u for u in failed["usage"] if u["item"] == "lora-training"]
    assert line["quantity"] > 0  # its GPU time, billed


def _now() -> Any:
    from contentgen.api import now

    return now()


def test_a_wan_trainings_clips_plateau_and_a_killed_pod_resumes_its_loop(
    workspace: Path, wan_root: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same loop for a video LoRA (the tiny Wan 2.1, its clips drawn for real between its
    steps, their frames replaced by photographs: live_pictures.install_clips): its first process
    SIGKILLed while it draws step 60's clips, the retry scores no checkpoint twice and draws no clip
    twice; it stops two checkpoints past its best (step 40) and keeps it, its likeness a verdict with
    a number, each checkpoint scored on its clips' frames."""
    monkeypatch.setenv("CONTENTGEN_CLUSTER_MODELS_DIR", str(wan_root))
    lora = spec_of(
        manifest(workspace / "lora.yaml", every=20, checkpoints=5),
        baseModel="wan-2.1-t2v-1.3b",
        stopWhen={"likenessPlateau": {"patience": 2}},
    )
    doc = yaml.safe_load(lora.read_text())
    doc["spec"]["dataset"]["clips"] = {"frames": 5, "maxClips": 2}
    lora.write_text(yaml.safe_dump(doc))
    log = workspace / "drawn.log"
    stall = PROMPTS + 2 * PROMPTS + 2  # the baseline's clips, 20's, 40's and two of 60's
    killed_at_its_stall(workspace, lora, log, stall, 900, "clips", "--clips")
    store = counting_store(workspace, monkeypatch)
    from contentgen.pipeline.likeness import watch

    scored: list[int] = []
    score = watch.LikenessWatch._scored
    monkeypatch.setattr(
        watch.LikenessWatch,
        "_scored",
        lambda self, step, *rest: scored.append(step) or score(self, step, *rest),
    )
    install_clips(PLATEAU, log, monkeypatch=monkeypatch)
    assert run(workspace, "--result", "r.json", str(lora)) == 0, capsys.readouterr().err
    assert scored == [60, 80]  # 20 and 40 read back from the store
    every = drawn(log)
    assert len(every) == len(set(every)) == 4 * PROMPTS + PROMPTS  # each clip drawn once, ever
    result = RunResult.model_validate_json((workspace / "r.json").read_text())
    version = result.lora
    assert version is not None and version.likeness is not None and version.stopped is not None
    likeness, stop = version.likeness, version.stopped
    assert (stop.how, stop.step, version.chosen_step, likeness.chosen_step) == ("plateau", 80, 40, 40)
    assert likeness.verdict == "good" and likeness.median is not None and likeness.median > 0.313
    assert [(p.step, p.verdict) for p in likeness.checkpoints] == [
        (20, "poor"),
        (40, "good"),
        (60, "good"),
        (80, "good"),
    ]
    prefix = f"loras/demo/{result.uid}/v1/"
    assert stored(version.model_uri) == store.get_bytes(f"{prefix}checkpoints/step-000040.safetensors")
    report = json.loads(store.get_bytes(f"{prefix}likeness/step-000040/likeness.json"))
    assert all(len(s["frames"]) == 4 and None not in s["frames"] for s in report["scored"])
    assert store.outputs_written_twice() == {}


def killed_at_its_stall(
    workspace: Path, lora: Path, log: Path, stall: int, seconds: int, what: str, *more: str
) -> None:
    """The watch run in a process of its own (tests/cluster/live_pictures.py), SIGKILLed as it
    stalls drawing its `stall`th picture (step 60's): the pod lost mid-draw."""
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.cluster.live_pictures",
            str(workspace),
            str(lora),
            str(log),
            str(stall),
            *more,
        ],
        cwd=ROOT,
        env={
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        },
    )
    try:
        deadline = time.monotonic() + seconds
        while not log.with_suffix(".stalled").exists():
            assert worker.poll() is None, f"the run ended early ({worker.returncode})"
            assert time.monotonic() < deadline, f"the run did not reach step 60's {what} in {seconds} s"
            time.sleep(0.5)
    finally:
        if worker.poll() is None:
            os.kill(worker.pid, signal.SIGKILL)
        worker.wait(timeout=60)
