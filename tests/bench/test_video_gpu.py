"""bench/video_gpu.py on the CPU with the tests' tiny Wan (`--size tiny --device cpu`): the path the
GPU run takes at real size, run here whole: staged, two LoRAs of the transformer's shapes, the cold,
warm, LoRA and again clips through the cluster's video generator, and what fails it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bench import video_gpu

Ran = tuple[Path, list[dict[str, Any]]]


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Ran:
    root = tmp_path_factory.mktemp("video-gpu")
    out = root / "out.jsonl"
    argv = ["--size", "tiny", "--device", "cpu", "--models", str(root / "models")]
    argv += ["--work", str(root / "work")]
    argv += ["--frames", "5", "--steps", "2", "--frame", "64x64", "--rank", "2", "--out", str(out)]
    assert video_gpu.main(argv) == 0
    return root, [json.loads(line) for line in out.read_text().splitlines()]


def test_each_clip_is_reported_as_it_ends(ran: Ran) -> None:
    _, lines = ran
    assert [line["clip"] for line in lines] == ["staged", "cold", "warm", "lora-a", "again", "lora-b"]
    clips = lines[1:]
    assert [c["loras"] for c in clips] == [0, 0, 1, 0, 1]
    assert all(c["frames_shape"] == [5, 64, 64, 3] and c["gpu_seconds"] > 0 for c in clips)
    assert all(c["memory_plan"].startswith("cpu") for c in clips)
    assert "peak_in_use" not in clips[0]  # no GPU: nothing sampled


def test_the_cold_request_again_after_the_loras_is_the_cold_clip(ran: Ran) -> None:
    _, lines = ran
    cold, again = lines[1], lines[4]
    assert again["largest_difference_from_cold"] == 0 and again["video_sha256"] == cold["video_sha256"]
    assert len({line["video_sha256"] for line in lines[1:]}) == 4  # each seed and LoRA its own clip


def test_a_lora_covers_every_attention_projection_of_every_block(ran: Ran) -> None:
    from safetensors import safe_open

    root, _ = ran
    with safe_open(str(root / "work" / "lora-0.safetensors"), "pt") as stored:
        keys = set(stored.keys())
    blocks = 2  # the tiny Wan's
    assert len(keys) == blocks * 2 * len(video_gpu.TARGETS) * 2  # attn1 and attn2, down and up
    assert "transformer.blocks.1.attn2.to_out.0.lora_B.weight" in keys


def test_a_clip_that_a_lora_changed_fails_the_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def changed(args: object) -> list[dict[str, Any]]:
        return [{"clip": "staged"}, {"clip": "again", "largest_difference_from_cold": 3}]

    monkeypatch.setattr(video_gpu, "run", changed)
    assert video_gpu.main([]) == 1


def test_a_clip_that_would_end_past_the_deadline_is_skipped_and_said(ran: Ran, tmp_path: Path) -> None:
    root, _ = ran  # its models staged: only the staging's check and the LoRAs before the deadline
    argv = ["--size", "tiny", "--device", "cpu", "--models", str(root / "models"), "--work", str(tmp_path)]
    lines = video_gpu.run(video_gpu.parser().parse_args([*argv, "--rank", "2", "--deadline", "0.001"]))
    skipped = [line["clip"] for line in lines if "skipped" in line]
    assert skipped == ["cold", "warm", "lora-a", "again", "lora-b"]
    assert video_gpu.main([*argv, "--rank", "2", "--deadline", "0.001"]) == 0  # nothing drawn, nothing failed
