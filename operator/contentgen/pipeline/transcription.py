"""Transcription: fetch and probe the source → provider → transcript.json and transcript.txt, under
the run's version (transcripts/{owner}/{uid}/v{n}/)."""

from __future__ import annotations

import json

from contentgen.api import Artifact, RunResult, TranscriptionSpec, TranscriptOutput
from contentgen.api.providers import provider_entry
from contentgen.errors import InvalidInput
from contentgen.pricing import gpu_usage, transcription_usage
from contentgen.pricing.kinds.transcription import KIND as TRANSCRIPTION_PRICE
from contentgen.providers import transcriber
from contentgen.providers.base import Transcriber, TranscriptionOutput, TranscriptionRequest
from contentgen.store import keys
from contentgen.transcripts import searchable

from .context import RunContext, StoreCheckpoint
from .fetch import Fetched
from .links import provider_url
from .media import MediaInfo, probe
from .progress import Stages

# How much transcript text the result carries for catalog search (the full text is stored).
SEARCH_TEXT_CHARS = 20_000

# the stages in order, and each one's share of the run's progress
STAGES = Stages(("fetch", 15), ("transcribe", 80), ("store-transcript", 5))


def run_transcription(ctx: RunContext) -> RunResult:
    spec = _spec(ctx)
    provider = transcriber(ctx.provider)
    source, info, audio_url = _fetch(ctx, spec)
    output = _transcribe(ctx, spec, provider, source, info, audio_url)
    full, text = _store_transcript(ctx, spec, output)
    return _result(ctx, provider.name, output, full, text)


def _spec(ctx: RunContext) -> TranscriptionSpec:
    spec = ctx.snapshot.parsed_spec(local=ctx.local)
    assert isinstance(spec, TranscriptionSpec)
    return spec


def _fetch(ctx: RunContext, spec: TranscriptionSpec) -> tuple[Fetched, MediaInfo, str | None]:
    """The source, probed, and the URL the provider reads its audio from."""
    with ctx.stage(STAGES, "fetch") as span:
        # Fetched and probed even when the provider could read the URL itself: unreadable or
        # over-long input fails here, clearly, before anything is paid for.
        source = ctx.fetch_source(spec.source.url, span)
        info = probe(source.path)
        if not info.has_audio:
            raise InvalidInput(f"source {spec.source.url} has no audio stream; nothing to transcribe")
        limit = ctx.settings.max_video_seconds
        if info.duration > limit:
            raise InvalidInput(
                f"source is {info.duration:.0f} s long, over the {limit:.0f} s limit "
                "(CONTENTGEN_MAX_VIDEO_SECONDS)"
            )
        audio_url = source.public_url
        if spec.source.url.startswith("s3://"):
            audio_url = provider_url(spec.source.url, ctx.store, ctx.settings.presign_seconds)
    return source, info, audio_url


def _transcribe(
    ctx: RunContext,
    spec: TranscriptionSpec,
    provider: Transcriber,
    source: Fetched,
    info: MediaInfo,
    audio_url: str | None,
) -> TranscriptionOutput:
    """The paid call, and its usage once it has returned."""
    with ctx.stage(STAGES, "transcribe") as span:
        # one per resource: a later generation with the same inputs reuses the paid transcript
        checkpoint = StoreCheckpoint(ctx.store, keys.checkpoint(ctx.snapshot.uid, "transcript"))
        ctx.usage = None  # a paid call is under way
        output = provider.transcribe(
            TranscriptionRequest(
                audio_path=source.path,
                audio_url=audio_url,
                language_code=spec.language_code,
                speaker_labels=spec.speaker_labels,
                duration_seconds=info.duration,
                # the provider's models: AssemblyAI's in priority order, or the cluster's Whisper
                speech_models=(spec.whisper_model,)
                if provider_entry(provider.name).own_gpus
                else tuple(spec.speech_models),
            ),
            ctx.scratch("transcribe"),
            span,
            checkpoint,
        )
        if output.gpu_seconds is not None:  # the GPU time it held
            ctx.usage = gpu_usage(
                provider.name, TRANSCRIPTION_PRICE.item, output.gpu_seconds, output.request_id
            )
        else:
            ctx.usage = transcription_usage(
                provider.name,
                output.duration_seconds,
                spec.speaker_labels,
                output.request_id,
                model=output.speech_model,
            )
    return output


def _store_transcript(
    ctx: RunContext, spec: TranscriptionSpec, output: TranscriptionOutput
) -> tuple[Artifact, Artifact]:
    """transcript.json (the provider's response) and transcript.txt, each written once."""
    with ctx.stage(STAGES, "store-transcript"), ctx.storing_paid_output("the transcript"):
        prefix = keys.transcripts_version(spec.owner, ctx.snapshot.uid, ctx.snapshot.version)
        # Sorted keys: the same transcript is the same bytes, whatever order the provider sent.
        response = json.dumps(output.response, indent=1, sort_keys=True).encode()
        full = ctx.store.put_once_bytes(f"{prefix}transcript.json", response, "application/json")
        text = ctx.store.put_once_bytes(
            f"{prefix}transcript.txt", output.text.encode(), "text/plain; charset=utf-8"
        )
    return full, text


def _result(
    ctx: RunContext, provider: str, output: TranscriptionOutput, full: Artifact, text: Artifact
) -> RunResult:
    """The run's result, with the words as search indexes them."""
    # The words as search indexes them, with the time of every few: a hit plays from its time.
    text_for_search, times = searchable(output.response, output.duration_seconds, SEARCH_TEXT_CHARS)
    if not text_for_search:
        text_for_search, times = output.text[:SEARCH_TEXT_CHARS], []
    return RunResult(
        kind=ctx.snapshot.kind,
        provider=provider,
        placeholder=output.placeholder,
        artifacts=[full, text],
        transcript=TranscriptOutput(
            json_uri=full.uri,
            text_uri=text.uri,
            word_count=output.word_count,
            duration_seconds=output.duration_seconds,
            speakers=output.speakers,
            language_code=output.language_code,
            provider=provider,
        ),
        transcript_text=text_for_search,
        transcript_times=times,
    )
