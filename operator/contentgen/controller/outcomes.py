"""What a finished Job produced: the worker's termination message, or the result it stored.

Always answers: a RunResult, a RunFailure that says why there is none (the worker's own failure,
whatever its reason, StoreUnavailable included), or ResultUnreadable when the operator's own read of
the stored result failed, so a finished Job is recorded exactly once and never run again by accident.
"""

from __future__ import annotations

import asyncio
import logging

from contentgen.api import RunFailure, RunResult
from contentgen.api.run import parse_termination
from contentgen.store import ObjectStore, keys
from contentgen.store.results import read_result

from .decide import Observed, ResultUnreadable
from .observe import JobState
from .outages import one_line

log = logging.getLogger(__name__)


async def read_outcome(
    job: JobState, res: Observed, message: str | None, store: ObjectStore | None
) -> RunResult | RunFailure | ResultUnreadable:
    """`message` is the worker's termination message (from the Job's latest finished pod)."""
    lost = job.name.startswith("lost:")
    message = None if lost else message
    parsed = parse_termination(message) if message else None
    if isinstance(parsed, RunFailure):
        return parsed
    if isinstance(parsed, RunResult) and not parsed.truncated and parsed.generation == job.generation:
        return parsed

    if store is not None:  # the full result, next to the outputs
        key = keys.result_key(res.kind.catalog_type, str(res.spec.get("owner")), res.uid, job.version)
        try:
            stored = await asyncio.to_thread(read_result, store, key)
        except Exception as exc:  # a store outage: say so rather than guess
            log.warning(
                "cannot read the result of Job %s/%s (%s): %s; will retry",
                job.namespace,
                job.name,
                key,
                one_line(exc),
            )
            return ResultUnreadable(uri=store.uri(key), error=one_line(exc))
        if stored is not None and stored.generation == job.generation:
            return stored

    if lost:
        return RunFailure(
            reason="JobLost", message=f"{job.failed_message} and left no result; edit the spec to run again"
        )
    if job.failed_reason:
        detail = f"; the worker's last words: {message.strip()[-500:]}" if message else ""
        return RunFailure(
            reason=job.failed_reason, message=f"{job.failed_message or 'the Job failed'}{detail}"
        )
    return RunFailure(reason="ResultMissing", message=f"Job {job.name} completed without leaving a result")
