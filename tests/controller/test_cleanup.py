"""How long a deleted resource's cleanup waits for its worker pods (cleanup.pods_pending, pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from contentgen.controller.cleanup import PATIENCE_SECONDS, pods_pending
from contentgen.controller.observe import JobState

DELETED = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def job(**state: object) -> JobState:
    return JobState(name="demo-ig-0b7f1f3e-g1", namespace="ns", uid="u", generation=1, version=1, **state)  # type: ignore[arg-type]


def test_no_wait_without_a_running_job() -> None:
    assert pods_pending((), DELETED, 30, DELETED) == 0
    finished = (job(complete=True), job(failed_reason="BackoffLimitExceeded"))
    assert pods_pending(finished, DELETED, 30, DELETED) == 0


def test_a_running_job_is_waited_for_until_the_grace_period_and_the_patience_have_passed() -> None:
    running = (job(active=1, ready=1, deleting=True), job(complete=True))
    assert pods_pending(running, DELETED, 30, DELETED) == 30 + PATIENCE_SECONDS
    later = DELETED + timedelta(seconds=25)
    assert pods_pending(running, DELETED, 30, later) == 5 + PATIENCE_SECONDS
    assert pods_pending(running, DELETED, 30, DELETED + timedelta(seconds=30 + PATIENCE_SECONDS)) == 0
    assert pods_pending(running, DELETED, 0, DELETED + timedelta(hours=1)) == 0  # a node gone for good


def test_a_job_not_yet_started_counts_as_running() -> None:
    """A pod that has not started may still start (created, not yet seen by the watch)."""
    assert pods_pending((job(),), DELETED, 10, DELETED) == 10 + PATIENCE_SECONDS
