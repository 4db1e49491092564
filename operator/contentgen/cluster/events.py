"""Events as the controllers and the kubelet record them (core/v1 Event, what `kubectl describe`
lists): one new Event per occurrence; no aggregation or rate limiting (a gap, see tests/README)."""

from __future__ import annotations

import contextlib
import secrets
from typing import TYPE_CHECKING, Any

from . import meta
from .errors import ApiError

if TYPE_CHECKING:
    from .loop import Controller


def record(
    controller: Controller,
    obj: dict[str, Any],
    kind: str,
    api_version: str,
    type_: str,
    reason: str,
    message: str,
    *,
    component: str,
    host: str = "",
    field_path: str = "",
) -> None:
    m = obj["metadata"]
    namespace = m.get("namespace") or "default"
    now = meta.now()
    involved = {
        "kind": kind,
        "namespace": m.get("namespace", ""),
        "name": m["name"],
        "uid": m.get("uid", ""),
        "apiVersion": api_version,
        "resourceVersion": m.get("resourceVersion", ""),
    }
    if field_path:
        involved["fieldPath"] = field_path
    if not involved["namespace"]:
        del involved["namespace"]
    event = {
        "metadata": {"name": f"{m['name']}.{secrets.token_hex(8)}", "namespace": namespace},
        "involvedObject": involved,
        "reason": reason,
        "message": message,
        "type": type_,
        "source": {"component": component, **({"host": host} if host else {})},
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
        "reportingComponent": component,
        "reportingInstance": host,
    }
    with contextlib.suppress(ApiError):  # a lost event never fails a sync (as in client-go)
        controller.call("create", controller.type("", "events"), namespace, body=event)
