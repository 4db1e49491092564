"""The record: what `contentgen assets -o json` prints and the HTTP API returns for one catalog
document. Common fields, then the kind's own (one model per kind, told apart by `kind`).
Timestamps are RFC 3339 UTC strings; internal fields (spec, searchText, transcriptText) are left out.
"""

from __future__ import annotations

from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from contentgen.api import Timestamp
from contentgen.api.image import PoolPlace

from .kinds import CATALOG_KINDS
from .kinds.lora_training import promoted
from .migrate import upgrade
from .verdicts import evaluations_of, verdict_of


class RecordModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class ArtifactInfo(RecordModel):
    uri: str
    size_bytes: int = 0
    content_type: str = "application/octet-stream"


class ErrorInfo(RecordModel):
    reason: str
    message: str = ""


class ImageInfo(RecordModel):
    uri: str
    width: int = 0
    height: int = 0
    content_type: str = "image/png"
    size_bytes: int = 0
    seed: int | None = None
    thumbnail_uri: str = Field(default="", description="A small JPEG beside the image (thumbs/).")


class LoraUseInfo(RecordModel):
    """A LoRA the images were made with."""

    uri: str
    scale: float = 1.0
    name: str = Field(default="", description="The LoraTraining (loraRef), when it came from one.")
    uid: str = Field(default="", description="Its id: `contentgen assets lineage` follows it.")
    version: int = 0


class CostInfo(RecordModel):
    estimated_usd: float = 0.0
    actual_usd: float | None = None
    by_month: dict[str, float] = Field(
        default={},
        description="Spend by the month runs started (YYYY-MM), and a LoRA's re-evaluations by the month "
        "they ran.",
    )
    evaluations_usd: float = Field(
        default=0.0, description="Of it, what a LoRA's re-evaluations cost (contentgen assets evaluate)."
    )
    currency: str = "USD"
    prices_as_of: str = ""
    detail: str = ""


class Spend(RecordModel):
    """What the provider work of the counted records cost, in USD. Deleted records count: the
    money was spent. A run whose bill could not be known counts its estimate."""

    total_usd: float = 0.0
    by_owner: dict[str, float] = {}
    by_type: dict[str, float] = {}
    by_month: dict[str, float] = Field(default={}, description="By the month runs started (YYYY-MM).")
    currency: str = "USD"


class RunInfo(RecordModel):
    """The latest run: whether it waits, runs, succeeded, failed or was cancelled, kept apart from
    the versions, which it never hides."""

    version: int = Field(default=0, description="The version it makes (or made); 0 before versions.")
    generation: int = Field(default=0, description="The spec generation it runs.")
    phase: str = Field(
        default="Pending",
        description="Pending, Running, Succeeded, Failed, or Cancelled (its resource was deleted first).",
    )
    progress: int = Field(default=0, description="Percent done.")
    stage: str = Field(default="", description="The pipeline stage now running.")
    message: str = ""
    reason: str = Field(
        default="",
        description="Why it is where it is, as a word (its Ready condition's reason): Queued, "
        "BudgetExceeded, OwnerNotAllowed, LoraNotReady, JobCreated, Running, ...",
    )
    error: ErrorInfo | None = None
    job_name: str = ""
    started_at: Timestamp | None = None
    completed_at: Timestamp | None = None
    estimated_usd: float | None = Field(default=None, description="What it should cost (USD).")
    actual_usd: float | None = Field(default=None, description="What it cost, once known (USD).")
    pool: PoolPlace | None = Field(
        default=None,
        description="provider cluster, drawn by a warm pool (an ImageGeneration's spec.denoising): while "
        "it waits or runs, where it is in the pool (the resource's status.pool): starting (the pool "
        "cannot be reached: scaled to zero, or its pods loading or stopping), loading (the pool loads "
        "its base model), queued (with its position, 1 next) or drawing; unset otherwise "
        "(docs/cluster-gpus.md#warm-pools).",
    )


class RunSummary(RecordModel):
    """A run that ended, in the record's run history."""

    version: int = 0
    generation: int = 0
    phase: str
    error: ErrorInfo | None = None
    started_at: Timestamp | None = None
    completed_at: Timestamp | None = None
    actual_usd: float | None = None


class DeletedInfo(RecordModel):
    """The resource is gone."""

    at: Timestamp | None = None
    policy: str = Field(default="", description="Its deletionPolicy: Retain or Delete.")
    outputs_kept: bool = Field(
        description="True when its outputs are still stored (Retain): its versions stay usable."
    )
    by: str = Field(default="", description="Who marked it: operator, cli or api.")


class DeletedVersionInfo(RecordModel):
    """A version whose outputs were removed (prune, delete); kept for history."""

    version: int
    generation: int = 0
    created_at: Timestamp | None = None
    deleted_at: Timestamp | None = None
    by: str = ""
    objects: int = Field(default=0, description="How many stored objects it had.")


class VersionInfo(RecordModel):
    """One usable version: a run that succeeded, under a prefix of its own (…/{uid}/v{n}/)."""

    version: int
    generation: int = 0
    provider: str = ""
    placeholder: bool = False
    started_at: Timestamp | None = None
    created_at: Timestamp | None = Field(default=None, description="When its run finished.")
    cost_usd: float | None = Field(default=None, description="What its run cost (USD), when known.")
    spec: dict[str, Any] | None = Field(
        default=None,
        description="The spec snapshot its run ran (left out of lists); null when no longer known, and "
        "for versions older than the newest 20 (the snapshot stays in the version's result.json).",
    )
    artifacts: list[ArtifactInfo] = []


class LikenessEvaluationInfo(RecordModel):
    """One evaluation of a LoRA version: its run's (0) or a re-evaluation (docs/likeness.md)."""

    evaluation: int = Field(
        description="0: the run's own; 1, 2, ...: `contentgen assets evaluate`, the HTTP API or a "
        "LoraEvaluation."
    )
    at: Timestamp | None = None
    by: str = Field(default="", description="Who asked: cli, api or LoraEvaluation (the run's own: empty).")
    resource: dict[str, str] | None = Field(
        default=None,
        description="The LoraEvaluation that made it (kind, namespace, name, uid): its own record "
        "counts the cost.",
    )
    provider: str = ""
    prompt_set: str = ""
    seeds: list[int] = []
    cost_usd: float | None = Field(
        default=None, description="What it cost (USD); the run's own: in the run's."
    )
    likeness: dict[str, Any] = Field(description="Its report, as `likeness`.")
    source: str = Field(
        default="",
        description="pictures: pictures made elsewhere were scored (`contentgen assets evaluate "
        "--pictures`, POST .../score), nothing was generated; empty: pictures generated with the LoRA.",
    )
    pictures: list[dict[str, Any]] = Field(
        default=[],
        description="Where source is pictures: each picture's name, sha256, sizeBytes, format, width "
        "and height (the pictures themselves are not kept; the grid shows them).",
    )


class LossPoint(RecordModel):
    step: int
    loss: float


class LikenessEntryInfo(LikenessEvaluationInfo):
    """The newest evaluation's entry, without its report (the version's `likeness`)."""

    likeness: dict[str, Any] | None = Field(  # type: ignore[assignment]  # left out here: not required
        default=None, description="Left out: the version's `likeness`."
    )


class LikenessChoiceInfo(RecordModel):
    """Which evaluation is a LoRA version's verdict, and why (docs/likeness.md#one-verdict-per-version)."""

    how: Literal["run", "first-measured", "first", "chosen"] = Field(
        description="run: the version's own evaluation (its training run's); first-measured: the first "
        "evaluation of its generated pictures that measured something, its run's having measured nothing "
        "or not run; first: the first evaluation of generated pictures, none having measured anything; "
        "chosen: a person chose it (contentgen assets promote --evaluation)."
    )
    evaluation: int = Field(description="The evaluation's number (0: the run's own).")
    choice: int | None = Field(default=None, description="chosen: its number (likeness/choices/c{k}.json).")
    by: str = Field(default="", description="chosen: who chose it.")
    at: Timestamp | None = None
    note: str = Field(default="", description="chosen: why, as the person said it.")


class PromotionInfo(RecordModel):
    """A scored checkpoint a person made the version's model, over the automatic choice."""

    promotion: int = Field(
        default=0,
        description="Its number among the version's promotions (promotions/p{k}.json); 0 in a cluster, "
        "where the LoraTraining's annotation contentgen.io/promoted-checkpoints says it.",
    )
    step: int = Field(description="The checkpoint chosen: its LoRA is the version's model from then on.")
    model_uri: str = Field(description="That checkpoint's LoRA.")
    by: str = Field(
        default="",
        description="Who chose it (the API's caller, or cli:USER; in a cluster, where the annotation's entry "
        "names it: the HTTP API's caller).",
    )
    at: Timestamp | None = None
    automatic_step: int | None = Field(default=None, description="The automatic choice, kept.")
    automatic_model_uri: str = Field(default="", description="The automatic choice's LoRA, kept.")
    note: str = Field(default="", description="Why, as the person said it.")


class LoraVersionInfo(VersionInfo):
    model_uri: str = ""
    final_model_uri: str = Field(
        default="",
        description="The training's last step's LoRA where an earlier checkpoint is the model "
        "(docs/likeness.md#checkpoints); else modelUri, or empty for versions made before checkpoints.",
    )
    chosen_step: int | None = Field(
        default=None, description="Where the trainer stores checkpoints: the step whose LoRA modelUri is."
    )
    config_uri: str = ""
    size_bytes: int = 0
    sha256: str = ""
    dataset_uri: str = ""
    source_url: str = Field(default="", description="The video the dataset was made from.")
    contact_sheet_uri: str = Field(default="", description="A JPEG of the dataset's images and their times.")
    contact_sheet_thumbnail_uri: str = ""
    frames: int = 0
    trigger_word: str = ""
    training_model: str = ""
    steps: int = 0
    memory_plan: str = Field(
        default="", description="provider cluster: the memory plan it was trained with (training.memoryPlan)."
    )
    dataset: dict[str, Any] | None = Field(default=None, description="Its dataset's counts, when known.")
    likeness: dict[str, Any] | None = Field(
        default=None,
        description="Whether it looks like the person (docs/likeness.md#one-verdict-per-version): the "
        "version's verdict, its run's own evaluation unless a person chose another (likenessChoice); a "
        "re-evaluation or a scoring of outside pictures never replaces it by itself.",
    )
    likeness_evaluation: int = Field(
        default=0, description="Which evaluation `likeness` is: 0 its run's, 1, 2, ... its re-evaluations."
    )
    likeness_source: str = Field(
        default="",
        description="Always empty: a scoring of pictures made elsewhere is never the version's verdict "
        "(it is in likenessHistory with source pictures).",
    )
    likeness_choice: LikenessChoiceInfo | None = Field(
        default=None,
        description="Why `likeness` is the verdict, where the version has other evaluations: null or how run "
        "for its run's own.",
    )
    likeness_history: list[LikenessEvaluationInfo] = Field(
        default=[],
        description="Every other evaluation, oldest first (its run's as evaluation 0), each with what made "
        "it (by, resource, provider, source: pictures for outside pictures).",
    )
    likeness_entry: LikenessEntryInfo | None = Field(
        default=None,
        description="Where `likeness` is a re-evaluation's: its entry as likenessHistory's (who asked, when, "
        "the provider, the cost) without the report, which is `likeness`; null where `likeness` is its "
        "run's own.",
    )
    older_evaluations: int = Field(
        default=0, description="Re-evaluations left out of the history (their evaluation.json stays stored)."
    )
    training_loss: list[LossPoint] = Field(
        default=[],
        description="The training loss per step, where the trainer reports it (the cluster provider); the "
        "web UI draws it as a curve.",
    )
    promotion: PromotionInfo | None = Field(
        default=None,
        description="Where a person chose the version's model (docs/likeness.md#choosing-a-checkpoint-"
        "yourself): the newest choice; modelUri is then its checkpoint's LoRA. Null: the automatic choice.",
    )


class EvaluatedLoraInfo(RecordModel):
    """The LoRA version a LoraEvaluation evaluated."""

    name: str = Field(default="", description="The LoraTraining.")
    uid: str = Field(default="", description="Its record's id.")
    version: int = 0
    model_uri: str = ""
    provider: str = Field(default="", description="The provider that trained it.")
    trigger_word: str = ""
    dataset_uri: str = ""


class EvaluationVersionInfo(VersionInfo):
    lora: EvaluatedLoraInfo = Field(default_factory=EvaluatedLoraInfo)
    evaluation: int = Field(default=0, description="Its number among the LoRA version's re-evaluations.")
    likeness: dict[str, Any] | None = Field(default=None, description="Its report, as a version's likeness.")
    record_uri: str = Field(default="", description="Its evaluation.json.")


class ImageVersionInfo(VersionInfo):
    prompt: str = ""
    model: str = ""
    images: list[ImageInfo] = []
    loras: list[LoraUseInfo] = Field(default=[], description="The LoRAs its images were made with.")
    memory_plan: str = Field(
        default="", description="provider cluster: the memory plan its images were drawn with (memoryPlan)."
    )


class VideoInfo(RecordModel):
    uri: str
    content_type: str = "video/mp4"
    size_bytes: int = 0
    duration_seconds: float = 0.0
    frames: int = 0
    fps: float = 0.0
    width: int = 0
    height: int = 0
    codec: str = ""
    seed: int | None = None
    poster_uri: str = Field(default="", description="Its first frame (poster.jpg).")
    thumbnail_uri: str = Field(default="", description="A small JPEG of the poster (thumbs/poster.jpg).")
    strip_uri: str = Field(default="", description="Frames across it, side by side (strip.jpg).")
    likeness: dict[str, Any] | None = Field(
        default=None,
        description="Whether the face stays the LoRA's person along it (verdict, median, lowest, drift, "
        "samples of timeSeconds and score, reasons), when measured.",
    )


class PictureUseInfo(RecordModel):
    """The picture a video animates: an ImageGeneration's (imageRef), or a URL."""

    uri: str
    name: str = Field(default="", description="The ImageGeneration (imageRef), when it came from one.")
    uid: str = Field(default="", description="Its id: `contentgen assets lineage` follows it.")
    version: int = 0
    image: int = Field(default=0, description="Which of that version's images (1 for the first).")


class VideoVersionInfo(VersionInfo):
    prompt: str = ""
    model: str = ""
    video: VideoInfo | None = None
    image: PictureUseInfo | None = Field(default=None, description="The picture it animates.")
    loras: list[LoraUseInfo] = Field(default=[], description="The LoRAs it was made with.")


class TranscriptInfo(RecordModel):
    json_uri: str = ""
    text_uri: str = ""
    word_count: int = 0
    duration_seconds: float = 0.0
    speakers: int = 0
    language_code: str = ""


class TranscriptVersionInfo(VersionInfo):
    transcript: TranscriptInfo = Field(default_factory=TranscriptInfo)
    source_url: str = Field(default="", description="What was transcribed.")


class ShareInfo(RecordModel):
    """A grant (api/sharing.py): who may see (read) or use (in a loraRef) the asset."""

    to: str = Field(description="owner:NAME or group:NAME.")
    access: Literal["read", "use"] = Field(
        description="read: see and download; use: see, and use in a loraRef (a LoRA), not download."
    )
    by: str = Field(default="", description="Who shared it (empty: from the resource's annotation).")
    at: str = Field(default="", description="When (empty: from the resource's annotation).")


class JobRecord(RecordModel):
    id: str = Field(description="The resource's uid.")
    type: str = Field(
        description="lora-training, image-generation, transcription, lora-evaluation or video-generation."
    )
    kind: str
    name: str
    namespace: str
    owner: str
    status: str = Field(
        description="The record's state: Succeeded when it has a usable version (whatever its latest "
        "run did); else its latest run's phase, Pending, Running or Failed; Deleted when its resource "
        "is gone and none of its outputs are kept."
    )
    latest_run: RunInfo = Field(default_factory=RunInfo, description="The latest run, apart from versions.")
    latest_version: int = Field(default=0, description="The newest usable version; 0 for none.")
    provider: str = ""
    placeholder: bool = Field(default=False, description="True when the offline provider made the outputs.")
    tags: list[str] = []
    description: str = ""
    created_at: Timestamp | None = None
    updated_at: Timestamp | None = None
    completed_at: Timestamp | None = Field(default=None, description="When the latest run ended.")
    deleted: DeletedInfo | None = Field(default=None, description="Set once the resource is gone.")
    deleted_at: Timestamp | None = None
    runs: list[RunSummary] = Field(
        default=[], description="The runs that ended, oldest first: the newest 100 (olderRuns: the rest)."
    )
    older_runs: int = Field(default=0, description="How many earlier ended runs `runs` leaves out.")
    deleted_versions: list[DeletedVersionInfo] = Field(
        default=[], description="Versions whose outputs were removed: the newest 100."
    )
    older_deleted_versions: int = Field(
        default=0, description="How many earlier deleted versions `deletedVersions` leaves out."
    )
    artifacts: list[ArtifactInfo] = Field(default=[], description="Every stored output of its versions.")
    total_bytes: int = 0
    cost: CostInfo | None = Field(default=None, description="Spend at the provider (status.cost).")
    shares: list[ShareInfo] = Field(
        default=[],
        description="Who it is shared with (docs/sharing.md); shown to its owner only. In a cluster, its "
        "resource's annotation contentgen.io/shared-with.",
    )


class LoraTrainingRecord(JobRecord):
    kind: Literal["LoraTraining"] = "LoraTraining"
    trigger_word: str = ""
    latest_model_uri: str = Field(default="", description="Use as spec.loras[].url of an ImageGeneration.")
    versions: list[LoraVersionInfo] = Field(default=[], description="Every usable version, oldest first.")
    source_url: str = Field(default="", description="The video of the current spec.")
    dataset: dict[str, Any] | None = Field(
        default=None, description="The latest run's dataset counts (scenes, kept, dropped by reason)."
    )


class ImageGenerationRecord(JobRecord):
    kind: Literal["ImageGeneration"] = "ImageGeneration"
    prompt: str = Field(default="", description="The latest version's prompt (else the spec's).")
    model: str = ""
    images: list[ImageInfo] = Field(default=[], description="The latest version's images.")
    loras: list[LoraUseInfo] = Field(default=[], description="The LoRAs the latest version was made with.")
    versions: list[ImageVersionInfo] = Field(default=[], description="Every usable version, oldest first.")


class TranscriptionRecord(JobRecord):
    kind: Literal["Transcription"] = "Transcription"
    word_count: int = 0
    duration_seconds: float = 0.0
    speakers: int = 0
    language_code: str = ""
    text_uri: str = Field(default="", description="The latest version's transcript.txt")
    json_uri: str = Field(default="", description="The provider's full response (transcript.json).")
    source_url: str = Field(default="", description="What the current spec transcribes.")
    versions: list[TranscriptVersionInfo] = Field(
        default=[], description="Every usable version, oldest first."
    )


class LoraEvaluationRecord(JobRecord):
    kind: Literal["LoraEvaluation"] = "LoraEvaluation"
    lora: EvaluatedLoraInfo | None = Field(
        default=None, description="The LoRA version the latest version evaluated (its history has it too)."
    )
    evaluation: int = Field(default=0, description="The latest version's evaluation number.")
    likeness: dict[str, Any] | None = Field(default=None, description="The latest version's report.")
    versions: list[EvaluationVersionInfo] = Field(
        default=[], description="Every evaluation it made, oldest first."
    )


class VideoGenerationRecord(JobRecord):
    kind: Literal["VideoGeneration"] = "VideoGeneration"
    prompt: str = Field(default="", description="The latest version's prompt (else the spec's).")
    model: str = ""
    video: VideoInfo | None = Field(default=None, description="The latest version's video.")
    duration_seconds: float = Field(default=0.0, description="The latest version's video's length.")
    image: PictureUseInfo | None = Field(default=None, description="The picture the latest version animates.")
    loras: list[LoraUseInfo] = Field(default=[], description="The LoRAs the latest version was made with.")
    versions: list[VideoVersionInfo] = Field(default=[], description="Every usable version, oldest first.")


AnyRecord = Annotated[
    LoraTrainingRecord
    | ImageGenerationRecord
    | TranscriptionRecord
    | LoraEvaluationRecord
    | VideoGenerationRecord,
    Field(discriminator="kind"),
]
R = TypeVar("R", bound=JobRecord)


class RecordPage(RecordModel, Generic[R]):
    total: int = Field(description="How many records match, over all pages.")
    limit: int
    offset: int
    items: list[R]


# Named pages, for readable OpenAPI schema names.
class JobPage(RecordPage[AnyRecord]):
    pass


class LoraPage(RecordPage[LoraTrainingRecord]):
    pass


class ImagePage(RecordPage[ImageGenerationRecord]):
    pass


class TranscriptPage(RecordPage[TranscriptionRecord]):
    pass


class Stats(RecordModel):
    owner: str | None = Field(description="The owner counted, when it is one; null for several or everyone.")
    owners: list[str] = Field(default=[], description="The owners counted; empty for everyone.")
    total_jobs: int
    by_type: dict[str, int]
    by_status: dict[str, int] = Field(description="Records by their status (see JobRecord.status).")
    total_versions: int = Field(default=0, description="Usable versions, whatever the latest runs did.")
    versions_by_type: dict[str, int] = {}
    total_bytes: int
    total_gb: float = Field(
        alias="totalGB", description="totalBytes in GiB (2^30 bytes), as S3 bills storage."
    )
    price_per_gb_month: float
    estimated_monthly_cost: float = Field(description="USD per month for storing totalBytes.")
    currency: str = "USD"
    spend: Spend = Field(
        default_factory=Spend, description="What the provider work cost, by owner, type and month."
    )


class SignedUrl(RecordModel):
    url: str = Field(description="A presigned https URL (S3) or a file:// path (local store).")
    expires_at: Timestamp
    uri: str = Field(description="The artifact's store URI.")


_BY_KIND: dict[str, type[JobRecord]] = {
    "LoraTraining": LoraTrainingRecord,
    "ImageGeneration": ImageGenerationRecord,
    "Transcription": TranscriptionRecord,
    "LoraEvaluation": LoraEvaluationRecord,
    "VideoGeneration": VideoGenerationRecord,
}


def _artifact(stored: dict[str, Any]) -> dict[str, Any]:
    info = {"uri": stored["uri"], "sizeBytes": stored.get("sizeBytes", 0)}
    if stored.get("contentType"):
        info["contentType"] = stored["contentType"]
    return info


def presented(version: dict[str, Any]) -> dict[str, Any]:
    """A version entry as readers get it: `likeness` is the version's verdict (evaluations.py,
    `verdict_of`: its run's own unless a person chose another; never a scoring of pictures made
    elsewhere), `likenessChoice` says which and why, `likenessHistory` lists every other evaluation,
    oldest first (the run's own as evaluation 0)."""
    chosen = promoted(version)
    if chosen is not None:
        version = {**version, "promotion": chosen, "modelUri": chosen["modelUri"]}
    if not version.get("evaluations") and not version.get("verdictChoices"):
        return version
    verdict, choice = verdict_of(version)
    number = int(verdict.get("evaluation") or 0) if verdict is not None else -1
    history = [_shown(e) for e in evaluations_of(version) if int(e.get("evaluation") or 0) != number]
    shown = {k: v for k, v in version.items() if k != "likeness"}
    if verdict is None:  # only pictures made elsewhere were scored: no verdict on the LoRA
        return {**shown, "likenessHistory": history}
    entry = _shown(verdict)
    return {
        **shown,
        "likenessEntry": {k: v for k, v in entry.items() if k != "likeness"} if number else None,
        "likeness": verdict["likeness"],
        "likenessEvaluation": number,
        "likenessSource": "",
        "likenessChoice": choice,
        "likenessHistory": history,
    }


def _shown(entry: dict[str, Any]) -> dict[str, Any]:
    fields = ("evaluation", "at", "by", "resource", "provider", "promptSet", "seeds", "costUsd", "likeness")
    return {k: entry[k] for k in (*fields, "source", "pictures") if k in entry}


def to_record(doc: dict[str, Any]) -> JobRecord:
    """The record of a catalog document (as read, with UTC-aware datetimes; any schema)."""
    doc = upgrade(doc)
    fields = {k: v for k, v in doc.items() if k != "_id" and v is not None}
    fields["id"] = doc["_id"]
    fields["artifacts"] = [_artifact(a) for a in doc.get("artifacts") or []]
    fields["versions"] = [
        {**presented(v), "artifacts": [_artifact(a) for a in v.get("artifacts") or []]}
        for v in doc.get("versions") or []
    ]
    spent = (doc.get("evaluationCost") or {}).get("byMonth") or {}
    if spent:
        cost = dict(doc.get("cost") or {})
        months = dict(cost.get("byMonth") or {})
        for month, usd in spent.items():
            months[month] = round(months.get(month, 0.0) + float(usd), 6)
        fields["cost"] = {**cost, "byMonth": months, "evaluationsUsd": round(sum(spent.values()), 6)}
    declared = CATALOG_KINDS.get(str(doc.get("kind")))  # an unknown kind: the common record
    if declared is not None:
        fields.update(declared.record_fields(doc))
    model = _BY_KIND.get(str(doc.get("kind")), JobRecord)
    return model.model_validate(fields)


def record_json(doc: dict[str, Any]) -> dict[str, Any]:
    return to_record(doc).wire()
