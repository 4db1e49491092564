"""The offline provider: all three capabilities without network or keys, for demos and CI.

What it returns are honest placeholders that say so, made deterministically from the inputs,
while the caller's own stages (frames, dataset, storage, catalog) run for real around it:

- a LoRA: a small valid safetensors file whose metadata marks it as a placeholder, and a
  config.json saying the same; the dataset zip is read for real (images counted, hashed);
- images: PNGs showing the prompt and an "OFFLINE PLACEHOLDER" label, sized like fal's presets;
- a transcript: text stating it is a placeholder, with the duration measured locally, in the
  shape of AssemblyAI's response;
- dataset captions: the same labelled sentence for every image (each image is read, so a
  missing or unreadable one fails as it would on fal); the captionTemplate goes around it;
- checkpoints: where training.checkpointEvery is under training.steps, a placeholder LoRA for
  every checkpointEvery steps and the last, each marked simulated in its metadata and stored where
  the cluster's trainer stores its checkpoints, so that the checkpoints' evaluation, the curve, the
  seed × checkpoint grid and promoting a step can be tried offline (docs/likeness.md#checkpoints);
  with a simulated training state beside each (`step-NNNNNN.state.json`), and handed to the run's
  watch as each is stored, as the cluster's trainer does: it is scored then, and the simulated
  training stops early (a plateau, a person's stop), keeps its best checkpoint so far, and goes on
  from a version (training.continueFrom), steps numbered on; CONTENTGEN_OFFLINE_STEP_SECONDS
  (settings.py) makes each simulated step take that long (default 0), so a stop can be tried by hand;
- a simulated likeness: each LoRA carries the dataset's own pictures, and an image drawn with one
  shows its subject's face as far as its step had learned it, labelled as simulated
  (offline_subject.py), so that the evaluation's numbers are measured on a face.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from contentgen.api.image import IMAGE_SIZES
from contentgen.errors import InvalidInput
from contentgen.files import sha256_file
from contentgen.providers.progress import SubProgress

from . import offline_subject, offline_training
from .base import (
    Billed,
    CaptionOutput,
    CaptionRequest,
    Checkpoint,
    ImageOutput,
    ImageRequest,
    LoraWeights,
    TrainingOutput,
    TrainingRequest,
    TranscriptionOutput,
    TranscriptionRequest,
)

NOTE = "offline provider: not a trained model"
CHECKPOINT_NOTE = "offline provider: a simulated checkpoint, not a trained model"
CAPTION_NOTE = "offline placeholder caption, no vision model described this image"
CAPTION_MODEL = "offline-template"
TRANSCRIPT_NOTE = "offline provider: placeholder, no speech was recognized"

_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
_CHUNK = 1024 * 1024


class OfflineProvider:
    """`LoraTrainer`, `ImageGenerator`, `Transcriber` and `Captioner` without network.
    Provider checkpoints (resuming paid work) are not needed, nothing being paid for, and are left
    untouched; training checkpoints are simulated (_simulated_checkpoints)."""

    name = "offline"
    # Its pictures without a LoRA are labelled placeholders of text on a gradient, never a face:
    # the likeness evaluation records its baseline as faceless without searching it
    # (evaluation.run_evaluations). With one of its own LoRAs, a picture shows the LoRA's subject.
    placeholder_pictures = True

    def draws_subject(self, lora: LoraWeights) -> bool:
        """Whether its pictures drawn with `lora` show a face: a LoRA it trained, carrying its
        subject, read from a local file (offline_subject)."""
        return lora.scale > 0 and offline_subject.of_loras([lora.url]) is not None

    # --- LoRA training ------------------------------------------------------------------------

    def train_lora(
        self, request: TrainingRequest, work_dir: Path, progress: SubProgress, checkpoint: Checkpoint
    ) -> TrainingOutput:
        """The cluster trainer's simulation (offline_training.py): its checkpoints' pictures drawn by
        this provider for a FLUX.1 LoRA, as clips' frames for a video LoRA (offline_video_lora.py)."""
        from .offline_video_lora import OfflineClips, lora_of

        drawer = OfflineClips(request.plan.base.name) if request.plan.base.video else self
        return offline_training.train(request, work_dir, progress, drawer, lora_of(request.plan.base))

    # --- dataset captions ---------------------------------------------------------------------

    def caption_images(
        self,
        request: CaptionRequest,
        work_dir: Path,
        progress: SubProgress,
        checkpoint: Checkpoint,
        billed: Billed | None = None,
    ) -> CaptionOutput:
        for index, image in enumerate(request.images):
            progress(100.0 * index / max(1, len(request.images)))
            if not image.is_file() or image.read_bytes()[:2] != b"\xff\xd8":
                raise InvalidInput(f"the dataset image {image.name} is missing or not a JPEG")
            if billed is not None:  # reported like a live provider's requests; it has no price
                billed(CAPTION_MODEL, f"offline-{sha256_file(image)[:16]}")
        progress(100)
        return CaptionOutput(
            descriptions=[CAPTION_NOTE] * len(request.images), model=CAPTION_MODEL, placeholder=True
        )

    # --- image generation ---------------------------------------------------------------------

    def generate_images(
        self, request: ImageRequest, work_dir: Path, progress: SubProgress, checkpoint: Checkpoint
    ) -> list[ImageOutput]:
        if request.image_size not in IMAGE_SIZES:
            raise InvalidInput(f"unknown image size {request.image_size!r}; use one of {sorted(IMAGE_SIZES)}")
        width, height = IMAGE_SIZES[request.image_size]
        seed = request.seed if request.seed is not None else _derived_seed(request.prompt)
        subject = offline_subject.of_loras([lora.url for lora in request.loras if lora.scale > 0])
        outputs = []
        for index in range(request.num_images):
            progress(100.0 * index / request.num_images)
            path = work_dir / f"image-{index + 1:02d}.png"
            path.write_bytes(_placeholder_png(request, width, height, seed, index, subject))
            outputs.append(
                ImageOutput(
                    path=path,
                    width=width,
                    height=height,
                    content_type="image/png",
                    seed=seed,
                    placeholder=True,
                )
            )
        progress(100)
        return outputs

    # --- transcription ------------------------------------------------------------------------

    def transcribe(
        self, request: TranscriptionRequest, work_dir: Path, progress: SubProgress, checkpoint: Checkpoint
    ) -> TranscriptionOutput:
        progress(0)
        digest, size = sha256_file(request.audio_path), request.audio_path.stat().st_size
        duration = request.duration_seconds
        measured = f"{duration:.1f} seconds long" if duration is not None else "of unmeasured duration"
        text = (
            "[OFFLINE PLACEHOLDER] This is not a transcript: the offline provider does not listen to "
            f"the audio. The source ({size} bytes, sha256 {digest[:12]}) is {measured}."
        )
        language = request.language_code or ""
        utterances = None
        if request.speaker_labels:
            end_ms = round((duration or 0.0) * 1000)
            utterances = [
                {"speaker": "A", "text": text, "start": 0, "end": end_ms, "confidence": 0.0, "words": []}
            ]
        response: dict[str, Any] = {
            "id": f"offline-{digest[:16]}",
            "status": "completed",
            "audio_url": None,
            "text": text,
            "words": [],
            "utterances": utterances,
            "audio_duration": round(duration) if duration is not None else None,
            "language_code": language or None,
            "speaker_labels": request.speaker_labels,
            "error": None,
            "contentgen_placeholder": True,
            "contentgen_note": TRANSCRIPT_NOTE,
        }
        progress(100)
        return TranscriptionOutput(
            response=response,
            text=f"Speaker A: {text}" if request.speaker_labels else text,
            word_count=len(text.split()),  # the placeholder's own words: what transcript.txt holds
            duration_seconds=float(duration or 0.0),
            speakers=1 if request.speaker_labels else 0,
            language_code=language,
            request_id=response["id"],
            placeholder=True,
        )


# --- safetensors ----------------------------------------------------------------------------------


def _derived_seed(prompt: str) -> int:
    return int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:4], "big")


class _Canvas:
    """A placeholder's picture: a gradient in a white frame, written on line by line, each line on a
    dark band that keeps it readable on any background."""

    def __init__(self, key: bytes, width: int, height: int) -> None:
        import cv2  # the worker image has it; importing it here keeps the module light
        import numpy as np

        self.cv2, self.width = cv2, width
        top = np.array(list(key[0:3]), dtype=np.float32) * 0.6 + 40
        bottom = np.array(list(key[3:6]), dtype=np.float32) * 0.6 + 40
        ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
        self.image = np.ascontiguousarray(
            np.broadcast_to(top + (bottom - top) * ramp, (height, width, 3)).astype(np.uint8)
        )
        self.font, self.white, self.margin = cv2.FONT_HERSHEY_SIMPLEX, (255, 255, 255), width // 16
        half = self.margin // 2
        cv2.rectangle(self.image, (half, half), (width - half, height - half), self.white, 3)

    def step(self, scale: float, thickness: int) -> tuple[int, int]:
        """(pad, advance): the padding of a line's band and how far down the next line starts."""
        text_height = self.cv2.getTextSize("Xg", self.font, scale, thickness)[0][1]
        pad = max(4, text_height // 4)
        return pad, int(text_height * 1.8) + 2 * pad

    def line(self, text: str, y: int, scale: float, thickness: int) -> int:
        """Write `text` at `y`; where the next line starts."""
        cv2, margin = self.cv2, self.margin
        (text_width, text_height), baseline = cv2.getTextSize(text, self.font, scale, thickness)
        pad, advance = self.step(scale, thickness)
        band = self.image[
            max(0, y - pad) : y + text_height + baseline + pad, margin - pad : margin + text_width + pad
        ]
        band //= 3
        position = (margin, y + text_height)
        cv2.putText(self.image, text, position, self.font, scale, self.white, thickness, cv2.LINE_AA)
        return y + advance

    def wrap(self, text: str, scale: float, thickness: int) -> list[str]:
        """`text` in lines that fit between the margins."""
        lines: list[str] = []
        for word in text.split():
            candidate = f"{lines[-1]} {word}" if lines else word
            fits = self.cv2.getTextSize(candidate, self.font, scale, thickness)[0][0]
            if lines and fits <= self.width - 2 * self.margin:
                lines[-1] = candidate
            else:
                lines.append(word)
        return lines

    def face(self, subject: offline_subject.Subject, key: bytes, y: int, side: int) -> int:
        """The subject's face blended in at `y`, a little to either side; where the next line starts."""
        width, margin = self.width, self.margin
        face, alpha = offline_subject.drawn(subject, key[6:], side)
        left = (width - side) // 2 + (key[9] - 128) * margin // 512
        left = max(margin // 2 + 3, min(width - margin // 2 - 3 - side, left))
        area = self.image[y : y + side, left : left + side].astype("float32")
        self.image[y : y + side, left : left + side] = (area * (1 - alpha) + face * alpha).astype("uint8")
        return y + side + margin // 4

    def png(self) -> bytes:
        ok, png = self.cv2.imencode(".png", self.image)
        if not ok:
            raise RuntimeError("OpenCV could not encode a PNG")
        return bytes(png.tobytes())


def _placeholder_png(
    request: ImageRequest,
    width: int,
    height: int,
    seed: int,
    index: int,
    subject: offline_subject.Subject | None = None,
) -> bytes:
    """The labelled placeholder; with a `subject` (the request's LoRA is one of ours), its face
    under the label, as far as the LoRA's step had learned it, said in words above it."""
    key = hashlib.sha256(f"{request.prompt}\0{seed}\0{index}".encode()).digest()
    canvas = _Canvas(key, width, height)
    margin = canvas.margin
    title_scale = width / 600
    y = canvas.line("OFFLINE PLACEHOLDER", margin, title_scale, max(2, width // 256))
    y = canvas.line("not generated by a model", y, title_scale / 2, 2)
    footer_y = height - margin - width // 20
    prompt = "".join(c if 32 <= ord(c) < 127 else "?" for c in request.prompt)  # Hershey fonts are ASCII
    scale = width / 1400
    if subject is not None:
        y = canvas.line(subject.words(), y, width / 1800, 1)
        prompt_room = 2 * canvas.step(scale, 2)[1]
        y = canvas.face(
            subject, key, y, max(16, min(width - 2 * margin, footer_y - y - prompt_room - margin // 2))
        )
    lines = canvas.wrap(prompt, scale, 2)
    room = max(1, (footer_y - y) // canvas.step(scale, 2)[1])
    if len(lines) > room:
        lines = [*lines[: room - 1], "..."] if room > 1 else ["..."]
    for text in lines:
        y = canvas.line(text, y, scale, 2)
    footer = f"{request.model} | {request.image_size} | seed {seed} | image {index + 1}/{request.num_images}"
    canvas.line(footer, footer_y, width / 1800, 1)
    return canvas.png()
