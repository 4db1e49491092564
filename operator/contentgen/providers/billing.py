"""A billed call, made at most once: the one rule every provider's submit follows.

The intent is checkpointed before the request leaves (`sent`: when, and what identifies the
request at the provider). A certain answer drops it: an accepted request's id takes its place
(the caller saves it), a refusal or a failure before the request left raises. A lost answer
(`Ambiguous`) keeps it, with why, for the provider's own records to resolve before anything is
sent again; so does a crash, since nothing is cleared before the answer is known.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

from contentgen.errors import ContentgenError

from .base import Checkpoint
from .retry import Ambiguous, Classify, Retry, redact

log = logging.getLogger(__name__)

T = TypeVar("T")


def submit_once(
    retry: Retry,
    call: Callable[[], T],
    *,
    classify: Classify,
    what: str,
    saved: dict[str, Any],
    checkpoint: Checkpoint,
    intent: dict[str, Any],
    at: datetime,
    secrets: Iterable[str] = (),
) -> T | None:
    """`call()`'s answer, or None when it was lost (the intent stays in `saved["sent"]`)."""
    saved["sent"] = {"at": at.isoformat(), **intent}
    checkpoint.save(saved)  # a store refusing this write stops us before anything is paid
    try:
        answer = retry.call(call, classify=classify, what=what)
    except Ambiguous as exc:
        saved["sent"]["why"] = redact(str(exc), secrets)
        checkpoint.save(saved)
        log.warning("%s; looking for it in the provider's records before anything is sent again", exc)
        return None
    except ContentgenError:  # refused, or it never left: certainly not taken
        saved.pop("sent", None)
        checkpoint.save(saved)
        raise
    return answer


def accepted(saved: dict[str, Any], checkpoint: Checkpoint, key: str, request_id: object, why: str) -> bool:
    """Records the accepted request's id under `key` in place of the intent; a missing id keeps
    the intent (with `why`) for the provider's records to resolve. Returns whether it was named."""
    if not isinstance(request_id, str) or not request_id:
        saved["sent"]["why"] = why
        checkpoint.save(saved)
        return False
    saved.pop("sent", None)
    saved[key] = request_id
    checkpoint.save(saved)
    return True


class Part:
    """One request's share of a checkpoint that holds several (a caption per image, say), so
    each paid request keeps its own intent, id and output: `FalQueue.run(..., Part(cp, "0007"))`."""

    def __init__(self, whole: Checkpoint, name: str) -> None:
        self.whole, self.name = whole, name
        self.location = getattr(whole, "location", "")

    def load(self) -> dict[str, Any]:
        part = self.whole.load().get(self.name)
        return dict(part) if isinstance(part, dict) else {}

    def save(self, data: dict[str, Any]) -> None:
        whole = self.whole.load()
        whole[self.name] = data
        self.whole.save(whole)

    def known_requests(self) -> set[str]:
        """The request ids the other parts hold (taken or failed): none of them is this part's."""
        known: set[str] = set()
        for name, part in self.whole.load().items():
            if name != self.name and isinstance(part, dict):
                known.update(str(i) for i in [part.get("request_id"), *(part.get("failed") or [])] if i)
        return known
