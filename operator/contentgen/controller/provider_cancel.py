"""When a resource is deleted, or a spec change supersedes its run (supersede.py), the provider
requests the run left in flight are cancelled where the provider allows it, and an Event says
what was, or may still be, billed (providers/cancel.py).

The requests are read from the run's checkpoints in the store (temp/{uid}/checkpoints/); fal's
are cancelled with the operator's FAL_KEY (the chart gives it the fal Secret, optionally). A
superseded run's checkpoints are then told which requests were stopped, so a later generation
never waits on one.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any

from contentgen.api.providers import PROVIDERS, provider_entry
from contentgen.providers.cancel import (
    Cancelled,
    FalCanceller,
    completed,
    forget,
    pending,
    summary,
    uncancellable,
)
from contentgen.store import keys

from .events import post_event
from .state import Operator
from .supersede import Superseded

log = logging.getLogger(__name__)


def checkpoints(store: Any, uid: str) -> list[dict[str, Any]]:
    return [document for _, document in _checkpoints(store, uid)]


def _checkpoints(store: Any, uid: str) -> list[tuple[str, dict[str, Any]]]:
    documents = []
    for info in store.list(f"{keys.temp_root(uid)}checkpoints/"):
        try:
            document = json.loads(store.get_bytes(info.key))
        except ValueError:
            continue
        if isinstance(document, dict):
            documents.append((info.key, document))
    return documents


def _fal_key() -> str:
    return os.environ.get("FAL_KEY", "").strip()


def cancellable() -> frozenset[str]:
    """The providers whose requests this operator can stop (those that cancel, with their key in
    its environment), or that cost nothing (placeholders)."""
    return frozenset(
        p.name
        for p in PROVIDERS.values()
        if p.placeholders or (p.cancels and os.environ.get(p.key, "").strip())
    )


def cancel_all(documents: list[dict[str, Any]], fal_key: str, fal_client: Any = None) -> list[Cancelled]:
    outcomes = []
    canceller: FalCanceller | None = None  # made for the first request it cancels: not for offline's
    for request in pending(documents):
        cancels = provider_entry(request.provider).cancels  # at fal, with its key
        if cancels and fal_key:
            canceller = canceller or FalCanceller(fal_key, fal_client)
            outcomes.append(canceller.cancel(request))
        elif cancels:
            outcomes.append(uncancellable(request, "the operator has no FAL_KEY"))
        else:
            outcomes.append(uncancellable(request, f"{request.provider} offers no cancel"))
    return outcomes


async def cancel_provider_work(op: Operator, body: dict[str, Any]) -> None:
    """Never raises: a resource's deletion does not wait on a provider."""
    if op.store is None:
        return
    try:
        documents = await asyncio.to_thread(checkpoints, op.store, body["metadata"]["uid"])
        outcomes = await asyncio.to_thread(cancel_all, documents, _fal_key())
    except Exception as exc:
        await post_event(
            op, body, "Warning", "ProviderCancelFailed", f"could not cancel provider work: {exc}"
        )
        return
    if outcomes:
        billed = any(o.billing != "not billed" for o in outcomes)
        await post_event(
            op, body, "Warning" if billed else "Normal", "ProviderWorkCancelled", summary(outcomes)
        )


def stop(store: Any, uid: str, fal_key: str, fal_client: Any = None) -> Superseded:
    """Cancels what a stopped run left in flight and takes the stopped requests out of its
    checkpoints. Store errors raise; provider errors are outcomes."""
    found = _checkpoints(store, uid)
    documents = [document for _, document in found]
    outcomes = cancel_all(documents, fal_key, fal_client)
    for key, document in found:
        if forget(document, outcomes):
            store.put_bytes(key, json.dumps(document, sort_keys=True).encode(), "application/json")
    return Superseded(tuple(outcomes), tuple(completed(documents)))


async def stop_superseded(op: Operator, uid: str) -> Superseded | None:
    """`stop`, for a superseded run whose Job and pod are gone; None when the store cannot be
    read or written now (the caller tries again later)."""
    if op.store is None:
        return Superseded(seen=False)
    try:
        return await asyncio.to_thread(stop, op.store, uid, _fal_key())
    except Exception as exc:
        log.warning("could not stop the provider work of %s: %s", uid, exc)
        return None
