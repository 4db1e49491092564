"""The API reference tables, generated from the CRD schemas (README, via contentgen.docs)."""

from __future__ import annotations

import json
from typing import Any

from .crd import crd
from .kinds import KINDS, Kind


def _type(node: dict[str, Any]) -> str:
    kind = node.get("type", "")
    if kind == "array":
        return f"list of {_type(node['items'])}"
    if node.get("format") == "date-time":
        return "timestamp"
    return str(kind)


def _rules(node: dict[str, Any], required: bool) -> str:
    """What the schema allows of a field, in the table's words: each keyword's part in turn."""
    parts = ["**required**"] if required else []
    parts += [part for said in _SAID for part in said(node)]
    return "; ".join(parts).replace("|", "\\|").replace("\\\\|", "\\|")


def _enum(node: dict[str, Any]) -> list[str]:
    return [" \\| ".join(f"`{v}`" for v in node["enum"])] if "enum" in node else []


def _range(node: dict[str, Any]) -> list[str]:
    if "minimum" not in node and "maximum" not in node:
        return []
    low, high = node.get("minimum"), node.get("maximum")
    if low is not None and high is not None:
        return [f"{'(' if node.get('exclusiveMinimum') else '['}{low}, {high}]"]
    return [f"≥ {low}" if low is not None else f"≤ {high}"]


def _length(node: dict[str, Any]) -> list[str]:
    if "minLength" not in node and "maxLength" not in node:
        return []
    low, high = node.get("minLength", 0), node.get("maxLength")
    return [f"{low}–{high} chars" if low else f"≤ {high} chars"]


def _items(node: dict[str, Any]) -> list[str]:
    parts = [f"≤ {node['maxItems']} items"] if "maxItems" in node else []
    items = node.get("items", {})
    if items.get("type") == "string" and "maxLength" in items:
        parts.append(f"each ≤ {items['maxLength']} chars")
    return parts


def _pattern(node: dict[str, Any]) -> list[str]:
    return [f"`{node['pattern']}`"] if "pattern" in node else []


def _validations(node: dict[str, Any]) -> list[str]:
    return [rule["message"] for rule in node.get("x-kubernetes-validations", [])]


_SAID = (_enum, _range, _length, _items, _pattern, _validations)  # in the table's order


def _rows(node: dict[str, Any], prefix: str, required: set[str]) -> list[str]:
    rows = []
    for name, sub in node.get("properties", {}).items():
        path = f"{prefix}.{name}"
        default = f"`{json.dumps(sub['default'])}`" if "default" in sub and sub["default"] != {} else ""
        description = sub.get("description", "").replace("|", "\\|").replace("\n", " ")
        rows.append(
            f"| `{path}` | {_type(sub)} | {default} | {_rules(sub, name in required)} | {description} |"
        )
        child = sub.get("items", sub) if sub.get("type") == "array" else sub
        if child.get("type") == "object" and "properties" in child:
            suffix = "[]" if sub.get("type") == "array" else ""
            rows += _rows(child, path + suffix, set(child.get("required", [])))
    return rows


def kind_reference(kind: Kind) -> str:
    schema = crd(kind)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    spec, status = schema["properties"]["spec"], schema["properties"]["status"]
    header = "| field | type | default | rules | description |\n|---|---|---|---|---|"
    short = ", ".join(f"`{n}`" for n in kind.short_names)
    lines = [
        f"### {kind.kind}",
        "",
        f"{kind.description} Plural `{kind.plural}`, short names {short}, category `contentgen`.",
        "",
        "Spec:",
        "",
        header,
        *_rows(spec, "spec", set(spec.get("required", []))),
        "",
        "Status (written by the operator):",
        "",
        header,
        *_rows(status, "status", set()),
    ]
    return "\n".join(lines)


def reference() -> str:
    return "\n\n".join(kind_reference(k) for k in KINDS.values())
