"""Operator settings, from the environment (the chart's ConfigMap, envFrom) via pydantic-settings.

Nested values (per-kind defaults, namespaces) are JSON in the environment, e.g.
CONTENTGEN_WATCH_NAMESPACES='["team-a","team-b"]'.
"""

from __future__ import annotations

import os
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from contentgen.api.base_models import picture_directory
from contentgen.api.image import ImageModel
from contentgen.api.providers import PROVIDERS, provider_entry
from contentgen.pricing import PriceTable, with_cluster_settings
from contentgen.providers.cluster.generation.video_models import STAGED, staged_directory
from contentgen.providers.settings import MODEL_NAME, ProviderSettings

from .budget import Budgets
from .job_defaults import GpuJob, KindDefaults
from .kinds import CONTROLLER_KINDS
from .owners import OwnerPolicy

# A key Secret's parts, each its own variable (CONTENTGEN_<PROVIDER>_KEY_SECRET__NAME, __KEY)
KEY_SECRET_PARTS = ("name", "key")


class _KeySecrets(PydanticBaseSettingsSource):
    """Each keyed provider's Secret from CONTENTGEN_<PROVIDER>_KEY_SECRET__NAME and __KEY, read
    for every provider api/providers.py declares, into `key_secrets`."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, dict[str, dict[str, str]]]:
        found = {
            p.name: {
                part: os.environ.get(f"{p.key_secret_variable}__{part.upper()}", "")
                for part in KEY_SECRET_PARTS
            }
            for p in PROVIDERS.values()
            if p.key
        }
        return {"key_secrets": {name: secret for name, secret in found.items() if any(secret.values())}}


def _defaults() -> dict[str, KindDefaults]:
    """Each kind's Job defaults, as its controller module declares them (controller/kinds/)."""
    return {name: kind.job for name, kind in CONTROLLER_KINDS.items()}


class GpuTraining(BaseModel):
    """What the GPU nodes hold and what runs a LoraTraining of several GPUs (spec.resources,
    docs/cluster-training.md#several-gpus): the chart's gpu.training."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    gpus_per_node: int = Field(
        default=8,
        ge=0,
        le=64,
        description="The most GPUs (of gpu.jobs.LoraTraining.resourceName) one GPU node holds: a training "
        "asking for more on a node is refused (TooManyGpus); 0: no limit known.",
    )
    max_nodes: int = Field(
        default=0,
        ge=0,
        le=1024,
        description="The most GPU nodes a training may ask for (how many the cluster has, or a team may "
        "hold at once): more is refused (TooManyGpus); 0: no limit.",
    )
    backend: Literal["jobset", "trainjob"] = Field(
        default="jobset",
        description="What runs a training of several nodes whose resources.backend is auto: a JobSet, or "
        "a Kubeflow Trainer TrainJob.",
    )
    backends: list[Literal["job", "jobset", "trainjob"]] = Field(
        default=["job"],
        description="The backends this cluster runs (JobSet's and Kubeflow Trainer's controllers "
        "installed): a training asking for another is refused (BackendUnavailable).",
    )
    runtime: str = Field(
        default="torch-distributed",
        description="The ClusterTrainingRuntime a TrainJob runs (Kubeflow Trainer's torch-distributed).",
    )
    port: int = Field(
        default=29400, ge=1024, le=65535, description="The training processes' rendezvous port."
    )
    topology: str = Field(
        default="",
        pattern=r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$|^$",
        max_length=316,
        description="A node label of Kueue's topology-aware scheduling (a level of its Topology, e.g. a "
        "rack or block) that holds all of a training's nodes: its pods ask Kueue for one such domain "
        "(kueue.x-k8s.io/podset-required-topology); empty: none asked.",
    )


class ClusterPool(BaseModel):
    """A warm generation pool the chart made (pools.items): where pooled Jobs send their drawing."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=63, description="Its name.")
    base_model: str = Field(pattern=MODEL_NAME, description="The staged base model it keeps loaded.")
    url: str = Field(pattern=r"^http://[^/\s]+$", description="Its Service: http://HOST:PORT.")
    gpus: int = Field(
        default=1,
        ge=1,
        le=16,
        description="GPUs of each of its pods, which a request it draws holds (gpus.count).",
    )


def gpu_defaults() -> dict[str, GpuJob]:
    """Each kind's Jobs of provider cluster, as its controller module declares them."""
    return {name: kind.gpu_job for name, kind in CONTROLLER_KINDS.items()}


class ModelsSource(BaseModel):
    """Where GPU workers find the base models (docs/cluster-gpus.md): a PersistentVolumeClaim or a
    host path laid out as the models' own directories (mounted read-only), or a store prefix the
    worker copies once per node into a cache (a host path; an emptyDir per pod without one)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    persistent_volume_claim: str = Field(
        default="", description="A PVC (in each namespace) holding the models."
    )
    host_path: str = Field(default="", description="A directory on every GPU node holding the models.")
    store_prefix: str = Field(
        default="", description="s3://bucket/prefix the worker copies the models from, once per node."
    )
    cache_host_path: str = Field(
        default="", description="With storePrefix: the node's directory the models are copied into."
    )
    cache_size: str = Field(
        default="100Gi", description="With storePrefix and no cacheHostPath: the emptyDir's size."
    )

    @model_validator(mode="after")
    def _one_source(self) -> ModelsSource:
        given = [n for n in ("persistent_volume_claim", "host_path", "store_prefix") if getattr(self, n)]
        if len(given) > 1:
            names = ", ".join(to_camel(n) for n in given)
            raise ValueError(f"models: set one of persistentVolumeClaim, hostPath, storePrefix (not {names})")
        return self


class SecretKey(BaseModel):
    """A key in a Secret, handed to the worker through secretKeyRef (never as a value)."""

    name: str = ""
    key: str = ""


class OperatorSettings(ProviderSettings):
    """The operator's settings; the providers' (CONTENTGEN_FAL_STORE_IO, ...) are inherited and
    passed into every worker Job (jobs.py)."""

    model_config = SettingsConfigDict(env_prefix="CONTENTGEN_", env_nested_delimiter="__", extra="ignore")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _KeySecrets(settings_cls), dotenv_settings, file_secret_settings)

    watch_namespaces: list[str] = Field(
        default=[], description="Namespaces to watch (JSON list); empty: all."
    )
    worker_image: str = Field(
        default="ghcr.io/contentgen/contentgen-worker:0.1.0", description="The image Jobs run."
    )
    worker_image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        default="IfNotPresent", description="Pull policy of the worker image."
    )
    worker_service_account: str = Field(
        default="contentgen-worker", description="The ServiceAccount worker pods run as."
    )
    worker_service_account_annotations: dict[str, str] = Field(
        default={},
        description="Annotations (JSON) of the worker ServiceAccounts the operator creates, e.g. for "
        "workload identity (eks.amazonaws.com/role-arn).",
    )
    worker_image_pull_secrets: list[str] = Field(
        default=[], description="Secrets (JSON list of names, in each namespace) to pull the worker image."
    )
    worker_node_selector: dict[str, str] = Field(
        default={}, description='nodeSelector (JSON) of worker pods, e.g. {"pool": "batch"}.'
    )
    worker_tolerations: list[dict[str, Any]] = Field(
        default=[], description="Tolerations (JSON list) of worker pods, as in a pod spec."
    )
    worker_affinity: dict[str, Any] = Field(
        default={}, description="Affinity (JSON) of worker pods, as in a pod spec."
    )
    worker_priority_class_name: str = Field(default="", description="PriorityClass of worker pods.")
    worker_termination_grace_period_seconds: int = Field(
        default=30,
        ge=0,
        le=3600,
        description="Seconds a deleted worker pod has between SIGTERM (the worker stops where it is) "
        "and SIGKILL; a deleted resource's cleanup waits this long, and 30 s more, for its pod to end.",
    )
    worker_cluster_role: str = Field(
        default="contentgen-worker", description="The ClusterRole of the worker's progress channel."
    )
    manage_worker_access: bool = Field(
        default=True,
        description="Create the worker's ServiceAccount and RoleBinding in a namespace before its first "
        "Job (cluster-wide installs); off when the chart creates them (watchNamespaces).",
    )
    store: str = Field(
        default="", description="Object store the workers write to: s3://bucket/prefix. Required."
    )
    mongodb_uri: str = Field(
        default="", description="The catalog (mongodb://...), from a Secret. Empty: no catalog is written."
    )
    max_running_jobs_per_namespace: int = Field(
        default=4, ge=1, description="Jobs running at once per namespace; more wait as Pending/Queued."
    )
    kinds: dict[str, KindDefaults] = Field(
        default_factory=_defaults,
        description="Per kind (JSON): resources, activeDeadlineSeconds, backoffLimit, "
        "ttlSecondsAfterFinished, workVolumeSize of its Jobs.",
    )
    key_secrets: dict[str, SecretKey] = Field(
        default_factory=dict,
        description="Per provider that needs an API key, the Secret (name, key) holding it, handed to "
        "workers by reference: CONTENTGEN_<PROVIDER>_KEY_SECRET__NAME and __KEY (the key's usual name "
        "when unset). No Secret: that provider's resources wait as MissingCredentials.",
    )
    s3_secret: str = Field(
        default="",
        description="Secret with AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY for workers; empty: "
        "workload identity.",
    )
    copy_s3_secret: bool = Field(
        default=False,
        description="Copy the Secret s3_secret from the operator's own namespace into each namespace "
        "before its first Job there, and keep the copies in step with it (cluster-wide installs: the "
        "chart's s3.copyToNamespaces); a Secret of that name the operator did not make is left alone.",
    )
    store_access: Literal["per-run", "secret", "workload-identity"] = Field(
        default="secret",
        description="How workers reach the store (docs/security.md): per-run (credentials the operator "
        "asks the store's STS for at each Job, narrowed by a session policy to the run's own keys and "
        "its spec's inputs, renewed while it runs, in a Secret of the run's own), secret (the Secret "
        "s3_secret of the Job's namespace: the whole bucket), workload-identity (none: the workers' "
        "ServiceAccount's).",
    )
    sts_role_arn: str = Field(
        default="",
        description="per-run: the role the operator assumes for each run (AWS: a role the operator's "
        "identity may assume, allowed the bucket; SeaweedFS, Ceph RGW: the role configured there).",
    )
    sts_endpoint_url: str = Field(
        default="", description="per-run: the STS endpoint; empty: the store's endpoint, or AWS's."
    )
    sts_window_seconds: int = Field(
        default=1800,
        ge=60,
        le=43200,
        description="per-run: how long a run's credentials work past their last renewal (renewed at "
        "half of it while the run lives): how long they outlive the run at most.",
    )
    s3_endpoint_url: str = Field(
        default="", description="An S3-compatible endpoint (MinIO, ...); empty: AWS."
    )
    s3_region: str = Field(default="", description="The store's region.")
    store_public_endpoint_url: str = Field(
        default="",
        description="The S3 endpoint as providers and browsers reach it; links workers hand to providers "
        "are signed for it. Empty: the store's own endpoint.",
    )
    max_download_bytes: int = Field(default=4 * 1024**3, gt=0, description="Largest source a worker fetches.")
    max_video_seconds: float = Field(default=4 * 3600, gt=0, description="Longest source a worker accepts.")
    allow_private_sources: bool = Field(
        default=False, description="Let workers fetch sources on internal addresses (off: SSRF protection)."
    )
    offline: bool = Field(
        default=False,
        description="Run the Jobs of paid providers (fal, AssemblyAI) with the offline provider "
        "(placeholders, no paid API, no keys needed), labelled as such in status and catalog: for "
        "`contentgen local-cluster --offline` and demos. provider cluster runs as asked.",
    )
    reconcile_interval_seconds: float = Field(
        default=10.0,
        gt=0,
        description="First retry of a resource that waits for something nothing announces (the store "
        "after an outage); doubles up to 5 minutes.",
    )
    resync_interval_seconds: float = Field(
        default=300.0,
        gt=0,
        description="The safety net: how often every unfinished resource is looked at again, besides the "
        "events that drive the operator.",
    )
    stale_upload_seconds: float = Field(
        default=86400.0,
        gt=0,
        description="The leader aborts unfinished multipart uploads under the store's prefix begun more "
        "than this long ago (at its start, then hourly): parts an upload cut by a store outage left "
        "behind, stored and billed until aborted. Longer than any upload takes.",
    )
    catalog_write_interval_seconds: float = Field(
        default=1.0,
        gt=0,
        le=60,
        description="Live progress in the catalog: at most one write per resource this often (phase, "
        "progress, stage as the worker reports them); the latest state is always written.",
    )
    workers: int = Field(
        default=32,
        ge=1,
        le=1000,
        description="Resources reconciled, API requests and blocking calls (store, catalog) at once.",
    )
    api_timeout_seconds: float = Field(
        default=30.0, gt=0, description="Timeout of each of the operator's API requests."
    )
    leader_election: bool = Field(
        default=True,
        description="Elect one active replica with a Lease (coordination.k8s.io); off: this one acts alone.",
    )
    leader_election_namespace: str = Field(
        default="",
        description="The Lease's namespace; empty: the operator's own (POD_NAMESPACE, else contentgen).",
    )
    leader_election_lease: str = Field(default="contentgen-operator", description="The Lease's name.")
    share_policy_config_map: str = Field(
        default="",
        description="The ConfigMap in the operator's namespace (the Lease's) that the leader mirrors "
        "LoraTrainings' grants into, the params of the chart's share policy (docs/sharing.md); empty: none.",
    )
    leader_identity: str = Field(
        default="", description="This replica's name in the Lease; empty: the pod's name (HOSTNAME)."
    )
    health_port: int = Field(
        default=8080, description="/healthz (liveness) and /readyz (readiness), also on a standby; 0: off."
    )
    metrics_port: int = Field(default=9090, description="Prometheus /metrics; 0: off.")
    log_format: Literal["json", "plain"] = Field(default="json", description="Structured JSON or plain logs.")
    prices: PriceTable = Field(
        default_factory=PriceTable,
        description="The price table (JSON) runs are estimated and priced with; see Spend and budgets.",
    )
    owner_policy: OwnerPolicy = Field(
        default_factory=OwnerPolicy,
        description="Owners bound to namespaces (JSON, the chart's ownerPolicy): namespaces {name: "
        "[owners]} where a namespace has no contentgen.io/owners annotation, and default [owners] "
        'elsewhere (["*"]: any). A resource whose owner is not allowed waits as OwnerNotAllowed.',
    )
    budgets: Budgets = Field(
        default_factory=Budgets,
        description="Monthly budgets in USD: namespaceMonthlyUsd, ownerMonthlyUsd (defaults), namespaces "
        "and owners ({name: USD}). Unset: no limit.",
    )
    # provider: cluster (docs/cluster-gpus.md)
    gpu_worker_image: str = Field(
        default="ghcr.io/contentgen/contentgen-worker-gpu:0.1.0",
        description="The image the Jobs of provider cluster that hold GPUs run (torch, diffusers, "
        "faster-whisper); one whose pictures a warm pool draws runs the worker image.",
    )
    gpu_jobs: dict[str, GpuJob] = Field(
        default_factory=gpu_defaults,
        description="Per kind (JSON), the Jobs of provider cluster: count and resourceName of their "
        "GPUs, a nodeSelector added to the workers', and their resources.",
    )
    gpu_training: GpuTraining = Field(
        default_factory=GpuTraining,
        description="What the GPU nodes hold and what runs a LoraTraining of several GPUs or nodes (JSON: "
        "gpusPerNode, maxNodes, backend, backends, runtime, port): the chart's gpu.training.",
    )
    gpu_node_selector: dict[str, str] = Field(
        default={}, description="nodeSelector (JSON) of GPU workers, over the workers' own."
    )
    gpu_tolerations: list[dict[str, Any]] = Field(
        default=[
            {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
        ],
        description="Tolerations (JSON list) of GPU workers, besides the workers' own.",
    )
    gpu_priority_class_name: str = Field(
        default="", description="PriorityClass of GPU workers; empty: the workers' own."
    )
    cluster_models: ModelsSource = Field(
        default_factory=ModelsSource,
        description="Where GPU workers find the base models (JSON): persistentVolumeClaim, hostPath, or "
        "storePrefix with cacheHostPath (or an emptyDir of cacheSize).",
    )
    cluster_denoising: Literal["job", "pool"] = Field(
        default="job",
        description="Where a provider cluster ImageGeneration or VideoGeneration whose spec.denoising is "
        "unset is drawn: job (its Job loads the base model) or pool (the warm pool of its base model in "
        "cluster_pools, else its Job).",
    )
    cluster_pools: list[ClusterPool] = Field(
        default=[],
        description="The warm generation pools (JSON list of name, baseModel, url, gpus), one per base "
        "model: the chart's pools.items.",
    )
    queue_name: str = Field(
        default="",
        description="The Kueue LocalQueue of GPU Jobs (the kueue.x-k8s.io/queue-name label), where their "
        "namespace names none; empty: none (Jobs are not queued by Kueue).",
    )
    queue_name_label: str = Field(
        default="contentgen.io/queue-name",
        description="The namespace label naming its Kueue LocalQueue for GPU Jobs (cluster-wide installs).",
    )
    read_kueue_workloads: bool = Field(
        default=True,
        description="Read the Kueue Workload of a Job Kueue holds, for Kueue's reason in its Queued "
        "message (list on workloads.kueue.x-k8s.io: the chart's kueue.readWorkloads); off: the message "
        "names the queue only.",
    )

    @model_validator(mode="after")
    def _gpus_priced(self) -> OperatorSettings:
        """Estimates of cluster runs count each kind's GPUs, and where a warm pool draws, no load
        and the pool pod's GPUs (pricing.expected_gpu_seconds)."""
        by_base = {pool.base_model: pool.gpus for pool in self.cluster_pools}
        pool_gpus = {
            model: by_base[self.base_model(model)]
            for model in get_args(ImageModel)
            if self.base_model(model) in by_base
        }
        for model in STAGED:  # a video model is estimated pooled where each of its directories is
            directories = {staged_directory(model, resolution) for resolution in ("480p", "720p")}
            if directories <= set(by_base):
                pool_gpus[model] = max(by_base[d] for d in directories)
        job_gpus = {kind: job.count for kind, job in self.gpu_jobs.items()}
        priced = with_cluster_settings(
            self.prices, job_gpus=job_gpus, denoising=self.cluster_denoising, pool_gpus=pool_gpus
        )
        if priced is not self.prices:
            self.prices = priced
        return self

    def key_secret(self, provider: str) -> SecretKey | None:
        """The Secret holding `provider`'s API key (api/providers.py's `key`), its key the variable's
        own name unless another is set (an empty key would make every Job invalid); None for a
        provider that needs none."""
        entry = provider_entry(provider)
        if not entry.key:
            return None
        given = self.key_secrets.get(provider) or SecretKey()
        return SecretKey(name=given.name, key=given.key or entry.key)

    def base_model(self, model: str) -> str:
        """The staged model an ImageGeneration's `model` draws with (providers/cluster/provider.py):
        a newer family's base's directory, else the FLUX model these settings name."""
        return picture_directory(model, self.cluster_flux_model, self.cluster_flux_schnell_model)
