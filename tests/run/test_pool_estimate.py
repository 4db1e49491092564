"""A run made outside the operator (`contentgen run`, `contentgen api --local`) whose worker hands
its pictures to a warm pool (CONTENTGEN_CLUSTER_POOL_URL) is estimated as the operator estimates a
Job its pool draws: without the base model's load. `denoising: job` is drawn by its own worker, and
estimated with the load, as in a cluster (issue 47)."""

from __future__ import annotations

from typing import Any

import pytest

from contentgen.api import SpecSnapshot
from contentgen.controller.settings import ClusterPool, OperatorSettings
from contentgen.pipeline.settings import PipelineSettings
from contentgen.pricing import expected_gpu_seconds

POOL = "http://contentgen-pool-flux-dev.contentgen.svc:8090"


def spec(**extra: Any) -> dict[str, Any]:
    snapshot = SpecSnapshot(
        kind="ImageGeneration",
        name="drawn",
        uid="u",
        version=1,
        spec={"owner": "alice", "provider": "cluster", "prompt": "a fox", "numImages": 3, **extra},
    )
    return snapshot.priced_spec()


def test_a_local_run_a_pool_draws_is_estimated_as_the_operator_estimates_its_pooled_job(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("CONTENTGEN_CLUSTER_POOL_URL", raising=False)
    alone = PipelineSettings().prices
    monkeypatch.setenv("CONTENTGEN_CLUSTER_POOL_URL", POOL)
    pointed = PipelineSettings().prices
    cluster = alone.cluster
    load, pictures = cluster.startup_seconds, 3 * cluster.image_seconds
    assert load > 0
    assert expected_gpu_seconds("ImageGeneration", spec(), alone) == pytest.approx(load + pictures)
    assert expected_gpu_seconds("ImageGeneration", spec(), pointed) == pytest.approx(pictures)
    for model in ("flux-lora", "flux-schnell"):
        assert expected_gpu_seconds("ImageGeneration", spec(model=model), pointed) < load
    # `denoising: job`: its own worker draws, and loads
    assert expected_gpu_seconds("ImageGeneration", spec(denoising="job"), pointed) == pytest.approx(
        load + pictures
    )
    # as the operator estimates the Job its pool draws
    monkeypatch.delenv("CONTENTGEN_CLUSTER_POOL_URL")
    operator = OperatorSettings(
        cluster_pools=[ClusterPool(name="flux-dev", base_model="FLUX.1-dev", url=POOL)],
        cluster_denoising="pool",
    )
    assert expected_gpu_seconds("ImageGeneration", spec(), operator.prices) == pytest.approx(
        expected_gpu_seconds("ImageGeneration", spec(), pointed)
    )


def test_denoising_job_asks_the_worker_to_draw_its_pictures_itself(tmp_path: Any) -> None:
    """What the worker's provider is asked (tests/cluster/test_pool.py: a provider asked so draws
    in its own process though a pool is named)."""
    from contextlib import contextmanager

    from contentgen.pipeline import images
    from contentgen.store import LocalStore

    class Ctx:
        local = True
        settings = PipelineSettings()
        store = LocalStore(tmp_path)

        def __init__(self, **extra: Any) -> None:
            self.snapshot = SpecSnapshot(
                kind="ImageGeneration",
                name="drawn",
                uid="u",
                version=1,
                spec={"owner": "alice", "provider": "cluster", "prompt": "a fox", **extra},
            )

        @contextmanager
        def stage(self, *_: Any) -> Any:
            yield

    asked = {}
    for denoising in ("", "pool", "job"):
        ctx = Ctx(**({"denoising": denoising} if denoising else {}))
        asked[denoising] = images._prepare(ctx, images._spec(ctx)).drawn_here  # type: ignore[arg-type]
    assert asked == {"": False, "pool": False, "job": True}
