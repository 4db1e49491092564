"""store.pricePerGbMonth (issue 38): the storage price of per-asset usage and per-owner stats reaches
the API as CONTENTGEN_PRICE_PER_GB_MONTH, read back as ApiSettings reads it; its default is the
code's; what is not a price is refused by the chart's schema, naming the value."""

from __future__ import annotations

import os
from unittest import mock

import pytest

from contentgen.catalog.queries import DEFAULT_PRICE_PER_GB_MONTH
from contentgen.httpapi.settings import ENV_PREFIX, ApiSettings
from tests.chart.conftest import API, RELEASE, Doc, one, render, template_error


def api_settings(values: Doc) -> ApiSettings:
    pod = one(render({**API, **values}), "Deployment", f"{RELEASE}-api")["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"] if "value" in e}
    assert "CONTENTGEN_PRICE_PER_GB_MONTH" in env
    ours = {k: v for k, v in env.items() if k.startswith(ENV_PREFIX)}
    with mock.patch.dict(os.environ, ours, clear=True):
        return ApiSettings()


@pytest.mark.parametrize(
    ("price", "read"),
    [(None, DEFAULT_PRICE_PER_GB_MONTH), (0.0125, 0.0125), (1, 1.0), (0, 0.0), (0.00001, 0.00001)],
)
def test_the_storage_price_reaches_the_api(price: float | None, read: float) -> None:
    values: Doc = {} if price is None else {"store": {"url": "s3://bucket/prefix", "pricePerGbMonth": price}}
    assert api_settings(values).price_per_gb_month == pytest.approx(read)


def test_the_operator_is_not_given_it() -> None:
    """Only the API prices storage; the operator's ConfigMap and Deployment do not carry it."""
    docs = render({"store": {"url": "s3://bucket/prefix", "pricePerGbMonth": 0.05}})
    assert "PRICE_PER_GB_MONTH" not in str(one(docs, "ConfigMap", f"{RELEASE}-operator"))


@pytest.mark.parametrize("bad", ["-1", "cheap"])
def test_what_is_not_a_price_is_refused(bad: str) -> None:
    error = template_error("--set-string" if bad == "cheap" else "--set", f"store.pricePerGbMonth={bad}")
    assert "pricePerGbMonth" in error
