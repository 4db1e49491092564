"""The object-key layout (DESIGN.md, "object keys"). Every key the project writes comes from here.

Every kind is versioned: each run writes under a version prefix of its own, never used by another
run, so no output is ever written over (the pipeline writes outputs once: `ObjectStore.put_once`).

loras/{owner}/{uid}/v{n}/model.safetensors, config.json, result.json, checkpoints/step-NNNNNN.safetensors
datasets/{owner}/{uid}/v{n}/images/0001.jpg, captions/0001.txt, dataset.zip, contact-sheet.jpg
generated-images/{owner}/{uid}/v{n}/image_{k}.png, thumbs/image_{k}.jpg, result.json
transcripts/{owner}/{uid}/v{n}/transcript.json, transcript.txt, result.json
generated-videos/{owner}/{uid}/v{n}/video.mp4, poster.jpg, thumbs/poster.jpg, strip.jpg, result.json
evaluations/{owner}/{uid}/v{n}/result.json   a LoraEvaluation's runs; what each evaluated is the
                 LoRA version's: loras/{owner}/{lora uid}/v{m}/likeness/e{k}/
{type}/{owner}/{uid}/v{n}/...  a kind with no layout above, by its catalog type: its outputs, result.json
uploads/{owner}/{id}/{name}  a file uploaded through the HTTP API (a source video, a picture), for
                 its owner's specs to name; each under an id of its own, written once
temp/{uid}/...   scratch, provider checkpoints and pictures being made (mutable state, not
                 outputs; a 24 h lifecycle rule may expire it)
outbox/catalog/  catalog records of local runs waiting for the catalog (catalog/outbox.py)

Before versions (up to 0.1), images and transcripts were written straight under
generated-images/{owner}/{uid}/ and transcripts/{owner}/{uid}/: those objects are read as
version 1 (`LEGACY_VERSION`) and never written again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from contentgen.api.kinds import CATALOG_TYPES, KINDS
from contentgen.api.versions import LEGACY_VERSION

_SEGMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# Keys that hold state rather than outputs: rewritten in place by design (checkpoints), or
# written once under unique names and then removed (the outbox).
MUTABLE_PREFIXES = ("temp/", "outbox/")


def _seg(value: str, what: str) -> str:
    if not _SEGMENT.match(value) or value in (".", "..") or ".." in value:
        raise ValueError(f"{what} {value!r} cannot be part of an object key")
    return value


def _version(version: int) -> str:
    if version < 1:
        raise ValueError(f"version {version} is not a version: runs are numbered from 1")
    return f"v{version}/"


def lora_root(owner: str, uid: str) -> str:
    return f"loras/{_seg(owner, 'owner')}/{_seg(uid, 'uid')}/"


def lora_version(owner: str, uid: str, version: int) -> str:
    return lora_root(owner, uid) + _version(version)


# A version's model, or one of its training's checkpoints (a promoted one is the version's model).
_LORA_MODEL = re.compile(
    r"(?:^|/)loras/([^/]+)/([^/]+)/v(\d+)/(?:model|checkpoints/step-(\d{6}))\.safetensors$"
)


def lora_of_uri(uri: str) -> tuple[str, str, int] | None:
    """(owner, uid, version) of a LoRA version's model URI, or of one of its checkpoints' (any
    store, any prefix), else None."""
    match = _LORA_MODEL.search(uri.split("?", 1)[0])
    return (match.group(1), match.group(2), int(match.group(3))) if match else None


def checkpoint_of_uri(uri: str) -> int | None:
    """The step of a LoRA checkpoint's URI (…/vN/checkpoints/step-000500.safetensors), else None
    (a version's model.safetensors, or not a LoRA of this layout)."""
    match = _LORA_MODEL.search(uri.split("?", 1)[0])
    return int(match.group(4)) if match and match.group(4) else None


_VERSION_SEGMENT = re.compile(r"/v(\d+)/")


def version_of_uri(uri: str) -> int | None:
    """The version an output's URI names (its last /v{n}/ segment), None for unversioned ones."""
    found = _VERSION_SEGMENT.findall(uri.split("?", 1)[0])
    return int(found[-1]) if found else None


def thumbnail(key: str) -> str:
    """The thumbnail's key beside an image: dir/thumbs/name.jpg."""
    directory, _, name = key.rpartition("/")
    stem = name.rsplit(".", 1)[0]
    return f"{directory}/thumbs/{stem}.jpg" if directory else f"thumbs/{stem}.jpg"


def dataset_root(owner: str, uid: str) -> str:
    return f"datasets/{_seg(owner, 'owner')}/{_seg(uid, 'uid')}/"


def dataset_version(owner: str, uid: str, version: int) -> str:
    return dataset_root(owner, uid) + _version(version)


def images_root(owner: str, uid: str) -> str:
    return f"generated-images/{_seg(owner, 'owner')}/{_seg(uid, 'uid')}/"


def images_version(owner: str, uid: str, version: int) -> str:
    return images_root(owner, uid) + _version(version)


def image(owner: str, uid: str, version: int, n: int) -> str:
    return f"{images_version(owner, uid, version)}image_{n}.png"


def videos_root(owner: str, uid: str) -> str:
    return f"generated-videos/{_seg(owner, 'owner')}/{_seg(uid, 'uid')}/"


def videos_version(owner: str, uid: str, version: int) -> str:
    return videos_root(owner, uid) + _version(version)


def video(owner: str, uid: str, version: int, name: str) -> str:
    """One of a video version's files: video.mp4, poster.jpg, strip.jpg."""
    return f"{videos_version(owner, uid, version)}{_seg(name, 'file name')}"


def transcripts_root(owner: str, uid: str) -> str:
    return f"transcripts/{_seg(owner, 'owner')}/{_seg(uid, 'uid')}/"


def transcripts_version(owner: str, uid: str, version: int) -> str:
    return transcripts_root(owner, uid) + _version(version)


def evaluations_root(owner: str, uid: str) -> str:
    """A LoraEvaluation's own objects (its runs' result documents)."""
    return f"evaluations/{_seg(owner, 'owner')}/{_seg(uid, 'uid')}/"


def evaluations_version(owner: str, uid: str, version: int) -> str:
    return evaluations_root(owner, uid) + _version(version)


def likeness_baseline(provider: str, model: str, prompt_set: str, seed: int, index: int) -> str:
    """A likeness evaluation's picture without a LoRA: made once per base model, prompt and seed,
    shared by every LoRA evaluated on them (the baseline is paid once)."""
    parts = "/".join(_seg(value, what) for value, what in ((provider, "provider"), (model, "model")))
    return f"likeness/baselines/{parts}/{_seg(prompt_set, 'prompt set')}/seed-{seed}-{index:02d}.png"


def likeness_evaluation(owner: str, uid: str, version: int, number: int) -> str:
    """A LoRA version's re-evaluation number `number` (1, 2, ...; `contentgen assets evaluate`):
    its grid, report and record, beside the version and never over its earlier ones."""
    if number < 1:
        raise ValueError(f"an evaluation number is 1 or more, got {number}")
    return f"{lora_version(owner, uid, version)}likeness/e{number}/"


def upload(owner: str, upload_id: str, name: str) -> str:
    """An uploaded file's key: its owner's, under an id of its own (never one key twice)."""
    return f"uploads/{_seg(owner, 'owner')}/{_seg(upload_id, 'upload id')}/{_seg(name, 'file name')}"


TEMP = "temp/"  # a run's working state (provider checkpoints, request folders), not its outputs


def temp_root(uid: str) -> str:
    return f"{TEMP}{_seg(uid, 'uid')}/"


def outbox(name: str) -> str:
    """A waiting catalog record ("" for the folder)."""
    return f"outbox/catalog/{_seg(name, 'outbox entry') if name else ''}"


def checkpoint(uid: str, name: str) -> str:
    return f"{temp_root(uid)}checkpoints/{_seg(name, 'checkpoint')}.json"


def pictures_made(uid: str, version: int) -> str:
    """Where a generator keeps one run's pictures as it makes them (provider cluster), for a
    retried pod to take: state of the run, not its outputs (those go under the version)."""
    return f"{temp_root(uid)}pictures/{_version(version)}"


def frames_made(uid: str, version: int) -> str:
    """Where a video generator keeps one run's frames as it makes them (provider cluster), for a
    retried pod to take: state of the run, not its outputs."""
    return f"{temp_root(uid)}frames/{_version(version)}"


def is_mutable(key: str) -> bool:
    """Keys of state (checkpoints, scratch, the outbox), which may be rewritten; every other key
    is an output, written once."""
    return key.startswith(MUTABLE_PREFIXES)


def _folders(catalog_type: str) -> tuple[str, ...]:
    """The top folders of a kind's outputs, as the kind declares them (api/kinds/: stored_under);
    a kind that declares none, or a type no kind has, keeps them under its catalog type."""
    kind = CATALOG_TYPES.get(catalog_type)
    return (kind.stored_under if kind is not None else ()) or (_seg(catalog_type, "type"),)


def unversioned_before(catalog_type: str) -> bool:
    """Whether the kind once stored its outputs straight under its root, before versions."""
    kind = CATALOG_TYPES.get(catalog_type)
    return kind is not None and kind.unversioned_before


def output_roots(catalog_type: str, owner: str, uid: str) -> list[str]:
    """The prefixes a resource's outputs live under, every version's."""
    return [f"{folder}/{_seg(owner, 'owner')}/{_seg(uid, 'uid')}/" for folder in _folders(catalog_type)]


def resource_roots(catalog_type: str, owner: str, uid: str) -> list[str]:
    """Every prefix a resource's objects live under (what deletionPolicy: Delete removes)."""
    return [*output_roots(catalog_type, owner, uid), temp_root(uid)]


def version_roots(catalog_type: str, owner: str, uid: str, version: int) -> list[str]:
    """The prefixes one version's outputs live under (unversioned legacy objects excepted)."""
    return [root + _version(version) for root in output_roots(catalog_type, owner, uid)]


def versions_in(catalog_type: str, owner: str, uid: str, stored: list[str]) -> set[int]:
    """Version numbers that `stored` keys (of this resource) use: a v{n}/ prefix, or the legacy
    unversioned layout of images and transcripts (version 1)."""
    found: set[int] = set()
    roots = output_roots(catalog_type, owner, uid)
    for key in stored:
        root = next((r for r in roots if key.startswith(r)), None)
        if root is None:
            continue
        match = re.match(r"v(\d+)/", key[len(root) :])
        if match:
            found.add(int(match.group(1)))
        elif unversioned_before(catalog_type):
            found.add(LEGACY_VERSION)
    return found


def result_key(catalog_type: str, owner: str, uid: str, version: int) -> str:
    """Where a run's result document is stored, next to its outputs. Version 0 is the unversioned
    layout of images and transcripts before versions (read, never written)."""
    root = output_roots(catalog_type, owner, uid)[0]
    if version == 0 and unversioned_before(catalog_type):
        return f"{root}result.json"
    return f"{root}{_version(version)}result.json"


# --- whose a key is, by its layout alone (store/access.py: a spec naming another owner's key) -----

UPLOADS, BASELINES = "uploads", "likeness/baselines/"
FACES_FILE = "faces.json"  # a dataset version's subject faces (pipeline/likeness/faces.py)
WEIGHTS_FOLDER, WEIGHTS_SUFFIX = "loras", ".safetensors"  # a LoRA's weights: used, not read
Held = Literal["output", "upload", "baseline", "state"]


def output_folders() -> tuple[str, ...]:
    """Every kind's output folders (api/kinds/ `stored_under`), sorted: the keys that name their
    owner as `{folder}/{owner}/{uid}/`."""
    return tuple(sorted({folder for kind in KINDS.values() for folder in kind.stored_under}))


@dataclass(frozen=True)
class KeyHolder:
    """Whose a key is, read off its layout (the store is never asked, so nothing says whether the
    object exists): an output's `{folder}/{owner}/{uid}/…`, an upload's `uploads/{owner}/…`, the
    shared likeness baselines (no owner), or anything else, the store's own state (temp/,
    outbox/, an unknown place), which no spec may name."""

    held: Held
    owner: str = ""
    uid: str = ""
    folder: str = ""  # what may be said of it: `loras/OWNER/UID/`, `uploads/OWNER/`; never the rest
    weights: bool = False  # a LoRA's model or checkpoint (`use` suffices), not a file to read

    @property
    def named(self) -> str:
        """The key as messages and logs name it: its folder and no more."""
        return f"{self.folder}…" if self.folder else "a key of the store's own"


def holder(key: str) -> KeyHolder:
    """Whose `key` (within the store: its prefix taken off) is."""
    parts = key.split("/")
    plain = all(_SEGMENT.match(p) and ".." not in p for p in parts)
    if plain and len(parts) >= 4 and parts[0] in output_folders():
        folder, owner, uid = parts[0], parts[1], parts[2]
        weights = folder == WEIGHTS_FOLDER and key.endswith(WEIGHTS_SUFFIX)
        return KeyHolder("output", owner, uid, f"{folder}/{owner}/{uid}/", weights)
    if plain and len(parts) == 4 and parts[0] == UPLOADS:
        return KeyHolder("upload", parts[1], folder=f"{UPLOADS}/{parts[1]}/")
    if plain and key.startswith(BASELINES) and len(parts) > 3:
        return KeyHolder("baseline", folder=BASELINES)
    return KeyHolder("state")
