"""Validating admission plugins a real cluster runs on writes and deletions, in the order they
apply here: NamespaceLifecycle, ServiceAccount (pods), OwnerReferencesPermissionEnforcement, and
RBAC's escalation prevention (rbac.escalation_check). Each takes (plane, request, new object, old
object; a deletion has no new object) and raises an ApiError to refuse."""

from __future__ import annotations

import secrets
from typing import Any

from .apiserver import Attributes, ControlPlane, Request, forbidden_message
from .errors import ApiError, forbidden
from .rbac import escalation_check

IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public")


def namespace_lifecycle(
    plane: ControlPlane, req: Request, obj: dict[str, Any] | None, old: dict[str, Any] | None
) -> None:
    """No new content in a namespace that does not exist or is being terminated; default,
    kube-system and kube-public may not be deleted."""
    if req.verb == "delete":
        if req.type.key == ("", "namespaces") and req.name in IMMORTAL_NAMESPACES:
            raise forbidden("namespaces", "", req.name, "this namespace may not be deleted")
        return
    if old is not None or obj is None or not req.type.namespaced:
        return
    namespace = plane.store.peek(("", "namespaces"), "", req.namespace)
    if namespace is None:
        raise ApiError(
            404,
            "NotFound",
            f'namespaces "{req.namespace}" not found',
            {"name": req.namespace, "kind": "namespaces"},
        )
    if (namespace.get("status") or {}).get("phase") == "Terminating" or namespace["metadata"].get(
        "deletionTimestamp"
    ):
        if req.type.plural in ("events",) or (req.type.group == "events.k8s.io"):
            return
        raise forbidden(
            req.type.plural,
            req.type.group,
            obj["metadata"].get("name", ""),
            f"unable to create new content in namespace {req.namespace} because it is being terminated",
        )


def service_account(
    plane: ControlPlane, req: Request, obj: dict[str, Any] | None, old: dict[str, Any] | None
) -> None:
    """Pods run as an existing ServiceAccount; its token is mounted as a projected volume."""
    if req.type.plural != "pods" or req.type.group or req.subresource or old is not None or obj is None:
        return
    spec = obj.setdefault("spec", {})
    name = spec.get("serviceAccountName") or "default"
    account = plane.store.peek(("", "serviceaccounts"), req.namespace, name)
    if account is None:
        raise forbidden(
            "pods",
            "",
            obj["metadata"].get("name", ""),
            f'error looking up service account {req.namespace}/{name}: serviceaccount "{name}" not found',
        )
    mount = spec.get("automountServiceAccountToken")
    if mount is None:
        mount = account.get("automountServiceAccountToken", True)
    if not mount:
        return
    volume = f"kube-api-access-{''.join(secrets.choice('bcdfghjklmnpqrstvwxz2456789') for _ in range(5))}"
    spec.setdefault("volumes", []).append(
        {
            "name": volume,
            "projected": {
                "defaultMode": 420,
                "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {
                        "configMap": {
                            "name": "kube-root-ca.crt",
                            "items": [{"key": "ca.crt", "path": "ca.crt"}],
                        }
                    },
                    {
                        "downwardAPI": {
                            "items": [
                                {
                                    "path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                                }
                            ]
                        }
                    },
                ],
            },
        }
    )
    for container in spec.get("containers") or []:
        container.setdefault("volumeMounts", []).append(
            {"name": volume, "readOnly": True, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}
        )


def _changing_owner_references(obj: dict[str, Any], old: dict[str, Any] | None) -> bool:
    new_refs = obj["metadata"].get("ownerReferences") or []
    if old is None:
        return bool(new_refs)
    return bool(new_refs != (old["metadata"].get("ownerReferences") or []))


def _new_blocking_refs(obj: dict[str, Any], old: dict[str, Any] | None) -> list[dict[str, Any]]:
    blocking = [
        r for r in obj["metadata"].get("ownerReferences") or [] if r.get("blockOwnerDeletion") is True
    ]
    if old is None:
        return blocking
    before = {r.get("uid"): r for r in old["metadata"].get("ownerReferences") or []}
    return [
        r
        for r in blocking
        if r.get("uid") not in before or before[r["uid"]].get("blockOwnerDeletion") is not True
    ]


def owner_references_permission(
    plane: ControlPlane, req: Request, obj: dict[str, Any] | None, old: dict[str, Any] | None
) -> None:
    """OwnerReferencesPermissionEnforcement: setting ownerReferences needs `delete` on the object;
    setting blockOwnerDeletion needs `update` on the owner's `finalizers` subresource."""
    if obj is None or (req.type.plural == "pods" and req.subresource == "status"):
        return
    if not _changing_owner_references(obj, old):
        return
    t = req.type
    name = obj["metadata"].get("name", "")
    attrs = Attributes(req.user, "delete", t.group, t.version, t.plural, req.subresource, req.namespace, name)
    allowed, reason = plane.authorize(attrs)
    if not allowed:
        raise forbidden(
            t.plural, t.group, name, f"cannot set an ownerRef on a resource you can't delete: {reason}, <nil>"
        )
    for ref in _new_blocking_refs(obj, old):
        owner_type = plane.kind_type(str(ref.get("apiVersion", "")), str(ref.get("kind", "")))
        if owner_type is None:
            raise forbidden(
                t.plural,
                t.group,
                name,
                f"cannot set blockOwnerDeletion in this case because cannot find RESTMapping for APIVersion "
                f'{ref.get("apiVersion")} Kind {ref.get("kind")}: , no matches for kind "{ref.get("kind")}"',
            )
        check = Attributes(
            req.user,
            "update",
            owner_type.group,
            owner_type.version,
            owner_type.plural,
            "finalizers",
            req.namespace,
            ref.get("name", ""),
        )
        allowed, reason = plane.authorize(check)
        if not allowed:
            raise forbidden(
                t.plural,
                t.group,
                name,
                "cannot set blockOwnerDeletion if an ownerReference refers to a resource "
                "you can't set finalizers on: "
                f"{reason}, <nil>",
            )


DEFAULT_PLUGINS = [namespace_lifecycle, service_account, owner_references_permission, escalation_check]

__all__ = ["DEFAULT_PLUGINS", "forbidden_message"]
