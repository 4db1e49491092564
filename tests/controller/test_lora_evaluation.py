"""A LoraEvaluation's decisions: its loraRef resolved as an ImageGeneration's (waiting, refused,
pinned), the resolved version carried in the snapshot, the provider it runs on (the spec's, else
the version's: its credentials, its GPU Job), its estimate (the baseline counted unless stored),
and its result recorded as a version of its own."""

from __future__ import annotations

import pytest

from contentgen.api import EvaluatedLora, EvaluationVersion, Likeness, RunResult
from contentgen.controller.decide import World, decide, lora_refs, run_provider
from contentgen.controller.jobs import render_job
from contentgen.controller.observe import LoraState, UsableVersion, lora_state
from contentgen.controller.settings import OperatorSettings
from contentgen.pricing import PriceTable, estimated
from tests.harness.controller import (
    DATASET,
    NOW,
    URI,
    apply,
    cond,
    evaluation,
    job,
    listed_lora,
    reason,
    trained,
)


def test_the_latest_version_is_evaluated_with_the_provider_that_trained_it() -> None:
    res = evaluation()
    d = decide(res, World(now=NOW, loras={"avatar": trained("offline")}))
    assert d.job is not None and reason(d.status) == "JobCreated"
    assert d.job.lora == EvaluatedLora(
        name="avatar",
        uid="lora-uid",
        version=3,
        model_uri=URI.format(3),
        provider="offline",
        trigger_word="dmavatar",
        dataset_uri=DATASET.format(3),
    )
    assert "provider" not in d.job.spec  # the Job runs the user's spec; the snapshot says the provider
    assert d.job.provider == "offline" and d.job.priced_spec()["provider"] == "offline"
    pinned = decide(evaluation(1, provider="fal"), World(now=NOW, loras={"avatar": trained("offline")}))
    assert pinned.job is not None and (pinned.job.lora.version, pinned.job.provider) == (1, "fal")


@pytest.mark.parametrize(
    ("lora", "version", "waiting", "stalled", "said"),
    [
        (None, None, "LoraNotFound", "True", "there is no LoraTraining 'avatar' in namespace ns"),
        (trained(owner="mallory"), None, "LoraOwnerMismatch", "True", "not 'alice' (spec.owner)"),
        (
            LoraState("avatar", "alice", "Running", 0, ""),
            None,
            "LoraNotReady",
            "False",
            "no trained version yet",
        ),
        (trained(), 2, "LoraVersionNotFound", "True", "has no usable version 2 (usable versions: v1, v3)"),
        (trained(dataset=False), None, "LoraNotEvaluable", "True", "names no dataset archive"),
    ],
)
def test_a_version_it_cannot_evaluate_waits_and_says_why(
    lora: LoraState | None, version: int | None, waiting: str, stalled: str, said: str
) -> None:
    d = decide(evaluation(version), World(now=NOW, loras={"avatar": lora}))
    assert d.job is None and d.waiting == waiting and reason(d.status) == waiting
    assert cond(d.status, "Stalled") == stalled and said in d.status["message"]
    assert d.status["phase"] == "Pending"


def test_the_provider_and_its_credentials_come_from_the_resolved_version() -> None:
    loras = {"avatar": trained("fal")}
    assert run_provider(evaluation().spec, loras) == "fal"
    assert run_provider(evaluation(1, provider="cluster").spec, loras) == "cluster"
    assert run_provider(evaluation().spec, {"avatar": None}) == ""  # nothing to run yet
    assert lora_refs(evaluation(1).spec) == [{"name": "avatar", "version": 1}]
    # the operator without fal's Secret holds it, naming the provider it would have used
    d = decide(evaluation(), World(now=NOW, loras=loras, missing_credentials="FAL_KEY"))
    assert d.waiting == "MissingCredentials" and "for provider 'fal'" in d.status["message"]


def test_a_cluster_evaluation_runs_as_a_gpu_job_of_its_kind() -> None:
    settings = OperatorSettings(store="s3://bkt")
    d = decide(evaluation(provider="cluster"), World(now=NOW, loras={"avatar": trained("cluster")}))
    assert d.job is not None
    container = render_job(d.job, settings)["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == settings.gpu_worker_image
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert container["resources"]["requests"]["memory"] == "24Gi"  # the kind's own defaults
    two = OperatorSettings(store="s3://bkt", gpu_jobs={"LoraEvaluation": {"count": 2}})  # gpu.jobs
    assert (
        render_job(d.job, two)["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"][
            "nvidia.com/gpu"
        ]
        == "2"
    )
    # its version's provider when the spec names none: a LoRA trained on the cluster is evaluated there
    unnamed = decide(evaluation(), World(now=NOW, loras={"avatar": trained("cluster")}))
    assert unnamed.job is not None
    job_manifest = render_job(unnamed.job, settings)
    assert job_manifest["metadata"]["annotations"]["contentgen.io/provider"] == "cluster"
    env = {e["name"] for e in job_manifest["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert "CONTENTGEN_GPU_COUNT" in env
    fal = render_job(decide(evaluation(), World(now=NOW, loras={"avatar": trained("fal")})).job, settings)
    assert fal["spec"]["template"]["spec"]["containers"][0]["image"] == settings.worker_image


def test_its_estimate_counts_the_baseline_unless_it_is_stored() -> None:
    """likeness-v1's six prompts × two seeds with the LoRA, and as many without it unless cached:
    24 or 12 one-megapixel pictures on fal."""
    prices = PriceTable()
    lora = {"avatar": trained("fal")}
    full = decide(evaluation(), World(now=NOW, loras=lora, prices=prices)).status["cost"]
    cached = decide(evaluation(), World(now=NOW, loras=lora, prices=prices, baseline_cached=True)).status[
        "cost"
    ]
    per_picture = prices.price("fal", "fal-ai/flux-lora", "megapixel")
    assert per_picture > 0
    assert full["estimatedUsd"] == pytest.approx(24 * per_picture)
    assert cached["estimatedUsd"] == pytest.approx(12 * per_picture)
    assert "24 megapixels of fal-ai/flux-lora" in full["detail"]
    # on the cluster: GPU time for the pictures, with the Job's start
    spec = {"provider": "cluster", "evaluation": {"seeds": [1]}}
    gpu = estimated("LoraEvaluation", spec, prices, None).estimated_usd
    gpu_cached = estimated("LoraEvaluation", spec, prices, None, baseline_cached=True).estimated_usd
    seconds = prices.cluster.startup_seconds + 12 * prices.cluster.image_seconds
    assert gpu == pytest.approx(seconds / 3600 * prices.price("cluster", "likeness-evaluation", "gpu-hour"))
    assert 0 < gpu_cached < gpu


def test_its_result_is_a_version_with_the_report_and_the_lora_evaluated() -> None:
    res = evaluation()
    started = decide(res, World(now=NOW, loras={"avatar": trained("offline")}))
    assert started.job is not None and started.job.lora is not None
    report = Likeness(verdict="no-faces", prompt_set="likeness-v1", seeds=[3, 4], images=12)
    outcome = RunResult(
        kind="LoraEvaluation",
        provider="offline",
        placeholder=True,
        generation=1,
        version=1,
        usage=[],
        evaluation=EvaluationVersion(
            version=1, created_at=NOW, lora=started.job.lora, evaluation=2, likeness=report
        ),
        evaluation_record={"evaluation": 2, "version": 3},
    )
    running = apply(res, started)
    done = decide(running, World(now=NOW, loras={}, jobs=(job(complete=True, succeeded=1),), outcome=outcome))
    status = done.status
    assert status["phase"] == "Succeeded" and reason(status) == "Succeeded"
    assert (status["evaluation"], status["lora"]["version"], status["likeness"]["verdict"]) == (
        2,
        3,
        "no-faces",
    )
    assert [v["version"] for v in status["versions"]] == [1] and status["latestVersion"] == 1
    assert status["message"] == (
        "evaluated version 3 of avatar again as its evaluation e2: no-faces "
        "(offline provider: placeholder outputs)"
    )
    assert done.outcome_recorded is outcome


def test_a_loraevaluation_waits_for_its_loras_events_and_keeps_every_usable_version() -> None:
    body = {
        "metadata": {"name": "avatar", "uid": "lora-uid"},
        "spec": {"owner": "alice"},
        "status": {
            "phase": "Succeeded",
            "latestVersion": 2,
            "versions": [
                listed_lora(1, URI.format(1), provider="fal", triggerWord="t", datasetUri="d"),
                listed_lora(2, URI.format(2), provider="cluster"),
            ],
        },
    }
    state = lora_state(body)
    assert state.version(1) == UsableVersion(1, URI.format(1), "fal", "t", "d")
    assert state.version(2) == UsableVersion(2, URI.format(2), "cluster", "", "")
    assert state.version(3) is None
