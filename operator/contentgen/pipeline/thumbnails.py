"""Thumbnails: a small JPEG beside every picture a run made (generated images, the dataset's
contact sheet), in a `thumbs/` folder next to the original, so galleries load kilobytes instead
of megabytes. They are artifacts like the rest: listed in the result and the catalog, and
removed with the resource's other objects.
"""

from __future__ import annotations

from contentgen.api import Artifact, GeneratedImage, RunResult
from contentgen.errors import PermanentError
from contentgen.store import ObjectStore, keys

MAX_SIDE = 320  # pixels, the longer side
JPEG = "image/jpeg"
QUALITY = 85


def thumbnail_jpeg(data: bytes, max_side: int = MAX_SIDE) -> bytes:
    """`data` (any format OpenCV decodes) shrunk to at most `max_side` on its longer side, as JPEG.
    Never enlarged; transparency is flattened onto white, as a gallery shows it."""
    import cv2  # here: a pooled worker starts (and asks its pool) without OpenCV's second of CPU
    import numpy as np

    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if decoded is None:
        raise PermanentError("cannot make a thumbnail: the image cannot be decoded", reason="InvalidImage")
    if decoded.ndim == 2:
        decoded = cv2.cvtColor(decoded, cv2.COLOR_GRAY2BGR)
    elif decoded.shape[2] == 4:
        alpha = decoded[:, :, 3:4].astype(np.float32) / 255.0
        decoded = (decoded[:, :, :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    if decoded.dtype != np.uint8:  # 16-bit PNGs
        decoded = (decoded / 257).astype(np.uint8)
    height, width = decoded.shape[:2]
    scale = min(1.0, max_side / max(height, width))
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        decoded = cv2.resize(decoded, size, interpolation=cv2.INTER_AREA)
    ok, encoded = cv2.imencode(".jpg", decoded, [cv2.IMWRITE_JPEG_QUALITY, QUALITY])
    if not ok:
        raise PermanentError("could not encode a thumbnail as JPEG", reason="InvalidImage")
    return encoded.tobytes()


def store_thumbnail(store: ObjectStore, uri: str) -> Artifact:
    """Make and store the thumbnail of the stored picture `uri` (beside it, in thumbs/)."""
    key = store.key_of(uri)
    return store.put_once_bytes(keys.thumbnail(key), thumbnail_jpeg(store.get_bytes(key)), JPEG)


def has_pictures(result: RunResult) -> bool:
    return bool(result.images) or bool(result.lora and result.lora.contact_sheet_uri)


def add_thumbnails(store: ObjectStore, result: RunResult) -> RunResult:
    """`result` with a thumbnail for each generated image and for the contact sheet."""
    made: list[Artifact] = []
    update: dict[str, object] = {}
    if result.images is not None:
        images: list[GeneratedImage] = []
        for image in result.images:
            thumb = store_thumbnail(store, image.uri)
            made.append(thumb)
            images.append(image.model_copy(update={"thumbnail_uri": thumb.uri}))
        update["images"] = images
    lora = result.lora
    if lora is not None and lora.contact_sheet_uri and not lora.contact_sheet_thumbnail_uri:
        thumb = store_thumbnail(store, lora.contact_sheet_uri)
        made.append(thumb)
        update["lora"] = lora.model_copy(update={"contact_sheet_thumbnail_uri": thumb.uri})
    if not made:
        return result
    update["artifacts"] = [*result.artifacts, *made]
    return result.model_copy(update=update)
