"""The catalog interface: writes for the operator and local runs, reads for the CLI and the API.

Both backends hand it a pymongo-style collection, so everything here is shared; they differ
only in how they connect, and in that the embedded one serialises access (see embedded.py).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import Any

from contentgen.errors import ContentgenError

from . import queries
from . import search as searching
from .dates import from_storage, to_storage
from .document import marked_deleted
from .migrate import upgrade
from .queries import DEFAULT_SORT, FIRST_PAGE, Filters, OwnerScope, Page, ResultPage, Sort, owner_condition
from .records import Stats
from .search import SearchQuery, SearchResult

WRITE_ATTEMPTS = 8  # conditional writes that lose a race read again and retry


class CatalogUnavailable(ContentgenError):
    """The catalog cannot be reached (MongoDB down, refused, unreachable): the CLI exits 1, the API
    answers 503."""

    reason = "CatalogUnavailable"


class AmbiguousReference(ValueError):
    """A name or id prefix that matches more than one record."""


class WriteConflict(Exception):
    """Another writer changed the document between our read and our write."""


# (keys, name): what list, filters and search use. Every query names an owner unless an admin
# asks for everyone.
INDEXES: tuple[tuple[list[tuple[str, int]], str], ...] = (
    ([("owner", 1), ("type", 1), ("createdAt", -1)], "owner_type_createdAt"),
    ([("owner", 1), ("status", 1), ("createdAt", -1)], "owner_status_createdAt"),
    # Search matches unanchored regexes, which MongoDB answers by scanning index keys (not
    # documents) within the owner's range. Long keys need MongoDB 4.2+.
    ([("owner", 1), ("searchText", 1)], "owner_searchText"),
    # Lookups by namespace/name, and every image made with a LoRA (lineage).
    ([("owner", 1), ("namespace", 1), ("name", 1)], "owner_namespace_name"),
    ([("owner", 1), ("loraUids", 1)], "owner_loraUids"),
    # The list stream: what changed since.
    ([("owner", 1), ("updatedAt", -1)], "owner_updatedAt"),
    # The run filter, and the operator's look for records of resources that are gone.
    ([("owner", 1), ("latestRun.phase", 1), ("createdAt", -1)], "owner_run_createdAt"),
    ([("namespace", 1), ("deletedAt", 1)], "namespace_deletedAt"),
    # What other owners shared with an owner or a group (sharing.shared_with, api/sharing.py).
    ([("shares.to", 1), ("createdAt", -1)], "shares_to_createdAt"),
)


class Catalog:
    def __init__(
        self,
        collection: Any,
        close: Callable[[], None],
        guard: AbstractContextManager[Any] | None = None,
    ) -> None:
        self._collection = collection
        self._close = close
        self._guard: AbstractContextManager[Any] = guard if guard is not None else nullcontext()

    # --- writes -----------------------------------------------------------------------------
    # Every product write is conditional on the document's `rev` (read, change, write if nobody
    # wrote in between, else read again): the operator, `contentgen run`, `assets prune` and the
    # API never lose each other's changes.

    def upsert(self, doc: dict[str, Any]) -> None:
        """Replace the document with _id == doc["_id"] (or insert it), unconditionally (tests,
        imports)."""
        with self._guard:
            self._collection.replace_one({"_id": doc["_id"]}, to_storage(doc), upsert=True)

    def write(self, doc: dict[str, Any], expected_rev: int | None, exists: bool) -> None:
        """Store `doc` if the stored document is still at `expected_rev` (None: written before
        revs), or, when `exists` is False, if there is still none; WriteConflict otherwise."""
        stored = to_storage(doc)
        with self._guard:
            if not exists:
                try:
                    self._collection.insert_one(stored)
                except Exception as exc:
                    if "DuplicateKey" in type(exc).__name__:
                        raise WriteConflict(doc["_id"]) from None
                    raise
                return
            result = self._collection.replace_one({"_id": doc["_id"], "rev": expected_rev}, stored)
        if not result.matched_count:
            raise WriteConflict(doc["_id"])

    def modify(
        self, uid: str, change: Callable[[dict[str, Any] | None], dict[str, Any] | None]
    ) -> dict[str, Any] | None:
        """Read the document (as stored, None when missing), let `change` make the new one (None:
        nothing to write) and write it unless another writer came first; then read and try again.
        Returns what was written (or the unchanged document)."""
        for _ in range(WRITE_ATTEMPTS):
            current = self.get(uid)
            new = change(current)
            if new is None:
                return current
            expected = current.get("rev") if current is not None else None
            try:
                self.write(new, expected, exists=current is not None)
            except WriteConflict:
                continue
            return new
        raise WriteConflict(f"{uid}: {WRITE_ATTEMPTS} writers came first; try again")

    def mark_deleted(
        self, uid: str, when: datetime, *, policy: str = "Delete", outputs_kept: bool = False, by: str = ""
    ) -> bool:
        """Mark the record's resource gone (see document.marked_deleted); False when there is no
        such record."""

        def change(current: dict[str, Any] | None) -> dict[str, Any] | None:
            if current is None:
                return None
            return marked_deleted(current, at=when, policy=policy, outputs_kept=outputs_kept, by=by)

        return self.modify(uid, change) is not None

    def ensure_indexes(self) -> None:
        with self._guard:
            for keys, name in INDEXES:
                self._collection.create_index(keys, name=name)
            # collections (collections.py): an owner's by name, and those shared with a grantee
            collections = self._collection.database["collections"]
            collections.create_index([("owner", 1), ("name", 1)], name="owner_name")
            collections.create_index([("shares.to", 1)], name="shares_to")

    def close(self) -> None:
        self._close()

    @property
    def guard(self) -> AbstractContextManager[Any]:
        """What every access to the database goes through (the embedded catalog's lock)."""
        return self._guard

    def sibling(self, name: str) -> Any:
        """Another collection of the catalog's database (webhook deliveries: deliveries.py);
        accessed under `guard`."""
        return self._collection.database[name]

    # --- reads ------------------------------------------------------------------------------

    def get(self, uid: str, owner: OwnerScope = None) -> dict[str, Any] | None:
        """The whole document as stored (any schema); None when missing, or when `owner` is given
        and is not (or does not hold) its owner."""
        query: dict[str, Any] = {"_id": uid}
        if owner is not None:
            query["owner"] = owner_condition(owner)
        with self._guard:
            doc = self._collection.find_one(query)
        return from_storage(doc) if doc is not None else None

    def record(self, uid: str, owner: OwnerScope = None) -> dict[str, Any] | None:
        """`get`, in the current shape (migrate.upgrade)."""
        doc = self.get(uid, owner)
        return upgrade(doc) if doc is not None else None

    def find_raw(
        self, query: dict[str, Any], projection: dict[str, int] | None = None, limit: int = 0
    ) -> list[dict[str, Any]]:
        """Documents matching a query document (names.py and the operator's safety net)."""
        with self._guard:
            cursor = self._collection.find(to_storage(query), projection).sort([("_id", 1)])
            if limit:
                cursor = cursor.limit(limit)
            return [from_storage(d) for d in cursor]

    def find(self, filters: Filters, sort: Sort = DEFAULT_SORT, page: Page = FIRST_PAGE) -> ResultPage:
        with self._guard:
            return queries.find_page(self._collection, queries.build_filter(filters), sort, page)

    def search(
        self, text: str, filters: Filters, sort: Sort | None = None, page: Page = FIRST_PAGE
    ) -> SearchResult:
        """Records with every word and "phrase" of `text`, best first (sort None) or in `sort`'s
        order, with their hits (search.py); the engine is the backend's (_search)."""
        query = searching.parse(text)
        if not query.terms:  # nothing a word is made of (".*"): nothing matches
            queries.check_page(page)
            return SearchResult(0, page.limit, page.offset, [])
        with self._guard:
            return self._search(query, filters, sort, page)

    def _search(self, query: SearchQuery, filters: Filters, sort: Sort | None, page: Page) -> SearchResult:
        return searching.scan_search(self._collection, query, filters, sort, page)

    def changed_since(self, filters: Filters, since: datetime | None, limit: int) -> list[dict[str, Any]]:
        """Records (every status, deleted ones too) written at or after `since`, oldest write first."""
        with self._guard:
            return queries.changed_since(self._collection, filters, since, limit)

    def last_change(self, filters: Filters) -> datetime | None:
        """When the newest of the records (of `filters`' owner and type) was written."""
        with self._guard:
            return queries.last_change(self._collection, filters)

    def stats(self, owner: OwnerScope, price_per_gb_month: float) -> Stats:
        with self._guard:
            return queries.stats(self._collection, owner, price_per_gb_month)

    def ping(self) -> None:
        """Raise when the catalog cannot be read."""
        with self._guard:
            self._collection.find_one({}, {"_id": 1})
