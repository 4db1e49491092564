"""status.pool from the worker (issue 47): a pooled request's place in the warm pool goes into its
resource's status by the worker's progress channel, as a JSON patch that tests the resource's uid
and status.jobName (a Job the resource has moved on from writes nothing), once per change, and is
removed when the request is done with the pool; a failed write never fails the run."""

from __future__ import annotations

import json

import httpx

from contentgen.api import KINDS
from contentgen.api.image import ImageGenerationStatus
from contentgen.pipeline.kube_status import KubeStatusClient
from contentgen.pipeline.reporters import Changes


def client(answers: list[int], seen: list[list[dict[str, object]]]) -> KubeStatusClient:
    status = KubeStatusClient("https://kube.example", None, None)

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.method == "PATCH" and request.headers["content-type"] == "application/json-patch+json"
        assert (
            request.url.path == "/apis/contentgen.io/v1alpha1/namespaces/team-a/imagegenerations/cat/status"
        )
        seen.append(json.loads(request.content))
        return httpx.Response(answers.pop(0))

    status.client = httpx.Client(base_url="https://kube.example", transport=httpx.MockTransport(handler))
    return status


def test_the_place_is_patched_once_per_change_then_removed() -> None:
    seen: list[list[dict[str, object]]] = []
    kube = client([200, 200, 200, 422], seen)
    kind = KINDS["ImageGeneration"]
    told = Changes(
        lambda state, position: kube.patch_pool(kind, "team-a", "cat", "cat-g1", state, position, "u-1")
    )
    for state, position in [("starting", 0), ("queued", 3), ("queued", 3), ("drawing", 0), ("", 0)]:
        told(state, position)
    guards = [
        {"op": "test", "path": "/metadata/uid", "value": "u-1"},
        {"op": "test", "path": "/status/jobName", "value": "cat-g1"},
    ]
    assert [patch[:2] for patch in seen] == [guards] * 4
    assert [patch[2] for patch in seen] == [
        {"op": "add", "path": "/status/pool", "value": {"state": "starting", "position": 0}},
        {"op": "add", "path": "/status/pool", "value": {"state": "queued", "position": 3}},
        {"op": "add", "path": "/status/pool", "value": {"state": "drawing", "position": 0}},
        {"op": "remove", "path": "/status/pool"},  # 422 (a moved-on Job, or nothing to remove): ignored
    ]
    # what is patched is the status's own shape
    assert ImageGenerationStatus.model_validate({"pool": seen[1][2]["value"]}).pool.position == 3  # type: ignore[union-attr]


def test_a_failed_write_does_not_fail_the_run() -> None:
    seen: list[list[dict[str, object]]] = []
    kube = client([500], seen)
    kind = KINDS["ImageGeneration"]
    Changes(lambda state, position: kube.patch_pool(kind, "team-a", "cat", "cat-g1", state, position))(
        "queued", 1
    )
    assert len(seen) == 1 and seen[0][0] == {"op": "test", "path": "/status/jobName", "value": "cat-g1"}
