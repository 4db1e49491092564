"""What a create asks for, as a custom resource: pure functions from requests to manifests.

- the kind-generic request is a manifest itself (`kind`, `metadata.name`/`namespace`, `spec`);
- the seeds' routes take the predecessor's request shapes (`POST /api/lora/train`,
  `/api/images/generate`, `/api/transcribe`), translated here field by field;
- a re-run is a new resource with a version's spec snapshot (optionally a new seed);
- a comparison is one ImageGeneration per LoRA version, the same prompt and seed, each pinning its
  version (`loraRef.version`).

Every manifest is validated exactly as `contentgen validate` does (api/validation.py), so a
create that would fail admission fails here first, with the same field paths and messages.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, JsonValue, PlainValidator, model_validator
from pydantic_core import PydanticCustomError

from contentgen.api import API_VERSION, KINDS
from contentgen.api.base import CelRule
from contentgen.api.base_models import DEFAULT_BASE_MODEL, lora_fits, misfit
from contentgen.api.common import LORA_URL_RULE, NAME_PATTERN, OWNER_PATTERN, SOURCE_URL_RULE
from contentgen.api.image import LORA_MODELS, NO_OPEN_WEIGHTS, ImageModel, ImageSize
from contentgen.api.kinds.image_generation import KIND as IMAGE_GENERATION
from contentgen.api.kinds.lora_training import KIND as LORA_TRAINING
from contentgen.api.kinds.transcription import KIND as TRANSCRIPTION
from contentgen.api.manifests import Document
from contentgen.api.providers import (
    FAL,
    OFFLINE,
    OWN_GPUS,
    PICTURES_DEFAULT,
    PROVIDERS,
    PaidOrOfflinePictures,
    PictureProvider,
    TranscriptProvider,
    making,
    placeholders,
)
from contentgen.api.resource import DNS_LABEL_PATTERN
from contentgen.api.validation import said, validate_document
from contentgen.catalog.kinds import makes_loras

from .kinds import HTTP_KINDS, seeded
from .request_rules import INVALID, code_of

ANNOTATION_CREATED_BY = "contentgen.io/created-by"
ANNOTATION_RERUN_OF = "contentgen.io/rerun-of"
MAX_SEED = 4294967295


def created_kinds() -> list[str]:
    """The kinds a request may create: those the HTTP API declares (httpapi/kinds/), in the API's
    order (not Notification, which is kept, not run)."""
    return [kind for kind in KINDS if kind in HTTP_KINDS]


def seeded_kinds() -> list[str]:
    """The kinds whose re-runs take a seed, in the API's order."""
    return [kind for kind in created_kinds() if seeded(kind)]


def _a(kind: str) -> str:
    return f"{'an' if kind[0] in 'AEIOU' else 'a'} {kind}"


def _created_kind(value: Any) -> str:
    if not isinstance(value, str) or value not in HTTP_KINDS:
        *first, last = (f"'{kind}'" for kind in created_kinds())
        expected = f"{', '.join(first)} or {last}" if first else last
        raise PydanticCustomError("literal_error", "Input should be {expected}", {"expected": expected})
    return value


# A kind a request may create, checked against the registry when the request comes (the OpenAPI
# document says which, one schema per kind: app.py's _typed_resource_requests).
KindName = Annotated[str, PlainValidator(_created_kind, json_schema_input_type=str)]
Name = Annotated[str, Field(min_length=1, max_length=253, pattern=NAME_PATTERN)]
Namespace = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)]
Owner = Annotated[str, Field(max_length=63, pattern=OWNER_PATTERN)]


@dataclass(frozen=True)
class FieldProblem:
    field: str
    message: str

    def wire(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


class Invalid(ValueError):
    """A request that would not be admitted: its problems, each naming the field. `code` says which
    kind of refusal (request_rules.py): `invalid`, what the OpenAPI document forbids;
    `invalid_combination`, a rule across fields it cannot state; `unresolved`, a reference to
    something that is not there (a loraRef's LoRA, a version); `not_applicable`, an option the
    record does not take (a seed for a transcription, a comparison of an image's versions)."""

    def __init__(self, problems: list[FieldProblem], code: str = INVALID) -> None:
        super().__init__("; ".join(f"{p.field}: {p.message}" if p.field else p.message for p in problems))
        self.problems = problems
        self.code = code


UNRESOLVED = "unresolved"
NOT_APPLICABLE = "not_applicable"


@dataclass
class Wanted:
    """A resource to create."""

    kind: str
    name: str
    namespace: str
    spec: dict[str, Any]
    annotations: dict[str, str] = field(default_factory=dict)
    named_by_client: bool = True

    @property
    def owner(self) -> str:
        return str(self.spec.get("owner", ""))

    def manifest(self) -> dict[str, Any]:
        metadata: dict[str, Any] = {"name": self.name, "namespace": self.namespace}
        if self.annotations:
            metadata["annotations"] = dict(self.annotations)
        return {"apiVersion": API_VERSION, "kind": self.kind, "metadata": metadata, "spec": self.spec}


def new_name(kind: str, base: str = "") -> str:
    """A fresh name: `base` (or the kind's prefix) and six random hex digits."""
    declared = HTTP_KINDS.get(kind)
    prefix = declared.prefix if declared is not None else "resource"
    stem = re.sub(r"[^a-z0-9-]+", "-", (base or prefix).lower()).strip("-")
    return f"{stem[:200].rstrip('-') or prefix}-{secrets.token_hex(3)}"


def check(wanted: Wanted, *, local: bool) -> Wanted:
    """`wanted` if it is a valid resource (as admission and `contentgen validate` judge it, with a
    local run's allowances when `local`); Invalid naming every problem otherwise."""
    outcome = validate_document(
        Document("request", 1, json.loads(json.dumps(wanted.manifest()))), local=local
    )
    if outcome.problems:
        problems = [FieldProblem(p.path, p.reason) for p in outcome.problems]
        raise Invalid(problems, code_of([p.message for p in problems]))
    return wanted


def _integral(value: Any) -> Any:
    """`value` with every float that is a whole number as an int (JSON does not tell 2.0 from 2)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


class JsonBody(BaseModel):
    """A request body: strict (no "2" for 2), but 2.0 is the integer 2, as in JSON Schema."""

    @model_validator(mode="before")
    @classmethod
    def _whole_numbers(cls, data: Any) -> Any:
        return _integral(data)


def url_problems(
    fields: dict[str, str | None], *, local: bool, rule: CelRule = SOURCE_URL_RULE
) -> list[FieldProblem]:
    """A URL in each of `fields` (by request field name), as `rule` takes it (default: `source.url`'s),
    a local run's file too where `local`."""
    allowed = rule.local_exception
    return [
        FieldProblem(name, rule.message)
        for name, url in fields.items()
        if url is not None
        and not (rule.check is not None and rule.check(url))
        and not (local and allowed is not None and allowed(url))
    ]


def normalized(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A spec with every default filled in, to compare two specs for the same meaning."""
    model = KINDS[kind].spec
    try:
        return model.model_validate_json(json.dumps(spec)).model_dump(mode="json", by_alias=True)
    except ValueError:
        return spec


def minimal(kind: str, spec: dict[str, Any]) -> dict[str, Any]:
    """A spec without the fields that say what the default says (for readable manifests)."""
    model = KINDS[kind].spec
    try:
        parsed = model.model_validate_json(json.dumps(spec))
    except ValueError:
        return spec
    kept = parsed.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    kept["owner"] = parsed.owner  # required, and the first thing a reader looks for
    return {"owner": kept.pop("owner"), **kept}


# --- the kind-generic request -------------------------------------------------------------------


class RequestMetadata(JsonBody):
    model_config = ConfigDict(strict=True, extra="forbid")

    name: Name | None = Field(
        default=None,
        description="The resource's name: creating it again with the same spec answers 200 with the "
        "one that exists (idempotent); with another spec 409. Unset: a fresh name (not idempotent).",
    )
    namespace: Namespace | None = Field(
        default=None, description="Default: the API's CONTENTGEN_API_DEFAULT_NAMESPACE."
    )


class ResourceRequest(JsonBody):
    """A LoraTraining, ImageGeneration, Transcription, LoraEvaluation or VideoGeneration as in a
    manifest (see the API reference); `spec.owner` defaults to the caller's owner."""

    model_config = ConfigDict(strict=True, extra="forbid", populate_by_name=True)

    api_version: Literal["contentgen.io/v1alpha1"] = Field(
        default="contentgen.io/v1alpha1", alias="apiVersion"
    )
    kind: KindName
    metadata: RequestMetadata = Field(default_factory=RequestMetadata)
    spec: dict[str, Any] = Field(
        description="The kind's spec, exactly as in a manifest (e.g. ImageGeneration: prompt, model, "
        "numImages, imageSize, seed, negativePrompt, loras, provider, tags, description)."
    )


def from_request(request: ResourceRequest, owner: str, namespace: str, *, local: bool = False) -> Wanted:
    # `local` is the seeds' builders' (their URL fields); a manifest's spec is checked whole by `check`.
    spec = dict(request.spec)
    spec.setdefault("owner", owner)
    name = request.metadata.name
    return Wanted(
        request.kind,
        name or new_name(request.kind),
        request.metadata.namespace or namespace,
        spec,
        named_by_client=name is not None,
    )


# --- the seeds' request shapes ------------------------------------------------------------------


class SeedMetadata(JsonBody):
    model_config = ConfigDict(extra="ignore")

    tags: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(default=[], max_length=20)
    description: Annotated[str, Field(max_length=1000)] = ""


class SeedCommon(JsonBody):
    """Fields every seed route takes (the predecessor's names; contentgen's own next to them)."""

    model_config = ConfigDict(strict=True, extra="forbid", populate_by_name=True)

    user_id: Owner | None = Field(
        default=None,
        alias="userId",
        description="The owner (default: the caller's); one the caller acts for.",
    )
    name: Name | None = Field(default=None, description="The resource's name (idempotent); default: fresh.")
    namespace: Namespace | None = None
    provider: str | None = None  # each route's own choices: the kind's providers
    metadata: SeedMetadata = Field(default_factory=SeedMetadata, description="tags and description.")


# A source URL field of a seed route: the rule of the spec's source.url (request_rules.py says it
# in the document; the builders check it, with a local run's allowance where runs are local).
SOURCE_URL: dict[str, Any] = {"x-kubernetes-validations": [SOURCE_URL_RULE.schema_entry()]}
# The providers whose transcripts cannot say who speaks: a Transcription's speakerLabels is refused with them.
UNLABELLED = tuple(p.name for p in PROVIDERS.values() if not p.speaker_labels)
LORA_URL: dict[str, Any] = {"x-kubernetes-validations": [LORA_URL_RULE.schema_entry()]}


_HAS_A_LETTER = said("[A-Za-z0-9]", "at least one letter or digit (A-Z, a-z, 0-9)")


class LoraTrainRequest(SeedCommon):
    """The predecessor's `POST /api/lora/train`."""

    provider: PictureProvider | None = Field(default=None, description="Default: fal.")
    video_url: Annotated[str, Field(min_length=1, max_length=2048)] = Field(
        alias="videoUrl",
        description="An http://, https:// or s3://bucket/key URL (a local file too, on a laptop).",
        json_schema_extra=SOURCE_URL,
    )
    lora_name: Annotated[str, Field(min_length=1, max_length=253, pattern=_HAS_A_LETTER)] | None = Field(
        default=None,
        alias="loraName",
        description="Becomes the resource's name, lowercased, other characters as '-' (jesse_avatar: "
        "jesse-avatar); it needs a letter or digit (A-Z, a-z, 0-9).",
    )
    trigger: Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9_-]{1,32}$")] = Field(
        description="The trigger word (the spec's triggerWord): 1-32 of A-Z, a-z, 0-9, _ and -."
    )
    steps: Annotated[int, Field(ge=100, le=10000)] | None = None
    learning_rate: Annotated[float, Field(gt=0, le=0.01)] | None = None


class SeedLora(JsonBody):
    model_config = ConfigDict(strict=True, extra="forbid")

    path: Annotated[str, Field(min_length=1, max_length=2048)] = Field(
        description="The weights: an https:// or s3:// URL (a LoRA's latestModelUri; on a laptop a local "
        "file too).",
        json_schema_extra=LORA_URL,
    )
    scale: Annotated[float, Field(ge=0, le=2)] = 1.0


class SeedInputs(JsonBody):
    model_config = ConfigDict(strict=True, extra="forbid")

    prompt: Annotated[str, Field(min_length=1, max_length=4000)]
    negative_prompt: Annotated[str, Field(max_length=4000)] = ""
    num_images: Annotated[int, Field(ge=1, le=8)] | None = None
    image_size: ImageSize | None = None
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] | None = None
    loras: list[SeedLora] = Field(default=[], max_length=5)


# The ImageGeneration spec's rules across fields, in this request's shape (request_rules.py): each
# picture provider's limits from its row (api/providers.py: the pictures a request makes, the models
# it draws); loras only with a model that loads them (flux-lora, the default model where there are
# loras); the cluster draws every model with open weights. A model left out is one of FLUX.1's.
_MODEL_NAMED: JsonValue = {"required": ["model"], "properties": {"model": {"type": "string"}}}


def _model_in(models: tuple[str, ...] | list[str]) -> JsonValue:
    """The model left out (null too), or one of `models`."""
    return {"anyOf": [{"not": _MODEL_NAMED}, {"properties": {"model": {"enum": list(models)}}}]}


def _other_than(provider: str) -> JsonValue:
    """The request names another provider (left out, it is the default's)."""
    if provider == PICTURES_DEFAULT:
        another: JsonValue = {"type": "string", "not": {"const": provider}}
        return {"required": ["provider"], "properties": {"provider": another}}
    return {"not": {"required": ["provider"], "properties": {"provider": {"const": provider}}}}


def _at_most(images: int) -> JsonValue:
    return {"properties": {"inputs": {"properties": {"num_images": {"maximum": images}}}}}


def _not_on_own_gpus(model: str) -> JsonValue:
    named: JsonValue = {"provider": {"const": OWN_GPUS}, "model": {"const": model}}
    return {"not": {"required": ["provider", "model"], "properties": named}}


def images_rules() -> list[JsonValue]:
    """The rules, from the providers' rows as they are now."""
    pictures = making("pictures")
    no_loras: JsonValue = {"properties": {"inputs": {"properties": {"loras": {"maxItems": 0}}}}}
    rules: list[JsonValue] = [
        {"anyOf": [_other_than(p.name), _at_most(p.max_images)]} for p in pictures if p.max_images
    ]
    rules.append({"anyOf": [_model_in(LORA_MODELS), no_loras]})
    rules += [_not_on_own_gpus(model) for model in NO_OPEN_WEIGHTS]
    rules += [{"anyOf": [_other_than(p.name), _model_in(list(p.draws))]} for p in pictures if p.draws]
    return rules


def _stated(schema: dict[str, JsonValue]) -> None:
    schema["allOf"] = images_rules()


class ImagesGenerateRequest(SeedCommon):
    """The predecessor's `POST /api/images/generate`."""

    model_config = ConfigDict(json_schema_extra=_stated)

    provider: PictureProvider | None = Field(
        default=None, description="Default: fal (at most 4 images a request)."
    )
    model: ImageModel | None = Field(
        default=None, description="Default: flux-lora with loras, else flux-dev."
    )
    inputs: SeedInputs


class TranscribeRequest(SeedCommon):
    """The predecessor's `POST /api/transcribe` (audioUrl; url and videoUrl are taken too)."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": [name], "properties": {name: {"type": "string"}}}
                for name in ("audioUrl", "url", "videoUrl")
            ],
            # the spec's rule (api/transcription.py): no speaker labels from a provider without them
            "not": {
                "required": ["provider", "speaker_labels"],
                "properties": {"provider": {"enum": list(UNLABELLED)}, "speaker_labels": {"const": True}},
            },
        }
    )

    provider: TranscriptProvider | None = Field(default=None, description="Default: assemblyai.")
    audio_url: Annotated[str, Field(min_length=1, max_length=2048)] | None = Field(
        default=None,
        alias="audioUrl",
        description="An http://, https:// or s3://bucket/key URL (a local file too, on a laptop); "
        "the first of audioUrl, url and videoUrl given is transcribed, and each given must be one.",
        json_schema_extra=SOURCE_URL,
    )
    url: Annotated[str, Field(min_length=1, max_length=2048)] | None = Field(
        default=None, json_schema_extra=SOURCE_URL
    )
    video_url: Annotated[str, Field(min_length=1, max_length=2048)] | None = Field(
        default=None, alias="videoUrl", json_schema_extra=SOURCE_URL
    )
    language_code: Annotated[str, Field(max_length=5, pattern=r"^[a-z]{2}(_[a-z]{2})?$")] | None = Field(
        default=None, description="The spoken language (e.g. en, en_us); detected when unset."
    )
    speaker_labels: bool = False


def _common(request: SeedCommon, spec: dict[str, Any], owner: str) -> dict[str, Any]:
    spec = {"owner": request.user_id or owner, **spec}
    if request.provider:
        spec["provider"] = request.provider
    if request.metadata.tags:
        spec["tags"] = list(request.metadata.tags)
    if request.metadata.description:
        spec["description"] = request.metadata.description
    return spec


def _dns(name: str) -> str:
    # ASCII only before lowercasing: "K" (the Kelvin sign) must not become a "k".
    return re.sub(r"[^A-Za-z0-9-]+", "-", name).lower().strip("-")


def from_lora_train(request: LoraTrainRequest, owner: str, namespace: str, *, local: bool = False) -> Wanted:
    problems = url_problems({"videoUrl": request.video_url}, local=local)
    if problems:
        raise Invalid(problems)
    training: dict[str, Any] = {}
    if request.steps is not None:
        training["steps"] = request.steps
    if request.learning_rate is not None:
        training["learningRate"] = request.learning_rate
    spec: dict[str, Any] = {"source": {"url": request.video_url}, "triggerWord": request.trigger}
    if training:
        spec["training"] = training
    name = request.name or (_dns(request.lora_name) if request.lora_name else None)
    return Wanted(
        LORA_TRAINING.kind,
        name or new_name(LORA_TRAINING.kind),
        request.namespace or namespace,
        _common(request, spec, owner),
        named_by_client=name is not None,
    )


def from_images_generate(
    request: ImagesGenerateRequest, owner: str, namespace: str, *, local: bool = False
) -> Wanted:
    inputs = request.inputs
    spec: dict[str, Any] = {"prompt": inputs.prompt}
    if inputs.negative_prompt:
        spec["negativePrompt"] = inputs.negative_prompt
    model = request.model or ("flux-lora" if inputs.loras else None)
    if model:
        spec["model"] = model
    if inputs.num_images is not None:
        spec["numImages"] = inputs.num_images
    if inputs.image_size is not None:
        spec["imageSize"] = inputs.image_size
    if inputs.seed is not None:
        spec["seed"] = inputs.seed
    if inputs.loras:
        paths: dict[str, str | None] = {f"inputs.loras[{n}].path": x.path for n, x in enumerate(inputs.loras)}
        if problems := url_problems(paths, local=local, rule=LORA_URL_RULE):
            raise Invalid(problems)
        spec["loras"] = [{"url": lora.path, "scale": lora.scale} for lora in inputs.loras]
    return Wanted(
        IMAGE_GENERATION.kind,
        request.name or new_name(IMAGE_GENERATION.kind),
        request.namespace or namespace,
        _common(request, spec, owner),
        named_by_client=request.name is not None,
    )


def from_transcribe(request: TranscribeRequest, owner: str, namespace: str, *, local: bool = False) -> Wanted:
    url = request.audio_url or request.url or request.video_url
    if not url:
        raise Invalid([FieldProblem("audioUrl", "required; give the audio or video to transcribe")])
    given = {"audioUrl": request.audio_url, "url": request.url, "videoUrl": request.video_url}
    problems = url_problems(given, local=local)
    if problems:
        raise Invalid(problems)
    spec: dict[str, Any] = {"source": {"url": url}}
    if request.language_code is not None:
        spec["languageCode"] = request.language_code
    if request.speaker_labels:
        spec["speakerLabels"] = True
    return Wanted(
        TRANSCRIPTION.kind,
        request.name or new_name(TRANSCRIPTION.kind),
        request.namespace or namespace,
        _common(request, spec, owner),
        named_by_client=request.name is not None,
    )


# --- re-runs, comparisons, manifests -------------------------------------------------------------


class RerunRequest(JsonBody):
    model_config = ConfigDict(strict=True, extra="forbid", populate_by_name=True)

    version: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="The version whose settings to run again (default: the latest usable)."
    )
    new_seed: bool = Field(
        default=False,
        alias="newSeed",
        description="ImageGeneration, VideoGeneration: the same settings with a new random seed.",
    )
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] | None = Field(
        default=None, description="ImageGeneration, VideoGeneration: this seed instead."
    )
    name: Name | None = Field(
        default=None,
        description="The new resource's name (idempotent); default: the record's name and a suffix.",
    )
    namespace: Namespace | None = Field(default=None, description="Default: the record's namespace.")


StoredSpec = Callable[[int], "dict[str, Any] | None"]  # a version's spec from its result.json


def settings_of(
    doc: dict[str, Any], version: int | None, stored: StoredSpec | None = None
) -> tuple[dict[str, Any], int]:
    """The spec a version ran (its snapshot) and its number; without versions, the record's spec
    (0). A record keeps the snapshots of its newest versions only (catalog/bounds.py); an older
    version's comes from `stored` (its result.json in the store). ValueError naming the versions
    there are, or saying the settings are nowhere."""
    versions = doc.get("versions") or []
    if version is None:
        if versions and versions[-1].get("spec"):
            return dict(versions[-1]["spec"]), int(versions[-1]["version"])
        return dict(doc.get("spec") or {}), 0
    found = _usable(doc, versions, version)
    return dict(_ran(doc, found, version, stored) or doc.get("spec") or {}), version


def _usable(doc: dict[str, Any], versions: list[dict[str, Any]], version: int) -> dict[str, Any]:
    found = next((v for v in versions if int(v.get("version") or 0) == version), None)
    if found is None:
        have = ", ".join(f"v{v['version']}" for v in versions) or "none"
        raise ValueError(f"version: {doc['_id']} has no usable version {version} (usable versions: {have})")
    return found


def _ran(
    doc: dict[str, Any], found: dict[str, Any], version: int, stored: StoredSpec | None
) -> dict[str, Any] | None:
    """The version's snapshot; an older generation's from the store (the record's spec is the
    current generation's: the one a version of it, or one without a generation, ran)."""
    ran: dict[str, Any] | None = found.get("spec")
    if ran is not None or int(found.get("generation") or 0) in (0, int(doc.get("generation") or 0)):
        return ran
    ran = stored(version) if stored is not None else None
    if ran is None:
        raise ValueError(
            f"version: the settings {doc['_id']} v{version} ran are no longer in its record (it "
            "keeps the newest versions' settings), and its result.json is not in the store"
        )
    return ran


def rerun(
    doc: dict[str, Any],
    request: RerunRequest,
    *,
    seed_source: Any = secrets,
    stored: StoredSpec | None = None,
) -> Wanted:
    """A new resource with the settings of one of `doc`'s versions (see RerunRequest)."""
    kind = str(doc["kind"])
    spec, number = settings_of(doc, request.version, stored)
    if request.new_seed or request.seed is not None:
        if not seeded(kind):
            raise Invalid(
                [
                    FieldProblem(
                        "seed", f"a {kind} has no seed; only {' or '.join(map(_a, seeded_kinds()))} does"
                    )
                ],
                NOT_APPLICABLE,
            )
        spec["seed"] = request.seed if request.seed is not None else seed_source.randbelow(MAX_SEED + 1)
    annotations = {ANNOTATION_RERUN_OF: f"{doc['_id']}/v{number}" if number else str(doc["_id"])}
    return Wanted(
        kind,
        request.name or new_name(kind, str(doc.get("name") or "")),
        request.namespace or str(doc.get("namespace") or "default"),
        spec,
        annotations,
        named_by_client=request.name is not None,
    )


class CompareRequest(JsonBody):
    model_config = ConfigDict(strict=True, extra="forbid", populate_by_name=True)

    prompt: Annotated[str, Field(min_length=1, max_length=4000)] = Field(
        description="The same prompt for every version; put the trigger word in it."
    )
    versions: list[Annotated[int, Field(ge=1)]] | None = Field(
        default=None,
        max_length=8,
        description="The versions to compare (default: every usable one, up to 8).",
    )
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] | None = Field(
        default=None, description="The same seed for every version (default: one random seed)."
    )
    scale: Annotated[float, Field(ge=0, le=2)] = 1.0
    image_size: Literal[
        "square_hd", "square", "portrait_4_3", "portrait_16_9", "landscape_4_3", "landscape_16_9"
    ] = Field(default="square", alias="imageSize")
    num_images: Annotated[int, Field(ge=1, le=4)] = Field(default=1, alias="numImages")
    provider: PaidOrOfflinePictures | None = Field(
        default=None, description="Default: offline when the LoRA was made offline, else fal."
    )


COMPARED_ON: ImageModel = "flux-lora"  # the model a comparison draws each version's picture with


def compare(
    doc: dict[str, Any], request: CompareRequest, *, seed_source: Any = secrets
) -> tuple[str, list[Wanted]]:
    """One ImageGeneration per version of the LoRA `doc`, tagged `compare-ID` (ID returned), each
    pinning its version by loraRef, with the same prompt, seed and size."""
    if not makes_loras(doc.get("kind")):
        raise Invalid(
            [FieldProblem("", f"{doc['_id']} is a {doc.get('kind')}: only a LoRA's versions compare")],
            NOT_APPLICABLE,
        )
    usable = [int(v["version"]) for v in doc.get("versions") or []]
    if not usable:
        raise Invalid([FieldProblem("versions", f"{doc['_id']} has no usable version yet")], UNRESOLVED)
    chosen = request.versions if request.versions is not None else usable[-8:]
    missing = [n for n in chosen if n not in usable]
    if missing:
        have = ", ".join(f"v{n}" for n in usable)
        problem = FieldProblem("versions", f"no usable version {missing[0]} (usable versions: {have})")
        raise Invalid([problem], UNRESOLVED)
    if doc.get("deleted"):
        problem = FieldProblem("", "the LoraTraining was deleted: a loraRef cannot name it any more")
        raise Invalid([problem], NOT_APPLICABLE)
    bases = {int(v["version"]): str(v.get("baseModel") or DEFAULT_BASE_MODEL) for v in doc["versions"]}
    unfit = [n for n in chosen if not lora_fits(bases[n], COMPARED_ON)]
    if unfit:  # a comparison draws pictures: a video LoRA's versions are compared by their clips
        words = misfit(bases[unfit[0]], COMPARED_ON, f"v{unfit[0]} of {doc['name']}")
        raise Invalid([FieldProblem("versions", words)], NOT_APPLICABLE)
    seed = request.seed if request.seed is not None else seed_source.randbelow(MAX_SEED + 1)
    token = secrets.token_hex(3)
    provider = request.provider or (
        OFFLINE.name if doc.get("placeholder") or placeholders(str(doc.get("provider") or "")) else FAL.name
    )
    name = str(doc["name"])
    wanted = []
    for number in dict.fromkeys(chosen):
        spec = {
            "owner": doc["owner"],
            "prompt": request.prompt,
            "model": COMPARED_ON,
            "loras": [{"loraRef": {"name": name, "version": number}, "scale": request.scale}],
            "seed": seed,
            "imageSize": request.image_size,
            "numImages": request.num_images,
            "provider": provider,
            "tags": [f"compare-{token}", f"compare-of-{name}"[:64]],
            "description": f"{name} v{number} in a comparison of its versions (compare-{token})",
        }
        wanted.append(
            Wanted(
                IMAGE_GENERATION.kind,
                f"{name[:200]}-cmp-{token}-v{number}",
                str(doc["namespace"]),
                spec,
                {ANNOTATION_RERUN_OF: f"{doc['_id']}/v{number}"},
                named_by_client=False,
            )
        )
    return f"compare-{token}", wanted


def manifest_yaml(
    doc: dict[str, Any],
    version: int | None,
    *,
    fresh_name: bool = False,
    seed: int | None = None,
    stored: StoredSpec | None = None,
) -> str:
    """A manifest `kubectl apply` takes as it is: the version's settings under the record's name
    (applied where the resource still exists, it runs them as a new version of it) or, with
    `fresh_name`, as a new resource."""
    kind = str(doc["kind"])
    spec, number = settings_of(doc, version, stored)
    if seed is not None:
        spec["seed"] = seed
    name = new_name(kind, str(doc["name"])) if fresh_name else str(doc["name"])
    body = {
        "apiVersion": API_VERSION,
        "kind": kind,
        "metadata": {"name": name, "namespace": str(doc.get("namespace") or "default")},
        "spec": minimal(kind, spec),
    }
    made = f"version {number} of" if number else "the settings of"
    head = f"# {made} {doc.get('namespace')}/{doc.get('name')} ({kind}), from contentgen\n"
    return head + yaml.safe_dump(body, sort_keys=False, allow_unicode=True, width=100)
