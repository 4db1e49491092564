"""The API server's settings, from the environment (the chart sets them)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from contentgen.api.common import OWNER_PATTERN
from contentgen.catalog import DEFAULT_CATALOG, DEFAULT_PRICE_PER_GB_MONTH
from contentgen.pricing import Budgets, PriceTable, with_cluster_settings
from contentgen.store import DEFAULT_LOCAL_STORE

ENV_PREFIX = "CONTENTGEN_"
AuthMode = Literal["tokens", "proxy", "kubernetes", "local"]
CreateMode = Literal["auto", "kubernetes", "local", "off"]


class JobGpus(BaseModel):
    """One kind's GPU Jobs as this API's estimates read them (the chart's gpu.jobs.KIND): their GPUs;
    the rest is the operator's."""

    model_config = ConfigDict(extra="ignore")

    count: int = Field(default=1, ge=1, le=16, description="GPUs per Job.")


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
    api_auth: Annotated[list[AuthMode], NoDecode] = Field(
        default=["tokens"],
        description="CONTENTGEN_API_AUTH: where identities come from, comma-separated: tokens (the "
        "tokens file), proxy (an authenticating proxy's headers, from CONTENTGEN_API_TRUSTED_PROXIES "
        "only), kubernetes (Kubernetes bearer tokens, checked with TokenReview), or local alone (a "
        "laptop: one owner, no login, this machine only; `contentgen api --local`).",
    )
    api_tokens_file: Path | None = Field(
        default=None,
        description="CONTENTGEN_API_TOKENS_FILE: the static bearer tokens, each mapped to an owner "
        "(needed with auth tokens; see docs/identity.md).",
    )
    api_owners_file: Path | None = Field(
        default=None,
        description="CONTENTGEN_API_OWNERS_FILE: which users and groups act for which owners, and "
        "who is an admin (auth proxy and kubernetes; see docs/identity.md).",
    )
    api_trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default=[],
        description="CONTENTGEN_API_TRUSTED_PROXIES: the addresses or CIDRs (comma-separated) whose "
        "identity headers are believed (auth proxy); headers from any other address are ignored.",
    )
    api_proxy_user_header: str = Field(
        default="X-Auth-Request-User", description="CONTENTGEN_API_PROXY_USER_HEADER: the proxy's user."
    )
    api_proxy_email_header: str = Field(
        default="X-Auth-Request-Email",
        description="CONTENTGEN_API_PROXY_EMAIL_HEADER: the proxy's e-mail (matched like a user name).",
    )
    api_proxy_groups_header: str = Field(
        default="X-Auth-Request-Groups",
        description="CONTENTGEN_API_PROXY_GROUPS_HEADER: the proxy's groups, comma-separated.",
    )
    api_logout_url: str = Field(
        default="",
        description="CONTENTGEN_API_LOGOUT_URL: where the web UI's Log out goes with auth proxy "
        "(e.g. /oauth2/sign_out); empty: no Log out button for proxy sessions.",
    )
    api_token_audiences: Annotated[list[str], NoDecode] = Field(
        default=[],
        description="CONTENTGEN_API_TOKEN_AUDIENCES: audiences a Kubernetes token must be for "
        "(comma-separated; empty: the API server's default).",
    )
    api_kubeconfig: Path | None = Field(
        default=None,
        description="CONTENTGEN_API_KUBECONFIG: the kubeconfig for TokenReview and creating resources "
        "outside a pod (default: the pod's ServiceAccount, else $KUBECONFIG).",
    )
    api_create: CreateMode = Field(
        default="auto",
        description="CONTENTGEN_API_CREATE: how POST /api/resources and the seeds' routes make things: "
        "kubernetes (create the custom resource as the API's ServiceAccount), local (run it on this "
        "machine, as contentgen run does), off; auto: local with auth local, kubernetes in a pod or "
        "with a kubeconfig, else off.",
    )
    api_default_namespace: str = Field(
        default="default",
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        max_length=63,
        description="CONTENTGEN_API_DEFAULT_NAMESPACE: where a create that names no namespace goes.",
    )
    api_local_owner: str = Field(
        default="demo-user",
        pattern=OWNER_PATTERN,
        max_length=63,
        description="CONTENTGEN_API_LOCAL_OWNER: the one owner of auth local (the examples' owner).",
    )
    api_offline: bool = Field(
        default=False,
        description="CONTENTGEN_API_OFFLINE: local creates run with the offline provider (no paid API).",
    )
    budgets: Budgets = Field(
        default_factory=Budgets,
        description="CONTENTGEN_BUDGETS: the operator's monthly budgets (JSON, as the chart's "
        "`budgets`), shown on the web UI's Spend page.",
    )
    gpu_jobs: dict[str, JobGpus] = Field(
        default={},
        description="CONTENTGEN_GPU_JOBS: the operator's GPU Jobs per kind (JSON, as the chart's "
        "`gpu.jobs`), of which this API reads each kind's GPUs (`count`), for its estimates to count them "
        "as the operator's do.",
    )
    prices: PriceTable = Field(
        default_factory=PriceTable,
        description="CONTENTGEN_PRICES: the operator's price table (JSON, as the chart's `prices`), for "
        "the estimates this API shows where it does not run the work itself (a re-evaluation in a "
        "cluster), with each kind's GPUs from CONTENTGEN_GPU_JOBS.",
    )
    price_per_gb_month: float = Field(
        default=DEFAULT_PRICE_PER_GB_MONTH,
        ge=0,
        description="CONTENTGEN_PRICE_PER_GB_MONTH, in USD (the chart's store.pricePerGbMonth).",
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

    @field_validator("prices")
    @classmethod
    def _gpus_priced(cls, prices: PriceTable, info: ValidationInfo) -> PriceTable:
        """The GPUs of each kind's Jobs, as the operator's settings put them into its table."""
        jobs: dict[str, JobGpus] = info.data.get("gpu_jobs") or {}
        return with_cluster_settings(prices, job_gpus={kind: job.count for kind, job in jobs.items()})

    @field_validator("api_tokens_file", "api_owners_file", "api_kubeconfig", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("api_auth", "api_trusted_proxies", "api_token_audiences", mode="before")
    @classmethod
    def _comma_separated(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("api_auth")
    @classmethod
    def _auth_modes(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("name at least one of tokens, proxy, kubernetes, local")
        if "local" in value and len(value) > 1:
            raise ValueError("local stands alone: a laptop has no other identities")
        return list(dict.fromkeys(value))


def load_settings() -> ApiSettings:
    """Settings from the environment; ValueError naming the variables that are wrong."""
    try:
        return ApiSettings()
    except ValidationError as exc:
        problems = "; ".join(
            f"{ENV_PREFIX}{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}" for e in exc.errors()
        )
        raise ValueError(problems) from None
