"""GET /api/base-models: what a LoraTraining's LoRA can be made for (training.baseModel), read from
the one table (api/base_models.py): each base model's title, what its LoRA is used for (pictures, or
clips of which video models), what it learns from, and for each provider that trains it what it
needs and what `steps` steps are estimated to cost (pricing.estimated, the creates' own estimate at
this API's prices). The web UI's create form offers the base model as a choice with these words; a
LoRA's page offers only what its base model is used for."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from contentgen.api.base_models import BASE_MODELS, DEFAULT_BASE_MODEL, BaseModelInfo
from contentgen.api.kinds.lora_training import KIND as LORA_TRAINING
from contentgen.api.providers import provider_entry
from contentgen.pricing import PriceTable, estimated

from ..deps import CallerDep, ServicesDep
from ..errors import ERROR_RESPONSES

router = APIRouter(prefix="/api", tags=["create"])

MIN_STEPS, MAX_STEPS = 100, 20000  # training.steps' range, and fal's Wan trainer's top


class _Out(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class TrainedOn(_Out):
    """One provider that trains the base model: what it needs and costs."""

    provider: str
    needs: str = Field(description="What a training there needs, in words.")
    learns_from: str = Field(alias="learnsFrom", description="What the dataset gives its trainer.")
    estimate_usd: float = Field(alias="estimateUsd", description="The estimate of `steps` steps (USD).")
    estimate: str = Field(description="How the estimate was reckoned.")
    placeholders: bool = Field(description="It makes labelled placeholders (offline), nothing trained.")


class BaseModelEntry(_Out):
    name: str = Field(description="training.baseModel's value.")
    title: str
    family: str
    video: bool = Field(description="Its LoRA makes clips (a VideoGeneration's loras), not pictures.")
    default: bool = Field(description="What a LoraTraining without training.baseModel makes.")
    loads_on: list[str] = Field(alias="loadsOn", description="The models that load its LoRA.")
    experts: int = Field(description="LoRAs a version holds: 2 for Wan 2.2 A14B's experts, else 1.")
    makes: str = Field(description="What its LoRA is used for, in words.")
    licence: str = Field(description="Its licence, as its model card or maker names it.")
    commercial: bool = Field(
        description="Whether a company may use it commercially: run it for revenue, sell what its LoRAs make."
    )
    providers: list[TrainedOn] = Field(description="The providers that train it, the default first.")


class BaseModels(_Out):
    steps: int = Field(description="The steps the estimates are for.")
    items: list[BaseModelEntry]


def entry(info: BaseModelInfo, steps: int, prices: PriceTable) -> BaseModelEntry:
    """One base model as the API lists it."""
    trained = []
    for provider in info.providers:
        spec = {"provider": provider, "training": {"baseModel": info.name, "steps": steps}}
        cost = estimated(LORA_TRAINING.kind, spec, prices, None)
        trained.append(
            TrainedOn(
                provider=provider,
                needs=info.needs(provider),
                learns_from=info.learns_from(provider),
                estimate_usd=cost.estimated_usd,
                estimate=cost.detail,
                placeholders=provider_entry(provider).placeholders,
            )
        )
    return BaseModelEntry(
        name=info.name,
        title=info.title,
        family=info.family,
        video=info.video,
        default=info.name == DEFAULT_BASE_MODEL,
        loads_on=list(info.loads_on),
        experts=2 if info.experts else 1,
        makes=info.makes(),
        licence=info.licence.name if info.licence else "",
        commercial=bool(info.commercial),
        providers=trained,
    )


@router.get(
    "/base-models",
    response_model=BaseModels,
    summary="What a LoRA can be made for: each base model, what it needs and costs",
    responses={400: ERROR_RESPONSES[400], 401: ERROR_RESPONSES[401]},
)
def base_models(
    svc: ServicesDep,
    who: CallerDep,
    steps: Annotated[int, Query(ge=MIN_STEPS, le=MAX_STEPS, description="The steps to estimate.")] = 1000,
) -> BaseModels:
    """Every training.baseModel: what its LoRA makes and which models load it, what it learns from,
    and per provider what a training needs and what `steps` steps are estimated to cost."""
    creator = svc.creator
    settings = getattr(creator, "settings", None)
    prices = settings.prices if settings is not None else svc.settings.prices
    return BaseModels(steps=steps, items=[entry(info, steps, prices) for info in BASE_MODELS.values()])
