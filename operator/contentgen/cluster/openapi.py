"""Discovery (/api, /apis, resource lists) and the OpenAPI documents (/openapi/v2, /openapi/v3)
built from the served types: custom resources from their CRD schemas, built-in kinds from the
Kubernetes 1.33 definitions `kubernetes-validate` ships. kubectl reads these to resolve short
names and categories, to know that the server validates fields (`fieldValidation` on PATCH),
and for `kubectl explain`.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import Any

from .resources import ResourceType

META = "io.k8s.apimachinery.pkg.apis.meta.v1"
OBJECT_META = f"{META}.ObjectMeta"
LIST_META = f"{META}.ListMeta"


# --- discovery ---------------------------------------------------------------------------------------


def api_versions() -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}],
    }


def group_list(types: list[ResourceType]) -> dict[str, Any]:
    groups: dict[str, list[str]] = {}
    for t in types:
        if t.group:
            versions = groups.setdefault(t.group, [])
            if t.version not in versions:
                versions.append(t.version)
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


def group(types: list[ResourceType], name: str) -> dict[str, Any] | None:
    versions = list(dict.fromkeys(t.version for t in types if t.group == name))
    if not versions:
        return None
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": name,
        "versions": [{"groupVersion": f"{name}/{v}", "version": v} for v in versions],
        "preferredVersion": {"groupVersion": f"{name}/{versions[0]}", "version": versions[0]},
    }


_SUBRESOURCE_GROUP_VERSIONS = {
    "eviction": {"group": "policy", "version": "v1"},
    "token": {"group": "authentication.k8s.io", "version": "v1"},
    "scale": {"group": "autoscaling", "version": "v1"},
}


def resource_list(types: list[ResourceType], group_name: str, version: str) -> dict[str, Any] | None:
    resources: list[dict[str, Any]] = []
    for t in types:
        if (t.group, t.version) != (group_name, version):
            continue
        entry: dict[str, Any] = {
            "name": t.plural,
            "singularName": t.singular,
            "namespaced": t.namespaced,
            "kind": t.kind,
            "verbs": list(t.verbs),
        }
        if t.short_names:
            entry["shortNames"] = list(t.short_names)
        if t.categories:
            entry["categories"] = list(t.categories)
        if t.crd is not None:
            entry["storageVersionHash"] = hashlib.sha256(
                f"{t.group}/{t.version}/{t.kind}".encode()
            ).hexdigest()[:12]
        resources.append(entry)
        for sub in t.subresources:
            verbs = {
                "status": ["get", "patch", "update"],
                "scale": ["get", "patch", "update"],
                "token": ["create"],
                "log": ["get"],
                "binding": ["create"],
                "eviction": ["create"],
                "finalize": ["update"],
            }.get(sub, ["get"])
            kind = {
                "token": "TokenRequest",
                "log": "Pod",
                "binding": "Binding",
                "eviction": "Eviction",
                "scale": "Scale",
            }.get(sub, t.kind)
            entry = {"name": f"{t.plural}/{sub}", "singularName": "", "namespaced": t.namespaced}
            # subresources whose kind lives in another group name it (kubectl drain looks for
            # pods/eviction's policy/v1)
            entry.update(_SUBRESOURCE_GROUP_VERSIONS.get(sub, {}))
            resources.append({**entry, "kind": kind, "verbs": verbs})
    if not resources:
        return None
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group_name}/{version}" if group_name else version,
        "resources": resources,
    }


# --- schemas -----------------------------------------------------------------------------------------


@cache
def _kubernetes_definitions() -> dict[str, Any]:
    from importlib import resources

    base = resources.files("kubernetes_validate") / "kubernetes-json-schema" / "v1.33.0-local"
    data: dict[str, Any] = json.loads((base / "_definitions.json").read_text())
    return dict(data["$defs"])


def _to_openapi(node: Any, ref_prefix: str) -> Any:
    """A JSON Schema (2020-12, from kubernetes-validate) node as OpenAPI: `$defs` references
    become component references, `type: [x, "null"]` becomes `type: x`."""
    if isinstance(node, list):
        return [_to_openapi(n, ref_prefix) for n in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str):
            out[key] = ref_prefix + value.rsplit("/", 1)[-1]
        elif key == "type" and isinstance(value, list):
            kinds = [v for v in value if v != "null"]
            if len(kinds) == 1:
                out[key] = kinds[0]
        elif key == "enum" and isinstance(value, list):
            out[key] = [v for v in value if v is not None]
        else:
            out[key] = _to_openapi(value, ref_prefix)
    return out


def _builtin_definition(t: ResourceType) -> str:
    prefix = {
        "": "io.k8s.api.core.v1",
        "apps": "io.k8s.api.apps.v1",
        "batch": "io.k8s.api.batch.v1",
        "rbac.authorization.k8s.io": "io.k8s.api.rbac.v1",
        "coordination.k8s.io": "io.k8s.api.coordination.v1",
        "events.k8s.io": "io.k8s.api.events.v1",
        "policy": "io.k8s.api.policy.v1",
        "networking.k8s.io": "io.k8s.api.networking.v1",
        "authorization.k8s.io": "io.k8s.api.authorization.v1",
        "apiextensions.k8s.io": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1",
    }.get(t.group, "")
    return f"{prefix}.{t.kind}"


def _reachable(names: list[str], ref_prefix: str) -> dict[str, Any]:
    """Every definition the named ones refer to, converted."""
    definitions = _kubernetes_definitions()
    out: dict[str, Any] = {}
    pending = list(names)
    while pending:
        name = pending.pop()
        if name in out or name not in definitions:
            continue
        converted = _to_openapi(definitions[name], ref_prefix)
        out[name] = converted
        text = json.dumps(converted)
        start = 0
        while (i := text.find(ref_prefix, start)) >= 0:
            end = text.find('"', i)
            pending.append(text[i + len(ref_prefix) : end])
            start = end
    return out


def definition_name(t: ResourceType) -> str:
    if t.crd is not None:
        reversed_group = ".".join(reversed(t.group.split(".")))
        return f"{reversed_group}.{t.version}.{t.kind}"
    return _builtin_definition(t)


def _gvk(t: ResourceType) -> dict[str, str]:
    return {"group": t.group, "kind": t.kind, "version": t.version}


def _custom_schema(t: ResourceType, ref_prefix: str) -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(json.dumps(t.schema() or {"type": "object"}))
    properties = schema.setdefault("properties", {})
    properties["metadata"] = {
        "description": "Standard object's metadata. More info: "
        "https://git.k8s.io/community/contributors/devel/sig-architecture/api-conventions.md#metadata",
        "allOf": [{"$ref": ref_prefix + OBJECT_META}],
    }
    properties.setdefault("apiVersion", {"type": "string"})
    properties["apiVersion"]["description"] = (
        "APIVersion defines the versioned schema of this representation of an object. Servers should convert "
        "recognized schemas to the latest internal value, and may reject unrecognized values."
    )
    properties.setdefault("kind", {"type": "string"})
    properties["kind"]["description"] = (
        "Kind is a string value representing the REST resource this object represents."
    )
    schema["x-kubernetes-group-version-kind"] = [_gvk(t)]
    return schema


def schemas(types: list[ResourceType], ref_prefix: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    builtin_names = [_builtin_definition(t) for t in types if t.crd is None]
    out.update(_reachable([*builtin_names, OBJECT_META, LIST_META], ref_prefix))
    for t in types:
        name = definition_name(t)
        if t.crd is not None:
            out[name] = _custom_schema(t, ref_prefix)
        elif name in out:
            out[name] = {**out[name], "x-kubernetes-group-version-kind": [_gvk(t)]}
        out[f"{name}List"] = {
            "description": f"{t.kind}List is a list of {t.kind}",
            "type": "object",
            "required": ["items"],
            "properties": {
                "apiVersion": {"type": "string"},
                "kind": {"type": "string"},
                "items": {"type": "array", "items": {"$ref": ref_prefix + name}},
                "metadata": {"allOf": [{"$ref": ref_prefix + LIST_META}]},
            },
            "x-kubernetes-group-version-kind": [{**_gvk(t), "kind": f"{t.kind}List"}],
        }
    return out


# --- paths -------------------------------------------------------------------------------------------

_COMMON_QUERY = ("pretty",)
_WRITE_QUERY = ("dryRun", "fieldManager", "fieldValidation")


def _param(name: str, where: str = "query", required: bool = False) -> dict[str, Any]:
    descriptions = {
        "fieldValidation": "fieldValidation instructs the server on how to handle objects in the request "
        "(POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore - Warn - Strict",
        "fieldManager": "fieldManager is a name associated with the actor or entity "
        "that is making these changes.",
        "dryRun": "When present, indicates that modifications should not be persisted.",
        "force": 'Force is going to "force" Apply requests.',
        "name": "name of the resource",
        "namespace": "object name and auth scope, such as for teams and projects",
    }
    return {
        "name": name,
        "in": where,
        "description": descriptions.get(name, name),
        **({"required": True} if required else {}),
        "schema": {"type": "boolean" if name == "force" else "string", "uniqueItems": True},
    }


def _operation(
    t: ResourceType, action: str, ref_prefix: str, v3: bool, extra: tuple[str, ...] = ()
) -> dict[str, Any]:
    ref = {"$ref": ref_prefix + definition_name(t)}
    op: dict[str, Any] = {
        "operationId": f"{action}{t.kind}",
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": _gvk(t),
        "parameters": [_param(p) for p in extra],
    }
    if v3:
        op["responses"] = {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}}
        if action in ("put", "post", "patch"):
            types = (
                ["application/json"]
                if action != "patch"
                else [
                    "application/json-patch+json",
                    "application/merge-patch+json",
                    "application/apply-patch+yaml",
                ]
                + (["application/strategic-merge-patch+json"] if t.crd is None else [])
            )
            op["requestBody"] = {
                "content": {c: {"schema": ref if action != "patch" else {"type": "object"}} for c in types},
                "required": True,
            }
    else:
        op["responses"] = {"200": {"description": "OK", "schema": ref}}
    return op


def paths(types: list[ResourceType], ref_prefix: str, v3: bool) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for t in types:
        root = f"/api/{t.version}" if not t.group else f"/apis/{t.group}/{t.version}"
        base = f"{root}/namespaces/{{namespace}}/{t.plural}" if t.namespaced else f"{root}/{t.plural}"
        scope_params = [_param("namespace", "path", True)] if t.namespaced else []
        out[base] = {
            "get": _operation(
                t,
                "list",
                ref_prefix,
                v3,
                ("labelSelector", "fieldSelector", "limit", "continue", "watch", "resourceVersion"),
            ),
            "post": _operation(t, "post", ref_prefix, v3, _WRITE_QUERY),
            "parameters": [*scope_params, *[_param(p) for p in _COMMON_QUERY]],
        }
        out[f"{base}/{{name}}"] = {
            "get": _operation(t, "get", ref_prefix, v3),
            "put": _operation(t, "put", ref_prefix, v3, _WRITE_QUERY),
            "patch": _operation(t, "patch", ref_prefix, v3, (*_WRITE_QUERY, "force")),
            "delete": _operation(
                t, "delete", ref_prefix, v3, ("dryRun", "gracePeriodSeconds", "propagationPolicy")
            ),
            "parameters": [_param("name", "path", True), *scope_params, *[_param(p) for p in _COMMON_QUERY]],
        }
        if "status" in t.subresources:
            out[f"{base}/{{name}}/status"] = {
                "get": _operation(t, "get", ref_prefix, v3),
                "put": _operation(t, "put", ref_prefix, v3, _WRITE_QUERY),
                "patch": _operation(t, "patch", ref_prefix, v3, (*_WRITE_QUERY, "force")),
                "parameters": [
                    _param("name", "path", True),
                    *scope_params,
                    *[_param(p) for p in _COMMON_QUERY],
                ],
            }
    # kubectl's field-validation check looks for the parameter on the PATCH path (path-level).
    for item in out.values():
        if "patch" in item:
            item["parameters"] = [*item["parameters"], *[_param(p) for p in (*_WRITE_QUERY, "force")]]
    return out


def v3_root(types: list[ResourceType]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in sorted(
        {("api/" + t.version) if not t.group else f"apis/{t.group}/{t.version}" for t in types}
    ):
        gv_types = [
            t
            for t in types
            if (("api/" + t.version) if not t.group else f"apis/{t.group}/{t.version}") == key
        ]
        digest = (
            hashlib.sha512(
                json.dumps(
                    [
                        (t.plural, t.crd is not None and t.crd["metadata"].get("resourceVersion"))
                        for t in gv_types
                    ]
                ).encode()
            )
            .hexdigest()[:64]
            .upper()
        )
        out[key] = {"serverRelativeURL": f"/openapi/v3/{key}?hash={digest}"}
    return {"paths": out}


def v3_document(types: list[ResourceType], key: str) -> dict[str, Any] | None:
    gv_types = [
        t for t in types if (("api/" + t.version) if not t.group else f"apis/{t.group}/{t.version}") == key
    ]
    if not gv_types:
        return None
    prefix = "#/components/schemas/"
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths(gv_types, prefix, v3=True),
        "components": {"schemas": schemas(gv_types, prefix)},
    }


def v2_document(types: list[ResourceType]) -> dict[str, Any]:
    prefix = "#/definitions/"
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.33.0"},
        "paths": paths(types, prefix, v3=False),
        "definitions": schemas(types, prefix),
    }
