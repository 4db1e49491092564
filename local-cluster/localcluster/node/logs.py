"""Container logs as the kubelet keeps them, and the part of the kubelet's API that serves them.

Each run of a container writes one file in the CRI log format (`<RFC 3339 time> <stream> <F|P>
<text>`, one line per line the process wrote: a line longer than 16 KiB is split into partial
`P` records), so the server can answer `timestamps`, `sinceSeconds` and `sinceTime` as the kubelet
does. `/containerLogs/{namespace}/{pod}/{container}` takes follow, previous, tailLines, limitBytes,
sinceSeconds, sinceTime and timestamps. The server speaks TLS with a certificate for
system:node:NAME, asks for a client certificate from the cluster's CA (the API server's kubelet
client) and authorizes each request with a SubjectAccessReview (nodes/proxy), as the kubelet's
webhook authorizer does.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import IO, Any
from urllib.parse import parse_qs, unquote, urlsplit

from ..tlsserver import TLSServer

log = logging.getLogger("localcluster.node")

MAX_RECORD = 16 * 1024


def now_rfc3339nano() -> str:
    t = time.time_ns()
    return dt.datetime.fromtimestamp(t // 1_000_000_000, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S") + (
        f".{t % 1_000_000_000:09d}Z"
    )


class LogWriter:
    """Copies a process's stdout and stderr into one CRI log file (a thread per stream)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._out = path.open("ab", buffering=0)
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def follow(self, stream: IO[bytes], name: str) -> None:
        thread = threading.Thread(target=self._copy, args=(stream, name), daemon=True)
        thread.start()
        self._threads.append(thread)

    def _copy(self, stream: IO[bytes], name: str) -> None:
        for line in iter(lambda: stream.readline(MAX_RECORD), b""):
            full = line.endswith(b"\n")
            text = line[:-1] if full else line
            record = f"{now_rfc3339nano()} {name} {'F' if full else 'P'} ".encode() + text + b"\n"
            with self._lock:
                self._out.write(record)
        stream.close()

    def close(self) -> None:
        for thread in self._threads:
            thread.join(10)
        self._out.close()


def parse(record: bytes) -> tuple[str, str, bool, bytes]:
    """(time, stream, full, text) of one record."""
    when, stream, tag, text = (
        record.rstrip(b"\n").split(b" ", 3)
        if record.count(b" ") >= 3
        else (
            *record.rstrip(b"\n").split(b" ", 2),
            b"",
        )
    )
    return when.decode(), stream.decode(), tag == b"F", text


def plain_text(path: Path, limit: int | None = None) -> bytes:
    """What the process wrote (records joined back into lines)."""
    if not path.exists():
        return b""
    out = bytearray()
    with path.open("rb") as f:
        for record in f:
            _, _, full, text = parse(record)
            out += text + (b"\n" if full else b"")
    return bytes(out if limit is None else out[-limit:])


def _parse_time(value: str) -> float:
    value = value.replace("Z", "+00:00")
    if "." in value:  # nanoseconds do not parse: keep microseconds
        head, _, tail = value.partition(".")
        digits = "".join(c for c in tail if c.isdigit())
        zone = tail[len(digits) :]
        value = f"{head}.{digits[:6]}{zone}"
    return dt.datetime.fromisoformat(value).timestamp()


def select(records: list[bytes], *, tail: int | None, since: float | None, timestamps: bool) -> list[bytes]:
    lines = []
    for record in records:
        when, _, full, text = parse(record)
        if since is not None and _parse_time(when) < since:
            continue
        lines.append((when.encode() + b" " if timestamps else b"") + text + (b"\n" if full else b""))
    return lines[-tail:] if tail is not None and tail >= 0 else lines


LogFiles = Callable[[str, str, str, bool], "tuple[Path | str | None, Callable[[], bool]]"]
# (namespace, pod, container, previous) -> (the log file, or why there is none; "still running?")


class KubeletServer:
    """The kubelet API's log endpoint and /healthz on `host:port`, over TLS."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        cert: Path,
        key: Path,
        ca: Path,
        logs: LogFiles,
        authorize: Callable[[str, list[str], str], bool],
    ) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        context.load_verify_locations(str(ca))
        context.verify_mode = ssl.CERT_REQUIRED
        server = self
        self.logs, self.authorize = logs, authorize

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("kubelet api: " + format, *args)

            def do_GET(self) -> None:
                server._get(self)

        self.httpd = TLSServer((host, port), Handler, context)
        self.port = self.httpd.server_address[1]
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="kubelet-api", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _send(self, h: BaseHTTPRequestHandler, code: int, body: bytes, ctype: str = "text/plain") -> None:
        h.send_response(code)
        h.send_header("Content-Type", ctype)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def _identity(self, h: BaseHTTPRequestHandler) -> tuple[str, list[str]]:
        cert = h.connection.getpeercert()
        subject = dict(x[0] for x in cert.get("subject", ()))
        groups = [v for rdn in cert.get("subject", ()) for k, v in rdn if k == "organizationName"]
        return str(subject.get("commonName", "")), groups

    def _get(self, h: BaseHTTPRequestHandler) -> None:
        url = urlsplit(h.path)
        if url.path in ("/healthz", "/healthz/"):
            return self._send(h, 200, b"ok")
        user, groups = self._identity(h)
        if not self.authorize(user, groups, "proxy"):
            return self._send(
                h, 403, f"Forbidden (user={user}, verb=get, resource=nodes, subresource=proxy)".encode()
            )
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        if len(parts) != 4 or parts[0] != "containerLogs":
            return self._send(h, 404, b"404 page not found")
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        _, namespace, pod, container = parts
        previous = query.get("previous") in ("true", "1")
        path, running = self.logs(namespace, pod, container, previous)
        if not isinstance(path, Path):
            return self._send(h, 400, str(path or f'pod "{pod}" is not on this node').encode())
        try:
            tail = int(query["tailLines"]) if "tailLines" in query else None
            limit = int(query["limitBytes"]) if "limitBytes" in query else None
            since = None
            if "sinceSeconds" in query:
                since = time.time() - int(query["sinceSeconds"])
            elif "sinceTime" in query:
                since = _parse_time(query["sinceTime"])
        except ValueError as exc:
            return self._send(h, 400, str(exc).encode())
        timestamps = query.get("timestamps") in ("true", "1")
        follow = query.get("follow") in ("true", "1") and not previous
        h.send_response(200)
        h.send_header("Content-Type", "text/plain")
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        sent = 0
        try:
            for chunk in self._stream(path, running, tail, since, timestamps, follow):
                if limit is not None:
                    chunk = chunk[: max(0, limit - sent)]
                if chunk:
                    h.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    h.wfile.flush()
                    sent += len(chunk)
                if limit is not None and sent >= limit:
                    break
            h.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass

    def _stream(
        self,
        path: Path,
        running: Callable[[], bool],
        tail: int | None,
        since: float | None,
        timestamps: bool,
        follow: bool,
    ) -> Iterator[bytes]:
        with path.open("rb") as f:
            records = f.readlines()
            if records and not records[-1].endswith(b"\n"):  # a record still being written
                pending = records.pop()
                f.seek(f.tell() - len(pending))
            yield b"".join(select(records, tail=tail, since=since, timestamps=timestamps))
            while follow:
                line = f.readline()
                if line.endswith(b"\n"):
                    yield b"".join(select([line], tail=None, since=since, timestamps=timestamps))
                    continue
                if line:
                    f.seek(f.tell() - len(line))
                if not running():
                    rest = f.read()
                    if rest:
                        yield b"".join(
                            select(
                                rest.splitlines(keepends=True), tail=None, since=since, timestamps=timestamps
                            )
                        )
                    return
                time.sleep(0.1)


def sar(user: str, groups: list[str], node: str, subresource: str) -> dict[str, Any]:
    return {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": user,
            "groups": groups,
            "resourceAttributes": {
                "verb": "get",
                "resource": "nodes",
                "subresource": subresource,
                "name": node,
            },
        },
    }


def dumps(obj: Any) -> bytes:
    return json.dumps(obj).encode()
