"""The providers' own settings, from the environment (CONTENTGEN_*): how far to trust what a
provider documents, what to trade for privacy, and where prices come from (README's "Paid work"
explains each), and which staged models the cluster's GPUs run. The worker and `contentgen run`
read them; the operator has them too (its settings extend these) and passes them into every
worker Job. `ClusterWorkerSettings` are a GPU worker's own: the operator sets them per Job from
its GPU settings (the models' volume, the Job's GPUs), and never the device (the pod's GPU)."""

from __future__ import annotations

import functools
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from contentgen.api.providers import provider_entry
from contentgen.errors import InvalidInput

# A staged model's name: one directory under the models' root (providers/cluster/models.py).
MODEL_NAME = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$"
PREFIX = "CONTENTGEN_"


class ProviderSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CONTENTGEN_", extra="ignore")

    fal_store_io: bool = Field(
        default=True,
        description="Send X-Fal-Store-IO: 1 with every fal submit, so fal keeps the request's input "
        "and output (30 days) and a submit whose answer was lost can be recognised in fal's request "
        "list. false sends X-Fal-Store-IO: 0: fal keeps no payloads (privacy), and such a submit ends "
        "in ProviderOutcomeUnknown instead.",
    )
    fal_pricing_api: bool = Field(
        default=True,
        description="Price fal usage with fal's pricing API (GET api.fal.ai/v1/models/pricing, the "
        "account's own prices, read once an hour per worker); false, or when the API cannot be read, "
        "the price table (CONTENTGEN_PRICES).",
    )
    assemblyai_resolve_window_seconds: float = Field(
        default=120.0,
        ge=0,
        le=3600,
        description="How long AssemblyAI's transcript list is watched for a transcript whose create "
        "answer was lost before deciding it was not created (the list promises no read-after-write).",
    )
    assemblyai_unresolved: Literal["fail", "resubmit"] = Field(
        default="fail",
        description="What happens to a lost transcript create that the list never showed: fail "
        "(ProviderOutcomeUnknown, nothing sent again) or resubmit (create it again, which pays twice "
        "if the list was only late).",
    )

    cluster_flux_model: str = Field(
        default="FLUX.1-dev",
        pattern=MODEL_NAME,
        description="provider cluster: the staged FLUX model (a directory under the models' root) that "
        "LoRAs are trained on (a LoraTraining's default training.model) and flux-dev and flux-lora "
        "generate with.",
    )
    cluster_flux_schnell_model: str = Field(
        default="FLUX.1-schnell",
        pattern=MODEL_NAME,
        description="provider cluster: the staged FLUX model flux-schnell generates with.",
    )
    cluster_inference_steps: int = Field(
        default=0,
        ge=0,
        le=200,
        description="provider cluster: denoising steps per picture; 0: the model's own (28 for dev, 4 for "
        "schnell).",
    )
    cluster_whisper_batch_size: int = Field(
        default=8,
        ge=1,
        le=64,
        description="provider cluster: the pieces of audio (cut at pauses by the voice-activity filter) "
        "that Whisper decodes at once (faster-whisper's batched pipeline). More is faster on a GPU while "
        "its memory lasts; 1 decodes one piece at a time.",
    )

    offline_step_seconds: float = Field(
        default=0.0,
        ge=0,
        le=10,
        description="provider offline: how long each simulated training step takes (0: none), so that a "
        "training's live view and a stop (contentgen.io/stop, contentgen assets stop) can be tried by hand "
        "on a simulation.",
    )

    def environment(self, provider: str) -> dict[str, str]:
        """The variables a worker running `provider` reads, set to these values (the operator
        passes its own settings into every Job this way): the settings its entry declares."""
        return {s.variable: _as_variable(getattr(self, s.field)) for s in provider_entry(provider).settings}


def _as_variable(value: Any) -> str:
    """A setting as its variable says it, as pydantic reads it back (true, 120, 0.5; a float in
    full where its short form would round it)."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        short = f"{value:g}"
        return short if float(short) == value else repr(value)
    return str(value)


class ClusterWorkerSettings(BaseSettings):
    """What a worker of provider cluster reads besides `ProviderSettings` (docs/cluster-gpus.md)."""

    model_config = SettingsConfigDict(
        env_prefix=PREFIX, extra="ignore", env_ignore_empty=True, str_strip_whitespace=True
    )

    cluster_models_dir: Path = Field(
        default=Path("/models"),
        description="The models' root: a directory per staged model (the Job's models' volume, or the "
        "cache the store's models are copied into). The operator sets it from the chart's gpu.models.",
    )
    cluster_models_store: str = Field(
        default="",
        description="An object-store prefix (s3://bucket/prefix) whose NAME/ directories, each with its "
        "SHA256SUMS, are copied once per node into the models' root; empty: none. The operator sets it "
        "from gpu.models.storePrefix.",
    )
    cluster_device: str = Field(
        default="",
        pattern=r"^(|cpu|cuda(:\d+)?)$",
        description="cpu, cuda or cuda:N; empty: the GPU when there is one, else the CPU. Never set by the "
        "operator: a GPU pod sees the GPUs it holds and runs on them.",
    )
    cluster_pool_url: str = Field(
        default="",
        pattern=r"^(|http://[^/\s,]+(,http://[^/\s,]+)*)$",
        description="A warm pool of generation workers (http://HOST:PORT; several, comma-separated, for "
        "pods reached each at its own address) that keeps the FLUX pipeline loaded: an ImageGeneration's "
        "pictures are drawn there, by the pod every address the URLs name that holds its LoRAs, else "
        "the least loaded, instead of by a pipeline this worker loads (unless its spec says denoising: "
        "job), and a run made outside the operator is estimated without the load; empty: the worker "
        "draws them itself.",
    )
    gpu_count: int = Field(
        default=1,
        ge=1,
        le=64,
        description="The GPUs the worker holds: its GPU-seconds are the seconds it works × this. The "
        "operator sets it to the Job's GPU request.",
    )


Settings = TypeVar("Settings", bound=BaseSettings)


@functools.cache
def _only_given(cls: type[Settings]) -> type[Settings]:
    """`cls` reading only what it is given: a BaseSettings validated from a mapping still fills the
    fields the mapping leaves out from the process's environment, and an `env` given for another
    process (a Job's, rendered by the operator or the chart) must not take the reader's values."""

    class Given(cls):  # type: ignore[valid-type,misc]
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            *_: Any,
            **__: Any,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (init_settings,)

    Given.__name__ = Given.__qualname__ = cls.__name__
    return Given


def from_environment(cls: type[Settings], env: Mapping[str, str] | None = None) -> Settings:
    """`cls` read from `env` (the process's environment when None); a value it refuses is
    InvalidInput naming the variable and why, in one line."""
    try:
        if env is None:
            return cls()
        given = {k[len(PREFIX) :].lower(): v.strip() for k, v in env.items() if k.startswith(PREFIX)}
        fields = cls.model_fields
        only: type[Settings] = _only_given(cls)
        return only.model_validate({k: v for k, v in given.items() if k in fields and v})
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        variable = f"{PREFIX}{str(error['loc'][0]).upper()}" if error["loc"] else cls.__name__
        why = re.sub(r"^Value error, |^String should match pattern .*", "", str(error["msg"]))
        why = why or "not a value it takes (see docs/reference/settings.md)"
        raise InvalidInput(f"{variable} is {error.get('input')!r}: {why[:1].lower()}{why[1:]}") from None
