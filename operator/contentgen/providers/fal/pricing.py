"""fal's prices for the account, from its pricing API, cached.

GET https://api.fal.ai/v1/models/pricing?endpoint_id=a,b (https://fal.ai/docs/platform-apis/v1/
models/pricing; 1 to 50 endpoint ids, comma-separated or repeated; the API key in the
Authorization header, "Key ..."): {prices: [{endpoint_id, unit_price, unit, currency}],
next_cursor, has_more}. "Custom pricing or discounts may be applied based on account status": the
account's own prices, which is why they come before the price table.

What the page leaves open, and what this module therefore does not assume: which units appear
(contentgen.pricing.fal_unit_price reads the ones a run counts, the table prices the others);
whether an endpoint fal does not price is left out or refused (either way the table prices it);
whether every key may read it (a 401 or 403 falls back to the table, and says so in the log).

Prices are read once per hour per process (`TTL_SECONDS`): a worker runs one resource, so that
is once per run, when its usage is priced; `contentgen run` likewise. Reading prices never fails
a run: a price the API does not give is the table's, and the usage line says which it was.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import httpx

from contentgen.api.cost import Unit
from contentgen.errors import ContentgenError
from contentgen.pricing import FAL_API, Quote, fal_unit_price

from ..retry import Retry, bad_response, describe_body, error_for_status, error_for_transport, retry_after

log = logging.getLogger(__name__)

PRICING_URL = "https://api.fal.ai/v1/models/pricing"
TTL_SECONDS = 3600.0
MAX_IDS = 50  # per request, as documented
MAX_PAGES = 5

# (key digest, endpoint id) -> (when read, monotonic; the price entry, or None when fal gave none)
_CACHE: dict[tuple[str, str], tuple[float, dict[str, Any] | None, str]] = {}


class FalPricing:
    def __init__(
        self,
        key: str,
        *,
        http: httpx.Client | None = None,
        retry: Retry | None = None,
        clock: Callable[[], float] = time.monotonic,
        today: Callable[[], str] = lambda: datetime.now(UTC).date().isoformat(),
    ) -> None:
        self._key = key
        self._account = hashlib.sha256(key.encode()).hexdigest()[:16]  # the cache's, never logged
        # A few quick tries: prices are looked up after the run was paid, and a fallback exists.
        self._retry = retry or Retry(attempts=3, base_delay=1.0, max_delay=5.0, max_retry_after=10.0)
        self._http = http
        self._clock, self._today = clock, today

    def quotes(self, wanted: Iterable[tuple[str, Unit]]) -> dict[tuple[str, str, str], Quote]:
        """Quotes for (endpoint id, unit) pairs fal prices in a unit a run counts; the others are
        left out (the table prices them). Never raises."""
        # an item that is not an endpoint id (one that names a resolution, as Wan's image-to-video,
        # whose price depends on it) is not asked about: the table prices it per resolution
        wanted = sorted(
            (endpoint, unit) for endpoint, unit in set(wanted) if not any(c.isspace() for c in endpoint)
        )
        entries = self._entries({endpoint for endpoint, _ in wanted})
        quotes: dict[tuple[str, str, str], Quote] = {}
        for endpoint, unit in wanted:
            entry, date = entries.get(endpoint, (None, ""))
            if entry is None:
                continue
            usd = fal_unit_price(entry, unit)
            if usd is None:
                log.info(
                    "fal prices %s at %s per %r in %s, which a run does not count in %ss: the price "
                    "table prices it",
                    endpoint,
                    entry.get("unit_price"),
                    entry.get("unit"),
                    entry.get("currency"),
                    unit,
                )
                continue
            quotes[("fal", endpoint, unit)] = Quote(usd, FAL_API, date)
        return quotes

    def _entries(self, endpoints: set[str]) -> dict[str, tuple[dict[str, Any] | None, str]]:
        """Each endpoint's price entry (None: fal gave none) and the date it was read."""
        now = self._clock()
        found: dict[str, tuple[dict[str, Any] | None, str]] = {}
        missing = []
        for endpoint in sorted(endpoints):
            cached = _CACHE.get((self._account, endpoint))
            if cached is not None and now - cached[0] < TTL_SECONDS:
                found[endpoint] = (cached[1], cached[2])
            else:
                missing.append(endpoint)
        for start in range(0, len(missing), MAX_IDS):
            batch = missing[start : start + MAX_IDS]
            try:
                prices = self._read(batch)
            except ContentgenError as exc:  # the table prices them; the next run asks again
                log.warning(
                    "could not read fal's prices (%s: %s): the price table prices this run", exc.reason, exc
                )
                continue
            date = self._today()
            for endpoint in batch:
                entry = prices.get(endpoint)
                _CACHE[(self._account, endpoint)] = (now, entry, date)
                found[endpoint] = (entry, date)
        return found

    def _read(self, endpoints: list[str]) -> dict[str, dict[str, Any]]:
        """The price entries fal gives for `endpoints`. The page does not say whether one endpoint
        fal has no price for is left out or fails the whole request (404): after a 404 for
        several, each is asked for alone."""
        prices = self._read_batch(endpoints)
        if prices is None and len(endpoints) > 1:
            return {e: p for one in endpoints for e, p in (self._read_batch([one]) or {}).items()}
        return prices or {}

    def _read_batch(self, endpoints: list[str]) -> dict[str, dict[str, Any]] | None:
        """None when fal answers 404."""
        prices: dict[str, dict[str, Any]] = {}
        params: dict[str, str] = {"endpoint_id": ",".join(endpoints)}
        client = self._http or httpx.Client(timeout=httpx.Timeout(15.0, connect=5.0), follow_redirects=False)
        try:
            for _ in range(MAX_PAGES):
                page = self._retry.call(
                    lambda: self._page(client, params),
                    classify=lambda exc: error_for_transport(exc, provider="fal's pricing API"),
                    what="reading fal's prices",
                )
                if page is None:
                    return None
                for entry in page["prices"]:
                    if isinstance(entry, dict) and entry.get("endpoint_id") in endpoints:
                        prices.setdefault(str(entry["endpoint_id"]), entry)
                cursor = page.get("next_cursor")
                if not page.get("has_more") or not cursor:
                    break
                params["cursor"] = str(cursor)
        finally:
            if self._http is None:
                client.close()
        return prices

    def _page(self, client: httpx.Client, params: dict[str, str]) -> dict[str, Any] | None:
        headers = {"Authorization": f"Key {self._key}", "Accept": "application/json"}
        response = client.get(PRICING_URL, params=params, headers=headers)
        if response.status_code == 404:  # no price for (one of) these endpoints
            return None
        if response.status_code >= 400:
            raise error_for_status(
                response.status_code,
                response.text[:300],
                provider="fal's pricing API",
                key_env="FAL_KEY",
                retry_after=retry_after(response.headers),
                secrets=(self._key,),
            )
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("prices"), list):
            raise bad_response("fal", "a price request", describe_body(response))
        return body


def forget_cached() -> None:
    """Drop every cached price (tests; a process that wants fresh prices at once)."""
    _CACHE.clear()
