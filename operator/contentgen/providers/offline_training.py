"""The offline provider's simulation of the cluster's trainer (offline.py's train_lora): a
labelled placeholder LoRA, and where training.checkpointEvery is under training.steps a placeholder
LoRA for every checkpointEvery steps and the last, each marked simulated in its metadata and stored
where the cluster's trainer stores its checkpoints, with a simulated training state beside each
(`step-NNNNNN.state.json`: its step, the dataset's hash and the plan, which a continue checks by the
cluster's rule, providers/continuing.py); each handed to the run's watch as it is stored, drawn by
the provider's drawer (a FLUX.1 LoRA's pictures, a video LoRA's clips' frames): it is scored then,
and the simulated training stops early (a plateau, a person's stop), keeps its best checkpoint so
far, and goes on from a version (training.continueFrom), steps numbered on.
CONTENTGEN_OFFLINE_STEP_SECONDS (settings.py) makes each simulated step take that long.

Each LoRA carries the dataset's own pictures (offline_subject.py), which a picture or a clip drawn
with it shows as far as its step had learned them: the likeness scorer measures a face. A video base
model's LoRA has Wan's layer names, and a Wan 2.2 A14B one is two files, one per expert
(offline_video_lora.py), as a trainer of it returns."""

from __future__ import annotations

import hashlib
import json
import struct
import tempfile
import time
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from contentgen.errors import InvalidInput

from . import continuing, offline_subject
from .base import ContinuedState, TrainedCheckpoint, TrainingOutput, TrainingRequest
from .progress import SubProgress
from .settings import ProviderSettings
from .watch import NothingToKeep, Planned, SoFar, Stop

NOTE = "offline provider: not a trained model"
CHECKPOINT_NOTE = "offline provider: a simulated checkpoint, not a trained model"
STILLS = (".jpg", ".jpeg", ".png", ".webp", ".bmp")
CLIPS = (".mp4",)
_CHUNK = 1024 * 1024
Tensors = dict[str, tuple[list[int], list[float]]]


@dataclass(frozen=True)
class SimulatedLora:
    """How a simulated LoRA's files are made: its tensors from a seed, one file per expert (a
    Wan 2.2 pair's two, each saying which)."""

    tensors: Callable[[str], Tensors]
    experts: tuple[str, ...] = ("",)

    def names(self, step: int | None) -> list[str]:
        """Its files' names: the version's (`step` None) or a checkpoint's."""
        stem = "model" if step is None else f"step-{step:06d}"
        return [f"{stem}.safetensors", f"{stem}-low-noise.safetensors"][: len(self.experts)]

    def write(
        self,
        work_dir: Path,
        step: int | None,
        seed: str,
        metadata: dict[str, str],
        subject: Mapping[str, bytes],
    ) -> list[Path]:
        paths = []
        for name, expert in zip(self.names(step), self.experts, strict=True):
            said = {**metadata, "contentgen.expert": expert} if expert else metadata
            write_safetensors(
                work_dir / name, self.tensors(f"{seed}:{expert}" if expert else seed), said, subject
            )
            paths.append(work_dir / name)
        return paths


def train(
    request: TrainingRequest, work_dir: Path, progress: SubProgress, drawer: Any, lora: SimulatedLora
) -> TrainingOutput:
    """The simulated training of `request` (see the module) into `lora`'s files (its base model's
    layout: offline_video_lora.lora_of); `drawer` draws its checkpoints' pictures for the watch."""
    progress(0)
    plan = request.plan
    reading: SubProgress = lambda done: progress(done / 8)  # noqa: E731 - the dataset: 0-10
    digest, counts = _read_dataset(request.dataset_zip, reading, plan.base.video)
    went_on = _continued_state(request)
    first = went_on.step if went_on is not None else 0
    metadata = _metadata(request, digest, counts, first)
    subject = offline_subject.tensors(offline_subject.pictures_of(request.dataset_zip))
    finals = lora.write(work_dir, None, digest, metadata, subject)
    steps_progress: SubProgress = lambda done: progress(10 + 80 * done)  # noqa: E731 - steps: 10-90
    writing = _Writing(request, work_dir, digest, metadata, subject, lora)
    simulated = _simulated_checkpoints(writing, first, drawer, steps_progress)
    if simulated.stop is not None and not simulated.checkpoints:
        raise NothingToKeep(
            f"the simulated training was stopped after step {simulated.last_step}, before it stored any "
            "checkpoint: nothing to keep",
            gpu_seconds=None,
            request_id=f"offline-{digest[:16]}",
        )
    if simulated.checkpoints and request.checkpoints is not None:  # its newest's LoRA, as the cluster's
        for final, name in zip(finals, lora.names(simulated.checkpoints[-1].step), strict=True):
            request.checkpoints.get(name, final)  # stored already, by this attempt or an earlier one
    progress(90)
    config = _config(request, work_dir, digest, counts, went_on)
    progress(100)
    return TrainingOutput(
        weights=finals[0],
        config=config,
        request_id=f"offline-{digest[:16]}",
        placeholder=True,
        details={"note": NOTE, "dataset_sha256": digest, **{f"dataset_{k}": v for k, v in counts.items()}},
        checkpoints=simulated.checkpoints,
        stopped=simulated.stop if simulated.last_step < first + plan.steps else None,
        first_step=first,
        last_step=simulated.last_step,
        state_uri=simulated.state_uri,
        continued=went_on,
        low_noise_weights=finals[1] if len(finals) > 1 else None,
    )


def _metadata(request: TrainingRequest, digest: str, counts: dict[str, int], first: int) -> dict[str, str]:
    """What every simulated LoRA file says of itself."""
    plan = request.plan
    return {
        "contentgen.placeholder": "true",
        "contentgen.note": NOTE,
        "contentgen.provider": "offline",
        "contentgen.base_model": plan.base.name,
        "contentgen.trigger_word": request.trigger_word,
        "contentgen.steps": str(first + plan.steps),
        "contentgen.training_model": plan.app,
        "contentgen.dataset_sha256": digest,
        **{f"contentgen.dataset_{k}": str(v) for k, v in counts.items()},
    }


def _config(
    request: TrainingRequest,
    work_dir: Path,
    digest: str,
    counts: dict[str, int],
    went_on: ContinuedState | None,
) -> Path:
    """config.json: what was asked, as the cluster's trainer records it (a continue checks it)."""
    plan = request.plan
    said = {
        "placeholder": True,
        "note": NOTE,
        "provider": "offline",
        "base_model": plan.base.name,
        "trigger_word": request.trigger_word,
        "steps": plan.steps,
        **({"continue_from": continued_from(went_on)} if went_on else {}),
        "learning_rate": plan.learning_rate,
        "training_model": plan.app,
        "rank": plan.rank,
        "lora_targets": plan.lora_targets,
        "optimizer": plan.optimizer,
        "experts": ["high-noise", "low-noise"] if plan.base.experts is not None else [],
        "dataset_sha256": digest,
        **{f"dataset_{k}": v for k, v in counts.items()},
    }
    config = work_dir / "config.json"
    config.write_text(json.dumps(said, indent=2) + "\n")
    return config


def _simulated_checkpoints(
    writing: _Writing, first: int, drawer: Any, progress: SubProgress = lambda _: None
) -> _Simulated:
    """A placeholder LoRA per checkpoint step after `first` (a continued state's), stored once each
    in request.checkpoints with a simulated state beside it; the newest is the training's weights.
    Each is marked simulated: no training made it. Each carries the subject's pictures, which it
    draws as far as its step had learned them (offline_subject). With a watch, each is handed to it
    as it is stored (pictures by `drawer`), and it may stop the training after any step, as the
    cluster's trainer does. An attempt of the same version that stopped before it ended (Ctrl-C,
    killed) left its checkpoints stored: they are handed to the watch again, oldest first (their
    scores read back, never drawn twice), and the steps go on after the newest one."""
    request, lora = writing.request, writing.lora
    last = first + request.plan.steps
    steps = checkpoint_steps(first, last, request.plan.checkpoint_every)
    files, watch = request.checkpoints, request.watch
    if files is None:
        return _Simulated((), last)
    if watch is not None:
        watch.begin(Planned(first, last, tuple(steps)))
    names = files.names()
    stored = [TrainedCheckpoint(s, *_uris(files, lora, s)) for s in _kept(names, steps, lora)]
    step = stored[-1].step if stored else first
    state_uri = files.uri(state_name(step)) if stored else ""
    stop = None
    for kept in stored:  # an earlier attempt's, as the cluster's trainer replays them
        stop = stop or (watch.checkpoint(kept.step, kept.uri, drawer) if watch is not None else None)
    if watch is not None and stop is None:
        stop = watch.step_ended(SoFar(step, None, None, _next(steps, step, last)))
    pace, stepping, ran = ProviderSettings().offline_step_seconds, 0.0, 0
    while stop is None and step < last:
        began = time.monotonic()
        step, ran = step + 1, ran + 1
        if pace:
            time.sleep(pace)
        progress((step - first) / (last - first))  # the share of its steps trained
        stepping += time.monotonic() - began
        if step in steps:
            checkpoint, state_uri = writing.checkpoint(step)
            stored.append(checkpoint)
            if watch is not None:
                stop = watch.checkpoint(step, stored[-1].uri, drawer)
        if watch is not None and stop is None:
            rate = stepping / ran  # its steps' own time, the checkpoints' scoring left out
            stop = watch.step_ended(SoFar(step, None, rate, _next(steps, step, last)))
    return _Simulated(tuple(stored), step, stop, state_uri)


@dataclass(frozen=True)
class _Writing:
    """What each simulated checkpoint is written from: the request (its checkpoint files, its
    plan), the scratch folder, the dataset's digest, the LoRA's metadata and subject, its layout."""

    request: TrainingRequest
    work_dir: Path
    digest: str
    metadata: dict[str, str]
    subject: Mapping[str, bytes]
    lora: SimulatedLora

    def checkpoint(self, step: int) -> tuple[TrainedCheckpoint, str]:
        """Checkpoint `step`'s LoRA files and simulated state, stored once each; the checkpoint and
        its state's URI."""
        files = self.request.checkpoints
        assert files is not None
        marked = {**self.metadata, "contentgen.step": str(step), "contentgen.simulated": "true"}
        marked["contentgen.note"] = CHECKPOINT_NOTE
        seed = hashlib.sha256(f"{self.digest}:{step}".encode()).hexdigest()
        paths = self.lora.write(self.work_dir, step, seed, marked, self.subject)
        state = self.work_dir / state_name(step)
        terms = continuing.terms_of(self.request.plan)
        said = {"simulated": True, "note": CHECKPOINT_NOTE, "step": step, "dataset_sha256": self.digest}
        state.write_text(json.dumps({**said, "plan": terms}))
        state_uri = files.put(state.name, state)
        uris = [files.put(path.name, path) for path in paths]
        return TrainedCheckpoint(step, *_pair(uris)), state_uri


def _uris(files: Any, lora: SimulatedLora, step: int) -> tuple[str, str]:
    """A stored checkpoint's LoRA and, for a pair, its low-noise expert's."""
    return _pair([files.uri(name) for name in lora.names(step)])


def _pair(uris: list[str]) -> tuple[str, str]:
    """A LoRA's URI and, for a pair, its low-noise expert's (else "")."""
    return uris[0], uris[1] if len(uris) > 1 else ""


def _kept(names: list[str], steps: list[int], lora: SimulatedLora) -> list[int]:
    """The checkpoint steps stored whole (its LoRA files and its state) by an earlier attempt."""
    found = set(names)
    return [s for s in steps if {*lora.names(s), state_name(s)} <= found]


def _next(steps: list[int], step: int, last: int) -> int:
    """The next checkpoint's step after `step` (the last step at most)."""
    return next((s for s in steps if s > step), last)


@dataclass(frozen=True)
class _Simulated:
    checkpoints: tuple[TrainedCheckpoint, ...]
    last_step: int  # the last step "trained"
    stop: Stop | None = None
    state_uri: str = ""  # the newest simulated state


def state_name(step: int) -> str:
    """A simulated training state's name beside its checkpoint (the cluster's are step-NNNNNN.pt)."""
    return f"step-{step:06d}.state.json"


def checkpoint_steps(first: int, last: int, every: int) -> list[int]:
    """The steps a training from `first` to `last` stores checkpoints at: every `every` steps and the
    last, as the cluster's trainer does; only the last where `every` is 0 or not under its steps,
    so that every version keeps a state to go on from."""
    step = every if 0 < every < last - first else last - first
    return sorted({*range(first + step, last + 1, step), last}) if last > first else []


def _continued_state(request: TrainingRequest) -> ContinuedState | None:
    """The simulated state a continued training goes on from: the step asked, or the newest;
    refused in one line where the version kept none, or where this spec changes what the state is
    (providers/continuing.py: the cluster's rule, read from the plan the state records)."""
    continued = request.continue_from
    if continued is None:
        return None
    kept = sorted(
        int(n[5:11]) for n in continued.files.names() if n.startswith("step-") and n.endswith(".state.json")
    )
    field = f"training.continueFrom: version {continued.version}"
    if not kept:
        raise InvalidInput(f"{field} kept no training state to go on from")
    step = continued.step if continued.step is not None else kept[-1]
    if step not in kept:
        raise InvalidInput(f"{field} has no stored state at step {step} (kept: {', '.join(map(str, kept))})")
    with tempfile.TemporaryDirectory() as folder:
        state = json.loads(continued.files.get(state_name(step), Path(folder) / "state.json").read_text())
    terms = continuing.compare(state.get("plan") or {}, continuing.terms_of(request.plan))
    continuing.check(f"{field}'s step {step}", terms)
    return ContinuedState(
        continued.version, step, continued.files.uri(state_name(step)), tuple(terms.applied)
    )


def continued_from(went_on: ContinuedState) -> dict[str, Any]:
    """config.json's continue_from, as the cluster's trainer writes it."""
    changed = {"changed": list(went_on.changed)} if went_on.changed else {}
    return {"version": went_on.version, "step": went_on.step, **changed}


def write_safetensors(
    path: Path,
    tensors: dict[str, tuple[list[int], list[float]]],
    metadata: dict[str, str],
    raw: Mapping[str, bytes] | None = None,
) -> None:
    """Writes float32 tensors {name: (shape, values)}, and `raw` bytes as one-dimensional uint8
    tensors, in the safetensors format: an 8-byte little-endian header length, the JSON header
    (offsets into the data, `__metadata__` strings), space-padded to a multiple of 8, then the raw
    little-endian data."""
    header: dict[str, Any] = {"__metadata__": metadata}
    data = bytearray()
    for name in sorted(tensors):
        shape, values = tensors[name]
        count = 1
        for dim in shape:
            count *= dim
        if count != len(values):
            raise ValueError(f"tensor {name}: shape {shape} needs {count} values, got {len(values)}")
        header[name] = {"dtype": "F32", "shape": shape, "data_offsets": [len(data), len(data) + 4 * count]}
        data += struct.pack(f"<{count}f", *values)
    for name, value in sorted((raw or {}).items()):
        header[name] = {
            "dtype": "U8",
            "shape": [len(value)],
            "data_offsets": [len(data), len(data) + len(value)],
        }
        data += value
    encoded = json.dumps(header, separators=(",", ":"), sort_keys=True).encode()
    encoded += b" " * (-len(encoded) % 8)
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + bytes(data))


def placeholder_tensors(seed_hex: str) -> dict[str, tuple[list[int], list[float]]]:
    """A rank-4 LoRA pair for one tiny layer, deterministic from the dataset hash."""
    stream = hashlib.sha256(bytes.fromhex(seed_hex)).digest() * 4
    values = [(b - 127.5) / 1275.0 for b in stream]
    return {
        "placeholder.lora_A.weight": ([4, 8], values[:32]),
        "placeholder.lora_B.weight": ([8, 4], values[32:64]),
    }


def _read_dataset(path: Path, progress: SubProgress, video: bool) -> tuple[str, dict[str, int]]:
    """The zip's sha256 and what it holds: its images, or a video LoRA's stills and clips
    (progress 0-80 while reading)."""
    if not path.is_file():
        raise InvalidInput(f"the dataset archive {path.name} does not exist")
    total = max(path.stat().st_size, 1)
    digest = hashlib.sha256()
    done = 0
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
            done += len(chunk)
            progress(60.0 * done / total)
    try:
        with zipfile.ZipFile(path) as archive:
            names = [info.filename for info in archive.infolist() if not info.is_dir()]
            if archive.testzip() is not None:
                raise InvalidInput(f"the dataset archive {path.name} is corrupt")
    except zipfile.BadZipFile as exc:
        raise InvalidInput(f"the dataset archive {path.name} is not a zip file: {exc}") from None
    stills = sum(1 for name in names if name.lower().endswith(STILLS))
    clips = sum(1 for name in names if name.lower().endswith(CLIPS)) if video else 0
    if not stills and not clips:
        held = "no stills and no clips" if video else "no images"
        raise InvalidInput(f"the dataset archive {path.name} holds {held}")
    progress(80)
    return digest.hexdigest(), {"stills": stills, "clips": clips} if video else {"images": stills}
