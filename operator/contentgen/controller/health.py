"""The operator's probe endpoints, served from the moment the process starts, before it holds the
Lease, so that a replica standing by is Ready and alive in the kubelet's eyes:

    /healthz   liveness: a standby's election loop is turning; the leader's kopf answers its own
               liveness endpoint (on a loopback port of its own)
    /readyz    readiness: the API server answered this replica lately (a standby can take over)

Why it matters: with one replica and a rolling update (maxSurge 1, maxUnavailable 0), the new pod
waits for the Lease its predecessor holds until the predecessor goes; if the new pod were not
Ready until it leads, the predecessor would never be stopped and every `helm upgrade` would stall.
With more replicas, standbys that are not Ready also block node drains (the PodDisruptionBudget).

`probe` decides (pure); `HealthServer` is the thin HTTP part.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

log = logging.getLogger("contentgen.operator.health")


@dataclass
class Health:
    """What the probes look at. `role` is standby | leader | stopping."""

    role: str = "standby"
    last_attempt: float = 0.0  # the election loop's last try (monotonic)
    last_contact: float = 0.0  # the last time the API server answered (monotonic)
    kopf_liveness: str = ""  # the leader's kopf liveness URL
    stale_after: float = 60.0  # no attempt or answer for this long: not alive / not ready
    clock: Callable[[], float] = field(default=time.monotonic)

    def attempted(self, answered: bool) -> None:
        now = self.clock()
        self.last_attempt = now
        if answered:
            self.last_contact = now


def probe(path: str, health: Health, kopf_alive: Callable[[str], bool]) -> tuple[int, str]:
    now = health.clock()
    if path == "/readyz":
        if health.role == "stopping":
            return 503, "stopping"
        if health.role == "leader" or now - health.last_contact <= health.stale_after:
            return 200, health.role
        return 503, f"{health.role}: the API server has not answered for {now - health.last_contact:.0f} s"
    if path == "/healthz":
        if health.role == "leader":
            if kopf_alive(health.kopf_liveness):
                return 200, "leader"
            return 500, "leader: kopf does not answer its liveness probe"
        if now - health.last_attempt <= health.stale_after:
            return 200, health.role
        return 500, f"{health.role}: the election loop has not run for {now - health.last_attempt:.0f} s"
    return 404, "not found"


def kopf_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - our own loopback URL
            return bool(response.status == 200)
    except OSError:
        return False


class HealthServer:
    def __init__(self, port: int, health: Health, kopf_alive: Callable[[str], bool] = kopf_answers) -> None:
        state = health

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                code, text = probe(self.path.split("?", 1)[0], state, kopf_alive)
                body = (text + "\n").encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self.httpd = ThreadingHTTPServer(("0.0.0.0", port), Handler)  # noqa: S104 - the kubelet probes the pod's IP
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="health", daemon=True)

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
