"""Haiku: a kind that exists only in the tests, declared once per layer (api.py, pricing.py,
pipeline.py, catalog.py, controller.py, httpapi.py; the CLI reads the API's models and the
catalog's registry), to prove that adding a kind is one module per layer and no product file.
`register` puts each declaration where its layer's registry keeps the kinds its package declares."""

from __future__ import annotations

import pytest

from contentgen.api import CATALOG_TYPES, KINDS
from contentgen.catalog.kinds import CATALOG_KINDS
from contentgen.controller.kinds import CONTROLLER_KINDS
from contentgen.httpapi.kinds import HTTP_KINDS
from contentgen.pipeline.kinds import PIPELINE_KINDS
from contentgen.pricing import PRICING_KINDS

from . import api, catalog, controller, httpapi, pipeline, pricing


def register(monkeypatch: pytest.MonkeyPatch) -> None:
    """Haiku in every layer's registry, until the test ends."""
    monkeypatch.setitem(KINDS, api.KIND.kind, api.KIND)
    monkeypatch.setitem(CATALOG_TYPES, api.KIND.catalog_type, api.KIND)
    monkeypatch.setitem(PRICING_KINDS, pricing.KIND.kind, pricing.KIND)
    monkeypatch.setitem(PIPELINE_KINDS, pipeline.KIND.kind, pipeline.KIND)
    monkeypatch.setitem(CATALOG_KINDS, catalog.KIND.kind, catalog.KIND)
    monkeypatch.setitem(CONTROLLER_KINDS, controller.KIND.kind, controller.KIND)
    monkeypatch.setitem(HTTP_KINDS, httpapi.KIND.kind, httpapi.KIND)
