"""provider cluster's videos resumed by denoising step (providers/cluster/generation/video.py, issue
37): a pod killed mid-denoise leaves the loop's state in the request's write-once store, and its
retry draws only the steps after it, into the frames an uninterrupted run makes. On tiny Wan 2.1
(with the published UniPC scheduler, and diffusers' flow-matching Euler) and LTX-Video from configs,
on the CPU in fp32, where every resumed clip equals the uninterrupted one bit for bit."""

from __future__ import annotations

import inspect
import json
import logging
import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from contentgen.providers.base import MemoryCheckpoint, VideoRequest
from contentgen.providers.cluster.files import FolderFiles
from contentgen.providers.cluster.generation import pipelines, video, video_state
from contentgen.providers.cluster.generation.video import ClusterVideoGenerator
from tests.cluster.tiny_ltx2 import tiny_ltx2
from tests.harness.cluster import request as clip_request

from .cluster_models import WAN21_SCHEDULER, device, refuse_hubs, tiny_ltx, tiny_wan

pytestmark = pytest.mark.cluster_models

STEPS = 5


class Killed(BaseException):
    """The pod's SIGKILL: nothing in the generator catches it."""


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two models' roots: Wan with the scheduler its published repositories ship (UniPC) and
    LTX-Video with its own (flow-matching Euler); Wan with diffusers' test scheduler (Euler)."""
    import torch

    torch.set_num_threads(1)  # 2 shared cores
    published = tmp_path_factory.mktemp("published")
    tiny_wan(published / "Wan2.1-T2V-1.3B-Diffusers", unipc=True)
    tiny_wan(published / "Wan2.1-I2V-14B-480P-Diffusers", image=True, unipc=True)
    tiny_ltx(published / "LTX-Video")
    tiny_ltx2(published / "LTX-2")
    euler = tmp_path_factory.mktemp("euler")
    tiny_wan(euler / "Wan2.1-T2V-1.3B-Diffusers")
    return {"published": published, "euler": euler}


@pytest.fixture(scope="module")
def picture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from PIL import Image

    path = tmp_path_factory.mktemp("picture") / "picture.png"
    Image.new("RGB", (96, 64), (200, 40, 40)).save(path)
    return path


def generator(root: Path, **settings: Any) -> ClusterVideoGenerator:
    settings = {"checkpoint_steps": 2, "checkpoint_seconds": float("inf"), **settings}
    return ClusterVideoGenerator(root, device=device(), gpus=2, inference_steps=STEPS, **settings)


def request(store: Path, model: str = "wan-1.3b-t2v", **changes: Any) -> VideoRequest:
    return clip_request(store.parent, store.name, model=model, app="diffusers", **changes)


def quiet(_percent: float) -> None:
    pass


def run(
    made: ClusterVideoGenerator, req: VideoRequest, work: Path, progress: Callable[[float], None] = quiet
):
    work.mkdir(parents=True, exist_ok=True)
    return made.generate_video(req, work, progress, MemoryCheckpoint())


def killed_after(step: int) -> Callable[[float], None]:
    """Progress that kills the pod once step `step`'s progress is said: after the step's state
    was kept when it was due (the generator keeps it first)."""

    def progress(percent: float) -> None:
        if percent == 15 + 70 * step / STEPS:
            raise Killed

    return progress


def kept(store: Path, what: str = "frames") -> np.ndarray:
    with np.load(store / video_state.FRAMES) as stored:
        return np.asarray(stored[what])


@contextmanager
def transformer_calls() -> Iterator[list[str]]:
    """Every forward of a video transformer while the block runs (a global hook: the kept pipeline
    is the generator's own)."""
    import torch
    from diffusers import LTX2VideoTransformer3DModel, LTXVideoTransformer3DModel, WanTransformer3DModel

    calls: list[str] = []

    def hook(module: torch.nn.Module, _args: object, _out: object) -> None:
        if isinstance(
            module, WanTransformer3DModel | LTXVideoTransformer3DModel | LTX2VideoTransformer3DModel
        ):
            calls.append(type(module).__name__)

    handle = torch.nn.modules.module.register_module_forward_hook(hook)
    try:
        yield calls
    finally:
        handle.remove()


def states(store: Path) -> list[str]:
    """The loop states kept in `store`, as step.kind (0002.pt), without their attempts' names."""
    return sorted(f"{m[1]}.{m[3]}" for p in store.iterdir() if (m := video_state.STATE.fullmatch(p.name)))


def state_file(store: Path, step: int, kind: str) -> Path:
    [path] = store.glob(f"latents-{step:04d}-*.{kind}")
    return path


CASES = {
    # model, root, a picture, the transformer's passes a step (Wan: with and without the prompt;
    # LTX: both in one batch)
    "wan-t2v-unipc": ("wan-1.3b-t2v", "published", False, 2),
    "wan-t2v-euler": ("wan-1.3b-t2v", "euler", False, 2),
    "wan-i2v-unipc": ("wan-14b-i2v", "published", True, 2),
    "ltx-t2v": ("ltx-video", "published", False, 1),
    "ltx-i2v": ("ltx-video", "published", True, 1),
    # LTX-2 draws the clip's sound in the same loop: its audio latents are kept and put back too
    # (a step: the prompt and none in one batch, then LTX-2.0's spatio-temporal guidance and its
    # modality guidance, each a pass of its own)
    "ltx2-t2v": ("ltx-2", "published", False, 3),
    "ltx2-i2v": ("ltx-2", "published", True, 3),
}


def generators(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every torch.Generator made from now on (the one each denoise draws its noise with)."""
    import torch

    made: list[Any] = []

    class Recorded(torch.Generator):
        def __new__(cls, *args: Any, **kwargs: Any) -> Any:
            made.append(super().__new__(cls, *args, **kwargs))
            return made[-1]

    monkeypatch.setattr(torch, "Generator", Recorded)
    return made


@pytest.mark.parametrize("case", CASES)
def test_a_pod_killed_mid_denoise_resumes_from_the_kept_step_into_the_uninterrupted_frames(
    case, roots, picture, tmp_path, monkeypatch
):
    import torch

    refuse_hubs(monkeypatch)
    model, root, animates, passes = CASES[case]
    made = generator(roots[root])
    extra: dict[str, Any] = {"image_path": picture, "aspect_ratio": "auto"} if animates else {}
    noise = generators(monkeypatch)
    with transformer_calls() as calls:
        whole = run(made, request(tmp_path / "whole", model, **extra), tmp_path / "w1")
    assert len(calls) == STEPS * passes and len(noise) == 1
    # killed once step 3 is drawn: the state kept is step 2's (every 2 steps), step 3 is lost
    with pytest.raises(Killed):
        run(made, request(tmp_path / "killed", model, **extra), tmp_path / "w2", killed_after(3))
    assert states(tmp_path / "killed") == ["0002.json", "0002.pt"]
    assert not (tmp_path / "killed" / video_state.FRAMES).exists()
    record = json.loads(state_file(tmp_path / "killed", 2, "json").read_text())
    begun = json.loads((tmp_path / "killed" / video_state.REQUEST).read_text())
    scheduler = (
        "UniPCMultistepScheduler" if root == "published" and model.startswith("wan") else "FlowMatchEuler"
    )
    assert record["step"] == 2 and record["steps"] == STEPS and record["seed"] == 7
    assert record["inputs"] == begun["inputs"] and record["scheduler"].startswith(scheduler)
    assert record["on"] == ("cuda bfloat16" if device().startswith("cuda") else "cpu float32")
    assert record["gpu_seconds"] > 0
    # the retry draws steps 3 to 5 only, into the uninterrupted run's frames, bit for bit
    with transformer_calls() as calls:
        again = run(made, request(tmp_path / "killed", model, **extra), tmp_path / "w3")
    assert len(calls) == (STEPS - 2) * passes
    assert np.array_equal(kept(tmp_path / "killed"), kept(tmp_path / "whole"))
    if model == "ltx-2":  # and its sound, whose latents the state kept beside the video's
        assert np.array_equal(kept(tmp_path / "killed", "sound"), kept(tmp_path / "whole", "sound"))
    # and its generator ends where the uninterrupted one's did (LTX's decode may draw from it)
    assert len(noise) == 3 and torch.equal(noise[2].get_state(), noise[0].get_state())
    assert again.seed == whole.seed == 7
    # its GPU time counts the killed pod's until the state it left; the states go with the frames
    assert again.gpu_seconds > record["gpu_seconds"]
    assert states(tmp_path / "killed") == []


def test_a_clip_with_sound_killed_twice_resumes_twice_into_the_uninterrupted_clip(
    roots, tmp_path, monkeypatch
):
    """A resumed LTX-2 loop runs the rest of the schedule alone (video_state.Sound): the state it
    keeps is still the whole schedule's, so a second kill resumes from it as from the first."""
    refuse_hubs(monkeypatch)
    made = generator(roots["published"])
    run(made, request(tmp_path / "whole", "ltx-2"), tmp_path / "w1")
    for attempt, step in enumerate((3, 4)):  # states kept after steps 2, then 4 (every 2 steps)
        with pytest.raises(Killed):
            run(made, request(tmp_path / "killed", "ltx-2"), tmp_path / f"w{attempt + 2}", killed_after(step))
    assert states(tmp_path / "killed") == ["0004.json", "0004.pt"]
    import torch

    state = torch.load(state_file(tmp_path / "killed", 4, "pt"), weights_only=True)
    assert state["scheduler"]["_step_index"] == 4 and len(state["scheduler"]["sigmas"]) == STEPS + 1
    assert state["audio_latents"].shape[1] > 0
    with transformer_calls() as calls:
        run(made, request(tmp_path / "killed", "ltx-2"), tmp_path / "w4")
    assert len(calls) == (STEPS - 4) * 3
    for what in ("frames", "sound"):
        assert np.array_equal(kept(tmp_path / "killed", what), kept(tmp_path / "whole", what))


def test_states_are_kept_by_step_or_time_and_earlier_ones_removed_never_rewritten(
    roots, tmp_path, monkeypatch
):
    refuse_hubs(monkeypatch)
    written: Counter[str] = Counter()
    put = FolderFiles.put

    def counting(self: FolderFiles, name: str, path: Path) -> str:
        written[f"{self.folder.name}/{name}"] += 1
        return put(self, name, path)

    monkeypatch.setattr(FolderFiles, "put", counting)
    root = roots["published"]
    # every step: the latest kept, the ones before it removed once it is stored
    with pytest.raises(Killed):
        run(generator(root, checkpoint_steps=1), request(tmp_path / "a"), tmp_path / "w1", killed_after(3))
    assert states(tmp_path / "a") == ["0003.json", "0003.pt"]
    assert [re.sub(r"-[0-9a-f]{8}", "", n) for n in written if "latents-" in n] == [
        f"a/latents-000{n}.{kind}" for n in (1, 2, 3) for kind in ("pt", "json")
    ]
    # killed again between a state and its record: the state left is passed over, then removed
    state_file(tmp_path / "a", 3, "json").unlink()
    with pytest.raises(Killed), transformer_calls() as calls:
        run(generator(root, checkpoint_steps=1), request(tmp_path / "a"), tmp_path / "w2", killed_after(4))
    assert len(calls) == 4 * 2  # from the start (steps 1 and 2's states were removed)
    assert states(tmp_path / "a") == ["0004.json", "0004.pt"]
    run(generator(root, checkpoint_steps=1), request(tmp_path / "a"), tmp_path / "w3")
    assert max(written.values()) == 1, written
    # by time: 0 s keeps each step's; the default minute keeps none in a tiny clip's second
    each = generator(root, checkpoint_steps=0, checkpoint_seconds=0)
    with pytest.raises(Killed):
        run(each, request(tmp_path / "b"), tmp_path / "w4", killed_after(2))
    assert states(tmp_path / "b") == ["0002.json", "0002.pt"]
    default = ClusterVideoGenerator(root, device=device(), inference_steps=STEPS)
    with pytest.raises(Killed):
        run(default, request(tmp_path / "c"), tmp_path / "w5", killed_after(4))
    assert states(tmp_path / "c") == []


def test_a_state_for_other_inputs_or_damaged_is_passed_over_and_the_clip_drawn_whole(
    roots, tmp_path, monkeypatch, caplog
):
    """Passed over with a warning, not refused: any sound state, or none, makes the same frames;
    refusing would only stop a run that can finish (and deleting the folder, the way out a
    refusal leaves, would lose a seedless request's seed)."""
    refuse_hubs(monkeypatch)
    made = generator(roots["published"])
    with pytest.raises(Killed):
        run(made, request(tmp_path / "fox"), tmp_path / "w1", killed_after(3))
    # another prompt's folder, begun (killed before any state was due), given the fox's state
    with pytest.raises(Killed):
        run(made, request(tmp_path / "cat", prompt="a cat sleeps"), tmp_path / "w2", killed_after(1))
    for kind in ("pt", "json"):
        shutil.copy(state_file(tmp_path / "fox", 2, kind), tmp_path / "cat")
    caplog.set_level(logging.WARNING, logger=video_state.__name__)
    with transformer_calls() as calls:
        run(made, request(tmp_path / "cat", prompt="a cat sleeps"), tmp_path / "w3")
    assert len(calls) == STEPS * 2
    assert (
        "the denoising state after step 2 is not resumed from: it was kept for another inputs" in caplog.text
    )
    run(made, request(tmp_path / "cat-whole", prompt="a cat sleeps"), tmp_path / "w4")
    assert np.array_equal(kept(tmp_path / "cat"), kept(tmp_path / "cat-whole"))
    # the fox's own state, damaged: passed over, the fox drawn whole, as an uninterrupted run
    state = state_file(tmp_path / "fox", 2, "pt")
    state.write_bytes(state.read_bytes()[:-1] + b"!")
    caplog.clear()
    with transformer_calls() as calls:
        run(made, request(tmp_path / "fox"), tmp_path / "w5")
    assert len(calls) == STEPS * 2 and "is not the file its record describes" in caplog.text
    run(made, request(tmp_path / "fox-whole"), tmp_path / "w6")
    assert np.array_equal(kept(tmp_path / "fox"), kept(tmp_path / "fox-whole"))


def test_what_a_state_must_match_to_be_resumed_from(roots, tmp_path, monkeypatch, caplog):
    refuse_hubs(monkeypatch)
    with pytest.raises(Killed):
        run(generator(roots["published"]), request(tmp_path / "a"), tmp_path / "w", killed_after(3))
    record = json.loads(state_file(tmp_path / "a", 2, "json").read_text())
    where = {k: record[k] for k in ("inputs", "seed", "steps", "scheduler", "diffusers", "torch", "on")}
    store = video_state.FramesMade(FolderFiles(tmp_path / "a"), tmp_path / "w")
    resumed = store.resumable(where)
    assert resumed is not None and resumed.done == 2
    caplog.set_level(logging.WARNING, logger=video_state.__name__)
    for field, other in (
        ("seed", 8),
        ("steps", 50),
        ("scheduler", "FlowMatchEulerDiscreteScheduler"),
        ("diffusers", "0.35.0"),
        ("on", "cuda bfloat16"),
    ):
        assert store.resumable({**where, field: other}) is None
        assert f"it was kept for another {field}" in caplog.text
    state_file(tmp_path / "a", 2, "json").write_text("{")
    assert (
        store.resumable(where) is None
        and f"{state_file(tmp_path / 'a', 2, 'json').name} is not JSON" in caplog.text
    )


def test_kept_frames_are_taken_before_a_kept_state(roots, tmp_path, monkeypatch):
    refuse_hubs(monkeypatch)
    made = generator(roots["published"])
    with pytest.raises(Killed):
        run(made, request(tmp_path / "a"), tmp_path / "w1", killed_after(3))
    aside = tmp_path / "aside"
    aside.mkdir()
    for kind in ("pt", "json"):
        shutil.copy(state_file(tmp_path / "a", 2, kind), aside)
    first = run(made, request(tmp_path / "a"), tmp_path / "w2")
    frames = kept(tmp_path / "a")
    # killed after the frames were kept and before their states went: the frames are taken
    for path in aside.iterdir():
        shutil.copy(path, tmp_path / "a")
    loads = pipelines.loads
    monkeypatch.setattr(video, "denoise", lambda *a, **k: pytest.fail("denoised again"))
    again = run(made, request(tmp_path / "a"), tmp_path / "w3")
    assert pipelines.loads == loads and again.gpu_seconds == first.gpu_seconds
    assert np.array_equal(kept(tmp_path / "a"), frames) and states(tmp_path / "a") == []


# --- what the resume relies on in diffusers -------------------------------------------------------


def _scheduler(kind: str) -> Any:
    from diffusers import FlowMatchEulerDiscreteScheduler, UniPCMultistepScheduler

    if kind == "unipc":
        return UniPCMultistepScheduler.from_config(WAN21_SCHEDULER)
    if kind == "euler":  # the tiny Wan's
        return FlowMatchEulerDiscreteScheduler(shift=3.0)
    # as Lightricks/LTX-Video's scheduler_config: the shift from the clip's size, a terminal sigma
    return FlowMatchEulerDiscreteScheduler(
        use_dynamic_shifting=True,
        base_image_seq_len=1024,
        base_shift=0.95,
        max_shift=2.05,
        shift_terminal=0.1,
    )


def _same(a: Any, b: Any) -> bool:
    import torch

    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, list | tuple):
        return isinstance(b, list | tuple) and len(a) == len(b) and all(map(_same, a, b))
    return bool(a == b) if not isinstance(b, torch.Tensor) else False


@pytest.mark.parametrize("kind", ["unipc", "euler", "ltx"])
def test_a_schedulers_kept_state_is_the_whole_of_what_it_carries_between_steps(kind):
    """Stepped 3 of 8 times, kept, and put back into a scheduler as a resumed loop has it (after
    set_timesteps): every attribute of the two is the same, and so is every step after."""
    import torch

    def fresh() -> Any:
        scheduler = _scheduler(kind)
        # LTX's loop gives its sigmas and the shift for the clip's tokens
        extra = {"sigmas": np.linspace(1.0, 1 / 8, 8), "mu": 1.2} if kind == "ltx" else {}
        scheduler.set_timesteps(8, **extra)
        if kind != "ltx":
            scheduler.set_begin_index(0)  # as Wan's loop does
        return scheduler

    assert video_state.checkpointable(_scheduler(kind))
    torch.manual_seed(0)
    outputs = [torch.randn(1, 4, 2, 4, 4) for _ in range(8)]
    first, sample = fresh(), torch.randn(1, 4, 2, 4, 4)
    for n in range(3):
        sample = first.step(outputs[n], first.timesteps[n], sample, return_dict=False)[0]
    state = torch.load(_saved(video_state.scheduler_state(first)), weights_only=True)
    second = fresh()
    video_state.restore_scheduler(second, state)
    attributes = set(vars(first)) | set(vars(second))
    assert [
        a for a in sorted(attributes) if not _same(getattr(first, a, None), getattr(second, a, None))
    ] == []
    resumed = sample.clone()
    for n in range(3, 8):
        sample = first.step(outputs[n], first.timesteps[n], sample, return_dict=False)[0]
        resumed = second.step(outputs[n], second.timesteps[n], resumed, return_dict=False)[0]
        assert torch.equal(sample, resumed)


def _saved(state: dict[str, Any]) -> Any:
    import io

    import torch

    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return buffer


@pytest.mark.parametrize(
    "name", ["WanPipeline", "WanImageToVideoPipeline", "LTXPipeline", "LTXImageToVideoPipeline"]
)
def test_each_pipelines_loop_reads_interrupt_first_in_each_step_and_nowhere_else(name):
    """What `video_state.skipping` relies on, read in diffusers' source: a change there fails here (and
    a resumed run's own check stops it before anything is kept)."""
    import diffusers

    source = inspect.getsource(getattr(diffusers, name).__call__)
    assert source.count("self.interrupt") == 1
    assert re.search(r"for i, t in enumerate\(timesteps\):\n\s+if self\.interrupt:\n\s+continue\n", source)
    assert 'latents = callback_outputs.pop("latents", latents)' in source


def test_a_loop_that_does_not_skip_as_expected_fails_before_anything_is_kept(tmp_path):
    """A pipeline whose loop reads `interrupt` twice a step: the resumed denoise stops at its
    first drawn step, keeping nothing, rather than draw other frames."""
    import torch
    from diffusers import FlowMatchEulerDiscreteScheduler

    class Twice:
        scheduler = FlowMatchEulerDiscreteScheduler()
        _interrupt = False

        @property
        def interrupt(self) -> bool:
            return self._interrupt

        def __call__(self, **kwargs: Any) -> Any:
            self.scheduler.set_timesteps(kwargs["num_inference_steps"])
            latents = kwargs["latents"]
            for i, t in enumerate(self.scheduler.timesteps):
                if self.interrupt or self.interrupt:
                    continue
                latents = self.scheduler.step(torch.zeros_like(latents), t, latents, return_dict=False)[0]
                kwargs["callback_on_step_end"](self, i, t, {"latents": latents})
            raise AssertionError("drew to the end")

    scheduler = FlowMatchEulerDiscreteScheduler()
    scheduler.set_timesteps(4)
    scheduler.step(torch.zeros(1, 2), scheduler.timesteps[0], torch.zeros(1, 2))
    resumed = video_state.Resumed(
        1, torch.zeros(1, 2), torch.Generator().get_state(), video_state.scheduler_state(scheduler), 0.0
    )
    kept: list[int] = []
    checkpoints = video_state.Checkpoints(
        video_state.FramesMade(FolderFiles(tmp_path / "store"), tmp_path),
        {},
        every_steps=1,
        every_seconds=0,
        held=lambda: 0.0,
        resumed=resumed,
    )
    checkpoints.keep = lambda done, *a: kept.append(done)  # type: ignore[method-assign]
    clip = video.Clip("a fox", "", 64, 64, 9, 8, 4, 5.0, 7)
    pipe = Twice()
    with pytest.raises(RuntimeError, match=r"drew step \d of 4 after 1 \(interrupt read \d times\)"):
        video.denoise(pipe, clip, lambda done, total: None, checkpoints)
    assert kept == [] and type(pipe) is Twice
