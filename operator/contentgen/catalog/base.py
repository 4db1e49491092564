"""The catalog interface: writes for the operator and local runs, reads for the CLI and the API.

Both backends hand it a pymongo-style collection, so everything here is shared; they differ
only in how they connect, and in that the embedded one serialises access (see embedded.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from typing import Any

from contentgen.errors import ContentgenError

from . import queries
from .dates import from_storage, to_storage
from .document import DELETED
from .queries import DEFAULT_SORT, FIRST_PAGE, Filters, Page, ResultPage, Sort
from .records import Stats

MIN_PREFIX = 4  # characters of an id that `resolve` accepts as a prefix


class CatalogUnavailable(ContentgenError):
    """The catalog cannot be reached (MongoDB down, refused, unreachable): the CLI exits 1, the API
    answers 503."""

    reason = "CatalogUnavailable"


class AmbiguousReference(ValueError):
    """A name or id prefix that matches more than one record."""


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

    def upsert(self, doc: dict[str, Any]) -> None:
        """Replace the document with _id == doc["_id"] (or insert it)."""
        with self._guard:
            self._collection.replace_one({"_id": doc["_id"]}, to_storage(doc), upsert=True)

    def mark_deleted(self, uid: str, when: datetime) -> bool:
        """Status Deleted and deletedAt; the record stays. False when there is no such record."""
        update = to_storage({"$set": {"status": DELETED, "deletedAt": when, "updatedAt": when}})
        with self._guard:
            result = self._collection.update_one({"_id": uid}, update)
        return bool(result.matched_count)

    def ensure_indexes(self) -> None:
        with self._guard:
            for keys, name in INDEXES:
                self._collection.create_index(keys, name=name)

    def close(self) -> None:
        self._close()

    # --- reads ------------------------------------------------------------------------------

    def get(self, uid: str, owner: str | None = None) -> dict[str, Any] | None:
        """The whole document; None when missing, or when `owner` is given and is not its owner."""
        query: dict[str, Any] = {"_id": uid}
        if owner is not None:
            query["owner"] = owner
        with self._guard:
            doc = self._collection.find_one(query)
        return from_storage(doc) if doc is not None else None

    def resolve(self, ref: str, owner: str | None = None, type: str | None = None) -> dict[str, Any] | None:
        """The record `ref` names: its id, a unique prefix of its id (at least 4 characters) or
        `namespace/name` (with `type` when several kinds share the name); deleted records
        included. None when nothing matches (or only another owner's); AmbiguousReference when
        several do."""
        ref = ref.strip()
        if not ref:
            raise ValueError("an empty id: give a record's id, a unique prefix of it, or namespace/name")
        exact = self.get(ref, owner)
        if exact is not None and (type is None or exact.get("type") == type):
            return exact
        query: dict[str, Any] = {} if owner is None else {"owner": owner}
        if type is not None:
            query["type"] = type
        if "/" in ref:
            namespace, _, name = ref.partition("/")
            query.update(namespace=namespace, name=name)
        elif len(ref) >= MIN_PREFIX:
            query["_id"] = {"$regex": "^" + re.escape(ref)}
        else:
            return None
        with self._guard:
            found = [from_storage(d) for d in self._collection.find(query).sort([("_id", 1)]).limit(11)]
        if len(found) > 1:
            shown = ", ".join(
                f"{d['_id']} ({d.get('type')} {d.get('namespace')}/{d.get('name')})" for d in found[:10]
            )
            count = str(len(found)) if len(found) <= 10 else "more than 10"
            hint = "give more of the id" if "/" not in ref else "give the id, or the type"
            raise AmbiguousReference(f"{ref!r} matches {count} records: {shown}; {hint}")
        return found[0] if found else None

    def find(self, filters: Filters, sort: Sort = DEFAULT_SORT, page: Page = FIRST_PAGE) -> ResultPage:
        with self._guard:
            return queries.find_page(self._collection, queries.build_filter(filters), sort, page)

    def search(
        self, text: str, filters: Filters, sort: Sort = DEFAULT_SORT, page: Page = FIRST_PAGE
    ) -> ResultPage:
        with self._guard:
            return queries.find_page(self._collection, queries.build_search(text, filters), sort, page)

    def stats(self, owner: str | None, price_per_gb_month: float) -> Stats:
        with self._guard:
            return queries.stats(self._collection, owner, price_per_gb_month)

    def ping(self) -> None:
        """Raise when the catalog cannot be read."""
        with self._guard:
            self._collection.find_one({}, {"_id": 1})
