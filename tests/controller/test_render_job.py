"""`contentgen render-job` prints what the operator makes (issue 79): for a LoraTraining of
provider cluster on one node (a Job of several GPUs under torchrun), across nodes (a JobSet, a
Kubeflow Trainer TrainJob), with its namespace's Kueue queue, and for each thing the chart says no
node or controller can give (TooManyGpus, BackendUnavailable), the command's output is what the
operator's own reconciler does with the same manifest and settings: the object `_start_job`
creates, or the reason and message of the status it holds the resource with. The operator's side
starts from the resource as the real kube-apiserver stores it (its CRD's defaults and pruning);
the settings are the chart's, read from the environment by both."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from contentgen.api import KINDS
from contentgen.api.crd import crd
from contentgen.cli.main import main
from contentgen.cli.render_job import EXIT_HELD
from contentgen.controller.decide import Observed, World, decide, run_provider
from contentgen.controller.job_admission import Backoff, NamespaceQueue
from contentgen.controller.kube import Kube
from contentgen.controller.reconciler import _gpus_refused, _start_job
from contentgen.controller.settings import OperatorSettings
from contentgen.controller.state import Operator
from tests.admission import admit
from tests.harness.conditions import condition
from tests.harness.controller import NOW

UID = "4b1f6f3e-2c1a-4e8e-9a51-0c1d2e3f4a5b"
NAMESPACE, QUEUE = "team-a", "team-a-gpus"
# the chart's values as its ConfigMap hands them to the operator
CHART = {
    "CONTENTGEN_GPU_TRAINING__BACKENDS": json.dumps(["job", "jobset", "trainjob"]),
    "CONTENTGEN_GPU_TRAINING__GPUS_PER_NODE": "4",
    "CONTENTGEN_GPU_TRAINING__MAX_NODES": "3",
    "CONTENTGEN_QUEUE_NAME": "gpus",
    "CONTENTGEN_STORE": "s3://contentgen",
    "CONTENTGEN_S3_SECRET": "contentgen-s3",
    "CONTENTGEN_CLUSTER_MODELS": json.dumps({"persistentVolumeClaim": "flux-weights"}),
}
MADE: dict[str, tuple[dict[str, Any], str]] = {  # resources -> the kind of object the operator makes
    "one node, two GPUs": ({"gpus": 2}, "Job"),
    "three nodes": ({"gpus": 2, "nodes": 3}, "JobSet"),
    "a TrainJob": ({"gpus": 1, "nodes": 2, "backend": "trainjob"}, "TrainJob"),
    "one node asked of Trainer": ({"gpus": 4, "backend": "trainjob"}, "TrainJob"),
}
JOBSET_ONLY = {"CONTENTGEN_GPU_TRAINING__BACKENDS": json.dumps(["job", "jobset"])}
REFUSED: dict[str, tuple[dict[str, Any], str, dict[str, str]]] = {
    "more GPUs than a node holds": ({"gpus": 8}, "TooManyGpus", {}),
    "more nodes than the cluster gives": ({"gpus": 1, "nodes": 4}, "TooManyGpus", {}),
    "a backend the cluster runs not": (
        {"nodes": 2, "backend": "trainjob"},
        "BackendUnavailable",
        JOBSET_ONLY,
    ),
    "auto, where the chart's backend is not run": (
        {"nodes": 2},
        "BackendUnavailable",
        JOBSET_ONLY | {"CONTENTGEN_GPU_TRAINING__BACKEND": "trainjob"},
    ),
}


def manifest(resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "contentgen.io/v1alpha1",
        "kind": "LoraTraining",
        "metadata": {"name": "gang", "namespace": NAMESPACE, "uid": UID, "generation": 1},
        "spec": {
            "owner": "alice",
            "provider": "cluster",
            "source": {"url": "https://media.example.com/alice.mp4"},
            "triggerWord": "alicetw",
            "resources": resources,
        },
    }


class Api:
    """The API server as `_start_job` meets it: every create accepted and kept, the namespace's
    labels naming its Kueue queue."""

    def __init__(self) -> None:
        self.created: list[dict[str, Any]] = []

    async def create_job(self, made: dict[str, Any]) -> bool:
        self.created.append(made)
        return True

    async def create_named(self, path: str, made: dict[str, Any]) -> bool:
        assert path.endswith(f"/namespaces/{NAMESPACE}/{made['kind'].lower()}s")
        self.created.append(made)
        return True

    async def namespace_metadata(self, namespace: str) -> tuple[dict[str, str], dict[str, str]]:
        return {}, {"contentgen.io/queue-name": QUEUE}


def as_operated(doc: dict[str, Any]) -> tuple[dict[str, Any] | None, tuple[str, str]]:
    """What the operator's reconciler does with `doc` as stored: (the object it creates, or None;
    the reason and message of its status)."""
    stored, errors = admit(crd(KINDS["LoraTraining"]), doc)
    assert errors == []
    op = Operator(
        settings=OperatorSettings(manage_worker_access=False),
        kube=Kube.__new__(Kube),
        queue=NamespaceQueue(2),
        backoff=Backoff(1.0),
    )
    api = Api()
    op.kube = api  # type: ignore[assignment]
    meta = doc["metadata"]
    res = Observed(KINDS["LoraTraining"], meta["name"], NAMESPACE, UID, 1, stored["spec"], {})
    refused = _gpus_refused(op, res, run_provider(res.spec, {}))
    decision = decide(res, World(now=NOW, gpus_refused=refused))
    ready = condition(decision.status, "Ready")
    if decision.job is not None:
        asyncio.run(_start_job(op, decision.job))
    made = api.created[0] if api.created else None
    assert len(api.created) <= 1
    return made, (ready["reason"], decision.state.message)


def rendered(tmp_path: Path, doc: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    path = tmp_path / "gang.yaml"
    path.write_text(yaml.safe_dump(doc))
    code = main(["render-job", "--namespace-queue", QUEUE, str(path)])
    said = capsys.readouterr()
    return code, said.out, said.err


@pytest.fixture(autouse=True)
def chart_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in CHART.items():
        monkeypatch.setenv(name, value)


@pytest.mark.parametrize("case", MADE, ids=str)
def test_render_job_prints_the_object_the_operator_creates(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    resources, kind = MADE[case]
    doc = manifest(resources)
    made, _ = as_operated(doc)
    code, out, _ = rendered(tmp_path, doc, capsys)
    assert code == 0 and made is not None
    printed = yaml.safe_load(out)
    assert printed["kind"] == made["kind"] == kind
    assert printed == made
    # the namespace's queue, over the chart's
    assert made["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == QUEUE


@pytest.mark.parametrize("case", REFUSED, ids=str)
def test_render_job_says_why_the_operator_creates_nothing(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    resources, reason, chart = REFUSED[case]
    for name, value in chart.items():
        monkeypatch.setenv(name, value)
    doc = manifest(resources)
    made, (held, message) = as_operated(doc)
    code, out, err = rendered(tmp_path, doc, capsys)
    assert made is None and held == reason
    assert (code, out) == (EXIT_HELD, "")
    assert err == (
        f"{tmp_path / 'gang.yaml'}: the operator creates nothing for LoraTraining {NAMESPACE}/gang: "
        f"Pending, {reason}: {message}\n"
    )
