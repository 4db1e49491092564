"""Webhook notifications on the real control plane: a Notification and its Secret in a namespace,
a Transcription there that succeeds, and one delivery to a receiver that verifies its signature
with the Standard Webhooks specification's library; the Notification's status says so. Run in
both install modes under the chart's RBAC (tests/rbac/observed-calls.json: listing Notifications,
writing their status, reading the Secret of the allowed name)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks

from tests.kube.harness import cluster, operator, wait_for
from tests.kube.test_operator import media, namespaced_rbac, record_calls  # noqa: F401 (fixture)

pytestmark = pytest.mark.timeout(600)
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


@pytest.fixture
def receiver() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    verifier = standardwebhooks.Webhook(SECRET)
    accepted: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            try:
                accepted.append(verifier.verify(body, dict(self.headers.items())))
                code = 204
            except standardwebhooks.webhooks.WebhookVerificationError:
                code = 401
            self.send_response(code)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hooks", accepted
    server.shutdown()


@pytest.mark.parametrize("mode", ["cluster-wide", "namespaced"])
def test_a_succeeded_transcription_is_delivered_signed(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    media: str,  # noqa: F811
    receiver: tuple[str, list[dict[str, Any]]],
    mode: str,
) -> None:
    url, accepted = receiver
    ns = "team-n"
    namespaced = mode == "namespaced"
    monkeypatch.setattr("contentgen.controller.notifier.ROUND_SECONDS", 0.5)
    with cluster(tmp_path, monkeypatch, rbac=namespaced_rbac([ns]) if namespaced else None) as c:
        if namespaced:
            monkeypatch.setenv("CONTENTGEN_WATCH_NAMESPACES", json.dumps([ns]))
            monkeypatch.setenv("CONTENTGEN_MANAGE_WORKER_ACCESS", "false")
        c.ensure_namespace(ns)
        c.admin.create(
            f"/api/v1/namespaces/{ns}/secrets",
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "contentgen-webhook"},
             "stringData": {"secret": SECRET}},
        )  # fmt: skip
        c.admin.create(
            f"/apis/contentgen.io/v1alpha1/namespaces/{ns}/notifications",
            {"apiVersion": "contentgen.io/v1alpha1", "kind": "Notification", "metadata": {"name": "hooks"},
             "spec": {"url": url, "secretRef": {"name": "contentgen-webhook"}, "events": ["succeeded"]}},
        )  # fmt: skip
        with operator(c):
            spec = {"owner": "bob", "provider": "offline", "source": {"url": f"{media}/clip.mp4"}}
            manifest = {"apiVersion": "contentgen.io/v1alpha1", "kind": "Transcription"}
            c.apply({**manifest, "metadata": {"name": "talk"}, "spec": spec}, ns)
            c.wait_phase("Transcription", ns, "talk", "Succeeded")
            wait_for(lambda: accepted, 60, "the receiver's verified delivery")

            def delivered() -> dict[str, Any] | None:
                notification = c.get("notifications", ns, "hooks", "contentgen.io") or {}
                last = (notification.get("status") or {}).get("lastDelivery") or {}
                return notification["status"] if last.get("status") == "delivered" else None

            status = wait_for(delivered, 30, "the Notification's status")
        [event] = accepted
        assert event["type"] == "io.contentgen.transcription.succeeded" and event["subject"] == "talk"
        assert event["data"]["owner"] == "bob" and event["data"]["version"] == 1
        assert status["lastDelivery"]["eventId"] == event["id"] and status["pending"] == 0
        ready = {x["type"]: x["status"] for x in status["conditions"]}
        assert ready == {"Ready": "True", "Failing": "False"}
        record_calls(c, mode)
