"""Container probes as the kubelet runs them (pkg/kubelet/prober): httpGet (a status in
[200, 400) succeeds; redirects are not followed to other hosts), tcpSocket, and exec (the command
in the container's sandbox, exit code 0 succeeds), with initialDelaySeconds, periodSeconds,
timeoutSeconds, successThreshold and failureThreshold. gRPC probes are not run (they fail, saying so).
"""

from __future__ import annotations

import logging
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger("localcluster.node.probes")

ExecRunner = Callable[[list[str], float], int]  # (command, timeout) -> exit code


@dataclass
class Outcome:
    ok: bool
    message: str = ""


def _port(value: Any, container: dict[str, Any]) -> int:
    if isinstance(value, int) or str(value).isdigit():
        return int(value)
    for port in container.get("ports") or []:
        if port.get("name") == value:
            return int(port["containerPort"])
    raise ValueError(f"unknown port name {value!r}")


def run_probe(probe: dict[str, Any], container: dict[str, Any], pod_ip: str, run_exec: ExecRunner) -> Outcome:
    timeout = float(probe.get("timeoutSeconds") or 1)
    try:
        if "httpGet" in probe:
            spec = probe["httpGet"]
            scheme = str(spec.get("scheme") or "HTTP").lower()
            host = spec.get("host") or pod_ip
            url = f"{scheme}://{host}:{_port(spec.get('port'), container)}{spec.get('path') or '/'}"
            headers = {h["name"]: h["value"] for h in spec.get("httpHeaders") or []}
            headers.setdefault("User-Agent", "kube-probe/1.36")
            context = ssl.create_default_context()
            context.check_hostname, context.verify_mode = False, ssl.CERT_NONE  # the kubelet does not verify
            response = httpx.get(url, headers=headers, timeout=timeout, verify=context, trust_env=False)
            if 200 <= response.status_code < 400:
                return Outcome(True)
            return Outcome(False, f"HTTP probe failed with statuscode: {response.status_code}")
        if "tcpSocket" in probe:
            spec = probe["tcpSocket"]
            with socket.create_connection(
                (spec.get("host") or pod_ip, _port(spec.get("port"), container)), timeout=timeout
            ):
                return Outcome(True)
        if "exec" in probe:
            command = [str(c) for c in probe["exec"].get("command") or []]
            code = run_exec(command, timeout)
            return Outcome(code == 0, "" if code == 0 else f"command {command} exited with {code}")
        if "grpc" in probe:
            return Outcome(False, "gRPC probes are not run by the local node")
    except (OSError, httpx.HTTPError, ValueError, subprocess.TimeoutExpired) as exc:
        return Outcome(False, f"Get {exc}" if "httpGet" in probe else str(exc))
    return Outcome(False, "probe has no handler")


class Prober:
    """One probe of one container run: `state()` is None until it has decided, then True/False."""

    def __init__(
        self,
        kind: str,  # liveness | readiness | startup
        probe: dict[str, Any],
        check: Callable[[], Outcome],
        on_change: Callable[[str, bool | None, str], None],
        started: Callable[[], bool] = lambda: True,
    ) -> None:
        self.kind, self.probe, self.check, self.on_change, self.started = (
            kind,
            probe,
            check,
            on_change,
            started,
        )
        self.result: bool | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"probe-{kind}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        p = self.probe
        period = float(p.get("periodSeconds") or 10)
        successes_needed = int(p.get("successThreshold") or 1)
        failures_allowed = int(p.get("failureThreshold") or 3)
        if self._stop.wait(float(p.get("initialDelaySeconds") or 0)):
            return
        successes = failures = 0
        while not self._stop.is_set():
            try:
                successes, failures = self._once(successes, failures, successes_needed, failures_allowed)
            except Exception:  # e.g. the API server gone while the node stops: try again next period
                log.debug("%s probe could not report", self.kind, exc_info=True)
            if self._stop.wait(period):
                return

    def _once(self, successes: int, failures: int, needed: int, allowed: int) -> tuple[int, int]:
        """One period: check when due, report a change; the running counts returned."""
        if self.kind == "startup" or self.started():
            outcome = self.check()
            if outcome.ok:
                successes, failures = successes + 1, 0
                if successes >= needed and self.result is not True:
                    self.result = True
                    self.on_change(self.kind, True, "")
            else:
                successes, failures = 0, failures + 1
                if failures >= allowed and self.result is not False:
                    self.result = False
                    self.on_change(self.kind, False, outcome.message)
                    failures = 0
                elif failures < allowed or self.result is False:
                    self.on_change(self.kind, None, outcome.message)  # one failure: an event
        return successes, failures
