"""Webhook notifications, the operator's part (docs/notifications.md): the leader fans events out
to the Notifications that match them, sends each delivery's due attempt, and reports in each
Notification's status.

The decisions are pure (catalog/webhooks.py: events, matching, schedule, signature) and the
delivery state is the catalog's (catalog/deliveries.py); this is the loop and the adapters around
them. Events are enqueued where a resource's catalog record is written (catalog_sync.py), so an
event exists as soon as the record shows its transition, whoever wrote it and whenever.

Only the leader sends: each round starts only while `may_act()`, each attempt is claimed in the
catalog first (a conditional write naming this replica and its lease term, held for
CLAIM_SECONDS), and `may_act()` is asked again just before the request leaves. A send lasts at most
SEND_TIMEOUT, well within the claim, and a replica that loses the Lease exits within the renew
deadline; so by the time another leader may claim the same attempt, the first has sent it or never
will. Receivers may still see an event twice (an answer lost on the way back; a crash after the
send, before its record): at least once, with the same `webhook-id` to deduplicate by.

The send: the URL's host resolved and checked like every user URL (no internal addresses unless
`allowPrivateSources`), the request sent to the address checked (no DNS rebinding), no redirect
followed (a 3xx is a failed attempt, retried), bounded timeouts, the signing keys read from the
Secret once per round for each Notification with attempts due (a rotated Secret is used from the
next round on) and never logged.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx

from contentgen.api import now
from contentgen.api.notification import ANNOTATION_REPLAY, PLURAL, LastDelivery, NotificationStatus
from contentgen.api.notification import KIND as NOTIFICATION
from contentgen.api.reading import Count, Number, Reading, Text
from contentgen.catalog import webhooks
from contentgen.catalog.deliveries import Deliveries, Sender, wants
from contentgen.errors import ContentgenError
from contentgen.pipeline.fetch import Resolver, _getaddrinfo, resolve_checked
from contentgen.redact import redact_url

from . import metrics
from .conditions import set_condition
from .kube import KubeError
from .objects import CustomResource
from .outages import report
from .runtime import leader
from .runtime.leader import may_act
from .state import Operator
from .status import read_model

log = logging.getLogger("contentgen.operator.notifier")
ROUND_SECONDS = 2.0  # how often the leader looks for events to fan out and attempts that are due
SEND_TIMEOUT = 10.0  # one attempt, connection to answer: well within CLAIM_SECONDS
SENDS_AT_ONCE = 8
DUE_PER_ROUND = 20  # attempts a round makes per Notification at most
KEEP_SECONDS = 30 * 24 * 3600.0  # finished deliveries and fanned-out events are kept this long


class SecretProblem(Exception):
    """The Notification's signing keys cannot be had: the delivery waits, the status says why."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True)
class Answer:
    code: int  # 0: no answer
    body: bytes = b""
    error: str = ""


def secrets_of(secret: Mapping[str, Any] | None, keys: list[str]) -> list[bytes]:
    """The signing keys of a Secret (as the API server returns it: base64 data), in `keys`' order;
    SecretProblem when none is there or one is not a signing secret."""
    data = (secret or {}).get("data") or {}
    found = []
    for key in keys:
        if key not in data:
            continue
        try:
            found.append(webhooks.decode_secret(base64.b64decode(data[key]).decode()))
        except ValueError as exc:
            raise SecretProblem("SecretInvalid", f"key {key!r}: {exc}") from None
    if not found:
        raise SecretProblem("SecretKeyMissing", f"the Secret has none of the keys {keys}")
    return found


def send(
    url: str,
    event: Mapping[str, Any],
    secrets: list[bytes],
    *,
    allow_private: bool,
    timeout: float = SEND_TIMEOUT,
    resolver: Resolver = _getaddrinfo,
    transport: httpx.BaseTransport | None = None,
    clock: Callable[[], float] = time.time,
) -> Answer:
    """POST the event, signed, to `url` (blocking; run it in a thread). Refused hosts, timeouts and
    connection errors are an Answer with code 0 and the reason."""
    body = webhooks.body_of(event)
    try:
        parsed = httpx.URL(url)
        if parsed.scheme not in ("http", "https") or not parsed.host:
            return Answer(0, error="the URL is not http:// or https://")
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        address = resolve_checked(
            parsed.host,
            port,
            allow_private,
            resolver,
            sleep=lambda _: None,
            field="the Notification's spec.url",
        )
        host = f"[{address}]" if ipaddress.ip_address(address).version == 6 else address
        headers = webhooks.headers(event, secrets, int(clock()), body)
        headers["host"] = parsed.netloc.decode("ascii")
        with httpx.Client(
            timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False, transport=transport
        ) as client:
            request = client.build_request(
                "POST",
                parsed.copy_with(host=host.strip("[]")),
                content=body,
                headers=headers,
                extensions={"sni_hostname": parsed.host},
            )
            response = client.send(request, stream=True)
            try:
                answer = b""
                for chunk in response.iter_bytes():
                    answer += chunk
                    if len(answer) >= webhooks.EXCERPT_BYTES:
                        break
                return Answer(response.status_code, answer)
            finally:
                response.close()
    except ContentgenError as exc:  # refused (an internal address) or not resolvable
        return Answer(0, error=str(exc))
    except httpx.TimeoutException:
        return Answer(0, error=f"no answer within {timeout:.0f} s")
    except httpx.HTTPError as exc:
        return Answer(0, error=f"{type(exc).__name__} from {redact_url(url)}")


def replay_target(annotation: str) -> str:
    """The event id a replay annotation names: `EVENT_ID`, or `EVENT_ID#ANYTHING` to replay the
    same event once more (each new value is acted on once)."""
    return annotation.split("#", 1)[0].strip()


# --- the loop ------------------------------------------------------------------------------------


class Notifier:
    """The leader's rounds. `sender` and `secret_of` are injected (tests)."""

    def __init__(
        self,
        op: Operator,
        deliveries: Deliveries,
        *,
        sender: Callable[..., Answer] = send,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.op, self.deliveries, self.sender, self.rand = op, deliveries, sender, rand
        self.notifications: dict[str, dict[str, Any]] = {}  # uid -> body
        self.pruned_at = 0.0
        self.replayed: dict[str, str] = {}  # uid -> the replay annotation acted on (this process)

    def who(self) -> Sender:
        elector = leader.current
        if elector is None:
            import socket

            return Sender(socket.gethostname(), 0)
        return Sender(elector.identity, elector.term)

    async def list_notifications(self) -> dict[str, dict[str, Any]]:
        namespaces = self.op.settings.watch_namespaces or [""]
        found: dict[str, dict[str, Any]] = {}
        for namespace in namespaces:
            where = f"/namespaces/{namespace}" if namespace else ""
            listing = await self.op.kube.request("GET", f"/apis/contentgen.io/v1alpha1{where}/{PLURAL}")
            for item in (listing or {}).get("items") or []:
                item.setdefault("apiVersion", "contentgen.io/v1alpha1")
                item.setdefault("kind", NOTIFICATION)
                found[item["metadata"]["uid"]] = item
        return found

    async def round(self) -> None:
        """One round: replays asked for, events fanned out, due attempts sent, statuses."""
        if not may_act():
            return
        self.notifications = await self.list_notifications()
        touched = await self._replay_asked()
        touched |= await self._fan_out()
        problems = await self._send(await self._due(), touched)
        for uid in touched | set(problems):
            if uid in self.notifications:
                await self.report(self.notifications[uid], problems.get(uid))
        if time.time() - self.pruned_at > 3600:
            self.pruned_at = time.time()
            await asyncio.to_thread(self.deliveries.prune, KEEP_SECONDS)

    async def _replay_asked(self) -> set[str]:
        """The replays the Notifications' annotations ask for and that were not made yet, queued;
        the uids of those Notifications."""
        touched: set[str] = set()
        for uid, body in self.notifications.items():
            resource = CustomResource.of(body)
            wanted = resource.metadata.annotations.get(ANNOTATION_REPLAY, "")
            done = self.replayed.get(uid) or read_model(NotificationStatus, resource.status).replayed
            if wanted and wanted != done:
                event_id = replay_target(wanted)
                found = await asyncio.to_thread(self.deliveries.replay, body, event_id)
                log.info(
                    "replay of %s to %s: %s", event_id, _name(body), "queued" if found else "no such event"
                )
                self.replayed[uid] = wanted
                touched.add(uid)
        return touched

    async def _fan_out(self) -> set[str]:
        """Each event not fanned out yet, a delivery for every Notification it matches that existed
        when it happened (deliveries.wants); their uids."""
        touched: set[str] = set()
        for event in await asyncio.to_thread(self.deliveries.unfanned):
            matching = [body for body in self.notifications.values() if wants(body, event)]
            await asyncio.to_thread(self.deliveries.fan_out, event, matching)
            touched.update(b["metadata"]["uid"] for b in matching)
        return touched

    async def _due(self) -> list[dict[str, Any]]:
        """The deliveries to attempt this round. Those of Notifications that are gone are given up;
        the others are asked for per Notification that may send (not paused, not disabled by a
        410), each at most DUE_PER_ROUND."""
        for orphan in await asyncio.to_thread(self.deliveries.due, not_of=list(self.notifications)):
            await asyncio.to_thread(self.deliveries.abandon, orphan, "the Notification was deleted")
        due: list[dict[str, Any]] = []
        for uid, body in self.notifications.items():
            if (body.get("spec") or {}).get("paused"):
                continue
            if await asyncio.to_thread(self.deliveries.disabled, uid, _generation(body)):
                continue  # 410 Gone: nothing until the spec changes
            due += await asyncio.to_thread(self.deliveries.due, DUE_PER_ROUND, of=[uid])
        metrics.WEBHOOK_PENDING.set(len(due))
        return due

    async def _send(self, due: list[dict[str, Any]], touched: set[str]) -> dict[str, SecretProblem]:
        """Each delivery attempted, at most SENDS_AT_ONCE at a time, each Notification's Secret
        read once; `touched` gains the uids attempted. The Notifications whose Secret could not be
        read, and why (none of their deliveries is attempted after that)."""
        problems: dict[str, SecretProblem] = {}
        keys: dict[str, asyncio.Task[list[bytes]]] = {}
        limit = asyncio.Semaphore(SENDS_AT_ONCE)

        async def attempt(delivery: dict[str, Any]) -> None:
            async with limit:
                uid = delivery["notification"]["uid"]
                body = self.notifications[uid]
                if uid in problems:
                    return
                touched.add(uid)
                if uid not in keys:
                    keys[uid] = asyncio.ensure_future(self.secrets(body))
                try:
                    await self.attempt(body, delivery, await asyncio.shield(keys[uid]))
                except SecretProblem as exc:
                    problems[uid] = exc

        await asyncio.gather(*(attempt(d) for d in due))
        return problems

    async def secrets(self, body: Mapping[str, Any]) -> list[bytes]:
        ref = (body.get("spec") or {}).get("secretRef") or {}
        namespace, name = body["metadata"]["namespace"], str(ref.get("name") or "")
        try:
            secret = await self.op.kube.request("GET", f"/api/v1/namespaces/{namespace}/secrets/{name}")
        except KubeError as exc:
            if exc.status == 404:
                raise SecretProblem("SecretNotFound", f"Secret {namespace}/{name} does not exist") from None
            if exc.status == 403:
                raise SecretProblem(
                    "SecretForbidden",
                    f"the operator may not read Secret {namespace}/{name}: it reads only the names the "
                    "chart allows (notifications.secretNames)",
                ) from None
            raise
        return secrets_of(secret, list(ref.get("keys") or ["secret", "previous"]))

    async def attempt(self, body: Mapping[str, Any], delivery: dict[str, Any], keys: list[bytes]) -> None:
        claim = await asyncio.to_thread(self.deliveries.claim, delivery, self.who(), _generation(body))
        if claim is None or not may_act():  # another claim holds, or this replica stopped leading
            return
        event = delivery["event"]
        url = str((body.get("spec") or {}).get("url"))
        answer = await asyncio.to_thread(
            self.sender, url, event, keys, allow_private=self.op.settings.allow_private_sources
        )
        recorded = await asyncio.to_thread(
            self.deliveries.record,
            claim,
            code=answer.code,
            answer=webhooks.excerpt(answer.body),
            error=answer.error,
            rand=self.rand,
        )
        outcome = webhooks.outcome(answer.code)  # what attempted() recorded as the delivery's status
        metrics.WEBHOOK_ATTEMPTS.labels(outcome).inc()
        level = logging.INFO if 200 <= answer.code < 300 else logging.WARNING
        log.log(
            level,
            "webhook %s to %s (%s): %s",
            delivery["eventId"],
            _name(body),
            redact_url(url),
            answer.code or answer.error,
        )
        if recorded is None:
            log.warning("delivery %s: the claim was lost before its record", delivery["_id"])
        elif outcome == "delivered":  # the receiver is back: its retries are due now
            moved = await asyncio.to_thread(self.deliveries.hasten, delivery["notification"]["uid"])
            if moved:
                log.info("%s answers again: %d delivery retries brought forward", _name(body), moved)

    async def report(self, body: Mapping[str, Any], problem: SecretProblem | None) -> None:
        """The Notification's status from its deliveries (a merge patch fenced by the
        resourceVersion listed: a 409 waits for the next round)."""
        resource = CustomResource.of(body)
        meta, status = resource.metadata, resource.status
        generation = meta.generation or 1
        newest, waiting = await asyncio.to_thread(self.deliveries.summary, meta.uid)
        last = _last_delivery(newest)
        disabled = await asyncio.to_thread(self.deliveries.disabled, meta.uid, generation)
        health = _health(problem, disabled, last)
        wanted = _wanted(status, health, generation, last, waiting, meta.annotations)
        if not _same(wanted, status):
            await self._write(body, wanted)

    async def _write(self, body: Mapping[str, Any], wanted: dict[str, Any]) -> None:
        meta = body["metadata"]
        patch = {"metadata": {"resourceVersion": meta.get("resourceVersion")}, "status": wanted}
        try:
            await self.op.kube.request(
                "PATCH",
                f"/apis/contentgen.io/v1alpha1/namespaces/{meta['namespace']}/{PLURAL}/{meta['name']}/status",
                patch,
                content_type="application/merge-patch+json",
            )
        except KubeError as exc:
            if exc.status not in (404, 409):
                log.warning("status of Notification %s not written: %s", _name(body), exc)


@dataclass(frozen=True)
class _Health:
    failing: bool
    reason: str
    message: str


class _Attempt(Reading):
    at: Number = 0.0  # seconds since the epoch


class _Delivered(Reading):
    """The newest delivery, as its log keeps it (catalog/deliveries.py)."""

    event_id: Text = ""
    type: Text = ""
    status: Text = ""
    attempt_count: Count = 0
    last_code: Count = 0
    attempts: tuple[_Attempt, ...] = ()


def _last_delivery(newest: Mapping[str, Any] | None) -> LastDelivery | None:
    """status.lastDelivery: the newest delivery, as its log keeps it."""
    if newest is None:
        return None
    delivered = _Delivered.of(newest)
    last = delivered.attempts[-1] if delivered.attempts else _Attempt()
    return LastDelivery(
        event_id=delivered.event_id,
        type=delivered.type,
        status=delivered.status,  # type: ignore[arg-type]  # one of the log's, checked by LastDelivery
        attempts=delivered.attempt_count,
        code=delivered.last_code,
        at=datetime.fromtimestamp(last.at, UTC),
    )


def _health(problem: SecretProblem | None, disabled: bool, last: LastDelivery | None) -> _Health:
    """Whether deliveries are failing, and why in a reason and a sentence: the Secret first, then
    a receiver that said 410 Gone, then the newest delivery."""
    if problem is not None:
        return _Health(True, problem.reason, str(problem))
    if disabled:
        return _Health(True, "Disabled", "the receiver answered 410 Gone: change the spec to deliver again")
    if last is not None and last.status in ("retrying", "failed", "disabled"):
        message = f"the last attempt of {last.event_id} got {last.code or 'no answer'}"
        return _Health(True, "DeliveryFailing", message)
    return _Health(False, "Delivering", "deliveries succeed" if last else "no event yet")


def _wanted(
    status: Mapping[str, Any],
    health: _Health,
    generation: int,
    last: LastDelivery | None,
    waiting: int,
    annotations: Mapping[str, str],
) -> dict[str, Any]:
    """The status to write: `status` with the conditions, the pending count, the newest delivery
    and the replay asked for."""
    moment = now()
    conditions = list(status.get("conditions") or [])
    failing, reason, message = health.failing, health.reason, health.message
    conditions = set_condition(conditions, "Ready", str(not failing), reason, message, generation, moment)
    conditions = set_condition(
        conditions,
        "Failing",
        str(failing),
        reason if failing else "Delivering",
        message if failing else "",
        generation,
        moment,
    )
    wanted = dict(status)
    wanted.update(observedGeneration=generation, conditions=conditions, pending=waiting)
    if last is not None:
        wanted["lastDelivery"] = last.model_dump(mode="json", by_alias=True)
    replay = annotations.get(ANNOTATION_REPLAY)
    if replay:
        wanted["replayed"] = replay
    return wanted


def _same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Equal but for when conditions last changed."""

    def bare(status: Mapping[str, Any]) -> Any:
        conditions = [
            {k: v for k, v in c.items() if k != "lastTransitionTime"} for c in status.get("conditions") or []
        ]
        return {**status, "conditions": conditions}

    return bool(bare(a) == bare(b))


def _generation(body: Mapping[str, Any]) -> int:
    return int(body["metadata"].get("generation") or 1)


def _name(body: Mapping[str, Any]) -> str:
    return f"{body['metadata']['namespace']}/{body['metadata']['name']}"


async def run(op: Operator, deliveries: Deliveries | None = None) -> None:
    """The leader's rounds, until cancelled. Nothing to do without a catalog."""
    if op.catalog is None:
        return
    store = deliveries or Deliveries(op.catalog)
    try:
        await asyncio.to_thread(store.ensure_indexes)
    except Exception as exc:
        log.warning("delivery indexes not made (the catalog is away): %s", exc)
    notifier = Notifier(op, store)
    while True:
        try:
            await notifier.round()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the catalog or the API server away: the next round tries again
            report("notifications", exc, f"the next round tries again in {ROUND_SECONDS:g} s")
        await asyncio.sleep(ROUND_SECONDS)
