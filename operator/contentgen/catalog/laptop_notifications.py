"""A laptop's Notifications (docs/notifications.md#on-a-laptop): kept in the local catalog beside the
records, as a cluster keeps them as custom resources, for `contentgen run`, `contentgen
notifications` and the HTTP API of `contentgen api --local` alike.

What differs from a cluster is when deliveries are attempted: no operator loops, so they are
attempted at the end of each `contentgen run` (and by `contentgen notifications send`). A receiver
that does not answer is not tried on every run: its Notification backs off, a wait that doubles
after each failed try (BACKOFF_FIRST, 2x, ... up to BACKOFF_MAX), and after PAUSE_AFTER failed tries
in a row it is paused (its `spec.paused`, as a person pauses one) until `contentgen notifications
resume`; a 410 Gone pauses it at once (the receiver asks for no more). The state is its `status`:

    failing   {tries, since, retryAt, error}: the failed tries in a row, when the first was, when
              the next try may be, what the last one got; absent while deliveries succeed
    pausedBy  why `spec.paused` is true where no person set it: failures, or a 410 Gone

A Notification sees the events that happened after it was made (`creationTimestamp`), as in a
cluster (catalog/deliveries.py `wants`): earlier events are sent to it only when asked for, with
`contentgen notifications replay`.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from contentgen.api import format_time
from contentgen.api.notification import KIND as NOTIFICATION

from .base import Catalog

NOTIFICATIONS = "notifications"  # the collection beside the records
DEFAULT_NAMESPACE = "default"
BACKOFF_FIRST = 60.0  # seconds after the first failed try
BACKOFF_MAX = 3600.0
PAUSE_AFTER = 8  # failed tries in a row: about two hours of a receiver that does not answer
PAUSED_BY_FAILURES = "failures"
PAUSED_BY_GONE = "gone"


def uid_of(namespace: str, name: str) -> str:
    """A laptop Notification's uid: the same for the same namespace and name, run after run."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"contentgen-local:Notification/{namespace}/{name}"))


def backoff(tries: int) -> float:
    """Seconds to wait after `tries` failed tries in a row: BACKOFF_FIRST, doubled each time, at
    most BACKOFF_MAX."""
    return float(min(BACKOFF_FIRST * 2 ** max(0, tries - 1), BACKOFF_MAX))


def split_name(text: str) -> tuple[str, str]:
    """`NAMESPACE/NAME` or `NAME` (in the default namespace)."""
    namespace, _, name = text.rpartition("/")
    return namespace or DEFAULT_NAMESPACE, name


def name_of(notification: Mapping[str, Any]) -> str:
    meta = notification["metadata"]
    return f"{meta['namespace']}/{meta['name']}"


def failing(notification: Mapping[str, Any]) -> dict[str, Any] | None:
    return (notification.get("status") or {}).get("failing") or None


def paused(notification: Mapping[str, Any]) -> bool:
    return bool((notification.get("spec") or {}).get("paused"))


def may_send(notification: Mapping[str, Any], now: float) -> bool:
    """Whether its deliveries may be attempted now: not paused, not waiting out a backoff."""
    state = failing(notification)
    return not paused(notification) and (state is None or float(state.get("retryAt") or 0) <= now)


def after_failure(
    notification: Mapping[str, Any], error: str, now: float, *, gone: bool = False
) -> dict[str, Any]:
    """The Notification after a failed try (`error`: what it got): backing off, or paused after
    PAUSE_AFTER tries in a row, or at once where the receiver answered 410 Gone."""
    before = failing(notification) or {}
    tries = int(before.get("tries") or 0) + 1
    state = {
        "tries": tries,
        "since": float(before.get("since") or now),
        "retryAt": now + backoff(tries),
        "error": error,
    }
    status = {**(notification.get("status") or {}), "failing": state}
    spec = dict(notification.get("spec") or {})
    if gone or tries >= PAUSE_AFTER:
        spec["paused"] = True
        status["pausedBy"] = PAUSED_BY_GONE if gone else PAUSED_BY_FAILURES
    return {**notification, "spec": spec, "status": status}


def after_success(notification: Mapping[str, Any]) -> dict[str, Any]:
    status = {k: v for k, v in (notification.get("status") or {}).items() if k != "failing"}
    return {**notification, "status": status}


def resumed(notification: Mapping[str, Any]) -> dict[str, Any]:
    """Not paused, its backoff forgotten: its deliveries are attempted at once."""
    spec = {**(notification.get("spec") or {}), "paused": False}
    status = {k: v for k, v in (notification.get("status") or {}).items() if k not in ("failing", "pausedBy")}
    return {**notification, "spec": spec, "status": status}


class KeptNotifications:
    """The laptop's Notifications, in a catalog's collection."""

    def __init__(self, catalog: Catalog, clock: Callable[[], float] = time.time) -> None:
        self.docs = catalog.sibling(NOTIFICATIONS)
        self.guard = catalog.guard
        self.clock = clock

    def keep(self, content: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
        """Keep the Notification `content` (a validated manifest), as `kubectl apply` would: a new
        one made now, one of that name given this spec (its creation time kept; its state too,
        unless the spec changed, as a cluster's receiver's 410 holds until the spec changes).
        Returns it and whether it is new."""
        meta = content.get("metadata") or {}
        namespace, name = str(meta.get("namespace") or DEFAULT_NAMESPACE), str(meta["name"])
        uid = uid_of(namespace, name)
        spec = dict(content.get("spec") or {})
        earlier = self.get(namespace, name)
        created = (earlier or {}).get("metadata", {}).get("creationTimestamp") or format_time(
            datetime.fromtimestamp(self.clock(), UTC)
        )
        status = dict((earlier or {}).get("status") or {}) if earlier and earlier["spec"] == spec else {}
        body = {
            "_id": uid,
            "apiVersion": content["apiVersion"],
            "kind": NOTIFICATION,
            "metadata": {"namespace": namespace, "name": name, "uid": uid, "creationTimestamp": created},
            "spec": spec,
            "status": status,
        }
        with self.guard:
            self.docs.replace_one({"_id": uid}, body, upsert=True)
        return body, earlier is None

    def all(self) -> list[dict[str, Any]]:
        with self.guard:
            found = [dict(d) for d in self.docs.find({})]
        return sorted(found, key=name_of)

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self.guard:
            found = self.docs.find_one({"_id": uid_of(namespace, name)})
        return dict(found) if found is not None else None

    def by_uid(self, uid: str) -> dict[str, Any] | None:
        with self.guard:
            found = self.docs.find_one({"_id": uid})
        return dict(found) if found is not None else None

    def save(self, notification: Mapping[str, Any]) -> dict[str, Any]:
        """Write the Notification's spec and status as they are now in `notification`."""
        with self.guard:
            self.docs.update_one(
                {"_id": notification["_id"]},
                {"$set": {"spec": notification["spec"], "status": notification.get("status") or {}}},
            )
        return dict(notification)

    def delete(self, namespace: str, name: str) -> dict[str, Any] | None:
        """Forget the Notification; the one forgotten, or None where there was none."""
        found = self.get(namespace, name)
        if found is not None:
            with self.guard:
                self.docs.delete_one({"_id": found["_id"]})
        return found
