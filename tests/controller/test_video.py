"""VideoGeneration in the operator's pure decisions: its Job per version with the resolved picture
frozen in the snapshot, the waits of an imageRef (named, stalled where a person must act), the
estimate before the run (fal priced per second, offline free), the status after a run (the video,
its duration and picture at the top, the version kept), and the printer columns kubectl shows."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from contentgen.api import KINDS, GeneratedVideo, ResolvedImage, RunResult, SpecSnapshot
from contentgen.controller.decide import Observed, World, decide
from contentgen.controller.job_admission import Backoff, NamespaceQueue
from contentgen.controller.jobs import render_job
from contentgen.controller.observe import JobState, image_state
from contentgen.controller.reconciler import _schedule, wake_image_waiters
from contentgen.controller.settings import OperatorSettings
from contentgen.controller.state import Operator
from contentgen.pricing import PriceTable, estimated
from tests.harness.conditions import reason
from tests.harness.controller import listed_image, trained

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
UID = "0b7f1f3e-aaaa-4bbb-8ccc-123456789abc"
IMAGE_UID = "11111111-2222-4333-8444-555555555555"
SHA = "ab" * 32


def video(status: dict[str, Any] | None = None, **spec: Any) -> Observed:
    base: dict[str, Any] = {
        "owner": "alice",
        "provider": "offline",
        "prompt": "waves",
        "model": "wan-2.2-t2v",
    }
    base.update(spec)
    return Observed(KINDS["VideoGeneration"], "clip", "ns", UID, 1, base, status or {})


def portrait(owner: str = "alice", versions: int = 1, images: int = 2, phase: str = "Succeeded") -> Any:
    return image_state(
        {
            "metadata": {"name": "portrait", "uid": IMAGE_UID},
            "spec": {"owner": owner},
            "status": {
                "phase": phase,
                "latestVersion": versions,
                "versions": [
                    {
                        "version": v,
                        "images": [
                            listed_image(f"s3://bkt/generated-images/{owner}/{IMAGE_UID}/v{v}/image_{i}.png")
                            for i in range(1, images + 1)
                        ],
                    }
                    for v in range(1, versions + 1)
                ],
            },
        }
    )


def stalled(status: dict[str, Any]) -> str:
    return next(c["status"] for c in status["conditions"] if c["type"] == "Stalled")


I2V = {"model": "wan-2.2-i2v", "imageRef": {"name": "portrait", "image": 2}}


def test_a_video_gets_a_job_with_its_picture_resolved() -> None:
    d = decide(video(**I2V), World(now=NOW, image=portrait(versions=2)))
    assert d.job is not None and d.job.version == 1
    assert d.job.image == ResolvedImage(
        uri=f"s3://bkt/generated-images/alice/{IMAGE_UID}/v2/image_2.png",
        name="portrait",
        uid=IMAGE_UID,
        version=2,
        image=2,
    )
    pinned = decide(
        video(**{**I2V, "imageRef": {"name": "portrait", "version": 1}}),
        World(now=NOW, image=portrait(versions=2)),
    )
    assert (
        pinned.job is not None
        and pinned.job.image is not None
        and pinned.job.image.uri.endswith("/v1/image_1.png")
    )
    by_url = decide(video(model="wan-2.2-i2v", image={"url": "https://h/p.png"}), World(now=NOW))
    assert by_url.job is not None and by_url.job.image == ResolvedImage(uri="https://h/p.png")
    text = decide(video(), World(now=NOW))
    assert text.job is not None and text.job.image is None


@pytest.mark.parametrize(
    ("image", "ref", "why", "is_stalled"),
    [
        (None, {"name": "portrait"}, "ImageNotFound", "True"),
        (portrait(owner="bob"), {"name": "portrait"}, "ImageOwnerMismatch", "True"),
        (portrait(versions=0, phase="Running"), {"name": "portrait"}, "ImageNotReady", "False"),
        (portrait(versions=0, phase="Failed"), {"name": "portrait"}, "ImageNotReady", "True"),
        (portrait(), {"name": "portrait", "version": 3}, "ImageVersionNotFound", "True"),
        (portrait(images=1), {"name": "portrait", "image": 2}, "ImageVersionNotFound", "True"),
    ],
)
def test_an_image_ref_that_cannot_resolve_waits_and_says_why(
    image: Any, ref: dict[str, Any], why: str, is_stalled: str
) -> None:
    d = decide(video(model="wan-2.2-i2v", imageRef=ref), World(now=NOW, image=image))
    assert d.job is None and d.status["phase"] == "Pending"
    assert reason(d.status) == why and stalled(d.status) == is_stalled
    assert "portrait" in d.status["message"] and d.waiting == why


@pytest.mark.parametrize("image", [None, portrait(versions=0, phase="Running"), portrait(owner="bob")])
def test_a_clip_waiting_for_its_picture_is_woken_by_the_image_generations_events(image: Any) -> None:
    """Not by a backoff timer that doubles while the picture is being made: the clip starts when
    its ImageGeneration changes (a new version, its creation, a fixed owner)."""
    op = Operator(settings=OperatorSettings(), kube=None, queue=NamespaceQueue(2), backoff=Backoff(1.0))  # type: ignore[arg-type]
    clip = video(model="wan-2.2-i2v", imageRef={"name": "portrait"})
    decision = decide(clip, World(now=NOW, image=image))
    for _ in range(5):
        _schedule(op, clip, decision)
    assert clip.uid not in op.backoff.next_at  # no timer
    assert op.image_waiters == {("ns", "portrait"): {UID: "VideoGeneration"}}
    wake_image_waiters(op, "ns", "another-picture")
    assert len(op.work) == 0
    wake_image_waiters(op, "ns", "portrait")
    assert len(op.work) == 1
    # once it runs (or is deleted) it waits for nothing
    _schedule(op, clip, decide(clip, World(now=NOW, image=portrait())))
    op.forget("ns", UID)
    assert op.image_waiters == {("ns", "portrait"): {}}


def test_the_estimate_before_the_run() -> None:
    prices = PriceTable()
    fal = estimated(
        "VideoGeneration",
        {
            "provider": "fal",
            "model": "wan-2.2-i2v",
            "resolution": "720p",
            "numFrames": 81,
            "image": {"url": "https://h/p.png"},
        },
        prices,
        None,
    )
    assert fal.estimated_usd == pytest.approx(81 / 16 * 0.08)  # Wan bills video seconds at 16 a second
    assert "fal-ai/wan/v2.2-a14b/image-to-video 720p" in fal.detail
    kling = estimated(
        "VideoGeneration",
        {"provider": "fal", "model": "kling-2.5-turbo", "durationSeconds": 10.0},
        prices,
        None,
    )
    assert kling.estimated_usd == pytest.approx(0.70)
    assert (
        estimated(
            "VideoGeneration", {"provider": "offline", "model": "wan-2.2-t2v"}, prices, None
        ).estimated_usd
        == 0
    )
    cluster = estimated(
        "VideoGeneration", {"provider": "cluster", "model": "ltx-video", "numFrames": 121}, prices, None
    )
    gpu_seconds = prices.cluster.startup_seconds + 121 * prices.cluster.video_frame_seconds
    assert cluster.estimated_usd == pytest.approx(gpu_seconds / 3600 * prices.cluster.gpu_hour_usd, rel=1e-3)


def test_the_status_after_a_run_has_the_video_and_its_picture() -> None:
    started = decide(video(**I2V), World(now=NOW, image=portrait()))
    res = replace(video(**I2V), status=started.status)
    made = GeneratedVideo(
        uri=f"s3://bkt/generated-videos/alice/{UID}/v1/video.mp4",
        size_bytes=1000,
        sha256=SHA,
        duration_seconds=5.0625,
        frames=81,
        fps=16,
        width=832,
        height=480,
        poster_uri=f"s3://bkt/generated-videos/alice/{UID}/v1/poster.jpg",
    )
    picture = ResolvedImage(uri="s3://bkt/x.png", name="portrait", uid=IMAGE_UID, version=1, image=2)
    outcome = RunResult(
        kind="VideoGeneration",
        provider="offline",
        generation=1,
        version=1,
        placeholder=True,
        video=made,
        image=picture,
        spec=res.spec,
    )
    done = JobState(
        name=started.status["jobName"],
        namespace="ns",
        uid=UID,
        generation=1,
        version=1,
        complete=True,
        succeeded=1,
    )
    d = decide(res, World(now=NOW, jobs=(done,), outcome=outcome, image=portrait()))
    status = d.status
    assert status["phase"] == "Succeeded" and status["latestVersion"] == 1
    assert status["video"]["durationSeconds"] == 5.0625 and status["video"]["uri"].endswith("/v1/video.mp4")
    assert status["image"]["uid"] == IMAGE_UID and status["provider"] == "offline"
    (entry,) = status["versions"]
    assert entry["model"] == "wan-2.2-i2v" and entry["video"]["frames"] == 81 and entry["placeholder"]
    assert "generated a 5.1 s video" in status["message"]
    KINDS["VideoGeneration"].status.model_validate_json(__import__("json").dumps(status))


def test_kubectl_shows_phase_duration_and_verdict() -> None:
    columns = {c.name: c.json_path for c in KINDS["VideoGeneration"].columns}
    assert columns["Phase"] == ".status.phase" and columns["Duration"] == ".status.video.durationSeconds"
    assert columns["Likeness"] == ".status.video.likeness.verdict"


def test_the_picture_carries_the_loras_it_was_made_with() -> None:
    """The lineage video <- picture <- LoRA: the ImageGeneration's version's LoRAs ride with the
    resolved picture, so the worker knows whose likeness to look for along the video."""
    body: dict[str, Any] = {
        "metadata": {"name": "portrait", "uid": IMAGE_UID},
        "spec": {"owner": "alice"},
        "status": {
            "phase": "Succeeded",
            "latestVersion": 2,
            "versions": [
                {"version": v, "images": [listed_image(f"s3://bkt/img/v{v}/image_1.png")], "loras": loras}
                for v, loras in (
                    (1, []),
                    (
                        2,
                        [
                            {
                                "uri": "s3://bkt/loras/alice/l-1/v3/model.safetensors",
                                "name": "me",
                                "uid": "l-1",
                                "version": 3,
                            }
                        ],
                    ),
                )
            ],
        },
    }
    latest = decide(
        video(**{**I2V, "imageRef": {"name": "portrait"}}), World(now=NOW, image=image_state(body))
    )
    assert latest.job is not None and latest.job.image is not None
    assert [(lora.name, lora.uid, lora.version) for lora in latest.job.image.loras] == [("me", "l-1", 3)]
    first = decide(
        video(**{**I2V, "imageRef": {"name": "portrait", "version": 1}}),
        World(now=NOW, image=image_state(body)),
    )
    assert first.job is not None and first.job.image is not None and first.job.image.loras == []


def test_the_job_runs_the_frozen_snapshot() -> None:
    snapshot = SpecSnapshot(
        kind="VideoGeneration",
        name="clip",
        namespace="ns",
        uid=UID,
        generation=1,
        version=1,
        spec={
            "owner": "alice",
            "prompt": "waves",
            "provider": "offline",
            "model": "wan-2.2-i2v",
            "imageRef": {"name": "portrait"},
        },
        image=ResolvedImage(uri="s3://bkt/p.png", name="portrait", uid=IMAGE_UID, version=1, image=1),
    )
    job = render_job(snapshot, OperatorSettings())
    env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    frozen = SpecSnapshot.model_validate_json(env["CONTENTGEN_SPEC"])
    assert frozen.image == snapshot.image and frozen.kind == "VideoGeneration"
    assert job["metadata"]["name"].startswith("clip-") and job["metadata"]["name"].endswith("-g1")


def test_over_budget_a_video_waits_with_its_estimate_and_starts_no_job() -> None:
    """Budgets hold for videos as for pictures: over the month's budget it waits, stalled, with no
    Job; within it again, it starts with its estimate (fal's Wan, per second of video)."""
    prices = PriceTable()
    spec = {"provider": "fal", "model": "wan-2.2-t2v", "numFrames": 81, "resolution": "480p"}
    held = decide(
        video(**spec), World(now=NOW, prices=prices, over_budget="owner alice is at its monthly budget")
    )
    assert held.job is None and held.waiting == "BudgetExceeded"
    assert held.status["phase"] == "Pending" and reason(held.status) == "BudgetExceeded"
    assert stalled(held.status) == "True" and held.status["message"] == "owner alice is at its monthly budget"
    assert [(e.type, e.reason) for e in held.events] == [("Warning", "BudgetExceeded")]
    started = decide(video(**spec), World(now=NOW, prices=prices))
    assert started.job is not None and reason(started.status) == "JobCreated"
    assert started.status["cost"]["estimatedUsd"] == pytest.approx(81 / 16 * 0.10)


@pytest.mark.parametrize(
    ("entries", "model", "named"),
    [
        # a loraRef to a FLUX.1 LoRA (api/base_models.py): known once it resolves
        ([{"loraRef": {"name": "avatar"}}], "wan-2.2-t2v", "loraRef 'avatar' version 3 is a FLUX.1 LoRA"),
        # a LoraTraining's stored file by url on a model no LoraTraining makes LoRAs for (LTX)
        (
            [
                {"url": "https://h/ltx.safetensors"},
                {"url": "s3://bkt/loras/alice/l-1/v3/model.safetensors", "scale": 0.5},
            ],
            "ltx-video-13b",
            "loras[1]: s3://bkt/loras/alice/l-1/v3/model.safetensors",
        ),
    ],
)
def test_a_lora_training_lora_on_a_video_waits_stalled_with_a_warning_and_no_job(
    entries: list[dict[str, Any]], model: str, named: str
) -> None:
    clip = video(model=model, loras=entries)
    d = decide(clip, World(now=NOW, loras={"avatar": trained()}))
    assert d.job is None and d.status["phase"] == "Pending" and d.waiting == "LoraIncompatible"
    assert reason(d.status) == "LoraIncompatible" and stalled(d.status) == "True"
    message = d.status["message"]
    assert message.startswith(named) and "\n" not in message
    assert "training.baseModel wan-2.2-t2v-a14b" in message or "no LoraTraining makes" in message
    assert [(e.type, e.reason) for e in d.events] == [("Warning", "LoraIncompatible")]
    assert d.events[0].message == message
    # a LoRA made for the video model's family runs, and a LoraTraining's of its base model
    ok = decide(video(loras=[{"url": "https://h/wan.safetensors"}]), World(now=NOW))
    assert ok.job is not None and [lora.uri for lora in ok.job.loras] == ["https://h/wan.safetensors"]
    made = trained()
    wan = replace(made, usable=tuple(replace(v, base_model="wan-2.2-t2v-a14b") for v in made.usable))
    fits = decide(video(loras=[{"loraRef": {"name": "avatar"}}]), World(now=NOW, loras={"avatar": wan}))
    assert fits.job is not None and [(lora.name, lora.base_model) for lora in fits.job.loras] == [
        ("avatar", "wan-2.2-t2v-a14b")
    ]
