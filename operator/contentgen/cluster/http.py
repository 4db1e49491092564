"""The HTTPS front end: authentication (bearer tokens, impersonation), routing of the REST paths,
content negotiation (JSON and YAML bodies, protobuf ones for the kinds kubectl's typed commands
send that way; JSON, YAML, Table and PartialObjectMetadata responses), chunked watch streams,
discovery, OpenAPI, /version and the health endpoints."""

from __future__ import annotations

import json
import secrets
import select
import socket
import ssl
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import yaml

from . import openapi, protobuf, tables
from .apiserver import Attributes, ControlPlane, Request, Response, User, forbidden_message
from .errors import ApiError, bad_request, forbidden, not_found, unsupported_media_type
from .podlogs import PodLog
from .rbac import Authenticator
from .resources import ResourceType

VERSION = {
    "major": "1",
    "minor": "33",
    "gitVersion": "v1.33.0+contentgen",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z",
    "goVersion": "go1.24.0",
    "compiler": "gc",
    "platform": "linux/amd64",
}
_VERBS = {"POST": "create", "PUT": "update", "PATCH": "patch"}
_BODY_TYPES = ["application/json", "application/yaml", protobuf.CONTENT_TYPE]


def _protobuf_body(raw: bytes, t: ResourceType) -> dict[str, Any]:
    """A protobuf body: built-in kinds only, as on a real server (custom resources have no
    protobuf form), and only the kinds `protobuf.py` describes."""
    if t.crd is not None:
        raise unsupported_media_type(protobuf.CONTENT_TYPE, ["application/json", "application/yaml"])
    try:
        return protobuf.decode(raw)
    except protobuf.Unsupported as exc:
        error = unsupported_media_type(protobuf.CONTENT_TYPE, _BODY_TYPES)
        error.message += (
            f" (this control plane decodes protobuf for {', '.join(protobuf.SUPPORTED)} only, not {exc};"
            " send JSON)"
        )
        raise error from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"the object provided is unrecognized (must be of type {t.kind}): {exc}") from None


def _accepts(header: str) -> list[dict[str, str]]:
    out = []
    for part in (header or "application/json").split(","):
        fields = [f.strip() for f in part.split(";")]
        params = dict(f.split("=", 1) for f in fields[1:] if "=" in f)
        out.append({"type": fields[0], **params})
    return out


class ApiHttpServer:
    def __init__(
        self,
        plane: ControlPlane,
        authenticator: Authenticator,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        cert_file: Path | None = None,
        key_file: Path | None = None,
    ) -> None:
        self.plane = plane
        self.authenticator = authenticator
        self.stop_event = threading.Event()
        self.server = ThreadingHTTPServer((host, port), self._handler())
        self.server.daemon_threads = True
        self.tls = cert_file is not None
        if cert_file is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(str(cert_file), str(key_file) if key_file else None)
            context.set_alpn_protocols(["http/1.1"])
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.thread = threading.Thread(target=self.server.serve_forever, name="apiserver", daemon=True)
        self.bookmark_every = 5.0

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        if isinstance(host, bytes):
            host = host.decode()
        return f"{'https' if self.tls else 'http'}://{host}:{port}"

    def start(self) -> ApiHttpServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        self.plane.store.close()
        self.server.shutdown()
        self.server.server_close()

    # --- routing ---------------------------------------------------------------------------------

    def route(self, path: str) -> tuple[str, Any]:
        """("discovery", doc) / ("openapi", doc) /
        ("resource", (type, namespace, name, sub, collection_ns))."""
        parts = [unquote(p) for p in path.split("/") if p]
        types = list(self.plane.types.values())
        if parts == ["api"]:
            return "doc", openapi.api_versions()
        if parts == ["apis"]:
            return "doc", openapi.group_list(types)
        if parts == ["openapi", "v2"]:
            return "doc", openapi.v2_document(types)
        if parts == ["openapi", "v3"]:
            return "doc", openapi.v3_root(types)
        if parts[:2] == ["openapi", "v3"]:
            doc = openapi.v3_document(types, "/".join(parts[2:]))
            if doc is None:
                raise not_found("", "", "/".join(parts[2:]))
            return "doc", doc
        if parts[:1] == ["api"]:
            group, rest = "", parts[1:]
        elif parts[:1] == ["apis"] and len(parts) >= 2:
            group, rest = parts[1], parts[2:]
            if not rest:
                doc = openapi.group(types, group)
                if doc is None:
                    raise ApiError(404, "NotFound", "the server could not find the requested resource")
                return "doc", doc
        else:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        version, rest = rest[0], rest[1:]
        if not rest:
            doc = openapi.resource_list(types, group, version)
            if doc is None:
                raise ApiError(404, "NotFound", "the server could not find the requested resource")
            return "doc", doc
        namespace = ""
        if rest[0] == "namespaces" and len(rest) >= 3 and rest[2] != "status" and rest[2] != "finalize":
            namespace, rest = rest[1], rest[2:]
        t = self.plane.type_for(group, version, rest[0])
        if t is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        if t.namespaced and name and not namespace:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return "resource", (t, namespace, name, sub)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        front = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            # --- responses ---

            def _send(
                self,
                code: int,
                body: Any,
                *,
                content_type: str = "application/json",
                warnings: list[str] | None = None,
            ) -> None:
                if content_type.startswith("application/yaml"):
                    data = yaml.safe_dump(body, sort_keys=False).encode()
                else:
                    data = json.dumps(body, separators=(",", ":")).encode()
                self.send_response(code)
                self.send_header("Content-Type", content_type)
                self.send_header("Audit-Id", str(uuid.uuid4()))
                self.send_header("Cache-Control", "no-cache, private")
                self.send_header("X-Content-Type-Options", "nosniff")
                for warning in warnings or []:
                    self.send_header("Warning", f'299 - "{warning}"')
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, exc: ApiError) -> None:
                self._send(exc.code, exc.status())

            def _raw_body(self) -> bytes:
                """The whole body, read before anything can answer (an unread body would be
                taken for the next request on the connection)."""
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""

            def _body(self, raw: bytes, content_type: str, t: ResourceType) -> Any:
                if not raw:
                    return None
                if content_type == protobuf.CONTENT_TYPE:
                    return _protobuf_body(raw, t)
                try:
                    if "yaml" in content_type:
                        return yaml.safe_load(raw)
                    return json.loads(raw)
                except (ValueError, yaml.YAMLError) as exc:
                    raise bad_request(f"error decoding the request body: {exc}") from None

            # --- dispatch ---

            def _handle(self, method: str) -> None:
                parsed = urlparse(self.path)
                query = {k: v[-1] for k, v in parse_qs(parsed.query, keep_blank_values=True).items()}
                raw = self._raw_body() if method in ("POST", "PUT", "PATCH", "DELETE") else b""
                try:
                    user = front.authenticator.authenticate(self.headers.get("Authorization", ""))
                    user = front.authenticator.impersonate(user, self.headers)
                    content_type = (
                        (self.headers.get("Content-Type") or "application/json").split(";")[0].strip()
                    )
                    if method in ("POST", "PUT") and content_type not in (
                        "application/json",
                        "application/yaml",
                        "*/*",
                        protobuf.CONTENT_TYPE,
                    ):
                        raise unsupported_media_type(content_type, _BODY_TYPES)
                    path = parsed.path.rstrip("/") or "/"
                    if path in ("/version", "/healthz", "/livez", "/readyz") or (
                        path.startswith(("/api", "/openapi")) and method == "GET" and self._is_doc(path)
                    ):
                        self._non_resource(user, path)
                        return
                    kind, found = front.route(path)
                    if kind == "doc":  # pragma: no cover - handled above
                        self._send(200, found)
                        return
                    t, namespace, name, sub = found
                    body = self._body(raw, content_type, t)
                    watching = method == "GET" and query.get("watch") in ("true", "1")
                    if method == "GET":
                        verb = "watch" if watching else ("get" if name else "list")
                    elif method == "DELETE":
                        verb = "delete" if name else "deletecollection"
                    else:
                        verb = _VERBS.get(method, "")
                    if not t.namespaced and namespace:
                        raise ApiError(404, "NotFound", "the server could not find the requested resource")
                    if t.namespaced and not namespace and verb not in ("list", "watch"):
                        raise ApiError(404, "NotFound", "the server could not find the requested resource")
                    req = Request(
                        user,
                        verb,
                        t,
                        namespace,
                        name,
                        sub,
                        body,
                        query,
                        content_type,
                        self.headers.get("User-Agent", ""),
                    )
                    if watching:
                        self._watch(req)
                        return
                    response = front.plane.handle(req)
                    self._respond(req, response)
                except ApiError as exc:
                    self._error(exc)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def _is_doc(self, path: str) -> bool:
                parts = [p for p in path.split("/") if p]
                if parts[:1] == ["openapi"]:
                    return True
                if parts == ["api"] or parts == ["apis"]:
                    return True
                if parts[:1] == ["api"]:
                    return len(parts) == 2
                return parts[:1] == ["apis"] and len(parts) <= 3

            def _non_resource(self, user: User, path: str) -> None:
                attrs = Attributes(user, "get", path=path)
                allowed, reason = front.plane.authorize(attrs)
                if not allowed:
                    raise forbidden("", "", "", forbidden_message(attrs) + (f": {reason}" if reason else ""))
                if path == "/version":
                    self._send(200, VERSION)
                elif path in ("/healthz", "/livez", "/readyz"):
                    data = b"ok"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/plain; charset=utf-8")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                else:
                    _, doc = front.route(path)
                    self._send(200, doc)

            def _respond(self, req: Request, response: Response) -> None:
                body = response.body
                if isinstance(body, PodLog):
                    self._log(body)
                    return
                accept = _accepts(self.headers.get("Accept", ""))
                chosen = next(
                    (
                        a
                        for a in accept
                        if a.get("as") in ("Table", "PartialObjectMetadata", "PartialObjectMetadataList")
                    ),
                    None,
                )
                if (
                    chosen
                    and req.verb in ("get", "list")
                    and isinstance(body, dict)
                    and body.get("kind") != "Status"
                ):
                    if chosen["as"] == "Table":
                        items = body["items"] if req.verb == "list" else [body]
                        list_meta = (
                            dict(body.get("metadata") or {})
                            if req.verb == "list"
                            else {"resourceVersion": body["metadata"].get("resourceVersion", "")}
                        )
                        self._send(
                            200,
                            tables.table(
                                req.type, items, list_meta, req.query.get("includeObject", "Metadata")
                            ),
                            content_type="application/json",
                        )
                        return
                    if req.verb == "list":
                        body = {
                            "kind": "PartialObjectMetadataList",
                            "apiVersion": "meta.k8s.io/v1",
                            "metadata": body.get("metadata") or {},
                            "items": [tables.partial(i) for i in body["items"]],
                        }
                    else:
                        body = tables.partial(body)
                yaml_wanted = any(a["type"] == "application/yaml" for a in accept) and not any(
                    a["type"] == "application/json" for a in accept[:1]
                )
                self._send(
                    response.code,
                    body,
                    content_type="application/yaml" if yaml_wanted else "application/json",
                    warnings=response.warnings,
                )

            def _watch(self, req: Request) -> None:
                accept = _accepts(self.headers.get("Accept", ""))
                as_table = any(a.get("as") == "Table" for a in accept)
                events = front.plane.watch(
                    req, front.stop_event, front.bookmark_every, cancelled=self._client_gone
                )
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("Cache-Control", "no-cache, private")
                self.end_headers()
                headers_sent = False
                try:
                    event = next(events, None)
                    while event is not None:
                        if as_table and event["type"] in ("ADDED", "MODIFIED", "DELETED"):
                            obj = event["object"]
                            rendered = tables.table(
                                req.type,
                                [obj],
                                {"resourceVersion": obj["metadata"].get("resourceVersion", "")},
                                req.query.get("includeObject", "Metadata"),
                            )
                            if headers_sent:
                                rendered["columnDefinitions"] = []
                            headers_sent = True
                            event = {"type": event["type"], "object": rendered}
                        line = json.dumps(event, separators=(",", ":")).encode() + b"\n"
                        self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                        self.wfile.flush()
                        event = next(events, None)
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
                    pass
                finally:
                    events.close()
                self.close_connection = True

            def _log(self, log: PodLog) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Transfer-Encoding", "chunked")
                self.send_header("Cache-Control", "no-cache, private")
                self.end_headers()
                try:
                    for chunk in log.chunks(lambda: front.stop_event.is_set() or self._client_gone()):
                        self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                    self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError, ssl.SSLError, OSError):
                    self.close_connection = True

            def _client_gone(self) -> bool:
                """Whether the client closed the connection (EOF, or TLS close_notify). A client
                sends nothing on a watch's connection; bytes it does send are dropped (the
                connection is closed after the watch anyway)."""
                connection: socket.socket = self.connection
                try:
                    readable, _, _ = select.select([connection], [], [], 0)
                    if not readable:
                        return False
                    timeout = connection.gettimeout()
                    connection.settimeout(0)
                    try:
                        return connection.recv(4096) == b""
                    finally:
                        connection.settimeout(timeout)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    return False  # part of a TLS record: nothing to decide yet
                except (OSError, ValueError):
                    return True

            def do_GET(self) -> None:
                self._handle("GET")

            def do_POST(self) -> None:
                self._handle("POST")

            def do_PUT(self) -> None:
                self._handle("PUT")

            def do_PATCH(self) -> None:
                self._handle("PATCH")

            def do_DELETE(self) -> None:
                self._handle("DELETE")

        return Handler


def admin_token() -> str:
    return "admin." + secrets.token_urlsafe(32)
