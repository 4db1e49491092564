"""What the operator would make of a manifest, without a cluster (for `contentgen render-job`): the
same decision code, with the world as a manifest can tell it, and the same rendering (jobs.py
`refused`, `render_run`): the Job, the JobSet or the TrainJob it creates, or the reason and message
it holds the resource with instead (TooManyGpus, BackendUnavailable)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from contentgen.api import KINDS, Resource, now
from contentgen.api.base_models import loading
from contentgen.api.crd import as_stored
from contentgen.api.providers import FAL
from contentgen.api.sharing import Grant

from .decide import Observed, World, decide, lora_key, lora_refs, run_provider
from .observe import ImageState, LoraState, UsableVersion
from .settings import OperatorSettings

# The provider a LoraEvaluation without spec.provider shows (the operator uses the one that
# trained the version; a LoraTraining's default is fal).
PREVIEW_PROVIDER = FAL.name


@dataclass(frozen=True)
class Held:
    """The operator creates nothing: the resource waits, Pending, for `reason` (its status's
    Ready condition), saying `message`."""

    reason: str
    message: str


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


def render_for_manifest(
    resource: Resource[Any], settings: OperatorSettings, *, namespace_queue: str = ""
) -> dict[str, Any] | Held:
    """What the operator makes of `resource`'s first generation: its run's object (jobs.render_run),
    or why it holds it instead, in its status's words. `namespace_queue`: the Kueue LocalQueue its
    namespace's label names (the chart's kueue.namespaceLabel), if any."""
    from .jobs import refused, render_run

    meta = resource.metadata
    namespace = meta.namespace or "default"
    # what the API server stores: the fields given, with the CRD's defaults (the operator reads that)
    spec = as_stored(
        KINDS[resource.kind], resource.spec.model_dump(mode="json", by_alias=True, exclude_unset=True)
    )
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
    observed = Observed(
        kind=KINDS[resource.kind],
        name=meta.name or "unnamed",
        namespace=namespace,
        uid=preview_uid(resource),
        generation=meta.generation or 1,
        spec=spec,
        status={k: v for k, v in status.items() if k in ("versions", "latestVersion")},
    )
    gpus = refused(resource.kind, spec, run_provider(spec, loras), settings)
    world = World(
        now=now(),
        loras=loras,
        image=_image(spec, namespace),
        gpus_refused=(gpus.reason, gpus.message) if gpus is not None else None,
    )
    decision = decide(observed, world)
    if decision.job is None:
        ready = next(c for c in decision.status.get("conditions", []) if c["type"] == "Ready")
        return Held(str(ready["reason"]), decision.state.message)
    return render_run(decision.job, settings, namespace_queue=namespace_queue)


def _image(spec: dict[str, Any], namespace: str) -> ImageState | None:
    """A VideoGeneration's imageRef as it will resolve: the picture a placeholder for the one the
    operator resolves at run time."""
    if not isinstance(spec.get("imageRef"), dict):
        return None
    ref = spec["imageRef"]
    version, index = int(ref.get("version") or 1), int(ref.get("image") or 1)
    which = f"version {ref['version']}" if ref.get("version") else "the latest version"
    picture = f"<image {index} of {which} of ImageGeneration {namespace}/{ref['name']}>"
    pictures = tuple(picture if n == index else f"<image {n}>" for n in range(1, index + 1))
    return ImageState(ref["name"], spec["owner"], "Succeeded", "", version, ((version, pictures),))
