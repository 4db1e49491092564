"""The operator's decisions as tests drive them: an observed resource, its Job, the status after a
decision, a condition's reason and status (tests/controller)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from contentgen.api import (
    KINDS,
    LoraVersion,
    RunResult,
)
from contentgen.controller.decide import Decision, Observed
from contentgen.controller.observe import JobState, LoraState, UsableVersion
from tests.harness.conditions import condition, reason  # noqa: F401 (reason re-exported)

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


UID = "0b7f1f3e-aaaa-4bbb-8ccc-123456789abc"


SHA = "ab" * 32


JOB = "demo-lt-0b7f1f3e"  # naming.job_name of the LoraTraining `demo`, less its generation


# The labels of a Job of version 0.1's operator, as this one reads them (naming.labels).
LABELS = {
    "app.kubernetes.io/managed-by": "contentgen-operator",
    "contentgen.io/kind": "LoraTraining",
    "contentgen.io/uid": UID,
    "contentgen.io/generation": "1",
    "contentgen.io/version": "1",
}


def resource(
    kind: str = "LoraTraining", generation: int = 1, status: dict[str, Any] | None = None, **spec: Any
) -> Observed:
    base: dict[str, Any] = {"owner": "alice", "provider": "offline"}
    if kind == "LoraTraining":
        base.update(source={"url": "s3://bkt/v.mp4"}, triggerWord="tw")
    elif kind == "ImageGeneration":
        base.update(prompt="p", model="flux-dev")
    else:
        base.update(source={"url": "s3://bkt/a.mp3"})
    base.update(spec)
    return Observed(KINDS[kind], "demo", "ns", UID, generation, base, status or {})


def job(generation: int = 1, *, version: int = 1, **state: Any) -> JobState:
    return JobState(
        name=f"{JOB}-g{generation}", namespace="ns", uid=UID, generation=generation, version=version, **state
    )


def lora_result(version: int, generation: int) -> RunResult:
    return RunResult(
        kind="LoraTraining",
        provider="offline",
        generation=generation,
        placeholder=True,
        version=version,
        lora=LoraVersion(
            version=version,
            model_uri=f"s3://bkt/loras/alice/{UID}/v{version}/model.safetensors",
            size_bytes=10,
            sha256=SHA,
            provider="offline",
            trigger_word="tw",
            frames=8,
            generation=generation,
            created_at=NOW,
        ),
    )


def apply(res: Observed, decision: Decision) -> Observed:
    """The resource after the operator patched its status."""
    return replace(res, status=decision.status)


def cond(status: dict[str, Any], type_: str) -> str:
    return str(condition(status, type_)["status"])


LORA_REF = [{"loraRef": {"name": "style"}, "scale": 0.7}]


def listed_lora(version: int, model_uri: str, **fields: Any) -> dict[str, Any]:
    """A version in a LoraTraining's status as the API server holds one (its CRD requires
    createdAt, sizeBytes, sha256 and triggerWord), with `fields` (wire names) over them."""
    required = {"createdAt": "2026-11-21T12:00:00Z", "sizeBytes": 1, "sha256": SHA, "triggerWord": ""}
    return {"version": version, "modelUri": model_uri, **required, **fields}


def listed_image(uri: str) -> dict[str, Any]:
    """An image in an ImageGeneration's status version as the API server holds one."""
    return {"uri": uri, "width": 1024, "height": 1024, "sizeBytes": 1, "sha256": SHA}


def pinned(version: int) -> list[dict[str, object]]:
    return [{"loraRef": {"name": "style", "version": version}, "scale": 0.5}]


URI = "s3://bkt/loras/alice/lora-uid/v{}/model.safetensors"


DATASET = "s3://bkt/datasets/alice/lora-uid/v{}/dataset.zip"


def trained(provider: str = "fal", *, dataset: bool = True, owner: str = "alice") -> LoraState:
    """A LoraTraining with versions 1 and 3 (2 was deleted), trained on `provider`."""
    usable = tuple(
        UsableVersion(n, URI.format(n), provider, "dmavatar", DATASET.format(n) if dataset else "")
        for n in (1, 3)
    )
    return LoraState(
        "avatar",
        owner,
        "Succeeded",
        3,
        URI.format(3),
        uid="lora-uid",
        model_uris=tuple((v.number, v.model_uri) for v in usable),
        usable=usable,
    )


def evaluation(version: int | None = None, **spec: object) -> object:
    ref: dict[str, object] = {"name": "avatar"} | ({"version": version} if version else {})
    fields = {"loraRef": ref, "evaluation": {"promptSet": "likeness-v1", "seeds": [3, 4]}, **spec}
    res = resource("LoraEvaluation", **fields)
    res.spec.pop("provider")  # unset: the version's
    res.spec.update({k: v for k, v in spec.items() if k == "provider"})
    return res
