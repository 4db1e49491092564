"""A VideoGeneration in the cluster: the real operator (kopf) against the real control plane, under
the chart's RBAC, with the real worker run by the node for its Job, on the offline provider. An
ImageGeneration's picture animated by imageRef: it waits for the picture (ImageNotFound, stalled,
until the ImageGeneration exists), then Succeeded with the video, its duration and its picture in
the status and the catalog, its files under its version; deleting it with `deletionPolicy: Delete`
removes its own objects and nothing of the picture's. Under the chart's cluster-wide install here;
its namespaced install is test_namespaced_install.py's (tests/rbac/observed-calls.json)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from contentgen.catalog import to_record
from contentgen.store import keys
from tests.harness.kube import clip, image, reason, record_calls, uid_of
from tests.kube.harness import Cluster, operated, wait_for

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with operated(tmp_path_factory) as c:
        yield c


def stored(c: Cluster, prefix: str) -> list[str]:
    return sorted(i.key.removeprefix(prefix) for i in c.store.list(prefix))


def test_a_picture_animated_in_the_cluster(env: Cluster) -> None:
    c, ns = env, "video"
    c.apply(clip("beam", "lighthouse", deletionPolicy="Delete"), ns)

    def waiting() -> dict[str, Any] | None:
        status = c.status("VideoGeneration", ns, "beam")
        ready = next((x for x in status.get("conditions") or [] if x["type"] == "Ready"), {})
        return status if ready.get("reason") == "ImageNotFound" else None

    early = wait_for(waiting, 120, "beam waiting for its picture")
    assert early["phase"] == "Pending" and "no ImageGeneration 'lighthouse'" in early["message"]

    c.apply(image("lighthouse"), ns)
    c.wait_phase("ImageGeneration", ns, "lighthouse", "Succeeded")
    image_uid = uid_of(c, "ImageGeneration", ns, "lighthouse")
    status = c.wait_phase("VideoGeneration", ns, "beam", "Succeeded", timeout=240)
    uid = uid_of(c, "VideoGeneration", ns, "beam")
    assert reason(status) == "Succeeded" and status["latestVersion"] == 1
    video = status["video"]
    assert (video["frames"], video["fps"], video["codec"]) == (17, 16, "h264")
    assert video["uri"].endswith(f"generated-videos/alice/{uid}/v1/video.mp4")
    assert (status["image"]["name"], status["image"]["uid"], status["image"]["version"]) == (
        "lighthouse",
        image_uid,
        1,
    )
    assert status["cost"]["estimatedUsd"] == 0
    events = [e["reason"] for e in c.events(ns, "beam")]
    assert "JobCreated" in events and events[-1] == "Succeeded"
    assert stored(c, keys.videos_root("alice", uid)) == [
        "v1/poster.jpg",
        "v1/result.json",
        "v1/strip.jpg",
        "v1/thumbs/poster.jpg",
        "v1/video.mp4",
    ]

    catalog = c.catalog()
    doc = wait_for(
        lambda: (d := catalog.get(uid)) and d.get("status") == "Succeeded" and d, 60, "beam's record"
    )
    record = to_record(doc).wire()  # type: ignore[arg-type]
    assert record["type"] == "video-generation" and record["durationSeconds"] == pytest.approx(17 / 16)
    assert record["image"]["uid"] == image_uid and record["versions"][0]["video"]["frames"] == 17

    c.delete("VideoGeneration", ns, "beam")
    wait_for(lambda: c.resource("VideoGeneration", ns, "beam") is None, what="beam deleted")
    assert stored(c, keys.videos_root("alice", uid)) == [] and stored(c, keys.temp_root(uid)) == []
    assert stored(c, keys.images_root("alice", image_uid))  # the picture is the ImageGeneration's
    record_calls(c, "cluster-wide")  # under the chart's cluster-wide roles: every call one it knows
