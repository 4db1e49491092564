"""examples/notification.yaml on a laptop (issues 45, 70): `contentgen run` keeps it, and the runs
after it send it their events, and only theirs (earlier ones on an explicit replay), signed with the
key it made (verified here by the Standard Webhooks library). A receiver that does not answer is
said once, backed off (the wait doubling) and paused after PAUSE_AFTER failed tries in a row, never
tried on every run; `contentgen notifications` lists, pauses, resumes, sends, replays and deletes;
the delivery log the API's Notifications page shows has them."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks
import yaml

from contentgen.catalog import open_catalog
from contentgen.catalog.deliveries import Deliveries
from contentgen.catalog.laptop_notifications import PAUSE_AFTER, KeptNotifications, backoff
from contentgen.cli.laptop_notifications import after_run
from contentgen.cli.main import main
from tests.conftest import EXAMPLES

SAMPLE = str(EXAMPLES / "media" / "sample.mp4")


class Receiver:
    def __init__(self) -> None:
        self.key = ""
        self.codes: list[int] = []  # answered in turn, then `then`
        self.then = 204
        self.asked = 0
        self.events: list[dict[str, Any]] = []

    def answer(self, body: bytes, headers: dict[str, str]) -> int:
        self.asked += 1
        event = standardwebhooks.Webhook(self.key).verify(body, headers)  # refuses a bad signature
        code = self.codes.pop(0) if self.codes else self.then
        if code < 300:
            self.events.append(event)
        return code


@pytest.fixture
def receiver() -> Iterator[tuple[str, Receiver]]:
    got = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            code = got.answer(body, dict(self.headers.items()))
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks", got
    server.shutdown()


def _keep(workspace: Path, url: str, got: Receiver, capsys: pytest.CaptureFixture[str]) -> str:
    example = yaml.safe_load((EXAMPLES / "notification.yaml").read_text())
    example["spec"]["url"] = url
    (workspace / "hooks.yaml").write_text(yaml.safe_dump(example))
    assert main(["run", str(workspace / "hooks.yaml")]) == 0
    kept = capsys.readouterr().out
    key_file = workspace / "contentgen-data" / "webhook-secrets" / "default_demo-hooks"
    assert "kept in the local catalog" in kept and str(key_file.relative_to(workspace)) in kept
    assert "contentgen notifications replay default/demo-hooks --all" in kept
    got.key = key_file.read_text().strip()
    return kept


def _said(err: str) -> list[str]:
    return [line for line in err.splitlines() if "notification" in line]


def _listed(capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert main(["notifications", "list", "-o", "json"]) == 0
    [item] = json.loads(capsys.readouterr().out)["items"]
    return dict(item)


def _runs_end(workspace: Path) -> list[str]:
    """What the end of a run that made nothing new does: the waiting deliveries attempted."""
    catalog = open_catalog()
    try:
        return after_run(catalog, None, None, workspace / "contentgen-data", allow_private=True)
    finally:
        catalog.close()


def _waited(workspace: Path) -> None:
    """The Notification's backoff over: its next try is due (the clock moved on)."""
    catalog = open_catalog()
    try:
        kept = KeptNotifications(catalog)
        [hooks] = kept.all()
        hooks["status"]["failing"]["retryAt"] = 0.0
        kept.save(hooks)
    finally:
        catalog.close()


def test_a_new_notification_is_sent_the_events_after_it_and_earlier_ones_on_a_replay(
    workspace: Path,
    receiver: tuple[str, Receiver],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, got = receiver
    monkeypatch.setenv("CONTENTGEN_ALLOW_PRIVATE_SOURCES", "true")  # the receiver is on loopback
    for _ in range(2):  # work from before the Notification: its events are kept, sent to no one
        assert main(["run", "--offline", str(EXAMPLES / "imagegeneration.yaml")]) == 0
    assert main(["run", "--offline", "--source", SAMPLE, str(EXAMPLES / "transcription.yaml")]) == 0
    capsys.readouterr()
    _keep(workspace, url, got, capsys)

    assert main(["run", "--offline", str(EXAMPLES / "imagegeneration.yaml")]) == 0
    said = _said(capsys.readouterr().err)
    assert said == [
        "contentgen run: notification default/demo-hooks: io.contentgen.imagegeneration.succeeded "
        "delivered (HTTP 204)"
    ]
    assert [(e["type"], e["data"]["version"]) for e in got.events] == [
        ("io.contentgen.imagegeneration.succeeded", 3)
    ]

    # the earlier events, when asked for: every event kept that it matches
    assert main(["notifications", "replay", "demo-hooks", "--all"]) == 0
    out = capsys.readouterr().out
    assert out.count("delivered (HTTP 204)") == 4, out
    assert sorted((e["type"].split(".")[2], e["data"]["version"]) for e in got.events[1:]) == [
        ("imagegeneration", 1),
        ("imagegeneration", 2),
        ("imagegeneration", 3),
        ("transcription", 1),
    ]
    # one event again, by its id (as the delivery log lists it)
    first = got.events[0]["id"]
    assert main(["notifications", "replay", "default/demo-hooks", first]) == 0
    assert capsys.readouterr().out.count("delivered (HTTP 204)") == 1 and got.events[-1]["id"] == first
    assert main(["notifications", "replay", "demo-hooks", "evt_0123"]) == 1
    assert "no event evt_0123 is kept" in capsys.readouterr().err


def test_a_receiver_that_does_not_answer_is_said_once_backed_off_and_paused(
    workspace: Path,
    receiver: tuple[str, Receiver],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, got = receiver
    monkeypatch.setenv("CONTENTGEN_ALLOW_PRIVATE_SOURCES", "true")
    _keep(workspace, url, got, capsys)
    got.then = 503

    assert main(["run", "--offline", str(EXAMPLES / "imagegeneration.yaml")]) == 0
    [line] = _said(capsys.readouterr().err)
    assert line.startswith(
        "contentgen run: notification default/demo-hooks: io.contentgen.imagegeneration.succeeded not "
        "delivered (HTTP 503); 1 delivery waits, tried again by a run after "
    )
    assert "the wait doubles after each failed try, 1 min up to 1 h; paused after 8 in a row" in line
    # the next run says nothing of it and sends nothing: the Notification backs off
    assert main(["run", "--offline", "--source", SAMPLE, str(EXAMPLES / "transcription.yaml")]) == 0
    assert _said(capsys.readouterr().err) == [] and got.asked == 1
    listed = _listed(capsys)
    assert listed["waiting"] == 2 and listed["failing"]["tries"] == 1
    assert listed["state"].startswith("backing off till ") and listed["state"].endswith(
        "(1 failed try in a row)"
    )
    assert [backoff(n) for n in (1, 2, 3, 7, 8)] == [60.0, 120.0, 240.0, 3600.0, 3600.0]

    # each later try, once its wait is over, is one request and says nothing, until the pause
    for tries in range(2, PAUSE_AFTER):
        _waited(workspace)
        assert _runs_end(workspace) == [] and got.asked == tries
    _waited(workspace)
    [paused] = _runs_end(workspace)
    assert paused == (
        "notification default/demo-hooks paused: 8 failed tries in a row (the last: HTTP 503); 2 "
        "deliveries wait. `contentgen notifications resume default/demo-hooks` sends them"
    )
    assert _runs_end(workspace) == [] and got.asked == PAUSE_AFTER
    assert _listed(capsys)["state"] == "paused after 8 failed tries"

    # the receiver is back: resume sends what waits and what failed while it was failing
    got.then = 204
    assert main(["notifications", "resume", "demo-hooks"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Notification default/demo-hooks resumed"
    assert sorted(out[1:3]) == [
        "notification default/demo-hooks: io.contentgen.imagegeneration.succeeded delivered (HTTP 204)",
        "notification default/demo-hooks: io.contentgen.transcription.succeeded delivered (HTTP 204)",
    ]
    assert len(out) == 3, out
    listed = _listed(capsys)
    assert (listed["state"], listed["waiting"], listed["failing"]) == ("sending", 0, None)
    assert len(got.events) == 2


def test_410_gone_pauses_at_once(
    workspace: Path,
    receiver: tuple[str, Receiver],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, got = receiver
    monkeypatch.setenv("CONTENTGEN_ALLOW_PRIVATE_SOURCES", "true")
    _keep(workspace, url, got, capsys)
    got.codes = [410]
    assert main(["run", "--offline", str(EXAMPLES / "imagegeneration.yaml")]) == 0
    assert _said(capsys.readouterr().err) == [
        "contentgen run: notification default/demo-hooks paused: its receiver answered 410 Gone (it asks for "
        "no more); 1 delivery waits. `contentgen notifications resume default/demo-hooks` sends them"
    ]
    assert _listed(capsys)["state"] == "paused: its receiver answered 410 Gone"


def test_pause_send_and_delete(
    workspace: Path,
    receiver: tuple[str, Receiver],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, got = receiver
    monkeypatch.setenv("CONTENTGEN_ALLOW_PRIVATE_SOURCES", "true")
    _keep(workspace, url, got, capsys)
    assert main(["notifications", "pause", "demo-hooks"]) == 0
    assert "paused: its events are kept for it" in capsys.readouterr().out
    assert main(["run", "--offline", str(EXAMPLES / "imagegeneration.yaml")]) == 0
    assert _said(capsys.readouterr().err) == [] and got.asked == 0
    assert (_listed(capsys)["state"], _listed(capsys)["waiting"]) == ("paused", 1)
    assert main(["notifications", "send"]) == 0
    assert capsys.readouterr().out.strip() == "nothing waits (or every Notification is paused)"

    # running the manifest again keeps it as it says (not paused), its creation time kept
    before = _listed(capsys)["createdAt"]
    assert main(["run", str(workspace / "hooks.yaml")]) == 0
    assert "updated in the local catalog" in capsys.readouterr().out
    assert _listed(capsys)["createdAt"] == before
    got.codes = [503]
    assert main(["notifications", "send", "demo-hooks"]) == 0
    assert "not delivered (HTTP 503); 1 delivery waits" in capsys.readouterr().out
    assert main(["notifications", "send", "demo-hooks"]) == 0  # asked: past the backoff
    assert capsys.readouterr().out.splitlines() == [
        "notification default/demo-hooks: io.contentgen.imagegeneration.succeeded delivered (HTTP 204)",
        "notification default/demo-hooks: its receiver answers again, after 1 failed try",
    ]

    assert main(["run", "--offline", str(EXAMPLES / "imagegeneration.yaml")]) == 0
    capsys.readouterr()
    got.then = 503
    assert main(["notifications", "pause", "demo-hooks"]) == 0
    assert main(["run", "--offline", str(EXAMPLES / "imagegeneration.yaml")]) == 0
    capsys.readouterr()
    assert main(["notifications", "delete", "demo-hooks"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Notification default/demo-hooks deleted: 1 waiting delivery given up;"), out
    assert main(["notifications", "list", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"items": []}
    assert main(["notifications", "pause", "demo-hooks"]) == 1
    assert "no Notification demo-hooks is kept here" in capsys.readouterr().err
    catalog = open_catalog()
    try:
        log = Deliveries(catalog).find(None, notification="demo-hooks")
    finally:
        catalog.close()
    given_up = [d for d in log if d["status"] == "failed"]
    assert [d["attempts"][-1]["error"] for d in given_up] == ["the Notification was deleted"]


def test_the_receiver_checks_each_signature_as_the_specification_does_and_prints_each_event() -> None:
    """`contentgen notifications receive`'s handler, against deliveries signed by the Standard
    Webhooks library (a reference this project did not write): a good one is answered 204 and its
    event printed, again marked as again; a changed body, another key or an old timestamp 401."""
    import base64
    import secrets
    from datetime import UTC, datetime, timedelta

    import httpx

    from contentgen.cli.notifications import _handler

    key = secrets.token_bytes(32)
    secret = "whsec_" + base64.b64encode(key).decode()
    printed: list[str] = []
    now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
    handler = _handler(key, lambda: now.timestamp(), lambda *a, **_: printed.append(" ".join(map(str, a))))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"

    def post(body: str, signer: str = secret, at: datetime = now, msg_id: str = "evt_1") -> int:
        signature = standardwebhooks.Webhook(signer).sign(msg_id, at, body)
        headers = {
            "webhook-id": msg_id,
            "webhook-timestamp": str(int(at.timestamp())),
            "webhook-signature": signature,
        }
        return httpx.post(url, content=body.encode(), headers=headers).status_code

    event = {"id": "evt_1", "type": "io.contentgen.imagegeneration.succeeded", "subject": "demo-landscape",
             "data": {"version": 3}}  # fmt: skip
    body = json.dumps(event)
    try:
        assert post(body) == 204 and post(body) == 204
        other = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        assert post(body, signer=other) == 401
        assert post(body, at=now - timedelta(minutes=6)) == 401
        signature = standardwebhooks.Webhook(secret).sign("evt_1", now, body)
        changed = httpx.post(
            url,
            content=body.replace("demo-landscape", "demo-lighthouse").encode(),
            headers={
                "webhook-id": "evt_1",
                "webhook-timestamp": str(int(now.timestamp())),
                "webhook-signature": signature,
            },
        )
        assert changed.status_code == 401
    finally:
        server.shutdown()
    lines = [line for line in printed if "refused" not in line]
    assert [line.split(" ", 1)[1] for line in lines] == [
        "io.contentgen.imagegeneration.succeeded demo-landscape v3 evt_1",
        "io.contentgen.imagegeneration.succeeded demo-landscape v3 evt_1 (again: deliveries are at least "
        "once)",
    ]
    assert [line for line in printed if "refused" in line] == [
        "refused a delivery: its signature does not match the key",
        "refused a delivery: its timestamp is more than 300 s from now",
        "refused a delivery: its signature does not match the key",
    ]
