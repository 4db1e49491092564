"""The snapshot the operator would freeze into a Job for a manifest, without a cluster (for
`contentgen render-job`): the same decision code, with the world as a manifest can tell it."""

from __future__ import annotations

from typing import Any

from contentgen.api import KINDS, Resource, now
from contentgen.api.base_models import loading
from contentgen.api.sharing import Grant

from .decide import Observed, World, decide, lora_key, lora_refs
from .observe import ImageState, LoraState, UsableVersion
from .settings import OperatorSettings

# The provider a LoraEvaluation without spec.provider shows (the operator uses the one that
# trained the version; a LoraTraining's default is fal).
PREVIEW_PROVIDER = "fal"


def _placeholder(
    namespace: str, owner: str, ref: dict[str, Any], provider: str, user: str = "", model: str = ""
) -> LoraState:
    """A LoraTraining as a loraRef will find it: its version's model, trigger word and dataset as
    placeholders for what the operator resolves at run time, made for what `model` loads (the
    operator checks the version's own base model at run time)."""
    name, pinned = ref["name"], ref.get("version")
    version = int(pinned or 1)
    which = f"version {pinned}" if pinned else "the latest version"
    bases = loading(model)
    uri = f"<the model of {which} of LoraTraining {namespace}/{name}>"
    usable = UsableVersion(
        version, uri, provider, "<its trigger word>", "<its dataset archive>", bases[0] if bases else ""
    )
    return LoraState(
        name=name,
        owner=owner,
        phase="Succeeded",
        latest_version=version,
        latest_model_uri=uri,
        model_uris=((version, uri),),
        usable=(usable,),
        # another owner's LoRA: the preview assumes the grant the operator checks at run time
        grants=(Grant(f"owner:{user}", "use"),) if user and user != owner else (),
    )


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
    provider = str(spec.get("provider") or PREVIEW_PROVIDER)
    loras = {
        lora_key(ref): _placeholder(
            ref.get("namespace") or namespace,
            ref.get("owner") or spec["owner"],
            ref,
            provider,
            spec["owner"],
            str(spec.get("model") or ""),
        )
        for ref in lora_refs(spec)
    }
    image = None
    if isinstance(spec.get("imageRef"), dict):  # an ImageGeneration's picture, resolved at run time
        ref = spec["imageRef"]
        version, index = int(ref.get("version") or 1), int(ref.get("image") or 1)
        which = f"version {ref['version']}" if ref.get("version") else "the latest version"
        picture = f"<image {index} of {which} of ImageGeneration {namespace}/{ref['name']}>"
        pictures = tuple(picture if n == index else f"<image {n}>" for n in range(1, index + 1))
        image = ImageState(ref["name"], spec["owner"], "Succeeded", "", version, ((version, pictures),))
    observed = Observed(
        kind=KINDS[resource.kind],
        name=meta.name or "unnamed",
        namespace=namespace,
        uid=preview_uid(resource),
        generation=meta.generation or 1,
        spec=spec,
        status={k: v for k, v in status.items() if k in ("versions", "latestVersion")},
    )
    decision = decide(observed, World(now=now(), loras=loras, image=image))
    if decision.job is None:  # cannot happen for a fresh generation; kept explicit
        raise ValueError(f"no Job would be created: {decision.state.message}")
    return render_job(decision.job, settings)
