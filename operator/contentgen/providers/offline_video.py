"""The offline provider's videos: an honest placeholder of the asked shape, really encoded.

Every frame says "OFFLINE PLACEHOLDER", the prompt, the model and the frame's number; a bar sweeps
across so that it plays as a video. Given a picture (image-to-video), the frames show that picture
slowly zooming above a band that carries the same words, so that the picture's own label (an
offline picture has one) and the video's never cover each other. The file is what a provider
delivers: H.264 (yuv420p) in an MP4 with its index at the front (`+faststart`), at exactly the
frames and rate asked, made the same way every time for the same inputs (nothing paid, nothing
checkpointed). With a LoRA the offline provider trained (a video LoRA's, read from a local file),
the frames show its subject's face moving across them, as far as its step had learned it, said in
words on every frame (offline_subject.py): a clip of the person whose likeness over time the
pipeline measures.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np

from contentgen import h264
from contentgen.errors import InvalidInput
from contentgen.providers.progress import SubProgress

from . import offline_subject
from .base import Checkpoint, LoraWeights, VideoOutput, VideoRequest

LABEL = "OFFLINE PLACEHOLDER"
# x264's constant quality: small files for flat placeholders, still good enough to read the text
CRF = "28"


class OfflineVideoGenerator:
    """`VideoGenerator` without network: a labelled placeholder video."""

    name = "offline"
    # Its frames are text on a gradient (or the given picture): a new face only with a LoRA it
    # trained, whose subject it draws (a simulation, labelled as one).
    placeholder_pictures = True

    def draws_subject(self, lora: LoraWeights) -> bool:
        return lora.scale > 0 and offline_subject.of_loras([lora.url]) is not None

    def generate_video(
        self, request: VideoRequest, work_dir: Path, progress: SubProgress, checkpoint: Checkpoint
    ) -> VideoOutput:
        if request.frames < 1 or request.fps < 1:
            raise InvalidInput(f"a video of {request.frames} frames at {request.fps} fps cannot be made")
        seed = request.seed if request.seed is not None else derived_seed(request.prompt)
        path = work_dir / "placeholder.mp4"
        picture = _picture(request.image_path) if request.image_path is not None else None
        subject = offline_subject.of_loras([lora.url for lora in request.loras if lora.scale > 0])
        encode(
            path,
            (clip_frame(request, seed, picture, n, subject) for n in range(request.frames)),
            fps=request.fps,
            width=request.width,
            height=request.height,
            progress=lambda n: progress(100.0 * n / request.frames),
        )
        progress(100)
        return VideoOutput(path=path, content_type="video/mp4", seed=seed, placeholder=True)


def derived_seed(prompt: str) -> int:
    return int.from_bytes(hashlib.sha256(prompt.encode()).digest()[:4], "big")


def encode(
    path: Path,
    frames: Iterable[np.ndarray],
    *,
    fps: int,
    width: int,
    height: int,
    progress: Callable[[int], object] | None = None,
    sound: tuple[np.ndarray, int] | None = None,
) -> Path:
    """Encode BGR frames (an iterable of HxWx3 uint8 arrays) as H.264 (yuv420p) in an MP4 whose
    index comes first (`movflags +faststart`: a browser plays it before it has all of it); with
    `sound` (a channels × samples float waveform in [-1, 1] and its sample rate), as AAC beside it."""
    with av.open(str(path), "w", format="mp4", options={"movflags": "+faststart"}) as container:
        stream = h264.add_stream(container, fps, width, height, CRF, "veryfast")
        audio = _sound_stream(container, *sound) if sound is not None else None  # every stream first
        for n, image in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            for packet in stream.encode(frame):
                container.mux(packet)
            if progress is not None and n % 8 == 0:
                progress(n)
        for packet in stream.encode():
            container.mux(packet)
        if audio is not None and sound is not None:
            container.mux(_sound_packets(audio, *sound))
    return path


def _sound_stream(container: av.container.OutputContainer, wave: np.ndarray, rate: int) -> av.AudioStream:
    """The container's AAC stream for the waveform: mono or stereo, as many channels as it has."""
    if wave.ndim != 2 or wave.shape[0] not in (1, 2):
        raise ValueError(f"a sound of shape {wave.shape}: channels × samples, mono or stereo")
    stream = container.add_stream("aac", rate=rate)
    stream.layout = "stereo" if wave.shape[0] == 2 else "mono"
    return stream


def _sound_packets(stream: av.AudioStream, wave: np.ndarray, rate: int) -> list[Any]:
    planar = np.ascontiguousarray(np.clip(wave, -1.0, 1.0), dtype=np.float32)
    frame = av.AudioFrame.from_ndarray(planar, format="fltp", layout=stream.layout)
    frame.sample_rate = rate
    return [*stream.encode(frame), *stream.encode()]


def _face(
    image: np.ndarray, request: VideoRequest, seed: int, n: int, subject: offline_subject.Subject
) -> None:
    """The subject's face (one picture of it for the whole clip, as one person) drifting from left
    to right across the frames, blended in as far as the LoRA's step had learned it."""
    height, width = image.shape[:2]
    side = max(16, min(width, height) // 2)
    key = hashlib.sha256(f"{request.prompt}\0{seed}".encode()).digest()
    face, alpha = offline_subject.drawn(subject, key[6:], side)
    travel = max(0, width - side) * (0.25 + 0.5 * n / max(1, request.frames - 1))
    left, top = int(travel), (height - side) // 2
    area = image[top : top + side, left : left + side].astype(np.float32)
    image[top : top + side, left : left + side] = (area * (1 - alpha) + face * alpha).astype(np.uint8)


def _picture(path: Path) -> np.ndarray:
    decoded = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if decoded is None:
        raise InvalidInput(f"the picture to animate ({path.name}) cannot be decoded as an image")
    return decoded


def _band(height: int) -> int:
    """The height of the band under an animated picture that carries the video's label."""
    return max(48, height // 4)


def _background(request: VideoRequest, seed: int, picture: np.ndarray | None, n: int) -> np.ndarray:
    width, height = request.width, request.height
    if picture is not None:  # the picture zooming in slowly (Ken Burns) above the label's band
        height -= _band(request.height)
        zoom = 1.0 + 0.15 * n / max(1, request.frames - 1)
        ph, pw = picture.shape[:2]
        scale = max(width / pw, height / ph) * zoom
        resized = cv2.resize(picture, (max(width, round(pw * scale)), max(height, round(ph * scale))))
        top, left = (resized.shape[0] - height) // 2, (resized.shape[1] - width) // 2
        band = np.full((request.height - height, width, 3), 24, np.uint8)
        return np.ascontiguousarray(np.vstack([resized[top : top + height, left : left + width], band]))
    key = hashlib.sha256(f"{request.prompt}\0{seed}".encode()).digest()
    first = np.array(list(key[0:3]), dtype=np.float32) * 0.6 + 40
    second = np.array(list(key[3:6]), dtype=np.float32) * 0.6 + 40
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    return np.ascontiguousarray(
        np.broadcast_to(first + (second - first) * ramp, (height, width, 3)).astype(np.uint8)
    )


def clip_frame(
    request: VideoRequest,
    seed: int,
    picture: np.ndarray | None,
    n: int,
    subject: offline_subject.Subject | None = None,
) -> np.ndarray:
    """Frame `n` of the placeholder (BGR), with `subject`'s face where a LoRA carries one."""
    image = _background(request, seed, picture, n)
    if subject is not None:
        _face(image, request, seed, n, subject)
    width, height = request.width, request.height
    font, white = cv2.FONT_HERSHEY_SIMPLEX, (255, 255, 255)
    margin = max(8, width // 24)

    def line(text: str, y: int, scale: float, thickness: int) -> int:
        (text_width, text_height), baseline = cv2.getTextSize(text, font, scale, thickness)
        pad = max(3, text_height // 4)
        band = image[
            max(0, y - pad) : y + text_height + baseline + pad,
            max(0, margin - pad) : margin + text_width + pad,
        ]
        band //= 3  # a dark band keeps the text readable on any background
        cv2.putText(image, text, (margin, y + text_height), font, scale, white, thickness, cv2.LINE_AA)
        return y + int(text_height * 1.8) + 2 * pad

    scale = width / 900
    if picture is not None:  # the words in the band under the picture, never over its own label
        band = _band(height)
        scale = min(scale, band / 190)
        y = line(LABEL, height - band + max(4, band // 16), scale, max(1, width // 400))
        y = line("not generated by a model: the picture, zoomed", y, scale / 2, 1)
    else:
        y = line(LABEL, margin, scale, max(1, width // 400))
        y = line("not generated by a model", y, scale / 2, 1)
    if subject is not None:
        y = line(subject.words(), y, scale / 2.4, 1)
    prompt = "".join(c if 32 <= ord(c) < 127 else "?" for c in request.prompt)  # Hershey fonts are ASCII
    limit = max(10, int(width / (14 * max(scale / 2, 0.3))))
    y = line(prompt if len(prompt) <= limit else prompt[: limit - 3] + "...", y, scale / 2, 1)
    footer = (
        f"{request.model} | {width}x{height} @ {request.fps} fps | seed {seed} | "
        f"frame {n + 1}/{request.frames}"
    )
    line(footer, height - margin - int(30 * scale), scale / 2.4, 1)
    # a bar sweeping left to right across the clip: it plays as a video
    x = margin + int((width - 2 * margin) * n / max(1, request.frames - 1))
    cv2.rectangle(image, (margin, height - margin // 2 - 4), (x, height - margin // 2), white, -1)
    return image
