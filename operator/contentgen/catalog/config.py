"""Which catalog: env CONTENTGEN_CATALOG, next to CONTENTGEN_STORE."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from contentgen.redact import redact_url

from .base import Catalog

ENV = "CONTENTGEN_CATALOG"
DEFAULT_CATALOG = "file://./contentgen-data/catalog"


def catalog_url(url: str | None = None) -> str:
    return url or os.environ.get(ENV) or DEFAULT_CATALOG


def open_catalog(url: str | None = None) -> Catalog:
    """`mongodb://…` or `mongodb+srv://…` (MongoDB), `file://DIR` or a directory (embedded).

    None means $CONTENTGEN_CATALOG, else file://./contentgen-data/catalog.
    """
    url = catalog_url(url)
    parsed = urlparse(url)
    if parsed.scheme in ("mongodb", "mongodb+srv"):
        from .mongo import MongoCatalog

        return MongoCatalog.connect(url)
    if parsed.scheme in ("file", ""):
        from .embedded import EmbeddedCatalog

        path = unquote(parsed.netloc + parsed.path) if parsed.scheme == "file" else url
        if not path:
            raise ValueError(f"catalog URL {url!r} names no directory")
        return EmbeddedCatalog(Path(path))
    raise ValueError(
        f"unsupported catalog URL {redact_url(url)!r}: "
        "use mongodb://…, mongodb+srv://…, file://DIR or a directory"
    )
