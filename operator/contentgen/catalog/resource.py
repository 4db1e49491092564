"""What the catalog needs of a resource to write its record (document.py, versions.py)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from contentgen.api import RunResult, SpecSnapshot


@dataclass(frozen=True)
class ResourceState:
    """What the catalog needs of a resource: its identity, spec and status (wire form)."""

    kind: str
    name: str
    namespace: str
    uid: str
    generation: int
    spec: dict[str, Any]
    status: dict[str, Any]
    created_at: datetime
    results: Mapping[int, RunResult] = field(default_factory=dict)  # by version, when at hand
    # Its grants (api/sharing.py) as the record's `shares`: in a cluster the resource's annotation
    # contentgen.io/shared-with; None keeps the record's own (a laptop's, written by `assets share`).
    shares: tuple[dict[str, Any], ...] | None = None

    @classmethod
    def of_snapshot(
        cls,
        snapshot: SpecSnapshot,
        status: dict[str, Any],
        created_at: datetime,
        results: Mapping[int, RunResult] | None = None,
    ) -> ResourceState:
        """A run's resource as its spec snapshot names it (a local run, the HTTP API's creates)."""
        return cls(
            kind=snapshot.kind,
            name=snapshot.name,
            namespace=snapshot.namespace,
            uid=snapshot.uid,
            generation=snapshot.generation,
            spec=snapshot.spec,
            status=status,
            created_at=created_at,
            results=results or {},
        )
