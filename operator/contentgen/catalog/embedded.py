"""The embedded catalog for laptops: montydb (the pymongo API, no server) in a local directory.

It uses montydb's SQLite engine, which keeps every write on disk at once, so `contentgen run`
and `contentgen assets` in another process see the same data. montydb's SQLite engine shares one
connection attribute between threads, so access is serialised with a lock (the API server calls
from a thread pool). JSON encoding rather than BSON keeps pymongo out of the local install.
"""

from __future__ import annotations

import threading
from pathlib import Path

from .base import Catalog
from .document import COLLECTION

DATABASE = "contentgen"
_STORAGE_MARKER = ".monty.storage"  # montydb's record of a repository's engine


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

    def __repr__(self) -> str:
        return f"EmbeddedCatalog({self.directory})"
