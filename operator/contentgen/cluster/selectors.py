"""Label and field selectors, parsed as apimachinery parses them.

Label selectors: `a=b`, `a==b`, `a!=b`, `a in (x,y)`, `a notin (x)`, `a`, `!a`, comma-separated
(all must hold). Field selectors: `f=v`, `f==v`, `f!=v` over the fields a resource supports;
an unsupported field is a 400, as the server answers it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .errors import bad_request

Labels = dict[str, str]

_SET = re.compile(r"^\s*([^\s!=,()]+)\s+(in|notin)\s*\(([^)]*)\)\s*$")
_EQ = re.compile(r"^\s*([^\s!=,()]+)\s*(==|=|!=)\s*([^\s!=,()]*)\s*$")
_EXISTS = re.compile(r"^\s*(!?)\s*([^\s!=,()]+)\s*$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # =, !=, in, notin, exists, !exists
    values: tuple[str, ...] = ()

    def matches(self, labels: Labels) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "=":
            return present and value == self.values[0]
        if self.op == "!=":
            return not present or value != self.values[0]
        if self.op == "in":
            return present and value in self.values
        if self.op == "notin":
            return not present or value not in self.values
        if self.op == "exists":
            return present
        return not present


def _split(selector: str) -> list[str]:
    """Split on commas outside parentheses."""
    parts, depth, current = [], 0, ""
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p for p in parts if p.strip()]


def parse_labels(selector: str) -> list[Requirement]:
    requirements = []
    for term in _split(selector or ""):
        if m := _SET.match(term):
            values = tuple(v.strip() for v in m.group(3).split(",") if v.strip())
            requirements.append(Requirement(m.group(1), m.group(2), values))
        elif m := _EQ.match(term):
            op = "!=" if m.group(2) == "!=" else "="
            requirements.append(Requirement(m.group(1), op, (m.group(3),)))
        elif m := _EXISTS.match(term):
            requirements.append(Requirement(m.group(2), "!exists" if m.group(1) else "exists"))
        else:
            raise bad_request(f"unable to parse requirement: {term.strip()!r}")
    return requirements


def labels_match(requirements: list[Requirement], labels: Labels | None) -> bool:
    return all(r.matches(labels or {}) for r in requirements)


def label_selector_from(selector: dict[str, Any]) -> list[Requirement]:
    """A metav1.LabelSelector (matchLabels, matchExpressions) as requirements."""
    requirements = [Requirement(k, "=", (v,)) for k, v in (selector.get("matchLabels") or {}).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!exists"}
    for expr in selector.get("matchExpressions") or []:
        requirements.append(Requirement(expr["key"], ops[expr["operator"]], tuple(expr.get("values") or ())))
    return requirements


# --- field selectors -------------------------------------------------------------------------

FieldGetter = Callable[[dict[str, Any]], str]


def _path(*keys: str) -> FieldGetter:
    def get(obj: dict[str, Any]) -> str:
        node: Any = obj
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        return "" if node is None else str(node)

    return get


COMMON_FIELDS: dict[str, FieldGetter] = {
    "metadata.name": _path("metadata", "name"),
    "metadata.namespace": _path("metadata", "namespace"),
}

# What each built-in resource adds to metadata.name and metadata.namespace (pkg/registry/*/strategy.go).
RESOURCE_FIELDS: dict[tuple[str, str], dict[str, FieldGetter]] = {
    ("", "events"): {
        **{
            f"involvedObject.{k}": _path("involvedObject", k)
            for k in ("kind", "namespace", "name", "uid", "apiVersion", "resourceVersion", "fieldPath")
        },
        "reason": _path("reason"),
        "reportingComponent": _path("reportingComponent"),
        "source": _path("source", "component"),
        "type": _path("type"),
    },
    ("events.k8s.io", "events"): {
        **{f"regarding.{k}": _path("regarding", k) for k in ("kind", "namespace", "name", "uid")},
        "reason": _path("reason"),
        "type": _path("type"),
    },
    ("", "pods"): {
        "spec.nodeName": _path("spec", "nodeName"),
        "spec.restartPolicy": _path("spec", "restartPolicy"),
        "spec.schedulerName": _path("spec", "schedulerName"),
        "spec.serviceAccountName": _path("spec", "serviceAccountName"),
        "status.phase": _path("status", "phase"),
        "status.podIP": _path("status", "podIP"),
        "status.nominatedNodeName": _path("status", "nominatedNodeName"),
    },
    ("", "secrets"): {"type": _path("type")},
    ("", "namespaces"): {"status.phase": _path("status", "phase")},
    ("batch", "jobs"): {"status.successful": _path("status", "succeeded")},
}


@dataclass(frozen=True)
class FieldRequirement:
    getter: FieldGetter
    op: str
    value: str

    def matches(self, obj: dict[str, Any]) -> bool:
        return (self.getter(obj) == self.value) == (self.op == "=")


def parse_fields(selector: str, group: str, resource: str) -> list[FieldRequirement]:
    supported = {**COMMON_FIELDS, **RESOURCE_FIELDS.get((group, resource), {})}
    requirements = []
    for term in _split(selector or ""):
        m = _EQ.match(term)
        if not m:
            raise bad_request(f"invalid field selector: {term.strip()!r}")
        name, op, value = m.group(1), m.group(2), m.group(3)
        if name not in supported:
            raise bad_request(f"field label not supported: {name}")
        requirements.append(FieldRequirement(supported[name], "!=" if op == "!=" else "=", value))
    return requirements


def fields_match(requirements: list[FieldRequirement], obj: dict[str, Any]) -> bool:
    return all(r.matches(obj) for r in requirements)
