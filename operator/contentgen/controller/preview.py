"""The snapshot the operator would freeze into a Job for a manifest, without a cluster (for
`contentgen render-job`): the same decision code, with the world as a manifest can tell it."""

from __future__ import annotations

from typing import Any

from contentgen.api import KINDS, Resource, now

from .observe import LoraState
from .reconcile import Observed, World, decide
from .settings import OperatorSettings


def preview_uid(resource: Resource[Any]) -> str:
    from contentgen.pipeline.local_run import local_uid

    meta = resource.metadata
    return meta.uid or local_uid(resource.kind, meta.namespace or "default", meta.name or "unnamed")


def render_for_manifest(resource: Resource[Any], settings: OperatorSettings) -> dict[str, Any]:
    from .jobs import render_job

    meta = resource.metadata
    namespace = meta.namespace or "default"
    spec = resource.spec.wire()
    status = resource.status or {}
    # A loraRef cannot be resolved without the cluster: show what will be substituted.
    loras = {
        entry["loraRef"]["name"]: LoraState(
            name=entry["loraRef"]["name"],
            owner=spec["owner"],
            phase="Succeeded",
            latest_version=1,
            latest_model_uri=f"<the latest model of LoraTraining {namespace}/{entry['loraRef']['name']}>",
        )
        for entry in spec.get("loras") or []
        if "loraRef" in entry
    }
    observed = Observed(
        kind=KINDS[resource.kind],
        name=meta.name or "unnamed",
        namespace=namespace,
        uid=preview_uid(resource),
        generation=meta.generation or 1,
        spec=spec,
        status={k: v for k, v in status.items() if k in ("versions", "latestVersion")},
    )
    decision = decide(observed, World(now=now(), loras=loras))
    if decision.job is None:  # cannot happen for a fresh generation; kept explicit
        raise ValueError(f"no Job would be created: {decision.status.get('message')}")
    return render_job(decision.job, settings)
