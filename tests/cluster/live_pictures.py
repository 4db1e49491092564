"""What the tests of likeness in the loop need around a `contentgen run` of the real trainer on the
tiny FLUX: its pictures between steps are drawn for real (providers/cluster/families/flux_live.py, the tiny
FLUX's noise, with the checkpoint's LoRA or none), then each is replaced by a photograph that
depends on the checkpoint that drew it, as PicturesByCheckpoint does for the generator: the tiny
FLUX draws no face, so a curve of likeness needs pictures that show one. Every picture drawn is
logged (a line per picture in `log`, shared by the processes of a test), and a process can be
stalled after a number of pictures (a marker written, then asleep: the test SIGKILLs it).

python -m tests.cluster.live_pictures WORKSPACE MANIFEST LOG STALL [--clips]  (a `contentgen run` so
wrapped; --clips: a video LoRA's, a Wan's clips photographed)"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from tests.harness.faces import another_person, baseline_strangers, the_subject
from tests.run.checkpoint_pictures import lora_step

Picture = Callable[[dict[str, Any]], np.ndarray]

# A likeness that peaks at step 40 and stays there: another person at 20, the subject after.
PLATEAU: dict[int, Picture] = {20: another_person, **{s: the_subject for s in range(40, 201, 20)}}


def install(
    shows: dict[int, Picture] | None,
    log: Path,
    stall: int | None = None,
    interrupt: int | None = None,
    monkeypatch: Any = None,
) -> None:
    """InLoopPictures.draw wrapped: the real drawing, then the photograph (`shows` None: the tiny
    FLUX's own picture kept); each picture a line of `log`; after `stall` pictures (of this
    process), a marker `log`.stalled and sleep; after `interrupt`, Ctrl-C (as a killed pod ends).
    With `monkeypatch`, undone after the test; installed again, it wraps the real drawing anew."""
    from contentgen.providers.cluster.families import flux_live as live

    draw = getattr(live.InLoopPictures.draw, "unwrapped", live.InLoopPictures.draw)
    drawn = [0]

    def photographed(self: Any, prompt: str, picture: Any, *, with_lora: bool, path: Path) -> Path:
        if stall is not None and drawn[0] == stall:
            log.with_suffix(".stalled").write_text(str(drawn[0]))
            while True:
                time.sleep(1)
        if interrupt is not None and drawn[0] == interrupt:
            raise KeyboardInterrupt
        made = draw(self, prompt, picture, with_lora=with_lora, path=path)
        step = lora_step(self.lora_uri) if with_lora else 0
        if shows is not None:
            shown = shows[step]({"prompt": prompt}) if with_lora else baseline_strangers({"prompt": prompt})
            ok, png = cv2.imencode(".png", cv2.resize(shown, (picture.width, picture.height)))
            assert ok
            made.write_bytes(png.tobytes())
        drawn[0] += 1
        with log.open("a") as out:
            out.write(f"{os.getpid()} step {step} seed {picture.seed} {prompt}\n")
        return made

    photographed.unwrapped = draw  # type: ignore[attr-defined]
    if monkeypatch is not None:
        monkeypatch.setattr(live.InLoopPictures, "draw", photographed)
    else:
        live.InLoopPictures.draw = photographed  # type: ignore[method-assign]


def install_clips(
    shows: dict[int, Picture], log: Path, stall: int | None = None, monkeypatch: Any = None
) -> None:
    """InLoopClips.draw (families/video_live.py) wrapped as `install` wraps the pictures': the tiny
    Wan's clip drawn for real, then each of its frames replaced by the photograph of the checkpoint
    that drew it (a face the tiny Wan cannot draw), a little further along each frame; a line a clip
    of `log`; after `stall` clips of this process, the marker and sleep. The clips at 256 × 256."""
    from contentgen.providers.cluster.families import video_live

    draw = getattr(video_live.InLoopClips.draw, "unwrapped", video_live.InLoopClips.draw)
    count = [0]

    def photographed(
        self: Any, prompt: str, width: int, height: int, seed: int, with_lora: bool
    ) -> np.ndarray:
        if stall is not None and count[0] == stall:
            log.with_suffix(".stalled").write_text(str(count[0]))
            while True:
                time.sleep(1)
        frames = draw(self, prompt, width, height, seed, with_lora)
        step = lora_step(self.lora_uri) if with_lora else 0
        shown = shows[step]({"prompt": prompt}) if with_lora else baseline_strangers({"prompt": prompt})
        still = cv2.cvtColor(cv2.resize(shown, (width, height)), cv2.COLOR_BGR2RGB)
        moved = [np.roll(still, n, axis=1) for n in range(len(frames))]  # it moves, a pixel a frame
        count[0] += 1
        with log.open("a") as out:
            out.write(f"{os.getpid()} step {step} seed {seed} {prompt}\n")
        return np.stack(moved).astype(np.uint8)

    photographed.unwrapped = draw  # type: ignore[attr-defined]
    if monkeypatch is not None:
        monkeypatch.setattr(video_live.InLoopClips, "draw", photographed)
        monkeypatch.setattr(video_live, "AREA", 256 * 256)
    else:
        video_live.InLoopClips.draw = photographed  # type: ignore[method-assign]
        video_live.AREA = 256 * 256


def drawn(log: Path) -> list[str]:
    """Every picture drawn so far (its step, seed and prompt), over all processes."""
    if not log.exists():
        return []
    return [line.split(" ", 1)[1] for line in log.read_text().splitlines()]


def main(workspace: Path, manifest: Path, log: Path, stall: int, clips: bool = False) -> int:
    import torch

    from contentgen.cli.main import main as contentgen

    torch.set_num_threads(1)
    os.chdir(workspace)
    (install_clips if clips else install)(PLATEAU, log, stall)
    return contentgen(["run", "--source", str(workspace / "subject.mp4"), str(manifest)])


if __name__ == "__main__":
    sys.exit(
        main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), int(sys.argv[4]), "--clips" in sys.argv)
    )
