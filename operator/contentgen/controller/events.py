"""Events about a resource (core/v1 Event, what `kubectl describe` lists), written as client-go's
event recorder writes them, through the operator's own client: its connection pool and timeouts.
Best effort: a lost Event is logged, never fails a reconcile."""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

from contentgen.api import format_time, now

from .state import Operator

log = logging.getLogger("contentgen.operator")
COMPONENT = "contentgen-operator"
MAX_MESSAGE = 1024  # longer messages are cut in the middle


def event_body(resource: dict[str, Any], type_: str, reason: str, message: str) -> dict[str, Any]:
    meta = resource["metadata"]
    if len(message) > MAX_MESSAGE:
        half = (MAX_MESSAGE - 3) // 2
        message = f"{message[:half]}...{message[-half:]}"
    stamp = format_time(now())
    return {
        "apiVersion": "v1",
        "kind": "Event",
        # client-go names an Event after its object and the time
        "metadata": {"name": f"{meta['name']}.{time.time_ns():x}", "namespace": meta["namespace"]},
        "involvedObject": {
            "apiVersion": resource["apiVersion"],
            "kind": resource["kind"],
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta["uid"],
            "resourceVersion": str(meta.get("resourceVersion", "")),
        },
        "type": type_,
        "reason": reason,
        "message": message,
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": socket.gethostname(),
        "firstTimestamp": stamp,
        "lastTimestamp": stamp,
        "count": 1,
    }


async def post_event(op: Operator, resource: dict[str, Any], type_: str, reason: str, message: str) -> None:
    body = event_body(resource, type_, reason, message)
    try:
        await op.kube.request("POST", f"/api/v1/namespaces/{body['metadata']['namespace']}/events", body)
    except Exception as exc:
        where = f"{body['metadata']['namespace']}/{resource['metadata']['name']}"
        log.warning("event %s for %s not recorded: %s", reason, where, exc)
