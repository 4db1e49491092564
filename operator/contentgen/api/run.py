"""The two hand-overs between operator and worker (DESIGN.md, "Seams").

- `SpecSnapshot`: what a Job runs, frozen when the operator creates it (env CONTENTGEN_SPEC,
  JSON). A Job always runs exactly the spec it was made for.
- `RunResult`: what a finished run produced (the JSON `contentgen run --result` writes, the
  object the worker stores, and the source of the resource's status outputs).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import ConfigDict, Field

from .base import ApiModel, Timestamp, now, parse_timestamp
from .common import Artifact, CommonSpec, VersionBase
from .cost import UsageLine
from .evaluation import EvaluatedLora, EvaluationVersion
from .image import GeneratedImage, ImageVersion, ResolvedLora
from .inputs import SharedInput
from .kinds import API_VERSION, KINDS, Kind
from .lora import DatasetReport, DatasetSummary, LoraVersion
from .providers import OFFLINE
from .transcription import TranscriptOutput, TranscriptVersion
from .versions import LEGACY_VERSION, add_version, without_fields
from .video import GeneratedVideo, ResolvedImage, VideoVersion
from .words import counted


class RunBudget(ApiModel):
    """What the monthly budgets (the operator's settings, the namespace's contentgen.io/budget) leave
    a run when it starts: a training that trains live stops within it, keeping what it has, where
    one that cannot would only be stopped from starting (controller/budget.py)."""

    usd: float
    whose: str  # "namespace NS" or "owner O": whose monthly budget it is


class SpecSnapshot(ApiModel):
    api_version: str = API_VERSION
    kind: str
    name: str
    namespace: str = "default"
    uid: str
    generation: int = Field(default=1, ge=0)
    # The version this run makes (v1, v2, ...): its outputs go under that version's prefix.
    version: int = Field(default=0, ge=0)
    spec: dict[str, Any]
    # ImageGeneration: the loras to apply, in spec order, as URIs.
    loras: list[ResolvedLora] = []
    # LoraTraining: why this run skips its likeness evaluation ("" when it runs it): the budget
    # covers the training but not the evaluation (controller/budget.py). The spec keeps the
    # user's setting; the version's likeness says `skipped` with this reason.
    skip_evaluation: str = ""
    # What the monthly budgets leave this run (None: no budgets, or an operator before them).
    budget: RunBudget | None = None
    # LoraEvaluation: the LoRA version to evaluate, its loraRef resolved (as `loras` are).
    lora: EvaluatedLora | None = None
    # VideoGeneration: the picture to animate, its imageRef resolved (or its image.url).
    image: ResolvedImage | None = None
    # Other owners' outputs the spec names by address, each shared with spec.owner (store/access.py).
    shared: list[SharedInput] = []

    @property
    def kind_info(self) -> Kind:
        return KINDS[self.kind]

    def parsed_spec(self, *, local: bool = False) -> CommonSpec:
        return self.kind_info.spec.model_validate_json(json.dumps(self.spec), context={"local": local})

    @property
    def owner(self) -> str:
        return str(self.spec["owner"])

    @property
    def provider(self) -> str:
        """The provider the run uses: the spec's; a LoraEvaluation that names none, its LoRA
        version's (the provider that trained it)."""
        named = str(self.spec.get("provider") or "")
        return named or (self.lora.provider if self.lora is not None else "")

    def priced_spec(self) -> dict[str, Any]:
        """The spec the run is estimated from: with the provider it runs on."""
        return {**self.spec, "provider": self.provider} if self.provider else self.spec


class StageTiming(ApiModel):
    name: str
    seconds: Annotated[float, Field(ge=0)]


class RunResult(ApiModel):
    # Results are written by this project's code and read back by it; extra keys from a
    # newer worker must not break an older operator.
    model_config = ConfigDict(extra="ignore")

    kind: str
    provider: str
    name: str = ""
    namespace: str = ""
    uid: str = ""
    generation: int = 0
    owner: str = ""
    placeholder: bool = Field(default=False, description="True when the offline provider made the outputs.")
    stages: list[StageTiming] = []
    artifacts: list[Artifact] = []
    finished_at: Timestamp | None = None
    # The version the run made, and the spec snapshot it ran (for the catalog's version history).
    version: int | None = None
    spec: dict[str, Any] | None = None
    # LoraTraining
    lora: LoraVersion | None = None
    dataset: DatasetReport | None = None
    # ImageGeneration
    images: list[GeneratedImage] | None = None
    loras: list[ResolvedLora] | None = None  # the LoRAs the images were made with (lineage)
    memory_plan: str = ""  # provider cluster: the memory plan(s) the images were drawn with
    # Transcription
    transcript: TranscriptOutput | None = None
    transcript_text: str | None = Field(
        default=None, description="The first part of the transcript's text, for catalog search."
    )
    transcript_times: list[list[float]] | None = Field(
        default=None,
        description="Where in transcript_text the recording's words start: [offset, seconds] pairs "
        "(transcripts.searchable), so a search hit has a time.",
    )
    # VideoGeneration: the video, and the picture it animates (lineage; `loras` as an image's)
    video: GeneratedVideo | None = None
    image: ResolvedImage | None = None
    # LoraEvaluation: what it found, and the evaluation's record (evaluation.json) for the LoRA
    # version's likeness history (catalog/evaluations.py)
    evaluation: EvaluationVersion | None = None
    evaluation_record: dict[str, Any] | None = None
    # What the provider billed for this run (priced by whoever records it); [] for nothing billed.
    usage: list[UsageLine] | None = None
    # Where the full result is stored; `truncated` marks a copy that left details out to fit
    # the Job's termination message (read the full one from result_uri).
    result_uri: str = ""
    truncated: bool = False

    def merge_outputs(self, status: dict[str, Any], started_at: str | None = None) -> None:
        """Put this run's outputs into a resource's status (wire form) as a new version: it joins
        status.versions (replacing one with the same number), and latestVersion and the kind's
        latest outputs (images, transcript) follow the newest version. Earlier versions stay."""
        if self.dataset is not None and self.dataset.summary is not None:
            status["dataset"] = self.dataset.summary.wire()
        entry = self.version_entry(started_at)
        if entry is not None:
            add_version(self.kind, status, entry)

    def version_entry(self, started_at: str | None = None) -> dict[str, Any] | None:
        """This run's version as status.versions holds it (wire form); `started_at` is when its
        run started (the status's startedAt)."""
        common: dict[str, Any] = {
            "version": self.version or LEGACY_VERSION,  # results of workers before versions
            "generation": self.generation,
            "provider": self.provider,
            "placeholder": self.placeholder,
            "started_at": parse_timestamp(started_at),
            "created_at": self.finished_at or now(),
        }
        output = self._output()
        if output is not None:
            return output.version(self, common).wire()
        if self.artifacts:  # a kind with no output model of its own: the version is its files
            return VersionBase(**common).wire()
        return None

    def summary(self) -> str:
        """One line on what the run made (a status message)."""
        output = self._output()
        text = output.summary(self) if output is not None else "done"
        if self.placeholder:
            text += " (offline provider: placeholder outputs)"
        return text

    def _output(self) -> Output | None:
        """What the run made, as OUTPUTS declares it (the first field set); None for none."""
        return next((o for o in OUTPUTS if getattr(self, o.field) is not None), None)


@dataclass(frozen=True)
class Output:
    """A kind's output in a RunResult: its field, the version entry it makes (from the result and
    the fields every version has) and its one-line summary."""

    field: str
    version: Callable[[RunResult, dict[str, Any]], ApiModel]
    summary: Callable[[RunResult], str]


def _lora_version(result: RunResult, common: dict[str, Any]) -> ApiModel:
    assert result.lora is not None
    keep = ("placeholder", "started_at") if common["started_at"] is not None else ("placeholder",)
    return result.lora.model_copy(update={k: common[k] for k in keep})


def _lora_summary(result: RunResult) -> str:
    assert result.lora is not None
    frames = f" from {result.lora.frames} images" if result.lora.frames else ""
    return f"trained version {result.lora.version}{frames}"


def _image_version(result: RunResult, common: dict[str, Any]) -> ApiModel:
    assert result.images is not None
    return ImageVersion(
        **common,
        model=str((result.spec or {}).get("model") or ""),
        images=result.images,
        loras=result.loras or [],
        memory_plan=result.memory_plan,
    )


def _transcript_version(result: RunResult, common: dict[str, Any]) -> ApiModel:
    assert result.transcript is not None
    source = str(((result.spec or {}).get("source") or {}).get("url") or "")
    return TranscriptVersion(**common, transcript=result.transcript, source_url=source)


def _transcript_summary(result: RunResult) -> str:
    t = result.transcript
    assert t is not None
    return f"transcribed {t.word_count} words ({t.duration_seconds:.0f} s)"


def _evaluation_version(result: RunResult, common: dict[str, Any]) -> ApiModel:
    assert result.evaluation is not None
    return result.evaluation.model_copy(update=common)


def _evaluation_summary(result: RunResult) -> str:
    e = result.evaluation
    assert e is not None
    text = (
        f"evaluated version {e.lora.version} of {e.lora.name} again as its evaluation "
        f"e{e.evaluation}: {e.likeness.verdict}"
    )
    why = likeness_reasons(e.likeness.reasons)
    if e.likeness.median is not None:
        return text + f", median {e.likeness.median:.3f}" + (f"; {why}" if why else "")
    return text + (f" ({why})" if why else "")


def _video_version(result: RunResult, common: dict[str, Any]) -> ApiModel:
    assert result.video is not None
    model = str((result.spec or {}).get("model") or "")
    return VideoVersion(
        **common, model=model, video=result.video, image=result.image, loras=result.loras or []
    )


def _video_summary(result: RunResult) -> str:
    v = result.video
    assert v is not None
    return f"generated a {v.duration_seconds:.1f} s video ({v.frames} frames, {v.width}x{v.height})"


# The outputs a run makes, one per kind that has an output model, in the order they are looked for.
OUTPUTS = (
    Output("lora", _lora_version, _lora_summary),
    Output("images", _image_version, lambda r: f"generated {counted(len(r.images or []), 'image')}"),
    Output("transcript", _transcript_version, _transcript_summary),
    Output("evaluation", _evaluation_version, _evaluation_summary),
    Output("video", _video_version, _video_summary),
)


# The most characters of a likeness report's reasons a status message or condition carries (all of
# them are in status.likeness.reasons): a poor version's usual two or three reasons fit whole.
REASONS_LIMIT = 480


def likeness_reasons(reasons: Sequence[str], limit: int = REASONS_LIMIT) -> str:
    """A likeness report's reasons as the one-line summary prints them (contentgen/tables.py's
    likeness_summary: joined by "; "), cut to `limit` characters, ending in "…", where longer."""
    text = "; ".join(str(reason) for reason in reasons)
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class RunFailure(ApiModel):
    """What a failed worker leaves in its termination message."""

    model_config = ConfigDict(extra="ignore")

    failed: bool = True
    reason: str
    message: str
    transient: bool = False
    # What the provider billed before the failure: [] for nothing, None when it cannot be known
    # (a submit whose outcome is unknown).
    usage: list[UsageLine] | None = None
    # LoraTraining: what the dataset stage found, when the run got that far (DatasetTooSmall).
    dataset: DatasetSummary | None = None
    # The URIs the run stored before it failed (kept: no run writes under its version again).
    kept: list[str] = Field(default_factory=list)
    kept_total: int | None = None  # how many there were, when `kept` was cut to fit the message

    def explained(self, again: str = "edit the spec to run again (a new description is enough)") -> str:
        """The message as people read it in the status and the catalog: what the worker said, what
        it stored before failing, and for a transient failure what to do (`again`: how to run it
        again where it ran)."""
        parts = [self.message]
        if self.kept:
            parts.append(f"kept in the store: {kept_summary(self.kept, self.kept_total)}")
        if self.transient:
            parts.append(
                f"this can pass: {again}; what was paid for is taken from the provider's checkpoint, "
                "not paid again"
            )
        return "; ".join(parts)

    def merge_outputs(self, status: dict[str, Any]) -> None:
        """Put what a failed run found into a resource's status (wire form): status.dataset."""
        if self.dataset is not None:
            status["dataset"] = self.dataset.wire()


def kept_summary(uris: list[str], total: int | None = None, most: int = 5) -> str:
    """'3 objects under s3://b/loras/a/u/v2/ (model.safetensors, config.json, ...)'."""
    folder = uris[0].rpartition("/")[0] + "/"
    while not all(u.startswith(folder) for u in uris):
        folder = folder.rstrip("/").rpartition("/")[0] + "/"
    names = [u[len(folder) :] for u in uris[:most]]
    total = max(total or 0, len(uris))
    more = ", ..." if total > most else ""
    count = f"{total} object{'s' if total != 1 else ''}"
    return f"{count} under {folder} ({', '.join(names)}{more})"


# --- the Job's termination message: how a finished worker hands over to the operator ----------

# The kubelet keeps at most this much of a container's termination message.
TERMINATION_LIMIT = 4096


def termination_message(result: RunResult) -> str:
    """The result as the Job's termination message: whole when it fits, else without the
    details (dataset frames, transcript text, spec, artifact list, stage times) that the stored
    result still has."""
    text = result.model_dump_json(by_alias=True, exclude_none=True)
    if len(text) <= TERMINATION_LIMIT:
        return text
    slim = result.model_copy(
        update={
            "dataset": None,
            "transcript_text": None,
            "transcript_times": None,
            "evaluation_record": None,
            "spec": None,
            "artifacts": [],
            "stages": [],
            "truncated": True,
        }
    )
    text = slim.model_dump_json(by_alias=True, exclude_none=True)
    if len(text) <= TERMINATION_LIMIT:
        return text
    minimal = RunResult(
        kind=result.kind,
        provider=result.provider,
        result_uri=result.result_uri,
        truncated=True,
        usage=result.usage,
    )
    return minimal.model_dump_json(by_alias=True, exclude_none=True)


def failure_message(failed: RunFailure) -> str:
    """A failure as the Job's termination message: whole when it fits (there is no stored copy to
    fall back on). Else with its message cut and its usage summed per item and price, without
    the request ids: what was billed stays known, and a request paid here and delivered by a later
    run may then be counted twice, never not at all."""
    text = failed.model_dump_json(by_alias=True, exclude_none=True)
    if len(text) <= TERMINATION_LIMIT:
        return text
    summed: dict[tuple[object, ...], UsageLine] = {}
    for line in failed.usage or []:
        key = (line.provider, line.item, line.unit, line.unit_price_usd, line.price_source, line.price_date)
        total = summed[key].quantity + line.quantity if key in summed else line.quantity
        summed[key] = line.model_copy(update={"quantity": total, "request": ""})
    usage = list(summed.values()) if failed.usage is not None else None
    slim = failed.model_copy(update={"message": failed.message[:1000], "usage": usage})
    text = slim.model_dump_json(by_alias=True, exclude_none=True)
    while len(text) > TERMINATION_LIMIT and slim.kept:  # the first ones name the folder
        cut = {"kept": slim.kept[: len(slim.kept) // 2], "kept_total": slim.kept_total or len(slim.kept)}
        slim = slim.model_copy(update=cut)
        text = slim.model_dump_json(by_alias=True, exclude_none=True)
    return text


def parse_termination(text: str) -> RunResult | RunFailure | None:
    """The operator's side of the hand-over: what a finished worker left behind."""
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return None
    if not isinstance(data, dict):
        return None
    if data.get("failed"):
        return RunFailure.model_validate_json(text)
    if "kind" in data:
        return RunResult.model_validate_json(text)
    return None


def offline_spec(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    """`spec` as the offline provider runs it (`contentgen run --offline`, `contentgen api
    --offline`): provider offline, without the settings only provider cluster reads (its kind's
    `cluster_only` fields: a LoraTraining's cluster-only training fields, an ImageGeneration's
    memoryPlan), which the offline provider ignores and the API's rules refuse beside it. The
    request itself is validated as asked, for its own provider, before."""
    ran = {**spec, "provider": OFFLINE.name}
    declared = KINDS.get(kind)
    return without_fields(ran, declared.cluster_only) if declared is not None else ran
