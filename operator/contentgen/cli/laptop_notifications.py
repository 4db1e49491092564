"""Notifications on a laptop (docs/notifications.md#on-a-laptop): `contentgen run notification.yaml`
keeps the Notification in the local catalog (catalog/laptop_notifications.py), and each later
`contentgen run` sends the events of its run to the Notifications that match them, signed as the
operator signs them.

The decisions are the operator's (catalog/webhooks.py: events, matching, signature;
catalog/deliveries.py: the delivery log and `wants`, which events a Notification is sent) and so is
the send (controller/notifier.py `send`: the host checked, no proxy, no redirect). What differs is
when: there is no operator looping, so the deliveries waiting are attempted at the end of each run,
oldest first, and the first that fails ends the Notification's turn: it backs off (the wait doubles
after each failed try) and is paused after PAUSE_AFTER in a row. A failure is said once, when
deliveries start failing, and again only when the Notification is paused; a run in between says
nothing of it (`contentgen notifications list` shows the state).
The signing key is a file beside the local store (WEBHOOK_SECRETS), made on first use.
"""

from __future__ import annotations

import base64
import ipaddress
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from contentgen.api import now
from contentgen.api.words import counted
from contentgen.catalog import Catalog, webhooks
from contentgen.catalog.deliveries import Deliveries, Sender, wants
from contentgen.catalog.laptop_notifications import (
    BACKOFF_FIRST,
    BACKOFF_MAX,
    PAUSE_AFTER,
    PAUSED_BY_GONE,
    KeptNotifications,
    after_failure,
    after_success,
    failing,
    may_send,
    name_of,
    paused,
)

WEBHOOK_SECRETS = "webhook-secrets"  # in the local data folder: one signing key per Notification
SENDS_PER_RUN = 20  # per Notification
SEND_TIMEOUT = 5.0
LAPTOP = Sender("contentgen-run", 0)
Send = Callable[..., Any]  # controller/notifier.py's send


def key_file(data_dir: Path, namespace: str, name: str) -> Path:
    return data_dir / WEBHOOK_SECRETS / f"{namespace}_{name}"


def signing_key(path: Path) -> str:
    """The key in `path` (whsec_ and base64 of 32 random bytes), made there if there is none."""
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        made = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(made + "\n")
    return path.read_text().strip()


def keep(catalog: Catalog, content: dict[str, Any], data_dir: Path) -> tuple[dict[str, Any], Path, bool]:
    """Keep the Notification `content` (a validated manifest) in the local catalog, as the operator
    would see it in a cluster: it is sent the events of runs from now on. The events kept so far are
    handed to the Notifications that existed when they happened first, so none of them is sent to
    this one. Returns it, its signing key's file and whether it is new."""
    fan_out(Deliveries(catalog), KeptNotifications(catalog).all())
    body, new = KeptNotifications(catalog).keep(content)
    meta = body["metadata"]
    path = key_file(data_dir, meta["namespace"], meta["name"])
    signing_key(path)
    return body, path, new


def on_this_machine(url: str) -> bool:
    """Whether `url`'s host is this machine or a private network's address, as written (no name is
    looked up): what the URL check refuses unless CONTENTGEN_ALLOW_PRIVATE_SOURCES."""
    host = (urlparse(url).hostname or "").strip("[]")
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return not address.is_global


def fan_out(deliveries: Deliveries, notifications: list[dict[str, Any]]) -> None:
    """Each event not handed out yet, a delivery for every Notification that wants it (none: the
    event is handed out all the same, so that a Notification made later is not sent it)."""
    while events := deliveries.unfanned():
        for event in events:
            deliveries.fan_out(event, [n for n in notifications if wants(n, event)])


def after_run(
    catalog: Catalog,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    data_dir: Path,
    *,
    allow_private: bool,
    sender: Send | None = None,
    clock: Callable[[], float] = time.time,
) -> list[str]:
    """The run's events (`before` → `after`, the record) handed to the laptop's Notifications that
    want them, and each Notification's waiting deliveries attempted, unless it is paused or backing
    off; a line for what a person should hear of."""
    deliveries = Deliveries(catalog, clock=clock)
    if after is not None:
        deliveries.enqueue(webhooks.events_of(before, after, now()))
    kept = KeptNotifications(catalog, clock)
    fan_out(deliveries, kept.all())
    return Laptop(catalog, data_dir, allow_private=allow_private, sender=sender, clock=clock).send()


@dataclass
class Laptop:
    """Sending a laptop's waiting deliveries: `send` after a run, and `contentgen notifications`."""

    catalog: Catalog
    data_dir: Path
    allow_private: bool
    sender: Send | None = None
    clock: Callable[[], float] = time.time

    def send(self, only: list[str] | None = None, *, asked: bool = False) -> list[str]:
        """Attempt the waiting deliveries of the Notifications `only` names (None: every one), each
        Notification's oldest first until one fails. `asked` (a person asked for this send): past a
        backoff too, and every outcome said."""
        kept = KeptNotifications(self.catalog, self.clock)
        said: list[str] = []
        for notification in kept.all():
            if only is not None and notification["_id"] not in only:
                continue
            if paused(notification) or not (asked or may_send(notification, self.clock())):
                continue
            said += self._turn(kept, notification, asked=asked)
        return said

    def _turn(self, kept: KeptNotifications, notification: dict[str, Any], *, asked: bool) -> list[str]:
        deliveries = Deliveries(self.catalog, clock=self.clock)
        waiting = deliveries.waiting(notification["_id"], SENDS_PER_RUN)
        name, said = name_of(notification), []
        was_failing = failing(notification)
        for delivery in waiting:
            claimed = deliveries.claim({**delivery, "nextAttemptAt": self.clock()}, LAPTOP)
            if claimed is None:
                continue
            answer = self._post(notification, claimed["event"])
            done = deliveries.record(
                claimed, code=answer.code, answer=webhooks.excerpt(answer.body), error=answer.error
            )
            if done is not None and done["status"] == "delivered":
                said.append(f"notification {name}: {claimed['type']} delivered (HTTP {answer.code})")
                continue
            why = f"HTTP {answer.code}" if answer.code else answer.error
            at = float((done or {}).get("lastAttemptAt") or self.clock())  # the failures' clock: the log's
            after = kept.save(after_failure(notification, why, at, gone=answer.code == 410))
            since = float(
                (failing(after) or {}).get("since") or 0
            )  # its attempts spent meanwhile: resumed too
            left = len(deliveries.waiting(notification["_id"])) + len(
                deliveries.given_up(notification["_id"], since)
            )
            line = _failure(after, claimed["type"], why, left, asked=asked)
            return [*said, *([line] if line else [])]
        if was_failing is not None:
            kept.save(after_success(notification))
            said.append(
                f"notification {name}: its receiver answers again, after "
                f"{counted(int(was_failing.get('tries') or 0), 'failed try')}"
            )
        return said

    def _post(self, notification: Mapping[str, Any], event: Mapping[str, Any]) -> Any:
        from contentgen.controller.notifier import send

        meta = notification["metadata"]
        key = signing_key(key_file(self.data_dir, meta["namespace"], meta["name"]))
        return (self.sender or send)(
            notification["spec"]["url"],
            event,
            [webhooks.decode_secret(key)],
            allow_private=self.allow_private,
            timeout=SEND_TIMEOUT,
        )


def _failure(notification: Mapping[str, Any], what: str, why: str, left: int, *, asked: bool) -> str:
    """What a person hears of a failed try: once when deliveries start failing, once when the
    Notification is paused (and each time a person asked for the send); "" otherwise."""
    name, state = name_of(notification), failing(notification) or {}
    tries = int(state.get("tries") or 1)
    waits = f"{counted(left, 'delivery')} {'waits' if left == 1 else 'wait'}"
    if paused(notification):
        if (notification.get("status") or {}).get("pausedBy") == PAUSED_BY_GONE:
            cause = "its receiver answered 410 Gone (it asks for no more)"
        else:
            cause = f"{counted(tries, 'failed try')} in a row (the last: {why})"
        return (
            f"notification {name} paused: {cause}; {waits}. `contentgen notifications resume {name}` "
            "sends them"
        )
    if tries > 1 and not asked:
        return ""  # said when the failures began; the state is in `contentgen notifications list`
    later = time.strftime("%H:%M:%S", time.localtime(float(state.get("retryAt") or 0)))
    return (
        f"notification {name}: {what} not delivered ({why}); {waits}, tried again by a run after {later} "
        f"(the wait doubles after each failed try, {BACKOFF_FIRST / 60:g} min up to "
        f"{BACKOFF_MAX / 3600:g} h; paused after {PAUSE_AFTER} in a row): `contentgen notifications "
        f"send {name}` tries now, `contentgen notifications list` shows them"
    )
