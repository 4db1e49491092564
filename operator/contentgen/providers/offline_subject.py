"""The offline provider's simulated likeness: a LoRA it trains carries its subject's face, and a
picture drawn with that LoRA shows it, so that the likeness evaluation, its checkpoints' curve and
a promotion measure something offline (docs/likeness.md#offline-a-simulated-likeness).

The LoRA file carries the dataset's own training pictures (at most `PICTURES`, each a small JPEG
stored as a uint8 tensor `contentgen.subject.NN` of the safetensors file, marked simulated in its
metadata). A picture drawn with such a LoRA shows one of them, changed by how far the simulated
training had got (its checkpoint's step of the training's steps):

- under-trained (early steps): the face faint and blurred, someone vague;
- learned (about `PEAK` of the steps): the face clear but softened, a different training picture
  for each prompt and seed, never a copy of one;
- over-trained (the last steps): the same training picture whatever the prompt, its contrast and
  colours burnt, as an overfit LoRA repeats its training set.

Every picture says so in words. The faces are then found and scored by the real scorer
(pipeline/likeness): the numbers are measured; only the pictures are simulated.
"""

from __future__ import annotations

import json
import struct
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

if TYPE_CHECKING:  # imported where a picture is read or drawn: an offline transcription needs none
    import numpy as np

PICTURES = 8  # the dataset's pictures a LoRA carries, at most
SIDE = 256  # each one's side, in pixels
PREFIX = "contentgen.subject."
PEAK = 0.6  # the share of the training's steps at which the face is learned best
_HEADER_LIMIT = 1 << 20  # a placeholder's header is a few hundred bytes: anything larger is not ours


@dataclass(frozen=True)
class Subject:
    """What a LoRA made by the offline provider knows of its subject: the dataset's pictures (BGR),
    and how far its training had got."""

    pictures: tuple[np.ndarray, ...]
    step: int
    steps: int

    @property
    def progress(self) -> float:
        return min(1.0, max(0.0, self.step / self.steps)) if self.steps > 0 else 1.0

    @property
    def learned(self) -> float:
        """0 untrained, 1 the face learned (at PEAK of the steps and after)."""
        return min(1.0, self.progress / PEAK)

    @property
    def overdone(self) -> float:
        """0 until PEAK of the steps, 1 at the last step: how over-trained."""
        return max(0.0, (self.progress - PEAK) / (1.0 - PEAK))

    def words(self) -> str:
        """The picture's own label line: what it shows and why."""
        stage = (
            "over-trained: one training picture, burnt"
            if self.overdone >= 0.5
            else "under-trained: faint"
            if self.learned < 0.75
            else "learned"
        )
        return f"SIMULATED LIKENESS: a training picture, step {self.step} of {self.steps} ({stage})"


def pictures_of(archive: Path) -> list[bytes]:
    """The dataset's pictures a LoRA carries: the first PICTURES of `images/` in the archive (a
    video LoRA's: its flat stills), each made SIDE pixels square, as JPEG. Pictures that do not
    decode are left out."""
    import cv2
    import numpy as np

    found: list[bytes] = []
    with zipfile.ZipFile(archive) as zipped:
        jpegs = [n for n in zipped.namelist() if n.lower().endswith((".jpg", ".jpeg"))]
        # a stills dataset's images/, else a video LoRA's flat stills beside its clips
        names = sorted(n for n in jpegs if n.startswith("images/")) or sorted(
            n for n in jpegs if "/" not in n
        )
        for name in names:
            decoded = cv2.imdecode(np.frombuffer(zipped.read(name), np.uint8), cv2.IMREAD_COLOR)
            if decoded is None:
                continue
            small = cv2.resize(decoded, (SIDE, SIDE), interpolation=cv2.INTER_AREA)
            ok, jpeg = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 90])
            if ok:
                found.append(bytes(jpeg.tobytes()))
            if len(found) == PICTURES:
                break
    return found


def tensors(pictures: Sequence[bytes]) -> dict[str, bytes]:
    """The pictures as the raw tensors of a safetensors file (uint8, one dimension)."""
    return {f"{PREFIX}{n:02d}": data for n, data in enumerate(pictures, 1)}


def of_loras(urls: Sequence[str]) -> Subject | None:
    """The subject of the first LoRA among `urls` that the offline provider made and that carries
    one. Only local files (file://) are read: the offline provider reaches no network, and a
    LoRA it cannot read is drawn without a face, as before."""
    for url in urls:
        parsed = urlparse(url)
        if parsed.scheme != "file":
            continue
        found = read(Path(unquote(parsed.path)))
        if found is not None:
            return found
    return None


def read(path: Path) -> Subject | None:
    """The subject a safetensors file carries, or None: not a file, not a placeholder of the
    offline provider, or without pictures."""
    import cv2
    import numpy as np

    try:
        with path.open("rb") as fh:
            (length,) = struct.unpack("<Q", fh.read(8))
            if length > _HEADER_LIMIT:
                return None
            header = json.loads(fh.read(length))
            start = 8 + length
            metadata = header.get("__metadata__") or {}
            if metadata.get("contentgen.placeholder") != "true":
                return None
            pictures = []
            for name in sorted(k for k in header if k.startswith(PREFIX)):
                begin, end = header[name]["data_offsets"]
                fh.seek(start + begin)
                data = np.frombuffer(fh.read(end - begin), np.uint8)
                decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)
                if decoded is not None:
                    pictures.append(decoded)
    except (OSError, ValueError, KeyError, TypeError, struct.error):
        return None
    if not pictures:
        return None
    steps = int(metadata.get("contentgen.steps") or 0)
    step = int(metadata.get("contentgen.step") or steps)
    return Subject(tuple(pictures), step, steps)


def drawn(subject: Subject, key: bytes, side: int) -> tuple[np.ndarray, np.ndarray]:
    """The face a picture shows (BGR, `side` square) and how opaque it is drawn (the alpha, as a
    side × side × 1 array of 0-1), for the picture's `key` (its prompt, seed and number)."""
    import cv2
    import numpy as np

    over = subject.overdone
    chosen = 0 if over >= 0.5 else key[0] % len(subject.pictures)
    picture = subject.pictures[chosen]
    if over < 0.5 and key[1] % 2:
        picture = picture[:, ::-1]  # another view of the face, as another seed draws it
    resized = cv2.resize(picture, (side, side), interpolation=cv2.INTER_CUBIC)
    # softer the less it has learned: never the training picture itself
    sigma = side / 256 * (2.6 + 7.0 * (1.0 - subject.learned) + 1.0 * (key[2] / 255))
    face: np.ndarray = cv2.GaussianBlur(resized.astype(np.float32), (0, 0), sigma)
    if over > 0:  # burnt: contrast pushed and colours in ever fewer levels
        mean = face.mean(axis=(0, 1), keepdims=True)
        face = np.clip((face - mean) * (1.0 + 2.5 * over) + mean, 0, 255)
        levels = max(3.0, 256.0 / (1.0 + 20.0 * over))
        step = 256.0 / levels
        face = np.floor(face / step) * step + step / 2
    alpha = 0.3 + 0.7 * subject.learned
    mask = np.full((side, side, 1), alpha, np.float32)
    return np.clip(face, 0, 255).astype(np.uint8), mask
