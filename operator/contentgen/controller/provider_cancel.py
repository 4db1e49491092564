"""When a resource is deleted, the provider requests its run left in flight are cancelled where the
provider allows it, and an Event says what was, or may still be, billed (providers/cancel.py).

The requests are read from the run's checkpoints in the store (temp/{uid}/checkpoints/); fal's
are cancelled with the operator's FAL_KEY (the chart gives it the fal Secret, optionally).
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

from contentgen.providers.cancel import Cancelled, FalCanceller, pending, summary, uncancellable
from contentgen.store import keys

from .events import post_event
from .state import Operator


def checkpoints(store: Any, uid: str) -> list[dict[str, Any]]:
    documents = []
    for info in store.list(f"{keys.temp_root(uid)}checkpoints/"):
        try:
            document = json.loads(store.get_bytes(info.key))
        except ValueError:
            continue
        if isinstance(document, dict):
            documents.append(document)
    return documents


def cancel_all(documents: list[dict[str, Any]], fal_key: str, fal_client: Any = None) -> list[Cancelled]:
    outcomes = []
    canceller = FalCanceller(fal_key, fal_client) if fal_key else None
    for request in pending(documents):
        if request.provider == "fal" and canceller is not None:
            outcomes.append(canceller.cancel(request))
        elif request.provider == "fal":
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
        key = os.environ.get("FAL_KEY", "").strip()
        outcomes = await asyncio.to_thread(cancel_all, documents, key)
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
