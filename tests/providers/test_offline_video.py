"""The offline provider's image-to-video frames: the picture it animates keeps its own label (an
offline picture says OFFLINE PLACEHOLDER at its top), and the video's words go in a band under the
picture, so that the two never cover each other."""

from __future__ import annotations

from pathlib import Path

import av
import cv2
import numpy as np

from contentgen.providers.base import ImageRequest, MemoryCheckpoint, VideoRequest
from contentgen.providers.offline import OfflineProvider
from contentgen.providers.offline_video import OfflineVideoGenerator

from .fakes import Progress


def _frames(path: Path) -> list[np.ndarray]:
    with av.open(str(path)) as container:
        return [frame.to_ndarray(format="bgr24") for frame in container.decode(video=0)]


def _request(picture: Path | None, width: int = 480, height: int = 640) -> VideoRequest:
    return VideoRequest(
        prompt="dmavatar turns towards the camera",
        model="wan-2.2-i2v",
        app="offline",
        frames=8,
        fps=8,
        width=width,
        height=height,
        resolution="480p",
        aspect_ratio="auto",
        seed=3,
        image_path=picture,
    )


def _lit(region: np.ndarray) -> int:
    """White pixels: the labels' text."""
    return int((region.min(axis=2) > 200).sum())


def test_an_animated_picture_keeps_its_own_label_and_the_videos_is_under_it(tmp_path: Path) -> None:
    # an offline picture as the demo animates it: its own OFFLINE PLACEHOLDER label at its top
    [made] = OfflineProvider().generate_images(
        ImageRequest(prompt="a portrait of dmavatar", model="flux-lora", image_size="portrait_4_3", seed=1),
        tmp_path,
        Progress(),
        MemoryCheckpoint(),
    )
    plain = tmp_path / "plain.png"
    cv2.imwrite(str(plain), np.full((1024, 768, 3), 128, np.uint8))  # a picture with no words
    out = OfflineVideoGenerator().generate_video(_request(plain), tmp_path, Progress(), MemoryCheckpoint())
    first = _frames(out.path)[0]
    band = 640 // 4
    # nothing of the video's is drawn over the picture: its part of the frame is the picture alone
    assert _lit(first[: 640 - band]) == 0
    assert abs(float(first[20 : 640 - band - 20].mean()) - 128) < 6
    # the video's label and prompt are in the band under it
    assert _lit(first[640 - band :]) > 150
    # an offline picture's own label stays as it is, uncovered (the top of the frame, zoom 1.0)
    out = OfflineVideoGenerator().generate_video(
        _request(made.path), tmp_path, Progress(), MemoryCheckpoint()
    )
    framed = _frames(out.path)[0][: 640 - band]
    source = cv2.imread(str(made.path))
    scale = max(480 / source.shape[1], (640 - band) / source.shape[0])
    resized = cv2.resize(source, (round(source.shape[1] * scale), round(source.shape[0] * scale)))
    top = (resized.shape[0] - (640 - band)) // 2
    left = (resized.shape[1] - 480) // 2
    expected = resized[top : top + 640 - band, left : left + 480]
    assert float(np.abs(framed.astype(int) - expected.astype(int)).mean()) < 6  # the picture, as it is


def test_a_text_to_video_frame_is_labelled_at_its_top(tmp_path: Path) -> None:
    out = OfflineVideoGenerator().generate_video(
        _request(None, 832, 480), tmp_path, Progress(), MemoryCheckpoint()
    )
    first = _frames(out.path)[0]
    assert _lit(first[:120]) > 300  # OFFLINE PLACEHOLDER and the prompt, where they always were
