"""What a spec's references resolve to: one rule for the operator and for laptop runs (pure).

    resolve(spec, namespace, Catalog(...)) -> Resolved | Refusal

A spec names other resources: an ImageGeneration's or a VideoGeneration's `loras[].loraRef` (a
LoraTraining's version, its own owner's or another owner's shared with it for use, made for a model
the spec's model loads: api/base_models.py), a
LoraEvaluation's `loraRef` (a version of its own owner's LoRA that has a dataset archive), a
VideoGeneration's `imageRef` (a picture of an ImageGeneration's version). Where they stand comes
in as plain values (`Catalog`: the operator reads them off the cluster, a laptop run off its store
and catalog); what they resolve to goes out, or a `Refusal` with one wording per reason. A refusal
says what to do about it: in a cluster the operator waits (`wait`: the referenced resource may be
created, trained or shared, and the resource goes on by itself), on a laptop the run ends with the
message (`fail`: nothing changes while it waits).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from .base_models import base_model, lora_fits, misfit
from .evaluation import EvaluatedLora, not_drawn_for, not_evaluable
from .image import ResolvedLora
from .sharing import ANNOTATION as SHARED_ANNOTATION
from .sharing import Grant, annotation_of, grant, may_use, use_refusal, with_grant
from .video import ResolvedImage
from .words import counted

# Where references resolve: in the operator, which reads the cluster, or in a laptop's run.
Room = Literal["operator", "laptop"]
Action = Literal["wait", "fail"]


@dataclass(frozen=True)
class UsableVersion:
    """A LoRA version a loraRef may resolve to, with what a LoraEvaluation needs of it."""

    number: int
    model_uri: str
    provider: str = ""  # the provider that trained it
    trigger_word: str = ""
    dataset_uri: str = ""
    base_model: str = ""  # what it is made for (training.baseModel; "" from before the field: FLUX.1)
    low_noise_uri: str = ""  # a Wan 2.2 A14B pair's low-noise expert


@dataclass(frozen=True)
class LoraState:
    """What an ImageGeneration or a LoraEvaluation needs to know of a LoraTraining it references."""

    name: str
    owner: str
    phase: str
    latest_version: int
    latest_model_uri: str
    uid: str = ""
    reason: str = ""  # its Ready condition's reason (why it failed, when it did)
    message: str = ""  # its status message
    model_uris: tuple[tuple[int, str], ...] = ()  # every usable version's weights (a pinned loraRef)
    older_versions: int = 0  # versions its status no longer lists (api/versions.py)
    usable: tuple[UsableVersion, ...] = ()  # every usable version, as a LoraEvaluation resolves it
    namespace: str = ""
    grants: tuple[Grant, ...] = ()  # its annotation contentgen.io/shared-with (api/sharing.py)
    # Whether `grants` are known: a laptop reads them off the LoRA's catalog record, which a run
    # against another catalog (or none) does not have. A cluster has them on the resource.
    grants_known: bool = True

    def version(self, number: int) -> UsableVersion | None:
        return next((v for v in self.usable if v.number == number), None)

    @property
    def failed(self) -> bool:
        """Failed with nothing usable: a loraRef to it cannot resolve until it trains again."""
        return self.phase == "Failed" and (self.latest_version < 1 or not self.latest_model_uri)


@dataclass(frozen=True)
class ImageState:
    """What a VideoGeneration's imageRef needs to know of the ImageGeneration it names: each usable
    version's pictures, in order."""

    name: str
    owner: str
    phase: str
    uid: str
    latest_version: int
    versions: tuple[tuple[int, tuple[str, ...]], ...] = ()  # (version, its images' URIs)
    # (version, the LoRAs its images were made with, as its status says them)
    loras: tuple[tuple[int, tuple[ResolvedLora, ...]], ...] = ()

    def images(self, version: int) -> tuple[str, ...] | None:
        return next((uris for number, uris in self.versions if number == version), None)

    def loras_of(self, version: int) -> tuple[ResolvedLora, ...]:
        return next((found for number, found in self.loras if number == version), ())


def _no_lineage(uri: str) -> tuple[str, str, int] | None:
    return None


@dataclass(frozen=True)
class Catalog:
    """Where the referenced resources stand, as the room that runs the spec knows them."""

    room: Room
    loras: Mapping[str, LoraState | None] = field(default_factory=dict)  # by lora_key (None: none)
    image: ImageState | None = None  # what imageRef names (None: there is none)
    # (owner, uid, version) of a LoRA given by url that is one of our stored versions (store/keys.py)
    lineage: Callable[[str], tuple[str, str, int] | None] = _no_lineage
    store: str = ""  # a laptop's: where it looked for trained versions (said when there are none)


@dataclass(frozen=True)
class Refusal:
    """Why the references do not resolve (yet): a Pending reason (docs/reference/statuses.md), the
    spec's field, one line saying what to do, whether to wait or fail, and (waiting) whether it
    waits for a person rather than for a run to finish."""

    reason: str
    field: str
    message: str
    action: Action
    stalled: bool

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"


@dataclass(frozen=True)
class Resolved:
    loras: list[ResolvedLora]  # spec.loras, in order
    image: ResolvedImage | None = None  # a VideoGeneration's picture (imageRef or url)
    lora: EvaluatedLora | None = None  # a LoraEvaluation's version


def lora_refs(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The loraRefs of a spec: an ImageGeneration's `loras[].loraRef`, a LoraEvaluation's `loraRef`."""
    refs = [e["loraRef"] for e in spec.get("loras") or [] if "loraRef" in e]
    return [*refs, spec["loraRef"]] if "loraRef" in spec else refs


def lora_key(ref: Mapping[str, Any]) -> str:
    """Where Catalog.loras keeps what a loraRef names: its name, or namespace/name for one that
    names another namespace (another owner's LoRA, shared: docs/sharing.md)."""
    return f"{ref['namespace']}/{ref['name']}" if ref.get("namespace") else str(ref["name"])


def lora_location(ref: Mapping[str, Any], namespace: str) -> tuple[str, str]:
    """The (namespace, name) of the LoraTraining a loraRef of a resource in `namespace` names."""
    return str(ref.get("namespace") or namespace), str(ref["name"])


def url_lora(url: str, scale: float, catalog: Catalog) -> ResolvedLora:
    """A LoRA given by URL; one of our stored versions keeps its lineage (uid and version)."""
    found = catalog.lineage(url)
    uid, version = (found[1], found[2]) if found else ("", 0)
    return ResolvedLora(uri=url, scale=scale, uid=uid, version=version)


def resolve(spec: Mapping[str, Any], namespace: str, catalog: Catalog) -> Resolved | Refusal:
    """What the spec's references resolve to, or the first one that does not, and why."""
    refusing = _Refusing(catalog.room)
    owner = str(spec.get("owner") or "")
    loras: list[ResolvedLora] = []
    for n, entry in enumerate(spec.get("loras") or []):
        if "url" in entry:
            loras.append(url_lora(entry["url"], entry.get("scale", 1.0), catalog))
            continue
        ref = _Ref(entry["loraRef"], f"spec.loras[{n}].loraRef", namespace, owner, uses=True)
        found = _lora(ref, entry.get("scale", 1.0), catalog, refusing)
        if isinstance(found, Refusal):
            return found
        if (refused := _unfit(found, spec.get("model"), ref, refusing)) is not None:
            return refused
        loras.append(found)
    picture: ResolvedImage | None = None
    if "imageRef" in spec:  # a VideoGeneration animating an ImageGeneration's picture
        image = _image(spec["imageRef"], namespace, owner, catalog, refusing)
        if isinstance(image, Refusal):
            return image
        picture = image
    elif isinstance(spec.get("image"), dict) and spec["image"].get("url"):
        picture = ResolvedImage(uri=str(spec["image"]["url"]))  # a picture by URL, as given
    evaluated: EvaluatedLora | None = None
    if "loraRef" in spec:  # a LoraEvaluation: the version it evaluates
        ref = _Ref(spec["loraRef"], "spec.loraRef", namespace, owner, uses=False)
        resolved = _lora(ref, 1.0, catalog, refusing)
        if isinstance(resolved, Refusal):
            return resolved
        evaluable = _evaluated(resolved, catalog.loras.get(lora_key(ref.wire)), refusing, ref.field)
        if isinstance(evaluable, Refusal):
            return evaluable
        evaluated = evaluable
    return Resolved(loras=loras, image=picture, lora=evaluated)


@dataclass(frozen=True)
class _Ref:
    wire: Mapping[str, Any]
    field: str
    namespace: str  # the referring resource's
    owner: str  # the referring resource's (spec.owner)
    uses: bool  # spec.loras (a use, which another owner may share) or a LoraEvaluation's loraRef

    @property
    def name(self) -> str:
        return str(self.wire["name"])

    @property
    def where(self) -> str:
        return lora_location(self.wire, self.namespace)[0]


# What to do about a reference that is not there (yet), by room: a cluster's resource goes on by
# itself once it is; a laptop's run is run again once it is.
_NOT_THERE: dict[str, tuple[str, str]] = {
    "LoraNotFound": (
        "this resolves by itself when it is created",
        "run its manifest first (contentgen run loratraining.yaml)",
    ),
    "ImageNotFound": (
        "this resolves by itself when it is created",
        "run its manifest first (contentgen run imagegeneration.yaml)",
    ),
    "LoraFailed": (
        "fix it, and this resolves by itself when it trains a version",
        "fix it and run it again first",
    ),
    "LoraNotReady": ("this resolves by itself when it has one", "run it to the end first"),
    "ImageNotReady": ("this resolves by itself when it has one", "run it to the end first"),
}


@dataclass(frozen=True)
class _Refusing:
    room: Room

    def __call__(self, reason: str, field: str, message: str, *, stalled: bool = True) -> Refusal:
        if reason in _NOT_THERE:
            waiting, failing = _NOT_THERE[reason]
            message = f"{message}; {waiting if self.room == 'operator' else failing}"
        action: Action = "wait" if self.room == "operator" else "fail"
        return Refusal(reason, field, message, action, stalled)

    def looked(self, what: str, owner: str, catalog: Catalog) -> str:
        """Where a laptop looked for it: its owner's store (a cluster looks in the namespace)."""
        return f" with {what} of owner {owner!r} in {catalog.store}" if self.room == "laptop" else ""


def _lora(ref: _Ref, scale: float, catalog: Catalog, refusing: _Refusing) -> ResolvedLora | Refusal:
    """The LoRA version a loraRef names (pinned, or its LoraTraining's latest), or why not."""
    lora = catalog.loras.get(lora_key(ref.wire))
    if lora is None:
        looked = refusing.looked("a trained version", str(ref.wire.get("owner") or ref.owner), catalog)
        said = f"loraRef {ref.name!r}: there is no LoraTraining {ref.name!r} in namespace {ref.where}{looked}"
        return refusing("LoraNotFound", ref.field, said)
    refused = (
        _not_theirs(ref, lora, refusing) if lora.owner != ref.owner else _named_another(ref, lora, refusing)
    )
    if refused is not None:
        return refused
    pinned = ref.wire.get("version")
    if pinned is not None and lora.latest_version >= 1:
        return _pinned(ref, lora, pinned, scale, refusing)
    return _latest(ref, lora, scale, refusing)


def _not_theirs(ref: _Ref, lora: LoraState, refusing: _Refusing) -> Refusal | None:
    """A LoRA of another owner: usable where its owner is named and it is shared with ours."""
    name, owner = ref.name, ref.owner
    if not (ref.uses and ref.wire.get("owner") == lora.owner):
        hint = (
            f"name its owner (loraRef.owner: {lora.owner}) to use it where {lora.owner} shared it with "
            f"{owner} (docs/sharing.md), or use a LoraTraining of owner {owner}"
            if ref.uses
            else f"a LoraEvaluation evaluates a LoRA of its own owner; use owner {lora.owner}"
        )
        said = f"loraRef {name!r} belongs to owner {lora.owner!r}, not {owner!r} (spec.owner); {hint}"
        return refusing("LoraOwnerMismatch", ref.field, said)
    if not lora.grants_known:
        said = (
            f"loraRef {name!r}: no record of LoraTraining {ref.where}/{name} of owner {lora.owner!r} in the "
            "catalog, where its grants are: run it first, or give the catalog it was recorded in "
            "(--catalog)"
        )
        return refusing("LoraNotShared", ref.field, said)
    if not may_use(lora.grants, lora.owner, owner):
        return refusing(
            "LoraNotShared", ref.field, use_refusal(name, lora.owner, owner, _share(ref, lora, refusing))
        )
    return None


def _named_another(ref: _Ref, lora: LoraState, refusing: _Refusing) -> Refusal | None:
    """A LoRA of our owner, where the loraRef names another owner."""
    named, name = ref.wire.get("owner"), ref.name
    if named in (None, ref.owner):
        return None
    said = (
        f"loraRef {name!r} names owner {named!r}, but LoraTraining {ref.where}/{name} "
        f"belongs to {lora.owner!r}; leave loraRef.owner out, or name the LoRA of that owner"
    )
    return refusing("LoraOwnerMismatch", ref.field, said)


def _pinned(
    ref: _Ref, lora: LoraState, pinned: Any, scale: float, refusing: _Refusing
) -> ResolvedLora | Refusal:
    name, uri = ref.name, dict(lora.model_uris).get(int(pinned))
    if uri is None:
        have = ", ".join(f"v{n}" for n, _ in lora.model_uris) or "none"
        said = (
            f"loraRef {name!r} version {pinned}: LoraTraining {name!r} has no usable version {pinned} "
            f"(usable versions: {have}){_older_hint(ref, int(pinned), lora)}; pin another version, "
            "or leave version out for its latest"
        )
        return refusing("LoraVersionNotFound", ref.field, said)
    return _made_for(ResolvedLora(uri=uri, scale=scale, name=name, uid=lora.uid, version=int(pinned)), lora)


def _latest(ref: _Ref, lora: LoraState, scale: float, refusing: _Refusing) -> ResolvedLora | Refusal:
    """Its LoraTraining's latest version, or why there is none to use (yet)."""
    if lora.failed:
        return refusing("LoraFailed", ref.field, _lora_failed(ref.name, lora))
    if lora.latest_version < 1 or not lora.latest_model_uri:
        state = f"is {lora.phase}" if lora.phase else "has not started"
        said = f"loraRef {ref.name!r}: LoraTraining {ref.name!r} {state} and has no trained version yet"
        return refusing("LoraNotReady", ref.field, said, stalled=False)
    found = ResolvedLora(
        uri=lora.latest_model_uri, scale=scale, name=ref.name, uid=lora.uid, version=lora.latest_version
    )
    return _made_for(found, lora)


def _made_for(found: ResolvedLora, lora: LoraState) -> ResolvedLora:
    """`found` with what its version is made for, where the LoRA's state says (a Wan 2.2 pair's
    low-noise expert too)."""
    usable = lora.version(found.version)
    if usable is None:
        return found
    made = usable.base_model or "flux.1"  # a version from before training.baseModel: FLUX.1
    return found.model_copy(update={"base_model": made, "low_noise_uri": usable.low_noise_uri})


def _unfit(found: ResolvedLora, model: Any, ref: _Ref, refusing: _Refusing) -> Refusal | None:
    """LoraIncompatible where the spec's model cannot load the version's LoRA (a FLUX.1 LoRA in a
    video, a Wan LoRA in a picture): waited on in a cluster (retraining, or another version,
    resolves it), the run's end on a laptop."""
    if not found.base_model or not isinstance(model, str) or lora_fits(found.base_model, model):
        return None
    said = misfit(found.base_model, model, f"loraRef {ref.name!r} version {found.version}")
    return refusing("LoraIncompatible", ref.field, said)


def _share(ref: _Ref, lora: LoraState, refusing: _Refusing) -> str:
    """How the LoRA's owner shares it for use: where its grants are (docs/sharing.md)."""
    if refusing.room == "laptop":
        return (
            f"contentgen assets share {ref.where}/{ref.name} --owner {lora.owner} --to owner:{ref.owner} "
            "--access use"
        )
    shares = annotation_of(with_grant(lora.grants, grant(ref.owner, "use")))
    return f"kubectl annotate loratraining/{ref.name} -n {ref.where} {SHARED_ANNOTATION}={shares} --overwrite"


def _older_hint(ref: _Ref, pinned: int, lora: LoraState) -> str:
    """Where a pinned version older than the LoRA's status lists (api/versions.py) is still found."""
    listed = min((n for n, _ in lora.model_uris), default=0)
    if not lora.older_versions or pinned >= listed:
        return ""
    where = (
        f"give that version's model as url (its modelUri in the catalog: `contentgen assets get {ref.name}`)"
        if ref.uses
        else f"evaluate it with `contentgen assets evaluate {ref.name} --version {pinned}`"
    )
    return f"; versions before v{listed} are no longer listed in its status: {where}"


def _lora_failed(ref: str, lora: LoraState) -> str:
    """LoraFailed: the referenced LoraTraining failed and has no version to use. Stalled, so
    `kubectl wait` and Argo CD stop waiting; rechecked like the other waits, so it resolves by
    itself when the LoraTraining trains a version."""
    why = lora.message or lora.reason or "no reason given"
    if lora.reason and not why.startswith(lora.reason):
        why = f"{lora.reason}: {why}"
    return f"loraRef {ref!r}: LoraTraining {ref!r} failed and has no trained version ({why})"


def _evaluated(
    found: ResolvedLora, lora: LoraState | None, refusing: _Refusing, field: str
) -> EvaluatedLora | Refusal:
    """The resolved version as a LoraEvaluation evaluates it: it needs its dataset (the subject's
    faces are taken from it)."""
    usable = lora.version(found.version) if lora is not None else None
    if usable is None or not usable.dataset_uri:
        return refusing("LoraNotEvaluable", field, not_evaluable(found.name, found.version))
    if base_model(usable.base_model).video:  # drawn with FLUX, which a video LoRA does not load
        said = not_drawn_for(f"loraRef {found.name!r} version {found.version}", usable.base_model)
        return refusing("LoraNotEvaluable", field, said)
    return EvaluatedLora(
        name=found.name,
        uid=found.uid,
        version=found.version,
        model_uri=found.uri,
        provider=usable.provider,
        trigger_word=usable.trigger_word,
        dataset_uri=usable.dataset_uri,
    )


def _image(
    ref: Mapping[str, Any], namespace: str, owner: str, catalog: Catalog, refusing: _Refusing
) -> ResolvedImage | Refusal:
    """The picture a VideoGeneration's imageRef names: the ImageGeneration's pinned or latest
    version's `image`-th picture (the first by default), or why not."""
    name, image, at = str(ref["name"]), catalog.image, "spec.imageRef"
    if image is None:
        looked = refusing.looked("a generated version", owner, catalog)
        said = f"imageRef {name!r}: there is no ImageGeneration {name!r} in namespace {namespace}{looked}"
        return refusing("ImageNotFound", at, said)
    if image.owner != owner:
        said = (
            f"imageRef {name!r} belongs to owner {image.owner!r}, not {owner!r} (spec.owner); "
            "use an ImageGeneration of the same owner"
        )
        return refusing("ImageOwnerMismatch", at, said)
    index = int(ref.get("image") or 1)
    pinned = ref.get("version")
    have = ", ".join(f"v{n}" for n, _ in image.versions) or "none"
    if pinned is not None:
        version = int(pinned)
        uris = image.images(version)
        if uris is None:
            said = (
                f"imageRef {name!r} version {version}: ImageGeneration {name!r} has no usable version "
                f"{version} (usable versions: {have}); pin another, or leave version out for its latest"
            )
            return refusing("ImageVersionNotFound", at, said)
    else:
        version = image.latest_version
        found = image.images(version) if version >= 1 else None
        if found is None:
            state = f"is {image.phase}" if image.phase else "has not started"
            said = f"imageRef {name!r}: ImageGeneration {name!r} {state} and has no generated version yet"
            return refusing("ImageNotReady", at, said, stalled=image.phase == "Failed")
        uris = found
    if index > len(uris):
        said = (
            f"imageRef {name!r} image {index}: version {version} of ImageGeneration {name!r} has "
            f"{counted(len(uris), 'image')}; name one of them (image: 1 to {len(uris)})"
        )
        return refusing("ImageVersionNotFound", at, said)
    return ResolvedImage(
        uri=uris[index - 1],
        name=name,
        uid=image.uid,
        version=version,
        image=index,
        loras=list(image.loras_of(version))[:8],
    )
