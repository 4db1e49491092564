"""`contentgen run` of a LoraTraining whose trainer stores checkpoints (a stand-in for the cluster's
that stores three small LoRA files, tests/cluster has the real one), when the checkpoints'
evaluation cannot finish: the version is still made, usable, with the last step's LoRA as its
model and the reason in its likeness; what the evaluation billed before is in the run's usage, or
the bill is unknown when the failure leaves it so."""

from __future__ import annotations

from pathlib import Path

import pytest

from contentgen.api import RunResult
from contentgen.catalog import open_catalog
from contentgen.cli.main import main
from contentgen.errors import ContentgenError, PermanentError, TransientError
from contentgen.store import LocalStore
from tests.harness.faces import a_copy, another_person, the_subject
from tests.run.checkpoint_pictures import CheckpointFiles, PicturesByCheckpoint, manifest, subject_video

PROMPTS = 6  # likeness-v1, one seed


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for variable in ("CONTENTGEN_STORE", "CONTENTGEN_CATALOG", "FAL_KEY", "CONTENTGEN_PRICES"):
        monkeypatch.delenv(variable, raising=False)
    subject_video(tmp_path / "subject.mp4", monkeypatch)
    return tmp_path


@pytest.mark.parametrize(
    ("failure", "billed"),
    [
        # a call whose bill the failure leaves unknown: the run's usage is unknown (the estimate counts)
        (TransientError("the GPU went away three times", reason="ProviderUnavailable"), None),
        # a call the failure says was not billed: the pictures made before it are the bill
        (PermanentError("the model refused the prompt", reason="ProviderJobFailed"), PROMPTS + 2),
    ],
    ids=["bill-unknown", "not-billed"],
)
def test_a_failure_half_way_keeps_the_version_with_its_last_steps_lora(
    failure: ContentgenError,
    billed: int | None,
    workspace: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    trainer = CheckpointFiles()
    pictures = PicturesByCheckpoint({34: another_person, 68: the_subject, 100: a_copy})
    pictures.fail_after = (PROMPTS + 2, failure)  # in step 68's pictures
    monkeypatch.setattr("contentgen.pipeline.lora.trainer", lambda name: trainer)
    monkeypatch.setattr("contentgen.pipeline.lora.image_generator", lambda name: pictures)
    lora = manifest(workspace / "lora.yaml")
    code = main(["run", "--source", str(workspace / "subject.mp4"), "--result", "r.json", str(lora)])
    assert code == 0, capsys.readouterr().err

    result = RunResult.model_validate_json((workspace / "r.json").read_text())
    assert result.lora is not None and result.lora.likeness is not None
    version, likeness = result.lora, result.lora.likeness
    store = LocalStore(workspace / "contentgen-data" / "store")
    prefix = f"loras/demo/{result.uid}/v1/"
    # the model is the last step's LoRA, stored as the version's model.safetensors
    assert version.model_uri == version.final_model_uri == store.uri(f"{prefix}model.safetensors")
    assert store.get_bytes(f"{prefix}model.safetensors") == store.get_bytes(
        f"{prefix}checkpoints/step-000100.safetensors"
    )
    assert (version.chosen_step, likeness.chosen_step, likeness.final_step) == (100, 100, 100)
    assert likeness.verdict == "skipped" and likeness.checkpoints == []
    [reason] = likeness.reasons
    assert reason == (
        f"the checkpoints' evaluation failed: {failure}; the last step's LoRA (step 100) is the version's "
        "model, unscored"
    )
    assert likeness.choice.startswith("the checkpoints' evaluation failed")
    assert not store.exists(f"{prefix}likeness-curve.json")
    if billed is None:
        assert result.usage is None
    else:
        assert result.usage is not None
        paid = [line.request for line in result.usage if line.item == "likeness-evaluation"]
        assert paid == pictures.made and len(paid) == billed

    record = open_catalog().get(result.uid)
    assert record is not None and record["status"] == "Succeeded" and record["latestVersion"] == 1
    assert record["versions"][0]["likeness"]["verdict"] == "skipped"
