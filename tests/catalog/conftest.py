from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import mongomock
import pytest

from contentgen.catalog import Catalog
from contentgen.catalog.embedded import EmbeddedCatalog
from contentgen.catalog.mongo import MongoCatalog


@pytest.fixture(params=["mongomock", "embedded"])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Catalog]:
    """The same suite on both backends: MongoDB (as mongomock) and montydb in a directory."""
    if request.param == "mongomock":
        opened: Catalog = MongoCatalog(mongomock.MongoClient(), "contentgen")
    else:
        opened = EmbeddedCatalog(tmp_path / "catalog")
    opened.ensure_indexes()
    yield opened
    opened.close()
