"""What a run costs at its provider: the usage a worker reports, and the cost in a status."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from .base import ApiModel

Unit = Literal["megapixel", "step", "audio-hour", "request", "gpu-hour", "video-second"]


class UsageLine(ApiModel):
    """One thing a provider bills: fal's megapixels of an app, steps of a trainer, AssemblyAI's
    hours of audio."""

    provider: str
    item: Annotated[str, Field(description="The app or product billed, e.g. fal-ai/flux/dev, transcript.")]
    unit: Unit
    quantity: Annotated[float, Field(ge=0)]
    request: Annotated[str, Field(description="The provider's request id that was billed.")] = ""
    gpus: (
        Annotated[
            int,
            Field(
                ge=1,
                description="provider cluster, several GPUs: the GPUs the run held at once (a gpu-hour "
                "line's quantity is its wall time × these).",
            ),
        ]
        | None
    ) = None
    wall_seconds: (
        Annotated[
            float, Field(ge=0, description="provider cluster, several GPUs: the run's wall time, in seconds.")
        ]
        | None
    ) = None
    unit_price_usd: (
        Annotated[
            float,
            Field(
                ge=0,
                description="The USD per unit it was priced at; unset: whoever records the run prices "
                "it with its price table.",
            ),
        ]
        | None
    ) = None
    price_source: (
        Annotated[
            str,
            Field(
                max_length=64,
                description="Where that price came from: `fal pricing API` (the account's price, read "
                "from fal) or `table, as of DATE` (the price table).",
            ),
        ]
        | None
    ) = None
    price_date: (
        Annotated[
            str, Field(max_length=32, description="When that price was read (for the table: its date).")
        ]
        | None
    ) = None


class Cost(ApiModel):
    """Spend at the provider, in USD, priced with the operator's price table."""

    estimated_usd: Annotated[
        float, Field(ge=0, description="What the current run should cost, known before its Job starts.")
    ] = 0.0
    actual_usd: (
        Annotated[
            float,
            Field(
                ge=0,
                description="What the current run cost (what the provider billed); unset while it "
                "runs or when unknown.",
            ),
        ]
        | None
    ) = None
    by_month: Annotated[
        dict[str, float],
        Field(
            description="Everything this resource's runs cost, by the month they started "
            "(YYYY-MM): the actual cost, or the estimate when the actual is unknown.",
            json_schema_extra={"maxProperties": 120},
        ),
    ] = {}
    counted_requests: Annotated[
        list[Annotated[str, Field(max_length=128)]],
        Field(
            max_length=100,
            description="Provider request ids already in byMonth: a retry that delivers output paid "
            "for earlier is not counted again.",
        ),
    ] = []
    currency: Literal["USD"] = "USD"
    prices_as_of: Annotated[
        str,
        Field(
            max_length=32,
            description="The date of the price table used; a line priced from a provider's pricing API "
            "names its own source and date in detail.",
        ),
    ] = ""
    detail: Annotated[
        str,
        Field(
            max_length=1024,
            description="How the figures were reckoned: per item the quantity, the unit price and its "
            "source and date (`fal pricing API, 2026-11-23` or `table, as of 2026-11-22`).",
        ),
    ] = ""
