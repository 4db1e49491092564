"""What the pipeline asks of a provider, one interface per capability.

Providers: `fal` (LoRA training, image generation, dataset captions), `assemblyai`
(transcription), `cluster` (the cluster's own GPUs: transcription) and `offline` (all of them, video
generation too, without network or keys: labelled placeholders for demos and CI).

A provider call that costs money records its request id in a `Checkpoint` before waiting for
the result, and a later attempt with the same checkpoint resumes polling that request instead
of paying for a new one (a retried pod, a restarted local run).
"""

from __future__ import annotations

import json
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from contentgen.api.lora.plan import TrainingPlan
from contentgen.providers.progress import SubProgress
from contentgen.providers.watch import Stop, TrainingWatch


class Checkpoint(Protocol):
    """A small JSON document that survives the process (stored in the object store)."""

    def load(self) -> dict[str, Any]:
        """The saved data, or {} when there is none."""

    def save(self, data: dict[str, Any]) -> None: ...


class MemoryCheckpoint:
    def __init__(self, data: dict[str, Any] | None = None) -> None:
        self.data: dict[str, Any] = dict(data or {})
        self.saves = 0

    def load(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(json.dumps(self.data))
        return data

    def save(self, data: dict[str, Any]) -> None:
        self.data = json.loads(json.dumps(data))
        self.saves += 1


class CheckpointFiles(Protocol):
    """Files a provider keeps while it works (a trainer's states and LoRA checkpoints, a
    generator's pictures), written once each under one folder of the store: a retried pod finds
    them there."""

    def names(self) -> list[str]: ...

    def put(self, name: str, path: Path) -> str:
        """Store the file once under `name` (the same bytes again are left alone); its URI."""

    def get(self, name: str, path: Path) -> Path: ...

    def uri(self, name: str) -> str: ...

    def delete(self, name: str) -> None:
        """Remove a file that a later one has made useless (an earlier denoising state); a name
        is still never written again once it was."""


# What an output is billed by, as it carries it: the GPU time its work held (seconds × GPUs: the
# cluster's own GPUs, priced per GPU-hour), or None where the provider's price list counts the
# request (its steps, megapixels, seconds of video or audio). `placeholder`: a labelled placeholder,
# nothing paid for (offline). So no run asks which provider made it.
GpuSeconds = float | None


# --- LoRA training --------------------------------------------------------------------------


@dataclass(frozen=True)
class Continued:
    """training.continueFrom: a version's stored training states (its checkpoints/) and the step to
    go on from (None: the last it stored)."""

    version: int
    files: CheckpointFiles
    step: int | None = None


@dataclass(frozen=True)
class ContinuedState:
    """The state a continued training went on from: its version, step and URI, and what the
    continue changed of its settings, each applied (providers/continuing.py)."""

    version: int
    step: int
    uri: str
    changed: tuple[str, ...] = ()


@dataclass(frozen=True)
class TrainingRequest:
    """A training asked of a provider: its dataset, and the run's plan (api/lora/plan.py: the base
    model, the app and every setting, typed once where the run starts)."""

    # images/0001.jpg + captions/0001.txt (and 0001.txt next to each image); for a video base model
    # flat: 0001.jpg, clip-0001.mp4, each with its .txt beside it (pipeline/dataset.py)
    dataset_zip: Path
    trigger_word: str
    plan: TrainingPlan
    frames: int = 0  # stills in the dataset zip
    clips: int = 0  # clips in the dataset zip
    # the cluster's own trainer (provider cluster, and offline's simulation of it): where its
    # checkpoints go (None: nowhere, no resume)
    checkpoints: CheckpointFiles | None = None
    # a trainer that trains live (api/providers.py trains_live) is asked between its steps
    # (providers/watch.py); None: every step runs, and nothing is scored before the end
    watch: TrainingWatch | None = None
    continue_from: Continued | None = None  # its steps numbered on from that state's


@dataclass(frozen=True)
class TrainedCheckpoint:
    step: int
    uri: str  # the LoRA file as it was after `step`, in the store
    low_noise_uri: str = ""  # a Wan 2.2 pair's low-noise expert's, beside it


@dataclass(frozen=True)
class TrainingOutput:
    weights: Path  # model.safetensors, downloaded into the work directory
    config: Path | None  # the provider's training config, when it returns one
    request_id: str
    placeholder: bool = False
    details: dict[str, Any] = field(default_factory=dict)  # provider specifics worth keeping
    checkpoints: tuple[TrainedCheckpoint, ...] = ()  # intermediate LoRAs, oldest first (cluster)
    loss: Path | None = None  # training-loss.json: the loss of every step, where the trainer reports it
    gpu_seconds: GpuSeconds = None  # seconds the work held the device × its GPUs (cluster)
    gpus: int = 1  # the GPUs `gpu_seconds` is × (its wall time is gpu_seconds / gpus)
    stopped: Stop | None = None  # the watch stopped it before its last step
    first_step: int = 0  # the step it started after (a continued state's)
    last_step: int = 0  # the step it ended at (0: the request's steps)
    seconds_per_step: float | None = None  # the training's, × its GPUs (cluster; pictures left out)
    state_uri: str = ""  # the training state of its last step, kept for training.continueFrom
    continued: ContinuedState | None = None
    # Wan 2.2 A14B trained as two LoRAs: the low-noise expert's (`weights` is the high-noise one's)
    low_noise_weights: Path | None = None


class LoraTrainer(Protocol):
    name: str

    @abstractmethod
    def train_lora(
        self, request: TrainingRequest, work_dir: Path, progress: SubProgress, checkpoint: Checkpoint
    ) -> TrainingOutput: ...


# --- image generation -----------------------------------------------------------------------


@dataclass(frozen=True)
class LoraWeights:
    url: str  # a URL the provider can fetch (presigned for store objects)
    scale: float = 1.0
    # a Wan 2.2 A14B pair: the low-noise expert's LoRA ("" for one LoRA; `url` is the high-noise one)
    low_noise_url: str = ""


@dataclass(frozen=True)
class ImageRequest:
    prompt: str
    model: str  # flux-pro | flux-dev | flux-schnell | flux-lora
    num_images: int = 1
    image_size: str = "landscape_4_3"
    negative_prompt: str = ""
    seed: int | None = None
    loras: tuple[LoraWeights, ...] = ()
    # the cluster's own generator (provider cluster) only: a write-once folder where each picture
    # is kept as it is made, so that a retried pod takes it instead of making it again (None: none)
    outputs: CheckpointFiles | None = None
    memory_plan: str = "auto"  # provider cluster: the spec's memoryPlan (providers/cluster/memory.py)
    owner: str = (
        ""  # whose request it is: a warm pool serves owners in turn (providers/cluster/generation/pool.py)
    )
    # provider cluster: the spec's `denoising: job`, drawn by this worker even where a warm pool is
    # named (the operator names none for such a Job; a local run pointed at one obeys the spec too)
    drawn_here: bool = False


@dataclass(frozen=True)
class ImageOutput:
    path: Path  # downloaded into the work directory
    width: int
    height: int
    content_type: str
    seed: int | None = None
    request_id: str = ""  # the provider's request that made (and billed) it
    gpu_seconds: GpuSeconds = None  # its share of the GPU time the call held (cluster)
    memory_plan: str = ""  # the memory plan it was drawn with, in words (cluster; "" elsewhere)
    placeholder: bool = False


class ImageGenerator(Protocol):
    name: str

    @abstractmethod
    def generate_images(
        self, request: ImageRequest, work_dir: Path, progress: SubProgress, checkpoint: Checkpoint
    ) -> list[ImageOutput]: ...


# --- transcription --------------------------------------------------------------------------


@dataclass(frozen=True)
class TranscriptionRequest:
    audio_path: Path  # the fetched source, always present
    audio_url: str | None = None  # a URL the provider can fetch instead of an upload, when there is one
    language_code: str | None = None
    speaker_labels: bool = False
    duration_seconds: float | None = None  # measured locally when the source could be probed
    speech_models: tuple[str, ...] = ()  # the provider's models, in priority order; () its default


@dataclass(frozen=True)
class TranscriptionOutput:
    response: dict[str, Any]  # the provider's full response, stored as transcript.json
    text: str  # plain text; "Speaker A: ..." turns when speaker labels were asked for
    word_count: int
    duration_seconds: float
    speakers: int
    language_code: str
    request_id: str
    placeholder: bool = False
    speech_model: str = ""  # the model that made it (and is billed), as the provider reports it
    gpu_seconds: GpuSeconds = None  # provider cluster: GPU time it held (seconds × GPUs), its cost


class Transcriber(Protocol):
    name: str

    @abstractmethod
    def transcribe(
        self, request: TranscriptionRequest, work_dir: Path, progress: SubProgress, checkpoint: Checkpoint
    ) -> TranscriptionOutput: ...


# --- video generation -----------------------------------------------------------------------


@dataclass(frozen=True)
class VideoRequest:
    """One video, its shape resolved from the spec and its model (api/video/shape.py `shape_of`)."""

    prompt: str
    model: str  # a name of api/video/table.py's MODELS
    app: str  # fal's app, or the cluster's pipeline, for the mode asked
    frames: int
    fps: int
    width: int
    height: int
    resolution: str
    aspect_ratio: str
    negative_prompt: str = ""
    seed: int | None = None
    duration_seconds: float | None = None  # a model that takes durations only (Kling)
    # image-to-video: the picture, as a local file (always) and as a URL the provider can fetch
    # (presigned for store objects; "" when there is none)
    image_path: Path | None = None
    image_url: str = ""
    loras: tuple[LoraWeights, ...] = ()
    # provider cluster: a write-once folder where frames are kept as they are made, so that a
    # retried pod takes them instead of drawing them again (None: none)
    frames_made: CheckpointFiles | None = None
    owner: str = (
        ""  # whose request it is: a warm pool serves owners in turn (providers/cluster/generation/pool.py)
    )
    # provider cluster: the spec's `denoising: job`, denoised by this worker even where a warm pool
    # is named (as ImageRequest's)
    drawn_here: bool = False


@dataclass(frozen=True)
class VideoOutput:
    """A video as the provider delivered it, before it is checked, stored and described: the
    pipeline decodes it (frames, rate, size and codec are measured, not taken on trust)."""

    path: Path  # downloaded into the work directory
    content_type: str = "video/mp4"
    seed: int | None = None
    request_id: str = ""  # the provider's request that made (and billed) it
    gpu_seconds: GpuSeconds = None  # GPU time it held (cluster)
    placeholder: bool = False


class VideoGenerator(Protocol):
    """Makes one video. A paid call records its request in `checkpoint` before waiting for the
    video (a retried pod polls that request instead of paying again), as image generation does, in
    the fields providers/cancel.py reads (`provider`, `app`, `request_id`, `sent` once it left,
    `result` once delivered): deleting the resource or superseding its run then cancels a request in
    flight, and the bill names it once. The checkpoint is the resource's (temp/{uid}/checkpoints/
    video.json), not the run's: a later run with the same inputs delivers what was paid for."""

    name: str

    @abstractmethod
    def generate_video(
        self, request: VideoRequest, work_dir: Path, progress: SubProgress, checkpoint: Checkpoint
    ) -> VideoOutput: ...


# --- dataset captions -----------------------------------------------------------------------


@dataclass(frozen=True)
class CaptionRequest:
    images: tuple[Path, ...]  # the dataset's JPEGs, in order


@dataclass(frozen=True)
class CaptionOutput:
    """One description per image, in order; the pipeline puts each into the captionTemplate."""

    descriptions: list[str]
    model: str  # what wrote them
    placeholder: bool = False
    cost_usd: float = 0.0  # what the provider reported charging for this call's requests


Billed = Callable[[str, str], None]  # (what the provider bills, its request id)


class Captioner(Protocol):
    name: str

    @abstractmethod
    def caption_images(
        self,
        request: CaptionRequest,
        work_dir: Path,
        progress: SubProgress,
        checkpoint: Checkpoint,
        billed: Billed | None = None,
    ) -> CaptionOutput:
        """Describe every image; all of them or an error (never a partly captioned dataset).
        `checkpoint` holds one part per image (`billing.Part`, named by its index), so a retried
        pod pays only for images that have no description yet. `billed(item, request_id)` is
        called for each image's request as soon as its description is in hand, so a failure
        later in the call still knows what was billed."""
