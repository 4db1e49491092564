"""Namespaces as a cluster keeps them:

- `ensure_system_namespaces`: default, kube-system, kube-public and kube-node-lease exist from
  the start (the API server's bootstrap controller makes them);
- `NamespaceController`: a deleted namespace (phase Terminating, spec.finalizers
  [kubernetes]) has every namespaced object in it deleted (deletecollection, Background
  propagation), its status conditions say what remains and which finalizers hold it, and once
  nothing is left the `kubernetes` finalizer is removed through the `finalize` subresource, after
  which the API server removes the namespace;
- `ServiceAccountController`: a `default` ServiceAccount in every active namespace (re-created
  when deleted);
- `RootCAPublisher`: the `kube-root-ca.crt` ConfigMap (the cluster CA) in every namespace, when
  the control plane has a CA.
"""

from __future__ import annotations

from typing import Any

from . import meta
from .errors import ApiError
from .loop import Controller
from .resources import ResourceType
from .store import Change

NAMESPACES = ("", "namespaces")
SYSTEM_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
CONDITIONS = {  # type -> (reason, message) when all is well (namespace_deleter okReasons/okMessages)
    "NamespaceDeletionDiscoveryFailure": ("ResourcesDiscovered", "All resources successfully discovered"),
    "NamespaceDeletionGroupVersionParsingFailure": (
        "ParsedGroupVersions",
        "All legacy kube types successfully parsed",
    ),
    "NamespaceDeletionContentFailure": (
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    "NamespaceContentRemaining": ("ContentRemoved", "All content successfully removed"),
    "NamespaceFinalizersRemaining": ("ContentHasNoFinalizers", "All content-preserving finalizers finished"),
}


def ensure_system_namespaces(controller: Controller) -> None:
    t = controller.type(*NAMESPACES)
    for name in SYSTEM_NAMESPACES:
        if controller.read(*NAMESPACES, "", name) is None:
            try:
                controller.call("create", t, body={"metadata": {"name": name}})
            except ApiError as exc:
                if exc.code != 409:
                    raise


def _active(namespace: dict[str, Any] | None) -> bool:
    return namespace is not None and not namespace["metadata"].get("deletionTimestamp")


class NamespaceController(Controller):
    name = "namespace-controller"
    watches = (NAMESPACES,)

    def start(self) -> Controller:
        ensure_system_namespaces(self)
        return super().start()

    def observe(self, change: Change) -> None:
        if change.type != "DELETED" and change.obj["metadata"].get("deletionTimestamp"):
            self.enqueue(change.obj["metadata"]["name"])

    def resync(self) -> None:
        with self.cp.store.lock:
            for ns in self.cp.store.items(NAMESPACES):
                if ns["metadata"].get("deletionTimestamp"):
                    self.enqueue(ns["metadata"]["name"])

    def _namespaced_types(self) -> list[ResourceType]:
        seen: dict[tuple[str, str], ResourceType] = {}
        for t in self.served():
            if t.namespaced and "/" not in t.plural and "delete" in t.verbs and "list" in t.verbs:
                seen.setdefault(t.key, t)
        return list(seen.values())

    def sync(self, name: str) -> None:
        ns = self.read(*NAMESPACES, "", name)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        if "kubernetes" not in ((ns.get("spec") or {}).get("finalizers") or []):
            return
        failures = []
        for t in self._namespaced_types():
            if not self.cp.store.items(t.key, name):
                continue
            try:
                self.call("deletecollection", t, name, body={"propagationPolicy": "Background"})
            except ApiError as exc:
                failures.append(f"{t.plural}: {exc.message}")
        remaining: list[str] = []
        finalizers: dict[str, int] = {}
        for t in self._namespaced_types():
            left = self.cp.store.items(t.key, name)
            if left:
                remaining.append(f"{t.plural}.{t.group} has {len(left)} resource instances")
            for obj in left:
                for finalizer in obj["metadata"].get("finalizers") or []:
                    finalizers[finalizer] = finalizers.get(finalizer, 0) + 1
        self._conditions(ns, failures, remaining, finalizers)
        if failures or remaining:
            self.enqueue(name, 0.5)  # the pods' grace periods, the finalizers: look again soon
            return
        body = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name},
            "spec": {"finalizers": [f for f in ns["spec"]["finalizers"] if f != "kubernetes"]},
        }
        self.gone_ok("update", self.type(*NAMESPACES), "", name, body, subresource="finalize")

    def _conditions(
        self, ns: dict[str, Any], failures: list[str], remaining: list[str], finalizers: dict[str, int]
    ) -> None:
        status = dict(ns.get("status") or {})
        conditions = list(status.get("conditions") or [])
        problems = {
            "NamespaceDeletionContentFailure": (
                "ContentDeletionFailed",
                f"Failed to delete all resource types, {len(failures)} remaining: {', '.join(failures)}",
            )
            if failures
            else None,
            "NamespaceContentRemaining": (
                "SomeResourcesRemain",
                f"Some resources are remaining: {', '.join(sorted(remaining))}",
            )
            if remaining
            else None,
            "NamespaceFinalizersRemaining": (
                "SomeFinalizersRemain",
                "Some content in the namespace has finalizers remaining: "
                + ", ".join(f"{f} in {n} resource instances" for f, n in sorted(finalizers.items())),
            )
            if finalizers
            else None,
        }
        for type_, ok in CONDITIONS.items():
            problem = problems.get(type_)
            reason, message = problem or ok
            _ensure(conditions, type_, "True" if problem else "False", reason, message)
        if conditions == (status.get("conditions") or []):
            return
        status["conditions"] = conditions
        body = {**ns, "status": status}
        self.gone_ok("update", self.type(*NAMESPACES), "", ns["metadata"]["name"], body, subresource="status")


def _ensure(conditions: list[dict[str, Any]], type_: str, status: str, reason: str, message: str) -> None:
    """Set a namespace condition (False ones too: the deleter reports every type)."""
    wanted = {
        "type": type_,
        "status": status,
        "lastTransitionTime": meta.now(),
        "reason": reason,
        "message": message,
    }
    for i, cond in enumerate(conditions):
        if cond.get("type") == type_:
            if (cond.get("status"), cond.get("reason"), cond.get("message")) != (status, reason, message):
                conditions[i] = wanted
            return
    conditions.append(wanted)


class _PerNamespace(Controller):
    """Keeps one object in every active namespace."""

    kind: tuple[str, str] = ("", "")
    object_name = ""

    def body(self) -> dict[str, Any] | None:
        raise NotImplementedError

    def observe(self, change: Change) -> None:
        m = change.obj["metadata"]
        if change.key == NAMESPACES:
            if change.type != "DELETED":
                self.enqueue(m["name"])
        elif m["name"] == self.object_name:
            self.enqueue(m.get("namespace", ""))

    def resync(self) -> None:
        with self.cp.store.lock:
            for ns in self.cp.store.items(NAMESPACES):
                self.enqueue(ns["metadata"]["name"])

    def sync(self, namespace: str) -> None:
        body = self.body()
        if body is None or not _active(self.read(*NAMESPACES, "", namespace)):
            return
        current = self.read(*self.kind, namespace, self.object_name)
        if current is not None and all(current.get(k) == v for k, v in body.items() if k != "metadata"):
            return
        t = self.type(*self.kind)
        try:
            if current is None:
                self.call("create", t, namespace, body=body)
            else:
                body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
                self.call("update", t, namespace, self.object_name, body)
        except ApiError as exc:
            if exc.code not in (403, 404, 409):  # the namespace is going away, or we raced
                raise


class ServiceAccountController(_PerNamespace):
    name = "serviceaccount-controller"
    watches = (NAMESPACES, ("", "serviceaccounts"))
    kind = ("", "serviceaccounts")
    object_name = "default"

    def body(self) -> dict[str, Any] | None:
        return {"metadata": {"name": "default"}}


class RootCAPublisher(_PerNamespace):
    name = "root-ca-cert-publisher"
    watches = (NAMESPACES, ("", "configmaps"))
    kind = ("", "configmaps")
    object_name = "kube-root-ca.crt"

    def __init__(self, cp: Any, ca_pem: str, user: Any = None) -> None:
        super().__init__(cp, user)
        self.ca_pem = ca_pem

    def body(self) -> dict[str, Any] | None:
        return {
            "metadata": {
                "name": self.object_name,
                "annotations": {"kubernetes.io/description": _CA_DESCRIPTION},
            },
            "data": {"ca.crt": self.ca_pem},
        }


_CA_DESCRIPTION = (
    "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints "
    "such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across "
    "distributions of Kubernetes clusters."
)
