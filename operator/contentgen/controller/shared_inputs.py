"""The addresses a resource's spec names in the store, checked against the owners its keys name
(store/access.py), with the grants the operator reads off every kind's index (the resources'
annotation contentgen.io/shared-with), as the admission policy reads them from its ConfigMap."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

from contentgen.api import KINDS
from contentgen.api.inputs import inputs
from contentgen.api.sharing import Grant, parse_annotation
from contentgen.store.access import Crossing, crossings

from .decide import Observed
from .state import Operator

log = logging.getLogger("contentgen.operator.inputs")


def shared_by_uid(indexes: Any) -> Iterator[tuple[str, tuple[Grant, ...]]]:
    """(uid, grants) of every resource of any kind with a grant, as the operator's indexes hold it."""
    for kind in KINDS.values():
        for (_namespace, uid), kept in (indexes.get(f"{kind.plural}_by_uid") or {}).items():
            for entry in kept:
                grants = parse_annotation(entry.shared)[0] if entry.shared else ()
                if grants:
                    yield uid, grants


def grants_by_uid(indexes: Any, uid: str) -> tuple[Grant, ...]:
    """The grants of the resource `uid`, of any kind in any namespace (none where there is none)."""
    return next((grants for found, grants in shared_by_uid(indexes) if found == uid), ())


def crossed(op: Operator, res: Observed) -> tuple[Crossing, ...]:
    """The spec's inputs that name another owner's key: each refused or shared."""
    if op.store is None:
        return ()
    found = inputs(res.kind.spec, res.spec)
    if not found:
        return ()
    owner = str(res.spec.get("owner") or "")
    return tuple(crossings(found, owner, op.store.place(), lambda uid: grants_by_uid(op.indexes, uid)))


def audited(res: Observed, found: tuple[Crossing, ...], *, started: bool) -> None:
    """The operator's log line of every crossing: both owners and the key's folder, never the
    rest of the key."""
    for c in found:
        what = "uses" if c.allowed else "is refused"
        log.info(
            "%s %s/%s (owner %s) %s %s of owner %s by %s (%s)%s",
            res.kind.kind,
            res.namespace,
            res.name,
            c.owner,
            what,
            c.holder.named,
            c.holder.owner or "-",
            c.input.field,
            c.needs,
            " in a new Job" if started else "",
        )
