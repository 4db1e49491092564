"""Sharing records in the catalog (issue 38): a thin adapter over the catalog's database; who may
see or use what is decided in api/sharing.py. A record's grants are `shares` on the record
(document.py): a laptop's written here (`assets share`, the HTTP API); in a cluster mirrored by the
operator from the resource's annotation contentgen.io/shared-with, so changed with kubectl
(NotShareable says how). Collections (collections.py) and usage (usage.py) are shared their own way.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from contentgen.api.kinds.lora_training import KIND as LORA_TRAINING
from contentgen.api.sharing import (
    ANNOTATION,
    Grant,
    access_of,
    annotation_of,
    grantee_keys,
    grants_of,
    with_grant,
    without_grant,
)

from .base import AmbiguousReference, Catalog
from .document import DELETED
from .migrate import upgrade
from .names import resolve

MAX_SHARED_LISTED = 500


class NotShareable(Exception):
    """A record the operator writes: its grants are its resource's annotation (the message has the
    kubectl command)."""


def kubectl_share(doc: dict[str, Any], grants: Sequence[Grant]) -> str:
    """The command that gives a cluster resource these grants."""
    kind = str(doc.get("kind") or "").lower()
    value = annotation_of(grants)
    where = f"kubectl annotate {kind}/{doc.get('name')} -n {doc.get('namespace')}"
    return f"{where} {ANNOTATION}-" if not value else f"{where} {ANNOTATION}={value} --overwrite"


def change_record_shares(
    catalog: Catalog, doc: dict[str, Any], *, give: Grant | None = None, take: str | None = None
) -> tuple[tuple[Grant, ...], bool]:
    """Give a grant on a record (or take one back, by grantee); the grants after, and whether the
    taken one was there. NotShareable for a record the operator writes."""
    current = grants_of(doc)
    if give is not None:
        after, changed = with_grant(current, give), True
    else:
        after, changed = without_grant(current, take or "")
    if doc.get("origin") == "operator":
        raise NotShareable(
            f"{doc.get('namespace')}/{doc.get('name')} is a cluster resource: its grants are its annotation "
            f"{ANNOTATION}, which the operator copies into its record; change it with: "
            f"{kubectl_share(doc, after)}"
        )

    def change(stored: dict[str, Any] | None) -> dict[str, Any] | None:
        if stored is None:
            return None
        return {**stored, "rev": int(stored.get("rev") or 0) + 1, "shares": [g.wire() for g in after]}

    if changed:
        catalog.modify(str(doc["_id"]), change)
    return after, changed


def readable(
    catalog: Catalog, ref: str, owners: Iterable[str], groups: Iterable[str] = (), type: str | None = None
) -> tuple[dict[str, Any], str] | None:
    """The record `ref` names with the caller's access to it (owner, read, use), among every
    owner's records: None where it is none the caller may see, or where `ref` is ambiguous among
    everyone's (which says nothing of records the caller may not see)."""
    owners, groups = list(owners), list(groups)
    try:
        doc = resolve(catalog, ref, owner=None, type=type)
    except AmbiguousReference:
        return None
    if doc is None:
        return None
    access = access_of(grants_of(doc), str(doc.get("owner") or ""), owners, groups)
    return (doc, access) if access != "none" else None


def lora_grants(catalog: Catalog, namespace: str, name: str, owner: str) -> tuple[Grant, ...] | None:
    """The grants of `owner`'s LoraTraining namespace/name (its newest record whose resource was
    not deleted); None when there is none."""
    docs = catalog.find_raw(
        {"kind": LORA_TRAINING.kind, "namespace": namespace, "name": name, "owner": owner, "deleted": None},
        limit=20,
    )
    if not docs:
        return None
    newest = max(docs, key=lambda d: str(d.get("createdAt") or ""))
    return grants_of(newest)


def shared_with(
    catalog: Catalog, owners: Iterable[str], groups: Iterable[str] = (), type: str | None = None
) -> list[dict[str, Any]]:
    """Records of other owners shared with the caller (newest first), not deleted ones."""
    owners = list(owners)
    query: dict[str, Any] = {
        "shares.to": {"$in": grantee_keys(owners, groups)},
        "owner": {"$nin": owners},
        "status": {"$ne": DELETED},
    }
    if type is not None:
        query["type"] = type
    docs = [upgrade(d) for d in catalog.find_raw(query, limit=MAX_SHARED_LISTED)]
    return sorted(docs, key=lambda d: str(d.get("createdAt") or ""), reverse=True)
