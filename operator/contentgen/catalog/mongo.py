"""MongoDB through pymongo: the catalog in the cluster (URI from a Secret)."""

from __future__ import annotations

from typing import Any

from .base import Catalog
from .document import COLLECTION

DEFAULT_DATABASE = "contentgen"


class MongoCatalog(Catalog):
    """`client` is a pymongo.MongoClient (or mongomock's); the database is the URI's, else contentgen."""

    def __init__(self, client: Any, database: str | None = None) -> None:
        db = client.get_default_database(DEFAULT_DATABASE) if database is None else client[database]
        super().__init__(db[COLLECTION], client.close)
        self.client = client

    @classmethod
    def connect(cls, url: str) -> MongoCatalog:
        import pymongo

        return cls(pymongo.MongoClient(url, tz_aware=True, appname="contentgen"))
