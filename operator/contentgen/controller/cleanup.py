"""The finalizer: what happens when a resource is deleted.

Its Jobs are deleted in the foreground (a Job goes only after its pods have), and the cleanup
waits for them: a worker still running could ask a provider for more or write outputs after the
cleanup cancelled and deleted. SIGTERM stops a worker at once (cli/worker.py), so the wait is
short; it is bounded by the pods' grace period and PATIENCE_SECONDS more (a node that is gone
never reports its pods' end), from the resource's deletion.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from contentgen.api import Kind, now
from contentgen.api.words import counted
from contentgen.catalog.document import marked_deleted

from . import metrics
from .events import post_event
from .naming import ANNOTATION_SKIP_CLEANUP
from .observe import JobState
from .provider_cancel import cancel_provider_work
from .state import Operator

# After the grace period a kubelet kills the pod; this much longer is left for the node to say so
# and the garbage collector to remove the pod and its Job.
PATIENCE_SECONDS = 30.0


class CleanupFailed(Exception):
    """Cleaning up after a deleted resource failed; it is retried with backoff."""


def pods_pending(
    jobs: Iterable[JobState], deleted_at: datetime | None, grace_seconds: float, now: datetime
) -> float:
    """Seconds the cleanup still waits for the resource's worker pods to end: 0 once no Job of it
    runs (a Job deleted in the foreground goes after its pods), or once the grace period and
    PATIENCE_SECONDS have passed since the resource's deletion."""
    if all(job.finished for job in jobs) or deleted_at is None:
        return 0.0
    end = deleted_at + timedelta(seconds=grace_seconds + PATIENCE_SECONDS)
    return max((end - now).total_seconds(), 0.0)


async def delete(op: Operator, kind: Kind, body: dict[str, Any], retry: int) -> None:
    """The finalizer, once the resource's worker pods have ended (`pods_pending`): cancel the
    provider requests its runs left in flight; with deletionPolicy Delete, remove the stored
    objects and mark the catalog record deleted. A failure is reported and retried with backoff;
    the annotation contentgen.io/skip-cleanup: "true" lets the resource go without cleaning up.
    The caller holds the resource's lock."""
    meta, spec = body["metadata"], body.get("spec") or {}
    namespace, uid = meta["namespace"], meta["uid"]
    await cancel_provider_work(op, body)  # what its checkpoints hold unanswered is no one's now
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
    await post_event(op, body, "Normal", "CleanedUp", f"removed {counted(removed, 'stored object')}")
    metrics.CLEANUPS.labels(kind.kind, "deleted").inc()


def _outputs_removed(current: dict[str, Any] | None, **mark: Any) -> dict[str, Any] | None:
    return None if current is None else marked_deleted(current, **mark)
