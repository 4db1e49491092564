"""The contentgen API (group contentgen.io, version v1alpha1): the single source of truth for the
CRDs, for `contentgen validate` and for the spec the worker runs."""

from .base import ApiModel, CelRule, Timestamp, format_time, now, parse_timestamp
from .common import (
    Artifact,
    CommonSpec,
    CommonStatus,
    Condition,
    ConditionType,
    DeletionPolicy,
    Phase,
    is_local_path,
)
from .cost import Cost, UsageLine
from .image import (
    GeneratedImage,
    ImageGenerationSpec,
    ImageGenerationStatus,
    LoraEntry,
    LoraRef,
    ResolvedLora,
)
from .kinds import API_VERSION, CATALOG_TYPES, CATEGORY, GROUP, KINDS, VERSION, Kind
from .lora import (
    Captioning,
    DatasetImage,
    DatasetReport,
    DatasetSpec,
    DatasetSummary,
    DroppedScenes,
    LoraTrainingSpec,
    LoraTrainingStatus,
    LoraVersion,
    Scene,
    TrainingSpec,
)
from .resource import ObjectMeta, Resource
from .run import RunFailure, RunResult, SpecSnapshot, StageTiming
from .transcription import TranscriptionSpec, TranscriptionStatus, TranscriptOutput

__all__ = [
    "API_VERSION",
    "CATALOG_TYPES",
    "CATEGORY",
    "GROUP",
    "KINDS",
    "VERSION",
    "ApiModel",
    "Artifact",
    "Captioning",
    "CelRule",
    "CommonSpec",
    "CommonStatus",
    "Condition",
    "ConditionType",
    "Cost",
    "DatasetImage",
    "DatasetReport",
    "DatasetSpec",
    "DatasetSummary",
    "DeletionPolicy",
    "DroppedScenes",
    "GeneratedImage",
    "ImageGenerationSpec",
    "ImageGenerationStatus",
    "Kind",
    "LoraEntry",
    "LoraRef",
    "LoraTrainingSpec",
    "LoraTrainingStatus",
    "LoraVersion",
    "ObjectMeta",
    "Phase",
    "ResolvedLora",
    "Resource",
    "RunFailure",
    "RunResult",
    "Scene",
    "SpecSnapshot",
    "StageTiming",
    "Timestamp",
    "TrainingSpec",
    "TranscriptOutput",
    "TranscriptionSpec",
    "TranscriptionStatus",
    "UsageLine",
    "format_time",
    "is_local_path",
    "now",
    "parse_timestamp",
]
