"""Haiku: a kind that exists only in the tests, one package of one module per layer (api.py,
pricing.py, pipeline.py, catalog.py, controller.py, httpapi.py; the CLI reads the API's models and
the catalog's registry), to prove that adding a kind is one package and one registration line
(contentgen.kinds.add) and no product file."""

from __future__ import annotations

import sys

import pytest

from contentgen import kinds


def register(monkeypatch: pytest.MonkeyPatch) -> None:
    """Haiku in every layer's registry, until the test ends."""
    kinds.add(sys.modules[__name__], monkeypatch.setitem)
