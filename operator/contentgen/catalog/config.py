"""Which catalog: env CONTENTGEN_CATALOG, next to CONTENTGEN_STORE."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from contentgen.redact import redact_url

from .base import Catalog

ENV = "CONTENTGEN_CATALOG"
DEFAULT_CATALOG = "file://./contentgen-data/catalog"


class CatalogMissing(ValueError):
    """A local catalog that does not exist, opened by something that only reads."""


def catalog_url(url: str | None = None) -> str:
    return url or os.environ.get(ENV) or DEFAULT_CATALOG


def open_catalog(url: str | None = None, *, create: bool = False) -> Catalog:
    """`mongodb://…` or `mongodb+srv://…` (MongoDB), `file://DIR` or a directory (embedded).

    None means $CONTENTGEN_CATALOG, else file://./contentgen-data/catalog. Only writers (`contentgen
    run`) pass `create`: for readers a local catalog that is not there is an error (CatalogMissing),
    so a mistyped path says so instead of listing nothing.
    """
    url = catalog_url(url)
    parsed = urlparse(url)
    if parsed.scheme in ("mongodb", "mongodb+srv"):
        from .mongo import MongoCatalog

        return MongoCatalog.connect(url)
    if parsed.scheme in ("file", ""):
        from .embedded import EmbeddedCatalog, exists

        path = unquote(parsed.netloc + parsed.path) if parsed.scheme == "file" else url
        if not path:
            raise ValueError(f"catalog URL {url!r} names no directory")
        if not create and not exists(Path(path)):
            raise CatalogMissing(
                f"there is no catalog at {Path(path).expanduser().resolve()}: check the path "
                f"(--catalog or {ENV}); `contentgen run` makes one there when it records a run"
            )
        return EmbeddedCatalog(Path(path))
    raise ValueError(
        f"unsupported catalog URL {redact_url(url)!r}: "
        "use mongodb://…, mongodb+srv://…, file://DIR or a directory"
    )
