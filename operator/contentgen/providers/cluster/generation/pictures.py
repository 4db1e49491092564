"""The pictures of one image request, kept as they are made in a write-once folder (the
request's `outputs`, a `CheckpointFiles`), so that a retried pod takes the pictures an earlier
attempt made instead of making them again:

- `request.json` first, once: a digest of the request's inputs and the seed it runs with (the
  request's, or one drawn here once, so that a retry goes on with the same seed);
- then, per picture, `image-K.png` and after it `image-K.json`, its record: its seed, the id
  that counts its GPU time once (`pricing.settled`), the GPU-seconds it took, its SHA-256 and the
  memory plan it was drawn with (a retry on another card may draw the rest with another).

A picture whose record is there is taken. A picture stored without its record (the pod died
between the two writes) is taken too, with no GPU time (that time was lost with the pod). A
folder made for other inputs is refused, never mixed in."""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from contentgen.errors import PermanentError
from contentgen.files import sha256_file
from contentgen.providers.base import CheckpointFiles, ImageOutput

log = logging.getLogger(__name__)

REQUEST = "request.json"


def picture_name(number: int) -> str:
    return f"image-{number}.png"


def record_name(number: int) -> str:
    return f"image-{number}.json"


def inputs_digest(inputs: Mapping[str, Any]) -> str:
    """What the folder's pictures were made from (pure)."""
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Made:
    """One picture in the folder, and where it is in the work directory."""

    number: int
    seed: int
    request_id: str
    gpu_seconds: float
    sha256: str
    path: Path
    memory_plan: str = ""  # memory.MemoryPlan.describe() of the plan that drew it ("" unknown)

    def output(self, width: int, height: int) -> ImageOutput:
        """The picture as a generator answers it."""
        return ImageOutput(
            path=self.path,
            width=width,
            height=height,
            content_type="image/png",
            seed=self.seed,
            request_id=self.request_id,
            gpu_seconds=self.gpu_seconds,
            memory_plan=self.memory_plan,
        )


class RequestFolder:
    """A request's write-once folder: `request.json` (the inputs' digest and the seed) written
    first, so that a retried pod goes on with the same seed and refuses what was made for other
    inputs; what the request makes (`what`: pictures, a video's frames) is kept beside it."""

    what = "outputs"

    def __init__(self, files: CheckpointFiles, work_dir: Path) -> None:
        self.files, self.work_dir = files, work_dir
        self.inputs = ""  # the inputs' digest, once begun

    def where(self) -> str:
        return self.files.uri(REQUEST).rsplit("/", 1)[0] + "/"

    def begin(self, inputs: Mapping[str, Any], seed: int | None, draw: int) -> int:
        """The seed this request runs with: the folder's, when an earlier attempt began it for
        the same inputs; else `seed`, or `draw` when the request gave none (written once)."""
        digest = self.inputs = inputs_digest(inputs)
        if REQUEST in self.files.names():
            begun = self._json(REQUEST)
            if begun.get("inputs") != digest or not isinstance(begun.get("seed"), int):
                raise PermanentError(
                    f"the {self.what} in {self.where()} were made for another request: delete that "
                    "folder to start over",
                    reason="CheckpointUnreadable",
                )
            return int(begun["seed"])
        chosen = draw if seed is None else seed
        path = self.work_dir / REQUEST
        path.write_text(json.dumps({"inputs": digest, "seed": chosen}, sort_keys=True))
        self.files.put(REQUEST, path)
        return chosen

    def _json(self, name: str) -> dict[str, Any]:
        path = self.files.get(name, self.work_dir / name)
        try:
            data = json.loads(path.read_text())
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise PermanentError(
                f"{self.files.uri(name)} is not a JSON object: delete {self.where()} to start over",
                reason="CheckpointUnreadable",
            )
        return data


class Folder(RequestFolder):
    what = "pictures"

    def taken(self, count: int, seed_of: Mapping[int, int]) -> dict[int, Made]:
        """The pictures 1..count already in the folder, fetched into the work directory."""
        names = set(self.files.names())
        found: dict[int, Made] = {}
        for number in range(1, count + 1):
            if picture_name(number) not in names:
                continue
            path = self.files.get(picture_name(number), self.work_dir / picture_name(number))
            digest = sha256_file(path)
            if record_name(number) in names:
                record = self._json(record_name(number))
                request_id, gpu_seconds = record.get("request_id"), record.get("gpu_seconds")
                described = record.get("sha256") == digest and record.get("seed") == seed_of[number]
                if not (described and isinstance(request_id, str) and isinstance(gpu_seconds, int | float)):
                    raise PermanentError(
                        f"picture {number} in {self.where()} is not the one its record describes: "
                        "delete that folder to start over",
                        reason="CheckpointUnreadable",
                    )
                plan = record.get("memory_plan")
                found[number] = Made(
                    number,
                    seed_of[number],
                    request_id,
                    float(gpu_seconds),
                    digest,
                    path,
                    plan if isinstance(plan, str) else "",
                )
            else:  # stored, and the pod died before its record: its GPU time went with the pod
                log.warning("picture %d was stored without its record: taken, its GPU time unknown", number)
                found[number] = self._record(
                    Made(number, seed_of[number], new_request_id(), 0.0, digest, path)
                )
        return found

    def keep(self, number: int, seed: int, path: Path, gpu_seconds: float, memory_plan: str = "") -> Made:
        """A picture just made: stored, then its record."""
        self.files.put(picture_name(number), path)
        made = Made(number, seed, new_request_id(), gpu_seconds, sha256_file(path), path, memory_plan)
        return self._record(made)

    def _record(self, made: Made) -> Made:
        record = {k: v for k, v in asdict(made).items() if k != "path"}
        path = self.work_dir / record_name(made.number)
        path.write_text(json.dumps(record, sort_keys=True))
        self.files.put(record_name(made.number), path)
        return made


def new_request_id() -> str:
    """The id a picture's GPU time is counted under (once: `pricing.settled`)."""
    return f"cluster-{secrets.token_hex(8)}"
