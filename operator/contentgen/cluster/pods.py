"""The pod subresources that create something: `pods/binding` (assign a node) and
`pods/eviction` (a graceful delete), as kube-apiserver's pod registry does them
(pkg/registry/core/pod/storage: `BindingREST.Create`, `EvictionREST.Create`).

Both answer 201 with a `Status` of Success, not the object. Authorization is for `create` on
the subresource only: the eviction's delete is not authorized separately.

Not done: the eviction never consults PodDisruptionBudgets (there is no disruption controller to
compute their status, so a real server would answer 429 for every pod a budget covers until one
ran); it evicts as if no budget selected the pod. Labels of a Binding are not copied to the pod
(PodTopologyLabelsAdmission, alpha in 1.33).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import meta, structural
from .errors import ApiError, bad_request, conflict
from .store import clone

if TYPE_CHECKING:
    from .apiserver import ControlPlane, Request

PODS = ("", "pods")
SUCCESS = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


def _decode(req: Request, kind: str, api_versions: tuple[str, ...]) -> dict[str, Any]:
    """The request body as the subresource's kind (what the create handler decodes it into)."""
    body = req.body
    if not isinstance(body, dict):
        raise bad_request("the body of the request was empty" if body is None else "expected an object")
    api_version = str(body.get("apiVersion") or api_versions[0])
    if api_version not in api_versions:
        raise bad_request(
            f"the API version in the data ({api_version}) does not match "
            f"the expected API version ({api_versions[0]})"
        )
    if body.get("kind", kind) != kind:
        group = api_version.rpartition("/")[0].split(".")[0] or "core"
        raise bad_request(f"not a {kind} object: *{group}.{body['kind']}")
    obj = clone(body)
    metadata = obj.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise bad_request("metadata must be an object")
    obj["metadata"] = metadata
    if metadata.get("namespace") and metadata["namespace"] != req.namespace:
        raise bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    metadata["namespace"] = req.namespace
    return obj


def _admit(plane: ControlPlane, req: Request, obj: dict[str, Any]) -> None:
    """The validating admission plugins see the Binding or Eviction (NamespaceLifecycle refuses
    both in a terminating namespace, as it does every create)."""
    for plugin in plane.plugins:
        plugin(plane, req, obj, None)


def named_pod(plane: ControlPlane, req: Request) -> dict[str, Any]:
    """The stored pod the request names (not a copy), or 404."""
    from .errors import not_found

    pod = plane.store.peek(PODS, req.namespace, req.name)
    if pod is None:
        raise not_found("pods", "", req.name)
    return pod


def _storage_precondition_failed(req: Request, why: str) -> ApiError:
    """A storage-level precondition failure (storage.NewInvalidObjError), as a 409 on pods."""
    key = f"/registry/pods/{req.namespace}/{req.name}"
    return conflict(
        "pods",
        "",
        req.name,
        f"StorageError: invalid object, Code: 4, Key: {key}, ResourceVersion: 0, AdditionalErrorMsg: {why}",
    )


def set_condition(status: dict[str, Any], condition: dict[str, Any]) -> bool:
    """podutil.UpdatePodCondition: add or replace a condition; lastTransitionTime moves only when
    the status changes. True when something changed."""
    conditions = status.setdefault("conditions", [])
    new = {"type": condition["type"], "status": condition["status"], "lastProbeTime": None}
    new.update({k: v for k, v in condition.items() if k in ("reason", "message")})
    new["lastTransitionTime"] = meta.now()
    for i, old in enumerate(conditions):
        if old.get("type") == condition["type"]:
            if old.get("status") == new["status"]:
                new["lastTransitionTime"] = old.get("lastTransitionTime")
            changed = any(old.get(k) != new.get(k) for k in ("status", "reason", "message"))
            conditions[i] = new
            return changed
    conditions.append(new)
    return True


# --- pods/binding ---------------------------------------------------------------------------------


def bind(plane: ControlPlane, req: Request) -> dict[str, Any]:
    binding = _decode(req, "Binding", ("v1",))
    m = binding["metadata"]
    if m.get("name", "") != req.name:
        raise bad_request("name in URL does not match name in Binding object")
    target = binding.get("target") or {}
    errors = []
    if target.get("kind") and target["kind"] != "Node":
        errors.append(structural.not_supported("target.kind", target["kind"], ["Node", "<empty>"]))
    if not target.get("name"):
        errors.append(structural.required("target.name"))
    if errors:
        # ValidatePodBinding's errors are returned as a plain aggregate, not an API status: the
        # handler turns that into a 500 with the errors as the message (and no reason).
        texts = [e.cause().text() for e in errors]
        raise ApiError(500, "", texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]")
    _admit(plane, req, binding)
    current = named_pod(plane, req)
    cm = current["metadata"]
    # The Binding's uid and resourceVersion are kept by the handler and guard the write.
    if m.get("uid") and m["uid"] != cm["uid"]:
        raise _storage_precondition_failed(
            req, f"Precondition failed: UID in precondition: {m['uid']}, UID in object meta: {cm['uid']}"
        )
    if m.get("resourceVersion") and str(m["resourceVersion"]) != cm["resourceVersion"]:
        raise _storage_precondition_failed(
            req,
            f"Precondition failed: ResourceVersion in precondition: {m['resourceVersion']}, "
            f"ResourceVersion in object meta: {cm['resourceVersion']}",
        )
    spec = current.get("spec") or {}
    if cm.get("deletionTimestamp"):
        raise conflict(
            "pods/binding", "", req.name, f"pod {req.name} is being deleted, cannot be assigned to a host"
        )
    if spec.get("nodeName"):
        raise conflict(
            "pods/binding", "", req.name, f'pod {req.name} is already assigned to node "{spec["nodeName"]}"'
        )
    if spec.get("schedulingGates"):
        raise conflict("pods/binding", "", req.name, f"pod {req.name} has non-empty .spec.schedulingGates")
    pod = clone(current)
    pod.setdefault("spec", {})["nodeName"] = target["name"]
    annotations = m.get("annotations") or {}
    if annotations:
        pod["metadata"]["annotations"] = {**(pod["metadata"].get("annotations") or {}), **annotations}
    set_condition(pod.setdefault("status", {}), {"type": "PodScheduled", "status": "True"})
    if not req.dry_run:
        plane.store.write(PODS, pod, current)
    return dict(SUCCESS)


# --- pods/eviction --------------------------------------------------------------------------------


def evict(plane: ControlPlane, req: Request) -> dict[str, Any]:
    from .apiserver import Request as Sub

    eviction = _decode(req, "Eviction", ("policy/v1", "policy/v1beta1"))
    if eviction["metadata"].get("name", "") != req.name:
        raise bad_request("name in URL does not match name in Eviction object")
    options = dict(eviction.get("deleteOptions") or {})
    asked = [req.query["dryRun"]] if req.query.get("dryRun") else []
    if not options.get("dryRun"):
        options["dryRun"] = asked
    elif asked and asked != list(options["dryRun"]):
        # propagateDryRun returns a plain error: a 500 without a reason
        raise ApiError(
            500,
            "",
            f"Non-matching dry-run options in request and content: [{' '.join(asked)}] "
            f"and [{' '.join(options['dryRun'])}]",
        )
    dry_run = "All" in options["dryRun"]
    _admit(plane, req, eviction)
    current = named_pod(plane, req)
    preconditions = dict(options.get("preconditions") or {})
    cm = current["metadata"]
    if preconditions.get("uid") and preconditions["uid"] != cm["uid"]:
        raise conflict(
            "Pod",
            "",
            req.name,
            f"the UID in the precondition ({preconditions['uid']}) does not match the UID in record "
            f"({cm['uid']}). The object might have been deleted and then recreated",
        )
    if preconditions.get("resourceVersion") and preconditions["resourceVersion"] != cm["resourceVersion"]:
        raise conflict(
            "Pod",
            "",
            req.name,
            f"the ResourceVersion in the precondition ({preconditions['resourceVersion']}) does not match "
            f"the ResourceVersion in record ({cm['resourceVersion']}). The object might have been modified",
        )
    if not dry_run:
        pod = clone(current)
        condition = {
            "type": "DisruptionTarget",
            "status": "True",
            "reason": "EvictionByEvictionAPI",
            "message": "Eviction API: evicting",
        }
        if set_condition(pod.setdefault("status", {}), condition):
            stored = plane.store.write(PODS, pod, current)
            if preconditions.get("resourceVersion"):  # the eviction made this version itself
                preconditions["resourceVersion"] = stored["metadata"]["resourceVersion"]
                options["preconditions"] = preconditions
    delete = Sub(
        req.user,
        "delete",
        req.type,
        req.namespace,
        req.name,
        body=options,
        query={"dryRun": "All"} if dry_run else {},
        user_agent=req.user_agent,
    )
    plane.delete(delete)
    return dict(SUCCESS)
