"""The built-in kinds' schemas: the Kubernetes 1.33 OpenAPI definitions that `kubernetes-validate`
ships (as JSON Schema), turned once into the structural form the custom resources' validator
already walks (structural.py): `$ref`s resolved, `type: [x, "null"]` as `type: x, nullable`,
IntOrString and Quantity as `x-kubernetes-int-or-string`, closed objects (the strict set's
`additionalProperties: false`) kept so unknown fields are found by pruning.

Validating a Job this way costs a walk over the object, not jsonschema's machinery; the answers
are the same where it matters here: required fields, types, enums, unknown fields.
"""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

Schema = dict[str, Any]
KUBERNETES_VERSION = "v1.33.0"


@cache
def _definitions() -> dict[str, Any]:
    from importlib import resources

    base = (
        resources.files("kubernetes_validate")
        / "kubernetes-json-schema"
        / f"{KUBERNETES_VERSION}-local-strict"
    )
    data: dict[str, Any] = json.loads((base / "_definitions.json").read_text())
    return dict(data["$defs"])


def _scalar_union(branches: list[Any]) -> bool:
    kinds = set()
    for branch in branches:
        kind = branch.get("type") if isinstance(branch, dict) else None
        kinds |= set(kind if isinstance(kind, list) else [kind])
    return kinds - {"null"} in ({"string", "integer"}, {"string", "number"})


class _Converter:
    def __init__(self, definitions: dict[str, Any]) -> None:
        self.definitions = definitions
        self.named: dict[str, Schema] = {}

    def ref(self, name: str) -> Schema:
        if name not in self.named:
            node: Schema = {}
            self.named[name] = node  # before converting: recursive definitions (JSONSchemaProps)
            node.update(self.convert(self.definitions.get(name) or {}))
        return self.named[name]

    def convert(self, node: Any) -> Schema:
        if not isinstance(node, dict):
            return {}
        if "$ref" in node:
            return self.ref(str(node["$ref"]).rsplit("/", 1)[-1])
        if "oneOf" in node and _scalar_union(node["oneOf"]):
            return {"x-kubernetes-int-or-string": True}
        out: Schema = {}
        kind = node.get("type")
        if isinstance(kind, list):
            kinds = [k for k in kind if k != "null"]
            if len(kinds) == 1:
                out["type"] = kinds[0]
            if "null" in kind:
                out["nullable"] = True
        elif isinstance(kind, str):
            out["type"] = kind
        if "properties" in node:
            out["properties"] = {k: self.convert(v) for k, v in node["properties"].items()}
            out.setdefault("type", "object")
        if isinstance(node.get("additionalProperties"), dict):
            out["additionalProperties"] = self.convert(node["additionalProperties"])
        elif node.get("additionalProperties") is True or (
            "properties" not in node and out.get("type") == "object"
        ):
            out["x-kubernetes-preserve-unknown-fields"] = True
        if isinstance(node.get("items"), dict):
            out["items"] = self.convert(node["items"])
        if node.get("required"):
            out["required"] = list(node["required"])
        if isinstance(node.get("enum"), list):
            values = [v for v in node["enum"] if v is not None]
            if values:
                out["enum"] = values
        if (
            "type" not in out and "properties" not in out
        ):  # untyped (JSON, JSONSchemaPropsOrArray): anything goes
            out["x-kubernetes-preserve-unknown-fields"] = True
        return out


@cache
def schema_for(kind: str, api_version: str) -> Schema | None:
    """The structural schema of a built-in kind, or None when the set has no such kind."""
    from importlib import resources

    base = (
        resources.files("kubernetes_validate")
        / "kubernetes-json-schema"
        / f"{KUBERNETES_VERSION}-local-strict"
    )
    file_api = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    path = base / f"{kind.lower()}-{file_api}.json"
    if not path.is_file():
        return None
    top = json.loads(path.read_text())
    schema = _Converter(_definitions()).convert(top)
    # apiVersion and kind are fixed by the endpoint; their enums say nothing more here.
    for field in ("apiVersion", "kind"):
        if field in (schema.get("properties") or {}):
            schema["properties"][field] = {"type": "string"}
    return schema
