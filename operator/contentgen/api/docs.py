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
    parts: list[str] = []
    if required:
        parts.append("**required**")
    if "enum" in node:
        parts.append(" \\| ".join(f"`{v}`" for v in node["enum"]))
    if "minimum" in node or "maximum" in node:
        low = node.get("minimum")
        high = node.get("maximum")
        if low is not None and high is not None:
            left = "(" if node.get("exclusiveMinimum") else "["
            parts.append(f"{left}{low}, {high}]")
        else:
            parts.append(f"≥ {low}" if low is not None else f"≤ {high}")
    if "minLength" in node or "maxLength" in node:
        low, high = node.get("minLength", 0), node.get("maxLength")
        parts.append(f"{low}–{high} chars" if low else f"≤ {high} chars")
    if "maxItems" in node:
        parts.append(f"≤ {node['maxItems']} items")
    items = node.get("items", {})
    if items.get("type") == "string" and "maxLength" in items:
        parts.append(f"each ≤ {items['maxLength']} chars")
    if "pattern" in node:
        parts.append(f"`{node['pattern']}`")
    for rule in node.get("x-kubernetes-validations", []):
        parts.append(rule["message"])
    return "; ".join(parts).replace("|", "\\|").replace("\\\\|", "\\|")


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
