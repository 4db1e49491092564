"""The garbage collector, asynchronous like kube-controller-manager's: it keeps a graph of
ownerReferences (owner uid -> dependents) from the change log and, in its own thread:

- deletes dependents whose owners are all gone, or never existed (a dangling uid), with the
  propagation their own finalizers ask for (orphan, foregroundDeletion) or Background;
- removes only the dangling or foreground-deleting references of a dependent that still has a
  live owner;
- `orphan`: removes the deleting owner's references from every dependent, then the finalizer;
- `foregroundDeletion`: deletes every dependent (Foreground for dependents that have dependents
  of their own), and removes the owner's finalizer once no dependent with
  `blockOwnerDeletion: true` is left (dependents still terminating keep blocking).

An owner reference resolves by apiVersion/kind and name in the dependent's namespace (cluster
scope for cluster-scoped kinds) and must match the uid, as attemptToDeleteItem checks it.
References to kinds the server does not serve are left alone. Not done: cycle detection between
foreground deletions, events for invalid owner references.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import ApiError
from .loop import Controller
from .resources import ResourceType
from .store import Change, Key

ORPHAN, FOREGROUND = "orphan", "foregroundDeletion"
MERGE = "application/merge-patch+json"


@dataclass
class Node:
    key: Key
    namespace: str
    name: str
    owners: dict[str, dict[str, Any]]  # owner uid -> the ownerReference


class GarbageCollector(Controller):
    name = "garbage-collector-controller"
    watches = ()  # every kind

    def __init__(self, cp: Any, user: Any = None) -> None:
        super().__init__(cp, user)
        self.nodes: dict[str, Node] = {}
        self.dependents: dict[str, set[str]] = {}

    # --- the graph ------------------------------------------------------------------------------

    def observe(self, change: Change) -> None:
        obj = change.obj
        uid = obj["metadata"]["uid"]
        if change.type == "DELETED":
            node = self.nodes.pop(uid, None)
            for owner in node.owners if node else {}:
                self._unlink(owner, uid)
            for dependent in self.dependents.get(uid, set()):
                self.enqueue(("dependent", dependent))
            return
        self._add(change.key, obj)

    def _add(self, key: Key, obj: dict[str, Any]) -> None:
        m = obj["metadata"]
        uid = m["uid"]
        owners = {str(ref.get("uid")): dict(ref) for ref in m.get("ownerReferences") or []}
        old = self.nodes.get(uid)
        self.nodes[uid] = Node(key, m.get("namespace", ""), m["name"], owners)
        for owner in set(old.owners if old else {}) - set(owners):
            self._unlink(owner, uid)
        for owner in owners:
            self.dependents.setdefault(owner, set()).add(uid)
        finalizers = m.get("finalizers") or []
        if m.get("deletionTimestamp") and (ORPHAN in finalizers or FOREGROUND in finalizers):
            self.enqueue(("owner", uid))
        if owners:
            self.enqueue(("dependent", uid))  # cheap when every owner is alive

    def _unlink(self, owner: str, dependent: str) -> None:
        dependents = self.dependents.get(owner)
        if dependents is None:
            return
        dependents.discard(dependent)
        if not dependents:
            del self.dependents[owner]
        if owner in self.nodes:
            self.enqueue(("owner", owner))  # a foreground deletion may be unblocked now

    def resync(self) -> None:
        with self.cp.store.lock:
            self.nodes, self.dependents = {}, {}
            for key in self.cp.store.all_keys():
                for obj in self.cp.store.items(key):
                    self._add(key, obj)

    def sync(self, key: tuple[str, str]) -> None:
        kind, uid = key
        if kind == "owner":
            self._process_owner(uid)
        else:
            self._attempt_to_delete(uid)

    # --- objects ----------------------------------------------------------------------------------

    def _current(self, uid: str) -> dict[str, Any] | None:
        node = self.nodes.get(uid)
        if node is None:
            return None
        obj = self.cp.store.get(node.key, node.namespace, node.name)
        return obj if obj is not None and obj["metadata"]["uid"] == uid else None

    def _type(self, key: Key) -> ResourceType | None:
        try:
            return self.type(*key)
        except ApiError:  # no longer served (its CRD is gone)
            return None

    def _owner_state(self, dependent: dict[str, Any], ref: dict[str, Any]) -> str:
        """solid, waiting (being deleted in the foreground), dangling, or unknown (a kind that
        is not served)."""
        group = str(ref.get("apiVersion", "")).rpartition("/")[0]
        t = next(
            (
                t
                for t in self.served()
                if t.group == group and t.kind == ref.get("kind") and "/" not in t.plural
            ),
            None,
        )
        if t is None:
            return "unknown"
        namespace = dependent["metadata"].get("namespace", "") if t.namespaced else ""
        if t.namespaced and not namespace:
            return "dangling"  # a cluster-scoped dependent cannot have a namespaced owner
        owner = self.cp.store.get(t.key, namespace, str(ref.get("name", "")))
        if owner is None or owner["metadata"]["uid"] != ref.get("uid"):
            return "dangling"
        m = owner["metadata"]
        return (
            "waiting" if m.get("deletionTimestamp") and FOREGROUND in (m.get("finalizers") or []) else "solid"
        )

    # --- attemptToDeleteItem ----------------------------------------------------------------------

    def _attempt_to_delete(self, uid: str) -> None:
        obj = self._current(uid)
        if obj is None:
            return
        m = obj["metadata"]
        finalizers = m.get("finalizers") or []
        if m.get("deletionTimestamp"):
            if FOREGROUND in finalizers:
                self.enqueue(("owner", uid))
            return
        refs = list(m.get("ownerReferences") or [])
        if not refs:
            return
        states = {str(ref.get("uid")): self._owner_state(obj, ref) for ref in refs}
        if "unknown" in states.values():
            return
        gone = {u for u, s in states.items() if s in ("dangling", "waiting")}
        if "solid" in states.values():
            if gone:
                self._remove_references(obj, gone)
            return
        if "waiting" in states.values() and self.dependents.get(uid):
            policy = "Foreground"
        elif ORPHAN in finalizers:
            policy = "Orphan"
        elif FOREGROUND in finalizers:
            policy = "Foreground"
        else:
            policy = "Background"
        t = self._type(self.nodes[uid].key)
        if t is not None:
            options = {"propagationPolicy": policy, "preconditions": {"uid": uid}}
            self._ignoring_conflicts(
                lambda: self.gone_ok("delete", t, m.get("namespace", ""), m["name"], options)
            )

    # --- owners being deleted with the orphan or foregroundDeletion finalizer ---------------------

    def _process_owner(self, uid: str) -> None:
        obj = self._current(uid)
        if obj is None or not obj["metadata"].get("deletionTimestamp"):
            return
        finalizers = obj["metadata"].get("finalizers") or []
        dependents = sorted(self.dependents.get(uid, set()))
        if ORPHAN in finalizers:
            for dependent in dependents:
                current = self._current(dependent)
                if current is not None:
                    self._remove_references(current, {uid})
            self._remove_finalizer(obj, ORPHAN)
            return
        if FOREGROUND not in finalizers:
            return
        blocking = [
            d
            for d in dependents
            if d in self.nodes and self.nodes[d].owners.get(uid, {}).get("blockOwnerDeletion")
        ]
        if not blocking:
            self._remove_finalizer(obj, FOREGROUND)
            return
        for dependent in dependents:
            self.enqueue(("dependent", dependent))

    # --- writes -----------------------------------------------------------------------------------

    def _remove_references(self, obj: dict[str, Any], owners: set[str]) -> None:
        m = obj["metadata"]
        left = [ref for ref in m.get("ownerReferences") or [] if ref.get("uid") not in owners]
        patch = {
            "metadata": {
                "ownerReferences": left or None,
                "uid": m["uid"],
                "resourceVersion": m["resourceVersion"],
            }
        }
        t = self._type(self.nodes[m["uid"]].key)
        if t is not None:
            self.gone_ok("patch", t, m.get("namespace", ""), m["name"], patch, content_type=MERGE)

    def _remove_finalizer(self, obj: dict[str, Any], finalizer: str) -> None:
        m = obj["metadata"]
        left = [f for f in m.get("finalizers") or [] if f != finalizer]
        patch = {"metadata": {"finalizers": left or None, "resourceVersion": m["resourceVersion"]}}
        t = self._type(self.nodes[m["uid"]].key)
        if t is not None:
            self.gone_ok("patch", t, m.get("namespace", ""), m["name"], patch, content_type=MERGE)

    @staticmethod
    def _ignoring_conflicts(work: Any) -> None:
        try:
            work()
        except ApiError as exc:
            if exc.code != 409:  # a precondition that no longer holds: the object was replaced
                raise
