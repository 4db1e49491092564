"""A LoRA training under way in its record (issue 67's live view): the LoraTraining's status.training,
as the worker reports it between steps, is the record's latestRun.training while it belongs to the
latest run (its step, steps, loss, time left and each checkpoint's likeness as it is scored), and
what the HTTP API's stream sends of the record carries it, so a new checkpoint is news."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from contentgen.catalog import Catalog, to_record
from contentgen.catalog.document import with_progress, with_training
from contentgen.catalog.downloads import DownloadError, choose_artifact
from contentgen.httpapi.routes.stream import _news, status_of
from tests.catalog.factory import T0
from tests.harness.live import running, training

UID = "live-1"


def test_the_latest_runs_training_is_in_the_record_as_it_grows() -> None:
    before = running(UID, "avatar", None)
    assert to_record(before).wire()["latestRun"]["training"] is None  # not training yet

    at = T0 + timedelta(hours=1)
    first = running(UID, "avatar", training(UID, 300, [(250, "poor", 0.21)], at=at), previous=before)
    run = to_record(first).wire()["latestRun"]
    assert (run["phase"], run["version"]) == ("Running", 2)
    live = run["training"]
    assert (live["step"], live["steps"], live["bestStep"], live["etaSeconds"]) == (300, 1000, 250, 1050.0)
    assert [p["step"] for p in live["loss"]][-1] == 300
    assert [(c["step"], c["verdict"], c["median"]) for c in live["checkpoints"]] == [(250, "poor", 0.21)]

    scored = [(250, "poor", 0.21), (500, "good", 0.55)]
    second = running(UID, "avatar", training(UID, 510, scored, at=at), previous=first)
    assert [c["step"] for c in to_record(second).wire()["latestRun"]["training"]["checkpoints"]] == [250, 500]
    # the stream's event of the record carries it: a checkpoint scored is news
    assert _news(status_of(second)) != _news(status_of(first))
    assert status_of(second)["latestRun"]["training"]["bestStep"] == 500


def test_another_runs_training_is_not_shown_as_the_latest_runs() -> None:
    stale = training(UID, 1000, [(250, "good", 0.5)], at=T0)
    stale["version"] = 1  # the report of an earlier run, still in the status
    doc = running(UID, "avatar", stale)
    assert to_record(doc).wire()["latestRun"]["training"] is None


def test_a_training_under_way_hands_out_its_checkpoints_grids_and_nothing_else() -> None:
    """The content and download routes serve the files a training under way has stored so far (its
    scored checkpoints' grids and reports, as latestRun.training names them), which the live view
    shows before the version is made; no other file of that version."""
    report = training(UID, 510, [(250, "poor", 0.21), (500, "good", 0.55)], at=T0)
    doc = running(UID, "avatar", report)
    grid = choose_artifact(doc, "step-000500/likeness-grid.jpg", 2)
    assert grid == report["checkpoints"][1]["gridUri"]
    assert choose_artifact(doc, "step-000250/likeness.json", 2) == report["checkpoints"][0]["reportUri"]
    for other in (
        "model.safetensors",
        "checkpoints/step-000500.safetensors",
        "step-000750/likeness-grid.jpg",
    ):
        try:
            choose_artifact(doc, other, 2)
        except DownloadError:
            continue
        raise AssertionError(f"{other} was handed out")
    assert choose_artifact(running(UID, "avatar", None), "model.safetensors", 1).endswith(
        "/v1/model.safetensors"
    )


def test_a_trainings_report_and_a_racing_progress_write_both_land(catalog: Catalog) -> None:
    """A laptop run's training report (pipeline/live.LocalLive, through document.with_training) is a
    change like any other: the next rev and a new updatedAt. So a progress write that read the record
    before it (CatalogProgress, interleaved here inside its own change) loses the race and is made
    again on the newer record, instead of writing the older copy over the report; and the list
    stream (changed since updatedAt) sees it. Without the rev, the report was lost."""
    doc = running(UID, "avatar", None)
    catalog.write(doc, None, exists=False)
    version = doc["latestRun"]["version"]
    report = training(UID, 300, [(250, "poor", 0.21)], at=T0)
    later = T0 + timedelta(hours=2)

    def progress(current: dict[str, Any] | None) -> dict[str, Any] | None:
        assert current is not None
        if not progress_tries:  # the report lands between this writer's read and its write
            catalog.modify(UID, lambda d: with_training(d, version=version, training=report, now=later))
        progress_tries.append(current["rev"])
        return with_progress(current, version=version, phase="Running", progress=60, stage="train", now=later)

    progress_tries: list[int] = []
    catalog.modify(UID, progress)
    stored = catalog.get(UID)
    assert stored is not None and len(progress_tries) == 2  # the first write lost, made again
    assert stored["latestRun"]["training"] == report and stored["latestRun"]["progress"] == 60
    assert with_training(stored, version=version + 1, training=report, now=later) is None  # another run's
