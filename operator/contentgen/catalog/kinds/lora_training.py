"""LoraTraining in the catalog: triggerWord, latestModelUri (the model its users get: a person's
promotion, else the run's choice), dataset (the latest run's counts). Its record
(LoraTrainingRecord) shows each version's likeness verdict, evaluations and promotions; its
lineage and usage are what was made with its versions."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from contentgen.api import Timestamp

from ..common_record import JobRecord, RecordModel, RunInfo, VersionInfo
from ._base import CatalogKind


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
        "chosen: a person chose it (contentgen assets promote --evaluation, the HTTP API, or in a cluster "
        "the LoraTraining's annotation contentgen.io/verdicts)."
    )
    evaluation: int = Field(description="The evaluation's number (0: the run's own).")
    choice: int | None = Field(default=None, description="chosen: its number (likeness/choices/c{k}.json).")
    by: str = Field(default="", description="chosen: who chose it.")
    at: Timestamp | None = None
    note: str = Field(default="", description="chosen: why, as the person said it.")
    annotation: str = Field(
        default="",
        description="chosen in a cluster: the LoraTraining's annotation that says it "
        "(contentgen.io/verdicts, status.versions[].verdictChoice); empty for a choice made on a laptop "
        "(`choice` numbers it).",
    )


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
    base_model: str = Field(
        default="",
        description="What the LoRA is made for (training.baseModel: flux.1, or a Wan video model; empty "
        "from before the field: flux.1), which says what uses it (GET /api/base-models).",
    )
    low_noise_model_uri: str = Field(
        default="", description="Wan 2.2 A14B: the low-noise expert's LoRA (modelUri: the high-noise one's)."
    )
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
    stopped: dict[str, Any] | None = Field(
        default=None,
        description="Where its training ended before the last step its spec asked for (how: plateau, "
        "budget or asked; step, plannedSteps, why, by, stepsSaved, gpuSecondsSaved, savedUsd); null: every "
        "step ran.",
    )
    continued_from: dict[str, Any] | None = Field(
        default=None,
        description="The version its training went on from (spec.training.continueFrom: version, step, "
        "stateUri): its lineage.",
    )
    state_uri: str = Field(
        default="",
        description="The training state kept with it, which a training can go on from (POST "
        ".../versions/N/continue, contentgen assets continue); empty: none kept.",
    )


class LiveTrainingInfo(RecordModel):
    """A LoraTraining's training under way, as its worker last reported it (status.training): the
    live view's step, loss, time left and checkpoints (docs/http-api.md#the-web-ui)."""

    version: int = Field(default=0, description="The version the run makes.")
    step: int = Field(default=0, description="The last step trained.")
    steps: int = Field(default=0, description="The step it ends at unless it stops early.")
    first_step: int = Field(default=0, description="The step it started after (a continued training's).")
    seconds_per_step: float | None = Field(default=None, description="Measured so far.")
    eta_seconds: float | None = Field(
        default=None,
        description="Seconds left at that rate, with the checkpoints' pictures, as of updatedAt.",
    )
    loss: list[LossPoint] = Field(default=[], description="The training loss so far (at most 64 points).")
    checkpoints: list[dict[str, Any]] = Field(
        default=[],
        description="Each checkpoint scored so far, oldest first, as the version's likeness curve holds "
        "them (step, verdict, median, gridUri, ...); `chosen` marks the best so far.",
    )
    best_step: int | None = Field(default=None, description="The best-scoring checkpoint so far.")
    stop_asked: str = Field(
        default="", description="A stop asked (contentgen.io/stop: keep-best), followed at the next step."
    )
    stop: dict[str, Any] | None = Field(
        default=None, description="Where and why it stopped early (how, step, plannedSteps, why, ...)."
    )
    updated_at: Timestamp | None = Field(default=None, description="When the worker last reported.")


class LoraRunInfo(RunInfo):
    training: LiveTrainingInfo | None = Field(
        default=None,
        description="While the run trains (and once it ended): its training as the worker reports it "
        "between steps; unset before the training starts and for trainers that report none.",
    )


class LoraTrainingRecord(JobRecord):
    kind: Literal["LoraTraining"] = "LoraTraining"
    latest_run: LoraRunInfo = Field(  # the common run, with its training
        default_factory=LoraRunInfo, description="The latest run, apart from versions."
    )
    trigger_word: str = ""
    latest_model_uri: str = Field(default="", description="Use as spec.loras[].url of an ImageGeneration.")
    versions: list[LoraVersionInfo] = Field(default=[], description="Every usable version, oldest first.")
    source_url: str = Field(default="", description="The video of the current spec.")
    dataset: dict[str, Any] | None = Field(
        default=None, description="The latest run's dataset counts (scenes, kept, dropped by reason)."
    )


def promoted(version: dict[str, Any]) -> dict[str, Any] | None:
    """A LoRA version's newest promotion (promotions.py: a laptop's, numbered; in a cluster the
    status's, from the LoraTraining's annotation), or None where its model is the automatic choice."""
    promotions = version.get("promotions") or []
    if promotions:
        return dict(promotions[-1])
    chosen = version.get("promotion")
    return dict(chosen) if isinstance(chosen, dict) else None


def model_of(version: dict[str, Any]) -> str:
    """The LoRA a version's users get: its newest promotion's, else its own model."""
    chosen = promoted(version)
    return str(chosen["modelUri"]) if chosen else str(version.get("modelUri") or "")


def summary(
    doc: dict[str, Any], newest: dict[str, Any], versions: list[dict[str, Any]], spec: dict[str, Any]
) -> None:
    doc["triggerWord"] = spec.get("triggerWord", "")
    doc["latestModelUri"] = model_of(newest)


def from_status(doc: dict[str, Any], status: dict[str, Any], before: dict[str, Any]) -> None:
    doc["dataset"] = status.get("dataset") or before.get("dataset")
    training = status.get("training")
    if isinstance(training, dict) and training.get("version") == doc["latestRun"].get("version"):
        doc["latestRun"]["training"] = training  # the latest run's own training, live


def primary(version: dict[str, Any]) -> str:
    """The LoRA's model."""
    return str(version.get("modelUri") or "")


def detail(record: LoraTrainingRecord) -> str:
    return f"trigger {record.trigger_word}"


KIND = CatalogKind(
    "LoraTraining",
    summary=summary,
    primary=primary,
    record=LoraTrainingRecord,
    detail=detail,
    from_status=from_status,
    makes_loras=True,
    legacy_versions=True,
)
