"""LoraEvaluation: a stored LoRA version's likeness evaluated again, without training it again
(docs/likeness.md). Its outputs belong to the LoRA version (loras/{owner}/{uid}/v{n}/likeness/e{k}/,
numbered as every re-evaluation of it); the resource keeps its own result documents
(evaluations/{owner}/{uid}/v{n}/) and its report in its status."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from .base import ApiModel
from .common import CommonSpec, CommonStatus, LatestVersion, VersionBase
from .image import LoraRef
from .lora import Likeness, PromptSetChoice, Seeds
from .providers import PictureProvider
from .rules import Distinct, Rule, SpecField, generate

SEEDS = SpecField("seeds", "array")
SEED_RULES = (
    generate(
        Rule(
            SEEDS,
            "seeds must be different: the same seed makes the same pictures again",
            (Distinct(SEEDS),),
        )
    ),
)


class LikenessPlan(ApiModel):
    """What the evaluation generates: the prompt set × seeds with the LoRA, and once without it
    (the baseline, stored once per provider, prompt and seed, and shared)."""

    cel_rules = tuple(r.cel for r in SEED_RULES)

    prompt_set: PromptSetChoice = "likeness-v1"
    seeds: Seeds = [1, 2]


class LoraEvaluationSpec(CommonSpec):
    lora_ref: Annotated[
        LoraRef,
        Field(
            description="The LoRA version to evaluate: a LoraTraining of the same owner in this namespace, "
            "its `version` (unset: its latest usable version when the run starts)."
        ),
    ]
    provider: (
        Annotated[
            PictureProvider,
            Field(
                description="Where its pictures are generated: fal on fal.ai, cluster on the cluster's own "
                "GPUs, offline labelled placeholders (no faces). Unset: the provider that trained the "
                "version, what its users generate with."
            ),
        ]
        | None
    ) = None
    evaluation: Annotated[
        LikenessPlan,
        Field(default_factory=LikenessPlan, description="The prompt set and seeds, as a LoraTraining's."),
    ]


class EvaluatedLora(ApiModel):
    """The LoRA version a LoraEvaluation evaluates, as the operator resolved its loraRef."""

    name: Annotated[str, Field(description="The LoraTraining (loraRef.name).")]
    uid: Annotated[str, Field(description="Its uid: its record's id in the catalog.")]
    version: Annotated[int, Field(ge=1, description="The version evaluated.")]
    model_uri: Annotated[str, Field(description="That version's weights.")] = ""
    provider: Annotated[str, Field(description="The provider that trained it.")] = ""
    trigger_word: Annotated[str, Field(description="The word that invokes it in the prompts.")] = ""
    dataset_uri: Annotated[str, Field(description="Its dataset archive: the subject's faces.")] = ""


def not_evaluable(name: str, version: int) -> str:
    """Why a LoRA version without a dataset archive cannot be evaluated (the operator's Pending
    message and a local run's refusal)."""
    return (
        f"loraRef {name!r} version {version}: it names no dataset archive to take the subject's faces "
        "from, so its likeness cannot be measured; evaluate a version trained from a video"
    )


def not_drawn_for(what: str, base: str) -> str:
    """Why a video LoRA's likeness is not evaluated again by drawing pictures (a LoraEvaluation,
    `contentgen assets evaluate`, the HTTP API's evaluate, the web UI's Evaluate again), before
    anything is estimated or billed: the evaluation draws with FLUX, which it does not load."""
    from .base_models import base_model

    title = base_model(base).title
    return (
        f"{what} is a {title} LoRA (training.baseModel {base}): a likeness evaluation draws pictures with "
        f"FLUX, which a {title} LoRA does not load, so it is not evaluated again (nothing is estimated or "
        "billed); make a clip with it (a VideoGeneration's loras[].loraRef) and read the clip's likeness "
        "over time, or score pictures of the person made elsewhere (contentgen assets evaluate --pictures)"
    )


class EvaluationVersion(VersionBase):
    """One evaluation a run of the LoraEvaluation made."""

    lora: EvaluatedLora
    evaluation: Annotated[
        int,
        Field(
            ge=1,
            description="Its number among the version's re-evaluations (likeness/e{k}/ beside the version; "
            "the version's likeness history lists it so).",
        ),
    ]
    likeness: Annotated[Likeness, Field(description="The report, as a version's likeness.")]
    record_uri: Annotated[
        str, Field(description="Its evaluation.json: what was asked, billed and found.")
    ] = ""


class LoraEvaluationStatus(CommonStatus):
    lora: Annotated[
        EvaluatedLora | None, Field(description="The LoRA version the latest version evaluated.")
    ] = None
    evaluation: Annotated[
        int, Field(ge=0, description="The latest version's evaluation number (likeness/e{k}/); 0 before.")
    ] = 0
    likeness: Annotated[Likeness | None, Field(description="The latest version's likeness report.")] = None
    latest_version: LatestVersion = 0
    versions: Annotated[
        list[EvaluationVersion],
        Field(description="Every evaluation it made, oldest first: a run of a new spec generation adds one."),
    ] = []
