"""What the operator, the worker and the HTTP API were allowed to do, as the real API server's
authorizers decided it (its audit log records each request with the decision), kept in
observed-calls.json for the chart's RBAC test: (install mode, identity, verb, group, resource,
scope). A denial fails the test that saw it."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

CALLS_FILE = Path(__file__).resolve().parent / "observed-calls.json"
OPERATOR_USER = "system:serviceaccount:contentgen:contentgen-operator"


def identity(user: str) -> str | None:
    if user == OPERATOR_USER:
        return "operator"
    if user.startswith("system:serviceaccount:") and user.endswith(":contentgen-worker"):
        return "worker"
    if user.startswith("system:serviceaccount:") and user.endswith(":contentgen-api"):
        return "api"
    return None


def record_decisions(decisions: Iterable[Any], mode: str) -> None:
    """`decisions` have user, verb, group, resource, namespace and allowed (apiserver.Decision,
    or the audit log's JSON lines). UPDATE_OBSERVED_CALLS=1 adds what was seen to the file."""
    ours = [d for d in decisions if identity(d.user)]
    denied = sorted({(d.user, d.verb, d.group, d.resource, d.namespace) for d in ours if not d.allowed})
    assert not denied, f"the chart's RBAC refused the operator or the worker: {denied}"
    seen = {  # non-resource paths (discovery) are every authenticated user's by the default policy
        (mode, identity(d.user), d.verb, d.group, d.resource, "namespace" if d.namespace else "cluster")
        for d in ours
        if not d.resource.startswith("/")
    }
    committed = {tuple(x) for x in json.loads(CALLS_FILE.read_text())} if CALLS_FILE.exists() else set()
    if os.environ.get("UPDATE_OBSERVED_CALLS") == "1":
        CALLS_FILE.write_text(json.dumps(sorted(committed | seen), indent=1) + "\n")
        return
    missing = sorted(seen - committed)
    assert not missing, f"calls not in {CALLS_FILE.name} (run with UPDATE_OBSERVED_CALLS=1): {missing}"


def audit_lines(path: Path, since: int = 0) -> list[str]:
    """The audit log's lines from byte `since` on (none where there is no log yet)."""
    if not path.exists():
        return []
    with path.open("rb") as log:
        log.seek(since)
        return log.read().decode().splitlines()


def audit_decisions(path: Path, since: int = 0) -> list[SimpleNamespace]:
    """(user, verb, group, resource, namespace, allowed) of each request the audit log recorded at
    its response; `resource` is "plural" or "plural/subresource", or the path of a non-resource URL.
    Also its answer's `code`, the client's User-Agent (`agent`) and when the API server received
    it (`received`, RFC 3339 with microseconds: ordered as strings). `since`: the byte where the
    part to read begins."""
    out = []
    for line in audit_lines(path, since):
        event = json.loads(line)
        if event.get("stage") != "ResponseComplete":
            continue
        ref = event.get("objectRef") or {}
        resource = ref.get("resource", "")
        if ref.get("subresource"):
            resource = f"{resource}/{ref['subresource']}"
        decision = (event.get("annotations") or {}).get("authorization.k8s.io/decision", "")
        # A namespace's own requests carry its name as their namespace; RBAC-wise, they are cluster-scoped.
        namespace = "" if ref.get("resource") == "namespaces" else ref.get("namespace", "")
        out.append(
            SimpleNamespace(
                user=event["user"]["username"],
                verb=event["verb"],
                group=ref.get("apiGroup", ""),
                resource=resource or event["requestURI"].split("?")[0],
                namespace=namespace,
                allowed=decision != "forbid",
                uri=event["requestURI"],
                code=(event.get("responseStatus") or {}).get("code", 0),
                agent=event.get("userAgent", ""),
                received=event.get("requestReceivedTimestamp", ""),
            )
        )
    return out
