"""Per-asset usage (issue 38): downloads, last access, storage and its monthly cost, and where the
asset was used: its lineage's consumers (lineage.py, read the other way), and the collections that
hold it. Counted here (Usage); put together here.

    LoRA              image generations made with one of its versions (loras), its LoraEvaluations
                      (lora), videos animating a picture made with one (image.loras); no video is
                      made with one directly (no video model loads a FLUX.1 LoRA)
    image generation  video generations animating one of its pictures (image, from an imageRef)

(A LoRA: a kind whose versions are LoRAs; an image generation: one whose pictures videos animate;
each says so in its module of catalog/kinds/: makes_loras, makes_pictures.)

A consumer is listed only where the caller may see it (its own, or one its owner shared with the
caller, as lineage follows a shared LoRA); the others are counted, for the asset's owner, never
named.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from contentgen.api.reading import Count, Reading
from contentgen.api.sharing import grants_of, may_see

from .base import Catalog
from .collections import Collections
from .common_record import RecordModel, RecordRef
from .dates import iso_z
from .document import DELETED
from .kinds import CATALOG_KINDS
from .migrate import upgrade
from .queries import BYTES_PER_GB, MAX_LIMIT, OwnerScope

# How many consumers are looked at (and counted) at most.
MAX_CONSUMERS = 10_000
# What is read of each candidate to decide whether the caller may see it and to order them.
_LIGHT = {"_id": 1, "owner": 1, "shares": 1, "createdAt": 1}
RELATIONS = {
    "lora": "made with one of its versions (a LoRA's image generations)",
    "evaluation": "a LoraEvaluation of one of its versions",
    "picture": "a video animating a picture made with one of its versions",
    "image": "a video animating one of its pictures (an image generation's)",
}


class VersionUsage(RecordModel):
    version: int
    bytes: int = Field(description="What its stored objects take.")
    downloads: int = 0


class Consumer(RecordRef):
    """A record made with the asset (an image generation with a LoRA version, a LoraEvaluation
    of it, a video animating a picture made with it or its picture)."""

    versions: list[int] = Field(default=[], description="The asset's versions it used.")
    relations: list[str] = Field(
        default=[],
        description="How it used them: lora (made with it), evaluation (evaluated it), picture "
        "(animates a picture made with it), image (animates its picture).",
    )
    created_at: str = ""


class CollectionRef(RecordModel):
    id: str
    name: str
    owner: str


class AssetUsage(RecordModel):
    id: str
    kind: str
    name: str
    namespace: str
    owner: str
    downloads: int = Field(
        default=0, description="Downloads: the API's download and content routes, `contentgen assets url`."
    )
    last_accessed_at: str | None = Field(default=None, description="The last download or view of its record.")
    last_downloaded_at: str | None = None
    total_bytes: int = Field(default=0, description="What its stored objects take, every version.")
    price_per_gb_month: float = Field(
        description="The storage price the cost is estimated with (USD per GiB-month)."
    )
    monthly_storage_usd: float = Field(description="totalBytes in GiB times the price per GiB-month.")
    versions: list[VersionUsage] = []
    used_in: list[Consumer] = Field(
        default=[],
        description="What used it that the caller may see: its own records and those shared with it "
        "(newest first, at most 500).",
    )
    used_in_total: int = Field(default=0, description="How many records the caller may see used it.")
    used_by_other_owners: int = Field(
        default=0,
        description="For its owner: how many records of other owners used it (a shared LoRA's users; "
        "listed in usedIn only where shared with the caller).",
    )
    collections: list[CollectionRef] = Field(default=[], description="The caller's collections that hold it.")


def _version_bytes(version: dict[str, Any]) -> int:
    return sum(int(a.get("sizeBytes") or 0) for a in version.get("artifacts") or [])


class _Used(Reading):
    """An asset a version names: a LoRA it used, evaluated or whose picture it animates."""

    uid: str | None = None
    version: Count = 0


class _Picture(_Used):
    loras: tuple[_Used, ...] = ()  # the LoRAs the picture was made with


class _Version(Reading):
    """What a version of a record used (catalog/versions.py)."""

    loras: tuple[_Used, ...] = ()  # an ImageGeneration's or a VideoGeneration's
    lora: _Used = _Used()  # a LoraEvaluation's
    image: _Picture = _Picture()  # a VideoGeneration's picture


class _Record(Reading):
    versions: tuple[_Version, ...] = ()


def _uses(doc: dict[str, Any], uid: str) -> dict[str, set[int]]:
    """Which of the asset `uid`'s versions the record `doc` used, by relation (RELATIONS)."""
    used: dict[str, set[int]] = {}
    for version in _Record.of(doc).versions:
        named = {
            "lora": version.loras,
            "evaluation": (version.lora,),
            "image": (version.image,),
            "picture": version.image.loras,
        }
        for relation, assets in named.items():
            for asset in assets:
                if asset.uid == uid:
                    used.setdefault(relation, set()).add(asset.version)
    return used


def _consumer(doc: dict[str, Any], uid: str) -> Consumer:
    doc = upgrade(doc)
    used = _uses(doc, uid)
    return Consumer(
        id=str(doc["_id"]),
        kind=str(doc.get("kind") or ""),
        name=str(doc.get("name") or ""),
        namespace=str(doc.get("namespace") or ""),
        owner=str(doc.get("owner") or ""),
        status=str(doc.get("status") or ""),
        versions=sorted(set().union(*used.values())),
        relations=[r for r in RELATIONS if r in used],
        created_at=str(doc.get("createdAt") or ""),
    )


def consumers(catalog: Catalog, doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every record (any owner's, not deleted) that used the record `doc`, by id: its owner,
    shares and createdAt only, to decide who may see it."""
    uid = str(doc["_id"])
    declared = CATALOG_KINDS.get(str(doc.get("kind")))
    alive = {"status": {"$ne": DELETED}}
    found: dict[str, dict[str, Any]] = {}

    def add(query: dict[str, Any]) -> None:
        for d in catalog.find_raw({**query, **alive}, _LIGHT, limit=MAX_CONSUMERS):
            found.setdefault(str(d["_id"]), d)

    if declared is None:
        return found
    if declared.makes_loras:
        add({"loraUids": uid})  # image generations (document.summarize; a video's loras too)
        add({"lora.uid": uid})  # LoraEvaluations
        # videos animating a picture made with it: through the pictures' image generations (a
        # deleted one's too: the video was made), then the version of the picture each animates
        pictures = [
            made
            for maker in CATALOG_KINDS.values()
            if maker.makes_pictures
            for made in catalog.find_raw(
                {"kind": maker.kind, "loraUids": uid}, {"_id": 1}, limit=MAX_CONSUMERS
            )
        ]
        if pictures:
            for d in catalog.find_raw(
                {"imageUids": {"$in": [str(p["_id"]) for p in pictures]}, **alive},
                {**_LIGHT, "versions": 1},
                limit=MAX_CONSUMERS,
            ):
                if "picture" in _uses(d, uid):
                    found.setdefault(str(d["_id"]), {k: d.get(k) for k in _LIGHT if k in d})
    elif declared.makes_pictures:
        add({"imageUids": uid})  # video generations animating one of its pictures
    found.pop(uid, None)
    return found


def usage_of(
    catalog: Catalog,
    doc: dict[str, Any],
    scope: OwnerScope,
    price_per_gb_month: float,
    *,
    owner_view: bool,
    owners: tuple[str, ...] = (),
    groups: tuple[str, ...] = (),
) -> AssetUsage:
    """The usage of the record `doc` as a caller of `scope` sees it (None: an admin, everyone's),
    in `groups` (a record shared with one of them is seen); `owner_view`: the caller acts for its
    owner (it then learns how many records of other owners used it)."""
    doc = upgrade(doc)
    uid = str(doc["_id"])
    out = _counted(doc, Usage(catalog).of(uid), price_per_gb_month)
    found = consumers(catalog, doc)
    mine = None if scope is None else ((scope,) if isinstance(scope, str) else tuple(scope))
    visible = [
        d
        for d in found.values()
        if mine is None or may_see(grants_of(d), str(d.get("owner") or ""), mine, groups)
    ]
    if mine is not None and owner_view:
        out.used_by_other_owners = sum(1 for d in found.values() if d.get("owner") not in mine)
    visible.sort(key=lambda d: str(d.get("createdAt") or ""), reverse=True)
    shown = [str(d["_id"]) for d in visible[:MAX_LIMIT]]
    full = {str(d["_id"]): d for d in catalog.find_raw({"_id": {"$in": shown}})} if shown else {}
    out.used_in = [_consumer(full[i], uid) for i in shown if i in full]
    out.used_in_total = len(visible)
    if owners:
        out.collections = _collections_with(catalog, uid, owners)
    return out


def _counted(doc: dict[str, Any], counted: dict[str, Any], price_per_gb_month: float) -> AssetUsage:
    """The record's usage as counted (downloads, last access, bytes and their monthly cost), by
    version too; whose records used it is added after."""
    by_version = {str(k): int(v) for k, v in (counted.get("byVersion") or {}).items()}
    total = int(doc.get("totalBytes") or 0)
    return AssetUsage(
        id=str(doc["_id"]),
        kind=str(doc.get("kind") or ""),
        name=str(doc.get("name") or ""),
        namespace=str(doc.get("namespace") or ""),
        owner=str(doc.get("owner") or ""),
        downloads=int(counted.get("downloads") or 0),
        last_accessed_at=counted.get("lastAccessedAt"),
        last_downloaded_at=counted.get("lastDownloadedAt"),
        total_bytes=total,
        price_per_gb_month=price_per_gb_month,
        monthly_storage_usd=round(total / BYTES_PER_GB * price_per_gb_month, 6),
        versions=[
            VersionUsage(
                version=int(v["version"]),
                bytes=_version_bytes(v),
                downloads=by_version.get(str(int(v["version"])), 0),
            )
            for v in doc.get("versions") or []
        ],
    )


def _collections_with(catalog: Catalog, uid: str, owners: tuple[str, ...]) -> list[CollectionRef]:
    """The collections `owners` see that hold the record `uid`."""
    return [
        CollectionRef(id=c.id, name=c.name, owner=c.owner)
        for c in Collections(catalog).visible(owners)
        if c.holds(uid)
    ]


# --- counting -------------------------------------------------------------------------------------
# One document per record: {_id, downloads, byVersion {N: count}, lastAccessedAt, lastDownloadedAt},
# counted with atomic increments (no read, no rev: a download never races the operator's writes of
# the record).

USAGE = "usage"


class Usage:
    """Downloads and last access per record, counted with atomic increments."""

    def __init__(self, catalog: Catalog) -> None:
        self.docs = catalog.sibling(USAGE)
        self.guard = catalog.guard

    def downloaded(self, uid: str, version: int, when: datetime) -> None:
        at = iso_z(when)
        with self.guard:
            self.docs.update_one(
                {"_id": uid},
                {
                    "$inc": {"downloads": 1, f"byVersion.{int(version)}": 1},
                    "$set": {"lastDownloadedAt": at, "lastAccessedAt": at},
                },
                upsert=True,
            )

    def accessed(self, uid: str, when: datetime) -> None:
        with self.guard:
            self.docs.update_one({"_id": uid}, {"$set": {"lastAccessedAt": iso_z(when)}}, upsert=True)

    def of(self, uid: str) -> dict[str, Any]:
        with self.guard:
            found = self.docs.find_one({"_id": uid})
        return dict(found) if found is not None else {"_id": uid}
