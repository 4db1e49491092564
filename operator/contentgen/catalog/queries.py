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
from .document import CANCELLED, DELETED, INTERRUPTED, RUN_PHASES, record_status
from .migrate import upgrade
from .records import Spend, Stats

STATUSES = ("Pending", "Running", "Succeeded", "Failed", INTERRUPTED, DELETED)
TERMINAL_STATUSES = frozenset({"Succeeded", "Failed", INTERRUPTED, DELETED})
TERMINAL_RUN_PHASES = frozenset({"Succeeded", "Failed", CANCELLED, INTERRUPTED})
SORT_FIELDS = ("createdAt", "updatedAt", "completedAt", "name", "status", "type", "owner", "totalBytes")
MAX_LIMIT = 500
DEFAULT_LIMIT = 50
MAX_QUERY_WORDS = 20
BYTES_PER_GB = 1024**3
DEFAULT_PRICE_PER_GB_MONTH = 0.023
# Lists leave out what only `get` needs; transcriptText alone can be 20 000 characters a version.
LIST_EXCLUDES = (
    "spec",
    "searchText",
    "transcriptText",
    "versions.spec",
    "versions.transcriptText",
    "versions.transcriptTimes",
)


def type_help() -> str:
    """FILTER_HELP's type as the kinds are registered now (a kind registered after import too)."""
    return "only this kind of asset: " + ", ".join(CATALOG_TYPES)


# The filter vocabulary, shared by `contentgen assets` (--NAME) and the HTTP API (?NAME=): one
# name and one meaning for each (tests check that both offer exactly these). Where it is read
# after the kinds are registered (a parser, the OpenAPI document), type is type_help()'s.
FILTER_HELP = {
    "type": type_help(),
    "owner": "only this owner's records",
    "status": "only records in this state (default: all but Deleted): Succeeded = it has a usable "
    "version, whatever its latest run did; Pending, Running, Failed, Interrupted = it has none yet and "
    "its latest run is in that phase; Deleted = its resource is gone and none of its outputs are kept",
    "run": "only records whose latest run is in this phase: "
    + ", ".join(RUN_PHASES)
    + " (Cancelled: its resource was deleted before it ended; Interrupted: a laptop's run stopped by "
    "Ctrl-C, which the same `contentgen run` resumes)",
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


# Whose records: one owner, any of several (an identity that acts for more than one), or None for
# everyone's (admins, the CLI).
OwnerScope = str | tuple[str, ...] | None


def owner_condition(owner: str | tuple[str, ...]) -> Any:
    """The `owner` field's condition for a scope that is not None."""
    return owner if isinstance(owner, str) else {"$in": sorted(owner)}


@dataclass(frozen=True)
class Filters:
    """What to match. Without `status`, deleted records are left out (their assets are gone)."""

    owner: OwnerScope = None
    type: str | None = None
    status: str | None = None
    since: datetime | None = None  # createdAt >= since
    until: datetime | None = None  # createdAt < until
    model: str | None = None  # ImageGeneration's spec.model
    lora: str | None = None  # images made with this LoRA uid, or "uid/vN"
    tag: str | None = None
    run: str | None = None  # the latest run's phase


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


def status_query(status: str | None) -> dict[str, Any]:
    """The records in a state, in both shapes: before versions (migrate.py) `status` was the latest
    run's phase, so a LoraTraining with versions whose retraining failed said Failed."""
    if status is None:
        return {"status": {"$ne": DELETED}}
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}: use one of {', '.join(STATUSES)}")
    # what makes a version usable: a number, or (before versions) images or a transcript
    usable: list[dict[str, Any]] = [
        {"latestVersion": {"$gte": 1}},
        {"schema": {"$exists": False}, "images.0": {"$exists": True}},
        {"schema": {"$exists": False}, "transcript.textUri": {"$exists": True}},
    ]
    if status == "Succeeded":
        return {"$or": [{"status": "Succeeded"}, *({"status": {"$ne": DELETED}, **u} for u in usable)]}
    if status == DELETED:
        return {"status": DELETED}
    return {"status": status, "$nor": usable}


def run_query(phase: str) -> dict[str, Any]:
    """The records whose latest run is in `phase` (before versions: `status` held it)."""
    if phase not in RUN_PHASES:
        raise ValueError(f"unknown run phase {phase!r}: use one of {', '.join(RUN_PHASES)}")
    return {"$or": [{"latestRun.phase": phase}, {"latestRun": {"$exists": False}, "status": phase}]}


def build_filter(filters: Filters) -> dict[str, Any]:
    query: dict[str, Any] = {}
    if filters.owner is not None:
        query["owner"] = owner_condition(filters.owner)
    if filters.type is not None:
        if filters.type not in CATALOG_TYPES:
            raise ValueError(f"unknown type {filters.type!r}: use one of {', '.join(CATALOG_TYPES)}")
        query["type"] = filters.type
    parts = [status_query(filters.status)]
    if filters.run is not None:
        parts.append(run_query(filters.run))
    created: dict[str, datetime] = {}
    if filters.since is not None:
        created["$gte"] = filters.since
    if filters.until is not None:
        created["$lt"] = filters.until
    if created:
        query["createdAt"] = created
    if filters.model is not None:  # any version's model (before versions: the one `model`)
        parts.append(
            {"$or": [{"models": filters.model}, {"models": {"$exists": False}, "model": filters.model}]}
        )
    if filters.lora is not None:
        field = "loraVersions" if re.fullmatch(r".+/v\d+", filters.lora) else "loraUids"
        query[field] = filters.lora
    if filters.tag is not None:
        query["tags"] = filters.tag
    if len(parts) == 1:
        query.update(parts[0])
    else:
        query["$and"] = parts
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
    words = [{"searchText": {"$regex": re.escape(word), "$options": "i"}} for word in search_words(text)]
    query["$and"] = [*query.get("$and", []), *words]
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


def _scope(filters: Filters) -> dict[str, Any]:
    query: dict[str, Any] = {}
    if filters.owner is not None:
        query["owner"] = owner_condition(filters.owner)
    if filters.type is not None:
        query["type"] = filters.type
    return query


def last_change(collection: Any, filters: Filters) -> datetime | None:
    newest = collection.find(to_storage(_scope(filters)), {"updatedAt": 1}).sort([("updatedAt", -1)]).limit(1)
    found = [from_storage(doc).get("updatedAt") for doc in newest]
    return found[0] if found else None


def changed_since(
    collection: Any, filters: Filters, since: datetime | None, limit: int
) -> list[dict[str, Any]]:
    """Documents of `filters`' owner and type, deleted ones too, written at or after `since`
    (every one when None), oldest write first."""
    query = _scope(filters)
    if since is not None:
        query["updatedAt"] = {"$gte": since}
    projection = dict.fromkeys(LIST_EXCLUDES, 0)
    cursor = collection.find(to_storage(query), projection).sort([("updatedAt", 1), ("_id", 1)]).limit(limit)
    return [from_storage(doc) for doc in cursor]


def fold_stats(rows: Any, owner: OwnerScope, price_per_gb_month: float) -> Stats:
    """Usage from stored documents (any shape) of {type, status, latestVersion, versions.version,
    totalBytes, ...}; the caller leaves deleted records out."""
    by_type = dict.fromkeys(CATALOG_TYPES, 0)
    by_status = {s: 0 for s in STATUSES if s != DELETED}
    versions_by_type = dict.fromkeys(CATALOG_TYPES, 0)
    total_jobs = total_bytes = 0
    for row in rows:
        doc = upgrade(row)
        usable = len(doc.get("versions") or [])
        status = record_status(usable, (doc.get("latestRun") or {}).get("phase", ""), doc.get("deleted"))
        kind = str(doc.get("type", ""))
        total_jobs += 1
        by_type[kind] = by_type.get(kind, 0) + 1
        by_status[status] = by_status.get(status, 0) + 1
        versions_by_type[kind] = versions_by_type.get(kind, 0) + usable
        total_bytes += int(doc.get("totalBytes") or 0)
    gigabytes = total_bytes / BYTES_PER_GB
    return Stats(
        owner=owner if isinstance(owner, str) else None,
        owners=[] if owner is None else [owner] if isinstance(owner, str) else sorted(owner),
        total_jobs=total_jobs,
        by_type=by_type,
        by_status=by_status,
        total_versions=sum(versions_by_type.values()),
        versions_by_type=versions_by_type,
        total_bytes=total_bytes,
        total_gb=round(gigabytes, 6),
        price_per_gb_month=price_per_gb_month,
        estimated_monthly_cost=round(gigabytes * price_per_gb_month, 6),
    )


def fold_spend(rows: Any) -> Spend:
    """Spend from rows of {owner, type, cost: {byMonth}, evaluationCost: {byMonth}}, deleted
    records included."""
    by_owner: dict[str, float] = {}
    by_type: dict[str, float] = {}
    by_month: dict[str, float] = {}
    for row in rows:
        months = ((row.get("cost") or {}).get("byMonth")) or {}
        evaluations = ((row.get("evaluationCost") or {}).get("byMonth")) or {}
        for month, usd in [*months.items(), *evaluations.items()]:
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


def stats(collection: Any, owner: OwnerScope, price_per_gb_month: float) -> Stats:
    if price_per_gb_month < 0:
        raise ValueError(f"the price per GB-month must be 0 or more, got {price_per_gb_month}")
    query: dict[str, Any] = {"status": {"$ne": DELETED}}
    if owner is not None:
        query["owner"] = owner_condition(owner)
    fields = ("schema", "kind", "type", "status", "totalBytes", "latestVersion", "latestRun.phase", "deleted")
    projection = {**dict.fromkeys(fields, 1), "versions.version": 1, "images.uri": 1, "transcript.textUri": 1}
    rows = collection.find(query, projection)
    result = fold_stats(rows, owner, price_per_gb_month)
    scope = {"owner": owner_condition(owner)} if owner is not None else {}
    spent = collection.find(scope, {"owner": 1, "type": 1, "cost": 1, "evaluationCost": 1})
    return result.model_copy(update={"spend": fold_spend(spent)})
