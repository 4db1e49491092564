"""A Kubernetes API server test double, over real HTTP, for running the real operator (kopf) and
the real worker against. Fidelity gaps are listed in tests/README.md.

What it does like the real one:
- discovery (/api, /apis, resource lists with subresources), /version;
- namespaced and cluster-scoped CRUD, list with label selectors, watch streams from a
  resourceVersion (chunked JSON lines), 404/409/422 as Status objects;
- metadata the server owns: uid, resourceVersion, generation (bumped on spec changes only),
  creationTimestamp; optimistic concurrency on PUT;
- the status subresource for objects that have one: the main endpoint ignores status, /status
  changes nothing else;
- merge patch and JSON patch (with `test`); strategic merge patch is applied as a merge patch;
- deletion with finalizers (deletionTimestamp, removal when the last finalizer goes) and
  garbage collection of dependents by ownerReferences (background);
- admission of contentgen resources from the generated CRDs (defaults, schema, CEL; see
  tests/admission.py);
- authentication by bearer token, and a record of every (identity, verb, group, resource)
  for the RBAC coverage test.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

import jsonpatch

from tests.admission import admit


@dataclass(frozen=True)
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    status: bool = False  # has a status subresource
    crd: dict[str, Any] | None = None  # for admission of custom resources

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


@dataclass(frozen=True)
class Call:
    identity: str
    verb: str
    group: str
    resource: str  # plural, or plural/subresource
    namespace: str


BUILTIN = [
    ResourceType("", "v1", "namespaces", "Namespace", namespaced=False, status=True),
    ResourceType("", "v1", "pods", "Pod", status=True),
    ResourceType("", "v1", "events", "Event"),
    ResourceType("", "v1", "secrets", "Secret"),
    ResourceType("", "v1", "serviceaccounts", "ServiceAccount"),
    ResourceType("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    ResourceType("events.k8s.io", "v1", "events", "Event"),
    ResourceType("batch", "v1", "jobs", "Job", status=True),
    ResourceType("kopf.dev", "v1", "kopfpeerings", "KopfPeering"),
    ResourceType("kopf.dev", "v1", "clusterkopfpeerings", "ClusterKopfPeering", namespaced=False),
    ResourceType(
        "apiextensions.k8s.io",
        "v1",
        "customresourcedefinitions",
        "CustomResourceDefinition",
        namespaced=False,
    ),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease"),
]


class ApiError(Exception):
    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message

    def status(self) -> dict[str, Any]:
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _matches(labels: dict[str, str], selector: str) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            key, value = term.split("!=", 1)
            if labels.get(key) == value:
                return False
        elif "=" in term:
            key, value = term.replace("==", "=").split("=", 1)
            if labels.get(key) != value:
                return False
        elif term.startswith("!"):
            if term[1:] in labels:
                return False
        elif term not in labels:
            return False
    return True


class FakeApiServer:
    def __init__(self, crds: list[dict[str, Any]], tokens: dict[str, str]) -> None:
        self.types: dict[tuple[str, str, str], ResourceType] = {
            (t.group, t.version, t.plural): t for t in BUILTIN
        }
        for crd in crds:
            spec = crd["spec"]
            version = spec["versions"][0]
            self.types[(spec["group"], version["name"], spec["names"]["plural"])] = ResourceType(
                spec["group"],
                version["name"],
                spec["names"]["plural"],
                spec["names"]["kind"],
                status="status" in version.get("subresources", {}),
                crd=crd,
            )
        self.tokens = tokens  # bearer token -> identity
        self.objects: dict[tuple[str, str, str], dict[tuple[str, str], dict[str, Any]]] = {
            k: {} for k in self.types
        }
        self.log: list[tuple[int, tuple[str, str, str], str, dict[str, Any]]] = []
        self.rv = 1
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.calls: list[Call] = []
        self.on_create: list[Callable[[ResourceType, dict[str, Any]], None]] = []
        # Faults to inject: (verb, resource) -> how many more requests fail with 500.
        self.faults: dict[tuple[str, str], int] = {}
        self.stopping = False
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # --- lifecycle --------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeApiServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        with self.lock:
            self.stopping = True
            self.changed.notify_all()
        self.server.shutdown()
        self.server.server_close()

    # --- state, as tests and the fake kubelet use it (not recorded as calls) -----------------

    def type_of(self, group: str, plural: str) -> ResourceType:
        return next(t for (g, _, p), t in self.types.items() if g == group and p == plural)

    def get(self, group: str, plural: str, namespace: str, name: str) -> dict[str, Any] | None:
        t = self.type_of(group, plural)
        with self.lock:
            obj = self.objects[(t.group, t.version, t.plural)].get((namespace if t.namespaced else "", name))
            return copy.deepcopy(obj) if obj else None

    def list(
        self, group: str, plural: str, namespace: str | None = None, selector: str = ""
    ) -> list[dict[str, Any]]:
        t = self.type_of(group, plural)
        with self.lock:
            return [
                copy.deepcopy(o)
                for (ns, _), o in sorted(self.objects[(t.group, t.version, t.plural)].items())
                if (namespace is None or ns == namespace)
                and _matches(o["metadata"].get("labels") or {}, selector)
            ]

    def create(self, group: str, plural: str, obj: dict[str, Any]) -> dict[str, Any]:
        t = self.type_of(group, plural)
        return self._create(
            t, obj.get("metadata", {}).get("namespace", "default") if t.namespaced else "", obj
        )

    def update(
        self,
        group: str,
        plural: str,
        namespace: str,
        name: str,
        mutate: Callable[[dict[str, Any]], None],
        *,
        status: bool = False,
    ) -> dict[str, Any]:
        t = self.type_of(group, plural)
        with self.lock:
            current = self._get_or_404(t, namespace, name)
            new = copy.deepcopy(current)
            mutate(new)
            return self._store(
                t, namespace, current, new, subresource="status" if status else "", admit_=not status
            )

    def delete(self, group: str, plural: str, namespace: str, name: str) -> None:
        self._delete(self.type_of(group, plural), namespace, name)

    # --- the machinery ------------------------------------------------------------------------

    def _key(self, t: ResourceType) -> tuple[str, str, str]:
        return (t.group, t.version, t.plural)

    def _get_or_404(self, t: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        obj = self.objects[self._key(t)].get((namespace, name))
        if obj is None:
            raise ApiError(404, "NotFound", f'{t.plural}.{t.group or "core"} "{name}" not found')
        return obj

    def _emit(self, t: ResourceType, kind: str, obj: dict[str, Any]) -> None:
        self.log.append((int(obj["metadata"]["resourceVersion"]), self._key(t), kind, copy.deepcopy(obj)))
        self.changed.notify_all()

    def _next_rv(self) -> str:
        self.rv += 1
        return str(self.rv)

    def _admit(self, t: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        if t.crd is None:
            return obj
        stored, errors = admit(t.crd, obj, old=old)
        if errors:
            detail = "; ".join(f"{path}: {message}" for path, message in errors)
            raise ApiError(
                422, "Invalid", f'{t.kind}.{t.group} "{obj["metadata"].get("name")}" is invalid: {detail}'
            )
        stored["metadata"] = obj["metadata"]  # metadata is the server's, not the schema's
        return stored

    def _create(self, t: ResourceType, namespace: str, obj: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            obj = copy.deepcopy(obj)
            meta = obj.setdefault("metadata", {})
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
            if not meta.get("name"):
                raise ApiError(422, "Invalid", "metadata.name: Required value")
            if t.namespaced:
                meta["namespace"] = namespace
            if (namespace, meta["name"]) in self.objects[self._key(t)]:
                raise ApiError(
                    409, "AlreadyExists", f'{t.plural}.{t.group or "core"} "{meta["name"]}" already exists'
                )
            obj["apiVersion"], obj["kind"] = t.api_version, t.kind
            if t.status:
                obj.pop("status", None)  # the status subresource is not written on create
            obj = self._admit(t, obj, None)
            meta = obj["metadata"]
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=_now(), resourceVersion=self._next_rv())
            if "spec" in obj:
                meta["generation"] = 1
            self.objects[self._key(t)][(namespace, meta["name"])] = obj
            self._emit(t, "ADDED", obj)
            created = copy.deepcopy(obj)
        for hook in self.on_create:
            hook(t, created)
        return created

    def _store(
        self,
        t: ResourceType,
        namespace: str,
        current: dict[str, Any],
        new: dict[str, Any],
        *,
        subresource: str,
        admit_: bool = True,
    ) -> dict[str, Any]:
        meta = current["metadata"]
        if subresource == "status":
            result = copy.deepcopy(current)
            result["status"] = new.get("status")
            if result["status"] is None:
                result.pop("status")
        else:
            result = copy.deepcopy(new)
            if t.status:  # the main endpoint cannot change status
                result.pop("status", None)
                if "status" in current:
                    result["status"] = copy.deepcopy(current["status"])
            server_owned = (
                "uid",
                "creationTimestamp",
                "generation",
                "deletionTimestamp",
                "namespace",
                "name",
            )
            for key in server_owned:
                if key in meta:
                    result["metadata"][key] = meta[key]
            if admit_:
                result = self._admit(t, result, current)
            if result.get("spec") != current.get("spec") and "generation" in meta:
                result["metadata"]["generation"] = meta["generation"] + 1
        if result == current:
            return copy.deepcopy(current)
        result["metadata"]["resourceVersion"] = self._next_rv()
        if result["metadata"].get("deletionTimestamp") and not result["metadata"].get("finalizers"):
            del self.objects[self._key(t)][(namespace, meta["name"])]
            self._emit(t, "DELETED", result)
            self._collect_garbage(meta["uid"])
            return copy.deepcopy(result)
        self.objects[self._key(t)][(namespace, meta["name"])] = result
        self._emit(t, "MODIFIED", result)
        return copy.deepcopy(result)

    def _delete(self, t: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        with self.lock:
            current = self._get_or_404(t, namespace, name)
            if current["metadata"].get("finalizers"):
                if current["metadata"].get("deletionTimestamp"):
                    return copy.deepcopy(current)
                new = copy.deepcopy(current)
                new["metadata"]["deletionTimestamp"] = _now()
                new["metadata"]["deletionGracePeriodSeconds"] = 0
                new["metadata"]["resourceVersion"] = self._next_rv()
                self.objects[self._key(t)][(namespace, name)] = new
                self._emit(t, "MODIFIED", new)
                return copy.deepcopy(new)
            del self.objects[self._key(t)][(namespace, name)]
            gone = copy.deepcopy(current)
            gone["metadata"]["resourceVersion"] = self._next_rv()
            self._emit(t, "DELETED", gone)
            self._collect_garbage(current["metadata"]["uid"])
            return gone

    def _collect_garbage(self, owner_uid: str) -> None:
        for key, objects in self.objects.items():
            for (ns, name), obj in list(objects.items()):
                if any(ref.get("uid") == owner_uid for ref in obj["metadata"].get("ownerReferences") or []):
                    self._delete(self.types[key], ns, name)

    # --- HTTP ---------------------------------------------------------------------------------

    def _route(self, path: str) -> tuple[ResourceType, str, str, str] | str:
        """(type, namespace, name, subresource), or a discovery path."""
        parts = [p for p in path.split("/") if p]
        if parts[:1] == ["api"]:
            group, rest = "", parts[1:]
        elif parts[:1] == ["apis"]:
            if len(parts) < 3:
                return "discovery"
            group, rest = parts[1], parts[2:]
        else:
            return "other"
        if not rest:
            return "discovery"
        version, rest = rest[0], rest[1:]
        if not rest:
            return "discovery"
        namespace = ""
        if rest[0] == "namespaces" and len(rest) >= 3:
            namespace, rest = rest[1], rest[2:]
        plural = rest[0]
        t = self.types.get((group, version, plural))
        if t is None:
            raise ApiError(404, "NotFound", f"the server could not find the requested resource {path}")
        name = rest[1] if len(rest) > 1 else ""
        sub = rest[2] if len(rest) > 2 else ""
        return t, namespace, name, sub

    def _discovery(self, path: str) -> dict[str, Any]:
        parts = [p for p in path.split("/") if p]
        if parts == ["api"]:
            return {"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": []}
        if parts == ["apis"]:
            groups: dict[str, list[str]] = {}
            for g, v, _ in self.types:
                if g:
                    groups.setdefault(g, [])
                    if v not in groups[g]:
                        groups[g].append(v)
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [
                    {
                        "name": g,
                        "versions": [{"groupVersion": f"{g}/{v}", "version": v} for v in vs],
                        "preferredVersion": {"groupVersion": f"{g}/{vs[0]}", "version": vs[0]},
                    }
                    for g, vs in groups.items()
                ],
            }
        group, version = ("", parts[1]) if parts[0] == "api" else (parts[1], parts[2])
        resources = []
        for (g, v, _), t in self.types.items():
            if g != group or v != version:
                continue
            verbs = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
            entry = {
                "name": t.plural,
                "singularName": t.kind.lower(),
                "namespaced": t.namespaced,
                "kind": t.kind,
                "verbs": verbs,
            }
            if t.crd is not None:
                entry["categories"] = t.crd["spec"]["names"].get("categories", [])
                entry["shortNames"] = t.crd["spec"]["names"].get("shortNames", [])
            resources.append(entry)
            if t.status:
                resources.append(
                    {
                        "name": f"{t.plural}/status",
                        "singularName": "",
                        "namespaced": t.namespaced,
                        "kind": t.kind,
                        "verbs": ["get", "patch", "update"],
                    }
                )
        if not resources:
            raise ApiError(404, "NotFound", f"no such group/version {path}")
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length)) if length else None

            def _identity(self) -> str:
                auth = self.headers.get("Authorization", "")
                token = auth.removeprefix("Bearer ").strip()
                identity = server.tokens.get(token)
                if identity is None:
                    raise ApiError(401, "Unauthorized", "Unauthorized")
                return identity

            def _handle(self, method: str) -> None:
                parsed = urlparse(self.path)
                query = {k: v[-1] for k, v in parse_qs(parsed.query).items()}
                body = self._body() if method in ("POST", "PUT", "PATCH", "DELETE") else None
                try:
                    if parsed.path in ("/version", "/healthz", "/readyz"):
                        self._send(200, {"major": "1", "minor": "33", "gitVersion": "v1.33.0"})
                        return
                    identity = self._identity()
                    route = server._route(parsed.path)
                    if isinstance(route, str):
                        if route != "discovery" or method != "GET":
                            raise ApiError(404, "NotFound", parsed.path)
                        self._send(200, server._discovery(parsed.path))
                        return
                    t, namespace, name, sub = route
                    watching = method == "GET" and query.get("watch") in ("true", "1")
                    verb = {
                        "GET": "watch" if watching else ("get" if name else "list"),
                        "POST": "create",
                        "PUT": "update",
                        "PATCH": "patch",
                        "DELETE": "delete" if name else "deletecollection",
                    }[method]
                    resource = f"{t.plural}/{sub}" if sub else t.plural
                    with server.lock:
                        server.calls.append(Call(identity, verb, t.group, resource, namespace))
                        if server.faults.get((verb, resource), 0) > 0:
                            server.faults[(verb, resource)] -= 1
                            raise ApiError(500, "InternalError", "an injected fault")
                    if watching:
                        self._watch(t, namespace, query)
                        return
                    self._send(*self._crud(method, t, namespace, name, sub, query, body))
                except ApiError as exc:
                    self._send(exc.code, exc.status())

            def _crud(
                self,
                method: str,
                t: ResourceType,
                namespace: str,
                name: str,
                sub: str,
                query: dict[str, str],
                body: Any,
            ) -> tuple[int, dict[str, Any]]:
                key = server._key(t)
                if method == "GET" and not name:
                    with server.lock:
                        items = [
                            copy.deepcopy(o)
                            for (ns, _), o in sorted(server.objects[key].items())
                            if (not namespace or ns == namespace)
                            and _matches(o["metadata"].get("labels") or {}, query.get("labelSelector", ""))
                        ]
                        rv = str(server.rv)
                    return 200, {
                        "apiVersion": t.api_version,
                        "kind": f"{t.kind}List",
                        "metadata": {"resourceVersion": rv},
                        "items": items,
                    }
                if method == "GET":
                    with server.lock:
                        return 200, copy.deepcopy(server._get_or_404(t, namespace, name))
                if method == "POST":
                    return 201, server._create(t, namespace, body)
                if method == "DELETE":
                    return 200, server._delete(t, namespace, name)
                with server.lock:
                    current = server._get_or_404(t, namespace, name)
                    if method == "PUT":
                        sent_rv = (body.get("metadata") or {}).get("resourceVersion")
                        if sent_rv and sent_rv != current["metadata"]["resourceVersion"]:
                            raise ApiError(
                                409,
                                "Conflict",
                                "the object has been modified; apply your changes to the latest version",
                            )
                        new = body
                    else:
                        content_type = self.headers.get("Content-Type", "")
                        if "json-patch" in content_type:
                            try:
                                new = jsonpatch.apply_patch(current, body)
                            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
                                raise ApiError(422, "Invalid", f"the JSON patch failed: {exc}") from None
                        else:  # merge patch; strategic merge patch treated the same (a fidelity gap)
                            new = merge_patch(current, body)
                    return 200, server._store(t, namespace, current, new, subresource=sub)

            def _watch(self, t: ResourceType, namespace: str, query: dict[str, str]) -> None:
                since = int(query.get("resourceVersion") or 0)
                deadline = time.monotonic() + float(query.get("timeoutSeconds") or 60)
                selector = query.get("labelSelector", "")
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                key = server._key(t)
                try:
                    while True:
                        with server.lock:
                            pending = [
                                (rv, kind, obj)
                                for rv, k, kind, obj in server.log
                                if k == key
                                and rv > since
                                and (not namespace or obj["metadata"].get("namespace") == namespace)
                                and _matches(obj["metadata"].get("labels") or {}, selector)
                            ]
                            if not pending:
                                if server.stopping or time.monotonic() > deadline:
                                    break
                                server.changed.wait(timeout=0.5)
                                continue
                        for rv, kind, obj in pending:
                            line = json.dumps({"type": kind, "object": obj}).encode() + b"\n"
                            self.wfile.write(f"{len(line):x}\r\n".encode() + line + b"\r\n")
                            since = rv
                        self.wfile.flush()
                    self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    pass

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
