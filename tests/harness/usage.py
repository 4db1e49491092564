"""A catalog filled with a LoRA and what used it, for usage's tests (tests/catalog, sharing)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from contentgen.api import (
    Artifact,
    EvaluatedLora,
    EvaluationVersion,
    GeneratedVideo,
    Likeness,
    LoraEvaluationSpec,
    LoraEvaluationStatus,
    Phase,
    ResolvedImage,
    ResolvedLora,
    RunResult,
    VideoGenerationSpec,
    VideoGenerationStatus,
)
from contentgen.api.sharing import grant
from contentgen.catalog import Catalog, ResourceState, catalog_document
from contentgen.catalog.sharing import change_record_shares
from tests.catalog.factory import T0, _spec, image_doc, lora_doc, s3_uri, sha

LORA = "a-lora-1"


def fill(catalog: Catalog) -> None:
    """alice's LoRA shared with bob for use; pictures alice and bob made with it (and without),
    and videos animating them; bob shares one video with alice and his picture with the group
    artists."""
    catalog.upsert({**lora_doc(LORA, versions=2), "origin": "local"})
    v2 = lora_version(2)
    mine = image_doc("a-img", name="portrait", loras=(v2,), created=at(1))
    theirs = image_doc("b-img", owner="bob", name="fox", loras=(v2,), created=at(2))
    plain = image_doc("a-plain", name="plain", created=at(3))  # no LoRA
    # version 1 without the LoRA, version 2 with it: a video of version 1 did not use the LoRA
    mixed = image_doc("a-mixed", name="mixed", created=at(4))
    mixed = image_doc("a-mixed", name="mixed", created=at(4), version=2, loras=(v2,), previous=mixed)
    for doc in (mine, theirs, plain, mixed):
        catalog.upsert({**doc, "origin": "local"})
    for doc in (
        video_doc("a-vid-pic", owner="alice", name="portrait-clip", minutes=5, picture=picture_of(mine)),
        video_doc("a-vid-plain", owner="alice", name="plain-clip", minutes=6, picture=picture_of(plain)),
        video_doc("b-vid-pic", owner="bob", name="fox-clip", minutes=7, picture=picture_of(theirs)),
        video_doc("b-vid-shared", owner="bob", name="fox-shared", minutes=8, picture=picture_of(theirs)),
        video_doc("a-vid-mixed", owner="alice", name="mixed-clip", minutes=9, picture=picture_of(mixed, 1)),
        evaluation_doc("a-eval", version=1, minutes=10),
    ):
        catalog.upsert({**doc, "origin": "local"})
    for uid, to, access in (
        (LORA, "owner:bob", "use"),
        ("b-vid-shared", "owner:alice", "read"),
        ("b-img", "group:artists", "read"),
    ):
        found = catalog.record(uid)
        assert found is not None
        change_record_shares(catalog, found, give=grant(to, access))


def video_doc(uid: str, *, owner: str, name: str, minutes: int, picture: ResolvedImage) -> dict[str, Any]:
    """A VideoGeneration's record after its first run, as the operator writes it: animating
    `picture` (an imageRef resolved, with the LoRAs the picture was made with: its lineage)."""
    spec = _spec(
        VideoGenerationSpec,
        {
            "owner": owner,
            "prompt": "waves",
            "provider": "offline",
            "model": "wan-2.2-i2v",
            "imageRef": {"name": picture.name, "version": picture.version},
        },
    )
    key = f"generated-videos/{owner}/{uid}/v1/video.mp4"
    made = GeneratedVideo(
        uri=s3_uri(key),
        size_bytes=2000,
        sha256=sha(key),
        duration_seconds=2.0,
        frames=33,
        fps=16,
        width=64,
        height=48,
    )
    completed = T0 + timedelta(minutes=minutes)
    result = RunResult(
        kind="VideoGeneration",
        provider="offline",
        artifacts=[Artifact(uri=made.uri, size_bytes=2000, sha256=made.sha256, content_type="video/mp4")],
        video=made,
        image=picture,
        version=1,
        generation=1,
        finished_at=completed,
        spec=spec,
    )
    return _recorded(VideoGenerationStatus, name, uid, spec, result, completed)


def evaluation_doc(uid: str, *, version: int, minutes: int) -> dict[str, Any]:
    """alice's LoraEvaluation of her LoRA's `version`, as the operator writes its record."""
    spec = _spec(
        LoraEvaluationSpec,
        {"owner": "alice", "loraRef": {"name": "avatar", "version": version}, "provider": "offline"},
    )
    completed = T0 + timedelta(minutes=minutes)
    evaluated = EvaluationVersion(
        version=1,
        generation=1,
        lora=EvaluatedLora(name="avatar", uid=LORA, version=version),
        evaluation=1,
        likeness=Likeness(verdict="no-faces"),
        created_at=completed,
    )
    result = RunResult(
        kind="LoraEvaluation", provider="offline", evaluation=evaluated, version=1, generation=1, spec=spec
    )
    return _recorded(LoraEvaluationStatus, "again", uid, spec, result, completed)


def _recorded(
    status_model: Any, name: str, uid: str, spec: dict[str, Any], result: RunResult, completed: datetime
) -> dict[str, Any]:
    """The operator's catalog record of `result`, its first generation succeeded at `completed`."""
    status = status_model(phase=Phase.SUCCEEDED, progress=100, completed_at=completed, run_version=1).wire()
    status["observedGeneration"] = 1
    result.merge_outputs(status)
    state = ResourceState(
        kind=result.kind,
        name=name,
        namespace="default",
        uid=uid,
        generation=1,
        spec=spec,
        status=status,
        created_at=completed,
        results={1: result},
    )
    return catalog_document(state, now=completed, origin="operator", previous=None)


def lora_version(n: int) -> ResolvedLora:
    return ResolvedLora(uri=s3_uri(f"loras/alice/{LORA}/v{n}/model.safetensors"), uid=LORA, version=n)


def picture_of(image: dict[str, Any], version: int = 1) -> ResolvedImage:
    """The first picture of an image generation's `version`, with that version's LoRAs."""
    made = next(v for v in image["versions"] if v["version"] == version)
    return ResolvedImage(
        uri=made["images"][0]["uri"],
        name=image["name"],
        uid=image["_id"],
        version=version,
        image=1,
        loras=[ResolvedLora.model_validate(lora) for lora in made.get("loras") or []],
    )


def at(minutes: int) -> Any:
    return T0 + timedelta(minutes=minutes)
