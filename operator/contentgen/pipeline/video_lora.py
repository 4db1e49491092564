"""What a video base model changes in a LoraTraining's run (pipeline/lora.py calls each part where
its stage is): what the dataset gives the trainer and its clips, the trainer asked for, the files
a version stores (a Wan 2.2 pair, and each file in ComfyUI's layout too), and why its likeness is
not scored on pictures.

- **Plan**: the run's training plan (api/lora/plan.py) says the base model, the trainer and the
  dataset's media: stills, clips, or both.
- **Clips** (`add_clips`): cut from the subject's shots the stills stage found (clip_dataset.py),
  archived flat beside the stills, shown under the stills on the contact sheet. Where the trainer
  learns from clips only, `dataset.minFrames` counts clips (the stills are not gated); where the
  person asked for clips (`dataset.media: clips`), a dataset without any fails; otherwise a
  dataset without clips trains on its stills, and status.dataset.clips says why it has none.
- **Files** (`put_lora_files`): the diffusers file the trainer made (`model.safetensors`), a Wan 2.2
  pair's low-noise expert beside it (`model-low-noise.safetensors`), and each in ComfyUI's layout
  (`comfyui/…`, lora_formats.py), for a person to take to ComfyUI.
- **Likeness**: the evaluation draws pictures with the LoRA on FLUX (docs/likeness.md), which a
  Wan LoRA does not load; a video LoRA's version says so (`skipped`), until clips are scored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from contentgen.api import Artifact, Likeness, LoraTrainingSpec, ResolvedLora
from contentgen.api.kinds.lora_training import KIND as LORA_TRAINING
from contentgen.api.lora.plan import TrainingPlan
from contentgen.api.words import counted
from contentgen.errors import InvalidInput
from contentgen.pipeline.clip_dataset import LocalClip, cut_clips
from contentgen.pipeline.contact_sheet import clock
from contentgen.pipeline.dataset import DatasetTooSmall, LocalDataset, write_archive
from contentgen.pipeline.lora_formats import comfyui_file
from contentgen.pipeline.progress import SubProgress
from contentgen.providers.base import TrainingOutput
from contentgen.store import keys
from contentgen.store.base import ObjectStore
from contentgen.store.results import version_result

log = logging.getLogger(__name__)

SHEET_FRAMES = 4  # frames of each clip on the contact sheet
_ROW = 150
_GAP = 6
_LABEL = 26


def least_stills(plan: TrainingPlan) -> int | None:
    """The stills gate the dataset stage holds the dataset to: its own (None), or, where the
    trainer learns from clips only, one shot of the subject (the clips are gated instead)."""
    return 1 if plan.route.clips_only else None


def add_clips(
    dataset: LocalDataset,
    video: Path,
    spec: LoraTrainingSpec,
    plan: TrainingPlan,
    progress: SubProgress,
    kept: Callable[[str, Path], bool] = lambda name, path: False,
) -> None:
    """Cut the dataset's clips and archive them beside its stills (see the module). `kept(name,
    path)`: a clip an earlier attempt of the version stored, fetched into `path` (False: none)."""
    if not plan.base.video:
        return
    dataset.flat, dataset.stills = True, plan.route.stills
    if plan.route.clips:
        assert plan.base.frames is not None
        cut = cut_clips(
            video,
            dataset.subject_shots,
            dataset.scenes,
            dataset.guards,
            dataset.subject_centres,
            spec.dataset,
            plan.base.frames,
            spec.trigger_word,
            dataset.root,
            progress,
        )
        dataset.clips = cut.clips
        for clip in dataset.clips:  # x264 may encode the same frames to other bytes: keep the stored
            kept(clip.path.name, clip.path)
        if dataset.summary is not None:
            dataset.summary = dataset.summary.model_copy(update={"clips": cut.summary})
        _gate(dataset, video, spec, plan)
        if dataset.contact_sheet is not None and dataset.clips:
            append_clips(dataset.contact_sheet, dataset.clips)
    write_archive(dataset)
    progress(100.0)


def _gate(dataset: LocalDataset, video: Path, spec: LoraTrainingSpec, plan: TrainingPlan) -> None:
    """DatasetTooSmall where the clips are what the trainer needs and there are too few."""
    summary = dataset.summary
    assert summary is not None and summary.clips is not None
    clips = summary.clips
    least = spec.dataset.least_frames if plan.route.clips_only else 1
    if len(dataset.clips) >= least or not (plan.route.clips_only or spec.dataset.media == "clips"):
        return
    if not dataset.clips:
        message = clips.reason
    else:
        found = len(dataset.clips)
        message = (
            f"{video.name} gives {counted(found, 'clip')}, fewer than dataset.minFrames {least} (a trainer "
            f"of clips only counts clips): {counted(clips.shots, 'shot')} of the subject. To fix: lower "
            f"dataset.minFrames to {found}, lower dataset.clips.frames, or use footage with more shots of "
            "the person"
        )
    raise DatasetTooSmall(message, summary, dataset.scenes)


def stored_clips(store: ObjectStore, prefix: str) -> Callable[[str, Path], bool]:
    """`add_clips`'s `kept`: a clip stored under the dataset's version (`prefix`) by an earlier attempt,
    taken instead of the one cut again, so that the version's clips and archive are written once."""

    def kept(name: str, path: Path) -> bool:
        key = f"{prefix}clips/{name}"
        if not store.exists(key):
            return False
        store.get_file(key, path)
        return True

    return kept


def caption_frames(dataset: LocalDataset) -> list[Path]:
    """What a vision model describes for the clips (captioning auto): each clip's middle frame."""
    return [clip.middle for clip in dataset.clips]


def apply_clip_captions(dataset: LocalDataset, captions: list[str]) -> None:
    """Each clip's caption (in order), and the archive written again."""
    if len(captions) != len(dataset.clips):
        raise ValueError(f"{len(captions)} captions for {len(dataset.clips)} clips")
    for clip, caption in zip(dataset.clips, captions, strict=True):
        clip.caption = caption
        clip.caption_path.write_text(caption, encoding="utf-8")
    write_archive(dataset)


def append_clips(sheet: Path, clips: list[LocalClip]) -> Path:
    """Each clip as a row under the contact sheet: SHEET_FRAMES of its frames, from first to last,
    labelled with its number, its time in the video and its frames."""
    image = cv2.imread(str(sheet), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"{sheet} is not a readable JPEG")
    width = image.shape[1]
    rows = [_clip_row(clip, number, width) for number, clip in enumerate(clips, start=1)]
    cv2.imwrite(str(sheet), np.vstack([image, *rows]), [cv2.IMWRITE_JPEG_QUALITY, 85])
    return sheet


def _clip_row(clip: LocalClip, number: int, width: int) -> np.ndarray:
    picked = _frames(clip.path, SHEET_FRAMES)
    row = np.full((_ROW + _LABEL + _GAP, width, 3), 32, np.uint8)
    x = _GAP
    for frame in picked:
        h, w = frame.shape[:2]
        scaled = cv2.resize(frame, (max(1, round(w * _ROW / h)), _ROW), interpolation=cv2.INTER_AREA)
        if x + scaled.shape[1] > width:
            break
        row[_LABEL : _LABEL + _ROW, x : x + scaled.shape[1]] = scaled
        x += scaled.shape[1] + _GAP
    seconds = clip.frames / clip.fps
    label = (
        f"clip {number}: {clock(clip.start)}-{clock(clip.start + seconds)}, {clip.frames} frames at "
        f"{clip.fps} fps, {clip.width}x{clip.height}"
    )
    cv2.putText(row, label, (_GAP, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (235, 235, 235), 1, cv2.LINE_AA)
    return row


def _frames(path: Path, count: int) -> list[np.ndarray]:
    """`count` frames of a clip, first to last, evenly spread."""
    import av

    with av.open(str(path)) as container:
        decoded = [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]
    if not decoded:
        return []
    picks = np.linspace(0, len(decoded) - 1, min(count, len(decoded))).round().astype(int)
    return [decoded[i] for i in picks]


def made_for(store: ObjectStore, loras: list[ResolvedLora]) -> list[ResolvedLora]:
    """`loras` with what each LoraTraining's stored file given by url is made for, read from its
    version's stored result (a loraRef's is known as it resolves); InvalidInput where that result
    cannot be read here: what it is made for cannot be checked before anything is paid."""
    found = []
    for n, lora in enumerate(loras):
        at = keys.lora_of_uri(lora.uri) if not lora.base_model else None
        if at is not None:
            stored = version_result(store, LORA_TRAINING.catalog_type, *at)
            trained = stored.lora if stored is not None else None
            if trained is None:
                where = lora.uri.split("?", 1)[0]
                raise InvalidInput(
                    f"loras[{n}]: {where} is a LoraTraining's stored LoRA whose version's result is not in "
                    "this store, so what it is made for cannot be checked: give it by loraRef"
                )
            lora = lora.model_copy(
                update={
                    "base_model": trained.base_model or "flux.1",
                    "low_noise_uri": trained.low_noise_model_uri,
                }
            )
        found.append(lora)
    return found


def put_clips(store: ObjectStore, prefix: str, dataset: LocalDataset) -> list[Artifact]:
    """The clips and their captions, each written once under the dataset's version (clips/)."""
    stored = []
    for clip in dataset.clips:
        stored.append(store.put_once_file(f"{prefix}clips/{clip.path.name}", clip.path, "video/mp4"))
        caption = clip.caption_path
        stored.append(
            store.put_once_file(f"{prefix}clips/{caption.name}", caption, "text/plain; charset=utf-8")
        )
    return stored


def put_lora_files(
    store: ObjectStore, prefix: str, weights: Path, low: Path | None, work: Path
) -> list[Artifact]:
    """A video LoRA's files beside its model.safetensors (`weights`, stored already): a Wan 2.2
    pair's low-noise expert (paid for: stored first), then each in ComfyUI's layout, where its keys
    are ones lora_formats.py can place (a file it cannot is kept as it came, and the log says why)."""
    work.mkdir(parents=True, exist_ok=True)
    diffusers = {"model.safetensors": weights}
    stored = []
    if low is not None:
        diffusers["model-low-noise.safetensors"] = low
        stored.append(
            store.put_once_file(f"{prefix}model-low-noise.safetensors", low, "application/octet-stream")
        )
    for name, path in diffusers.items():
        try:
            comfy = comfyui_file(path, work / f"comfyui-{name}")
        except ValueError as unplaced:  # UnplacedLora too: the trainer's own names, not diffusers'
            log.warning("%s is not written in ComfyUI's layout: %s", name, unplaced)
            continue
        stored.append(store.put_once_file(f"{prefix}comfyui/{name}", comfy, "application/octet-stream"))
    return stored


def low_noise_uri(store: ObjectStore, prefix: str, trained: TrainingOutput) -> str:
    """Where a Wan 2.2 pair's low-noise expert is stored ("" for one LoRA)."""
    return store.uri(f"{prefix}model-low-noise.safetensors") if trained.low_noise_weights is not None else ""


def skipped_likeness(spec: LoraTrainingSpec, plan: TrainingPlan) -> Likeness:
    """A video LoRA whose trainer stored no checkpoints (fal's): its likeness is scored on the clips
    a trainer draws with each checkpoint as it trains, which this one does not; a clip made with it
    is (VideoGeneration's likeness over time)."""
    return Likeness(
        verdict="skipped",
        reasons=[
            f"a {plan.base.title} LoRA is scored on clips its trainer draws with each checkpoint as it "
            f"trains (provider cluster, or offline's simulation), and provider {spec.provider}'s trainer "
            "returns one LoRA and no checkpoints: make a clip with it (VideoGeneration loraRef), whose "
            "likeness over time is measured"
        ],
        prompt_set=spec.evaluation.prompt_set,
        seeds=list(spec.evaluation.seeds),
    )
