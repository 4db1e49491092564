"""provider cluster's videos: what a request keeps in its write-once `frames_made` store so that a
retried pod does not draw again what an earlier one drew (the Resume paragraph of video.py's
description): `request.json` (the inputs' digest and the seed), the denoising loop's latest state
while it runs (`STATE`: the latents, a clip with sound's audio latents too, the CPU generator's
state, the scheduler's), then the decoded frames (and sound) and their record. The pipelines' side
of a resume is here too: skipping the steps made (`Skip`, `skipping`, `restore_scheduler`), or for
a clip with sound running the rest of the schedule (`Sound`)."""

from __future__ import annotations

import json
import logging
import re
import secrets
import time
import zipfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from contentgen.errors import PermanentError
from contentgen.files import sha256_file
from contentgen.providers.base import CheckpointFiles

from .pictures import REQUEST as REQUEST  # the folder's first file, named here beside the others
from .pictures import RequestFolder, new_request_id

log = logging.getLogger(__name__)

FRAMES, RECORD = "frames.npz", "frames.json"
# The denoising loop's state after a step, under names of the attempt's own: latents-0012-<8 hex>.pt
# (torch.save of the latents, the CPU generator's state and the scheduler's), then its record,
# latents-0012-<8 hex>.json
STATE = re.compile(r"latents-(\d{4,})-([0-9a-f]{8})\.(pt|json)")
# A real clip's step takes seconds (Wan 1.3B at 480p) to a minute (14B at 720p): a state kept
# every minute of denoising costs a write of tens of MB a minute, and a killed pod loses at most a
# minute of its GPU time
CHECKPOINT_SECONDS = 60.0


# --- the denoising loop's state -------------------------------------------------------------------

# What a scheduler carries from one step to the next beyond what the loop's `set_timesteps` makes
# again from its config (diffusers 0.42.1; test_cluster_video_resume pins each list as the whole of
# it): put back before the first step a resumed loop draws. The loops call `set_begin_index(0)`
# (Wan), so even a single-step scheduler's step index is kept rather than found from the timestep.
SCHEDULER_STATE: dict[str, tuple[str, ...]] = {
    "FlowMatchEulerDiscreteScheduler": ("_step_index",),  # LTX-Video's
    "UniPCMultistepScheduler": (  # Wan 2.1's (flow_shift, flow sigmas, order 2)
        "_step_index",
        "model_outputs",
        "timestep_list",
        "lower_order_nums",
        "last_sample",
        "this_order",
    ),
}
SCHEDULE = ("timesteps", "sigmas")  # kept to check that a resumed loop runs the same schedule


def checkpointable(scheduler: Any, *, sound: bool = False) -> bool:
    """Whether the loop's state can be kept with `scheduler`: one whose state is known, without a
    second solver (UniPC's solver_p) or noise of its own drawn in its steps; for a clip with sound,
    one whose state is its step alone (a resume runs the rest of its schedule afresh: `Sound`)."""
    config = getattr(scheduler, "config", {})
    carried = SCHEDULER_STATE.get(type(scheduler).__name__)
    return (
        carried is not None
        and (not sound or carried == ("_step_index",))
        and getattr(scheduler, "solver_p", None) is None
        and not config.get("stochastic_sampling", False)
    )


def draws_sound(pipe: Any) -> bool:
    """Whether `pipe` denoises the clip's sound beside its frames (LTX-2's pipelines)."""
    return getattr(pipe, "audio_vae", None) is not None


def scheduler_state(scheduler: Any) -> dict[str, Any]:
    names = (*SCHEDULER_STATE[type(scheduler).__name__], *SCHEDULE)
    return {name: _on_cpu(getattr(scheduler, name)) for name in names}


def restore_scheduler(scheduler: Any, state: Mapping[str, Any]) -> None:
    """`scheduler` as it was after the kept steps: called once the loop's `set_timesteps` has
    started its history again, before the next step."""
    import torch

    for name in SCHEDULE:
        if not torch.equal(getattr(scheduler, name).cpu(), state[name]):
            raise RuntimeError(f"the kept denoising state's scheduler {name} are not this loop's")
    device = scheduler.timesteps.device
    for name in SCHEDULER_STATE[type(scheduler).__name__]:
        setattr(scheduler, name, _on(state[name], device))


def _on_cpu(value: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.detach().cpu().clone()  # a view would save its whole storage
    if isinstance(value, list | tuple):
        return [_on_cpu(v) for v in value]
    return value


def _on(value: Any, device: Any) -> Any:
    import torch

    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, list):
        return [_on(v, device) for v in value]
    return value


class Skip:
    """A resumed pipeline's `interrupt`, which its loop reads first in each step (`if
    self.interrupt: continue`): true for the steps already made, so that neither the transformer
    nor the scheduler runs for them; at the first step to draw, the scheduler is put back as the
    kept steps left it."""

    def __init__(self, done: int, restore: Callable[[], None]) -> None:
        self.done, self.restore, self.reads = done, restore, 0

    def __call__(self) -> bool:
        self.reads += 1
        if self.reads == self.done + 1:
            self.restore()
        return self.reads <= self.done


@contextmanager
def skipping(pipe: Any, skip: Skip) -> Iterator[None]:
    """`pipe` with `skip` as its `interrupt` while the block runs (a subclass for the call: the
    property is the class's), then the pipeline as it was, kept for the next request."""
    cls = type(pipe)
    if not isinstance(getattr(cls, "interrupt", None), property):
        raise RuntimeError(f"diffusers' {cls.__name__} has no interrupt property to skip the kept steps with")
    pipe.__class__ = type(cls.__name__, (cls,), {"interrupt": property(lambda _self: skip())})
    try:
        yield
    finally:
        pipe.__class__ = cls


@dataclass(frozen=True)
class Resumed:
    """The loop's state an earlier attempt kept after `done` steps."""

    done: int
    latents: Any  # on the CPU, as the loop had them
    generator: Any  # the CPU generator's state
    scheduler: dict[str, Any]
    gpu_seconds: float  # held until then, by every attempt before
    audio_latents: Any = None  # a clip with sound's (Sound), on the CPU


class Sound:
    """A pipeline that denoises the clip's sound beside its frames (LTX2Pipeline and its
    image-to-video twin), followed through one call. Its loop keeps the audio latents in a local
    the step's callback is not offered, takes given audio latents only to normalise them again,
    and splits what stays the same for every step at its first step alone (`if i == 0`), so the
    kept steps cannot be skipped (`Skip`). So, for the call, the pipeline offers `audio_latents`
    to the callback too, and a resume runs the loop over the rest of the schedule: its sigmas from
    the kept step on (the pipeline's own `linspace(1, 1/N, N)`, shifted as before; the first step
    drawn checks them against the kept schedule), from latents prepared as an uninterrupted run
    prepares its noise (the seed's generator draws the same) and then replaced by the kept ones,
    the generator put where the kept steps left it."""

    def __init__(self, resumed: Resumed | None, generator: Any) -> None:
        self.resumed, self.generator = resumed, generator

    @property
    def done(self) -> int:
        return self.resumed.done if self.resumed is not None else 0

    def sigmas(self, steps: int) -> list[float]:
        """The schedule's sigmas before its shift, from the kept step on."""
        return [float(v) for v in np.linspace(1.0, 1.0 / steps, steps)[self.done :]]

    @contextmanager
    def following(self, pipe: Any) -> Iterator[None]:
        cls, resumed, noted = type(pipe), self.resumed, self
        body: dict[str, object] = {"_callback_tensor_inputs": [*cls._callback_tensor_inputs, "audio_latents"]}
        if resumed is not None:

            def prepare_latents(self: Any, *args: Any, **kwargs: Any) -> Any:
                made = cls.prepare_latents(self, *args, **kwargs)
                if isinstance(made, tuple):  # image to video: (latents, the conditioning mask)
                    return (_like(resumed.latents, made[0]), *made[1:])
                return _like(resumed.latents, made)

            def prepare_audio_latents(self: Any, *args: Any, **kwargs: Any) -> Any:
                made = cls.prepare_audio_latents(self, *args, **kwargs)
                noted.generator.set_state(resumed.generator)  # both noises drawn as before
                return _like(resumed.audio_latents, made)

            body.update(prepare_latents=prepare_latents, prepare_audio_latents=prepare_audio_latents)
        pipe.__class__ = type(cls.__name__, (cls,), body)
        try:
            yield
        finally:
            pipe.__class__ = cls

    def whole(self, state: Mapping[str, Any]) -> Mapping[str, Any]:
        """A resumed loop's scheduler state as the whole schedule's (so that it can be resumed
        from again): the kept steps' part of the schedule before the rest's, its step counted from
        the first."""
        import torch

        if self.resumed is None:
            return state
        kept = self.resumed.scheduler
        whole = {name: torch.cat([kept[name][: self.done], state[name]]) for name in SCHEDULE}
        return {**whole, "_step_index": state["_step_index"] + self.done}

    def check(self, scheduler: Any) -> None:
        """At the first step a resume draws: the loop's schedule is the kept one's rest."""
        import torch

        if self.resumed is None:
            return
        for name in SCHEDULE:
            kept = self.resumed.scheduler[name][self.done :]
            if not torch.equal(getattr(scheduler, name).cpu(), kept):
                raise RuntimeError(f"the resumed loop's scheduler {name} are not the rest of the kept ones")


def _like(kept: Any, made: Any) -> Any:
    return kept.to(made.device, made.dtype)


class Checkpoints:
    """When the loop's state is kept: every `every_steps` steps (0: never by count), and after a
    step that ends `every_seconds` or more after the last one kept (or the start); what it is kept
    with (`where`: the inputs, seed, schedule, library and device it is good for); and the state an
    earlier attempt kept, to resume from."""

    def __init__(
        self,
        store: FramesMade,
        where: Mapping[str, Any],
        *,
        every_steps: int,
        every_seconds: float,
        held: Callable[[], float],
        resumed: Resumed | None,
    ) -> None:
        self.store, self.where, self.held, self.resumed = store, dict(where), held, resumed
        self.every_steps, self.every_seconds = every_steps, every_seconds
        self.last = time.monotonic()

    def due(self, done: int) -> bool:
        if self.every_steps and done % self.every_steps == 0:
            return True
        return time.monotonic() - self.last >= self.every_seconds

    def keep(
        self, done: int, latents: Any, scheduler: Mapping[str, Any], generator: Any, audio: Any = None
    ) -> None:
        """The loop's state after `done` steps: its latents (and a clip with sound's audio
        latents), the generator's state and the scheduler's (`scheduler_state`)."""
        state = {
            "latents": _on_cpu(latents),
            "generator": generator.get_state(),
            "scheduler": dict(scheduler),
            **({"audio_latents": _on_cpu(audio)} if audio is not None else {}),
        }
        self.store.keep_state(done, state, {**self.where, "gpu_seconds": self.held()})
        self.last = time.monotonic()


class Unusable(Exception):
    """A kept loop state that cannot be resumed from (why)."""


# --- the frames kept ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Drawn:
    """A clip as decoded: its frames (F × H × W × 3 uint8 RGB) and, from a model that draws its
    sound too (LTX-2), the waveform (channels × samples, float32 in [-1, 1]) at `rate` a second."""

    frames: np.ndarray
    sound: np.ndarray | None = None
    rate: int = 0


@dataclass(frozen=True)
class Kept:
    seed: int
    request_id: str
    gpu_seconds: float
    sha256: str
    memory_plan: str = ""


class FramesMade(RequestFolder):
    """The request's write-once store: request.json, the denoising loop's latest state as it goes
    (`STATE`), then frames.npz and its record frames.json."""

    what = "frames"

    def __init__(self, files: CheckpointFiles, work_dir: Path) -> None:
        super().__init__(files, work_dir)
        self.attempt = secrets.token_hex(4)  # in the names of the states this attempt keeps

    def taken(self, seed: int) -> tuple[Drawn, Kept] | None:
        """The frames an earlier attempt made, with their record, or None."""
        names = set(self.files.names())
        if FRAMES not in names:
            return None
        path = self.files.get(FRAMES, self.work_dir / FRAMES)
        digest = sha256_file(path)
        try:
            with np.load(path) as stored:
                sound = np.asarray(stored["sound"]) if "sound" in stored else None
                rate = int(stored["rate"]) if sound is not None else 0
                drawn = Drawn(np.asarray(stored["frames"]), sound, rate)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            raise PermanentError(
                f"{self.files.uri(FRAMES)} is not the frames this generator keeps: delete {self.where()} "
                "to start over",
                reason="CheckpointUnreadable",
            ) from None
        if RECORD not in names:  # stored, and the pod died before its record: its GPU time went with it
            log.warning("the frames were stored without their record: taken, their GPU time unknown")
            return drawn, self._record(Kept(seed, new_request_id(), 0.0, digest))
        record = self._json(RECORD)
        request_id, gpu_seconds = record.get("request_id"), record.get("gpu_seconds")
        if not (
            record.get("sha256") == digest
            and record.get("seed") == seed
            and isinstance(request_id, str)
            and isinstance(gpu_seconds, int | float)
        ):
            raise PermanentError(
                f"the frames in {self.where()} are not the ones their record describes: delete that folder "
                "to start over",
                reason="CheckpointUnreadable",
            )
        plan = record.get("memory_plan")
        return drawn, Kept(
            seed, request_id, float(gpu_seconds), digest, plan if isinstance(plan, str) else ""
        )

    def keep(self, drawn: Drawn, seed: int, gpu_seconds: float, memory_plan: str) -> Kept:
        path = self.work_dir / FRAMES
        with path.open("wb") as handle:
            if drawn.sound is None:
                np.savez_compressed(handle, frames=drawn.frames)
            else:
                np.savez_compressed(handle, frames=drawn.frames, sound=drawn.sound, rate=np.int64(drawn.rate))
        self.files.put(FRAMES, path)
        kept = self._record(Kept(seed, new_request_id(), gpu_seconds, sha256_file(path), memory_plan))
        self.forget_states()  # the frames are taken before any state
        return kept

    def states(self) -> list[tuple[int, str]]:
        """Each loop state kept with its record: its step and name (without .pt), latest first."""
        names = set(self.files.names())
        found = {(int(m[1]), m[1] + "-" + m[2]) for m in map(STATE.fullmatch, names) if m and m[3] == "json"}
        return sorted(((n, f"latents-{s}") for n, s in found if f"latents-{s}.pt" in names), reverse=True)

    def resumable(self, where: Mapping[str, Any]) -> Resumed | None:
        """The latest state an earlier attempt kept for `where` (these inputs, seed, schedule,
        library and device), or None. One that cannot be used is passed over with a warning, never
        refused: any sound state, or none, makes the same frames; only GPU time is lost."""
        for done, name in self.states():
            try:
                return self._state(done, name, where)
            except Unusable as why:
                log.warning("the denoising state after step %d is not resumed from: %s", done, why)
        return None

    def _state(self, done: int, name: str, where: Mapping[str, Any]) -> Resumed:
        import torch

        record_uri, state_uri = self.files.uri(f"{name}.json"), self.files.uri(f"{name}.pt")
        try:
            record = json.loads(self.files.get(f"{name}.json", self.work_dir / f"{name}.json").read_text())
        except ValueError:
            raise Unusable(f"{record_uri} is not JSON") from None
        if not isinstance(record, dict):
            raise Unusable(f"{record_uri} is not a JSON object")
        other = sorted(k for k, v in where.items() if record.get(k) != v)
        if other:
            raise Unusable(f"it was kept for another {', '.join(other)}")
        gpu_seconds = record.get("gpu_seconds")
        if record.get("step") != done or not isinstance(gpu_seconds, int | float):
            raise Unusable(f"{record_uri} is not the record of step {done}")
        path = self.files.get(f"{name}.pt", self.work_dir / f"{name}.pt")
        if record.get("sha256") != sha256_file(path):
            raise Unusable(f"{state_uri} is not the file its record describes")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as exc:  # whatever torch says of a file it cannot read
            raise Unusable(f"{state_uri} cannot be read ({type(exc).__name__})") from None
        finally:
            path.unlink(missing_ok=True)
        if not (
            isinstance(state, dict)
            and isinstance(state.get("latents"), torch.Tensor)
            and isinstance(state.get("generator"), torch.Tensor)
            and isinstance(state.get("scheduler"), dict)
            and set(state["scheduler"]) == {*SCHEDULER_STATE.get(str(where.get("scheduler")), ()), *SCHEDULE}
            and isinstance(state.get("audio_latents"), torch.Tensor) == bool(where.get("sound"))
        ):
            raise Unusable(f"{state_uri} is not a denoising state this generator keeps")
        return Resumed(
            done,
            state["latents"],
            state["generator"],
            state["scheduler"],
            float(gpu_seconds),
            state.get("audio_latents"),
        )

    def keep_state(self, done: int, state: Mapping[str, Any], record: Mapping[str, Any]) -> None:
        """The loop's state after `done` steps, then its record, under names of this attempt's own
        (a killed attempt may have left the same step's state without its record); then every
        other state of that step or before goes."""
        import torch

        name = f"latents-{done:04d}-{self.attempt}"
        path = self.work_dir / f"{name}.pt"
        torch.save(dict(state), path)
        self.files.put(path.name, path)
        described = self.work_dir / f"{name}.json"
        described.write_text(
            json.dumps({**record, "step": done, "sha256": sha256_file(path)}, sort_keys=True)
        )
        self.files.put(described.name, described)
        path.unlink()
        self._forget(until=done, but=name)

    def forget_states(self) -> None:
        self._forget(until=None)

    def _forget(self, until: int | None, but: str = "") -> None:
        """Every kept state (of step `until` or before), except the one named `but`."""
        found = [(m[3] != "json", int(m[1]), m[0]) for m in map(STATE.fullmatch, self.files.names()) if m]
        for _, step, name in sorted(found):  # records first: a record never names a file that is gone
            if (until is None or step <= until) and name.rsplit(".", 1)[0] != but:
                self.files.delete(name)

    def _record(self, kept: Kept) -> Kept:
        path = self.work_dir / RECORD
        path.write_text(json.dumps(kept.__dict__, sort_keys=True))
        self.files.put(RECORD, path)
        return kept
