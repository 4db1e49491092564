"""Likeness on every checkpoint (docs/likeness.md#checkpoints): `contentgen run` of a LoraTraining
with provider cluster, whose trainer (the real one, on the tiny FLUX) stores a checkpoint every 34
steps of 100 and has each scored as soon as it is stored, with pictures it draws itself between
its steps (providers/cluster/families/flux_live.py). Scored against the subject's real faces:

- with pictures that depend on which checkpoint's LoRA drew them (live_pictures.py: step 34:
  another person; 68: the subject; 100: a copy of a training image, the highest median and poor
  for it), the run chooses step 68: model.safetensors is that checkpoint's file, the last step's is
  kept as finalModelUri, the curve is stored and in the version, and every picture is made once
  although the run was stopped in the middle of the checkpoints' pictures and run again;
- with the tiny FLUX's own pictures (noise), no checkpoint shows a face: the last step is the
  model, and the version says why; the run is stopped in the middle of the checkpoints' pictures
  and run again, and each picture is drawn once (those made before the stop are taken from the
  store); the baseline is kept under the staged weights and steps it was drawn with."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from contentgen.api import RunResult
from contentgen.catalog import open_catalog
from contentgen.cli.main import main
from contentgen.store import LocalStore
from tests.harness.faces import a_copy, another_person, the_subject
from tests.run.checkpoint_pictures import manifest

from .conftest import DEVICE
from .live_pictures import drawn, install

pytestmark = pytest.mark.cluster_models

PROMPTS = 6  # likeness-v1, one seed


def run(workspace: Path, *args: str) -> int:
    return main(["run", "--source", str(workspace / "subject.mp4"), *args])


def stored(uri: str) -> bytes:
    return Path(uri.removeprefix("file://")).read_bytes()


def test_the_best_scoring_checkpoint_is_the_versions_model_and_each_picture_is_made_once(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    shows = {34: another_person, 68: the_subject, 100: a_copy}
    log = workspace / "drawn.log"
    lora = manifest(workspace / "lora.yaml")
    # stopped in step 68's pictures (the baseline's and step 34's made): the first run ends there
    install(shows, log, interrupt=2 * PROMPTS + 3, monkeypatch=monkeypatch)
    assert run(workspace, str(lora)) == 130
    assert len(drawn(log)) == 2 * PROMPTS + 3
    install(shows, log, monkeypatch=monkeypatch)
    capsys.readouterr()
    assert run(workspace, "--result", "r.json", str(lora)) == 0, capsys.readouterr().err
    assert "  its model: step 68 scored best of 3 checkpoints" in capsys.readouterr().out  # the summary

    result = RunResult.model_validate_json((workspace / "r.json").read_text())
    assert result.version == 1 and result.lora is not None and result.lora.likeness is not None
    version, likeness = result.lora, result.lora.likeness
    # every picture made once over both runs: three checkpoints' and the baseline's
    assert len(drawn(log)) == len(set(drawn(log))) == 3 * PROMPTS + PROMPTS
    evaluation = [line for line in result.usage or [] if line.item == "likeness-evaluation"]
    assert len({line.request for line in evaluation}) == len(evaluation) == 4 * PROMPTS
    # the training's config, stored once, is the same on both attempts (the second resumed after
    # its last step, training nothing)
    assert json.loads(stored(version.config_uri))["checkpoint_every"] == 34

    # the curve: each checkpoint scored, the subject's the best, the copy's median higher but poor
    assert [(p.step, p.verdict, p.chosen) for p in likeness.checkpoints] == [
        (34, "poor", False),
        (68, "good", True),
        (100, "poor", False),
    ]
    _, chosen, last = likeness.checkpoints
    assert last.median is not None and chosen.median is not None and last.median > chosen.median
    assert last.copies == PROMPTS and any("copies of one training image" in r for r in last.reasons)
    assert (likeness.chosen_step, likeness.final_step, version.chosen_step) == (68, 100, 68)
    assert likeness.choice.startswith("step 68 scored best of 3 checkpoints (good, median")
    # the version's own report is the chosen checkpoint's: what the model users get scores
    assert (likeness.verdict, likeness.median, likeness.reasons) == ("good", chosen.median, chosen.reasons)
    assert "they look like the subject" in likeness.reasons[0]  # a good verdict says what was measured

    prefix = f"loras/demo/{result.uid}/v1/"
    store = LocalStore(workspace / "contentgen-data" / "store")
    assert (
        stored(version.model_uri)
        == stored(chosen.model_uri)
        == store.get_bytes(f"{prefix}checkpoints/step-000068.safetensors")
    )
    assert version.model_uri == store.uri(f"{prefix}model.safetensors")
    final_uri = store.uri(f"{prefix}checkpoints/step-000100.safetensors")
    assert version.final_model_uri == last.model_uri == final_uri
    final = next(a for a in result.artifacts if a.uri == version.final_model_uri)
    assert final.sha256 == hashlib.sha256(stored(final.uri)).hexdigest() != version.sha256
    for point in likeness.checkpoints:
        folder = f"{prefix}likeness/step-{point.step:06d}/"
        assert (point.grid_uri, point.report_uri) == (
            store.uri(folder + "likeness-grid.jpg"),
            store.uri(folder + "likeness.json"),
        )
        assert json.loads(stored(point.report_uri))["median"] == point.median
    assert stored(likeness.grid_uri) == stored(chosen.grid_uri)
    assert likeness.grid_uri == store.uri(f"{prefix}likeness-grid.jpg")
    curve = json.loads(store.get_bytes(f"{prefix}likeness-curve.json"))
    assert (curve["chosenStep"], curve["finalStep"]) == (68, 100)
    assert [p["step"] for p in curve["checkpoints"]] == [34, 68, 100]
    # the training loss: every step's stored (the second attempt resumed after its last step, the
    # loss of the first attempt's steps kept in the training state), a curve of at most 64 points
    every = json.loads(stored(version.loss_uri))["steps"]
    assert [step for step, _ in every] == list(range(1, 101)) and all(loss > 0 for _, loss in every)
    assert 0 < len(version.training_loss) <= 64 and version.training_loss[-1].step == 100
    # the checkpoints side by side: a row without the LoRA and one per checkpoint, a column per
    # prompt and seed (the pictures as drawn, 128 px, with their similarity under them)
    assert likeness.checkpoints_grid_uri == store.uri(f"{prefix}likeness-checkpoints.jpg")
    import cv2
    import numpy as np

    sheet = cv2.imdecode(np.frombuffer(stored(likeness.checkpoints_grid_uri), np.uint8), cv2.IMREAD_COLOR)
    columns = len(likeness.seeds) * 6  # likeness-v1's six prompts
    assert sheet.shape[1] == 150 + columns * (128 + 6) + 6
    assert sheet.shape[0] == 50 + (3 + 1) * (128 + 22 + 6) + 6

    record = open_catalog().get(result.uid)
    assert record is not None
    [entry] = record["versions"]
    assert (entry["chosenStep"], entry["finalModelUri"]) == (68, version.final_model_uri)
    # the memory plan auto chose (issue 39): in the version, the catalog's record and assets get
    assert version.memory_plan.startswith(("bf16", "fp8", "int8", "nf4"))
    assert DEVICE != "cpu" or version.memory_plan == "bf16, on the CPU"
    assert entry["memoryPlan"] == version.memory_plan
    assert [p["verdict"] for p in entry["likeness"]["checkpoints"]] == ["poor", "good", "poor"]

    # a person prefers the last step: promoted, it is the model a loraRef gets; the automatic choice stays
    capsys.readouterr()
    assert main(["assets", "promote", "jx", "--step", "100", "--note", "sharper", "-o", "table"]) == 0
    assert "its model is now step 100's LoRA" in capsys.readouterr().out
    assert main(["assets", "get", "jx", "-o", "table"]) == 0
    shown = capsys.readouterr().out
    assert f"; memory plan {version.memory_plan}" in shown
    assert "> the model is step 100's, chosen by cli:" in shown and "* step 68: good" in shown
    assert "> step 100: poor" in shown
    from contentgen.pipeline.local_run import resolve_locally

    [resolved] = resolve_locally(
        {"owner": "demo", "loras": [{"loraRef": {"name": "jx"}}]}, "default", store
    ).loras
    assert resolved.uri == version.final_model_uri  # step 100's LoRA, not model.safetensors
    record = open_catalog().get(result.uid)
    assert record is not None and record["latestModelUri"] == version.final_model_uri
    assert main(["assets", "promote", "jx", "--step", "50"]) != 0
    assert (
        "--step: 50 is not a scored checkpoint of version 1; scored: 34, 68, 100" in capsys.readouterr().err
    )


def test_the_tiny_fluxs_noise_shows_no_face_at_any_checkpoint_and_the_last_step_is_the_model(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    log = workspace / "drawn.log"  # every picture the tiny FLUX drew between its steps
    # stopped in the second checkpoint's pictures
    install(None, log, interrupt=2 * PROMPTS + 2, monkeypatch=monkeypatch)
    lora = manifest(workspace / "lora.yaml", every=50)
    assert run(workspace, str(lora)) == 130
    assert len(drawn(log)) == 2 * PROMPTS + 2
    install(None, log, monkeypatch=monkeypatch)
    assert run(workspace, "--result", "r.json", str(lora)) == 0, capsys.readouterr().err
    # each picture drawn once over both runs: the two checkpoints' and the baseline's (the pictures
    # drawn before the stop were kept in the store as they were made, and taken from there)
    assert len(drawn(log)) == len(set(drawn(log))) == 3 * PROMPTS
    result = RunResult.model_validate_json((workspace / "r.json").read_text())
    assert result.lora is not None and result.lora.likeness is not None
    version, likeness = result.lora, result.lora.likeness
    assert [(p.step, p.verdict, p.median, p.chosen) for p in likeness.checkpoints] == [
        (50, "no-faces", None, False),
        (100, "no-faces", None, True),
    ]
    assert likeness.verdict == "no-faces" and likeness.median is None
    assert (likeness.chosen_step, likeness.final_step, version.chosen_step) == (100, 100, 100)
    assert likeness.choice == (
        "no checkpoint's likeness could be measured (no-faces at all 2 scored): the last step, 100, is the "
        "version's model"
    )
    assert version.final_model_uri == version.model_uri
    assert stored(version.model_uri) == stored(likeness.checkpoints[-1].model_uri)
    # each picture's GPU time: two checkpoints' and the baseline's
    evaluation = [line for line in result.usage or [] if line.item == "likeness-evaluation"]
    assert len(evaluation) == 3 * PROMPTS and all(line.quantity > 0 for line in evaluation)
    # the baseline is the staged weights' own: another base model or step count makes another
    store = LocalStore(workspace / "contentgen-data" / "store")
    [folder] = {item.key.rsplit("/", 2)[0] for item in store.list("likeness/baselines/cluster/")}
    assert folder == "likeness/baselines/cluster/flux-lora.FLUX.1-dev.2-steps"
