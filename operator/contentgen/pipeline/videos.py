"""VideoGeneration: (the picture to animate, LoRA links) → provider → the video checked by decoding
it, its index first (faststart), transcoded to H.264 where it was delivered as anything else (the
delivered file stored first, as original.webm or original.mp4), stored with its poster, thumbnail
and strip of frames under the run's version (generated-videos/{owner}/{uid}/v{n}/): a re-run never
touches an earlier video."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import cv2

from contentgen.api import (
    Artifact,
    GeneratedVideo,
    ResolvedImage,
    ResolvedLora,
    RunResult,
    SpecSnapshot,
    VideoGenerationSpec,
    VideoLikeness,
)
from contentgen.api.video import VideoShape, frame_size, shape_of, unloadable_lora
from contentgen.errors import InvalidInput
from contentgen.pricing import gpu_usage, video_usage
from contentgen.pricing.kinds.video_generation import KIND as VIDEOS_PRICE
from contentgen.providers import video_generator
from contentgen.providers.base import LoraWeights, VideoGenerator, VideoOutput, VideoRequest
from contentgen.store import keys

from . import video_lora
from .clips import (
    ClipInfo,
    delivered_codec,
    describe,
    frames_at,
    poster_and_strip,
    transcode,
    with_faststart,
)
from .context import RunContext, StoreCheckpoint, StoreFiles
from .links import provider_url
from .progress import Stages
from .thumbnails import JPEG, thumbnail_jpeg

MP4 = "video/mp4"

# the stages in order, and each one's share of the run's progress
STAGES = Stages(("prepare", 10), ("generate", 70), ("store-video", 15), ("likeness", 5))


def run_videos(ctx: RunContext) -> RunResult:
    spec = _spec(ctx)
    provider = video_generator(ctx.provider)
    shape = shape_of(spec)
    request = _prepare(ctx, spec, shape)
    output = _generate(ctx, provider, request, shape)
    stored = _store_video(ctx, spec, output)
    likeness = _measure_likeness(ctx, stored, placeholder=getattr(provider, "placeholder_pictures", False))
    return RunResult(
        kind=ctx.snapshot.kind,
        provider=provider.name,
        placeholder=output.placeholder,
        artifacts=stored.artifacts,
        video=_video(stored, output, likeness),
    )


@dataclass(frozen=True)
class _StoredVideo:
    """The video as stored under the run's version, with the file it was made from."""

    artifacts: list[Artifact]  # the delivered original (where transcoded) first
    original: Artifact | None  # as delivered, where it was not playable
    original_codec: str
    playable: Path  # the stored video.mp4's local file
    info: ClipInfo
    video: Artifact
    poster: Artifact
    thumbnail: Artifact
    strip: Artifact


def _spec(ctx: RunContext) -> VideoGenerationSpec:
    spec = ctx.snapshot.parsed_spec(local=ctx.local)
    assert isinstance(spec, VideoGenerationSpec)
    return spec


def _prepare(ctx: RunContext, spec: VideoGenerationSpec, shape: VideoShape) -> VideoRequest:
    """The provider's request: the picture to animate (checked, and its size), the LoRAs' links."""
    snap = ctx.snapshot
    with ctx.stage(STAGES, "prepare") as span:
        # before anything is fetched, paid or drawn: a LoraTraining's LoRA made for another model
        loras = video_lora.made_for(ctx.store, list(snap.loras))
        trained = [keys.lora_of_uri(lora.uri) is not None for lora in loras]
        if problem := unloadable_lora(spec.model, loras, trained):
            raise InvalidInput(problem)
        picture: Path | None = None
        picture_url = ""
        size: tuple[int, int] | None = None
        if snap.image is not None:
            picture = _picture(ctx, snap.image, span)
            size = _picture_size(snap.image, picture)
            picture_url = provider_url(snap.image.uri, ctx.store, ctx.settings.presign_seconds)
        width, height = frame_size(shape.resolution, shape.aspect_ratio, size)
        return VideoRequest(
            prompt=spec.prompt,
            model=spec.model,
            app=shape.app,
            frames=shape.frames,
            fps=shape.fps,
            width=width,
            height=height,
            resolution=shape.resolution,
            aspect_ratio=shape.aspect_ratio,
            negative_prompt=spec.negative_prompt,
            seed=spec.seed,
            duration_seconds=spec.duration_seconds,
            image_path=picture,
            image_url=picture_url,
            loras=tuple(
                LoraWeights(
                    url=provider_url(lora.uri, ctx.store, ctx.settings.presign_seconds),
                    scale=lora.scale,
                    # a Wan 2.2 pair: the low-noise expert's file, beside the high-noise one's
                    low_noise_url=(
                        provider_url(lora.low_noise_uri, ctx.store, ctx.settings.presign_seconds)
                        if lora.low_noise_uri
                        else ""
                    ),
                )
                for lora in loras
            ),
            # per version, as images' pictures: a retried pod of this run takes the frames made
            frames_made=StoreFiles(ctx.store, keys.frames_made(snap.uid, snap.version)),
            owner=snap.owner,
            drawn_here=spec.denoising == "job",
        )


def _picture_size(image: ResolvedImage, picture: Path) -> tuple[int, int]:
    """The picture to animate's width and height, refused where it does not decode."""
    decoded = cv2.imread(str(picture), cv2.IMREAD_COLOR)
    if decoded is None:
        field = "imageRef" if image.name else "image.url"
        raise InvalidInput(
            f"{field}: the picture to animate ({image.uri}) cannot be decoded as an image; "
            "give a PNG, JPEG or WebP picture"
        )
    return (int(decoded.shape[1]), int(decoded.shape[0]))


def _generate(
    ctx: RunContext, provider: VideoGenerator, request: VideoRequest, shape: VideoShape
) -> VideoOutput:
    """The paid call, and its usage once it has returned."""
    with ctx.stage(STAGES, "generate") as span:
        # One per resource, not per generation: a later generation with the same provider inputs
        # (after a failed store, say) delivers what was paid for instead of paying again.
        checkpoint = StoreCheckpoint(ctx.store, keys.checkpoint(ctx.snapshot.uid, "video"))
        ctx.usage = None  # a paid call is under way
        output = provider.generate_video(request, ctx.scratch("video"), span, checkpoint)
        if output.gpu_seconds is not None:  # the GPU time the video held
            ctx.usage = gpu_usage(provider.name, VIDEOS_PRICE.item, output.gpu_seconds, output.request_id)
        else:
            ctx.usage = video_usage(provider.name, shape, output.request_id)
    return output


def _store_video(ctx: RunContext, spec: VideoGenerationSpec, output: VideoOutput) -> _StoredVideo:
    """The paid video stored first as delivered where it is not playable, then playable (H.264,
    faststart) with its poster, thumbnail and strip of frames."""
    owner, uid, version = spec.owner, ctx.snapshot.uid, ctx.snapshot.version
    artifacts: list[Artifact] = []
    original: Artifact | None = None
    original_codec = ""
    with ctx.stage(STAGES, "store-video") as span, ctx.storing_paid_output("the video"):
        delivered = delivered_codec(output.path)
        if not delivered.playable:
            # what was paid for is stored as delivered, before a conversion that could fail
            original_codec = "/".join(p for p in (delivered.codec or "unreadable", delivered.pix_fmt) if p)
            suffix = ".webm" if output.content_type == "video/webm" else ".mp4"
            original = ctx.store.put_once_file(
                keys.video(owner, uid, version, "original" + suffix), output.path, output.content_type
            )
            artifacts.append(original)
            playable = transcode(output.path, ctx.scratch("video") / "h264.mp4")
        else:
            playable = with_faststart(output.path, ctx.scratch("video") / "faststart.mp4")
        info = describe(playable)
        span(30)
        poster, strip = poster_and_strip(playable, info)
        stored = ctx.store.put_once_file(keys.video(owner, uid, version, "video.mp4"), playable, MP4)
        poster_art = ctx.store.put_once_bytes(keys.video(owner, uid, version, "poster.jpg"), poster, JPEG)
        thumb = ctx.store.put_once_bytes(
            keys.thumbnail(ctx.store.key_of(poster_art.uri)), thumbnail_jpeg(poster), JPEG
        )
        strip_art = ctx.store.put_once_bytes(keys.video(owner, uid, version, "strip.jpg"), strip, JPEG)
        artifacts += [stored, poster_art, thumb, strip_art]
    return _StoredVideo(
        artifacts, original, original_codec, playable, info, stored, poster_art, thumb, strip_art
    )


def _measure_likeness(ctx: RunContext, stored: _StoredVideo, *, placeholder: bool) -> VideoLikeness | None:
    with ctx.stage(STAGES, "likeness"):
        return _likeness(ctx, ctx.snapshot, stored.playable, stored.info, placeholder=placeholder)


def _video(stored: _StoredVideo, output: VideoOutput, likeness: VideoLikeness | None) -> GeneratedVideo:
    """The run's video as its status and the catalog record it."""
    info = stored.info
    return GeneratedVideo(
        uri=stored.video.uri,
        content_type=MP4,
        size_bytes=stored.video.size_bytes,
        sha256=stored.video.sha256,
        duration_seconds=info.duration_seconds,
        frames=info.frames,
        fps=round(info.fps, 3),
        width=info.width,
        height=info.height,
        codec=info.codec,
        audio_codec=info.audio_codec,
        original_uri=stored.original.uri if stored.original is not None else "",
        original_codec=stored.original_codec,
        seed=output.seed,
        poster_uri=stored.poster.uri,
        thumbnail_uri=stored.thumbnail.uri,
        strip_uri=stored.strip.uri,
        likeness=likeness,
    )


def _picture(ctx: RunContext, image: ResolvedImage, span: object) -> Path:
    """The picture to animate, in the work directory: from this store (an ImageGeneration's
    output), else fetched as any input is."""
    folder = ctx.scratch("picture")
    if ctx.store.owns(image.uri):
        key = ctx.store.key_of(image.uri)
        return ctx.store.get_file(
            key, folder / key.rsplit("/", 1)[-1], max_bytes=ctx.settings.max_download_bytes
        )
    field = "imageRef" if image.name else "image.url"
    return ctx.fetch_source(image.uri, span, folder="picture", spec_field=field).path  # type: ignore[arg-type]


def subject_lora(snap: SpecSnapshot) -> list[ResolvedLora]:
    """The LoRAs whose person a video may show: its own, else those of the picture it animates."""
    if snap.loras:
        return list(snap.loras)
    return list(snap.image.loras) if snap.image is not None else []


def _likeness(
    ctx: RunContext, snap: SpecSnapshot, video: Path, info: ClipInfo, *, placeholder: bool
) -> VideoLikeness | None:
    """Likeness over time against the first LoRA (of the video, or of its picture) whose dataset
    kept its person's faces; None for a video made without a LoRA. A measurement, never a
    failure of the run: the video is stored already, and what could not be measured says why."""
    from .likeness.clip import Sampled, judge, sample_indices
    from .likeness.faces import FACES_FILE, FaceReader, read_faces

    loras = subject_lora(snap)
    if not loras:
        return None
    for lora in loras:
        found = keys.lora_of_uri(lora.uri)
        if found is None:
            continue
        faces_key = keys.dataset_version(*found) + FACES_FILE
        if not ctx.store.exists(faces_key):
            continue
        try:
            names, rows = read_faces(json.loads(ctx.store.get_bytes(faces_key)))
        except ValueError as exc:
            return VideoLikeness(verdict="unmeasured", reasons=[str(exc)[:400]], lora=lora)
        reader = FaceReader()
        wanted = sample_indices(info.frames)
        frames = frames_at(video, wanted)
        rate = info.fps if info.fps > 0 else 1.0
        sampled = [Sampled(round(n / rate, 3), reader.faces(frames[n])) for n in wanted if n in frames]
        report = judge(sampled, rows, names, lora)
        if placeholder:
            note = (
                "made by the offline provider: its frames show the picture it was given or, with a LoRA it "
                "trained, that LoRA's training pictures as a simulated face, nothing generated"
            )
            report = report.model_copy(update={"reasons": [*report.reasons, note][:8]})
        return report
    named = ", ".join(f"{lora.name or lora.uri} v{lora.version}" for lora in loras)
    return VideoLikeness(
        verdict="unmeasured",
        reasons=[
            f"no LoRA it was made with keeps its person's faces (faces.json beside its dataset): {named}"[
                :400
            ]
        ],
        lora=loras[0],
    )
