"""The read side, written once over a pymongo-style collection (pymongo, mongomock, montydb).

Only find / count_documents / sort / skip / limit are used (montydb has no aggregate), and the
query documents are built by pure functions, so every backend answers the same way.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from contentgen.api import CATALOG_TYPES

from .dates import from_storage, to_storage
from .document import DELETED
from .records import Spend, Stats

STATUSES = ("Pending", "Running", "Succeeded", "Failed", DELETED)
TERMINAL_STATUSES = frozenset({"Succeeded", "Failed", DELETED})
SORT_FIELDS = ("createdAt", "updatedAt", "completedAt", "name", "status", "type", "owner", "totalBytes")
MAX_LIMIT = 500
DEFAULT_LIMIT = 50
MAX_QUERY_WORDS = 20
BYTES_PER_GB = 1024**3
DEFAULT_PRICE_PER_GB_MONTH = 0.023
# Lists leave out what only `get` needs; transcriptText alone can be 20 000 characters.
LIST_EXCLUDES = ("spec", "searchText", "transcriptText")


# The filter vocabulary, shared by `contentgen assets` (--NAME) and the HTTP API (?NAME=): one
# name and one meaning for each (tests check that both offer exactly these).
FILTER_HELP = {
    "type": "only this kind of asset: " + ", ".join(CATALOG_TYPES),
    "owner": "only this owner's records",
    "status": "only this status (default: all but Deleted); for LoRAs, Succeeded means a version is "
    "usable, even when a later retraining failed",
    "since": "created at or after: an ISO date or datetime (UTC)",
    "until": "created before; a date includes that whole day",
    "model": "only image generations with this model (flux-dev, flux-lora, ...)",
    "lora": "only image generations made with this LoRA: its id, or ID/vN for one version",
    "tag": "only records with this tag",
}
SORT_HELP = {
    "sort": "sort by: " + ", ".join(SORT_FIELDS),
    "order": "asc or desc (default desc)",
    "limit": f"at most this many, 1 to {MAX_LIMIT} (default {DEFAULT_LIMIT})",
    "offset": "skip this many first",
}


@dataclass(frozen=True)
class Filters:
    """What to match. Without `status`, deleted records are left out (their assets are gone)."""

    owner: str | None = None
    type: str | None = None
    status: str | None = None
    since: datetime | None = None  # createdAt >= since
    until: datetime | None = None  # createdAt < until
    model: str | None = None  # ImageGeneration's spec.model
    lora: str | None = None  # images made with this LoRA uid, or "uid/vN"
    tag: str | None = None


@dataclass(frozen=True)
class Sort:
    field: str = "createdAt"
    descending: bool = True


@dataclass(frozen=True)
class Page:
    limit: int = DEFAULT_LIMIT
    offset: int = 0


DEFAULT_SORT = Sort()
FIRST_PAGE = Page()


@dataclass(frozen=True)
class ResultPage:
    total: int
    limit: int
    offset: int
    docs: list[dict[str, Any]]


def build_filter(filters: Filters) -> dict[str, Any]:
    query: dict[str, Any] = {}
    if filters.owner is not None:
        query["owner"] = filters.owner
    if filters.type is not None:
        if filters.type not in CATALOG_TYPES:
            raise ValueError(f"unknown type {filters.type!r}: use one of {', '.join(CATALOG_TYPES)}")
        query["type"] = filters.type
    if filters.status == "Succeeded" and filters.type in (None, "lora-training"):
        # A LoRA whose latest retraining failed still has its earlier versions to use.
        usable_lora = {"type": "lora-training", "latestVersion": {"$gte": 1}, "status": {"$ne": DELETED}}
        query["$or"] = [{"status": "Succeeded"}, usable_lora]
    elif filters.status is not None:
        if filters.status not in STATUSES:
            raise ValueError(f"unknown status {filters.status!r}: use one of {', '.join(STATUSES)}")
        query["status"] = filters.status
    else:
        query["status"] = {"$ne": DELETED}
    created: dict[str, datetime] = {}
    if filters.since is not None:
        created["$gte"] = filters.since
    if filters.until is not None:
        created["$lt"] = filters.until
    if created:
        query["createdAt"] = created
    if filters.model is not None:
        query["model"] = filters.model
    if filters.lora is not None:
        field = "loraVersions" if re.fullmatch(r".+/v\d+", filters.lora) else "loraUids"
        query[field] = filters.lora
    if filters.tag is not None:
        query["tags"] = filters.tag
    return query


def search_words(text: str) -> list[str]:
    words = text.lower().split()
    if not words:
        raise ValueError("the search query is empty")
    if len(words) > MAX_QUERY_WORDS:
        raise ValueError(f"the search query has {len(words)} words; at most {MAX_QUERY_WORDS}")
    return words


def build_search(text: str, filters: Filters) -> dict[str, Any]:
    """Every word must occur in searchText (case-insensitive, literally: no regex from users)."""
    query = build_filter(filters)
    query["$and"] = [
        {"searchText": {"$regex": re.escape(word), "$options": "i"}} for word in search_words(text)
    ]
    return query


def build_sort(sort: Sort) -> list[tuple[str, int]]:
    if sort.field not in SORT_FIELDS:
        raise ValueError(f"cannot sort by {sort.field!r}: use one of {', '.join(SORT_FIELDS)}")
    # _id breaks ties, so pages neither repeat nor skip records.
    return [(sort.field, -1 if sort.descending else 1), ("_id", 1)]


def check_page(page: Page) -> Page:
    if not 1 <= page.limit <= MAX_LIMIT:
        raise ValueError(f"limit must be between 1 and {MAX_LIMIT}, got {page.limit}")
    if page.offset < 0:
        raise ValueError(f"offset must be 0 or more, got {page.offset}")
    return page


def find_page(collection: Any, query: dict[str, Any], sort: Sort, page: Page) -> ResultPage:
    check_page(page)
    order = build_sort(sort)
    stored = to_storage(query)
    total = int(collection.count_documents(stored))
    # A fresh projection each time: mongomock adds keys to the one it is given.
    projection = dict.fromkeys(LIST_EXCLUDES, 0)
    cursor = collection.find(stored, projection).sort(order).skip(page.offset).limit(page.limit)
    return ResultPage(total, page.limit, page.offset, [from_storage(doc) for doc in cursor])


def fold_stats(rows: Any, owner: str | None, price_per_gb_month: float) -> Stats:
    """Usage from rows of {type, status, totalBytes}; the caller leaves deleted records out."""
    by_type = dict.fromkeys(CATALOG_TYPES, 0)
    by_status = {s: 0 for s in STATUSES if s != DELETED}
    total_jobs = total_bytes = 0
    for row in rows:
        total_jobs += 1
        by_type[row.get("type", "")] = by_type.get(row.get("type", ""), 0) + 1
        by_status[row.get("status", "")] = by_status.get(row.get("status", ""), 0) + 1
        total_bytes += int(row.get("totalBytes") or 0)
    gigabytes = total_bytes / BYTES_PER_GB
    return Stats(
        owner=owner,
        total_jobs=total_jobs,
        by_type=by_type,
        by_status=by_status,
        total_bytes=total_bytes,
        total_gb=round(gigabytes, 6),
        price_per_gb_month=price_per_gb_month,
        estimated_monthly_cost=round(gigabytes * price_per_gb_month, 6),
    )


def fold_spend(rows: Any) -> Spend:
    """Spend from rows of {owner, type, cost: {byMonth}}, deleted records included."""
    by_owner: dict[str, float] = {}
    by_type: dict[str, float] = {}
    by_month: dict[str, float] = {}
    for row in rows:
        months = ((row.get("cost") or {}).get("byMonth")) or {}
        for month, usd in months.items():
            amount = float(usd or 0.0)
            owner, kind = str(row.get("owner", "")), str(row.get("type", ""))
            by_owner[owner] = by_owner.get(owner, 0.0) + amount
            by_type[kind] = by_type.get(kind, 0.0) + amount
            by_month[month] = by_month.get(month, 0.0) + amount

    def rounded(values: dict[str, float]) -> dict[str, float]:
        return {k: round(v, 6) for k, v in sorted(values.items())}

    return Spend(
        total_usd=round(sum(by_month.values()), 6),
        by_owner=rounded(by_owner),
        by_type=rounded(by_type),
        by_month=rounded(by_month),
    )


def stats(collection: Any, owner: str | None, price_per_gb_month: float) -> Stats:
    if price_per_gb_month < 0:
        raise ValueError(f"the price per GB-month must be 0 or more, got {price_per_gb_month}")
    query: dict[str, Any] = {"status": {"$ne": DELETED}}
    if owner is not None:
        query["owner"] = owner
    rows = collection.find(query, {"type": 1, "status": 1, "totalBytes": 1})
    result = fold_stats(rows, owner, price_per_gb_month)
    spent = collection.find({"owner": owner} if owner is not None else {}, {"owner": 1, "type": 1, "cost": 1})
    return result.model_copy(update={"spend": fold_spend(spent)})
