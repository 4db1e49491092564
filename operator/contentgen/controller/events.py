"""Events about a resource (core/v1 Event, what `kubectl describe` lists), written as client-go's
event recorder writes them, through the operator's own client: its connection pool and timeouts.
Best effort: a lost Event is logged, never fails a reconcile."""

from __future__ import annotations

import hashlib
import logging
import socket
import time
from collections.abc import Mapping
from typing import Any

from contentgen.api import format_time, now

from .kube import KubeError
from .state import Operator
from .status import read_common

log = logging.getLogger("contentgen.operator")
COMPONENT = "contentgen-operator"
MAX_MESSAGE = 1024  # longer messages are cut in the middle


def transition_key(status: Mapping[str, Any]) -> str:
    """The state a transition reaches: the generation and run it speaks of, and its phase (with
    the Event's reason, what names its Event)."""
    state = read_common(status)
    return f"{state.observed_generation}/{state.run_version}/{state.phase or ''}"


def event_name(resource: dict[str, Any], reason: str, transition: str) -> str:
    """client-go names an Event after its object and the time; an Event of a transition (its
    `transition_key`) is named after the object, the transition and the reason, so that a second
    post of it, by this replica or one that took over, is a 409, not a second Event."""
    meta = resource["metadata"]
    if not transition:
        return f"{meta['name']}.{time.time_ns():x}"
    digest = hashlib.sha256(f"{meta['uid']}/{transition}/{reason}".encode()).hexdigest()[:16]
    return f"{meta['name']}.{digest}"


def event_body(
    resource: dict[str, Any], type_: str, reason: str, message: str, transition: str = ""
) -> dict[str, Any]:
    meta = resource["metadata"]
    if len(message) > MAX_MESSAGE:
        half = (MAX_MESSAGE - 3) // 2
        message = f"{message[:half]}...{message[-half:]}"
    stamp = format_time(now())
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"name": event_name(resource, reason, transition), "namespace": meta["namespace"]},
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


async def post_event(
    op: Operator, resource: dict[str, Any], type_: str, reason: str, message: str, *, transition: str = ""
) -> None:
    """Post an Event; with `transition`, at most once per transition (see event_name)."""
    body = event_body(resource, type_, reason, message, transition)
    try:
        await op.kube.request("POST", f"/api/v1/namespaces/{body['metadata']['namespace']}/events", body)
    except KubeError as exc:
        if exc.status == 409 and transition:
            log.debug("event %s for %s: posted already", reason, body["metadata"]["name"])
            return
        where = f"{body['metadata']['namespace']}/{resource['metadata']['name']}"
        log.warning("event %s for %s not recorded: %s", reason, where, exc)
    except Exception as exc:
        where = f"{body['metadata']['namespace']}/{resource['metadata']['name']}"
        log.warning("event %s for %s not recorded: %s", reason, where, exc)
