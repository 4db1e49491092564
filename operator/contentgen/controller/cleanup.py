"""The finalizer: what happens when a resource is deleted."""

from __future__ import annotations

import asyncio
import functools
from typing import Any

from contentgen.api import Kind, now
from contentgen.catalog.document import marked_deleted

from . import metrics
from .events import post_event
from .naming import ANNOTATION_SKIP_CLEANUP
from .observe import JobState
from .provider_cancel import cancel_provider_work
from .state import Operator


class CleanupFailed(Exception):
    """Cleaning up after a deleted resource failed; it is retried with backoff."""


async def delete(
    op: Operator,
    kind: Kind,
    body: dict[str, Any],
    jobs: tuple[JobState, ...],
    retry: int,
) -> None:
    """The finalizer: stop the Job; with deletionPolicy Delete, remove the stored objects and mark
    the catalog record deleted. A failure is reported and retried with backoff; the annotation
    contentgen.io/skip-cleanup: "true" lets the resource go without cleaning up. The caller holds
    the resource's lock."""
    meta, spec = body["metadata"], body.get("spec") or {}
    namespace, uid = meta["namespace"], meta["uid"]
    for job in jobs:
        await op.kube.delete_job(namespace, job.name)
    if jobs:  # a run was in flight: its provider requests are no one's now
        await cancel_provider_work(op, body)
    op.queue.forget(namespace, uid)
    if (meta.get("annotations") or {}).get(ANNOTATION_SKIP_CLEANUP) == "true":
        skipped = f"{ANNOTATION_SKIP_CLEANUP} is set: stored objects and the catalog record stay"
        await post_event(op, body, "Warning", "CleanupSkipped", skipped)
        metrics.CLEANUPS.labels(kind.kind, "skipped").inc()
        return
    if spec.get("deletionPolicy", "Retain") != "Delete":
        metrics.CLEANUPS.labels(kind.kind, "retained").inc()
        return
    try:
        from contentgen.store import keys

        removed = 0
        if op.store is not None:
            for prefix in keys.resource_roots(kind.catalog_type, str(spec.get("owner")), uid):
                removed += await asyncio.to_thread(op.store.delete_prefix, prefix)
        if op.catalog is not None:
            removed_mark = functools.partial(
                _outputs_removed, at=now(), policy="Delete", outputs_kept=False, by="operator"
            )
            await asyncio.to_thread(op.catalog.modify, uid, removed_mark)
    except Exception as exc:
        message = (
            f"cleanup failed (attempt {retry + 1}): {exc}; retrying. To delete without cleaning up, "
            f"annotate the resource {ANNOTATION_SKIP_CLEANUP}=true"
        )
        await op.kube.patch_status(kind, namespace, meta["name"], {"message": message})
        await post_event(op, body, "Warning", "CleanupFailed", message)
        metrics.CLEANUPS.labels(kind.kind, "failed").inc()
        raise CleanupFailed(message) from exc
    await post_event(op, body, "Normal", "CleanedUp", f"removed {removed} stored object(s)")
    metrics.CLEANUPS.labels(kind.kind, "deleted").inc()


def _outputs_removed(current: dict[str, Any] | None, **mark: Any) -> dict[str, Any] | None:
    return None if current is None else marked_deleted(current, **mark)
