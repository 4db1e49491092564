"""A spec change while a run is in flight: does the new generation supersede it? (pure)

The newest spec wins when waiting for the old run would only buy output nobody asked for any
more: the old Job is stopped, its provider requests are cancelled where the provider allows it
(providers/cancel.py), an Event says what was billed, and the new generation runs at once.

The run in flight finishes first, as before, when stopping it would throw paid work away or
save nothing:
- the change leaves what the run makes as it is (only tags, description or deletionPolicy
  changed): its outputs are the new generation's too (and its paid requests are reused from the
  checkpoints, not paid again);
- its provider cannot be told to stop (AssemblyAI has no cancel; fal without a FAL_KEY in the
  operator): the requests in flight are billed whatever we do, so their output is kept;
- the Job was made by an operator that did not record what it runs.

The Job carries what it runs as annotations (jobs.py): a digest of its spec without those
bookkeeping fields, and the provider it runs on.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from contentgen.providers.cancel import NOT_BILLED, Cancelled

from .observe import JobState

# Spec fields that change nothing a run makes (what the catalog shows, what deletion does, the
# Kueue queue its Job waits in).
BOOKKEEPING = frozenset({"tags", "description", "deletionPolicy", "queueName"})


def inputs_digest(spec: Mapping[str, Any]) -> str:
    """What a run of `spec` makes, as a short digest: the spec without its bookkeeping fields."""
    made = {k: v for k, v in spec.items() if k not in BOOKKEEPING}
    return hashlib.sha256(json.dumps(made, sort_keys=True, default=str).encode()).hexdigest()[:32]


def superseding(job: JobState, spec: Mapping[str, Any], cancellable: Collection[str]) -> str:
    """Why the spec `spec` supersedes `job`, a run of an older generation still in flight; ""
    when the run finishes first. `cancellable`: the providers whose requests the operator can stop
    (or that cost nothing)."""
    if not job.inputs:
        return ""
    if job.inputs == inputs_digest(spec):
        return ""
    if job.provider not in cancellable:
        return ""
    return f"generation {job.generation} makes what the spec no longer asks for"


def spent(
    outcomes: Iterable[Cancelled], completed: Iterable[str], counted: Collection[str]
) -> list[Any] | None:
    """What the stopped run's usage is known to be: [] when nothing of it was billed (every
    request in flight was removed from the queue unprocessed, and none that ended is uncounted);
    None (unknown: its estimate is counted, so spend is never under-counted) otherwise."""
    if any(o.billing != NOT_BILLED for o in outcomes):
        return None
    if any(request not in counted for request in completed):
        return None
    return []


@dataclass(frozen=True)
class Superseded:
    """What stopping a superseded run found and did at its providers (controller/provider_cancel.py)."""

    outcomes: tuple[Cancelled, ...] = ()
    completed: tuple[str, ...] = ()  # request ids its checkpoints hold a result for
    seen: bool = True  # False: its checkpoints could not be looked at (no store configured)
