"""Haiku in the API: its spec (a season, the offline provider only) and how kubectl shows it."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from contentgen.api import Kind
from contentgen.api.common import CommonSpec, CommonStatus
from contentgen.api.kinds import Column


class HaikuSpec(CommonSpec):
    season: Annotated[Literal["spring", "summer", "autumn", "winter"], Field(description="Its season.")]
    provider: Annotated[Literal["offline"], Field(description="offline writes it.")] = "offline"


class HaikuStatus(CommonStatus):
    pass


KIND = Kind(
    kind="Haiku",
    plural="haikus",
    short_names=("hk",),
    catalog_type="haiku",
    spec=HaikuSpec,
    status=HaikuStatus,
    description="Writes a haiku about a season.",
    columns=(Column("Season", ".spec.season", description="Its season."),),
)
