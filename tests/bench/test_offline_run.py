"""bench/offline_run.py's own parts, on inputs whose answer is known: two runs' stored outputs
compare equal when only their times and store paths differ and unequal when a picture or a
report does; the time to the first stage is when a command prints its first progress line; a
person's plan takes its seeds in turn and ends on the second asked."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bench import transitions
from bench.offline_run import fingerprint, measure, person_plan
from bench.transitions import Clip
from scripts.synthetic_video import SceneSpec


def stored(work: Path, picture: bytes, caption: str, seconds: float, at: str) -> dict[str, str]:
    store = work / "store"
    (store / "datasets").mkdir(parents=True)
    (store / "datasets" / "0001.jpg").write_bytes(picture)
    (store / "datasets" / "0001.txt").write_text(caption)
    result = {
        "stages": [{"name": "dataset", "seconds": seconds}],
        "finishedAt": at,
        "artifacts": [{"uri": f"file://{store}/datasets/0001.jpg"}],
    }
    (store / "result.json").write_text(json.dumps(result))
    return fingerprint(work)


def test_outputs_compare_equal_whatever_their_times_and_store(tmp_path: Path) -> None:
    one = stored(tmp_path / "a", b"jpeg", "a photo of sks", 3.2, "2026-11-28T11:00:00Z")
    again = stored(tmp_path / "b", b"jpeg", "a photo of sks", 4.9, "2026-11-28T11:05:00Z")
    assert one == again and len(one) == 3


def test_a_changed_picture_or_caption_is_found(tmp_path: Path) -> None:
    one = stored(tmp_path / "a", b"jpeg", "a photo of sks", 3.2, "2026-11-28T11:00:00Z")
    picture = stored(tmp_path / "b", b"JPEG", "a photo of sks", 3.2, "2026-11-28T11:00:00Z")
    caption = stored(tmp_path / "c", b"jpeg", "a photo of sks, smiling", 3.2, "2026-11-28T11:00:00Z")
    assert [k for k in one if picture[k] != one[k]] == ["datasets/0001.jpg"]
    assert [k for k in one if caption[k] != one[k]] == ["datasets/0001.txt"]


def test_the_first_stage_is_the_first_progress_line() -> None:
    script = (
        "import sys, time\n"
        "print('contentgen run: reading the manifest', file=sys.stderr, flush=True)\n"
        "sum(range(3_000_000)); time.sleep(0.3)\n"
        "print('fetch 0%', file=sys.stderr, flush=True)\n"
        "time.sleep(0.3)\n"
        "print('fetch 100%', file=sys.stderr, flush=True)\n"
    )
    done = measure([sys.executable, "-c", script])
    assert done.first_stage is not None and done.first_stage_cpu is not None
    assert 0.3 <= done.first_stage <= done.seconds - 0.3
    assert 0 < done.first_stage_cpu <= done.cpu_seconds
    assert "fetch 100%" in done.output


def test_a_persons_plan_takes_seed_after_seed_and_ends_on_its_second(monkeypatch: pytest.MonkeyPatch) -> None:
    def plan(clip: Clip, lengths: str) -> list[SceneSpec]:
        if clip.seed == 2:
            raise RuntimeError("fewer than 3 distinct close framings")
        return [SceneSpec("lenna", 6.0, shot="S:close-0", transition="dissolve"), SceneSpec("brick", 3.0)]

    monkeypatch.setattr(transitions, "plan", plan)
    specs = person_plan("lenna", "lenna", "lenna:wide", range(1, 10), 20.5)
    assert [(s.image, s.seconds) for s in specs] == [
        ("lenna", 6.0),
        ("brick", 3.0),
        ("lenna", 6.0),
        ("brick", 3.0),
        ("lenna", 2.5),
    ]
    assert [s.shot for s in specs] == ["S:close-0@1", "", "S:close-0@3", "", "S:close-0@4"]
    assert specs[0].transition == "cut" and specs[2].transition == "dissolve"
    with pytest.raises(RuntimeError, match="less than 100"):
        person_plan("lenna", "lenna", "lenna:wide", range(1, 4), 100.0)
