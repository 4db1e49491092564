"""Stopping paid work nobody wants any more, and saying what was billed.

When a resource is deleted while its run is in flight, its provider requests may still be
queued at the provider. fal's queue cancels a request (PUT .../requests/{id}/cancel,
https://fal.ai/docs/documentation/development/handle-cancellations): one still waiting in the
queue "is removed and never processed", so it is not billed (fal bills successful outputs only,
https://fal.ai/docs/documentation/model-apis/pricing); one already running is sent a cancellation
signal, and may still finish and be billed; one that has ended cannot be cancelled (400
ALREADY_COMPLETED) and was billed if it succeeded. AssemblyAI offers no way to stop a transcript
once created (https://www.assemblyai.com/docs/api-reference); it is billed if it completes.

`pending(documents)` is the pure part: which requests, recorded in a run's checkpoints, may still
be running; `completed` which ended with a result (paid); `forget` takes the cancelled ones out of
a checkpoint, as the worker does with a request fal reports failed, so that a later generation
with the same inputs submits anew instead of waiting on a request that was stopped.
`FalCanceller` is the thin adapter that asks fal.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

NOT_BILLED, MAY_BE_BILLED, BILLED_IF_SUCCEEDED, UNKNOWN = (
    "not billed",
    "may be billed",
    "billed if it succeeded",
    "unknown",
)


@dataclass(frozen=True)
class Pending:
    provider: str
    app: str  # the endpoint (fal) it was submitted to; "" when the provider has none
    request_id: str  # "" for a submit whose answer never came (nothing to cancel by)


@dataclass(frozen=True)
class Cancelled:
    request: Pending
    billing: str  # NOT_BILLED, MAY_BE_BILLED, BILLED_IF_SUCCEEDED or UNKNOWN
    detail: str


def _parts(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A checkpoint is one request's record ({provider, app, request_id | transcript_id | sent,
    result, failed}) or, for captions, a record per part."""
    return [document] if "provider" in document else [v for v in document.values() if isinstance(v, dict)]


def pending(documents: Iterable[Mapping[str, Any]]) -> list[Pending]:
    """The provider requests a run's checkpoints hold that have no result yet (the offline
    provider's cost nothing and are left out)."""
    found: list[Pending] = []
    for document in documents:
        for part in _parts(document):
            provider, app = str(part.get("provider") or ""), str(part.get("app") or "")
            if isinstance(part.get("result"), dict) or not provider or provider == "offline":
                continue
            request_id = part.get("request_id") or part.get("transcript_id")
            if request_id:
                found.append(Pending(provider, app, str(request_id)))
            elif part.get("sent"):
                found.append(Pending(provider, app, ""))
    return found


def completed(documents: Iterable[Mapping[str, Any]]) -> list[str]:
    """The request ids a run's checkpoints hold a result for: billed (by that run or an earlier)."""
    return [
        str(part.get("request_id") or part.get("transcript_id"))
        for document in documents
        for part in _parts(document)
        if isinstance(part.get("result"), dict) and (part.get("request_id") or part.get("transcript_id"))
    ]


def forget(document: dict[str, Any], outcomes: Iterable[Cancelled]) -> bool:
    """Takes the requests that were stopped (cancelled in the queue, or signalled while running)
    out of a checkpoint: their id moves to `failed`, as when fal reports a request failed, so no
    later run waits on them. Returns whether `document` changed."""
    stopped = {o.request.request_id for o in outcomes if o.billing in (NOT_BILLED, MAY_BE_BILLED)}
    changed = False
    for part in _parts(document):
        request_id = part.get("request_id")
        if request_id and request_id in stopped and not isinstance(part.get("result"), dict):
            assert isinstance(part, dict)
            part.pop("request_id")
            part.setdefault("failed", []).append(request_id)
            changed = True
    return changed


class FalCanceller:
    """Cancels requests on fal's queue with `key` (an SDK client; `fal_client.SyncClient`)."""

    def __init__(self, key: str, client: Any | None = None) -> None:
        import fal_client

        self._fal = client or fal_client.SyncClient(key=key)

    def cancel(self, request: Pending) -> Cancelled:
        import fal_client

        if not request.request_id:
            return Cancelled(request, UNKNOWN, "its submit's answer was lost: no request id to cancel by")
        handle = self._fal.get_handle(request.app, request.request_id)
        try:
            handle.cancel()
        except fal_client.FalClientHTTPError as exc:
            if exc.status_code == 400:
                return Cancelled(request, BILLED_IF_SUCCEEDED, "it had already ended")
            return Cancelled(request, UNKNOWN, f"fal answered the cancel with HTTP {exc.status_code}")
        except Exception as exc:
            return Cancelled(request, UNKNOWN, f"the cancel did not reach fal ({type(exc).__name__})")
        try:
            status = handle.status()
        except Exception as exc:
            return Cancelled(
                request, MAY_BE_BILLED, f"cancel requested; its state is unknown ({type(exc).__name__})"
            )
        if isinstance(status, fal_client.Completed) and status.error:
            return Cancelled(request, NOT_BILLED, "cancelled before it ran")
        if isinstance(status, fal_client.Queued):
            return Cancelled(request, NOT_BILLED, "cancelled in the queue; fal removes it unprocessed")
        return Cancelled(request, MAY_BE_BILLED, "it was already running: fal signalled it to stop")


def uncancellable(request: Pending, why: str) -> Cancelled:
    return Cancelled(request, BILLED_IF_SUCCEEDED, f"not cancelled ({why})")


def summary(outcomes: Iterable[Cancelled]) -> str:
    """One line for an Event: what was cancelled and what was (or may be) billed."""
    parts = [
        f"{o.request.provider} {o.request.app} request {o.request.request_id or '(no id)'}: "
        f"{o.detail}; {o.billing}"
        for o in outcomes
    ]
    return "; ".join(parts) or "no provider request was in flight"
