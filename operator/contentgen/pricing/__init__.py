"""Spend: the price table, what a run will cost (before its Job starts) and what it cost (from the
usage the worker reports). Pure functions; the operator, `contentgen run` and budgets use them.

Where a usage line's price comes from, in order: the provider's own pricing API, read by the
worker when the run is billed (fal: GET api.fal.ai/v1/models/pricing, the account's prices,
"custom pricing or discounts may be applied based on account status",
https://fal.ai/docs/platform-apis/v1/models/pricing; `fal_unit_price` reads it), else the price
table. Each line carries its price, source and date (`stamped`), and `priced` shows them in
status.cost.detail. Estimates, made before a run starts, always use the table.

The table's default prices were taken on 2026-11-22 from the providers' public pages; set
CONTENTGEN_PRICES (JSON, the shape of `PriceTable`) to your contract's prices:

- fal (https://fal.ai/pricing and each model's page; "Images are billed by rounding up to the
  nearest megapixel", https://fal.ai/models/fal-ai/flux-1/dev/playground; "You pay only for
  successful outputs", https://fal.ai/docs/documentation/model-apis/pricing):
  FLUX.1 [dev] $0.025/MP, FLUX.1 [schnell] $0.003/MP, FLUX1.1 [pro] $0.04/MP, FLUX.1 [dev] with
  LoRAs $0.035/MP; LoRA training (fal-ai/flux-lora-fast-training) $2 per 1000 steps, linear in
  steps. fal publishes no separate price for flux-lora-portrait-trainer; it gets the same. Wan
  LoRAs (api/base_models.py, where each page is named): fal-ai/wan-trainer $0.005 a step,
  fal-ai/wan-22-image-trainer $0.0045 a step ("minimum of 100 steps is charged"); the Wan 2.2
  video trainers' pages were not found to read ("billed per step at the rate on the trainer's
  model page, with a 100-step minimum", fal's guide), so the table leaves them out and prices
  them at its dearest step until fal's pricing API gives the account's price.
  Dataset captions (openrouter/router/vision) are "charged based on actual token usage"
  (https://fal.ai/docs/model-api-reference/vision-api/openrouter-router); its documented example,
  one image captioned by google/gemini-2.5-flash, reports a cost of $0.0005595. The table prices
  a caption at $0.001 per request, a ceiling of about twice that.
- AssemblyAI (https://www.assemblyai.com/pricing, read 2026-10-07 by a public transcription of
  it; billing rules https://assemblyai.com/docs/billing-and-pricing): pre-recorded audio per hour,
  pro-rated to the second, by the model that ran (the transcript's speech_model_used):
  Universal-3.5 Pro and Universal-3 Pro $0.21, Universal-2 $0.15; speaker labels $0.02 per hour
  more; a transcript that errors is not charged. A model the table does not list is priced at
  the dearest model's price.

A megapixel here is 1,000,000 pixels and every image is rounded up to whole megapixels: fal's
pages say "rounding up to the nearest megapixel" and do not say which megapixel, so the larger
count (10^6, not 2^20) is used and spend is never under-counted: 1024x1024 (square_hd) counts as
2 MP, 1024x768 as 1 MP. An item the table does not list is priced at the
dearest price of its provider and unit, so spend is never under-counted. Usage is reported for
every provider; the offline provider has no prices, so it costs nothing (a test may price it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from contentgen.api import Cost, UsageLine
from contentgen.api.cost import Unit
from contentgen.api.providers import provider_entry
from contentgen.api.registry import UnknownKind

from .kinds import PRICING_KINDS
from .kinds._base import KindPricing, Spec
from .table import ClusterPrices, PriceTable, with_cluster_settings, with_local_pool
from .usage import (
    caption_usage,
    cluster_usage,
    evaluation_usage,
    gpu_usage,
    held_gpus,
    image_usage,
    megapixels,
    pooled,
    spec_model,
    training_usage,
    transcription_usage,
    video_usage,
    without_evaluation,
)

# What importers take from the package: its own names below, and its parts' names they always took
__all__ = [
    "FAL_API",
    "PRICING_KINDS",
    "Budgets",
    "ClusterPrices",
    "KindPricing",
    "Limits",
    "PriceTable",
    "Quote",
    "Spec",
    "Spender",
    "caption_usage",
    "cluster_usage",
    "estimated",
    "evaluation_usage",
    "exceeded",
    "expected_gpu_seconds",
    "expected_usage",
    "fal_unit_price",
    "gpu_usage",
    "headroom",
    "image_usage",
    "limits",
    "megapixels",
    "month_of",
    "priced",
    "pricing_kind",
    "settled",
    "stamped",
    "training_usage",
    "transcription_usage",
    "video_usage",
    "with_cluster_settings",
    "with_local_pool",
    "without_evaluation",
]


def pricing_kind(kind: str) -> KindPricing:
    """How `kind` is priced; UnknownKind for a kind PRICING_KINDS does not declare (never another
    kind's price)."""
    try:
        return PRICING_KINDS[kind]
    except KeyError:
        raise UnknownKind(
            f"kind {kind!r} has no pricing: declare how it is priced in a module of contentgen/pricing/kinds/"
            f" (known: {', '.join(sorted(PRICING_KINDS))})"
        ) from None


def expected_gpu_seconds(
    kind: str, spec: Mapping[str, Any], prices: PriceTable, *, baseline_cached: bool = False
) -> float:
    """provider: cluster: the GPU-seconds a run of `spec` is expected to hold (its seconds, from
    `prices.cluster`, times the GPUs that draw it: its Job's, or where a warm pool draws, the
    pool pod's): the weights' loading (none where a warm pool draws),
    then its kind's work (KindPricing.gpu_seconds; a likeness baseline stored already,
    `baseline_cached`, is not drawn again)."""
    cluster = prices.cluster
    drawn_by_pool = pooled(kind, spec, cluster)
    loading = 0.0 if drawn_by_pool else cluster.startup_seconds
    seconds = pricing_kind(kind).gpu_seconds(spec, prices, baseline_cached, loading)
    gpus = (
        cluster.pool_gpus.get(spec_model(kind, spec), 1) if drawn_by_pool else held_gpus(kind, spec, cluster)
    )
    return seconds * max(1, gpus)


def expected_usage(
    kind: str, spec: Mapping[str, Any], prices: PriceTable, *, baseline_cached: bool = False
) -> list[UsageLine]:
    """What a run of `spec` should bill, known before it starts (a LoraEvaluation's `spec` with
    the provider it runs on, and whether its baseline is stored already: `baseline_cached`)."""
    provider, declared = str(spec.get("provider", "")), pricing_kind(kind)
    if provider_entry(provider).own_gpus:
        seconds = expected_gpu_seconds(kind, spec, prices, baseline_cached=baseline_cached)
        gpus = None if pooled(kind, spec, prices.cluster) else held_gpus(kind, spec, prices.cluster)
        return gpu_usage(provider, declared.item, seconds, gpus=gpus if gpus and gpus > 1 else None)
    return declared.usage(provider, spec, prices, baseline_cached)


# --- where a price comes from ------------------------------------------------------------------

FAL_API = "fal pricing API"


@dataclass(frozen=True)
class Quote:
    """A unit price, in USD per one of our units, and where and when it was read."""

    usd: float
    source: str
    date: str


def table_source(prices: PriceTable) -> str:
    return f"table, as of {prices.as_of}"


# fal's pricing API gives each endpoint a `unit_price` per `unit` in a `currency`; the unit is a
# free string ("Values are expressed per model's billing unit", the page lists none). These are
# the names read as one of our units, after lowercasing, "_"/"-" as spaces and a plural "s"
# dropped; a leading count divides ("1000 steps": the price of 1000 steps). An image model's
# price "per image" is read per megapixel: fal bills image models "per image or per megapixel of
# output, where higher resolutions cost proportionally more"
# (https://fal.ai/docs/documentation/model-apis/pricing), and the FLUX apps' pages price per
# megapixel, so a 1 MP image costs the unit price and a larger one proportionally more; read so,
# a flat per-image price is never under-counted (every image counts at least 1 MP). Any other
# unit (GPU seconds, tokens, ...) is one a run does not count: the table prices that line.
_FAL_UNITS: dict[str, Unit] = {
    "megapixel": "megapixel",
    "mp": "megapixel",
    "image": "megapixel",
    "step": "step",
    "training step": "step",
    "request": "request",
    "call": "request",
    "run": "request",
    # seconds of video made; a bare "second" may be GPU time (fal's serverless apps): not read
    "video second": "video-second",
}
_FAL_UNIT = re.compile(r"(?:per )?(?:(\d[\d,]*(?:\.\d+)?) ?)?([a-z][a-z ]*?)s?")


def fal_unit_price(entry: Mapping[str, Any], unit: Unit) -> float | None:
    """USD per `unit` from one price of fal's pricing API ({endpoint_id, unit_price, unit,
    currency}); None when it is not in USD, not a price, or per a unit a run does not count."""
    price, name = entry.get("unit_price"), entry.get("unit")
    if isinstance(price, bool) or not isinstance(price, int | float) or not math.isfinite(price):
        return None
    if price < 0 or str(entry.get("currency") or "").strip().upper() != "USD" or not isinstance(name, str):
        return None
    spelled = " ".join(name.lower().replace("_", " ").replace("-", " ").split())
    match = _FAL_UNIT.fullmatch(spelled)
    if match is None or _FAL_UNITS.get(match[2]) != unit:
        return None
    count = float(match[1].replace(",", "")) if match[1] else 1.0
    return float(price) / count if count > 0 else None


def stamped(
    lines: Iterable[UsageLine], quotes: Mapping[tuple[str, str, str], Quote], prices: PriceTable
) -> list[UsageLine]:
    """`lines`, each with its price, source and date: the quote for (provider, item, unit) when
    there is one (the provider's pricing API), else the table's price. A line that has a price
    keeps it; one of a provider without prices (offline) stays as it is: it costs nothing."""
    out = []
    for line in lines:
        quote = quotes.get((line.provider, line.item, line.unit))
        if line.unit_price_usd is not None or (quote is None and not prices.prices(line.provider)):
            out.append(line)
            continue
        quote = quote or Quote(
            prices.price(line.provider, line.item, line.unit), table_source(prices), prices.as_of
        )
        update = {"unit_price_usd": quote.usd, "price_source": quote.source, "price_date": quote.date}
        out.append(line.model_copy(update=update))
    return out


# --- pricing -----------------------------------------------------------------------------------


def _price_of(line: UsageLine, prices: PriceTable) -> tuple[float, str]:
    """The line's own price and where it came from, else the table's."""
    if line.unit_price_usd is None:
        return prices.price(line.provider, line.item, line.unit), table_source(prices)
    source = line.price_source or "as reported"
    if line.price_date and line.price_date not in source:
        source += f", {line.price_date}"
    return line.unit_price_usd, source


def priced(lines: Iterable[UsageLine], prices: PriceTable) -> tuple[float, str]:
    """(USD, how it was reckoned) of usage lines: lines of one item at one price are summed, each
    shown with its price's source and date."""
    total = 0.0
    groups: dict[tuple[str, str, float, str], float] = {}
    walls: dict[tuple[str, str, float, str], tuple[int, float]] = {}  # several GPUs: theirs, the wall time
    for line in lines:
        each, source = _price_of(line, prices)
        total += each * line.quantity
        key = (line.item, line.unit, each, source)
        groups[key] = groups.get(key, 0.0) + line.quantity
        if line.gpus and line.wall_seconds is not None:
            walls[key] = (line.gpus, walls.get(key, (0, 0.0))[1] + line.wall_seconds)
    parts = [
        f"{quantity:.4g} {unit}{'' if quantity == 1 else 's'} of {item} x ${each:g} ({source})"
        + (f" = {walls[key][0]} GPUs x {walls[key][1]:.0f} s" if key in walls else "")
        for key, quantity in groups.items()
        for item, unit, each, source in [key]
    ]
    return round(total, 6), "; ".join(parts) or "nothing billed"


def month_of(when: datetime) -> str:
    return when.strftime("%Y-%m")


def estimated(
    kind: str,
    spec: Mapping[str, Any],
    prices: PriceTable,
    previous: Mapping[str, Any] | None,
    *,
    baseline_cached: bool = False,
) -> Cost:
    """The cost a status shows when a run starts: its estimate, the resource's earlier spend."""
    usd, detail = priced(expected_usage(kind, spec, prices, baseline_cached=baseline_cached), prices)
    assumed = pricing_kind(kind).assumes(prices)
    if assumed and usd > 0:
        detail += f" ({assumed})"
    return Cost(
        estimated_usd=usd,
        by_month=dict((previous or {}).get("byMonth") or {}),
        counted_requests=list((previous or {}).get("countedRequests") or []),
        prices_as_of=prices.as_of,
        detail=f"estimate: {detail}"[:1024],
    )


def settled(cost: Cost, usage: list[UsageLine] | None, prices: PriceTable, started: datetime) -> Cost:
    """The cost once a run has ended: the actual cost from its usage (or, when the provider's
    billing cannot be known, the estimate) added to the month the run started. A request already
    counted (paid output delivered by a later attempt) is not added again."""
    by_month = dict(cost.by_month)
    counted = list(cost.counted_requests)
    if usage is None:
        actual, detail, added = None, f"actual unknown; {cost.detail}", cost.estimated_usd
    else:
        actual, reckoned = priced(usage, prices)
        detail = f"actual: {reckoned}"
        new = [line for line in usage if not line.request or line.request not in counted]
        added, _ = priced(new, prices)
        if len(new) < len(usage):
            detail += " (paid by an earlier attempt, counted then)"
        counted += sorted({line.request for line in new if line.request})
    month = month_of(started)
    by_month[month] = round(by_month.get(month, 0.0) + added, 6)
    update = {
        "actual_usd": actual,
        "by_month": by_month,
        "counted_requests": counted[-100:],
        "prices_as_of": prices.as_of,
        "detail": detail[:1024],
    }
    return cost.model_copy(update=update)


class Budgets(BaseModel):
    """Monthly budgets in USD; unset means no limit. The operator enforces them
    (controller/budget.py); the HTTP API shows them."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    namespace_monthly_usd: float | None = Field(default=None, ge=0, description="For every namespace.")
    owner_monthly_usd: float | None = Field(default=None, ge=0, description="For every owner.")
    namespaces: dict[str, float] = Field(default={}, description="Per namespace, over the default.")
    owners: dict[str, float] = Field(default={}, description="Per owner, over the default.")


@dataclass(frozen=True)
class Limits:
    namespace: float | None
    owner: float | None
    namespace_from: str  # where the namespace's limit comes from, for the message
    owner_from: str


@dataclass(frozen=True)
class Spender:
    """One resource's share of a month's spend."""

    uid: str
    namespace: str
    owner: str
    by_month: Mapping[str, float]
    under_way: float  # the estimate of a run whose Job exists and is not recorded yet


def limits(budgets: Budgets, namespace: str, owner: str, source: str) -> Limits:
    """The limits `budgets` set for a resource of `owner` in `namespace` (`source`: where they are
    set, for messages)."""
    return Limits(
        budgets.namespaces.get(namespace, budgets.namespace_monthly_usd),
        budgets.owners.get(owner, budgets.owner_monthly_usd),
        source,
        source,
    )


def headroom(
    uid: str, namespace: str, owner: str, month: str, spenders: list[Spender], limits: Limits
) -> tuple[float, str] | None:
    """What the monthly limits leave a run this month, at most, and whose limit that is: (USD,
    "namespace NS" or "owner O"); None without limits. The run's own earlier spend counts, as in
    `exceeded`."""
    others = [s for s in spenders if s.uid != uid]
    mine = next((s for s in spenders if s.uid == uid), None)
    own = mine.by_month.get(month, 0.0) if mine is not None else 0.0
    left = [
        (limit - own - sum(s.by_month.get(month, 0.0) + s.under_way for s in share), who)
        for limit, who, share in (
            (limits.namespace, f"namespace {namespace}", [s for s in others if s.namespace == namespace]),
            (limits.owner, f"owner {owner}", [s for s in others if s.owner == owner]),
        )
        if limit is not None
    ]
    return min(left, default=None)


def exceeded(
    uid: str,
    namespace: str,
    owner: str,
    estimate: float,
    month: str,
    spenders: list[Spender],
    limits: Limits,
) -> tuple[float, str, float, str] | None:
    """The first monthly limit a run of `estimate` USD would exceed: (limit, whose, spent, where it is
    set); None when it fits. Pure: the operator (controller/budget.py) and re-evaluations use it."""
    if limits.namespace is None and limits.owner is None:
        return None
    others = [s for s in spenders if s.uid != uid]
    mine = next((s for s in spenders if s.uid == uid), None)
    own = mine.by_month.get(month, 0.0) if mine is not None else 0.0

    def spent(share: Iterable[Spender]) -> float:
        return sum(s.by_month.get(month, 0.0) + s.under_way for s in share)

    checks = (
        (
            limits.namespace,
            f"namespace {namespace}",
            [s for s in others if s.namespace == namespace],
            limits.namespace_from,
        ),
        (limits.owner, f"owner {owner}", [s for s in others if s.owner == owner], limits.owner_from),
    )
    for limit, who, share, source in checks:
        if limit is None:
            continue
        used = spent(share) + own
        if used + estimate > limit + 1e-9:
            return limit, who, used, source
    return None
