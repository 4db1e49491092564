"""bench/pools_clips.py's decisions: the clips' specs as the operator hands them to Jobs (the
API's validation passes them), what fails the benchmark, and the table. (The benchmark itself runs
the tiny Wan in worker and pool processes: `make bench-pools-clips`.)"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from bench.pools import DOCS, MARKERS, plan
from bench.pools_clips import markdown, problems, spec_file


def clip(
    name: str, *, seconds: float = 5.0, loads: int = 0, video: str = "v", ok: bool = True
) -> dict[str, Any]:
    return {"name": name, "started": 0.0, "seconds": seconds, "cpu": 2.0, "ok": ok, "loads": loads,
            "video": video, "error": ""}  # fmt: skip


PASSING: dict[str, Any] = {
    "requests": 3, "loras": 1, "frames": 5, "steps": 4, "concurrency": 2,
    "job": [clip("req-000", seconds=14.0, loads=1), clip("req-002", seconds=15.0, loads=1)],
    "cold": [clip("req-000", seconds=13.0)], "warm": [clip("req-001"), clip("req-002")],
    "warm_after": 9.0, "warm_seconds": 10.0, "pool_cpu_per_clip": 3.0, "pool_seconds": 22.0, "pool_loads": 1,
    "account": {"requests": 3, "drawn": 3, "loads": 1, "busySeconds": 11.0}, "equal": [True, True],
}  # fmt: skip


def test_a_clip_with_and_without_its_lora_is_a_valid_job_spec(tmp_path: Path) -> None:
    for request in plan(2, 1):
        snapshot = json.loads(spec_file(request, "job", "s3://bench-loras", tmp_path, 5).read_text())
        assert snapshot["kind"] == "VideoGeneration" and snapshot["spec"]["provider"] == "cluster"
        loras = snapshot["spec"].get("loras") or []
        assert [lora["url"].startswith("s3://bench-loras/loras/") for lora in loras] == (
            [True] if request.lora is not None else []
        )


def test_each_missed_goal_fails_the_benchmark() -> None:
    assert problems(PASSING) == []
    cases = {
        "a request failed": ("warm", 0, "ok", False),
        "the pool loaded": ("account", None, "loads", 2),
        "not faster than a Job": ("warm", 1, "seconds", 99.0),
        "differ from their Job's": ("equal", None, 1, False),
    }
    for said, (part, index, key, value) in cases.items():
        broken = copy.deepcopy(PASSING)
        target = broken[part] if index is None else broken[part][index]
        target[key] = value
        assert any(said in p for p in problems(broken)), said
    reloaded = copy.deepcopy(PASSING)
    reloaded["warm"][0]["loads"] = 1  # a pooled worker loaded the model itself
    assert any("the pool loaded" in p for p in problems(reloaded))


def test_the_table_and_its_place_in_the_docs() -> None:
    table = markdown(PASSING, "2026-11-27 11:16 UTC", "0.8 1.1 1.7")
    assert "| clips equal to the Job's (SHA-256 of the MP4) | **2 of 2** |" in table
    assert "| model loads per clip | **0.333**" in table
    start, end = MARKERS["clips"]
    page = DOCS.read_text()
    assert page.count(start) == 1 and page.index(start) < page.index(end)
