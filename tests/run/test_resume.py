"""`contentgen run` stopped while fal trains (Ctrl-C here: the record ends Interrupted at once; a
SIGKILL leaves it Running), then run again: the second run resumes the first, the paid training
adopted (billed once), as the same run and the same version. A stopped run that is not resumed
stays in the history, interrupted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from contentgen.catalog import open_catalog
from contentgen.cli.main import main
from contentgen.pipeline.local_run import RunLock, local_uid
from contentgen.providers import retry as retry_module
from tests.conftest import EXAMPLES
from tests.providers.fake_fal import FAL_KEY, FakeFal
from tests.providers.fakes import FakeSleep, mocked

LORA = EXAMPLES / "loratraining.yaml"  # provider fal, captioning auto
SAMPLE = EXAMPLES / "media" / "sample.mp4"
TRAINING = "fal-ai/flux-lora-fast-training"


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for variable in ("CONTENTGEN_STORE", "CONTENTGEN_CATALOG", "ASSEMBLYAI_API_KEY", "CONTENTGEN_PRICES"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("FAL_KEY", FAL_KEY)
    original = retry_module.Retry.__init__

    def no_sleep(self: Any, *args: Any, **kwargs: Any) -> None:  # polls and backoff are not slept
        original(self, *args, **kwargs)
        self.sleep = FakeSleep()

    monkeypatch.setattr(retry_module.Retry, "__init__", no_sleep)
    return tmp_path


class Killed(BaseException):
    """The process ended where it was, as SIGKILL ends it: no `except` of the run hears it."""


class StoppedWhileTraining:
    """fal, until the run polls its training: then the run is stopped (Ctrl-C, or `stop`) there."""

    def __init__(self, fal: FakeFal, stop: type[BaseException] = KeyboardInterrupt) -> None:
        self.fal, self.knows, self.stop = fal, fal.knows, stop

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/status") and f"/{TRAINING.split('/', 1)[1]}/" in request.url.path:
            raise self.stop
        return self.fal(request)


def run(*args: str) -> int:
    return main(["run", "--source", str(SAMPLE), *args])


def record(uid: str) -> dict[str, Any]:
    catalog = open_catalog()
    try:
        found = catalog.get(uid)
    finally:
        catalog.close()
    assert found is not None
    return found


def trainings(fal: FakeFal) -> int:
    return sum(1 for app, _ in fal.submitted if app == TRAINING)


def test_a_run_stopped_while_fal_trains_is_resumed_as_the_same_run_and_version(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fal = FakeFal()
    with mocked(StoppedWhileTraining(fal)):
        assert run(str(LORA)) == 130
    assert trainings(fal) == 1 and fal.billed == fal.count("submit") - 1  # the training is unpaid yet
    with mocked(fal):
        assert run("--result", "r.json", str(LORA)) == 0, capsys.readouterr().err
    assert trainings(fal) == 1  # adopted, not submitted again
    result = json.loads((workspace / "r.json").read_text())
    assert result["version"] == 1
    doc = record(result["uid"])
    assert [v["version"] for v in doc["versions"]] == [1]
    assert [(r["version"], r["phase"]) for r in doc["runs"]] == [(1, "Succeeded")]
    assert doc["latestRun"]["version"] == 1 and doc["latestRun"]["phase"] == "Succeeded"
    assert doc["runs"][0]["startedAt"] < doc["runs"][0]["completedAt"]
    assert "resumes run 1 of LoraTraining" in capsys.readouterr().err


def test_a_stopped_run_not_resumed_stays_in_the_history_as_interrupted(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fal = FakeFal()
    with mocked(StoppedWhileTraining(fal)):
        assert run(str(LORA)) == 130
    stopped = workspace / "fewer-steps.yaml"  # another spec: a new run, not this one resumed
    manifest = yaml.safe_load(LORA.read_text())
    manifest["spec"]["training"]["steps"] = 500
    stopped.write_text(yaml.safe_dump(manifest))
    with mocked(fal):
        assert run("--result", "r.json", str(stopped)) == 0, capsys.readouterr().err
    result = json.loads((workspace / "r.json").read_text())
    assert result["version"] == 2
    doc = record(result["uid"])
    assert [v["version"] for v in doc["versions"]] == [2]
    assert [(r["version"], r["phase"]) for r in doc["runs"]] == [(1, "Interrupted"), (2, "Succeeded")]
    first = doc["runs"][0]
    assert first["error"] == {
        "reason": "Interrupted",
        "message": "interrupted by Ctrl-C in stage train (50 %); the same `contentgen run` resumes it as v1, "
        "adopting what it paid for",
    }
    assert first["completedAt"] is not None


def test_a_killed_run_not_resumed_stays_in_the_history_as_interrupted(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Killed (its record left Running), then a run of another spec: the killed one is ended in
    the history, Interrupted, saying it was not resumed."""
    fal = FakeFal()
    with mocked(StoppedWhileTraining(fal, Killed)), pytest.raises(Killed):
        run(str(LORA))
    assert record(record_uid())["latestRun"]["phase"] == "Running"
    stopped = workspace / "fewer-steps.yaml"
    manifest = yaml.safe_load(LORA.read_text())
    manifest["spec"]["training"]["steps"] = 500
    stopped.write_text(yaml.safe_dump(manifest))
    with mocked(fal):
        assert run(str(stopped)) == 0, capsys.readouterr().err
    doc = record(record_uid())
    assert [(r["version"], r["phase"]) for r in doc["runs"]] == [(1, "Interrupted"), (2, "Succeeded")]
    assert "not resumed" in doc["runs"][0]["error"]["message"]


def test_a_run_still_going_on_is_neither_resumed_nor_called_interrupted(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The record shows run 1 Running and its lock is held (its process goes on): a second run of
    the same spec is a new version beside it."""
    fal = FakeFal()
    with mocked(StoppedWhileTraining(fal, Killed)), pytest.raises(Killed):
        run(str(LORA))  # its record stays Running, as a run that goes on shows it
    capsys.readouterr()
    uid = record_uid()
    going_on = RunLock(workspace / "contentgen-data" / "work", uid)
    assert going_on.acquire()
    try:
        with mocked(fal):
            assert run("--result", "r.json", str(LORA)) == 0, capsys.readouterr().err
    finally:
        going_on.release()
    assert "resumes run" not in capsys.readouterr().err
    result = json.loads((workspace / "r.json").read_text())
    assert result["uid"] == uid and result["version"] == 2
    doc = record(uid)
    assert [(r["version"], r["phase"]) for r in doc["runs"]] == [(2, "Succeeded")]
    assert trainings(fal) == 1  # run 2 adopted the training run 1 submitted (one checkpoint per resource)


def record_uid() -> str:
    meta = yaml.safe_load(LORA.read_text())["metadata"]
    return local_uid("LoraTraining", meta.get("namespace") or "default", meta["name"])
