"""From a pydantic model's JSON Schema to a structural OpenAPI v3 schema for a CRD, and the CRD
around it.

Kubernetes wants every node typed, no `$ref`, no `anyOf` for optionals, OpenAPI 3.0's boolean
`exclusiveMinimum`, and no `additionalProperties: false` next to `properties` (the API server
prunes unknown fields instead); maps keep `additionalProperties` with the values' schema, or the
API server would prune all their keys. `structural_problems` lists what would make a schema
non-structural, so tests can hold the generated CRDs to it.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from .kinds import GROUP, VERSION, crd_name

JsonDict = dict[str, Any]

_DROP = {"title", "additionalProperties", "$defs"}


def openapi_schema(model: type[BaseModel]) -> JsonDict:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    defs = raw.get("$defs", {})
    return _convert(raw, defs)


def _resolve(node: JsonDict, defs: JsonDict) -> JsonDict:
    """Inline `$ref` (and pydantic's `allOf: [$ref]`), keeping sibling keys such as description."""
    node = dict(node)
    if "allOf" in node and len(node["allOf"]) == 1:
        node.update(node.pop("allOf")[0])
    while "$ref" in node:
        target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
        merged = copy.deepcopy(target)
        merged.update(node)  # the referring node's description/default win
        node = merged
    return node


def _convert(node: JsonDict, defs: JsonDict) -> JsonDict:
    node = _nullable_merged(_resolve(node, defs), defs)
    out: JsonDict = {}
    for key, value in node.items():
        if key == "additionalProperties" and isinstance(value, dict) and "properties" not in node:
            # A map (dict[str, X]): without this the API server prunes every key of it.
            out["additionalProperties"] = _convert(value, defs)
        elif key not in _DROP:
            out.update(_keyword(key, value, defs))
    if out.get("type") == "object" and "properties" in out:
        _default_parents(out)
    return _ordered(out)


def _nullable_merged(node: JsonDict, defs: JsonDict) -> JsonDict:
    """`X | None` (anyOf X and null) as X: a structural schema has no anyOf; null is "absent"."""
    if "anyOf" not in node:
        return node
    branches = [_resolve(b, defs) for b in node.pop("anyOf")]
    non_null = [b for b in branches if b.get("type") != "null"]
    if len(non_null) != 1:
        raise ValueError(f"cannot express anyOf {branches} structurally")
    merged = non_null[0]
    merged.update(node)
    return _resolve(merged, defs)


def _keyword(key: str, value: Any, defs: JsonDict) -> JsonDict:
    """One JSON Schema keyword in a CRD's dialect (OpenAPI v3.0: boolean exclusive bounds, no
    const; a default only where it says something)."""
    if key == "properties":
        return {"properties": {name: _convert(sub, defs) for name, sub in value.items()}}
    if key == "items":
        return {"items": _convert(value, defs)}
    if key == "exclusiveMinimum":
        return {"minimum": value, "exclusiveMinimum": True}
    if key == "exclusiveMaximum":
        return {"maximum": value, "exclusiveMaximum": True}
    if key == "const":
        return {"enum": [value]}
    if key == "default":
        return {"default": value} if value not in (None, "", [], {}) else {}
    return {key: copy.deepcopy(value)}


def _default_parents(out: JsonDict) -> None:
    """Nested defaults only apply when the parent object exists: default the parent to {}. The API
    server validates every default against its own schema (apiextensions ValidateDefaults), so {}
    is only a default where {} is valid: no required fields."""
    required = set(out.get("required", []))
    for name, sub in out["properties"].items():
        if (
            name not in required
            and sub.get("type") == "object"
            and "default" not in sub
            and not sub.get("required")
            and _has_defaults(sub)
        ):
            out["properties"][name] = _ordered({**sub, "default": {}})


def _has_defaults(node: JsonDict) -> bool:
    return any("default" in sub for sub in node.get("properties", {}).values())


_ORDER = ("description", "type", "format", "enum", "default", "required", "properties", "items")


def _ordered(node: JsonDict) -> JsonDict:
    first = {k: node[k] for k in _ORDER if k in node}
    rest = {k: node[k] for k in sorted(node) if k not in first}
    return first | rest


def structural_problems(schema: JsonDict, path: str = "") -> list[str]:
    """Why `schema` is not a structural schema (empty when it is)."""
    problems: list[str] = []
    here = path or "<root>"
    escape = schema.get("x-kubernetes-preserve-unknown-fields") or schema.get("x-kubernetes-int-or-string")
    if "type" not in schema and not escape:
        problems.append(f"{here}: no type")
    for forbidden in ("$ref", "anyOf", "oneOf", "allOf", "not", "additionalItems", "definitions"):
        if forbidden in schema:
            problems.append(f"{here}: {forbidden} is not allowed here")
    if "properties" in schema and "additionalProperties" in schema:
        problems.append(f"{here}: properties and additionalProperties are mutually exclusive")
    if schema.get("type") == "array" and "items" not in schema:
        problems.append(f"{here}: array without items")
    for name, sub in schema.get("properties", {}).items():
        problems += structural_problems(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        problems += structural_problems(schema["items"], f"{path}[*]")
    if isinstance(schema.get("additionalProperties"), dict):
        problems += structural_problems(schema["additionalProperties"], f"{path}[*]")
    return problems


def definition(
    kind: str,
    plural: str,
    short_names: tuple[str, ...],
    category: str,
    columns: Sequence[Mapping[str, object]],
    description: str,
    *,
    spec: Mapping[str, object],
    status: Mapping[str, object],
) -> JsonDict:
    """The CustomResourceDefinition of a namespaced resource `kind` of this API's group and version,
    with a status subresource: `spec` and `status` its two schemas, `columns` what kubectl get shows."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": crd_name(plural),
            "labels": {"app.kubernetes.io/name": "contentgen", "app.kubernetes.io/part-of": "contentgen"},
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
                "shortNames": list(short_names),
                "categories": [category],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": list(columns),
                    "schema": {
                        "openAPIV3Schema": {
                            "description": description,
                            "type": "object",
                            "required": ["spec"],
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec,
                                "status": status,
                            },
                        }
                    },
                }
            ],
        },
    }
