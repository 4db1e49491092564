"""Webhook events and their deliveries, kept durably in the catalog's database (MongoDB in the
cluster, the embedded catalog on a laptop) beside the records (docs/notifications.md).

    notification_events      one per event (_id: its id), enqueued where the record's change is
                             written (controller/catalog_sync.py); `fanned` once a delivery was
                             made for each Notification it matched
    notification_deliveries  one per Notification and event (_id "{notification uid}:{event id}"):
                             status (pending, retrying, delivered, failed, disabled), every attempt
                             (at, code, excerpt of the answer, error, by whom), nextAttemptAt, and
                             the claim of the attempt under way

Every write is conditional (insert-if-absent, or replace if `rev` is still what was read), so two
writers never both win: an attempt is sent only by the replica whose claim was written, and a
claim names the leader (its identity and lease term) and holds for CLAIM_SECONDS, longer than a
send may last, so another leader claims the attempt again only when the first cannot be sending
it any more (it lost the Lease and exited, or crashed). Times are seconds since the epoch.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from contentgen.api import parse_timestamp

from . import webhooks
from .base import Catalog

EVENTS = "notification_events"
DELIVERIES = "notification_deliveries"
STATE = "notification_state"  # per Notification: the generation a receiver's 410 Gone disabled
CLAIM_SECONDS = 60.0  # > a send's timeout (controller/notifier.py) and the Lease's renew deadline
MAX_LOGGED_ATTEMPTS = 20  # per delivery; older attempts are counted, not kept
STATUSES = ("pending", "retrying", "delivered", "failed", "disabled")
WAITING = ("pending", "retrying")


def _duplicate(exc: Exception) -> bool:
    return "DuplicateKey" in type(exc).__name__


@dataclass(frozen=True)
class Sender:
    """Who claims attempts: the leader's identity and its lease term (the Lease's transitions)."""

    identity: str
    term: int = 0


def delivery_id(notification_uid: str, event_id: str) -> str:
    return f"{notification_uid}:{event_id}"


def wants(notification: Mapping[str, Any], event: Mapping[str, Any]) -> bool:
    """Whether the Notification (as the API server or a laptop's catalog holds it) is sent `event`:
    one its filters match (webhooks.matches) that happened once it existed. A new Notification is
    not sent every event kept from before it was made; earlier events are sent when asked for (a
    replay). One without a creation time, or an event without a time, is not judged by time."""
    meta = notification.get("metadata") or {}
    if not webhooks.matches(notification.get("spec") or {}, str(meta.get("namespace") or ""), event):
        return False
    made, happened = parse_timestamp(meta.get("creationTimestamp")), parse_timestamp(event.get("time"))
    return made is None or happened is None or happened >= made


def new_delivery(notification: Mapping[str, Any], event: Mapping[str, Any], now: float) -> dict[str, Any]:
    meta = notification["metadata"]
    data = event.get("data") or {}
    return {
        "_id": delivery_id(meta["uid"], str(event["id"])),
        "rev": 1,
        "notification": {"namespace": meta["namespace"], "name": meta["name"], "uid": meta["uid"]},
        "eventId": event["id"],
        "event": dict(event),  # its own copy: the events collection may be pruned meanwhile
        "type": event.get("type"),
        "owner": data.get("owner"),
        "resource": {"kind": data.get("kind"), "name": data.get("name"), "uid": data.get("uid")},
        "status": "pending",
        "attemptCount": 0,
        "attempts": [],
        "nextAttemptAt": now,
        "claim": None,
        "createdAt": now,
        "updatedAt": now,
        "replays": 0,
    }


def claimed(
    delivery: Mapping[str, Any], sender: Sender, now: float, generation: int = 0
) -> dict[str, Any] | None:
    """The delivery with its next attempt claimed by `sender` for the Notification at `generation`;
    None when it is not due, or another claim still holds."""
    if delivery.get("status") not in WAITING or float(delivery.get("nextAttemptAt") or 0) > now:
        return None
    claim = delivery.get("claim")
    if claim and float(claim.get("until") or 0) > now:
        return None
    attempt = int(delivery.get("attemptCount") or 0) + 1
    return {
        **delivery,
        "rev": int(delivery.get("rev") or 0) + 1,
        "claim": {
            "by": sender.identity,
            "term": sender.term,
            "attempt": attempt,
            "until": now + CLAIM_SECONDS,
            "generation": generation,
        },
        "updatedAt": now,
    }


def attempted(
    delivery: Mapping[str, Any],
    *,
    code: int,
    answer: str,
    error: str,
    now: float,
    rand: Callable[[], float],
) -> dict[str, Any]:
    """The claimed delivery after its attempt: answered `code` (0: no answer, `error` says why)."""
    claim = delivery.get("claim") or {}
    number = int(claim.get("attempt") or int(delivery.get("attemptCount") or 0) + 1)
    result = webhooks.outcome(code)
    wait = webhooks.next_wait(number, rand) if result == "retry" else None
    status = {"delivered": "delivered", "disabled": "disabled"}.get(result, "retrying" if wait else "failed")
    entry = {
        "attempt": number,
        "at": now,
        "code": code,
        "answer": answer,
        "error": error,
        "by": claim.get("by"),
    }
    return {
        **delivery,
        "rev": int(delivery.get("rev") or 0) + 1,
        "status": status,
        "attemptCount": number,
        "attempts": [*(delivery.get("attempts") or []), entry][-MAX_LOGGED_ATTEMPTS:],
        "lastCode": code,
        "lastAttemptAt": now,
        "nextAttemptAt": now + wait if wait is not None else None,
        # 410 Gone: the receiver asks for no more; its Notification sends nothing until its spec changes
        "disabledGeneration": claim.get("generation") if status == "disabled" else None,
        "claim": None,
        "updatedAt": now,
    }


def replayed(delivery: Mapping[str, Any], now: float) -> dict[str, Any]:
    """The delivery to be sent again at once (its log kept), whatever it came to."""
    return {
        **delivery,
        "rev": int(delivery.get("rev") or 0) + 1,
        "status": "pending",
        "attemptCount": 0,
        "nextAttemptAt": now,
        "claim": None,
        "replays": int(delivery.get("replays") or 0) + 1,
        "updatedAt": now,
    }


class Deliveries:
    """The two collections, over a catalog's database."""

    def __init__(self, catalog: Catalog, clock: Callable[[], float] = time.time) -> None:
        self.events = catalog.sibling(EVENTS)
        self.deliveries = catalog.sibling(DELIVERIES)
        self.state = catalog.sibling(STATE)
        self.guard = catalog.guard
        self.clock = clock

    def ensure_indexes(self) -> None:
        with self.guard:
            self.events.create_index([("fanned", 1), ("enqueuedAt", 1)], name="fanned_enqueuedAt")
            self.deliveries.create_index([("status", 1), ("nextAttemptAt", 1)], name="status_next")
            self.deliveries.create_index(
                [("notification.uid", 1), ("status", 1), ("nextAttemptAt", 1)],
                name="notification_status_next",
            )
            self.deliveries.create_index(
                [("notification.uid", 1), ("createdAt", -1)], name="notification_createdAt"
            )

    # --- events ---------------------------------------------------------------------------------

    def enqueue(self, events: Iterable[Mapping[str, Any]]) -> int:
        """Keep each event (once: an event already kept is left as it is); how many were new."""
        added = 0
        for event in events:
            doc = {"_id": event["id"], "event": dict(event), "fanned": False, "enqueuedAt": self.clock()}
            try:
                with self.guard:
                    self.events.insert_one(doc)
                added += 1
            except Exception as exc:
                if not _duplicate(exc):
                    raise
        return added

    def unfanned(self, limit: int = 100) -> list[dict[str, Any]]:
        with self.guard:
            cursor = self.events.find({"fanned": False}).sort([("enqueuedAt", 1), ("_id", 1)]).limit(limit)
            return [dict(d["event"]) for d in cursor]

    def event(self, event_id: str) -> dict[str, Any] | None:
        with self.guard:
            doc = self.events.find_one({"_id": event_id})
        return dict(doc["event"]) if doc is not None else None

    def fan_out(self, event: Mapping[str, Any], notifications: Iterable[Mapping[str, Any]]) -> int:
        """A delivery of `event` for each of `notifications` (that matched it), then the event is
        marked fanned. A crash in between makes the same deliveries again: each once."""
        made = 0
        for notification in notifications:
            made += self.add(notification, event)
        with self.guard:
            self.events.update_one({"_id": event["id"]}, {"$set": {"fanned": True, "fannedAt": self.clock()}})
        return made

    def add(self, notification: Mapping[str, Any], event: Mapping[str, Any]) -> int:
        try:
            with self.guard:
                self.deliveries.insert_one(new_delivery(notification, event, self.clock()))
        except Exception as exc:
            if not _duplicate(exc):
                raise
            return 0
        return 1

    # --- attempts -------------------------------------------------------------------------------

    def due(
        self,
        limit: int = 50,
        *,
        of: Iterable[str] | None = None,
        not_of: Iterable[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Deliveries whose next attempt is due, oldest due first: of the Notifications `of`, or of
        any but `not_of` (the notifier asks per Notification, so that one whose deliveries wait,
        paused or disabled, never holds up another's)."""
        query: dict[str, Any] = {"status": {"$in": list(WAITING)}, "nextAttemptAt": {"$lte": self.clock()}}
        if of is not None:
            query["notification.uid"] = {"$in": list(of)}
        elif not_of is not None:
            query["notification.uid"] = {"$nin": list(not_of)}
        with self.guard:
            cursor = self.deliveries.find(query).sort([("nextAttemptAt", 1), ("_id", 1)]).limit(limit)
            return [dict(d) for d in cursor]

    def waiting(self, notification_uid: str, limit: int = 1000) -> list[dict[str, Any]]:
        """The Notification's deliveries that wait for an attempt (pending or retrying), oldest
        first, whenever their next attempt is due: a laptop's runs are its rounds, and come seldom."""
        query = {"notification.uid": notification_uid, "status": {"$in": list(WAITING)}}
        with self.guard:
            cursor = self.deliveries.find(query).sort([("createdAt", 1), ("_id", 1)]).limit(limit)
            return [dict(d) for d in cursor]

    def given_up(self, notification_uid: str, since: float, limit: int = 1000) -> list[dict[str, Any]]:
        """The Notification's deliveries that ended unsent since `since`: their attempts spent
        (failed), or the receiver's 410 Gone (disabled)."""
        query = {
            "notification.uid": notification_uid,
            "status": {"$in": ["failed", "disabled"]},
            "lastAttemptAt": {"$gte": since},
        }
        with self.guard:
            cursor = self.deliveries.find(query).sort([("createdAt", 1), ("_id", 1)]).limit(limit)
            return [dict(d) for d in cursor]

    def kept_events(self, limit: int = 1000) -> list[dict[str, Any]]:
        """Every event kept (the newest 30 days), oldest first: what a replay of all may send."""
        with self.guard:
            cursor = self.events.find({}).sort([("enqueuedAt", 1), ("_id", 1)]).limit(limit)
            return [dict(d["event"]) for d in cursor]

    def _replace(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> bool:
        with self.guard:
            result = self.deliveries.replace_one(
                {"_id": before["_id"], "rev": before.get("rev")}, dict(after)
            )
        return bool(result.matched_count)

    def claim(
        self, delivery: Mapping[str, Any], sender: Sender, generation: int = 0
    ) -> dict[str, Any] | None:
        """Claim the delivery's next attempt for `sender` (its Notification at `generation`): the
        claimed delivery, or None when it is not due, another claim holds, or another writer came
        first."""
        wanted = claimed(delivery, sender, self.clock(), generation)
        if wanted is None or not self._replace(delivery, wanted):
            return None
        return wanted

    def record(
        self,
        delivery: Mapping[str, Any],
        *,
        code: int,
        answer: str = "",
        error: str = "",
        rand: Callable[[], float] = random.random,
    ) -> dict[str, Any] | None:
        """Record the attempt of a claimed delivery; None when the claim was lost meanwhile (another
        leader claimed it after CLAIM_SECONDS: its record is the one kept)."""
        after = attempted(delivery, code=code, answer=answer, error=error, now=self.clock(), rand=rand)
        if not self._replace(delivery, after):
            return None
        if after["status"] == "disabled":
            uid = after["notification"]["uid"]
            with self.guard:
                self.state.replace_one(
                    {"_id": uid},
                    {"_id": uid, "disabledGeneration": after["disabledGeneration"], "at": self.clock()},
                    upsert=True,
                )
        return after

    def hasten(self, notification_uid: str) -> int:
        """The receiver answered again (a delivery to it succeeded): its deliveries waiting for a
        later retry are due now rather than on timers drawn while it was down. Each is a
        conditional write (its `rev`), like every other; returns how many were brought forward."""
        now = self.clock()
        query = {
            "notification.uid": notification_uid,
            "status": "retrying",
            "nextAttemptAt": {"$gt": now},
        }
        with self.guard:
            waiting = [dict(d) for d in self.deliveries.find(query)]
        moved = 0
        for delivery in waiting:
            if delivery.get("claim") and float(delivery["claim"].get("until") or 0) > now:
                continue  # an attempt of it is under way
            forward = {
                **delivery,
                "rev": int(delivery.get("rev") or 0) + 1,
                "nextAttemptAt": now,
                "updatedAt": now,
            }
            moved += self._replace(delivery, forward)
        return moved

    def replay(self, notification: Mapping[str, Any], event_id: str) -> bool:
        """Send the event to the Notification again (its delivery reset, or made if it had none);
        False when there is no such event."""
        uid = notification["metadata"]["uid"]
        for _ in range(4):
            with self.guard:
                current = self.deliveries.find_one({"_id": delivery_id(uid, event_id)})
            if current is None:
                event = self.event(event_id)
                if event is None:
                    return False
                if self.add(notification, event):
                    return True
                continue
            if self._replace(current, replayed(current, self.clock())):
                return True
        return False

    def abandon(self, delivery: Mapping[str, Any], why: str) -> bool:
        """Give a delivery up (its Notification is gone): failed, with why, no further attempt."""
        entry = {"attempt": 0, "at": self.clock(), "code": 0, "answer": "", "error": why, "by": ""}
        after = {
            **delivery,
            "rev": int(delivery.get("rev") or 0) + 1,
            "status": "failed",
            "attempts": [*(delivery.get("attempts") or []), entry][-MAX_LOGGED_ATTEMPTS:],
            "nextAttemptAt": None,
            "claim": None,
            "updatedAt": self.clock(),
        }
        return self._replace(delivery, after)

    def prune(self, older_than: float) -> int:
        """Forget fanned-out events and finished deliveries older than `older_than` seconds."""
        before = self.clock() - older_than
        with self.guard:
            events = self.events.delete_many({"fanned": True, "enqueuedAt": {"$lt": before}})
            done = self.deliveries.delete_many(
                {"status": {"$in": ["delivered", "failed", "disabled"]}, "updatedAt": {"$lt": before}}
            )
        return int(events.deleted_count) + int(done.deleted_count)

    # --- reading --------------------------------------------------------------------------------

    def log(
        self, notification_uid: str, owners: Iterable[str] | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """A Notification's deliveries, newest first; with `owners`, only those of their resources."""
        query: dict[str, Any] = {"notification.uid": notification_uid}
        if owners is not None:
            query["owner"] = {"$in": list(owners)}
        with self.guard:
            cursor = self.deliveries.find(query).sort([("createdAt", -1), ("_id", 1)]).limit(limit)
            return [dict(d) for d in cursor]

    def find(
        self,
        owners: Iterable[str] | None,
        *,
        namespace: str | None = None,
        notification: str | None = None,
        event_id: str | None = None,
        status: str | None = None,
        limit: int = 50,
    ) -> list[dict[str, Any]]:
        """Deliveries of the owners' resources (None: everyone's), newest first (the HTTP API)."""
        query: dict[str, Any] = {}
        if owners is not None:
            query["owner"] = {"$in": list(owners)}
        for field, value in (
            ("notification.namespace", namespace),
            ("notification.name", notification),
            ("eventId", event_id),
            ("status", status),
        ):
            if value is not None:
                query[field] = value
        with self.guard:
            cursor = self.deliveries.find(query).sort([("createdAt", -1), ("_id", 1)]).limit(limit)
            return [dict(d) for d in cursor]

    def disabled(self, notification_uid: str, generation: int) -> bool:
        """Whether the receiver answered 410 Gone to the Notification at this generation."""
        with self.guard:
            found = self.state.find_one({"_id": notification_uid})
        return found is not None and found.get("disabledGeneration") == generation

    def summary(self, notification_uid: str) -> tuple[dict[str, Any] | None, int]:
        """The Notification's newest attempted delivery and how many wait for an attempt."""
        with self.guard:
            waiting = self.deliveries.count_documents(
                {"notification.uid": notification_uid, "status": {"$in": list(WAITING)}}
            )
            newest = list(
                self.deliveries.find({"notification.uid": notification_uid, "lastAttemptAt": {"$ne": None}})
                .sort([("lastAttemptAt", -1)])
                .limit(1)
            )
        return (dict(newest[0]) if newest else None), int(waiting)
