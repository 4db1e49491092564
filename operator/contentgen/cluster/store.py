"""The control plane's storage: objects by (group, plural) and (namespace, name), one global
resourceVersion counter (like etcd's revision), and a bounded history of changes that watches
read from. History older than the window is compacted away; a watch or list asking for a
resourceVersion from before it gets 410 Gone, as from a real server.
"""

from __future__ import annotations

import bisect
import threading
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from .errors import ApiError

T = TypeVar("T")

Key = tuple[str, str]  # (group, plural)
Name = tuple[str, str]  # (namespace or "", name)


def clone(value: T) -> T:
    """A deep copy of JSON-like data (faster than copy.deepcopy), of the same type."""
    if isinstance(value, dict):
        return cast(T, {k: clone(v) for k, v in value.items()})
    if isinstance(value, list):
        return cast(T, [clone(v) for v in value])
    return value


@dataclass(frozen=True)
class Change:
    rv: int
    key: Key
    type: str  # ADDED, MODIFIED, DELETED
    obj: dict[str, Any]  # the object after the change (for DELETED: its last state)
    old: dict[str, Any] | None  # before the change (None for ADDED)


def too_old(rv: int, oldest: int) -> ApiError:
    return ApiError(410, "Expired", f"too old resource version: {rv} ({oldest})")


class Store:
    def __init__(self, history: int = 20000) -> None:
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.rv = 1000
        self.objects: dict[Key, dict[Name, dict[str, Any]]] = {}
        self.writes: dict[Key, int] = {}  # per type, how many times it changed: for caches
        self.history = history
        self._changes: list[Change] = []
        self._rvs: list[int] = []
        self.compacted = self.rv  # changes at or below this are gone
        self.closed = False

    # --- reads (callers get copies) -----------------------------------------------------------

    def get(self, key: Key, namespace: str, name: str) -> dict[str, Any] | None:
        with self.lock:
            obj = self.objects.get(key, {}).get((namespace, name))
            return clone(obj) if obj is not None else None

    def peek(self, key: Key, namespace: str, name: str) -> dict[str, Any] | None:
        """The stored object itself, not a copy: callers must not change it."""
        return self.objects.get(key, {}).get((namespace, name))

    def items(self, key: Key, namespace: str | None = None) -> list[dict[str, Any]]:
        """The stored objects themselves, sorted by (namespace, name): callers must not change them."""
        with self.lock:
            bucket = self.objects.get(key, {})
            return [o for (ns, _), o in sorted(bucket.items()) if namespace is None or ns == namespace]

    def all_keys(self) -> list[Key]:
        with self.lock:
            return list(self.objects)

    # --- writes -------------------------------------------------------------------------------

    def next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def write(self, key: Key, obj: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        """Store `obj` (ADDED when `old` is None, else MODIFIED) with a new resourceVersion."""
        with self.lock:
            rv = self.next_rv()
            obj["metadata"]["resourceVersion"] = str(rv)
            meta = obj["metadata"]
            self.objects.setdefault(key, {})[(meta.get("namespace", ""), meta["name"])] = obj
            self.writes[key] = self.writes.get(key, 0) + 1
            self._record(Change(rv, key, "ADDED" if old is None else "MODIFIED", obj, old))
            return clone(obj)

    def remove(self, key: Key, obj: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            meta = obj["metadata"]
            current = self.objects.get(key, {}).pop((meta.get("namespace", ""), meta["name"]))
            self.writes[key] = self.writes.get(key, 0) + 1
            gone = clone(current)
            rv = self.next_rv()
            gone["metadata"]["resourceVersion"] = str(rv)
            self._record(Change(rv, key, "DELETED", gone, current))
            return clone(gone)

    def _record(self, change: Change) -> None:
        self._changes.append(change)
        self._rvs.append(change.rv)
        if len(self._changes) > self.history + self.history // 4:
            self.compact(keep=self.history)
        self.changed.notify_all()

    def compact(self, keep: int = 0) -> None:
        """Forget all but the last `keep` changes (what etcd's compaction does to old revisions)."""
        with self.lock:
            drop = max(0, len(self._changes) - keep)
            if drop:
                self.compacted = self._changes[drop - 1].rv
                del self._changes[:drop]
                del self._rvs[:drop]
            elif keep == 0:
                self.compacted = self.rv

    def changes_since(self, rv: int) -> list[Change]:
        """Every change after `rv`; 410 Gone when some of them were compacted away."""
        with self.lock:
            if rv < self.compacted:
                raise too_old(rv, self.compacted + 1)
            start = bisect.bisect_right(self._rvs, rv)
            return self._changes[start:]

    def close(self) -> None:
        with self.lock:
            self.closed = True
            self.changed.notify_all()
