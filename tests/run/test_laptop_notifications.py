"""examples/notification.yaml on a laptop (issue 45): `contentgen run` keeps it, and the next runs
send their events to it, signed with the key it made (verified here by the Standard Webhooks
library), a receiver that is down retried by a later run; the delivery log the API's
Notifications page shows has them."""

from __future__ import annotations

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
from contentgen.cli.main import main
from tests.conftest import EXAMPLES


class Receiver:
    def __init__(self) -> None:
        self.key = ""
        self.codes: list[int] = []  # answered in turn, then 204
        self.events: list[dict[str, Any]] = []

    def answer(self, body: bytes, headers: dict[str, str]) -> int:
        event = standardwebhooks.Webhook(self.key).verify(body, headers)  # refuses a bad signature
        code = self.codes.pop(0) if self.codes else 204
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


def test_the_example_notification_runs_on_a_laptop(
    workspace: Path,
    receiver: tuple[str, Receiver],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, got = receiver
    monkeypatch.setenv("CONTENTGEN_ALLOW_PRIVATE_SOURCES", "true")  # the receiver is on loopback
    example = yaml.safe_load((EXAMPLES / "notification.yaml").read_text())
    example["spec"]["url"] = url
    (workspace / "hooks.yaml").write_text(yaml.safe_dump(example))
    assert main(["run", str(workspace / "hooks.yaml")]) == 0
    kept = capsys.readouterr().out
    key_file = workspace / "contentgen-data" / "webhook-secrets" / "default_demo-hooks"
    assert "kept in the local catalog" in kept and str(key_file.relative_to(workspace)) in kept
    got.key = key_file.read_text().strip()

    got.codes = [503]  # the receiver is down for the first run's event
    assert main(["run", "--offline", str(EXAMPLES / "imagegeneration.yaml")]) == 0
    assert "not delivered (HTTP 503); sent again by a later contentgen run" in capsys.readouterr().err
    assert got.events == []

    assert main(["run", "--offline", str(EXAMPLES / "videogeneration.yaml")]) == 0
    err = capsys.readouterr().err
    assert err.count("delivered (HTTP 204)") == 2, err  # the picture's event again, and the video's
    types = sorted(e["type"] for e in got.events)
    assert types == ["io.contentgen.imagegeneration.succeeded", "io.contentgen.videogeneration.succeeded"]
    assert {e["data"]["owner"] for e in got.events} == {"demo-user"}
    # the delivery log (GET /api/notifications/deliveries, the web UI's Notifications page)
    catalog = open_catalog()
    try:
        log = Deliveries(catalog).find(None, notification="demo-hooks")
    finally:
        catalog.close()
    assert sorted((d["type"], d["status"], d["attemptCount"]) for d in log) == [
        ("io.contentgen.imagegeneration.succeeded", "delivered", 2),
        ("io.contentgen.videogeneration.succeeded", "delivered", 1),
    ]
