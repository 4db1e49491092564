"""Removing versions, only when a person asks: `contentgen assets prune NAME --keep N`, deleting one
version (`assets delete REF --version N`, DELETE /api/assets/REF/versions/N) or a whole record
(`assets delete REF`). Nothing else removes outputs (deletionPolicy: Delete aside, at deletion).

First a plan (what would go: versions and stored objects, and what was made with them), shown
as a dry run; then, when confirmed, the objects are removed from the store and the record moves
those versions to `deletedVersions` (the entries stay, for history).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from contentgen.store import ObjectStore, keys

from .base import Catalog
from .document import marked_deleted, without_versions
from .downloads import NoSuchVersion, version_of, version_uris
from .kinds import makes_loras
from .migrate import upgrade
from .queries import Filters, Page


@dataclass(frozen=True)
class Removal:
    """What a removal takes away."""

    doc: dict[str, Any]  # the record, current shape
    versions: list[int]  # the versions whose outputs go
    objects: list[str]  # the store keys that go
    whole: bool = False  # the whole record: every object, and the record becomes Deleted
    used_by: dict[int, int] = field(default_factory=dict)  # LoRA version -> image generations made with it

    def summary(self) -> dict[str, Any]:
        doc = self.doc
        return {
            "id": doc["_id"],
            "name": f"{doc.get('namespace')}/{doc.get('name')}",
            "versions": self.versions,
            "kept": [
                int(v["version"]) for v in doc.get("versions") or [] if int(v["version"]) not in self.versions
            ],
            "objects": self.objects,
            "usedBy": {f"v{k}": n for k, n in sorted(self.used_by.items())},
        }


def _version_keys(store: ObjectStore, doc: dict[str, Any], version: dict[str, Any]) -> list[str]:
    """Every stored object of one version: its prefixes (v{n}/), and for the unversioned layout of
    version 1 before versions, the objects it names and its result document."""
    number = int(version["version"])
    kind, owner, uid = str(doc["type"]), str(doc["owner"]), str(doc["_id"])
    found = [info.key for root in keys.version_roots(kind, owner, uid, number) for info in store.list(root)]
    named = [u for u in version_uris(version) if store.owns(u) and keys.version_of_uri(u) is None]
    if named and keys.unversioned_before(kind):
        named.append(store.uri(keys.result_key(kind, owner, uid, 0)))
    found += [store.key_of(u) for u in named if store.exists(store.key_of(u))]
    return sorted(dict.fromkeys(found))


def _used_by(catalog: Catalog, doc: dict[str, Any], numbers: list[int]) -> dict[int, int]:
    if not makes_loras(doc.get("kind")):
        return {}
    used = {}
    for number in numbers:
        made = catalog.find(Filters(owner=doc.get("owner"), lora=f"{doc['_id']}/v{number}"), page=Page(1))
        if made.total:
            used[number] = made.total
    return used


def plan_versions(catalog: Catalog, store: ObjectStore, doc: dict[str, Any], numbers: list[int]) -> Removal:
    """Removing the usable versions `numbers` of the record."""
    doc = upgrade(doc)
    chosen = [version_of(doc, n) for n in numbers]  # NoSuchVersion / AssetsDeleted for others
    objects = sorted({k for v in chosen for k in _version_keys(store, doc, v)})
    return Removal(doc, sorted(numbers), objects, used_by=_used_by(catalog, doc, numbers))


def plan_prune(catalog: Catalog, store: ObjectStore, doc: dict[str, Any], keep: int) -> Removal:
    """Keeping the newest `keep` usable versions (at least 1), removing the older ones."""
    if keep < 1:
        raise ValueError(
            f"--keep must be at least 1 (to remove every version, delete the record), got {keep}"
        )
    doc = upgrade(doc)
    numbers = [int(v["version"]) for v in doc.get("versions") or []]
    return plan_versions(catalog, store, doc, numbers[:-keep] if len(numbers) > keep else [])


def plan_record(catalog: Catalog, store: ObjectStore, doc: dict[str, Any]) -> Removal:
    """Removing every stored object of the record (outputs, datasets, thumbnails, checkpoints)."""
    doc = upgrade(doc)
    roots = keys.resource_roots(str(doc["type"]), str(doc["owner"]), str(doc["_id"]))
    objects = sorted({info.key for root in roots for info in store.list(root)})
    numbers = [int(v["version"]) for v in doc.get("versions") or []]
    legacy = [k for v in doc.get("versions") or [] for k in _version_keys(store, doc, v)]
    return Removal(
        doc, numbers, sorted(set(objects) | set(legacy)), whole=True, used_by=_used_by(catalog, doc, numbers)
    )


def erase(store: ObjectStore, removal: Removal) -> int:
    """Remove the plan's stored objects; how many there were."""
    removed = 0
    for key in removal.objects:
        removed += int(store.delete(key))
    return removed


def record(catalog: Catalog, removal: Removal, *, when: datetime, by: str) -> None:
    """Write the removal into the record (after `erase`): the versions move to deletedVersions;
    a whole record is marked deleted, its outputs not kept."""
    uid = removal.doc["_id"]

    def change(current: dict[str, Any] | None) -> dict[str, Any] | None:
        if current is None:
            return None
        if removal.whole:
            return marked_deleted(current, at=when, policy="Delete", outputs_kept=False, by=by)
        present = {int(v["version"]) for v in upgrade(current).get("versions") or []}
        gone = [n for n in removal.versions if n in present]
        return without_versions(current, gone, at=when, by=by) if gone else None

    catalog.modify(uid, change)


__all__ = ["NoSuchVersion", "Removal", "erase", "plan_prune", "plan_record", "plan_versions", "record"]
