"""The object-key layout (DESIGN.md, "object keys"). Every key the project writes comes from here.

loras/{owner}/{uid}/v{n}/model.safetensors, config.json, result.json
datasets/{owner}/{uid}/v{n}/images/0001.jpg, captions/0001.txt, dataset.zip
generated-images/{owner}/{uid}/image_{n}.png, result.json
transcripts/{owner}/{uid}/transcript.json, transcript.txt, result.json
temp/{uid}/...   scratch and provider checkpoints (a 24 h lifecycle rule may expire it)
outbox/catalog/  catalog records of local runs waiting for the catalog (catalog/outbox.py)
"""

from __future__ import annotations

import re

_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _seg(value: str, what: str) -> str:
    if not _SEGMENT.match(value) or value in (".", "..") or ".." in value:
        raise ValueError(f"{what} {value!r} cannot be part of an object key")
    return value


def lora_root(owner: str, uid: str) -> str:
    return f"loras/{_seg(owner, 'owner')}/{_seg(uid, 'uid')}/"


def lora_version(owner: str, uid: str, version: int) -> str:
    return f"{lora_root(owner, uid)}v{version}/"


_LORA_MODEL = re.compile(r"(?:^|/)loras/([^/]+)/([^/]+)/v(\d+)/model\.safetensors$")


def lora_of_uri(uri: str) -> tuple[str, str, int] | None:
    """(owner, uid, version) of a LoRA model URI in this layout (any store, any prefix), else None."""
    match = _LORA_MODEL.search(uri.split("?", 1)[0])
    return (match.group(1), match.group(2), int(match.group(3))) if match else None


def thumbnail(key: str) -> str:
    """The thumbnail's key beside an image: dir/thumbs/name.jpg."""
    directory, _, name = key.rpartition("/")
    stem = name.rsplit(".", 1)[0]
    return f"{directory}/thumbs/{stem}.jpg" if directory else f"thumbs/{stem}.jpg"


def dataset_root(owner: str, uid: str) -> str:
    return f"datasets/{_seg(owner, 'owner')}/{_seg(uid, 'uid')}/"


def dataset_version(owner: str, uid: str, version: int) -> str:
    return f"{dataset_root(owner, uid)}v{version}/"


def images_root(owner: str, uid: str) -> str:
    return f"generated-images/{_seg(owner, 'owner')}/{_seg(uid, 'uid')}/"


def image(owner: str, uid: str, n: int) -> str:
    return f"{images_root(owner, uid)}image_{n}.png"


def transcripts_root(owner: str, uid: str) -> str:
    return f"transcripts/{_seg(owner, 'owner')}/{_seg(uid, 'uid')}/"


def temp_root(uid: str) -> str:
    return f"temp/{_seg(uid, 'uid')}/"


def outbox(name: str) -> str:
    """A waiting catalog record ("" for the folder)."""
    return f"outbox/catalog/{_seg(name, 'outbox entry') if name else ''}"


def checkpoint(uid: str, name: str) -> str:
    return f"{temp_root(uid)}checkpoints/{_seg(name, 'checkpoint')}.json"


def resource_roots(catalog_type: str, owner: str, uid: str) -> list[str]:
    """Every prefix a resource's objects live under (what deletionPolicy: Delete removes)."""
    by_type = {
        "lora-training": [lora_root(owner, uid), dataset_root(owner, uid)],
        "image-generation": [images_root(owner, uid)],
        "transcription": [transcripts_root(owner, uid)],
    }
    return [*by_type[catalog_type], temp_root(uid)]


def result_key(catalog_type: str, owner: str, uid: str, version: int = 0) -> str:
    """Where a run's result document is stored, next to its artifacts."""
    if catalog_type == "lora-training":
        return f"{lora_version(owner, uid, version)}result.json"
    if catalog_type == "image-generation":
        return f"{images_root(owner, uid)}result.json"
    return f"{transcripts_root(owner, uid)}result.json"
