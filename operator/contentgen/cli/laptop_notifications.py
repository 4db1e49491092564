"""Notifications on a laptop (docs/notifications.md#on-a-laptop): `contentgen run notification.yaml`
keeps the Notification in the local catalog, and each later `contentgen run` sends the events of
its run to the Notifications that match them, signed as the operator signs them.

The decisions are the operator's (catalog/webhooks.py: events, matching, schedule, signature;
catalog/deliveries.py: the delivery log) and so is the send (controller/notifier.py `send`: the
host checked, no proxy, no redirect). What differs is when: there is no operator looping, so the
deliveries waiting are attempted at the end of each run, once each (a retry waits for the next run,
not for the operator's schedule).
The signing key is a file beside the local store (WEBHOOK_SECRETS), made on first use.
"""

from __future__ import annotations

import base64
import os
import secrets
import uuid
from pathlib import Path
from typing import Any

from contentgen.api import now
from contentgen.catalog import Catalog, webhooks
from contentgen.catalog.deliveries import Deliveries, Sender

NOTIFICATIONS = "notifications"  # the laptop's Notifications, beside the records
WEBHOOK_SECRETS = "webhook-secrets"  # in the local data folder: one signing key per Notification
SENDS_PER_RUN = 20
SEND_TIMEOUT = 5.0
LAPTOP = Sender("contentgen-run", 0)


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


def keep(catalog: Catalog, content: dict[str, Any], data_dir: Path) -> tuple[dict[str, Any], Path]:
    """Keep the Notification `content` (a validated manifest) in the local catalog, as the operator
    would see it in a cluster; returns it and its signing key's file."""
    meta = content.get("metadata") or {}
    namespace, name = str(meta.get("namespace") or "default"), str(meta["name"])
    body = {
        "_id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"contentgen-local:Notification/{namespace}/{name}")),
        "apiVersion": content["apiVersion"],
        "kind": "Notification",
        "metadata": {"namespace": namespace, "name": name},
        "spec": dict(content.get("spec") or {}),
    }
    body["metadata"]["uid"] = body["_id"]
    path = key_file(data_dir, namespace, name)
    signing_key(path)
    with catalog.guard:
        catalog.sibling(NOTIFICATIONS).replace_one({"_id": body["_id"]}, body, upsert=True)
    return body, path


def after_run(
    catalog: Catalog,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    data_dir: Path,
    *,
    allow_private: bool,
) -> list[str]:
    """The run's events (`before` → `after`, the record) fanned out to the laptop's Notifications
    that match them, and every attempt due sent once; a line per attempt, for people."""
    from contentgen.controller.notifier import send

    with catalog.guard:
        kept = [dict(d) for d in catalog.sibling(NOTIFICATIONS).find({})]
    deliveries = Deliveries(catalog)
    if after is not None:
        deliveries.enqueue(webhooks.events_of(before, after, now()))
    if not kept:
        return []
    for event in deliveries.unfanned():
        deliveries.fan_out(
            event,
            [n for n in kept if webhooks.matches(n["spec"], n["metadata"]["namespace"], event)],
        )
    by_uid = {n["metadata"]["uid"]: n for n in kept}
    said = []
    # every delivery waiting, whatever the operator's schedule would wait: a laptop's runs are its
    # rounds, and they come seldom
    waiting = Deliveries(catalog, clock=lambda: float("inf")).due(SENDS_PER_RUN, of=list(by_uid))
    for delivery in waiting:
        notification = by_uid[delivery["notification"]["uid"]]
        if notification["spec"].get("paused"):
            continue
        claimed = deliveries.claim({**delivery, "nextAttemptAt": deliveries.clock()}, LAPTOP)
        if claimed is None:
            continue
        meta = notification["metadata"]
        key = signing_key(key_file(data_dir, meta["namespace"], meta["name"]))
        answer = send(
            notification["spec"]["url"],
            claimed["event"],
            [webhooks.decode_secret(key)],
            allow_private=allow_private,
            timeout=SEND_TIMEOUT,
        )
        done = deliveries.record(
            claimed, code=answer.code, answer=webhooks.excerpt(answer.body), error=answer.error
        )
        what = f"notification {meta['namespace']}/{meta['name']}: {claimed['type']}"
        if done is not None and done["status"] == "delivered":
            said.append(f"{what} delivered (HTTP {answer.code})")
        else:
            why = f"HTTP {answer.code}" if answer.code else answer.error
            retried = done is not None and done["status"] == "retrying"
            later = "sent again by a later contentgen run" if retried else "given up"
            said.append(f"{what} not delivered ({why}); {later}")
    return said
