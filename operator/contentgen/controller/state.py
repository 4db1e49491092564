"""What the operator's handlers share for the life of one operator process (kept in kopf's
per-operator memo, so two operators in one process do not share it)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from contentgen.api import RunResult

from .kube import Kube
from .queue import Backoff, NamespaceQueue
from .settings import OperatorSettings


@dataclass
class Operator:
    """What the handlers share for the life of one operator process."""

    settings: OperatorSettings
    kube: Kube
    queue: NamespaceQueue
    backoff: Backoff
    store: Any = None  # ObjectStore, when a store is configured
    catalog: Any = None  # Catalog, when MongoDB is configured
    locks: dict[str, asyncio.Lock] = field(default_factory=dict)
    # Catalog writes that failed (MongoDB down): uid -> the result to record, if any.
    catalog_behind: dict[str, RunResult | None] = field(default_factory=dict)
    # Namespaces where the worker's ServiceAccount and RoleBinding are known to exist.
    worker_access: set[str] = field(default_factory=set)

    def lock(self, uid: str) -> asyncio.Lock:
        return self.locks.setdefault(uid, asyncio.Lock())

    def admission(self, namespace: str) -> asyncio.Lock:
        return self.locks.setdefault(f"namespace/{namespace}", asyncio.Lock())
