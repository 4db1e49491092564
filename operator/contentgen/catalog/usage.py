"""Per-asset usage (issue 38): downloads, last access, storage and its monthly cost, and where the
asset was used (its lineage's consumers: the image generations and evaluations made with a LoRA's
versions, the collections that hold it). Counted in sharing.Usage; put together here."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from .base import Catalog
from .migrate import upgrade
from .queries import BYTES_PER_GB, MAX_LIMIT, Filters, OwnerScope, Page, Sort
from .records import RecordModel
from .sharing import Collections, Usage


class VersionUsage(RecordModel):
    version: int
    bytes: int = Field(description="What its stored objects take.")
    downloads: int = 0


class Consumer(RecordModel):
    """A record made with the asset (an image generation with a LoRA version, a LoraEvaluation of
    it)."""

    id: str
    kind: str
    name: str
    namespace: str
    owner: str
    status: str
    versions: list[int] = Field(default=[], description="The asset's versions it used.")
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
        default=[], description="What was made with it that the caller may see (newest first, at most 500)."
    )
    used_in_total: int = Field(
        default=0, description="How many records the caller may see were made with it."
    )
    used_by_other_owners: int = Field(
        default=0,
        description="For its owner: how many records of other owners (a shared LoRA's users) used it.",
    )
    collections: list[CollectionRef] = Field(default=[], description="The caller's collections that hold it.")


def _version_bytes(version: dict[str, Any]) -> int:
    return sum(int(a.get("sizeBytes") or 0) for a in version.get("artifacts") or [])


def _consumer(doc: dict[str, Any], uid: str) -> Consumer:
    doc = upgrade(doc)
    used: set[int] = set()
    for version in doc.get("versions") or []:
        for lora in version.get("loras") or []:
            if lora.get("uid") == uid:
                used.add(int(lora.get("version") or 0))
        lora = version.get("lora") or {}
        if lora.get("uid") == uid:
            used.add(int(lora.get("version") or 0))
    return Consumer(
        id=str(doc["_id"]),
        kind=str(doc.get("kind") or ""),
        name=str(doc.get("name") or ""),
        namespace=str(doc.get("namespace") or ""),
        owner=str(doc.get("owner") or ""),
        status=str(doc.get("status") or ""),
        versions=sorted(used),
        created_at=str(doc.get("createdAt") or ""),
    )


def usage_of(
    catalog: Catalog,
    doc: dict[str, Any],
    scope: OwnerScope,
    price_per_gb_month: float,
    *,
    owner_view: bool,
    owners: tuple[str, ...] = (),
) -> AssetUsage:
    """The usage of the record `doc` as a caller of `scope` sees it (None: an admin, everyone's);
    `owner_view`: the caller acts for its owner (it then learns how often others used it)."""
    doc = upgrade(doc)
    uid = str(doc["_id"])
    counted = Usage(catalog).of(uid)
    by_version = {str(k): int(v) for k, v in (counted.get("byVersion") or {}).items()}
    total = int(doc.get("totalBytes") or 0)
    out = AssetUsage(
        id=uid,
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
    if doc.get("kind") == "LoraTraining":
        made = catalog.find(
            Filters(owner=scope, type="image-generation", lora=uid),
            Sort("createdAt", descending=True),
            Page(MAX_LIMIT),
        )
        evaluated = catalog.find_raw(
            {
                "lora.uid": uid,
                "status": {"$ne": "Deleted"},
                **({} if scope is None else {"owner": _in(scope)}),
            },
            limit=MAX_LIMIT,
        )
        out.used_in = [_consumer(d, uid) for d in made.docs] + [_consumer(d, uid) for d in evaluated]
        out.used_in_total = made.total + len(evaluated)
        if owner_view and scope is not None:
            others = catalog.find_raw(
                {"loraUids": uid, "owner": {"$nin": list(_in(scope)["$in"])}, "status": {"$ne": "Deleted"}},
                {"_id": 1},
                limit=10_000,
            )
            out.used_by_other_owners = len(others)
    if owners:
        out.collections = [
            CollectionRef(id=str(c["_id"]), name=str(c.get("name") or ""), owner=str(c.get("owner") or ""))
            for c in Collections(catalog).visible(owners)
            if any(m.get("id") == uid for m in c.get("members") or [])
        ]
    return out


def _in(scope: str | tuple[str, ...]) -> dict[str, list[str]]:
    return {"$in": [scope] if isinstance(scope, str) else sorted(scope)}
