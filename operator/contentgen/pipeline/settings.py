"""Pipeline settings, from the environment (CONTENTGEN_*). The worker gets them from its Job;
`contentgen run` from the shell and its flags."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contentgen.pricing import PriceTable, with_local_pool
from contentgen.providers.settings import ClusterWorkerSettings, from_environment

GIB = 1024**3


class PipelineSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONTENTGEN_", extra="ignore")

    store: str = Field(
        default="./contentgen-data/store",
        description="Where outputs go: file://DIR, a directory, or s3://bucket/prefix.",
    )
    work_dir: Path = Field(default=Path("./contentgen-data/work"), description="Scratch space for a run.")
    max_download_bytes: int = Field(default=4 * GIB, gt=0, description="Largest source accepted.")
    max_video_seconds: float = Field(default=4 * 3600, gt=0, description="Longest source accepted.")
    allow_private_sources: bool = Field(
        default=False,
        description="Fetch sources whose host resolves to loopback, link-local or private addresses. "
        "Off by default for `contentgen run` and the worker alike (the metadata endpoint and internal "
        "services are not for users to fetch).",
    )
    http_timeout_seconds: float = Field(default=60.0, gt=0, description="Connect/read timeout for downloads.")
    presign_seconds: int = Field(
        default=6 * 3600, ge=60, le=7 * 24 * 3600, description="Lifetime of links handed to providers."
    )
    prices: PriceTable = Field(
        default_factory=PriceTable,
        description="The price table (JSON) local runs are priced with; see Spend and budgets.",
    )

    @model_validator(mode="after")
    def _estimated_where_it_draws(self) -> PipelineSettings:
        """A run whose worker hands its pictures to a warm pool (CONTENTGEN_CLUSTER_POOL_URL, the
        worker's own setting) is estimated as the operator estimates a Job its pool draws: without
        the base model's load."""
        priced = with_local_pool(self.prices, from_environment(ClusterWorkerSettings).cluster_pool_url)
        if priced is not self.prices:
            self.prices = priced
        return self
