"""Where a `provider: cluster` ImageGeneration's pictures, or a VideoGeneration's clip, are drawn
(issue 47, docs/cluster-gpus.md#warm-pools): by its own Job, which loads the base model, or by the
warm pool of that model, which keeps it loaded. A pure decision, from the spec and the operator's
settings.

Either way the resource runs as a Job (its status, versions, outputs, cost, cancel): a pooled
Job's worker hands only the drawing to the pool's Service (CONTENTGEN_CLUSTER_POOL_URL), so it
holds no GPU and needs no models; the pool's pods hold them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contentgen.api import KINDS, SpecSnapshot
from contentgen.api.providers import provider_entry
from contentgen.api.video import shape_of_wire
from contentgen.providers.cluster.generation.video_models import STAGED, staged_directory

from .settings import ClusterPool, OperatorSettings

# On a pooled Job's pod: the pool it waits on, which the pool's autoscaler counts (KEDA's query).
LABEL_POOL = "contentgen.io/pool"
# On every cluster ImageGeneration's Job: where it draws and why (kubectl describe job).
ANNOTATION_DENOISING = "contentgen.io/denoising"


@dataclass(frozen=True)
class Denoising:
    pool: ClusterPool | None  # None: the Job draws itself
    why: str  # one line, for the Job's annotation

    def describe(self) -> str:
        return f"pool {self.pool.name}: {self.why}" if self.pool else f"job: {self.why}"


def base_model(spec: dict[str, Any], default_model: str, settings: OperatorSettings) -> str:
    """The staged model a spec's `model` draws with: a video model's directory at the clip's
    resolution (providers/cluster/generation/video_models.py), else a FLUX model's
    (providers/cluster/provider.py)."""
    model = str(spec.get("model") or default_model)
    if model in STAGED:
        return staged_directory(model, shape_of_wire({**spec, "model": model}).resolution)
    return settings.base_model(model)


def denoising(snapshot: SpecSnapshot, settings: OperatorSettings) -> Denoising | None:
    """Where `snapshot` draws; None where the question does not arise (a kind without
    spec.denoising, or a provider without the cluster's own GPUs)."""
    kind = KINDS.get(snapshot.kind)
    if kind is None or "denoising" not in kind.spec.model_fields:
        return None
    if not provider_entry(snapshot.provider).own_gpus:
        return None
    asked = str(snapshot.spec.get("denoising") or "")
    wanted = asked or settings.cluster_denoising
    source = "spec.denoising" if asked else "the chart's pools.denoising"
    if wanted == "job":
        return Denoising(None, f"{source} is job")
    model = base_model(snapshot.spec, str(kind.spec.model_fields["model"].default), settings)
    pool = next((p for p in settings.cluster_pools if p.base_model == model), None)
    if pool is None:
        return Denoising(None, f"{source} is pool, but no pool serves {model} (the chart's pools.items)")
    return Denoising(pool, f"{source} is pool, and it serves {model} at {pool.url}")
