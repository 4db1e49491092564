"""The whole flow of a training that stops early, is stopped and kept, and goes on, offline
(docs/cluster-training.md#stopping-early): the offline provider's simulated training hands each
checkpoint to the run's watch as it stores it, as the cluster's trainer does, and its pictures show
the subject as far as each step learned them (a curve that peaks at 70 % of the steps), scored for
real. So `make demo` and the docs show them as written, labelled simulated."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from contentgen.api import RunResult, now
from contentgen.catalog import open_catalog
from contentgen.cli.main import main
from contentgen.pipeline.local_run import local_uid
from tests.conftest import ROOT

SAMPLE = ROOT / "examples/media/sample.mp4"


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for variable in ("CONTENTGEN_STORE", "CONTENTGEN_CATALOG", "FAL_KEY", "CONTENTGEN_PRICES"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("CONTENTGEN_WORK_DIR", str(tmp_path / "work"))
    return tmp_path


def manifest(path: Path, example: str = "loratraining.yaml", **training: Any) -> Path:
    doc = yaml.safe_load((ROOT / "examples" / example).read_text())
    doc["spec"]["provider"] = "cluster"  # run offline: the cluster's trainer simulated
    doc["spec"]["training"] = {**doc["spec"].get("training", {}), "checkpointEvery": 100, **training}
    doc["spec"]["evaluation"] = {**doc["spec"].get("evaluation", {}), "checkpoints": 10}
    path.write_text(yaml.safe_dump(doc))
    return path


def run(workspace: Path, lora: Path, result: str) -> RunResult:
    assert main(["run", "--offline", "--source", str(SAMPLE), "--result", result, str(lora)]) == 0
    return RunResult.model_validate_json((workspace / result).read_text())


@pytest.mark.parametrize(("example", "patience"), [("loratraining.yaml", 2), ("loratraining-video.yaml", 3)])
def test_a_plateau_stops_the_simulated_training_patience_checkpoints_past_its_peak(
    workspace: Path, example: str, patience: int
) -> None:
    """A FLUX.1 LoRA, and a Wan 2.2 A14B pair whose checkpoints are scored on clips' frames (their
    first three within noise of each other, a stranger's likeness: a patience of 3 outlasts them)."""
    plateau = {"likenessPlateau": {"patience": patience}}
    lora = manifest(workspace / "lora.yaml", example, stopWhen=plateau)
    result = run(workspace, lora, "r.json")
    assert result.lora is not None and result.lora.likeness is not None and result.lora.stopped is not None
    version, stop = result.lora, result.lora.stopped
    points = version.likeness.checkpoints
    best = max((p for p in points if p.verdict == "good"), key=lambda p: p.median or 0)
    assert best.chosen and version.chosen_step == best.step
    # stopped `patience` scored checkpoints after the best, keeping it; the steps after never simulated
    assert (stop.how, stop.step, stop.planned_steps) == ("plateau", best.step + 100 * patience, 1000)
    assert stop.steps_saved == 1000 - stop.step and [p.step for p in points][-1] == stop.step
    assert (version.steps, version.planned_steps) == (stop.step, 1000)  # the steps it ran, and those asked
    assert stop.gpu_seconds_saved is None and stop.saved_usd is None  # the offline provider bills no GPU time
    assert version.state_uri.endswith(f"/checkpoints/step-{stop.step:06d}.state.json")
    [training] = [line for line in result.usage or [] if line.unit == "step"]
    assert training.quantity == stop.step  # billed (at nothing) for the steps it ran
    record = open_catalog().get(result.uid)
    assert record is not None and record["versions"][-1]["stopped"]["step"] == stop.step


def test_a_person_stops_the_simulated_training_and_a_version_goes_on_from_it(
    workspace: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from contentgen.pipeline import live
    from contentgen.pipeline.likeness import watch
    from contentgen.pipeline.settings import PipelineSettings
    from contentgen.pipeline.training_controls import ask_local_stop

    monkeypatch.setattr(live._Throttle, "due", lambda self, now_=False: True)  # the stop file read at once
    uid = local_uid("LoraTraining", "default", "demo-avatar")
    checkpoint = watch.LikenessWatch.checkpoint

    def asked_at_300(self: Any, step: int, *rest: Any) -> Any:  # as `contentgen assets stop` asks
        if step == 300:
            ask_local_stop(PipelineSettings().work_dir, uid, 1, by="alice", at=now())
        return checkpoint(self, step, *rest)

    monkeypatch.setattr(watch.LikenessWatch, "checkpoint", asked_at_300)
    lora = manifest(workspace / "lora.yaml")
    first = run(workspace, lora, "r1.json")
    assert first.lora is not None and first.lora.stopped is not None
    assert (first.lora.stopped.how, first.lora.stopped.by, first.lora.stopped.step) == ("asked", "alice", 300)
    monkeypatch.setattr(watch.LikenessWatch, "checkpoint", checkpoint)

    doc = yaml.safe_load(lora.read_text())
    doc["spec"]["training"]["continueFrom"] = {"version": 1}
    doc["spec"]["training"]["steps"] = 400
    lora.write_text(yaml.safe_dump(doc))
    second = run(workspace, lora, "r2.json")
    assert second.lora is not None and second.lora.continued_from is not None
    assert (second.lora.continued_from.version, second.lora.continued_from.step) == (1, 300)
    assert second.lora.likeness is not None
    assert [p.step for p in second.lora.likeness.checkpoints] == [400, 500, 600, 700]
    config = json.loads(Path(second.lora.config_uri.removeprefix("file://")).read_text())
    assert config["continue_from"] == {"version": 1, "step": 300}
    assert second.lora.placeholder and second.placeholder  # the offline provider's, said on the version too
    assert second.lora.state_uri.endswith("/checkpoints/step-000700.state.json")  # the last step's

    # a step of a version that was not stored: the run says so
    doc["spec"]["training"]["continueFrom"] = {"version": 2, "step": 450}
    lora.write_text(yaml.safe_dump(doc))
    code = main(["run", "--offline", "--source", str(SAMPLE), str(lora)])
    assert code != 0

    # a version that kept no state (one of fal's, here faked by its record's): refused before the run
    # touches the record, naming the version that did keep one
    catalog = open_catalog()
    catalog.modify(
        uid,
        lambda d: {
            **d,
            "versions": [{**v, "stateUri": ""} if v["version"] == 2 else v for v in d["versions"]],
        },
    )
    before = catalog.get(uid)
    doc["spec"]["training"]["continueFrom"] = {"version": 2}
    lora.write_text(yaml.safe_dump(doc))
    capsys.readouterr()
    assert main(["run", "--offline", "--source", str(SAMPLE), str(lora)]) == 1
    assert capsys.readouterr().err == (
        "contentgen run: training.continueFrom: v2 of demo-avatar kept no training state to go on from (its "
        "training stored none); go on from v1, which kept one; nothing was run or recorded\n"
    )
    assert catalog.get(uid) == before
    catalog.close()


def test_fal_is_refused_stop_when_in_one_line(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    doc = yaml.safe_load((ROOT / "examples/loratraining.yaml").read_text())
    doc["spec"]["provider"] = "fal"
    doc["spec"]["training"] = {"stopWhen": {"likenessPlateau": {"patience": 2}}}
    (workspace / "fal.yaml").write_text(yaml.safe_dump(doc))
    assert main(["validate", str(workspace / "fal.yaml")]) != 0
    said = capsys.readouterr()
    assert "spec.training.stopWhen: training.stopWhen needs provider cluster" in said.out + said.err
