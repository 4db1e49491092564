"""Admission of a custom resource by its CRD, through the control plane's request pipeline (the
same code `contentgen local-cluster` and the integration tests run): pruning, defaulting, the
OpenAPI schema, list types and CEL rules (with `oldSelf` on update). The CRD itself is admitted
first, as the API server would before serving it."""

from __future__ import annotations

import copy
from functools import cache
from typing import Any

from contentgen.cluster.apiserver import ControlPlane, Request, User
from contentgen.cluster.errors import ApiError

ADMIN = User("admin", ("system:masters",))


@cache
def _plane() -> ControlPlane:
    plane = ControlPlane()
    namespaces = plane.type_of("", "namespaces")
    plane.handle(
        Request(
            ADMIN,
            "create",
            namespaces,
            body={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}},
        )
    )
    return plane


def _install(crd: dict[str, Any]) -> Any:
    plane = _plane()
    crds = plane.type_of("apiextensions.k8s.io", "customresourcedefinitions")
    name = crd["metadata"]["name"]
    existing = plane.store.get(crds.key, "", name)
    if existing is None or existing["spec"] != {**existing["spec"], **crd["spec"]}:
        if existing is not None:
            plane.handle(Request(ADMIN, "delete", crds, name=name))
        plane.handle(Request(ADMIN, "create", crds, body=copy.deepcopy(crd)))
    spec = crd["spec"]
    return plane.type_for(spec["group"], spec["versions"][0]["name"], spec["names"]["plural"])


def admit(
    crd: dict[str, Any], obj: dict[str, Any], old: dict[str, Any] | None = None
) -> tuple[dict[str, Any], list[tuple[str, str]]]:
    """Returns (the object as stored: defaulted and pruned, [(field path, message)])."""
    t = _install(crd)
    plane = _plane()
    req = Request(
        ADMIN, "create" if old is None else "update", t, "default", obj.get("metadata", {}).get("name", "x")
    )
    candidate = copy.deepcopy(obj)
    candidate.setdefault("metadata", {}).update(namespace="default")
    previous = None
    if old is not None:
        previous = copy.deepcopy(old)
        previous.setdefault("metadata", {}).update(namespace="default")
        previous = plane._admit(Request(ADMIN, "create", t, "default"), previous, None)
    try:
        stored = plane._admit(req, candidate, previous)
    except ApiError as exc:
        causes = (exc.details or {}).get("causes") or [{"field": "", "message": exc.message}]
        return candidate, [(c["field"], c["message"]) for c in causes]
    return stored, []
