"""Operator settings, from the environment (the chart's ConfigMap, envFrom) via pydantic-settings.

Nested values (per-kind defaults, namespaces) are JSON in the environment, e.g.
CONTENTGEN_WATCH_NAMESPACES='["team-a","team-b"]'.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Resources(BaseModel):
    requests: dict[str, str] = {}
    limits: dict[str, str] = {}


class KindDefaults(BaseModel):
    """How the Jobs of one kind run."""

    resources: Resources = Resources()
    active_deadline_seconds: int = Field(default=6 * 3600, ge=60)
    backoff_limit: int = Field(default=2, ge=0, le=10)
    ttl_seconds_after_finished: int = Field(default=24 * 3600, ge=0)
    work_volume_size: str = "10Gi"


def _defaults() -> dict[str, KindDefaults]:
    return {
        "LoraTraining": KindDefaults(
            resources=Resources(
                requests={"cpu": "2", "memory": "2Gi", "ephemeral-storage": "2Gi"},
                limits={"memory": "6Gi", "ephemeral-storage": "20Gi"},
            ),
            active_deadline_seconds=6 * 3600,
            work_volume_size="20Gi",
        ),
        "ImageGeneration": KindDefaults(
            resources=Resources(
                requests={"cpu": "250m", "memory": "512Mi", "ephemeral-storage": "256Mi"},
                limits={"memory": "1Gi", "ephemeral-storage": "2Gi"},
            ),
            active_deadline_seconds=1800,
            work_volume_size="2Gi",
        ),
        "Transcription": KindDefaults(
            resources=Resources(
                requests={"cpu": "250m", "memory": "512Mi", "ephemeral-storage": "1Gi"},
                limits={"memory": "2Gi", "ephemeral-storage": "10Gi"},
            ),
            active_deadline_seconds=4 * 3600,
            work_volume_size="10Gi",
        ),
    }


class SecretKey(BaseModel):
    """A key in a Secret, handed to the worker through secretKeyRef (never as a value)."""

    name: str = ""
    key: str = ""


class OperatorSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONTENTGEN_", env_nested_delimiter="__", extra="ignore")

    watch_namespaces: list[str] = Field(default=[], description="Namespaces to watch; empty: all.")
    worker_image: str = "ghcr.io/contentgen/contentgen-worker:0.1.0"
    worker_image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = "IfNotPresent"
    worker_service_account: str = "contentgen-worker"
    worker_cluster_role: str = Field(
        default="contentgen-worker", description="The ClusterRole of the worker's progress channel."
    )
    manage_worker_access: bool = Field(
        default=True,
        description="Create the worker's ServiceAccount and RoleBinding in a namespace before its first "
        "Job (cluster-wide installs); off when the chart creates them (watchNamespaces).",
    )
    store: str = Field(default="", description="Object store URL the workers write to: s3://bucket/prefix.")
    mongodb_uri: str = Field(default="", description="The catalog; from a Secret. Empty: no catalog.")
    catalog_database: str = "contentgen"
    max_running_jobs_per_namespace: int = Field(default=4, ge=1)
    kinds: dict[str, KindDefaults] = Field(default_factory=_defaults)
    # Provider keys and store credentials: references only.
    fal_key_secret: SecretKey = SecretKey(name="", key="FAL_KEY")
    assemblyai_key_secret: SecretKey = SecretKey(name="", key="ASSEMBLYAI_API_KEY")
    s3_secret: str = Field(default="", description="Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.")
    s3_endpoint_url: str = ""
    s3_region: str = ""
    # Passed to workers as they are.
    max_download_bytes: int = 4 * 1024**3
    max_video_seconds: float = 4 * 3600
    allow_private_sources: bool = False
    # Operator process.
    reconcile_interval_seconds: float = Field(default=10.0, gt=0)
    health_port: int = 8080
    metrics_port: int = 9090
    peering_name: str = "contentgen"
    log_format: Literal["json", "plain"] = "json"
