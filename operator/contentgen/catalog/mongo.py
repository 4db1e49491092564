"""MongoDB through pymongo: the catalog in the cluster (URI from a Secret).

A MongoDB that is down, unreachable or refusing the credentials is reported within seconds as
CatalogUnavailable (pymongo would otherwise wait 30 s, then raise its own error): the CLI exits
1 with one line, the API answers 503.
"""

from __future__ import annotations

from typing import Any

from contentgen.redact import redact_url

from .base import Catalog, CatalogUnavailable
from .document import COLLECTION

DEFAULT_DATABASE = "contentgen"
# How long to look for a server, and to connect to one: together well under 5 s.
SERVER_SELECTION_MS = 3000
CONNECT_MS = 2000
AUTH_FAILED = 18  # MongoDB's error code for a refused login


class MongoCatalog(Catalog):
    """`client` is a pymongo.MongoClient (or mongomock's); the database is the URI's, else contentgen."""

    def __init__(self, client: Any, database: str | None = None, where: str = "MongoDB") -> None:
        db = client.get_default_database(DEFAULT_DATABASE) if database is None else client[database]
        super().__init__(db[COLLECTION], client.close, guard=_UnavailableAsError(where))
        self.client = client

    @classmethod
    def connect(cls, url: str) -> MongoCatalog:
        import pymongo

        # Short waits unless the URI sets its own.
        waits = {"serverSelectionTimeoutMS": SERVER_SELECTION_MS, "connectTimeoutMS": CONNECT_MS}
        chosen: dict[str, Any] = {k: v for k, v in waits.items() if k.lower() not in url.lower()}
        client: Any = pymongo.MongoClient(url, tz_aware=True, appname="contentgen", **chosen)
        return cls(client, where=f"the catalog {redact_url(url)}")


class _UnavailableAsError:
    """A reusable guard: pymongo's connection and login failures as CatalogUnavailable."""

    def __init__(self, where: str) -> None:
        self.where = where

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        import pymongo.errors

        if isinstance(exc, pymongo.errors.ConnectionFailure):  # includes server selection timeouts
            raise CatalogUnavailable(
                f"{self.where} cannot be reached ({type(exc).__name__}): check that MongoDB is "
                "running and reachable, and the URI (CONTENTGEN_CATALOG, or the chart's mongodb Secret)"
            ) from None
        if isinstance(exc, pymongo.errors.OperationFailure) and exc.code == AUTH_FAILED:
            raise CatalogUnavailable(
                f"{self.where} refused the credentials: check the user and password in the URI"
            ) from None
