"""A pooled run's place in its warm pool over HTTP (issue 47 item 4, docs/cluster-gpus.md#warm-pools):
the record's `latestRun.pool` follows the resource's status.pool while the run waits or draws, as
the OpenAPI document states it; once the run ended it is gone, even where a killed worker could
not remove status.pool."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import httpx
import jsonschema  # type: ignore[import-untyped]
import pytest

from contentgen.api.image import ImageGenerationSpec
from contentgen.catalog import Catalog
from contentgen.catalog.document import catalog_document
from contentgen.catalog.resource import ResourceState
from tests.httpapi.conftest import MakeApp, auth
from tests.httpapi.documented import Answers

pytestmark = pytest.mark.asyncio
STARTED = datetime(2026, 11, 25, 12, tzinfo=UTC)


def pooled(status: dict[str, Any]) -> ResourceState:
    spec = ImageGenerationSpec.model_validate(
        {"owner": "alice", "prompt": "a fox", "model": "flux-dev", "provider": "cluster", "denoising": "pool"}
    ).wire()
    common = {
        "observedGeneration": 1,
        "runVersion": 1,
        "jobName": "img-pooled-1",
        "startedAt": "2026-11-25T12:00:00Z",
    }
    return ResourceState(
        "ImageGeneration", "pooled", "default", "u-pooled", 1, spec, {**common, **status}, STARTED
    )


async def test_a_pooled_runs_place_in_the_pool_is_in_its_record(make_app: MakeApp, catalog: Catalog) -> None:
    app = make_app()
    answers = Answers(app)
    schemas = app.openapi()["components"]["schemas"]
    run_info = {**schemas["RunInfo"], "components": {"schemas": schemas}}
    refs = jsonschema.Draft202012Validator(run_info)
    place = schemas["PoolPlace"]
    assert set(place["properties"]["state"]["enum"]) == {"starting", "loading", "queued", "drawing"}

    async def latest_run(status: dict[str, Any]) -> dict[str, Any]:
        catalog.upsert(catalog_document(pooled(status), now=STARTED, origin="operator"))
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=answers), base_url="http://api"
        ) as http:
            answer = await http.get("/api/jobs/u-pooled", headers=auth("alice"))
        assert answer.status_code == 200, answer.text
        run: dict[str, Any] = answer.json()["latestRun"]
        assert list(refs.iter_errors(run)) == []  # as the OpenAPI document states it
        return run

    waiting = await latest_run({"phase": "Running", "pool": {"state": "queued", "position": 2}})
    assert waiting["pool"] == {"state": "queued", "position": 2}
    scaled_to_zero = await latest_run({"phase": "Running", "pool": {"state": "starting", "position": 0}})
    assert scaled_to_zero["pool"] == {"state": "starting", "position": 0}
    drawn = await latest_run({"phase": "Running"})  # the worker removed it: done with the pool
    assert drawn["pool"] is None
    stale = await latest_run({"phase": "Succeeded", "pool": {"state": "drawing", "position": 0}})
    assert stale["pool"] is None  # an ended run is in no pool, whatever a killed worker left
    assert answers.undocumented() == []
