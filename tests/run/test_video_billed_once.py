"""The video seam's promise to the providers to come (fal, cluster): a paid generator checkpoints its
request before it waits, and when the store fails after the provider was paid, the next run of the
resource delivers that request's video instead of paying again (the checkpoint is the resource's,
not the run's), and the bill names that request once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from contentgen.api import RunResult
from contentgen.cli.main import main
from contentgen.errors import TransientError
from contentgen.pipeline import videos
from contentgen.providers.base import Checkpoint, VideoOutput, VideoRequest
from contentgen.providers.offline_video import OfflineVideoGenerator
from contentgen.providers.progress import SubProgress
from contentgen.store.local import LocalStore
from tests.conftest import EXAMPLES


class PaidGenerator:
    """A fal-like generator: a request submitted (and billed) once, its id checkpointed first."""

    name = "fal"

    def __init__(self) -> None:
        self.submitted: list[str] = []

    def generate_video(
        self, request: VideoRequest, work_dir: Path, progress: SubProgress, checkpoint: Checkpoint
    ) -> VideoOutput:
        saved = checkpoint.load()
        request_id = saved.get("requestId")
        if request_id is None:
            request_id = f"req-{len(self.submitted) + 1}"
            self.submitted.append(request_id)
            checkpoint.save({"requestId": request_id})
        made = OfflineVideoGenerator().generate_video(request, work_dir, progress, checkpoint)
        return VideoOutput(path=made.path, seed=made.seed, request_id=request_id)


def test_a_store_failure_after_paying_is_delivered_next_run_without_paying_again(
    workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    paid = PaidGenerator()
    monkeypatch.setattr(videos, "video_generator", lambda name: paid)
    refuse = {"video": True}
    put_once_file = LocalStore.put_once_file

    def flaky(self: LocalStore, key: str, path: Path, content_type: str) -> Any:
        if refuse["video"] and key.endswith("/video.mp4"):
            refuse["video"] = False
            raise TransientError("the store is away", reason="StoreUnavailable")
        return put_once_file(self, key, path, content_type)

    monkeypatch.setattr(LocalStore, "put_once_file", flaky)
    manifest = str(EXAMPLES / "videogeneration.yaml")  # provider fal by default

    assert main(["run", "--result", "r1.json", manifest]) != 0
    out = capsys.readouterr()
    assert "StoreUnavailable" in out.out + out.err and paid.submitted == ["req-1"]

    assert main(["run", "--result", "r2.json", manifest]) == 0, capsys.readouterr()
    result = RunResult.model_validate_json((workspace / "r2.json").read_text())
    assert paid.submitted == ["req-1"]  # delivered from the checkpoint, not paid again
    assert result.video is not None and result.video.frames == 33 and result.version == 2
    (line,) = result.usage or []
    assert (line.provider, line.item, line.unit, line.request) == (
        "fal",
        "fal-ai/wan/v2.2-a14b/text-to-video/lora",
        "video-second",
        "req-1",
    )
    assert line.quantity == pytest.approx(33 / 16)  # Wan's seconds, counted at 16 frames a second
