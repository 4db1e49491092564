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

from pydantic import Field

from contentgen.api import KINDS
from contentgen.api.reading import Flag, Reading

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


# A record as its events read it, typed where it leaves the catalog (catalog/document.py writes
# it). The values an event carries are the record's own, null where the record has none: these
# fields are optional, not read as zeros.
Money = int | float | None  # as stored: an int stays an int in the event's JSON


class _Error(Reading):
    reason: str | None = None


class _Run(Reading):
    """The latest run."""

    generation: int | None = None
    version: int | None = None
    phase: str | None = None
    reason: str | None = None
    message: str | None = None
    job_name: str | None = None
    error: _Error = _Error()
    actual_usd: Money = None
    completed_at: Any = None  # a BSON date as stored

    @property
    def id(self) -> str:
        return f"g{self.generation or 0}/r{self.version or 0}"

    @property
    def waits(self) -> str:
        """Which waiting event it is in, if any, from the Ready condition's reason the operator
        writes (controller/decide.py): Queued is both a Job held suspended (its jobName kept) and a
        generation waiting for the namespace's Job limit (no Job, its jobName dropped)."""
        if self.phase != "Pending":
            return ""
        if self.reason == "BudgetExceeded":
            return "budgetReached"
        if self.reason == "Queued" and self.job_name:
            return "queued"
        return ""

    def data(self) -> dict[str, Any]:
        return {
            "generation": self.generation,
            "runVersion": self.version,
            "phase": self.phase,
            "reason": self.reason,
            "message": self.message,
        }


class _Numbered(Reading):
    version: int


class _Version(_Numbered):
    generation: int | None = None
    cost_usd: Money = None
    provider: str | None = None
    placeholder: Flag = False
    created_at: Any = None  # a BSON date as stored
    likeness: Any = None  # as stored: only a mapping is a report
    video: Any = None

    def likeness_report(self) -> dict[str, Any] | None:
        """Its likeness report: its own (a LoRA version, a LoraEvaluation), else its video's (a
        VideoGeneration's likeness over time, docs/videos.md#likeness-over-time)."""
        found = self.likeness or (self.video or {}).get("likeness")
        return dict(found) if isinstance(found, Mapping) and found else None


class _Record(Reading):
    id: str | None = Field(default=None, alias="_id")
    job_id: str | None = None
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None
    owner: str | None = None
    versions: tuple[_Version, ...] = ()
    deleted_versions: tuple[_Numbered, ...] = ()
    latest_run: _Run = _Run()

    @property
    def uid(self) -> str:
        return str(self.id or self.job_id)

    @property
    def numbers(self) -> set[int]:
        return {v.version for v in (*self.versions, *self.deleted_versions)}


def _source(record: _Record) -> str:
    kind = KINDS.get(str(record.kind))
    plural = kind.plural if kind is not None else f"{str(record.kind).lower()}s"
    return f"/apis/contentgen.io/v1alpha1/namespaces/{record.namespace}/{plural}/{record.name}"


def cloud_event(
    record: _Record, event: str, about: str, when: Any, now: datetime, data: dict[str, Any]
) -> dict[str, Any]:
    """A CloudEvents 1.0 event (JSON format) about `record`."""
    return {
        "specversion": SPEC_VERSION,
        "id": event_id(record.uid, about),
        "source": _source(record),
        "type": event_type(str(record.kind), event),
        "subject": str(record.name),
        "time": _time(when, now),
        "datacontenttype": "application/json",
        "data": {
            "event": event,
            "kind": record.kind,
            "name": record.name,
            "namespace": record.namespace,
            "uid": record.uid,
            "owner": record.owner,
            **data,
        },
    }


# What an event tells of a likeness: a LoRA version's report, or a video's over time.
LIKENESS_FIELDS = ("verdict", "median", "reasons", "lowest", "lowestAtSeconds", "drift")


def events_of(
    previous: Mapping[str, Any] | None, doc: Mapping[str, Any], now: datetime
) -> list[dict[str, Any]]:
    """The events of a record's change from `previous` (None: it is new) to `doc`, oldest first."""
    before = _Record.of(upgrade(dict(previous))) if previous is not None else None
    after = _Record.of(upgrade(dict(doc)))
    known = before.numbers if before is not None else set()
    out: list[dict[str, Any]] = []
    for version in after.versions:
        if version.version not in known:
            out += _version_events(after, version, now)
    return out + _run_events(before, after, now)


def _version_events(after: _Record, version: _Version, now: datetime) -> list[dict[str, Any]]:
    """A new version's events: succeeded, and likenessPoor where its likeness is poor."""
    number = version.version
    likeness = version.likeness_report()
    data: dict[str, Any] = {
        "version": number,
        "generation": version.generation,
        "costUsd": version.cost_usd,
        "provider": version.provider,
        "placeholder": version.placeholder,
    }
    if likeness:
        data["likeness"] = {k: likeness[k] for k in LIKENESS_FIELDS if k in likeness}
    at = version.created_at
    out = [cloud_event(after, "succeeded", f"v{number}/succeeded", at, now, data)]
    if likeness and likeness.get("verdict") == "poor":
        out.append(cloud_event(after, "likenessPoor", f"v{number}/likenessPoor", at, now, data))
    return out


def _run_events(before: _Record | None, after: _Record, now: datetime) -> list[dict[str, Any]]:
    """The latest run's events: failed, or the wait it is in, each once per run."""
    run = after.latest_run
    old = before.latest_run if before is not None else _Run()
    same_run = before is not None and old.id == run.id
    out: list[dict[str, Any]] = []
    if run.phase == "Failed" and not (same_run and old.phase == "Failed"):
        data = {**run.data(), "reason": run.error.reason or run.reason, "costUsd": run.actual_usd}
        out.append(cloud_event(after, "failed", f"{run.id}/failed", run.completed_at, now, data))
    waiting = run.waits
    if waiting and not (same_run and old.waits == waiting):
        out.append(cloud_event(after, waiting, f"{run.id}/{waiting}", None, now, run.data()))
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
