"""Webhook notifications, the pure part (docs/notifications.md): which events a catalog record's
change emits, which Notifications an event matches, the retry schedule, and the Standard Webhooks
signature.

Events come from the record's change, not from one status write: the record is written from the
resource's status with a conditional write that never goes backwards (controller/catalog_sync.py),
so comparing the record before and after names every transition once, even when the operator saw
several at once (after a restart, a handover or an outage). Each event's id is derived from what it
is about (the resource's uid, the version or run, the event), so that writing it twice, by this
replica or another, is writing the same event: delivery is at least once, and a receiver
deduplicates by the id (`webhook-id`, the CloudEvent's `id`).

    succeeded       a usable version appeared (each version once)
    likenessPoor    a new version's likeness verdict is poor: a LoRA version's (or a
                    LoraEvaluation's) `likeness`, a video's likeness over time (`video.likeness`)
    failed          the latest run (its generation and run version) failed
    budgetReached   the latest run waits: a monthly budget would be exceeded (BudgetExceeded)
    queued          the latest run's Job exists and is held suspended (Queued with its jobName: by
                    Kueue, or by hand); Queued without a Job is the namespace's own Job limit

The signature is the specification's `v1`: HMAC-SHA256 over `{id}.{timestamp}.{body}` with the
secret (base64 after `whsec_`), base64-encoded; with two secrets (rotation), two signatures,
space-separated.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from contentgen.api import KINDS

from .migrate import upgrade

SPEC_VERSION = "1.0"
TYPE_PREFIX = "io.contentgen"
SECRET_PREFIX = "whsec_"  # noqa: S105 (the format's prefix, not a secret)
# The waits before each retry (the Standard Webhooks specification's example schedule): the first
# attempt at once, then after about 5 s, 5 min, 30 min, 2 h, 5 h, 10 h and 10 h; then it fails.
SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
MAX_ATTEMPTS = len(SCHEDULE) + 1
MIN_WAIT = 1.0
EXCERPT_BYTES = 512  # of a receiver's answer, kept in the delivery log
MAX_BODY_BYTES = 256 * 1024


# --- events --------------------------------------------------------------------------------------


def event_id(uid: str, about: str) -> str:
    """The id of the event `about` (e.g. "v3/succeeded") of the resource `uid`: the same whoever
    derives it, so that enqueueing it twice is enqueueing it once."""
    digest = hashlib.sha256(f"{uid}/{about}".encode()).hexdigest()[:32]
    return f"evt_{digest}"


def event_type(kind: str, event: str) -> str:
    return f"{TYPE_PREFIX}.{kind.lower()}.{event}"


def _time(value: Any, fallback: datetime) -> str:
    when = value if isinstance(value, datetime) else fallback
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _source(doc: Mapping[str, Any]) -> str:
    kind = KINDS.get(str(doc.get("kind")))
    plural = kind.plural if kind is not None else f"{str(doc.get('kind')).lower()}s"
    return f"/apis/contentgen.io/v1alpha1/namespaces/{doc.get('namespace')}/{plural}/{doc.get('name')}"


def cloud_event(
    doc: Mapping[str, Any], event: str, about: str, when: Any, now: datetime, data: dict[str, Any]
) -> dict[str, Any]:
    """A CloudEvents 1.0 event (JSON format) about the record `doc`."""
    uid = str(doc.get("_id") or doc.get("jobId"))
    return {
        "specversion": SPEC_VERSION,
        "id": event_id(uid, about),
        "source": _source(doc),
        "type": event_type(str(doc.get("kind")), event),
        "subject": str(doc.get("name")),
        "time": _time(when, now),
        "datacontenttype": "application/json",
        "data": {
            "event": event,
            "kind": doc.get("kind"),
            "name": doc.get("name"),
            "namespace": doc.get("namespace"),
            "uid": uid,
            "owner": doc.get("owner"),
            **data,
        },
    }


def _versions(doc: Mapping[str, Any] | None) -> set[int]:
    if doc is None:
        return set()
    return {int(v["version"]) for v in (doc.get("versions") or []) + (doc.get("deletedVersions") or [])}


def _run_id(run: Mapping[str, Any]) -> str:
    return f"g{int(run.get('generation') or 0)}/r{int(run.get('version') or 0)}"


def _waits(run: Mapping[str, Any]) -> str:
    """Which waiting event a latest run is in, if any, from the Ready condition's reason the
    operator writes (controller/decide.py): Queued is both a Job held suspended (its jobName
    kept) and a generation waiting for the namespace's Job limit (no Job, its jobName dropped)."""
    if run.get("phase") != "Pending":
        return ""
    if run.get("reason") == "BudgetExceeded":
        return "budgetReached"
    if run.get("reason") == "Queued" and run.get("jobName"):
        return "queued"
    return ""


# What an event tells of a likeness: a LoRA version's report, or a video's over time.
LIKENESS_FIELDS = ("verdict", "median", "reasons", "lowest", "lowestAtSeconds", "drift")


def likeness_of(version: Mapping[str, Any]) -> dict[str, Any] | None:
    """A version's likeness report: its own (a LoRA version, a LoraEvaluation), else its video's
    (a VideoGeneration's likeness over time, docs/videos.md#likeness-over-time)."""
    found = version.get("likeness") or (version.get("video") or {}).get("likeness")
    return dict(found) if isinstance(found, Mapping) and found else None


def events_of(
    previous: Mapping[str, Any] | None, doc: Mapping[str, Any], now: datetime
) -> list[dict[str, Any]]:
    """The events of a record's change from `previous` (None: it is new) to `doc`, oldest first."""
    before = upgrade(dict(previous)) if previous is not None else None
    after = upgrade(dict(doc))
    known = _versions(before)
    out: list[dict[str, Any]] = []
    for version in after.get("versions") or []:
        if int(version["version"]) not in known:
            out += _version_events(after, version, now)
    return out + _run_events(before, after, now)


def _version_events(after: dict[str, Any], version: Mapping[str, Any], now: datetime) -> list[dict[str, Any]]:
    """A new version's events: succeeded, and likenessPoor where its likeness is poor."""
    number = int(version["version"])
    likeness = likeness_of(version)
    data = {
        "version": number,
        "generation": version.get("generation"),
        "costUsd": version.get("costUsd"),
        "provider": version.get("provider"),
        "placeholder": bool(version.get("placeholder")),
    }
    if likeness:
        data["likeness"] = {k: likeness[k] for k in LIKENESS_FIELDS if k in likeness}
    at = version.get("createdAt")
    out = [cloud_event(after, "succeeded", f"v{number}/succeeded", at, now, data)]
    if likeness and likeness.get("verdict") == "poor":
        out.append(cloud_event(after, "likenessPoor", f"v{number}/likenessPoor", at, now, data))
    return out


def _run_events(before: dict[str, Any] | None, after: dict[str, Any], now: datetime) -> list[dict[str, Any]]:
    """The latest run's events: failed, or the wait it is in, each once per run."""
    run = after.get("latestRun") or {}
    old = (before or {}).get("latestRun") or {}
    same_run = before is not None and _run_id(old) == _run_id(run)
    run_data = {
        "generation": run.get("generation"),
        "runVersion": run.get("version"),
        "phase": run.get("phase"),
        "reason": run.get("reason"),
        "message": run.get("message"),
    }
    out: list[dict[str, Any]] = []
    if run.get("phase") == "Failed" and not (same_run and old.get("phase") == "Failed"):
        error = run.get("error") or {}
        data = {
            **run_data,
            "reason": error.get("reason") or run.get("reason"),
            "costUsd": run.get("actualUsd"),
        }
        out.append(cloud_event(after, "failed", f"{_run_id(run)}/failed", run.get("completedAt"), now, data))
    waiting = _waits(run)
    if waiting and not (same_run and _waits(old) == waiting):
        out.append(cloud_event(after, waiting, f"{_run_id(run)}/{waiting}", None, now, run_data))
    return out


# --- subscriptions -------------------------------------------------------------------------------


def matches(spec: Mapping[str, Any], namespace: str, event: Mapping[str, Any]) -> bool:
    """Whether the Notification (its spec, in `namespace`) wants `event`: events of its own
    namespace's resources only, then its filters (an empty filter matches everything)."""
    data = event.get("data") or {}
    if data.get("namespace") != namespace:
        return False
    for field, value in (
        ("events", data.get("event")),
        ("kinds", data.get("kind")),
        ("owners", data.get("owner")),
    ):
        wanted = spec.get(field) or []
        if wanted and value not in wanted:
            return False
    return True


# --- retries -------------------------------------------------------------------------------------


def next_wait(attempts: int, rand: Callable[[], float] = random.random) -> float | None:
    """Seconds to wait after `attempts` failed attempts before the next, or None when that was the
    last: the schedule's step with full jitter (drawn uniformly between 0 and the step), at least
    MIN_WAIT, so that receivers coming back from an outage are not met by every sender at once."""
    if attempts < 1 or attempts > len(SCHEDULE):
        return None
    return max(MIN_WAIT, rand() * SCHEDULE[attempts - 1])


def outcome(code: int) -> str:
    """What an answer means: delivered (2xx), disabled (410 Gone: the receiver asks for no more),
    or retry (anything else, no answer included: code 0)."""
    if 200 <= code < 300:
        return "delivered"
    if code == 410:
        return "disabled"
    return "retry"


# --- signing -------------------------------------------------------------------------------------


def decode_secret(text: str) -> bytes:
    """A secret as the specification writes it (`whsec_` then base64); ValueError if it is not."""
    raw = text.strip()
    if raw.startswith(SECRET_PREFIX):
        raw = raw[len(SECRET_PREFIX) :]
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except ValueError:
        raise ValueError("a signing secret must be base64, optionally after whsec_") from None
    if len(key) < 24:
        raise ValueError("a signing secret must hold 24 to 64 bytes (the specification's range)")
    return key


def sign(secrets: Iterable[bytes], msg_id: str, timestamp: int, body: bytes) -> str:
    """`webhook-signature`: one `v1,<base64>` per secret, space-separated."""
    content = f"{msg_id}.{timestamp}.".encode() + body
    return " ".join(
        "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode() for key in secrets
    )


def body_of(event: Mapping[str, Any]) -> bytes:
    """The bytes sent (and signed): the event as compact JSON."""
    return json.dumps(event, separators=(",", ":"), sort_keys=True, default=str).encode()


def headers(
    event: Mapping[str, Any], secrets: Iterable[bytes], timestamp: int, body: bytes
) -> dict[str, str]:
    msg_id = str(event["id"])
    return {
        "content-type": "application/cloudevents+json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": sign(secrets, msg_id, timestamp, body),
        "user-agent": "contentgen-operator",
    }


def excerpt(body: bytes, limit: int = EXCERPT_BYTES) -> str:
    """The start of a receiver's answer, for the delivery log (bounded, printable)."""
    text = body[:limit].decode("utf-8", errors="replace")
    return "".join(c if c.isprintable() or c in "\n\t" else "?" for c in text)
