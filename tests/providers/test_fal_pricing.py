"""fal usage priced at the account's prices from fal's pricing API, cached, with the dated price
table as the fallback; each usage line says which price it got, from where and when."""

from __future__ import annotations

import logging
import math

import httpx
import pytest

from contentgen.api import UsageLine
from contentgen.pricing import FAL_API, PriceTable, Quote, fal_unit_price, priced, stamped
from contentgen.providers import price_quotes
from contentgen.providers.fal import pricing as fal_pricing
from contentgen.providers.fal.pricing import TTL_SECONDS, FalPricing

from .fake_fal import FAL_KEY, VISION_APP, FakeFal
from .fakes import FakeSleep, failure, html, mocked, retry

DEV, TRAINER, PORTRAIT = (
    "fal-ai/flux/dev",
    "fal-ai/flux-lora-fast-training",
    "fal-ai/flux-lora-portrait-trainer",
)
WANTED = [(DEV, "megapixel"), (TRAINER, "step"), (VISION_APP, "request"), (PORTRAIT, "step")]
TABLE = PriceTable()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pricing(clock: Clock | None = None, sleep: FakeSleep | None = None, key: str = FAL_KEY) -> FalPricing:
    return FalPricing(
        key, retry=retry(sleep or FakeSleep()), clock=clock or Clock(), today=lambda: "2027-01-05"
    )


# --- fal's units, read as ours ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unit", "ours", "per_unit"),
    [
        ("megapixels", "megapixel", 2.0),
        ("Megapixel", "megapixel", 2.0),
        ("MP", "megapixel", 2.0),
        ("image", "megapixel", 2.0),  # per image, proportional to resolution: per megapixel
        ("images", "megapixel", 2.0),
        ("steps", "step", 2.0),
        ("1000 steps", "step", 0.002),
        ("per 1,000 steps", "step", 0.002),
        ("training_steps", "step", 2.0),
        ("requests", "request", 2.0),
        ("steps", "megapixel", None),  # another unit than the line counts
        ("gpu_seconds", "request", None),
        ("compute seconds", "step", None),
        ("tokens", "request", None),
        ("video_seconds", "megapixel", None),
        ("video seconds", "video-second", 2.0),
        ("5 video_seconds", "video-second", 0.4),
        ("seconds", "video-second", None),  # GPU seconds or video seconds: not known
        ("", "megapixel", None),
    ],
)
def test_fal_units_are_read_as_the_units_a_run_counts(unit: str, ours: str, per_unit: float | None) -> None:
    got = fal_unit_price({"endpoint_id": DEV, "unit_price": 2.0, "unit": unit, "currency": "USD"}, ours)  # type: ignore[arg-type]
    assert got == (pytest.approx(per_unit) if per_unit is not None else None)


@pytest.mark.parametrize(
    "entry",
    [
        {"unit_price": 0.025, "unit": "megapixels", "currency": "EUR"},
        {"unit_price": 0.025, "unit": "megapixels"},
        {"unit_price": "0.025", "unit": "megapixels", "currency": "USD"},
        {"unit_price": True, "unit": "megapixels", "currency": "USD"},
        {"unit_price": -1, "unit": "megapixels", "currency": "USD"},
        {"unit_price": math.nan, "unit": "megapixels", "currency": "USD"},
        {"unit_price": 0.025, "unit": None, "currency": "USD"},
        {"unit_price": 0.025, "unit": "0 megapixels", "currency": "USD"},
    ],
)
def test_what_is_not_a_usd_price_is_not_used(entry: dict[str, object]) -> None:
    assert fal_unit_price(entry, "megapixel") is None


# --- the pricing API, against the fake --------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["plural", "singular", "image"])
@pytest.mark.parametrize("unpriced", ["omit", "404"])
def test_the_accounts_prices_are_read_whatever_fal_leaves_open(spelling: str, unpriced: str) -> None:
    fal = FakeFal()
    fal.variant.unit_spelling, fal.variant.unpriced = spelling, unpriced
    with mocked(fal):
        quotes = pricing().quotes(WANTED)
    assert quotes == {
        ("fal", DEV, "megapixel"): Quote(0.02, FAL_API, "2027-01-05"),
        ("fal", TRAINER, "step"): Quote(0.0015, FAL_API, "2027-01-05"),
        # the vision router is priced per token, the portrait trainer not at all: the table's
    }
    asked = [r.url.params["endpoint_id"] for kind, r in fal.requests if kind == "pricing"]
    assert asked[0] == ",".join(sorted(e for e, _ in WANTED))  # one request for the run's endpoints
    if unpriced == "404":  # the batch failed for one unpriced endpoint: each was asked alone
        assert sorted(asked[1:]) == sorted(e for e, _ in WANTED)


def test_an_item_that_names_a_resolution_is_priced_by_the_table_unasked() -> None:
    fal = FakeFal()
    with mocked(fal):
        quotes = pricing().quotes([("fal-ai/wan/v2.2-a14b/image-to-video 720p", "video-second")])
    assert quotes == {} and fal.count("pricing") == 0


def test_every_page_is_read() -> None:
    fal = FakeFal()
    fal.variant.price_page = 1
    with mocked(fal):
        quotes = pricing().quotes(WANTED)
    assert set(quotes) == {("fal", DEV, "megapixel"), ("fal", TRAINER, "step")}
    assert [r.url.params.get("cursor") for k, r in fal.requests if k == "pricing"] == [None, "1", "2"]


def test_prices_are_cached_for_an_hour_per_key() -> None:
    fal, clock = FakeFal(), Clock()
    with mocked(fal):
        first = pricing(clock).quotes(WANTED)
        clock.now += TTL_SECONDS - 1
        assert pricing(clock).quotes(WANTED) == first and fal.count("pricing") == 1
        assert pricing(clock).quotes([(DEV, "megapixel")]) == {
            ("fal", DEV, "megapixel"): first[("fal", DEV, "megapixel")]
        }
        assert fal.count("pricing") == 1
        fal.prices[DEV] = (0.018, "megapixel")  # the account's price changed
        clock.now += 2
        assert pricing(clock).quotes([(DEV, "megapixel")])[("fal", DEV, "megapixel")].usd == 0.018
        assert fal.count("pricing") == 2
        FakeFal.__init__(fal, key="another-key")  # another account: its own prices
        pricing(clock, key="another-key").quotes([(DEV, "megapixel")])
    assert fal.count("pricing") == 1


@pytest.mark.parametrize(
    ("faults", "why"),
    [
        ([failure(403, {"detail": "Admin API key required"})], "HTTP 403"),
        ([failure(401, {"detail": "Invalid API key"})], "HTTP 401"),
        ([failure(500, {"detail": "boom"})] * 3, "gave up after 3 attempts"),
        ([httpx.ConnectError] * 3, "gave up after 3 attempts"),
        ([html(200)], "ProviderBadResponse"),
        ([failure(429, {"detail": "slow down"}, Retry_After="3600")], "rate limiting"),
    ],
)
def test_when_the_api_fails_the_table_prices_the_run_and_the_log_says_why(
    faults: list[object], why: str, caplog: pytest.LogCaptureFixture
) -> None:
    fal = FakeFal()
    fal.fail("pricing", *faults)  # type: ignore[arg-type]
    with mocked(fal), caplog.at_level(logging.WARNING):
        quotes = pricing().quotes(WANTED)
    assert quotes == {}
    assert any("could not read fal's prices" in r.message and why in r.message for r in caplog.records)
    assert FAL_KEY not in caplog.text
    lines = stamped([UsageLine(provider="fal", item=DEV, unit="megapixel", quantity=2)], quotes, TABLE)
    assert (lines[0].unit_price_usd, lines[0].price_source) == (0.025, "table, as of 2026-11-22")


def test_a_passing_failure_is_retried_and_the_api_price_used() -> None:
    fal, sleep = FakeFal(), FakeSleep()
    fal.fail("pricing", failure(429, {"detail": "slow down"}, Retry_After="2"), failure(503, {}))
    with mocked(fal):
        quotes = pricing(sleep=sleep).quotes([(DEV, "megapixel")])
    assert quotes[("fal", DEV, "megapixel")].usd == 0.02 and sleep.waits[0] == 2.0


def test_the_setting_and_a_missing_key_keep_the_api_unasked() -> None:
    fal = FakeFal()
    with mocked(fal):
        assert (
            price_quotes("fal", WANTED, env={"FAL_KEY": FAL_KEY, "CONTENTGEN_FAL_PRICING_API": "false"}) == {}
        )
        assert price_quotes("fal", WANTED, env={}) == {}
        assert price_quotes("assemblyai", WANTED, env={"FAL_KEY": FAL_KEY}) == {}
        assert fal.count("pricing") == 0
        got = price_quotes("fal", WANTED, env={"FAL_KEY": FAL_KEY})
    assert got[("fal", DEV, "megapixel")].usd == 0.02 and fal.count("pricing") == 1


def test_a_surprise_never_fails_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(fal_pricing.FalPricing, "quotes", broken)
    assert price_quotes("fal", WANTED, env={"FAL_KEY": FAL_KEY}) == {}


# --- the price, its source and date travel with each line and show in the cost --------------------


def test_each_line_says_its_price_source_and_date_and_the_detail_shows_them() -> None:
    lines = [
        UsageLine(provider="fal", item=VISION_APP, unit="request", quantity=1, request=f"c{i}")
        for i in range(3)
    ] + [UsageLine(provider="fal", item=TRAINER, unit="step", quantity=1000, request="t")]
    quotes = {("fal", TRAINER, "step"): Quote(0.0015, FAL_API, "2027-01-05")}
    priced_lines = stamped(lines, quotes, TABLE)
    assert [(line.unit_price_usd, line.price_source, line.price_date) for line in priced_lines] == [
        (0.001, "table, as of 2026-11-22", "2026-11-22")
    ] * 3 + [(0.0015, FAL_API, "2027-01-05")]
    usd, detail = priced(priced_lines, TABLE)
    assert usd == pytest.approx(1.503)
    assert detail == (
        f"3 requests of {VISION_APP} x $0.001 (table, as of 2026-11-22); "
        f"1000 steps of {TRAINER} x $0.0015 (fal pricing API, 2027-01-05)"
    )
    # a stamped line keeps its price, whatever table prices the run later
    dearer = PriceTable.model_validate({"items": {"fal": {TRAINER: {"step": 0.01}}}})
    assert priced(priced_lines, dearer)[0] == pytest.approx(1.503)
    # a line from a worker that did not stamp it: the recorder's table, said so
    assert priced(lines[3:], dearer) == (10.0, f"1000 steps of {TRAINER} x $0.01 (table, as of 2026-11-22)")
