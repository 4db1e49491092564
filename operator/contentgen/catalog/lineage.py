"""Lineage, both ways: where a record's outputs came from, and what was made from them.

    image generation → the LoRAs used (name, uid, version) → each version's dataset → source video
    LoRA             → its versions (dataset, source video, contact sheet) → every image and
                       every clip made with each version (through loraRef or a URL to the
                       weights), each clip with its likeness over time
    transcription    → its source
    LoRA evaluation  → the LoRA versions it evaluated → each version's dataset → source video
    video generation → the picture it animates (an image generation's version and image) → the
                       LoRAs that picture was made with → … → source video; and its own LoRAs

What each kind's lineage follows is declared with the kind (catalog/kinds/: loras_used,
pictures_used, makes_loras, makes_pictures). Only records the caller may see are followed: another
owner's LoRA shows as its uid and version, with `found: false`, never with its details.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from contentgen.api import KINDS
from contentgen.api.sharing import grants_of, may_see
from contentgen.api.versions import version_entry
from contentgen.store import keys

from .base import Catalog
from .common_record import RecordModel, RecordRef
from .dates import from_storage
from .kinds import CATALOG_KINDS
from .kinds.lora_training import LoraVersionInfo, PromotionInfo, promoted
from .migrate import upgrade
from .queries import MAX_LIMIT, Filters, OwnerScope, Page, Sort


class ImageRunRef(RecordRef):
    """An image generation, as lineage lists it."""

    prompt: str = ""
    created_at: datetime | None = None
    lora_versions: list[str] = Field(default=[], description="uid/vN of every LoRA version it used.")
    thumbnails: list[str] = Field(default=[], description="thumbnailUri of each image (or the image).")


class ClipRef(RecordModel):
    """One clip a video generation's version made with a LoRA version, and its likeness over time."""

    version: int
    uri: str = ""
    poster_uri: str = Field(default="", description="Its poster (thumbnailUri where there is one).")
    duration_seconds: float = 0.0
    likeness: dict[str, Any] | None = Field(
        default=None,
        description="The clip's likeness over time (verdict, median, samples, ...), as measured.",
    )


class ClipRunRef(RecordRef):
    """A video generation, as a LoRA version's lineage lists it: its clips made with that version."""

    prompt: str = ""
    model: str = ""
    created_at: datetime | None = None
    clips: list[ClipRef] = Field(
        default=[], description="Its versions made with the LoRA version, newest first."
    )


class LoraUse(RecordModel):
    """One LoRA an image generation used, followed back to its dataset and source video."""

    uri: str
    scale: float = 1.0
    name: str = ""
    uid: str = ""
    version: int = 0
    step: int | None = Field(
        default=None,
        description="The training step whose LoRA was used: a checkpoint's (one a person promoted), or "
        "the version's automatic choice (its model.safetensors); null where its training stored no "
        "checkpoints, or the record is not visible.",
    )
    promotion: PromotionInfo | None = Field(
        default=None,
        description="The promotion that had made `step` the version's model when it was used (who, when, "
        "the note); null where it was the version's automatic choice.",
    )
    used_by: list[int] = Field(
        default=[],
        description="Which versions of the record were made with it (an image generation's, a video "
        "generation's, a LoRA evaluation's), oldest first.",
    )
    found: bool = Field(default=False, description="The LoRA's record exists and is visible.")
    lora: RecordRef | None = None
    trained: LoraVersionInfo | None = Field(
        default=None, description="The version used, as trained, with its promotion as it stands now."
    )


class VersionLineage(LoraVersionInfo):
    images: list[ImageRunRef] = Field(default=[], description="Image generations made with this version.")
    clips: list[ClipRunRef] = Field(
        default=[], description="Video generations made with this version, their clips' likeness over time."
    )


class PictureUse(RecordModel):
    """The picture a video animates, followed back to the image generation that made it and the
    LoRAs that made the picture (and through them to their datasets and source videos)."""

    uri: str
    name: str = ""
    uid: str = ""
    version: int = 0
    image: int = 0
    found: bool = Field(default=False, description="The image generation's record exists and is visible.")
    image_generation: RecordRef | None = None
    prompt: str = Field(default="", description="The prompt the picture was made with.")
    loras: list[LoraUse] = Field(default=[], description="The LoRAs the picture was made with.")


class Lineage(RecordRef):
    source_url: str = ""
    pictures: list[PictureUse] = Field(
        default=[], description="Video generations: the pictures they animate, each followed back."
    )
    loras: list[LoraUse] = Field(
        default=[], description="Image generations: the LoRAs used; LoRA evaluations: the versions evaluated."
    )
    versions: list[VersionLineage] = Field(
        default=[], description="LoRAs: each version and its images and clips."
    )
    images_total: int = Field(default=0, description="LoRAs: image generations made with any version.")
    clips_total: int = Field(default=0, description="LoRAs: video generations made with any version.")


def _ref(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: doc.get(k, "") for k in ("kind", "name", "namespace", "owner", "status")} | {"id": doc["_id"]}


def _made_with(version: dict[str, Any], tag: str | None) -> bool:
    """Whether an image version was made with the LoRA version `tag` (uid/vN); any when None."""
    used = {f"{lora.get('uid')}/v{lora.get('version', 0)}" for lora in version.get("loras") or []}
    return tag is None or tag in used


def _image_run(doc: dict[str, Any], tag: str | None = None) -> ImageRunRef:
    """An image generation as lineage lists it; `tag`: thumbnails of its versions made with that
    LoRA version only."""
    doc = upgrade(doc)
    versions = [v for v in reversed(doc.get("versions") or []) if _made_with(v, tag)]
    thumbs = [i.get("thumbnailUri") or i.get("uri", "") for v in versions for i in v.get("images") or []]
    return ImageRunRef.model_validate(
        _ref(doc)
        | {
            "prompt": doc.get("prompt", ""),
            "createdAt": doc.get("createdAt"),
            "loraVersions": doc.get("loraVersions") or [],
            "thumbnails": thumbs,
        }
    )


def _clip_run(doc: dict[str, Any], tag: str) -> ClipRunRef:
    """A video generation as a LoRA version's lineage lists it: its versions made with `tag`."""
    doc = upgrade(doc)
    clips = []
    for version in reversed(doc.get("versions") or []):
        video = version.get("video") or {}
        if _made_with(version, tag) and video:
            clips.append(
                ClipRef(
                    version=int(version.get("version") or 0),
                    uri=str(video.get("uri") or ""),
                    poster_uri=str(video.get("thumbnailUri") or video.get("posterUri") or ""),
                    duration_seconds=float(video.get("durationSeconds") or 0.0),
                    likeness=video.get("likeness"),
                )
            )
    fields = {
        "prompt": doc.get("prompt", ""),
        "model": doc.get("model", ""),
        "createdAt": doc.get("createdAt"),
    }
    return ClipRunRef.model_validate(_ref(doc) | fields | {"clips": [c.wire() for c in clips]})


def _made_by(
    catalog: Catalog, doc: dict[str, Any], owner: OwnerScope, flag: str
) -> tuple[int, list[dict[str, Any]]]:
    """The records of the kinds whose declaration sets `flag` made with the LoRA `doc`: how many,
    and each kind's newest first."""
    pages = [
        catalog.find(
            Filters(owner=owner, type=KINDS[maker.kind].catalog_type, lora=doc["_id"]),
            Sort("createdAt", descending=True),
            Page(MAX_LIMIT),
        )
        for maker in CATALOG_KINDS.values()
        if getattr(maker, flag)
    ]
    return sum(page.total for page in pages), [d for page in pages for d in page.docs]


def lineage(catalog: Catalog, doc: dict[str, Any], owner: OwnerScope) -> Lineage:
    """The lineage of `doc`, following only records of `owner` (None: everyone's, for admins)."""
    doc = upgrade(doc)
    out = Lineage.model_validate(_ref(doc) | {"sourceUrl": doc.get("sourceUrl", "")})
    declared = CATALOG_KINDS.get(str(doc.get("kind")))
    if declared is None:
        return out
    versions = doc.get("versions") or []
    out.loras = [_lora_use(catalog, u, owner, versions) for u in declared.loras_used(versions)]
    out.pictures = [_picture_use(catalog, p, owner) for p in declared.pictures_used(versions)]
    if declared.makes_loras:  # what was made with it: pictures, and clips (a video LoRA's)
        out.images_total, pictures = _made_by(catalog, doc, owner, "makes_pictures")
        out.clips_total, videos = _made_by(catalog, doc, owner, "makes_clips")
        for version in versions:
            tag = f"{doc['_id']}/v{version.get('version')}"
            runs = [_image_run(d, tag) for d in pictures if tag in (d.get("loraVersions") or [])]
            clips = [_clip_run(d, tag).wire() for d in videos if tag in (d.get("loraVersions") or [])]
            out.versions.append(VersionLineage.model_validate(version | {"images": runs, "clips": clips}))
    return out


def _picture_use(catalog: Catalog, used: dict[str, Any], owner: OwnerScope) -> PictureUse:
    use = PictureUse.model_validate(used)
    if not use.uid:
        return use
    made = catalog.record(use.uid, owner)
    if made is None:
        return use
    made = upgrade(made)
    use.found = True
    use.image_generation = RecordRef.model_validate(_ref(made))
    version = version_entry(made, use.version)
    if version is not None:
        use.prompt = str(version.get("prompt") or "")
        use.loras = [_lora_use(catalog, lora, owner, [version]) for lora in version.get("loras") or []]
    return use


def _lora_use(
    catalog: Catalog, used: dict[str, Any], owner: OwnerScope, versions: list[dict[str, Any]]
) -> LoraUse:
    """The LoRA `used` by `versions` (those of the record that used it), followed back."""
    use = LoraUse.model_validate(used)
    made_with = [v for v in versions if any(_same_lora(lora, use) for lora in v.get("loras") or [])]
    use.used_by = sorted(int(v.get("version") or 0) for v in made_with)
    if not use.uid:
        return use
    lora = catalog.record(use.uid, owner)
    if lora is None and owner is not None:  # another owner's, shown where shared with the caller
        theirs = catalog.record(use.uid)
        owners = (owner,) if isinstance(owner, str) else owner
        if theirs is not None and may_see(grants_of(theirs), str(theirs.get("owner") or ""), owners):
            lora = theirs
    if lora is None:
        return use
    use.found = True
    use.lora = RecordRef.model_validate(_ref(lora))
    trained = version_entry(upgrade(lora), use.version)
    if trained is not None:
        use.trained = LoraVersionInfo.model_validate(trained | {"promotion": promoted(trained)})
        newest = max((t for v in made_with if (t := made_at(v)) is not None), default=None)
        use.step, use.promotion = _step_used(use.uri, trained, newest)
    return use


def _same_lora(lora: dict[str, Any], use: LoraUse) -> bool:
    return (lora.get("uid") or "", int(lora.get("version") or 0), lora.get("uri")) == (
        use.uid,
        use.version,
        use.uri,
    )


def made_at(version: dict[str, Any]) -> datetime | None:
    """When a version was made (its run's start, else its creation), UTC."""
    when = version.get("startedAt") or version.get("createdAt")
    if isinstance(when, str):
        when = datetime.fromisoformat(when.replace("Z", "+00:00"))
    return from_storage(when) if isinstance(when, datetime) else None


def _step_used(
    uri: str, version: dict[str, Any], when: datetime | None
) -> tuple[int | None, PromotionInfo | None]:
    """Which checkpoint `uri` is of the LoRA `version`, and the promotion that made it the version's
    model as of `when` (the run that used it): a checkpoint's file names its step (a promotion's,
    where one chose it); the version's own model.safetensors is its automatic choice."""
    step = keys.checkpoint_of_uri(uri)
    if step is None:
        return (version.get("chosenStep") if keys.lora_of_uri(uri) is not None else None), None
    chosen = version.get("promotions") or ([version["promotion"]] if version.get("promotion") else [])
    before = None
    for promotion in chosen:  # oldest first
        at = made_at({"createdAt": promotion.get("at")})
        if promotion.get("modelUri") == uri and (when is None or at is None or at <= when):
            before = promotion
    return step, PromotionInfo.model_validate(before) if before else None
