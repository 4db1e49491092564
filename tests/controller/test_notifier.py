"""Webhook deliveries by the operator (controller/notifier.py), against a real HTTP receiver that
verifies every delivery's signature with the Standard Webhooks specification's own library: events
enqueued where the catalog record is written, delivered at least once and retried on the schedule,
the retry state surviving a new operator process (nothing lost, nothing delivered twice by event
id), two secrets at once (rotation), internal addresses refused, 410 disabling, replays, and only
a leader sending."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks

from contentgen.catalog import webhooks
from contentgen.catalog.deliveries import CLAIM_SECONDS, Deliveries, Sender, wants
from contentgen.catalog.embedded import EmbeddedCatalog
from contentgen.controller import catalog_sync, notifier
from contentgen.controller.job_admission import Backoff, NamespaceQueue
from contentgen.controller.kube import KubeError
from contentgen.controller.settings import OperatorSettings
from contentgen.controller.state import Operator

NEW = "whsec_" + base64.b64encode(b"n" * 32).decode()
OLD = "whsec_" + base64.b64encode(b"o" * 32).decode()


class Receiver:
    """A webhook receiver: verifies each delivery with `secret` (the library's Webhook), answers
    the next scripted code for its event (else 204), and keeps what it accepted."""

    def __init__(self, secret: str) -> None:
        self.verifier = standardwebhooks.Webhook(secret)
        self.script: dict[str, list[int]] = {}
        self.accepted: list[str] = []  # event ids answered 2xx
        self.seen: list[tuple[str, int]] = []
        self.refused = 0

    def answer(self, body: bytes, headers: dict[str, str]) -> int:
        try:
            event = self.verifier.verify(body, headers)
        except standardwebhooks.webhooks.WebhookVerificationError:
            self.refused += 1
            return 401
        assert event["id"] == headers["webhook-id"] and event["specversion"] == "1.0"
        codes = self.script.get(event["id"]) or []
        code = codes.pop(0) if codes else 204
        self.seen.append((event["id"], code))
        if 200 <= code < 300:
            self.accepted.append(event["id"])
        return code


@pytest.fixture
def receiver() -> Iterator[tuple[str, Receiver]]:
    got = Receiver(OLD)  # a receiver still on the old secret, during a rotation

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            code = got.answer(body, {k: v for k, v in self.headers.items()})
            self.send_response(code)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks", got
    server.shutdown()


class FakeKube:
    """The API server's part: Notifications, the Secret (both keys), status patches."""

    def __init__(self, url: str) -> None:
        self.notification: dict[str, Any] = {
            "apiVersion": "contentgen.io/v1alpha1",
            "kind": "Notification",
            "metadata": {"name": "hooks", "namespace": "team-a", "uid": "n-1", "generation": 1,
                         "resourceVersion": "1", "annotations": {}},
            "spec": {"url": url, "secretRef": {"name": "contentgen-webhook"}},
        }  # fmt: skip
        self.secret = {"data": {k: base64.b64encode(v.encode()).decode() for k, v in
                                (("secret", NEW), ("previous", OLD))}}  # fmt: skip
        self.patches: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.gone = False

    async def request(self, method: str, path: str, body: Any = None, **_: Any) -> Any:
        self.paths.append(f"{method} {path}")
        if method == "GET" and path.endswith("/notifications"):
            return {"items": [] if self.gone else [json.loads(json.dumps(self.notification))]}
        if method == "GET" and path == "/api/v1/namespaces/team-a/secrets/contentgen-webhook":
            return self.secret
        if method == "PATCH" and path.endswith("/notifications/hooks/status"):
            self.patches.append(body)
            self.notification["status"] = body["status"]
            return self.notification
        raise KubeError(404, {"message": "not found"}, f"{method} {path}")


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def _operator(catalog: Any, kube: FakeKube, allow_private: bool = True) -> Operator:
    return Operator(
        settings=OperatorSettings(allow_private_sources=allow_private),
        kube=kube,  # type: ignore[arg-type]
        queue=NamespaceQueue(2),
        backoff=Backoff(1.0),
        catalog=catalog,
    )


def _resource(name: str, uid: str, phase: str) -> dict[str, Any]:
    status: dict[str, Any] = {"phase": phase, "observedGeneration": 1, "runVersion": 1, "progress": 100,
                              "startedAt": "2026-11-21T12:00:00Z",
                              "completedAt": "2026-11-21T12:05:00Z"}  # fmt: skip
    if phase == "Succeeded":
        status["versions"] = [{"version": 1, "generation": 1, "createdAt": "2026-11-21T12:05:00Z",
                               "transcript": {"uri": "file:///t.txt", "wordCount": 3}}]  # fmt: skip
        status["latestVersion"] = 1
    else:
        status["conditions"] = [{"type": "Ready", "status": "False", "reason": "ProviderError",
                                 "message": "x", "lastTransitionTime": "2026-11-21T12:05:00Z"}]  # fmt: skip
    return {
        "apiVersion": "contentgen.io/v1alpha1",
        "kind": "Transcription",
        "metadata": {"name": name, "namespace": "team-a", "uid": uid, "generation": 1,
                     "creationTimestamp": "2026-11-21T12:00:00Z"},
        "spec": {"owner": "alice", "provider": "offline", "source": {"url": "https://e.com/a.mp3"}},
        "status": status,
    }  # fmt: skip


async def _record(op: Operator, *bodies: dict[str, Any]) -> list[str]:
    """The resources' records written as the operator writes them (their events enqueued)."""
    for body in bodies:
        await catalog_sync.sync_catalog(op, body, body["status"], None)
    return [e["id"] for e in Deliveries(op.catalog).unfanned()]


@pytest.mark.asyncio
async def test_a_restart_mid_retry_loses_and_duplicates_nothing(
    tmp_path: Path, receiver: tuple[str, Receiver]
) -> None:
    url, got = receiver
    kube, clock = FakeKube(url), Clock()
    catalog = EmbeddedCatalog(tmp_path / "catalog")
    op = _operator(catalog, kube)
    events = await _record(op, _resource("talk", "u-1", "Succeeded"), _resource("call", "u-2", "Failed"))
    assert len(events) == 2
    succeeded, failed = events
    got.script[succeeded] = [503, 503]
    first = notifier.Notifier(op, Deliveries(catalog, clock), rand=lambda: 1.0)
    await first.round()
    assert got.accepted == [failed] and got.refused == 0  # signed with both keys: the old one verifies
    # the retry is due in 5 s; meanwhile the operator dies after claiming it, before sending
    clock.now += webhooks.SCHEDULE[0]
    [due] = first.deliveries.due()
    assert first.deliveries.claim(due, Sender("operator-0", 1)) is not None
    catalog.close()

    # a new process (a restart, or the next leader): the catalog is all it has
    catalog = EmbeddedCatalog(tmp_path / "catalog")
    op = _operator(catalog, kube)
    second = notifier.Notifier(op, Deliveries(catalog, clock), rand=lambda: 1.0)
    await second.round()
    assert sorted(got.seen) == sorted([(succeeded, 503), (failed, 204)])  # the crashed claim holds
    clock.now += CLAIM_SECONDS
    await second.round()  # attempt 2, once the claim expired: 503 again
    clock.now += webhooks.SCHEDULE[1]
    await second.round()
    await second.round()
    assert sorted(got.seen[:2]) == sorted([(succeeded, 503), (failed, 204)])
    assert got.seen[2:] == [(succeeded, 503), (succeeded, 204)]
    assert sorted(got.accepted) == sorted(events)  # each event accepted once, none lost
    [log] = [d for d in second.deliveries.log("n-1") if d["eventId"] == succeeded]
    assert [a["code"] for a in log["attempts"]] == [503, 503, 204] and log["status"] == "delivered"
    assert log["attempts"][0]["answer"] == "ok"
    status = kube.notification["status"]
    ready = {c["type"]: c for c in status["conditions"]}
    assert ready["Ready"]["status"] == "True" and ready["Failing"]["status"] == "False"
    assert status["lastDelivery"]["eventId"] == succeeded and status["lastDelivery"]["status"] == "delivered"
    assert status["pending"] == 0
    assert all(p["metadata"]["resourceVersion"] == "1" for p in kube.patches)  # fenced status writes
    # nothing more to send, and the record written again enqueues nothing new
    await _record(op, _resource("talk", "u-1", "Succeeded"))
    await second.round()
    assert len(got.seen) == 4
    catalog.close()


@pytest.mark.asyncio
async def test_a_receivers_recovery_brings_its_retries_forward(
    tmp_path: Path, receiver: tuple[str, Receiver]
) -> None:
    """Down for a while (two events answered 503, their retries drawn minutes and hours away), the
    receiver answers again: the first delivery that succeeds brings the others' retries forward,
    so they are sent in the next round rather than on their timers (issue 48)."""
    url, got = receiver
    kube, clock = FakeKube(url), Clock()
    catalog = EmbeddedCatalog(tmp_path / "catalog")
    op = _operator(catalog, kube)
    first, second = await _record(
        op, _resource("talk", "u-1", "Succeeded"), _resource("call", "u-2", "Failed")
    )
    got.script[first] = [503, 503]
    got.script[second] = [503, 503]
    sender = notifier.Notifier(op, Deliveries(catalog, clock), rand=lambda: 1.0)
    await sender.round()
    clock.now += webhooks.SCHEDULE[0]
    await sender.round()  # the second attempts: 503 again, the next ones 5 minutes away
    waiting = {d["eventId"]: d["nextAttemptAt"] - clock.now for d in Deliveries(catalog, clock).log("n-1")}
    assert waiting == {first: webhooks.SCHEDULE[1], second: webhooks.SCHEDULE[1]}
    # a third event: delivered at once; the receiver is back
    clock.now += 1
    (third,) = [
        e for e in await _record(op, _resource("more", "u-3", "Succeeded")) if e not in (first, second)
    ]
    await sender.round()
    assert third in got.accepted
    await sender.round()  # no clock moved: the retries were brought forward
    assert sorted(got.accepted) == sorted([first, second, third])
    assert all(d["status"] == "delivered" for d in Deliveries(catalog, clock).log("n-1"))
    catalog.close()


@pytest.mark.asyncio
async def test_internal_addresses_are_refused_unless_allowed(
    tmp_path: Path, receiver: tuple[str, Receiver]
) -> None:
    url, got = receiver
    kube, clock = FakeKube(url), Clock()
    catalog = EmbeddedCatalog(tmp_path / "catalog")
    op = _operator(catalog, kube, allow_private=False)
    await _record(op, _resource("talk", "u-1", "Succeeded"))
    await notifier.Notifier(op, Deliveries(catalog, clock), rand=lambda: 1.0).round()
    assert got.seen == []
    [delivery] = Deliveries(catalog, clock).log("n-1")
    assert delivery["status"] == "retrying" and "internal address" in delivery["attempts"][0]["error"]
    failing = {c["type"]: c for c in kube.notification["status"]["conditions"]}["Failing"]
    assert failing["status"] == "True" and failing["reason"] == "DeliveryFailing"
    catalog.close()


@pytest.mark.asyncio
async def test_410_disables_a_replay_sends_again_and_only_a_leader_sends(
    tmp_path: Path, receiver: tuple[str, Receiver], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, got = receiver
    kube, clock = FakeKube(url), Clock()
    catalog = EmbeddedCatalog(tmp_path / "catalog")
    op = _operator(catalog, kube)
    [event] = await _record(op, _resource("talk", "u-1", "Succeeded"))
    monkeypatch.setattr(notifier, "may_act", lambda: False)
    sender = notifier.Notifier(op, Deliveries(catalog, clock))
    await sender.round()
    assert got.seen == [] and kube.paths == []  # a replica that cannot prove its Lease does nothing
    monkeypatch.setattr(notifier, "may_act", lambda: True)
    got.script[event] = [410]
    await sender.round()
    ready = {c["type"]: c for c in kube.notification["status"]["conditions"]}["Ready"]
    assert ready["status"] == "False" and ready["reason"] == "Disabled"
    [later] = await _record(op, _resource("call", "u-2", "Succeeded"))
    kube.notification["metadata"]["annotations"]["contentgen.io/replay"] = event
    await sender.round()
    assert got.seen == [(event, 410)]  # nothing more while disabled, a replay included
    kube.notification["metadata"]["generation"] = 2  # its spec changed: deliveries resume
    await sender.round()
    assert sorted(got.seen[1:]) == sorted([(event, 204), (later, 204)])
    assert kube.notification["status"]["replayed"] == event
    await sender.round()  # the same annotation is acted on once
    assert len(got.seen) == 3
    kube.notification["metadata"]["annotations"]["contentgen.io/replay"] = f"{event}#again"
    await sender.round()
    assert got.seen[-1] == (event, 204) and len(got.seen) == 4
    catalog.close()


@pytest.mark.asyncio
async def test_a_missing_secret_holds_the_delivery_and_says_so(
    tmp_path: Path, receiver: tuple[str, Receiver]
) -> None:
    url, got = receiver
    kube, clock = FakeKube(url), Clock()
    kube.notification["spec"]["secretRef"] = {"name": "other", "keys": ["secret"]}
    catalog = EmbeddedCatalog(tmp_path / "catalog")
    op = _operator(catalog, kube)
    await _record(op, _resource("talk", "u-1", "Succeeded"))
    await notifier.Notifier(op, Deliveries(catalog, clock)).round()
    assert got.seen == []
    ready = {c["type"]: c for c in kube.notification["status"]["conditions"]}["Ready"]
    assert ready["reason"] == "SecretNotFound"
    [delivery] = Deliveries(catalog, clock).log("n-1")
    assert delivery["status"] == "pending" and delivery["attemptCount"] == 0  # it waits, not spent
    catalog.close()


@pytest.mark.asyncio
async def test_a_paused_notification_waits_and_a_deleted_ones_deliveries_are_given_up(
    tmp_path: Path, receiver: tuple[str, Receiver]
) -> None:
    url, got = receiver
    kube, clock = FakeKube(url), Clock()
    kube.notification["spec"]["paused"] = True
    catalog = EmbeddedCatalog(tmp_path / "catalog")
    op = _operator(catalog, kube)
    await _record(op, _resource("talk", "u-1", "Succeeded"))
    sender = notifier.Notifier(op, Deliveries(catalog, clock))
    await sender.round()
    assert got.seen == []
    [waiting] = sender.deliveries.log("n-1")
    assert waiting["status"] == "pending" and waiting["attemptCount"] == 0
    kube.gone = True
    await sender.round()
    [given_up] = sender.deliveries.log("n-1")
    assert (
        given_up["status"] == "failed" and given_up["attempts"][-1]["error"] == "the Notification was deleted"
    )
    assert got.seen == []
    catalog.close()


def test_the_secrets_of_a_secret() -> None:
    data = {"secret": base64.b64encode(NEW.encode()).decode(), "bad": base64.b64encode(b"whsec_!!").decode()}
    assert notifier.secrets_of({"data": data}, ["secret", "previous"]) == [webhooks.decode_secret(NEW)]
    with pytest.raises(notifier.SecretProblem, match="none of the keys"):
        notifier.secrets_of({"data": data}, ["previous"])
    with pytest.raises(notifier.SecretProblem, match="'bad'"):
        notifier.secrets_of({"data": data}, ["bad"])
    assert notifier.replay_target("evt_1#2") == "evt_1"


def test_redirects_are_not_followed() -> None:
    import httpx

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["host"] == "hooks.example.com" and request.url.host == "93.184.215.14"
        return httpx.Response(302, headers={"location": "http://169.254.169.254/"})

    answer = notifier.send(
        "https://hooks.example.com/in",
        {"id": "evt_1"},
        [b"k" * 32],
        allow_private=False,
        resolver=lambda host, port: [(2, 1, 6, "", ("93.184.215.14", port))],
        transport=httpx.MockTransport(handler),
    )
    assert answer.code == 302  # a failed attempt, retried later; the Location is never fetched
    asyncio.run(asyncio.sleep(0))


def _documented_receiver() -> str:
    """The receiver docs/notifications.md shows (the python block after `<!-- receiver -->`)."""
    page = (Path(__file__).resolve().parents[2] / "docs" / "notifications.md").read_text()
    after = page.split("<!-- receiver -->\n```python\n", 1)[1]
    return after.split("\n```\n", 1)[0] + "\n"


def test_the_documented_receiver_verifies_and_handles_each_event_once(tmp_path: Path) -> None:
    import socket
    import subprocess
    import sys

    script = tmp_path / "receiver.py"
    script.write_text(_documented_receiver())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {"PATH": "/usr/bin:/bin", "WEBHOOK_SECRET": OLD, "PORT": str(port)}
    receiver = subprocess.Popen(
        [sys.executable, str(script)], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        event = _events_of_a_version()
        url = f"http://127.0.0.1:{port}/hooks"
        keys = [webhooks.decode_secret(NEW), webhooks.decode_secret(OLD)]  # during a rotation

        def deliver(secrets: list[bytes]) -> notifier.Answer:
            # Until it listens: a hang guard, not a timing (a loaded machine took over 5 s to start it).
            deadline = time.monotonic() + 120
            while True:
                answer = notifier.send(url, event, secrets, allow_private=True)
                if answer.code:
                    return answer
                assert receiver.poll() is None, f"the receiver exited: {receiver.communicate()[1][-2000:]}"
                assert time.monotonic() < deadline, answer.error
                time.sleep(0.05)

        assert deliver(keys).code == 204
        assert deliver(keys).code == 204  # the same event again: answered, handled once
        assert deliver([webhooks.decode_secret(NEW)]).code == 401  # not a key it knows
    finally:
        receiver.terminate()
        out, err = receiver.communicate(timeout=10)
    assert out.splitlines() == ["io.contentgen.transcription.succeeded talk 1"], err


def _events_of_a_version() -> dict[str, Any]:
    doc = {"_id": "u-1", "schema": 2, "kind": "Transcription", "name": "talk", "namespace": "team-a",
           "owner": "alice", "versions": [{"version": 1, "generation": 1}]}  # fmt: skip
    [event] = webhooks.events_of(None, doc, datetime.now(UTC))
    return event


def test_a_receiver_whose_host_does_not_resolve_is_named_by_its_field() -> None:
    """The delivery log says which field to check: the Notification's spec.url, not a source's."""
    import socket

    def unknown(host: str, port: int) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    answer = notifier.send(
        "https://hooks.invalid/x",
        {"id": "e", "type": "t"},
        [b"k" * 32],
        allow_private=False,
        resolver=unknown,
    )
    assert answer.code == 0 and answer.error.endswith("check the Notification's spec.url"), answer.error


# --- a Notification is sent the events that happened once it existed (issue 70), in a cluster as on
# a laptop (catalog/deliveries.py `wants`): events kept from before its creationTimestamp (an
# operator that was away while both happened) are handed to no one; earlier ones are sent on a replay


SOON_EVENT = {
    "id": "evt_1",
    "time": "2026-11-21T12:05:00Z",
    "data": {"namespace": "team-a", "event": "succeeded"},
}


def _made_at(created: str | None) -> dict[str, object]:
    meta = {"namespace": "team-a", "name": "hooks", "uid": "n-1"}
    return {"metadata": {**meta, **({"creationTimestamp": created} if created else {})}, "spec": {}}


def test_wants_the_events_from_its_creation_on() -> None:
    assert wants(_made_at("2026-11-21T12:05:00Z"), SOON_EVENT)  # the same second
    assert wants(_made_at("2026-11-21T12:00:00Z"), SOON_EVENT)
    assert not wants(_made_at("2026-11-21T12:05:01Z"), SOON_EVENT)
    assert wants(_made_at(None), SOON_EVENT)  # no creation time: not judged by time
    assert wants(_made_at("2026-11-21T12:05:01Z"), {**SOON_EVENT, "time": None})
    assert not wants(_made_at(None), {**SOON_EVENT, "data": {"namespace": "team-b"}})  # and its filters


@pytest.mark.asyncio
async def test_the_operator_hands_a_notification_only_what_happened_after_it_was_made(
    tmp_path: Path,
    receiver: tuple[str, Receiver],
) -> None:
    url, got = receiver
    kube = FakeKube(url)
    kube.notification["metadata"]["creationTimestamp"] = "2026-11-21T12:10:00Z"  # after the resources' events
    catalog = EmbeddedCatalog(tmp_path / "catalog")
    try:
        op = _operator(catalog, kube)
        events = await _record(op, _resource("talk", "u-1", "Succeeded"), _resource("call", "u-2", "Failed"))
        assert len(events) == 2
        deliveries = Deliveries(catalog, Clock())
        await notifier.Notifier(op, deliveries).round()
        assert got.seen == [] and deliveries.unfanned() == []  # handed out, to no one
        assert deliveries.log("n-1") == []
        # a replay (the annotation) sends an earlier one all the same
        kube.notification["metadata"]["annotations"]["contentgen.io/replay"] = events[0]
        await notifier.Notifier(op, deliveries).round()
        assert got.accepted == [events[0]]
    finally:
        catalog.close()
