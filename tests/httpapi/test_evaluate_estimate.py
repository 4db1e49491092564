"""The estimate "Evaluate again" shows before anything runs (POST .../evaluate, a dry run) is the
operator's estimate of the LoraEvaluation the API would make: on the cluster's own GPUs, its GPU
time × the GPUs of a LoraEvaluation Job (gpu.jobs, which the chart gives the API as it gives the
operator), not pictures priced per megapixel, which the cluster does not bill ($0 before)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any
from unittest import mock

import httpx
import mongomock
import pytest

from contentgen.api.image import IMAGE_SIZES
from contentgen.api.lora import LIKENESS_IMAGE_SIZE, LIKENESS_PROMPT_SETS
from contentgen.catalog.mongo import MongoCatalog
from contentgen.controller.settings import OperatorSettings
from contentgen.httpapi import ApiSettings, create_app
from contentgen.pricing import estimated, megapixels
from contentgen.store import LocalStore
from tests.catalog.factory import lora_doc

# what the chart gives both (CONTENTGEN_PRICES, CONTENTGEN_GPU_JOBS)
CHART_ENV = {
    "CONTENTGEN_PRICES": json.dumps(
        {"cluster": {"gpuHourUsd": 3.0, "startupSeconds": 40, "imageSeconds": 7}}
    ),
    "CONTENTGEN_GPU_JOBS": json.dumps({"LoraEvaluation": {"count": 2, "resourceName": "nvidia.com/gpu"}}),
}


def _read(settings: type[Any], **given: Any) -> Any:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CONTENTGEN_")}
    with mock.patch.dict(os.environ, {**clean, **CHART_ENV}, clear=True):
        return settings(**given)


async def _evaluate(tmp_path: Path, body: dict[str, Any], **version: Any) -> httpx.Response:
    """POST .../versions/1/evaluate of a LoRA whose versions have a dataset (and `version`'s fields)."""
    catalog = MongoCatalog(mongomock.MongoClient(), "contentgen")
    doc = lora_doc("a-lora", name="jesse-avatar")
    for entry in doc["versions"]:
        entry.update(datasetUri=f"s3://bkt/datasets/alice/a-lora/v{entry['version']}/dataset.zip", **version)
    catalog.upsert(doc)
    settings = _read(
        ApiSettings, catalog="unused://", api_auth=["local"], api_local_owner="alice", api_create="off"
    )
    store = LocalStore(tmp_path / "store")
    app = create_app(settings, catalog=catalog, store=lambda: store, creator=None)
    transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 50000))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost:8080") as http:
        return await http.post(
            "/api/assets/a-lora/versions/1/evaluate", json=body, headers={"Host": "localhost:8080"}
        )


async def _dry_run(tmp_path: Path, body: dict[str, Any]) -> dict[str, Any]:
    answer = await _evaluate(tmp_path, body)
    assert answer.status_code == 200 and answer.json()["dryRun"], answer.text
    result: dict[str, Any] = answer.json()
    return result


@pytest.mark.asyncio
async def test_a_cluster_reevaluations_estimate_is_the_operators(tmp_path: Path) -> None:
    plan = await _dry_run(tmp_path, {"provider": "cluster", "seeds": [5, 6]})
    operator = _read(OperatorSettings)
    spec = {
        "owner": "alice",
        "loraRef": {"name": "jesse-avatar", "version": 1},
        "evaluation": {"promptSet": "likeness-v1", "seeds": [5, 6]},
        "provider": "cluster",
    }
    assert plan["estimateUsd"] == estimated("LoraEvaluation", spec, operator.prices, None).estimated_usd
    # its load and the pictures with the LoRA and without, on the Job's 2 GPUs, at $3 a GPU-hour
    pictures = 2 * LIKENESS_PROMPT_SETS["likeness-v1"] * 2
    assert plan["estimateUsd"] == pytest.approx(round(2 * (40 + pictures * 7) / 3600 * 3.0, 6))
    assert "gpu-hour" in plan["estimate"] and not plan["baselineCached"]


@pytest.mark.asyncio
async def test_a_providers_reevaluation_is_still_its_pictures(tmp_path: Path) -> None:
    plan = await _dry_run(tmp_path, {"provider": "fal", "seeds": [5]})
    pictures = 2 * LIKENESS_PROMPT_SETS["likeness-v1"]  # with the LoRA and without, 1 seed
    each = megapixels(*IMAGE_SIZES[LIKENESS_IMAGE_SIZE]) * 0.035  # flux-lora's price per megapixel
    assert plan["estimateUsd"] == pytest.approx(pictures * each)
    assert "megapixel" in plan["estimate"]


@pytest.mark.asyncio
async def test_a_video_lora_is_not_estimated_for_flux_pictures(tmp_path: Path) -> None:
    """Evaluate again of a Wan LoRA is refused before any estimate (issue 77: it estimated $0.84 of
    fal-ai/flux-lora, pictures a Wan LoRA does not load), in the words a LoraEvaluation gets."""
    answer = await _evaluate(tmp_path, {}, baseModel="wan-2.1-t2v-1.3b")
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["message"].startswith(
        "v1 of default/jesse-avatar is a Wan 2.1 T2V 1.3B LoRA (training.baseModel wan-2.1-t2v-1.3b): a "
        "likeness evaluation draws pictures with FLUX, which a Wan 2.1 T2V 1.3B LoRA does not load"
    )
    assert "estimateUsd" not in answer.text


def test_a_video_loras_versions_are_not_compared_with_pictures() -> None:
    """A comparison draws each version's picture with FLUX: a Wan LoRA's is refused before any
    ImageGeneration is made, in loraRef's words (issue 77)."""
    from contentgen.httpapi.manifests import CompareRequest, Invalid, compare

    doc = lora_doc("a-lora", name="jesse-walks", versions=2)  # v1 FLUX.1, v2 a Wan LoRA
    doc["versions"][-1]["baseModel"] = "wan-2.2-t2v-a14b"
    with pytest.raises(Invalid) as refused:
        compare(doc, CompareRequest(prompt="dmavatar waves"))
    [problem] = refused.value.problems
    assert problem.field == "versions"
    assert problem.message.startswith(
        f"v{doc['versions'][-1]['version']} of jesse-walks is a Wan 2.2 A14B T2V LoRA"
    )
    doc["versions"] = doc["versions"][:-1]  # its FLUX.1 versions compare as before
    assert len(compare(doc, CompareRequest(prompt="dmavatar waves"))[1]) == len(doc["versions"])
