"""Webhook notifications on the real control plane, under the chart's RBAC (tests/rbac/
observed-calls.json: listing Notifications, writing their status, reading the Secret of the allowed
name), to a receiver that verifies every delivery's signature with the Standard Webhooks
specification's library:

- namespaced: a Transcription succeeds, its event is delivered once, and the Notification's status
  says so (the operator in this process);
- cluster-wide: `contentgen operator` processes with leader election and a catalog on FerretDB
  (MongoDB's wire protocol); the receiver refuses the first attempt, the operator is SIGKILLed
  while the retry waits, and its restart delivers the event: one refusal, one delivery, the same
  event id, nothing lost and nothing delivered twice."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import standardwebhooks

from contentgen.catalog.deliveries import Deliveries
from contentgen.catalog.mongo import MongoCatalog
from localcluster import mongowire
from localcluster.faults import FaultProxy
from tests.harness.handover import Replica, holder, image
from tests.harness.kube import namespaced_rbac, record_calls
from tests.kube.harness import Cluster, cluster, free_port, operator, wait_for

pytestmark = pytest.mark.timeout(600)
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


class Receiver:
    """Verifies each delivery; answers 503 to the first `refuse` ones, then 204."""

    def __init__(self) -> None:
        self.verifier = standardwebhooks.Webhook(SECRET)
        self.answered: list[tuple[dict[str, Any], int]] = []
        self.refuse = 0
        self.lock = threading.Lock()

    def answer(self, body: bytes, headers: dict[str, str]) -> int:
        try:
            event = self.verifier.verify(body, headers)
        except standardwebhooks.webhooks.WebhookVerificationError:
            return 401
        with self.lock:
            code = 503 if self.refuse > 0 else 204
            self.refuse -= 1
            self.answered.append((event, code))
        return code

    def delivered(self) -> list[dict[str, Any]]:
        return [event for event, code in self.answered if code == 204]


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


def subscribe(c: Cluster, ns: str, url: str, events: list[str]) -> None:
    """The Secret of the chart's allowed name and a Notification in `ns`."""
    c.ensure_namespace(ns)
    c.admin.create(
        f"/api/v1/namespaces/{ns}/secrets",
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "contentgen-webhook"},
         "stringData": {"secret": SECRET}},
    )  # fmt: skip
    c.admin.create(
        f"/apis/contentgen.io/v1alpha1/namespaces/{ns}/notifications",
        {"apiVersion": "contentgen.io/v1alpha1", "kind": "Notification", "metadata": {"name": "hooks"},
         "spec": {"url": url, "secretRef": {"name": "contentgen-webhook"}, "events": events}},
    )  # fmt: skip


def notification_status(c: Cluster, ns: str) -> dict[str, Any]:
    return dict((c.get("notifications", ns, "hooks", "contentgen.io") or {}).get("status") or {})


def test_a_succeeded_transcription_is_delivered_signed(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    receiver: tuple[str, Receiver],
) -> None:
    url, got = receiver
    ns = "team-n"
    monkeypatch.setattr("contentgen.controller.notifier.ROUND_SECONDS", 0.5)
    with cluster(tmp_path, monkeypatch, rbac=namespaced_rbac([ns])) as c:
        monkeypatch.setenv("CONTENTGEN_WATCH_NAMESPACES", json.dumps([ns]))
        monkeypatch.setenv("CONTENTGEN_MANAGE_WORKER_ACCESS", "false")
        subscribe(c, ns, url, ["succeeded"])
        with operator(c):
            spec = {"owner": "bob", "provider": "offline", "source": {"url": f"{c.media}/clip.mp4"}}
            manifest = {"apiVersion": "contentgen.io/v1alpha1", "kind": "Transcription"}
            c.apply({**manifest, "metadata": {"name": "talk"}, "spec": spec}, ns)
            c.wait_phase("Transcription", ns, "talk", "Succeeded")
            wait_for(got.delivered, 60, "the receiver's verified delivery")

            def delivered() -> dict[str, Any] | None:
                status = notification_status(c, ns)
                return status if (status.get("lastDelivery") or {}).get("status") == "delivered" else None

            status = wait_for(delivered, 30, "the Notification's status")
        [event] = got.delivered()
        assert event["type"] == "io.contentgen.transcription.succeeded" and event["subject"] == "talk"
        assert event["data"]["owner"] == "bob" and event["data"]["version"] == 1
        assert status["lastDelivery"]["eventId"] == event["id"] and status["pending"] == 0
        ready = {x["type"]: x["status"] for x in status["conditions"]}
        assert ready == {"Ready": "True", "Failing": "False"}
        record_calls(c, "namespaced")


def test_killing_the_operator_mid_retry_loses_and_duplicates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, receiver: tuple[str, Receiver]
) -> None:
    url, got = receiver
    got.refuse = 1
    ns = "team-k"
    server = mongowire.start(tmp_path / "ferretdb")
    catalog = f"{server.url}contentgen"
    with cluster(tmp_path, monkeypatch) as c:
        subscribe(c, ns, url, [])
        first = start_replica_with_catalog(c, "op-a", catalog)
        replicas = [first]
        try:
            wait_for(lambda: holder(c) == "op-a", 120, "op-a to lead")
            c.apply(image("lighthouse"), ns)
            c.wait_phase("ImageGeneration", ns, "lighthouse", "Succeeded")
            wait_for(lambda: got.answered, 60, "the first attempt")
            # the refusal recorded (a retry is due within 5 s): kill the leader while it waits
            wait_for(lambda: _attempts(catalog) == [503], 30, "the first attempt in the delivery log")
            first.process.send_signal(signal.SIGKILL)
            first.process.wait(30)
            # the same pod restarted (its name is its identity: it takes the Lease back at once)
            again = start_replica_with_catalog(c, "op-a", catalog)
            replicas.append(again)
            wait_for(got.delivered, 120, "the retry after the restart")
            wait_for(lambda: _attempts(catalog) == [503, 204], 30, "the retry in the delivery log")
        except BaseException:
            print("\n".join(r.tail() for r in replicas))
            raise
        finally:
            for replica in replicas:
                if replica.process.poll() is None:
                    replica.process.terminate()
                    replica.process.wait(30)
                replica.proxy.stop()
            server.stop()
        ids = [event["id"] for event, _ in got.answered]
        assert [code for _, code in got.answered] == [503, 204] and len(set(ids)) == 1, got.answered
        [event] = got.delivered()
        assert event["type"] == "io.contentgen.imagegeneration.succeeded" and event["subject"] == "lighthouse"
        record_calls(c, "cluster-wide")


def start_replica_with_catalog(c: Cluster, identity: str, catalog: str) -> Replica:
    """`contentgen operator` as a Deployment's pod runs it (leader election on, behind a fault proxy
    of its own, as test_handover.py starts them), with the catalog at the MongoDB URL `catalog`."""
    assert c.local.control is not None
    proxy = FaultProxy(c.local.control.url, c.local.control.ca, tag=identity).start()
    kubeconfig = c.root / f"{identity}-{len(list(c.root.glob('*.kubeconfig')))}.kubeconfig"
    kubeconfig.write_text(Path(c.env["KUBECONFIG"]).read_text().replace(c.proxy.url, proxy.url))
    env = {
        **os.environ,
        **c.env,
        "KUBECONFIG": str(kubeconfig),
        "HOSTNAME": identity,
        "CONTENTGEN_LEADER_ELECTION": "true",
        "CONTENTGEN_HEALTH_PORT": str(free_port()),
        "CONTENTGEN_MONGODB_URI": catalog,
    }
    log = c.root / f"{kubeconfig.stem}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "contentgen", "operator"], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    return Replica(identity, proxy, process, log)


def _attempts(url: str) -> list[int]:
    catalog = MongoCatalog.connect(url)
    try:
        return [int(a["code"]) for d in Deliveries(catalog).find(None) for a in d.get("attempts") or []]
    finally:
        catalog.close()
