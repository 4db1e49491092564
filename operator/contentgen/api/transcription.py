"""Transcription: audio or video in, a transcript out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field

from .base import ApiModel
from .common import CommonSpec, CommonStatus, LatestVersion, NewestVersions, SourceSpec, VersionBase
from .providers import PROVIDERS, TRANSCRIPTS_DEFAULT, TranscriptProvider
from .rules import Both, GeneratedRule, Is, Not, Rule, SpecField, generate

# AssemblyAI's recommended model, then the one that covers every other language
DEFAULT_SPEECH_MODELS = ("universal-3-5-pro", "universal-2")
# provider cluster: the faster-whisper model staged under the models' root (docs/cluster-gpus.md)
DEFAULT_WHISPER_MODEL = "whisper-large-v3"

PROVIDER = SpecField("provider", "string", TRANSCRIPTS_DEFAULT)
SPEAKER_LABELS = SpecField("speakerLabels", "boolean", False)


# The providers whose transcripts cannot say who speaks (the cluster stages no diarisation model)
(_UNLABELLED,) = (p.name for p in PROVIDERS.values() if not p.speaker_labels)
TRANSCRIPTION_RULES: list[GeneratedRule] = [
    generate(
        Rule(
            SPEAKER_LABELS,
            "speakerLabels is not available with provider cluster (no diarisation model is "
            "staged in the cluster): set speakerLabels to false, or use provider assemblyai",
            (Not(Both((Is(PROVIDER, _UNLABELLED), Is(SPEAKER_LABELS, True)))),),
        )
    )
]


class TranscriptionSpec(CommonSpec):
    cel_rules = tuple(r.cel for r in TRANSCRIPTION_RULES)

    source: Annotated[SourceSpec, Field(description="The audio or video to transcribe.")]
    language_code: (
        Annotated[
            str,
            Field(
                pattern=r"^[a-z]{2}(_[a-z]{2})?$",
                max_length=5,
                description="The spoken language (e.g. en, en_us); detected when unset.",
            ),
        ]
        | None
    ) = None
    speaker_labels: Annotated[bool, Field(description="Label who speaks when.")] = False
    speech_models: Annotated[
        list[Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{0,63}$")]],
        Field(
            min_length=1,
            max_length=4,
            description="AssemblyAI's speech models, in priority order: the first that supports the "
            "audio's language runs "
            "(https://www.assemblyai.com/docs/pre-recorded-audio/select-the-speech-model). "
            "The cost is that of the model that ran (status.cost.detail names it). Ignored by offline.",
        ),
    ] = list(DEFAULT_SPEECH_MODELS)
    whisper_model: Annotated[
        str,
        Field(
            pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$",
            description="provider cluster: the faster-whisper (CTranslate2) model, a directory staged "
            "under the cluster's models (docs/cluster-gpus.md), e.g. whisper-large-v3, "
            "whisper-large-v3-turbo or whisper-small. Ignored by the other providers.",
        ),
    ] = DEFAULT_WHISPER_MODEL
    provider: Annotated[
        TranscriptProvider,
        Field(
            description="assemblyai transcribes on AssemblyAI; cluster with faster-whisper on the cluster's "
            "own GPUs (docs/cluster-gpus.md); offline writes a labelled placeholder."
        ),
    ] = TRANSCRIPTS_DEFAULT


class TranscriptOutput(ApiModel):
    json_uri: Annotated[str, Field(description="The provider's full response (transcript.json).")]
    text_uri: Annotated[str, Field(description="Plain text, speaker turns when labelled (transcript.txt).")]
    word_count: Annotated[int, Field(ge=0)]
    duration_seconds: Annotated[float, Field(ge=0)]
    speakers: Annotated[int, Field(ge=0, description="Distinct speakers; 0 unless speakerLabels.")] = 0
    language_code: str = ""
    provider: str = ""


class TranscriptVersion(VersionBase):
    """The transcript one run made (transcripts/{owner}/{uid}/v{n}/)."""

    transcript: TranscriptOutput
    source_url: Annotated[str, Field(description="What was transcribed.")] = ""


class TranscriptionStatus(CommonStatus):
    transcript: Annotated[TranscriptOutput, Field(description="The latest version's transcript.")] | None = (
        None
    )
    latest_version: LatestVersion = 0
    versions: NewestVersions[TranscriptVersion] = []


def legacy_version(status: Mapping[str, Any]) -> dict[str, Any] | None:
    """A status from before versions (0.1): its transcript as version 1's fields (wire form); None
    when it holds none."""
    if not status.get("transcript"):
        return None
    return {"provider": str(status["transcript"].get("provider") or ""), "transcript": status["transcript"]}
