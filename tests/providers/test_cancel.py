"""Cancelling the provider work of a deleted resource (providers/cancel.py and the operator's
adapter, controller/provider_cancel.py), against the fal fake's queue: a request still queued is
removed and never billed; one already running or ended is reported as (possibly) billed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from contentgen.api.lora.plan import plan_for
from contentgen.controller.provider_cancel import cancel_all, checkpoints
from contentgen.providers.base import MemoryCheckpoint, TrainingRequest
from contentgen.providers.cancel import (
    BILLED_IF_SUCCEEDED,
    MAY_BE_BILLED,
    NOT_BILLED,
    Pending,
    pending,
    summary,
)
from contentgen.providers.fal import FalProvider
from contentgen.store import keys
from contentgen.store.local import LocalStore

from .fake_fal import FAL_KEY, TRAINING_SCRIPT, FakeFal, status
from .fakes import Crash, FakeSleep, Progress, dataset_zip, mocked, retry

APP = "fal-ai/flux-lora-fast-training"


def queued_training(tmp_path: Path, fal: FakeFal) -> MemoryCheckpoint:
    """A training submitted and waiting in fal's queue when its pod is killed."""
    checkpoint = MemoryCheckpoint()
    request = TrainingRequest(
        dataset_zip(tmp_path / "d.zip"), "dmavatar", plan=plan_for(app=APP, steps=1000, provider="fal")
    )
    work = tmp_path / "work"
    work.mkdir()
    provider = FalProvider(FAL_KEY, retry=retry(FakeSleep(crash_at=1)), poll_interval=2.0)
    with pytest.raises(Crash):
        provider.train_lora(request, work, Progress(), checkpoint)
    assert checkpoint.load()["request_id"] == "req-1"
    return checkpoint


def test_a_deleted_queued_lora_is_cancelled_at_fal_and_never_billed(tmp_path):
    fal = FakeFal()
    with mocked(fal):
        checkpoint = queued_training(tmp_path, fal)
        [outcome] = cancel_all([checkpoint.load()], FAL_KEY)
        assert outcome.billing == NOT_BILLED and outcome.request == Pending("fal", APP, "req-1")
        for _ in range(len(TRAINING_SCRIPT) + 2):  # however long fal is watched afterwards
            fal._advance(fal.jobs["req-1"])
    assert fal.count("cancel") == 1 and fal.jobs["req-1"].cancelled
    assert (fal.accepted, fal.billed) == (1, 0)
    assert "req-1" in summary([outcome]) and NOT_BILLED in summary([outcome])


def test_a_running_request_is_signalled_and_may_still_be_billed(tmp_path):
    fal = FakeFal()
    fal.scripts[APP] = [status("IN_PROGRESS"), status("IN_PROGRESS"), status("COMPLETED")]
    with mocked(fal):
        checkpoint = queued_training(tmp_path, fal)
        [outcome] = cancel_all([checkpoint.load()], FAL_KEY)
        for _ in range(4):
            fal._advance(fal.jobs["req-1"])
    # fal signals a running request to stop; the app may finish it anyway, and then it is billed
    assert outcome.billing == MAY_BE_BILLED and fal.count("cancel") == 1
    assert fal.billed == 1


def test_an_ended_request_cannot_be_cancelled_and_is_reported_billed_if_it_succeeded(tmp_path):
    fal = FakeFal()
    with mocked(fal):
        checkpoint = queued_training(tmp_path, fal)
        for _ in range(len(TRAINING_SCRIPT)):
            fal._advance(fal.jobs["req-1"])
        [outcome] = cancel_all([checkpoint.load()], FAL_KEY)
    assert outcome.billing == BILLED_IF_SUCCEEDED and fal.billed == 1


def test_without_a_key_nothing_is_cancelled_and_the_event_says_why(tmp_path):
    fal = FakeFal()
    with mocked(fal):
        checkpoint = queued_training(tmp_path, fal)
        [outcome] = cancel_all([checkpoint.load()], "")
    assert fal.count("cancel") == 0 and "the operator has no FAL_KEY" in outcome.detail


def test_a_run_with_nothing_at_fal_never_needs_fals_sdk(monkeypatch):
    """The operator's image cancels with fal's SDK; a run with nothing pending at fal (offline's,
    or one whose requests all ended) is stopped without it, even where the operator has a FAL_KEY
    (found on the real node: an image without the SDK left a superseded offline run Pending)."""
    monkeypatch.setitem(__import__("sys").modules, "fal_client", None)  # `import fal_client` fails
    ended = {"provider": "fal", "app": APP, "request_id": "b", "result": {}}
    assert cancel_all([], FAL_KEY) == [] and cancel_all([ended], FAL_KEY) == []
    with pytest.raises(ImportError):
        cancel_all([{"provider": "fal", "app": APP, "request_id": "a"}], FAL_KEY)


def test_what_is_pending_in_a_runs_checkpoints():
    documents = [
        {"provider": "fal", "app": APP, "request_id": "a"},  # waiting: cancel
        {"provider": "fal", "app": APP, "request_id": "b", "result": {}},  # done: nothing to cancel
        {"0000": {"provider": "fal", "app": "openrouter/router/vision", "request_id": "c"}, "0001": {}},
        {"provider": "fal", "app": APP, "sent": {"at": "2026-01-01T00:00:00+00:00"}},  # answer lost
        {"provider": "assemblyai", "transcript_id": "t"},
    ]
    assert pending(documents) == [
        Pending("fal", APP, "a"),
        Pending("fal", "openrouter/router/vision", "c"),
        Pending("fal", APP, ""),
        Pending("assemblyai", "", "t"),
    ]
    outcomes = cancel_all(documents[3:], "")
    assert [o.billing for o in outcomes] == [BILLED_IF_SUCCEEDED, BILLED_IF_SUCCEEDED]
    assert "assemblyai offers no cancel" in outcomes[1].detail
    assert NOT_BILLED not in {o.billing for o in outcomes}  # nothing uncancelled claims to be free


def test_the_operator_reads_a_runs_checkpoints_from_the_store(tmp_path):
    store = LocalStore(tmp_path / "store")
    store.put_bytes(
        keys.checkpoint("uid-1", "lora-v1"),
        json.dumps({"provider": "fal", "request_id": "x"}).encode(),
        "application/json",
    )
    store.put_bytes(keys.checkpoint("uid-1", "broken"), b"{not json", "application/json")
    store.put_bytes(
        keys.checkpoint("uid-2", "lora-v1"),
        json.dumps({"provider": "fal", "request_id": "y"}).encode(),
        "application/json",
    )
    assert checkpoints(store, "uid-1") == [{"provider": "fal", "request_id": "x"}]


# --- a run superseded by a spec change (controller/supersede.py) ------------------------------------


def test_a_superseded_queued_request_is_cancelled_and_never_waited_on_again(tmp_path):
    """The stopped run's queued training is cancelled (never billed), and its checkpoint says so: a
    later generation whose inputs come out the same submits anew instead of waiting on a request
    that will never deliver."""
    from contentgen.controller.provider_cancel import stop
    from contentgen.pipeline.context import StoreCheckpoint

    fal = FakeFal()
    store = LocalStore(tmp_path / "store")
    checkpoint = StoreCheckpoint(store, keys.checkpoint("uid-1", "lora-v1"))
    request = TrainingRequest(
        dataset_zip(tmp_path / "d.zip"), "dmavatar", plan=plan_for(app=APP, steps=1000, provider="fal")
    )
    (tmp_path / "work").mkdir()
    with mocked(fal):
        stopped = FalProvider(FAL_KEY, retry=retry(FakeSleep(crash_at=1)), poll_interval=2.0)
        with pytest.raises(Crash):  # the pod is deleted while the training waits in fal's queue
            stopped.train_lora(request, tmp_path / "work", Progress(), checkpoint)
        superseded = stop(store, "uid-1", FAL_KEY)
        assert [o.billing for o in superseded.outcomes] == [NOT_BILLED] and superseded.completed == ()
        saved = checkpoint.load()
        assert "request_id" not in saved and saved["failed"] == ["req-1"]

        later = FalProvider(FAL_KEY, retry=retry(FakeSleep()), poll_interval=2.0)
        output = later.train_lora(request, tmp_path / "work", Progress(), checkpoint)
    assert output.request_id == "req-2" and fal.jobs["req-1"].cancelled
    assert (fal.accepted, fal.billed) == (2, 1)  # the cancelled one cost nothing


def test_what_a_stopped_run_had_already_paid_for_is_kept(tmp_path):
    from contentgen.controller.provider_cancel import stop

    store = LocalStore(tmp_path / "store")
    captions = {
        "0000": {"provider": "fal", "app": "openrouter/router/vision", "request_id": "c-0", "result": {}},
        "0001": {"provider": "fal", "app": "openrouter/router/vision", "request_id": "c-1"},
    }
    key = keys.checkpoint("uid-1", "captions-v1")
    store.put_bytes(key, json.dumps(captions).encode(), "application/json")
    superseded = stop(store, "uid-1", "")  # no FAL_KEY: nothing can be cancelled
    assert superseded.completed == ("c-0",)
    [outcome] = superseded.outcomes
    assert outcome.billing == BILLED_IF_SUCCEEDED and "no FAL_KEY" in outcome.detail
    # not stopped: the checkpoint keeps it, for a later generation to wait on rather than pay again
    assert json.loads(store.get_bytes(key)) == captions


def test_what_the_operator_can_stop_is_read_from_the_providers_entries(monkeypatch) -> None:
    from contentgen.api.providers import PROVIDERS
    from contentgen.controller.provider_cancel import cancellable

    free = {p.name for p in PROVIDERS.values() if p.placeholders}
    monkeypatch.delenv("FAL_KEY", raising=False)
    assert cancellable() == free  # a paid provider's requests cannot be stopped without its key
    monkeypatch.setenv("FAL_KEY", " key ")
    assert cancellable() == free | {p.name for p in PROVIDERS.values() if p.cancels}
    assert "assemblyai" not in cancellable()  # it offers no cancel
