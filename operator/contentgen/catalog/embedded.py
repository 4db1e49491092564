"""The embedded catalog for laptops: montydb (the pymongo API, no server) in a local directory.

It uses montydb's SQLite engine, which keeps every write on disk at once, so `contentgen run`
and `contentgen assets` in another process see the same data. montydb's SQLite engine shares one
connection attribute between threads, so access is serialised with a lock (the API server calls
from a thread pool). JSON encoding rather than BSON keeps pymongo out of the local install.

montydb reads and decodes every document for any query, so search keeps its own index beside the
store: an SQLite FTS5 file (search.sqlite, search.SearchIndex) written with every write, under
the same lock; a search reads only it.
"""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path
from typing import Any

from .base import Catalog, WriteConflict
from .dates import to_storage
from .document import COLLECTION
from .queries import Filters, Page, Sort
from .search import SearchIndex, SearchQuery, SearchResult

DATABASE = "contentgen"
_STORAGE_MARKER = ".monty.storage"  # montydb's record of a repository's engine
SEARCH_FILE = "search.sqlite"


def exists(directory: Path) -> bool:
    return (directory.expanduser() / _STORAGE_MARKER).is_file()


class EmbeddedCatalog(Catalog):
    def __init__(self, directory: Path) -> None:
        from montydb import MontyClient, set_storage

        self.directory = directory.expanduser().resolve()
        if not (self.directory / _STORAGE_MARKER).is_file():
            self.directory.mkdir(parents=True, exist_ok=True)
            set_storage(str(self.directory), storage="sqlite", use_bson=False)
        client = MontyClient(str(self.directory))
        super().__init__(client[DATABASE][COLLECTION], client.close, guard=threading.RLock())
        self._made: set[str] = set()
        self._make(COLLECTION)
        self.search_index = SearchIndex(self.directory / SEARCH_FILE)
        if self.search_index.needs_build:  # a catalog from before the index, or a new one
            with self._guard:
                self.search_index.rebuild(self._collection.find({}))

    def sibling(self, name: str) -> Any:
        with self._guard:
            self._make(name)
        return super().sibling(name)

    def _make(self, name: str) -> None:
        """Create a collection's SQLite file with its table before any read or delete: montydb
        makes the table on a collection's first insert only, and a delete (or an update) before
        that opens an empty file with no table, after which every write fails 'no such table'.
        A file left so by an earlier version gets its table here (CREATE ... IF NOT EXISTS, which
        two processes may run at once)."""
        if name in self._made:
            return
        from montydb.storage.sqlite import SQLITE_DB_EXT, SQLITE_RECORD_TABLE

        folder = self.directory / DATABASE
        try:
            folder.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(folder / f"{name}{SQLITE_DB_EXT}")
            try:
                with conn:
                    conn.execute(
                        f"CREATE TABLE IF NOT EXISTS [{SQLITE_RECORD_TABLE}]"
                        " (k text NOT NULL, v text NOT NULL, PRIMARY KEY(k))"
                    )
            finally:
                conn.close()
        except (OSError, sqlite3.OperationalError):  # a read-only catalog: reading needs no table
            return
        self._made.add(name)

    def upsert(self, doc: dict[str, Any]) -> None:
        with self._guard:
            self.search_index.begin(doc["_id"])
            super().upsert(doc)
            self.search_index.put(to_storage(doc))

    def write(self, doc: dict[str, Any], expected_rev: int | None, exists: bool) -> None:
        with self._guard:
            self.search_index.begin(doc["_id"])
            try:
                super().write(doc, expected_rev, exists)
            except WriteConflict:  # nothing was written
                self.search_index.settle(doc["_id"])
                raise
            self.search_index.put(to_storage(doc))

    def _search(self, query: SearchQuery, filters: Filters, sort: Sort | None, page: Page) -> SearchResult:
        for uid in self.search_index.pending():  # writes a process did not finish
            self.search_index.refresh(uid, self._collection.find_one({"_id": uid}))
        return self.search_index.search(query, filters, sort, page)

    def close(self) -> None:
        self.search_index.close()
        super().close()

    def __repr__(self) -> str:
        return f"EmbeddedCatalog({self.directory})"
