"""Server-side printing: objects as `meta.k8s.io/v1` Tables, what `kubectl get` asks for.

Custom resources get a Name column and their CRD's additionalPrinterColumns (values found by
JSONPath, dates as human durations, as apiextensions' tableconvertor renders them); the
built-in kinds here get the columns their printers give; others the default Name / Created At.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from .resources import ResourceType

NAME_COLUMN = {
    "name": "Name",
    "type": "string",
    "format": "name",
    "description": "Name must be unique within a namespace. Is required when creating resources, "
    "although some resources may allow a client to request the generation of an appropriate name "
    "automatically. Name is primarily intended for creation idempotence and configuration definition. "
    "Cannot be updated. More info: "
    "https://kubernetes.io/docs/concepts/overview/working-with-objects/names#names",
    "priority": 0,
}


def human_duration(seconds: float) -> str:
    """apimachinery's duration.HumanDuration."""
    s = int(seconds)
    if s < -1:
        return "<invalid>"
    if s < 0:
        return "0s"
    if s < 120:
        return f"{s}s"
    minutes = s // 60
    if minutes < 10:
        return f"{minutes}m{s % 60}s" if s % 60 else f"{minutes}m"
    if minutes < 180:
        return f"{minutes}m"
    hours = s // 3600
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        return f"{hours // 24}d{hours % 24}h" if hours % 24 else f"{hours // 24}d"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        days = (hours // 24) % 365
        return f"{hours // 24 // 365}y{days}d" if days else f"{hours // 24 // 365}y"
    return f"{hours // 24 // 365}y"


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def age(value: Any) -> str:
    moment = _parse_time(value)
    if moment is None:
        return "<unknown>"
    return human_duration((datetime.now(UTC) - moment).total_seconds())


# --- JSONPath (the subset printer columns use: .a.b, [n], [*], [?(@.k=="v")]) --------------------

_TOKEN = re.compile(
    r"\.([A-Za-z0-9_$-]+)|\[(\d+|\*)\]|\[\?\(@\.([A-Za-z0-9_.-]+)\s*==\s*[\"']([^\"']*)[\"']\)\]|\['([^']+)'\]"
)


def json_path(obj: Any, path: str) -> list[Any]:
    nodes = [obj]
    position = 0
    path = path.strip()
    if path.startswith("{") and path.endswith("}"):
        path = path[1:-1]
    while position < len(path):
        m = _TOKEN.match(path, position)
        if m is None:
            return []
        position = m.end()
        field, idx, filter_key, filter_value, quoted = m.groups()
        out: list[Any] = []
        for node in nodes:
            if field is not None or quoted is not None:
                key = field if field is not None else quoted
                if isinstance(node, dict) and key in node:
                    out.append(node[key])
            elif idx is not None and isinstance(node, list):
                if idx == "*":
                    out.extend(node)
                elif int(idx) < len(node):
                    out.append(node[int(idx)])
            elif filter_key is not None and isinstance(node, list):
                for item in node:
                    value = item
                    for part in filter_key.split("."):
                        value = value.get(part) if isinstance(value, dict) else None
                    if isinstance(item, dict) and str(value) == filter_value:
                        out.append(item)
        nodes = out
    return nodes


def _go_print(value: Any) -> str:
    """How the jsonpath printer writes a value into a string column."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    if value is None:
        return "<nil>"
    return str(value)


def _cell(column_type: str, value: Any) -> Any:
    if value is None:
        return None
    if column_type == "string":
        return _go_print(value)
    if column_type == "integer" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value)
    if column_type == "number" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if column_type == "boolean" and isinstance(value, bool):
        return value
    if column_type == "date" and isinstance(value, str):
        return age(value) if _parse_time(value) else "<invalid>"
    return None


# --- built-in printers ----------------------------------------------------------------------------------


def _col(
    name: str, kind: str = "string", description: str = "", priority: int = 0, fmt: str = ""
) -> dict[str, Any]:
    return {"name": name, "type": kind, "format": fmt, "description": description, "priority": priority}


def _pod_row(pod: dict[str, Any]) -> list[Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    containers = (pod.get("spec") or {}).get("containers") or []
    ready = sum(1 for s in statuses if s.get("ready"))
    reason = (pod.get("status") or {}).get("phase", "")
    for s in statuses:
        state = s.get("state") or {}
        if state.get("waiting", {}).get("reason"):
            reason = state["waiting"]["reason"]
        elif state.get("terminated", {}).get("reason"):
            reason = state["terminated"]["reason"]
    if pod["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    restarts = sum(int(s.get("restartCount") or 0) for s in statuses)
    return [f"{ready}/{len(containers)}", reason, restarts, age(pod["metadata"].get("creationTimestamp"))]


def _job_row(job: dict[str, Any]) -> list[Any]:
    status = job.get("status") or {}
    spec = job.get("spec") or {}
    conditions = {c.get("type"): c.get("status") for c in status.get("conditions") or []}
    if conditions.get("Complete") == "True":
        state = "Complete"
    elif conditions.get("Failed") == "True":
        state = "Failed"
    elif conditions.get("FailureTarget") == "True":
        state = "FailureTarget"
    elif conditions.get("SuccessCriteriaMet") == "True":
        state = "SuccessCriteriaMet"
    elif spec.get("suspend"):
        state = "Suspended"
    else:
        state = "Running"
    completions = f"{status.get('succeeded', 0)}/{spec.get('completions', 1)}"
    start, end = _parse_time(status.get("startTime")), _parse_time(status.get("completionTime"))
    duration = ""
    if start is not None:
        duration = human_duration(((end or datetime.now(UTC)) - start).total_seconds())
    return [state, completions, duration, age(job["metadata"].get("creationTimestamp"))]


def _event_row(event: dict[str, Any]) -> list[Any]:
    involved = event.get("involvedObject") or event.get("regarding") or {}
    last = event.get("lastTimestamp") or event.get("eventTime") or event["metadata"].get("creationTimestamp")
    return [
        age(last),
        event.get("type", ""),
        event.get("reason", ""),
        f"{str(involved.get('kind', '')).lower()}/{involved.get('name', '')}",
        event.get("message") or event.get("note", ""),
    ]


BUILTIN_PRINTERS: dict[
    tuple[str, str], tuple[list[dict[str, Any]], Callable[[dict[str, Any]], list[Any]]]
] = {
    ("", "pods"): (
        [_col("Ready"), _col("Status"), _col("Restarts", "string"), _col("Age")],
        _pod_row,
    ),
    ("batch", "jobs"): ([_col("Status"), _col("Completions"), _col("Duration"), _col("Age")], _job_row),
    ("", "namespaces"): (
        [_col("Status"), _col("Age")],
        lambda ns: [(ns.get("status") or {}).get("phase", ""), age(ns["metadata"].get("creationTimestamp"))],
    ),
    ("", "events"): (
        [_col("Last Seen"), _col("Type"), _col("Reason"), _col("Object"), _col("Message")],
        _event_row,
    ),
    ("", "serviceaccounts"): (
        [_col("Secrets", "integer"), _col("Age")],
        lambda sa: [len(sa.get("secrets") or []), age(sa["metadata"].get("creationTimestamp"))],
    ),
    ("", "secrets"): (
        [_col("Type"), _col("Data", "integer"), _col("Age")],
        lambda s: [s.get("type", ""), len(s.get("data") or {}), age(s["metadata"].get("creationTimestamp"))],
    ),
    ("coordination.k8s.io", "leases"): (
        [_col("Holder"), _col("Age")],
        lambda lease: [
            (lease.get("spec") or {}).get("holderIdentity", ""),
            age(lease["metadata"].get("creationTimestamp")),
        ],
    ),
    ("apiextensions.k8s.io", "customresourcedefinitions"): (
        [_col("Created At", "date")],
        lambda crd: [crd["metadata"].get("creationTimestamp", "")],
    ),
}


def columns(t: ResourceType) -> list[dict[str, Any]]:
    if t.crd is not None:
        defined = [
            {
                "name": c.name,
                "type": c.type,
                "format": c.format,
                "description": c.description
                or f"Custom resource definition column (in JSONPath format): {c.json_path}",
                "priority": c.priority,
            }
            for c in t.columns
        ]
        if not t.columns:
            defined = [
                _col("Age", "date", "CreationTimestamp is a timestamp representing the server time ...")
            ]
        return [NAME_COLUMN, *defined]
    printer = BUILTIN_PRINTERS.get(t.key)
    if printer is not None:
        return [NAME_COLUMN, *printer[0]]
    return [
        NAME_COLUMN,
        _col("Created At", "date", "CreationTimestamp is a timestamp representing the server time"),
    ]


def cells(t: ResourceType, obj: dict[str, Any]) -> list[Any]:
    name = obj["metadata"]["name"]
    if t.crd is not None:
        if not t.columns:
            return [name, age(obj["metadata"].get("creationTimestamp"))]
        row: list[Any] = [name]
        for column in t.columns:
            found = json_path(obj, column.json_path)
            row.append(_cell(column.type, found[0]) if found else None)
        return row
    printer = BUILTIN_PRINTERS.get(t.key)
    if printer is not None:
        return [name, *printer[1](obj)]
    return [name, obj["metadata"].get("creationTimestamp", "")]


def partial(obj: dict[str, Any]) -> dict[str, Any]:
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}


def table(
    t: ResourceType, objects: list[dict[str, Any]], list_meta: dict[str, Any], include: str = "Metadata"
) -> dict[str, Any]:
    rows = []
    for obj in objects:
        row: dict[str, Any] = {"cells": cells(t, obj)}
        if include == "Object":
            row["object"] = {"apiVersion": t.api_version, "kind": t.kind, **obj}
        elif include != "None":
            row["object"] = partial(obj)
        rows.append(row)
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_meta,
        "columnDefinitions": columns(t),
        "rows": rows,
    }
