"""The API server's settings, from the environment (the chart sets them)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from contentgen.catalog import DEFAULT_CATALOG, DEFAULT_PRICE_PER_GB_MONTH
from contentgen.store import DEFAULT_LOCAL_STORE

ENV_PREFIX = "CONTENTGEN_"


class ApiSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore", frozen=True)

    catalog: str = Field(
        default=DEFAULT_CATALOG,
        description="CONTENTGEN_CATALOG: mongodb://…, mongodb+srv://…, file://DIR or a directory.",
    )
    store: str = Field(
        default=DEFAULT_LOCAL_STORE,
        description="CONTENTGEN_STORE: s3://bucket[/prefix] or a directory; download links are made here.",
    )
    store_public_endpoint_url: str = Field(
        default="",
        description="CONTENTGEN_STORE_PUBLIC_ENDPOINT_URL: the S3 endpoint as browsers and providers "
        "reach it, for presigned links (e.g. https://minio.example.com); empty: the store's own.",
    )
    api_tokens_file: Path | None = Field(
        default=None, description="CONTENTGEN_API_TOKENS_FILE: the bearer tokens (see httpapi/auth.py)."
    )
    price_per_gb_month: float = Field(
        default=DEFAULT_PRICE_PER_GB_MONTH, ge=0, description="CONTENTGEN_PRICE_PER_GB_MONTH, in USD."
    )
    stream_poll_seconds: float = Field(
        default=0.5,
        gt=0,
        le=60,
        description="CONTENTGEN_STREAM_POLL_SECONDS: how often a stream reads the catalog (at most as long "
        "as the operator's catalog_write_interval_seconds, so no state it writes is missed).",
    )
    stream_heartbeat_seconds: float = Field(
        default=15.0,
        gt=0,
        description="CONTENTGEN_STREAM_HEARTBEAT_SECONDS: a comment line this often when idle.",
    )

    @field_validator("api_tokens_file", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value


def load_settings() -> ApiSettings:
    """Settings from the environment; ValueError naming the variables that are wrong."""
    try:
        return ApiSettings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{ENV_PREFIX}{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(problems) from None
