"""MongoDB through pymongo: the catalog in the cluster (URI from a Secret).

A MongoDB that is down, unreachable or refusing the credentials is reported within seconds as
CatalogUnavailable (pymongo would otherwise wait 30 s, then raise its own error): the CLI exits
1 with one line, the API answers 503.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from contentgen.redact import redact_url

from .base import Catalog, CatalogUnavailable
from .document import COLLECTION
from .queries import Filters, Page, Sort
from .search import TEXT_INDEX, TEXT_INDEX_NAME, SearchQuery, SearchResult, scan_search, text_search

log = logging.getLogger(__name__)

DEFAULT_DATABASE = "contentgen"
# How long to look for a server, and to connect to one: together well under 5 s.
SERVER_SELECTION_MS = 3000
CONNECT_MS = 2000
AUTH_FAILED = 18  # MongoDB's error code for a refused login
# What a server without text search answers: BadValue, IndexNotFound, CannotCreateIndex,
# CommandNotSupported, NotImplemented.
NO_TEXT_SEARCH = frozenset({2, 27, 67, 115, 238})
# How long a reader trusts what it found of the text index (the operator creates it at start).
TEXT_INDEX_CHECK_S = 60.0


class MongoCatalog(Catalog):
    """`client` is a pymongo.MongoClient (or mongomock's); the database is the URI's, else contentgen."""

    def __init__(self, client: Any, database: str | None = None, where: str = "MongoDB") -> None:
        db = client.get_default_database(DEFAULT_DATABASE) if database is None else client[database]
        super().__init__(db[COLLECTION], client.close, guard=_UnavailableAsError(where))
        self.client = client
        self._text: bool | None = None  # whether search uses the text index; None: look
        self._text_checked = 0.0

    def ensure_indexes(self) -> None:
        super().ensure_indexes()
        with self._guard:
            try:
                self._collection.create_index(
                    TEXT_INDEX["keys"],
                    name=TEXT_INDEX_NAME,
                    weights=TEXT_INDEX["weights"],
                    default_language=TEXT_INDEX["default_language"],
                    language_override=TEXT_INDEX["language_override"],
                )
            except Exception as exc:
                if _conflicts(exc):  # another text index (a collection has one at most): keep it
                    log.warning(
                        "the catalog has a text index other than %s (%s): search scans until it is dropped",
                        TEXT_INDEX_NAME,
                        exc,
                    )
                    return
                if not _refused(exc):
                    raise
                self._scan_from_now(exc)
                return
        self._text, self._text_checked = None, 0.0  # look again: it may be there now

    @property
    def search_engine(self) -> str:
        """What answers a search: mongodb-text where the server has the text index, else scan."""
        if self._text is False:
            return "scan"
        if self._text is None or time.monotonic() - self._text_checked > TEXT_INDEX_CHECK_S:
            with self._guard:
                names = {index.get("name") for index in self._collection.list_indexes()}
            self._text, self._text_checked = TEXT_INDEX_NAME in names, time.monotonic()
        return "mongodb-text" if self._text else "scan"

    def _search(self, query: SearchQuery, filters: Filters, sort: Sort | None, page: Page) -> SearchResult:
        if self.search_engine == "mongodb-text":
            try:
                return text_search(self._collection, query, filters, sort, page)
            except Exception as exc:
                if not _refused(exc):
                    raise
                self._scan_from_now(exc)
        return scan_search(self._collection, query, filters, sort, page)

    def _scan_from_now(self, exc: BaseException) -> None:
        if self._text is not False:
            log.warning("the catalog's server has no text search (%s): search scans every record", exc)
        self._text, self._text_checked = False, time.monotonic()

    @classmethod
    def connect(cls, url: str) -> MongoCatalog:
        import pymongo

        # Short waits unless the URI sets its own.
        waits = {"serverSelectionTimeoutMS": SERVER_SELECTION_MS, "connectTimeoutMS": CONNECT_MS}
        chosen: dict[str, Any] = {k: v for k, v in waits.items() if k.lower() not in url.lower()}
        client: Any = pymongo.MongoClient(url, tz_aware=True, appname="contentgen", **chosen)
        return cls(client, where=f"the catalog {redact_url(url)}")


def _refused(exc: BaseException) -> bool:
    """A server (or mongomock) that has no text indexes or `$text`: FerretDB 1.x answers
    IndexNotFound to creating one and BadValue ("unknown top level operator: $text") to a query."""
    if isinstance(exc, NotImplementedError):
        return True
    import pymongo.errors

    return isinstance(exc, pymongo.errors.OperationFailure) and exc.code in NO_TEXT_SEARCH


def _conflicts(exc: BaseException) -> bool:
    """IndexOptionsConflict, IndexKeySpecsConflict: a text index of another name or definition."""
    return getattr(exc, "code", None) in (85, 86) and not isinstance(exc, NotImplementedError)


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
