"""A finished Job always ends its run (issue 48): the worker's failure, whatever its reason, is
recorded as the run's; the operator's own failure to read a stored result is said, then bounded.
No status stays Running once its Job has finished."""

from __future__ import annotations

import asyncio
import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from contentgen.api import KINDS, LoraVersion, RunFailure, RunResult
from contentgen.api.reasons import FAILED, REASONS
from contentgen.api.run import failure_message, termination_message
from contentgen.controller.decide import (
    RESULT_READ_SECONDS,
    Decision,
    Observed,
    ResultUnreadable,
    World,
    decide,
)
from contentgen.controller.observe import JobState
from contentgen.controller.outcomes import read_outcome
from contentgen.errors import TransientError
from contentgen.pipeline.runner import failure, stored_outputs
from contentgen.store import LocalStore
from tests.harness.conditions import reason

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
UID = "0b7f1f3e-aaaa-4bbb-8ccc-123456789abc"
FINISHED = "2026-11-21T12:10:00Z"
KEPT = [
    "s3://bkt/loras/alice/u/v2/model.safetensors",
    "s3://bkt/loras/alice/u/v2/config.json",
]


def resource() -> Observed:
    spec = {"owner": "alice", "provider": "offline", "source": {"url": "s3://bkt/v.mp4"}, "triggerWord": "tw"}
    return Observed(KINDS["LoraTraining"], "demo", "ns", UID, 1, spec, {})


def decide_first() -> Decision:
    return decide(resource(), World(now=NOW))


def apply(res: Observed, decision: Decision) -> Observed:
    return replace(res, status=decision.status)


def job(**state: Any) -> JobState:
    return JobState(name="demo-lt-0b7f1f3e-g1", namespace="ns", uid=UID, generation=1, version=1, **state)


def lora_result(version: int, generation: int) -> RunResult:
    model = f"s3://bkt/loras/alice/{UID}/v{version}/model.safetensors"
    lora = LoraVersion(
        version=version,
        model_uri=model,
        size_bytes=10,
        sha256="ab" * 32,
        provider="offline",
        trigger_word="tw",
        frames=8,
        generation=generation,
        created_at=NOW,
    )
    return RunResult(
        kind="LoraTraining",
        provider="offline",
        generation=generation,
        placeholder=True,
        version=version,
        lora=lora,
    )


def cond(status: dict[str, Any], type_: str) -> str:
    return next(c["status"] for c in status["conditions"] if c["type"] == type_)


class BrokenStore(LocalStore):
    """A store that is away: every read fails as S3's client does when the server is down."""

    def head(self, key: str) -> Any:
        raise TransientError("object store request failed: connection refused", reason="StoreUnavailable")

    def get_bytes(self, key: str) -> bytes:
        raise TransientError("object store request failed: connection refused", reason="StoreUnavailable")


def worker_failure(reason: str = "StoreUnavailable", transient: bool = True, kept: list[str] = KEPT) -> str:
    """The termination message a worker leaves when the store went away under it."""
    return failure_message(
        RunFailure(reason=reason, message="could not write to the store", transient=transient, kept=kept)
    )


def backoff_exceeded() -> JobState:
    return job(
        failed=3,
        failed_reason="BackoffLimitExceeded",
        failed_message="Job has reached the specified backoff limit",
        finished_at=FINISHED,
    )


def test_the_workers_store_failure_is_the_runs_not_the_operators(tmp_path: Path) -> None:
    """The bug: the worker's own StoreUnavailable was read as the operator's failure to read the
    store, and the run stayed Running for good."""
    res = apply(resource(), decide_first())
    outcome = asyncio.run(read_outcome(backoff_exceeded(), res, worker_failure(), BrokenStore(tmp_path)))
    assert isinstance(outcome, RunFailure) and outcome.reason == "StoreUnavailable" and outcome.transient
    d = decide(res, World(now=NOW, jobs=(backoff_exceeded(),), outcome=outcome))
    s = d.status
    assert s["phase"] == "Failed" and reason(s) == "StoreUnavailable" and cond(s, "Stalled") == "True"
    # what it stored before failing is named, and what to do is said
    assert (
        "kept in the store: 2 objects under s3://bkt/loras/alice/u/v2/ (model.safetensors, config.json)"
        in s["message"]
    )
    assert "edit the spec to run again" in s["message"] and "not paid again" in s["message"]
    assert [(e.type, e.reason) for e in d.events] == [("Warning", "StoreUnavailable")]


def test_the_operators_own_read_failure_is_told_apart(tmp_path: Path) -> None:
    """A Job that completed with a result too large for its termination message: the operator must
    read the stored one, and the store is away."""
    done = job(complete=True, succeeded=1, completion_time=FINISHED, finished_at=FINISHED)
    res = apply(resource(), decide_first())
    truncated = termination_message(lora_result(1, 1).model_copy(update={"truncated": True}))
    outcome = asyncio.run(read_outcome(done, res, truncated, BrokenStore(tmp_path)))
    assert isinstance(outcome, ResultUnreadable) and "connection refused" in outcome.error
    assert outcome.uri.endswith("result.json")


@pytest.mark.parametrize("complete", [True, False])
def test_an_unreadable_result_is_said_then_bounded(complete: bool) -> None:
    done = (
        job(complete=True, succeeded=1, completion_time=FINISHED, finished_at=FINISHED)
        if complete
        else backoff_exceeded()
    )
    res = apply(resource(), decide_first())
    unreadable = ResultUnreadable(uri="s3://bkt/loras/alice/u/v1/result.json", error="connection refused")
    finished = NOW + timedelta(minutes=10)  # FINISHED
    soon = decide(res, World(now=finished + timedelta(seconds=30), jobs=(done,), unreadable=unreadable))
    s = soon.status
    assert s["phase"] == "Running" and reason(s) == "ResultUnreadable" and soon.recheck
    assert "cannot be read from the store (connection refused)" in s["message"] and "finished" in s["message"]
    assert [(e.type, e.reason) for e in soon.events] == [("Warning", "ResultUnreadable")]
    # read again and still away, past the bound: Failed, transient, nothing left Running
    late = finished + timedelta(seconds=RESULT_READ_SECONDS + 1)
    d = decide(apply(res, soon), World(now=late, jobs=(done,), unreadable=unreadable))
    assert d.status["phase"] == "Failed" and reason(d.status) == "StoreUnavailable"
    assert "could not be read from the store for 10 minutes" in d.status["message"]
    assert "edit the spec to run again" in d.status["message"] and not d.recheck
    # the store came back before the bound: the result is recorded as usual
    back = decide(
        apply(res, soon), World(now=finished + timedelta(minutes=2), jobs=(done,), outcome=lora_result(1, 1))
    )
    assert back.status["phase"] == ("Succeeded" if complete else "Failed")


FAILED_REASONS = sorted(r for r, why in REASONS.items() if why.phase == FAILED)


def finished_jobs() -> list[JobState]:
    return [
        job(complete=True, succeeded=1, completion_time=FINISHED, finished_at=FINISHED),
        backoff_exceeded(),
        job(failed=1, failed_reason="DeadlineExceeded", failed_message="deadline", finished_at=FINISHED),
        job(failed=1, failed_reason="PodFailurePolicy", failed_message="exit 3", finished_at=FINISHED),
        replace(backoff_exceeded(), name=f"lost:{backoff_exceeded().name}"),
    ]


def outcomes() -> list[RunResult | RunFailure | ResultUnreadable]:
    failures: list[RunResult | RunFailure | ResultUnreadable] = [
        RunFailure(reason=r, message="m", transient=t, kept=k)
        for r, t, k in itertools.product(FAILED_REASONS, (True, False), ([], KEPT))
    ]
    return [
        *failures,
        lora_result(1, 1),
        lora_result(1, 2),  # a result of another generation
        lora_result(1, 1).model_copy(update={"truncated": True}),
        ResultUnreadable(uri="s3://bkt/r.json", error="away"),
    ]


def test_no_status_stays_running_once_its_job_has_finished() -> None:
    """Every finished Job × every outcome the operator can read (every Failed reason, transient or
    not, with outputs kept or not; results of this and another generation; its own read failing):
    the decision ends the run, at the latest RESULT_READ_SECONDS after the Job finished."""
    late = NOW + timedelta(minutes=10, seconds=RESULT_READ_SECONDS + 1)
    seen = 0
    for finished_job, outcome in itertools.product(finished_jobs(), outcomes()):
        res = apply(resource(), decide_first())
        unreadable = outcome if isinstance(outcome, ResultUnreadable) else None
        world = World(
            now=late,
            jobs=(finished_job,),
            outcome=None if unreadable else outcome,
            unreadable=unreadable,
        )
        d = decide(res, world)
        assert d.needs_outcome is None, (finished_job, outcome)
        assert d.status["phase"] in ("Succeeded", "Failed"), (finished_job, outcome, d.status["message"])
        assert reason(d.status) != "Running"
        seen += 1
    assert seen == len(finished_jobs()) * len(outcomes())


def test_a_failure_names_what_the_run_stored(tmp_path: Path) -> None:
    """The worker notes each key it writes once; its failure names them, not its providers'
    working state under temp/."""
    store = LocalStore(tmp_path)
    written = store.record_writes()
    store.put_once_bytes("loras/alice/u/v2/model.safetensors", b"weights", "application/octet-stream")
    store.put_once_bytes("loras/alice/u/v2/model.safetensors", b"weights", "application/octet-stream")
    store.put_once_bytes("temp/u/checkpoints/lora.json", b"{}", "application/json")
    store.put_once_bytes("loras/alice/u/v2/config.json", b"{}", "application/json")
    failed = failure(
        TransientError("the store went away", reason="StoreUnavailable"), [], stored_outputs(store, written)
    )
    assert failed.kept == [
        store.uri("loras/alice/u/v2/model.safetensors"),
        store.uri("loras/alice/u/v2/config.json"),
    ]
    assert "kept in the store: 2 objects under" in failed.explained()


def test_a_long_list_of_kept_outputs_fits_the_termination_message() -> None:
    kept = [f"s3://bkt/datasets/alice/u/v2/images/{i:04d}-a-rather-long-frame-name.png" for i in range(200)]
    text = failure_message(RunFailure(reason="StoreUnavailable", message="away", transient=True, kept=kept))
    assert len(text) <= 4096
    parsed = RunFailure.model_validate_json(text)
    assert 0 < len(parsed.kept) < 200 and parsed.kept_total == 200
    assert "200 objects under s3://bkt/datasets/alice/u/v2/images/" in parsed.explained()
