"""Checking what fal returns before it is trusted: result fields, sizes, file formats."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

from contentgen.errors import PermanentError

from ..retry import bad_response

MiB = 1024 * 1024
File = dict[str, Any]  # fal's File object: url, and where fal says them content_type, file_name, file_size


def result_file(result: dict[str, Any], key: str, app: str) -> File:
    file = result.get(key)
    if not isinstance(file, dict) or not file.get("url"):
        raise bad_response("fal", f"the training on {app}", f"a result without {key}")
    return file


def too_large(what: str, size: int, limit: int) -> PermanentError:
    return PermanentError(
        f"{what} from fal is larger than the {limit / MiB:.0f} MiB allowed ({size / MiB:.1f} MiB or more)",
        reason="ProviderOutputTooLarge",
    )


def check_safetensors(path: Path) -> None:
    """A safetensors file starts with an 8-byte little-endian length and that much JSON."""
    with path.open("rb") as fh:
        head = fh.read(8)
        length = struct.unpack("<Q", head)[0] if len(head) == 8 else 0
        ok = 0 < length <= min(100 * MiB, path.stat().st_size - 8)
        if ok:
            try:
                ok = isinstance(json.loads(fh.read(length)), dict)
            except ValueError:
                ok = False
    if not ok:
        path.unlink(missing_ok=True)
        raise PermanentError(
            "the LoRA weights fal returned are not a safetensors file", reason="ProviderJobFailed"
        )


EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}
_JPEG_SOF = frozenset({0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF})


def image_header(path: Path) -> tuple[str, int, int]:
    """(content type, width, height) read from the file's own header: PNG, JPEG or WebP."""
    data = path.read_bytes()
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return "image/png", width, height
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        chunk = data[12:16]
        if chunk == b"VP8 ":
            width, height = struct.unpack("<HH", data[26:30])
            return "image/webp", width & 0x3FFF, height & 0x3FFF
        if chunk == b"VP8L":
            bits = int.from_bytes(data[21:25], "little")
            return "image/webp", (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if chunk == b"VP8X":
            return (
                "image/webp",
                int.from_bytes(data[24:27], "little") + 1,
                int.from_bytes(data[27:30], "little") + 1,
            )
    if data[:2] == b"\xff\xd8":
        pos = 2
        while pos + 9 <= len(data):
            if data[pos] != 0xFF:
                break
            marker = data[pos + 1]
            if marker == 0xFF:  # fill byte
                pos += 1
                continue
            if marker in _JPEG_SOF:
                height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
                return "image/jpeg", width, height
            pos += 2 + struct.unpack(">H", data[pos + 2 : pos + 4])[0]
    path.unlink(missing_ok=True)
    raise PermanentError(
        "fal returned a file that is not a PNG, JPEG or WebP image", reason="ProviderJobFailed"
    )
