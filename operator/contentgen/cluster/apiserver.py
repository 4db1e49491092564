"""The API server's request pipeline, without HTTP: authorization, admission (defaulting,
validation, the admission plugins) and storage, for every verb on every served resource.

`ControlPlane.handle(Request)` is what the HTTP front end (`http.py`) and the in-process
controllers both call, so a controller's write passes the same rules as kubectl's.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Generator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from . import builtins, crds, meta, patches, podlogs, pods, structural
from .errors import (
    MODIFIED,
    ApiError,
    already_exists,
    bad_request,
    conflict,
    forbidden,
    invalid,
    not_found,
    unsupported_media_type,
)
from .resources import BUILTIN, ResourceType, from_crd
from .selectors import fields_match, labels_match, parse_fields, parse_labels
from .store import Change, Store, clone, too_old

MASTERS = "system:masters"
# Authorization decisions kept in memory for tests to read (the oldest go first). A request makes
# one to a few (admission plugins check more), so this holds tens of thousands of requests; the
# audit log, when there is one, gets every decision.
DECISIONS_KEPT = 100_000


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""


@dataclass(frozen=True)
class Attributes:
    """What an authorizer decides on (authorizer.AttributesRecord)."""

    user: User
    verb: str
    group: str = ""
    version: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""  # non-resource requests (/version, /openapi/v3, ...)

    @property
    def resource_request(self) -> bool:
        return bool(self.resource)


class Authorizer(Protocol):
    def authorize(self, attrs: Attributes) -> tuple[bool, str]: ...


class AlwaysAllow:
    """The AlwaysAllow authorization mode."""

    def authorize(self, attrs: Attributes) -> tuple[bool, str]:
        return True, ""


@dataclass(frozen=True, slots=True)
class Decision:
    """One authorization check, as an audit log would record it."""

    user: str
    verb: str
    group: str
    resource: str  # plural, or plural/subresource
    namespace: str
    name: str
    allowed: bool


def forbidden_message(attrs: Attributes) -> str:
    """responsewriters.forbiddenMessage."""
    if not attrs.resource_request:
        return f'User "{attrs.user.name}" cannot {attrs.verb} path "{attrs.path}"'
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    where = f'in the namespace "{attrs.namespace}"' if attrs.namespace else "at the cluster scope"
    return (
        f'User "{attrs.user.name}" cannot {attrs.verb} resource "{resource}" '
        f'in API group "{attrs.group}" {where}'
    )


@dataclass
class Request:
    user: User
    verb: str  # get, list, watch, create, update, patch, delete, deletecollection
    type: ResourceType
    namespace: str = ""
    name: str = ""
    subresource: str = ""
    body: Any = None
    query: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json"
    user_agent: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def field_manager(self) -> str:
        manager = self.query.get("fieldManager")
        if manager:
            return manager
        return (self.user_agent.split("/", 1)[0] or "unknown").strip() or "unknown"

    @property
    def dry_run(self) -> bool:
        return self.query.get("dryRun") == "All"


@dataclass
class Response:
    code: int
    body: Any
    warnings: list[str] = field(default_factory=list)


Plugin = Callable[["ControlPlane", Request, "dict[str, Any] | None", "dict[str, Any] | None"], None]

PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
    "application/apply-patch+cbor",
)
STRATEGIC = "application/strategic-merge-patch+json"


class ControlPlane:
    def __init__(
        self,
        *,
        authorizer: Authorizer | None = None,
        history: int = 20000,
        decisions_kept: int = DECISIONS_KEPT,
    ) -> None:
        self.store = Store(history)
        self.types: dict[tuple[str, str, str], ResourceType] = {
            (t.group, t.version, t.plural): t for t in BUILTIN
        }
        self.authorizer: Authorizer = authorizer or AlwaysAllow()
        self.decisions_kept = decisions_kept
        self._decisions: deque[Decision] = deque(maxlen=decisions_kept)
        self.decisions_made = 0  # all of them, also those no longer kept
        self.record_decisions = True
        # Validating admission plugins, in order (namespace lifecycle, service accounts, owner
        # references; see admission.py). Each raises ApiError to refuse.
        self.plugins: list[Plugin] = []
        self.faults: dict[tuple[str, str], int] = {}  # (verb, resource) -> 500s to inject
        self.requests = 0
        self.watching = 0  # watch streams open now
        self.request_counts: dict[tuple[str, str, str], int] = {}
        # Raised to end every open watch at once (as when an API server restarts or a proxy drops
        # long connections); clients are expected to watch again from their last resourceVersion.
        self.watch_epoch = 0
        self.audit: Any = None  # a text file: every authorization decision as a JSON line
        self.pod_logs: podlogs.LogSource | None = None  # the node's containers' logs (pods/log)
        self._lock = threading.Lock()

    def close_audit(self) -> None:
        with self._lock:
            if self.audit is not None:
                self.audit.close()
                self.audit = None

    @property
    def decisions(self) -> list[Decision]:
        """The last `decisions_kept` authorization decisions, oldest first (a copy)."""
        with self._lock:
            return list(self._decisions)

    # --- types -------------------------------------------------------------------------------

    def type_for(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self.types.get((group, version, plural))

    def type_of(self, group: str, plural: str) -> ResourceType:
        for (g, _, p), t in self.types.items():
            if g == group and p == plural:
                return t
        raise not_found(plural, group, "")

    def kind_type(self, api_version: str, kind: str) -> ResourceType | None:
        group, _, version = api_version.rpartition("/")
        for (g, v, _), t in self.types.items():
            if (g, v, t.kind) == (group, version, kind) and "/" not in t.plural:
                return t
        return None

    def _register_crd(self, crd: dict[str, Any]) -> None:
        # Copy on write: readers iterate `types` without a lock.
        group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
        types = {k: t for k, t in self.types.items() if not (k[0] == group and k[2] == plural)}
        for t in from_crd(crd):
            types[(t.group, t.version, t.plural)] = t
        self.types = types

    def _unregister_crd(self, crd: dict[str, Any]) -> None:
        group, plural = crd["spec"]["group"], crd["spec"]["names"]["plural"]
        self.types = {k: t for k, t in self.types.items() if not (k[0] == group and k[2] == plural)}

    # --- authorization -------------------------------------------------------------------------

    def authorize(self, attrs: Attributes) -> tuple[bool, str]:
        allowed, reason = self.authorizer.authorize(attrs)
        if self.record_decisions:
            resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
            decision = Decision(
                attrs.user.name,
                attrs.verb,
                attrs.group,
                resource or attrs.path,
                attrs.namespace,
                attrs.name,
                allowed,
            )
            with self._lock:
                self._decisions.append(decision)
                self.decisions_made += 1
                if self.audit is not None:
                    self.audit.write(json.dumps(asdict(decision)) + "\n")
        return allowed, reason

    def _authorize_request(self, req: Request) -> None:
        attrs = Attributes(
            req.user,
            req.verb,
            req.type.group,
            req.type.version,
            req.type.plural,
            req.subresource,
            req.namespace,
            req.name,
        )
        allowed, reason = self.authorize(attrs)
        if not allowed:
            message = forbidden_message(attrs) + (f": {reason}" if reason else "")
            raise forbidden(req.type.plural, req.type.group, req.name, message)

    # --- entry point ------------------------------------------------------------------------------

    def count(self, req: Request) -> None:
        """Requests by user, verb and resource (what apiserver_request_total counts)."""
        resource = f"{req.type.plural}/{req.subresource}" if req.subresource else req.type.plural
        key = (req.user.name, req.verb, resource)
        with self._lock:
            self.requests += 1
            self.request_counts[key] = self.request_counts.get(key, 0) + 1

    def handle(self, req: Request) -> Response:
        self.count(req)
        self._authorize_request(req)
        self._inject_fault(req)
        t = req.type
        if req.subresource and req.subresource not in t.subresources:
            raise not_found(t.plural, t.group, req.name)
        if req.verb not in t.verbs and not req.subresource:
            raise ApiError(
                405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
            )
        if req.verb == "get" and req.subresource == "log":  # outside the lock: it may be followed
            return Response(200, podlogs.pod_log(self, req))
        with self.store.lock:
            if req.verb == "get":
                return Response(200, self._get(req))
            if req.verb == "list":
                return Response(200, self.list_objects(req))
            if req.verb == "create":
                if req.subresource == "token":
                    return Response(201, self._token(req))
                if req.subresource == "binding":
                    return Response(201, pods.bind(self, req))
                if req.subresource == "eviction":
                    return Response(201, pods.evict(self, req))
                if t.plural in ("selfsubjectaccessreviews", "subjectaccessreviews"):
                    return Response(201, self._access_review(req))
                return Response(201, self.create(req), req.warnings)
            if req.verb == "update":
                return Response(200, self.update(req), req.warnings)
            if req.verb == "patch":
                code, obj = self.patch(req)
                return Response(code, obj, req.warnings)
            if req.verb == "delete":
                return Response(*self.delete(req))
            if req.verb == "deletecollection":
                return Response(200, self._delete_collection(req))
        raise ApiError(
            405, "MethodNotAllowed", "the server does not allow this method on the requested resource"
        )

    def _inject_fault(self, req: Request) -> None:
        resource = f"{req.type.plural}/{req.subresource}" if req.subresource else req.type.plural
        with self._lock:
            left = self.faults.get((req.verb, resource), 0)
            if left > 0:
                self.faults[(req.verb, resource)] = left - 1
                raise ApiError(500, "InternalError", "Internal error occurred: an injected fault")

    # --- reads --------------------------------------------------------------------------------------

    def _current(self, t: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        obj = self.store.peek(t.key, namespace, name)
        if obj is None:
            raise not_found(t.plural, t.group, name)
        return obj

    def _get(self, req: Request) -> dict[str, Any]:
        obj = self._current(req.type, req.namespace, req.name)
        return self._served(req.type, obj)

    def _served(self, t: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        out = clone(obj)
        out["apiVersion"], out["kind"] = t.api_version, t.kind
        if t.crd is not None:  # custom resources are defaulted on read too (with the current schema)
            structural.default(out, t.schema())
        return out

    def list_objects(self, req: Request) -> dict[str, Any]:
        t = req.type
        labels = parse_labels(req.query.get("labelSelector", ""))
        fields = parse_fields(req.query.get("fieldSelector", ""), t.group, t.plural)
        rv = req.query.get("resourceVersion", "")
        if rv and rv != "0" and rv.isdigit() and int(rv) > self.store.rv:
            raise ApiError(
                504,
                "Timeout",
                f"Too large resource version: {rv}, current: {self.store.rv}",
                {"retryAfterSeconds": 1},
            )
        if (
            req.query.get("resourceVersionMatch") == "Exact"
            and rv.isdigit()
            and int(rv) < self.store.compacted
        ):
            raise too_old(int(rv), self.store.compacted + 1)
        start, list_rv = "", self.store.rv
        token = req.query.get("continue", "")
        if token:
            try:
                state = json.loads(base64.urlsafe_b64decode(token.encode()))
                start, list_rv = str(state["start"]), int(state["rv"])
            except (ValueError, KeyError, TypeError):
                raise bad_request(
                    "continue key is not valid: incorrect encoded start resourceVersion "
                    "(version meta.k8s.io/v1)"
                ) from None
            if list_rv < self.store.compacted:
                raise ApiError(
                    410,
                    "Expired",
                    "The provided continue parameter is too old to display a consistent list result. "
                    "You can start a new list without the continue parameter, or use the continue token "
                    "in this response to retrieve the remainder of the results. Continuing with the "
                    "provided token results in an inconsistent list - objects that were created, "
                    "modified, or deleted between the time the first chunk was returned and now may "
                    "show up in the list.",
                )
        limit = int(req.query.get("limit") or 0)
        items: list[dict[str, Any]] = []
        more = 0
        for obj in self.store.items(t.key, req.namespace if t.namespaced and req.namespace else None):
            position = f"{obj['metadata'].get('namespace', '')}/{obj['metadata']['name']}"
            if start and position <= start:
                continue
            if not labels_match(labels, obj["metadata"].get("labels")) or not fields_match(fields, obj):
                continue
            if limit and len(items) >= limit:
                more += 1
                continue
            items.append(obj)
        metadata: dict[str, Any] = {"resourceVersion": str(list_rv)}
        if more:
            last = items[-1]["metadata"]
            cont = {"rv": list_rv, "start": f"{last.get('namespace', '')}/{last['name']}"}
            metadata["continue"] = base64.urlsafe_b64encode(json.dumps(cont).encode()).decode()
            metadata["remainingItemCount"] = more
        served = [self._served(t, o) for o in items]
        if t.crd is None:
            for item in served:  # built-in lists carry no kind/apiVersion per item
                item.pop("apiVersion", None)
                item.pop("kind", None)
        return {"apiVersion": t.api_version, "kind": f"{t.kind}List", "metadata": metadata, "items": served}

    # --- create -------------------------------------------------------------------------------------

    def _decode(self, req: Request) -> dict[str, Any]:
        body = req.body
        if not isinstance(body, dict):
            raise bad_request(
                f"Object 'Kind' is missing in '{json.dumps(body) if body is not None else ''}'"
                if body is not None
                else "the body of the request was empty"
            )
        t = req.type
        if body.get("apiVersion") and body["apiVersion"] != t.api_version:
            raise bad_request(
                f"the API version in the data ({body['apiVersion']}) does not match "
                f"the expected API version ({t.api_version})"
            )
        if body.get("kind") and body["kind"] != t.kind:
            raise bad_request(
                f"the kind in the data ({body['kind']}) does not match the expected kind ({t.kind})"
            )
        obj = clone(body)
        obj["apiVersion"], obj["kind"] = t.api_version, t.kind
        if not isinstance(obj.get("metadata") or {}, dict):
            raise bad_request("metadata must be an object")
        obj["metadata"] = dict(obj.get("metadata") or {})
        return obj

    def create(self, req: Request, obj: dict[str, Any] | None = None) -> dict[str, Any]:
        t = req.type
        obj = obj if obj is not None else self._decode(req)
        m = obj["metadata"]
        if t.namespaced:
            if m.get("namespace") and m["namespace"] != req.namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent on the request"
                )
            m["namespace"] = req.namespace
        else:
            m.pop("namespace", None)
        if not m.get("name") and m.get("generateName"):
            m["name"] = meta.generate_name(m["generateName"])
        for server_owned in (
            "uid",
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ):
            m.pop(server_owned, None)
        m["uid"] = str(uuid.uuid4())
        m["creationTimestamp"] = meta.now()
        if t.generation:
            m["generation"] = 1
        else:
            m.pop("generation", None)
        builtins.normalize(t.kind, obj)
        if t.has_status and t.crd is not None:
            obj.pop("status", None)
        applied_fields = (
            m.pop("managedFields", None) if req.content_type.startswith("application/apply-patch") else None
        )
        m.pop("managedFields", None)
        obj = self._admit(req, obj, None)
        name = obj["metadata"].get("name", "")
        if self.store.peek(t.key, obj["metadata"].get("namespace", ""), name) is not None:
            raise already_exists(t.plural, t.group, name)
        if applied_fields is not None:  # server-side apply made the object: its manager owns what it set
            obj["metadata"]["managedFields"] = applied_fields
        else:
            patches.record_update(None, obj, req.field_manager, t.schema(), t.api_version)
        if req.dry_run:
            return self._served(t, obj)
        stored = self.store.write(t.key, obj, None)
        if t.plural == "customresourcedefinitions":
            self._register_crd(stored)
        return self._served(t, stored)

    # --- admission ------------------------------------------------------------------------------------

    def _admit(self, req: Request, obj: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        """Mutate (defaults, pruning), then validate (schema, CEL, metadata, kind rules), then the
        validating plugins. Returns the object to store; raises 400/422/403 to refuse."""
        t = req.type
        errors: list[structural.FieldError] = []
        meta.drop_empty(obj["metadata"])
        field_validation = req.query.get("fieldValidation", "Warn")
        if t.crd is not None:
            obj = self._admit_custom(req, obj, old, field_validation, errors)
        else:
            if old is None:
                builtins.default_on_create(t.kind, obj)
            if t.plural == "customresourcedefinitions":
                _default_crd(obj)
            errors += builtins.check_schema(obj, field_validation, req.warnings)
            errors += builtins.validate_builtin(t.kind, obj, old)
            if t.plural == "customresourcedefinitions":
                errors += crds.validate_crd(obj)
                if not errors:
                    obj["status"] = _crd_status(obj)
        name_rule = (
            "label"
            if t.plural in ("namespaces", "services")
            else ("segment" if t.group == "rbac.authorization.k8s.io" else "subdomain")
        )
        errors += meta.validate_meta(obj["metadata"], namespaced=t.namespaced, name_rule=name_rule)
        if old is not None:
            errors += meta.new_finalizers_on_deleting(old["metadata"], obj["metadata"])
        if errors:
            raise invalid(t.kind, t.group, obj["metadata"].get("name", ""), [e.cause() for e in errors])
        for plugin in self.plugins:
            plugin(self, req, obj, old)
        return obj

    def _admit_custom(
        self,
        req: Request,
        obj: dict[str, Any],
        old: dict[str, Any] | None,
        field_validation: str,
        errors: list[structural.FieldError],
    ) -> dict[str, Any]:
        t = req.type
        schema = t.schema() or {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        pruned: list[str] = []
        structural.prune(obj, schema, pruned=pruned)
        for path in pruned:
            if field_validation == "Strict":
                raise bad_request(f'strict decoding error: unknown field "{path}"')
            if field_validation != "Ignore":
                req.warnings.append(f'unknown field "{path}"')
        structural.default(obj, schema)
        structural.drop_non_nullable_nulls(obj, schema)
        body = {k: v for k, v in obj.items() if k not in ("metadata",)}
        problems = structural.validate(
            body, {**schema, "required": [r for r in schema.get("required", []) if r != "metadata"]}
        )
        if not problems:
            old_body = {k: v for k, v in (old or {}).items() if k != "metadata"}
            problems = structural.cel_errors(body, old_body, schema, has_old=old is not None)
        if old is not None:  # validation ratcheting (GA in 1.33): unchanged values may stay invalid
            problems = [p for p in problems if not _unchanged(p.field, obj, old)]
        errors += problems
        return obj

    # --- update ----------------------------------------------------------------------------------------

    def update(
        self, req: Request, new: dict[str, Any] | None = None, *, from_patch: bool = False
    ) -> dict[str, Any]:
        t = req.type
        current = self._current(t, req.namespace, req.name)
        incoming = new if new is not None else self._decode(req)
        m = incoming["metadata"]
        if m.get("name") and m["name"] != req.name:
            raise bad_request(
                f"the name of the object ({m['name']}) does not match the name on the URL ({req.name})"
            )
        sent_rv = m.get("resourceVersion")
        if not sent_rv and not from_patch and not t.unconditional_update:
            raise invalid(
                t.kind,
                t.group,
                req.name,
                [
                    structural.invalid(
                        "metadata.resourceVersion", structural.Raw("0x0"), "must be specified for an update"
                    ).cause()
                ],
            )
        if sent_rv and str(sent_rv) != current["metadata"]["resourceVersion"]:
            raise conflict(t.plural, t.group, req.name, MODIFIED)
        if m.get("uid") and m["uid"] != current["metadata"]["uid"]:
            raise conflict(
                t.plural,
                t.group,
                req.name,
                f"Precondition failed: UID in precondition: {m['uid']}, "
                f"UID in object meta: {current['metadata']['uid']}",
            )
        result = self._prepare_update(t, current, incoming, req.subresource)
        builtins.normalize(t.kind, result)
        result = self._admit(req, result, current)
        if t.generation and _desired_state(t, result) != _desired_state(t, current):
            result["metadata"]["generation"] = int(current["metadata"].get("generation") or 1) + 1
        if not req.content_type.startswith("application/apply-patch"):
            patches.record_update(
                current, result, req.field_manager, t.schema(), t.api_version, req.subresource
            )
        if _same(result, current):
            return self._served(t, current)
        if req.dry_run:
            return self._served(t, result)
        if (
            result["metadata"].get("deletionTimestamp")
            and not result["metadata"].get("finalizers")
            and not _spec_finalizers(result)
            and not result["metadata"].get("deletionGracePeriodSeconds")  # graceful: the kubelet ends it
        ):
            gone = self.store.remove(t.key, current)
            self._removed(t, gone)
            return self._served(t, gone)
        stored = self.store.write(t.key, result, current)
        if t.plural == "customresourcedefinitions":
            self._register_crd(stored)
        return self._served(t, stored)

    def _prepare_update(
        self, t: ResourceType, current: dict[str, Any], incoming: dict[str, Any], subresource: str
    ) -> dict[str, Any]:
        """What of the request an update keeps: the main endpoint cannot change status (when there
        is a status subresource), /status nothing but status, and server-owned metadata stays."""
        if subresource == "status":
            result = clone(current)
            if "status" in incoming:
                result["status"] = clone(incoming["status"])
            else:
                result.pop("status", None)
            if incoming["metadata"].get("managedFields") != current["metadata"].get("managedFields"):
                result["metadata"]["managedFields"] = incoming["metadata"].get("managedFields")
            return result
        if subresource == "finalize":  # namespaces: spec.finalizers only
            result = clone(current)
            result.setdefault("spec", {})["finalizers"] = list(
                (incoming.get("spec") or {}).get("finalizers") or []
            )
            return result
        result = clone(incoming)
        if t.has_status:
            result.pop("status", None)
            if "status" in current:
                result["status"] = clone(current["status"])
        cm, rm = current["metadata"], result["metadata"]
        for key in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "namespace",
            "name",
        ):
            if key in cm:
                rm[key] = cm[key]
            else:
                rm.pop(key, None)
        rm.pop("resourceVersion", None)
        if "managedFields" not in rm and "managedFields" in cm:
            rm["managedFields"] = clone(cm["managedFields"])
        return result

    # --- patch ---------------------------------------------------------------------------------------

    def patch(self, req: Request) -> tuple[int, dict[str, Any]]:
        t = req.type
        content_type = req.content_type.split(";")[0].strip()
        if content_type == STRATEGIC and t.crd is not None:
            raise unsupported_media_type(content_type, list(PATCH_TYPES))
        if content_type not in (*PATCH_TYPES, STRATEGIC):
            raise unsupported_media_type(content_type, [*PATCH_TYPES, STRATEGIC])
        current = self.store.peek(t.key, req.namespace, req.name)
        if content_type.startswith("application/apply-patch"):
            return self._apply(req, current)
        if current is None:
            raise not_found(t.plural, t.group, req.name)
        body = req.body
        if content_type == "application/json-patch+json":
            patched = patches.json_patch(self._served(t, current), body)
        elif content_type == STRATEGIC:
            patched = strategic_merge(self._served(t, current), body)
        else:
            if not isinstance(body, dict):
                raise bad_request("invalid merge patch: the patch must be a JSON object")
            patched = patches.merge_patch(self._served(t, current), body)
        if not isinstance(patched, dict):
            raise bad_request("the patched object is not an object")
        if not isinstance(patched.get("metadata"), dict):
            patched["metadata"] = {}
        patched["apiVersion"], patched["kind"] = t.api_version, t.kind
        return 200, self.update(req, patched, from_patch=True)

    def _apply(self, req: Request, current: dict[str, Any] | None) -> tuple[int, dict[str, Any]]:
        t = req.type
        manager = req.query.get("fieldManager", "")
        if not manager:
            raise invalid(
                "PatchOptions",
                "meta.k8s.io",
                "",
                [structural.required("fieldManager", "is required for apply patch").cause()],
            )
        applied = req.body
        if not isinstance(applied, dict):
            raise bad_request("error decoding YAML: the apply configuration must be an object")
        if applied.get("apiVersion") != t.api_version or applied.get("kind") != t.kind:
            raise bad_request(
                f"invalid object type: {applied.get('apiVersion', '')}, Kind={applied.get('kind', '')}"
                if applied.get("kind")
                else "error decoding YAML: Object 'Kind' is missing"
            )
        name = (applied.get("metadata") or {}).get("name")
        if name and name != req.name:
            raise bad_request(
                f"the name of the object ({name}) does not match the name on the URL ({req.name})"
            )
        force = req.query.get("force") in ("true", "1")
        schema = t.schema()
        if current is None:
            if req.subresource:
                raise not_found(t.plural, t.group, req.name)
            result = patches.apply(None, applied, manager, schema, t.api_version, force=force)
            result["metadata"]["name"] = req.name
            return 201, self.create(
                req, self._decode(Request(req.user, "create", t, req.namespace, body=result))
            )
        live = self._served(t, current)
        if req.subresource == "status":
            applied = {**applied, "metadata": {**(applied.get("metadata") or {}), "name": req.name}}
        result = patches.apply(
            live, applied, manager, schema, t.api_version, force=force, subresource=req.subresource
        )
        result["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        return 200, self.update(req, result, from_patch=True)

    # --- delete ----------------------------------------------------------------------------------------

    def delete(self, req: Request) -> tuple[int, dict[str, Any]]:
        t = req.type
        current = self._current(t, req.namespace, req.name)
        options = req.body if isinstance(req.body, dict) else {}
        preconditions = options.get("preconditions") or {}
        if preconditions.get("uid") and preconditions["uid"] != current["metadata"]["uid"]:
            raise conflict(
                t.plural,
                t.group,
                req.name,
                f"Precondition failed: UID in precondition: {preconditions['uid']}, "
                f"UID in object meta: {current['metadata']['uid']}",
            )
        if (
            preconditions.get("resourceVersion")
            and preconditions["resourceVersion"] != current["metadata"]["resourceVersion"]
        ):
            raise conflict(
                t.plural,
                t.group,
                req.name,
                f"Precondition failed: ResourceVersion in precondition: {preconditions['resourceVersion']}, "
                f"ResourceVersion in object meta: {current['metadata']['resourceVersion']}",
            )
        for plugin in self.plugins:  # validating admission of the deletion
            plugin(self, req, None, current)
        policy = options.get("propagationPolicy") or req.query.get("propagationPolicy") or ""
        if not policy and options.get("orphanDependents") is not None:
            policy = "Orphan" if options["orphanDependents"] else "Background"
        policy = policy or t.default_propagation
        if policy not in ("Orphan", "Background", "Foreground"):
            raise invalid(
                "DeleteOptions",
                "meta.k8s.io",
                "",
                [
                    structural.not_supported(
                        "propagationPolicy", policy, ["Foreground", "Background", "Orphan"]
                    ).cause()
                ],
            )
        if req.dry_run:
            return 200, self._served(t, current)
        finalizers = list(current["metadata"].get("finalizers") or [])
        if policy == "Orphan" and "orphan" not in finalizers:
            finalizers.append("orphan")
        if policy == "Foreground" and "foregroundDeletion" not in finalizers:
            finalizers.append("foregroundDeletion")
        if policy == "Background":
            finalizers = (
                [f for f in finalizers if f not in ("orphan", "foregroundDeletion")]
                if not current["metadata"].get("deletionTimestamp")
                else finalizers
            )
        grace = _grace_period(t, current, options, req.query)
        if finalizers or _spec_finalizers(current) or grace:
            updated = clone(current)
            um = updated["metadata"]
            um["finalizers"] = finalizers
            if not finalizers:
                um.pop("finalizers")
            if not um.get("deletionTimestamp"):
                um["deletionTimestamp"] = meta.now() if not grace else _later(grace)
                um["deletionGracePeriodSeconds"] = grace
                if t.plural == "namespaces":
                    updated.setdefault("status", {})["phase"] = "Terminating"
            elif grace < int(um.get("deletionGracePeriodSeconds") or 0):  # a shorter grace period wins
                um["deletionTimestamp"] = meta.now() if not grace else _later(grace)
                um["deletionGracePeriodSeconds"] = grace
            if updated == current:
                return 200, self._served(t, current)
            stored = self.store.write(t.key, updated, current)
            return (202 if options.get("orphanDependents") is False else 200), self._served(t, stored)
        gone = self.store.remove(t.key, current)
        self._removed(t, gone)
        if t.crd is not None:
            return 200, self._served(t, gone)
        return 200, {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {
                "name": req.name,
                **({"group": t.group} if t.group else {}),
                "kind": t.plural,
                "uid": gone["metadata"]["uid"],
            },
        }

    def _removed(self, t: ResourceType, gone: dict[str, Any]) -> None:
        if t.plural == "customresourcedefinitions":
            self._unregister_crd(gone)

    def _delete_collection(self, req: Request) -> dict[str, Any]:
        listing = self.list_objects(req)
        for item in listing["items"]:
            sub = Request(
                req.user,
                "delete",
                req.type,
                item["metadata"].get("namespace", ""),
                item["metadata"]["name"],
                body=req.body,
                query=req.query,
            )
            try:
                self.delete(sub)
            except ApiError as exc:
                if exc.code != 404:
                    raise
        return listing

    # --- subresources that create something ----------------------------------------------------------------

    def _token(self, req: Request) -> dict[str, Any]:
        account = self._current(req.type, req.namespace, req.name)
        token = (
            self.token_issuer(req.namespace, account["metadata"]["name"], account["metadata"]["uid"])
            if self.token_issuer
            else ""
        )
        spec = (req.body or {}).get("spec") or {}
        return {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "metadata": {"name": req.name, "namespace": req.namespace, "creationTimestamp": meta.now()},
            "spec": {
                "audiences": spec.get("audiences") or [],
                "expirationSeconds": spec.get("expirationSeconds", 3600),
            },
            "status": {
                "token": token,
                "expirationTimestamp": _later(int(spec.get("expirationSeconds", 3600))),
            },
        }

    token_issuer: Callable[[str, str, str], str] | None = None

    def _access_review(self, req: Request) -> dict[str, Any]:
        body = req.body if isinstance(req.body, dict) else {}
        spec = body.get("spec") or {}
        if req.type.plural == "selfsubjectaccessreviews":
            user = req.user
        else:
            user = User(spec.get("user", ""), tuple(spec.get("groups") or ()), spec.get("uid", ""))
        ra = spec.get("resourceAttributes")
        if ra:
            attrs = Attributes(
                user,
                ra.get("verb", ""),
                ra.get("group", ""),
                ra.get("version", ""),
                ra.get("resource", ""),
                ra.get("subresource", ""),
                ra.get("namespace", ""),
                ra.get("name", ""),
            )
        else:
            nra = spec.get("nonResourceAttributes") or {}
            attrs = Attributes(user, nra.get("verb", ""), path=nra.get("path", ""))
        allowed, reason = self.authorizer.authorize(attrs)
        return {
            **body,
            "metadata": {"creationTimestamp": None},
            "status": {"allowed": allowed, **({"reason": reason} if reason else {})},
        }

    # --- watch ---------------------------------------------------------------------------------------------

    def watch(
        self,
        req: Request,
        stop: threading.Event | None = None,
        bookmark_every: float = 5.0,
        *,
        cancelled: Callable[[], bool] | None = None,
    ) -> Generator[dict[str, Any], None, None]:
        """Watch events (dicts with type and object) for the request, as a real server streams
        them: from the resourceVersion asked for, or (none, or "0") every current object as
        ADDED first; objects entering or leaving the selectors as ADDED/DELETED; BOOKMARKs when
        asked for; one ERROR event with 410 Expired when history from that version is gone.
        Authorization and selector errors are raised here, before any event.

        The stream ends at its timeout, when `stop` is set, when the store closes, when it is
        closed (`.close()`), or, checked while it waits for changes, when `cancelled()` says the
        client went away (the request context a real server cancels on disconnect)."""
        self.count(req)
        self._authorize_request(req)
        self._inject_fault(req)
        parse_labels(req.query.get("labelSelector", ""))
        parse_fields(req.query.get("fieldSelector", ""), req.type.group, req.type.plural)
        return self._counted(self._events(req, stop, bookmark_every, cancelled))

    def _counted(
        self, events: Generator[dict[str, Any], None, None]
    ) -> Generator[dict[str, Any], None, None]:
        with self._lock:
            self.watching += 1
        try:
            yield from events
        finally:
            events.close()
            with self._lock:
                self.watching -= 1

    def _events(
        self,
        req: Request,
        stop: threading.Event | None,
        bookmark_every: float,
        cancelled: Callable[[], bool] | None,
    ) -> Generator[dict[str, Any], None, None]:
        t = req.type
        labels = parse_labels(req.query.get("labelSelector", ""))
        fields = parse_fields(req.query.get("fieldSelector", ""), t.group, t.plural)
        timeout = float(req.query.get("timeoutSeconds") or 1800)
        deadline = time.monotonic() + timeout
        bookmarks = req.query.get("allowWatchBookmarks") in ("true", "1")
        namespace = req.namespace if t.namespaced else ""

        def visible(obj: dict[str, Any] | None) -> bool:
            return (
                obj is not None
                and (not namespace or obj["metadata"].get("namespace") == namespace)
                and labels_match(labels, obj["metadata"].get("labels"))
                and fields_match(fields, obj)
            )

        rv_param = req.query.get("resourceVersion", "")
        with self.store.lock:
            if rv_param in ("", "0") or req.query.get("sendInitialEvents") == "true":
                since = self.store.rv
                initial = [self._served(t, o) for o in self.store.items(t.key) if visible(o)]
            else:
                try:
                    since = int(rv_param)
                except ValueError:
                    raise bad_request(f"invalid resource version: {rv_param}") from None
                initial = []
                if since < self.store.compacted:
                    yield {"type": "ERROR", "object": too_old(since, self.store.compacted + 1).status()}
                    return
        for obj in initial:
            yield {"type": "ADDED", "object": obj}
        if req.query.get("sendInitialEvents") == "true":
            yield _bookmark(t, since, initial_end=True)
        last_sent = time.monotonic()
        epoch = self.watch_epoch
        while True:
            if self.watch_epoch != epoch:
                return  # dropped, as by a restarting server
            if cancelled is not None and cancelled():
                return
            with self.store.lock:
                try:
                    changes = [c for c in self.store.changes_since(since) if c.key == t.key]
                except ApiError as exc:
                    yield {"type": "ERROR", "object": exc.status()}
                    return
                if not changes:
                    if (
                        self.store.closed
                        or (stop is not None and stop.is_set())
                        or time.monotonic() >= deadline
                    ):
                        break
                    if bookmarks and time.monotonic() - last_sent >= bookmark_every:
                        since = max(since, self.store.rv)
                        event: dict[str, Any] | None = _bookmark(t, since)
                    else:
                        self.store.changed.wait(timeout=min(0.5, max(0.01, deadline - time.monotonic())))
                        continue
                else:
                    event = None
                    since = changes[-1].rv
            if event is not None:
                last_sent = time.monotonic()
                yield event
                continue
            for change in changes:
                out = _translate(change, visible)
                if out is not None:
                    yield {"type": out, "object": self._served(t, change.obj)}
                    last_sent = time.monotonic()
        if bookmarks:
            yield _bookmark(t, max(since, self.store.rv))


def _translate(change: Change, visible: Callable[[dict[str, Any] | None], bool]) -> str | None:
    now_visible, was_visible = visible(change.obj), visible(change.old)
    if change.type == "DELETED":
        return "DELETED" if was_visible or now_visible else None
    if change.type == "ADDED":
        return "ADDED" if now_visible else None
    if now_visible and was_visible:
        return "MODIFIED"
    if now_visible:
        return "ADDED"
    if was_visible:
        return "DELETED"
    return None


def _bookmark(t: ResourceType, rv: int, *, initial_end: bool = False) -> dict[str, Any]:
    metadata: dict[str, Any] = {"resourceVersion": str(rv)}
    if initial_end:
        metadata["annotations"] = {"k8s.io/initial-events-end": "true"}
    return {"type": "BOOKMARK", "object": {"kind": t.kind, "apiVersion": t.api_version, "metadata": metadata}}


def _later(seconds: int) -> str:
    from datetime import UTC, datetime, timedelta

    return (datetime.now(UTC) + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _grace_period(
    t: ResourceType, current: dict[str, Any], options: dict[str, Any], query: dict[str, str]
) -> int:
    """Pods on a node are deleted gracefully (the kubelet finishes the deletion); others at once."""
    if t.plural != "pods" or not (current.get("spec") or {}).get("nodeName"):
        return 0
    if current.get("status", {}).get("phase") in ("Succeeded", "Failed"):
        return 0
    value = options.get("gracePeriodSeconds", query.get("gracePeriodSeconds"))
    if value is None:
        value = (current.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
    return max(0, int(value))


def _spec_finalizers(obj: dict[str, Any]) -> list[str]:
    """Namespaces carry their own finalizers in spec (the namespace controller removes them)."""
    if obj.get("kind") != "Namespace":
        return []
    return list((obj.get("spec") or {}).get("finalizers") or [])


def _desired_state(t: ResourceType, obj: dict[str, Any]) -> Any:
    """What metadata.generation tracks: for custom resources everything but metadata and status."""
    if t.crd is not None:
        return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}
    return obj.get("spec")


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """A no-op update: nothing but bookkeeping differs, so nothing is written."""

    def strip(o: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in o.items() if k not in ("apiVersion", "kind")}
        out["metadata"] = {
            k: v for k, v in o["metadata"].items() if k not in ("resourceVersion", "managedFields")
        }
        return out

    if strip(a) != strip(b):
        return False

    def entries(o: dict[str, Any]) -> list[dict[str, Any]]:
        return [{k: v for k, v in e.items() if k != "time"} for e in o["metadata"].get("managedFields") or []]

    return entries(a) == entries(b)


def _unchanged(path: str, new: dict[str, Any], old: dict[str, Any]) -> bool:
    import re

    def at(obj: Any) -> Any:
        node = obj
        for part in re.findall(r"[^.\[\]]+|\[\d+\]", path):
            if part.startswith("["):
                i = int(part[1:-1])
                node = node[i] if isinstance(node, list) and i < len(node) else _ABSENT
            else:
                node = node.get(part, _ABSENT) if isinstance(node, dict) else _ABSENT
            if node is _ABSENT:
                return _ABSENT
        return node

    value = at(new)
    return value is not _ABSENT and value == at(old)


_ABSENT = object()


def _default_crd(crd: dict[str, Any]) -> None:
    """SetDefaults_CustomResourceDefinition(Spec)."""
    spec = crd.setdefault("spec", {})
    names = spec.setdefault("names", {})
    if names.get("kind"):
        names.setdefault("singular", names["kind"].lower())
        names.setdefault("listKind", names["kind"] + "List")
    spec.setdefault("conversion", {"strategy": "None"})
    for version in spec.get("versions") or []:
        version.setdefault("served", True)
        version.setdefault("storage", False)


def _crd_status(crd: dict[str, Any]) -> dict[str, Any]:
    spec = crd["spec"]
    now = meta.now()
    return {
        "acceptedNames": dict(spec["names"]),
        "conditions": [
            {
                "type": "NamesAccepted",
                "status": "True",
                "reason": "NoConflicts",
                "message": "no conflicts found",
                "lastTransitionTime": now,
            },
            {
                "type": "Established",
                "status": "True",
                "reason": "InitialNamesAccepted",
                "message": "the initial names have been accepted",
                "lastTransitionTime": now,
            },
        ],
        "storedVersions": [v["name"] for v in spec["versions"] if v.get("storage")],
    }


# --- strategic merge patch, for the built-in kinds ----------------------------------------------------------

# patchMergeKey of the lists the built-in kinds here have (from their Go struct tags)
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "ports": "containerPort",
    "ownerReferences": "uid",
    "conditions": "type",
    "imagePullSecrets": "name",
    "tolerations": "",
}


def _set_or_drop(obj: dict[str, Any], name: str, items: list[Any]) -> None:
    """A list that a deletion directive emptied is not kept: the built-in kinds' list fields are
    `omitempty`, so the typed object the server stores has none (not `[]`)."""
    if items:
        obj[name] = items
    else:
        obj.pop(name, None)


def strategic_merge(target: Any, patch: Any, key: str = "") -> Any:
    """A strategic merge patch over the fields the built-in kinds here use: maps merge, lists
    with a patchMergeKey merge by it (`$patch: delete` removes an item), other lists replace;
    `$retainKeys`, `$setElementOrder` and `$deleteFromPrimitiveList` are honoured or ignored."""
    if not isinstance(patch, dict):
        return clone(patch)
    if patch.get("$patch") == "replace":
        return {k: clone(v) for k, v in patch.items() if k != "$patch"}
    result = clone(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if name.startswith("$deleteFromPrimitiveList/"):
            field = name.split("/", 1)[1]
            if isinstance(result.get(field), list) and isinstance(value, list):
                _set_or_drop(result, field, [x for x in result[field] if x not in value])
            continue
        if name.startswith("$setElementOrder/") or name in ("$retainKeys", "$patch"):
            continue
        if value is None:
            result.pop(name, None)
            continue
        merge_key = _MERGE_KEYS.get(name, "")
        if isinstance(value, list) and merge_key and isinstance(result.get(name), list):
            merged = clone(result[name])
            for item in value:
                if not isinstance(item, dict) or merge_key not in item:
                    merged.append(clone(item))
                    continue
                position = next(
                    (
                        i
                        for i, x in enumerate(merged)
                        if isinstance(x, dict) and x.get(merge_key) == item[merge_key]
                    ),
                    None,
                )
                if item.get("$patch") == "delete":
                    if position is not None:
                        merged.pop(position)
                elif position is None:
                    merged.append({k: clone(v) for k, v in item.items() if k != "$patch"})
                else:
                    merged[position] = strategic_merge(merged[position], item)
            if any(isinstance(i, dict) and i.get("$patch") == "delete" for i in value):
                _set_or_drop(result, name, merged)
            else:
                result[name] = merged
        elif name == "finalizers" and isinstance(value, list) and isinstance(result.get(name), list):
            result[name] = list(dict.fromkeys([*result[name], *value]))
        elif isinstance(value, dict):
            result[name] = strategic_merge(result.get(name), value, name)
        else:
            result[name] = clone(value)
    return result
