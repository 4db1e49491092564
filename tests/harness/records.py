"""Catalog records a test writes as the operator would, beside those of tests/catalog/factory.py."""

from __future__ import annotations

from typing import Any

from contentgen.api import TranscriptionSpec, now
from contentgen.catalog import Catalog, ResourceState, catalog_document

WAITS = ("BudgetExceeded", "owner demo-user has spent $2.10 of its $2.00 budget for 2026-11")


def live_job(
    catalog: Catalog,
    uid: str,
    name: str,
    progress: int,
    stage: str,
    phase: str = "Running",
    reason: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """A transcription's record as the operator writes it while its run goes on (a new one, or the
    stored one with its latest run moved on); `reason`: why it waits (its Ready condition)."""
    spec = TranscriptionSpec.model_validate({"owner": "demo-user", "source": {"url": "https://e.com/a.mp3"}})
    status: dict[str, Any] = {
        "phase": phase,
        "progress": progress,
        "stage": stage,
        "message": stage,
        "runVersion": 1,
    }
    if reason:
        status["message"] = reason[1]
        status["conditions"] = [
            {"type": "Ready", "status": "False", "reason": reason[0], "message": reason[1]}
        ]
    state = ResourceState(
        kind="Transcription",
        name=name,
        namespace="default",
        uid=uid,
        generation=1,
        spec=spec.wire(),
        status=status,
        created_at=now(),
    )
    return catalog_document(state, now=now(), origin="operator", previous=catalog.get(uid))


def record(holder: Any, uid: str) -> dict[str, Any]:
    """The record of `uid` in `holder.catalog` (a test's world of a served catalog); it must exist."""
    doc = holder.catalog.get(uid)
    assert doc is not None, uid
    return doc
