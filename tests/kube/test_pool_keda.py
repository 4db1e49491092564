"""The warm pool's scaling to zero and back by the real KEDA (v2.21.0, its operator built from its Go
module and run as the cluster's process: localcluster/managers.py), on a local cluster's real node
with one GPU: the chart's pool Deployment, Service and ScaledObject as it renders them for an
install that watches its own namespace (`pools.keda.trigger` workload, KEDA's kubernetes-workload
scaler: nothing but KEDA's operator), the pool's container the probe serving HTTP on the pool's
port in place of the GPU worker image (this test scales, it does not draw: test_pool_chart.py runs
the pool itself). KEDA takes the Deployment to zero; a Job's pod labelled for the pool, as the
operator labels a pooled Job's, waits for it; KEDA scales the pool to one, the pool's pod answers
the Job's request, and once the Job's pod has ended KEDA takes the pool back to zero after the
cooldown (set short here). KEDA's own Events say each step.

Only KEDA's operator runs: it takes a workload from zero to one and back itself; from one pod to
more, the HorizontalPodAutoscaler it makes reads KEDA's metrics apiserver, which is not run here
(a pool of `replicas: 1` never asks it)."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from contentgen.controller.denoising import LABEL_POOL
from localcluster import LocalCluster, Options
from localcluster.client import Client
from localcluster.node import host, ociimage
from scripts import chart
from tests import waiting

SKIP_REASON = host.suite_skip_reason()
pytestmark = [pytest.mark.skipif(bool(SKIP_REASON), reason=SKIP_REASON or "-"), pytest.mark.timeout(600)]

NS = chart.NAMESPACE  # the release's namespace: where the chart puts the pool, and the Jobs run
POOL = "flux-dev"
NAME = f"{chart.RELEASE}-pool-{POOL}"
PORT = 8090
POLLING_S, COOLDOWN_S = 2, 10
SMALL = {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}}
VALUES = {
    "watchNamespaces": [NS],
    "pools": {
        "items": [{"name": POOL, "baseModel": "FLUX.1-dev", "replicas": 1, "resources": SMALL}],
        "keda": {"enabled": True, "pollingSeconds": POLLING_S, "cooldownSeconds": COOLDOWN_S},
    },
}
DEPLOYMENT = f"/apis/apps/v1/namespaces/{NS}/deployments/{NAME}"
SCALED_OBJECT = f"/apis/keda.sh/v1alpha1/namespaces/{NS}/scaledobjects/{NAME}"


def wait_for(check: Callable[[], Any], timeout: float, what: str | Callable[[], str]) -> Any:
    return waiting.wait_for(check, timeout, what, interval=0.5)  # KEDA looks every POLLING_S


def pool_objects() -> list[dict[str, Any]]:
    """The chart's pool where the cluster serves KEDA's ScaledObject, its container the probe."""
    with tempfile.NamedTemporaryFile("w", suffix=".json") as values:
        values.write(json.dumps(VALUES))
        values.flush()
        text = chart.template("--values", values.name, "--api-versions", "keda.sh/v1alpha1/ScaledObject")
    docs = [d for d in yaml.safe_load_all(text) if d and d["metadata"]["name"] in (NAME, f"{NAME}-pods")]
    assert sorted(d["kind"] for d in docs) == ["Deployment", "ScaledObject", "Service", "Service"]
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    container.update(image=ociimage.PROBE_IMAGE, imagePullPolicy="Never", args=["serve", str(PORT)])
    return docs


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    root = tmp_path_factory.mktemp("keda")
    options = Options(
        root / "cluster",
        image_archives=[ociimage.probe_archive(root / "probe.tar")],
        gpus=1,
        controllers=("keda",),
    )
    cluster = LocalCluster(options).start()
    client = cluster.client()
    try:
        client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}})
        yield client
    finally:
        client.close()
        cluster.stop()


def replicas(api: Client) -> int:
    return int(api.get(DEPLOYMENT)["spec"].get("replicas", 0))


def pool_pods(api: Client) -> list[dict[str, Any]]:
    selector = f"{LABEL_POOL}={POOL},app.kubernetes.io/component=pool"
    return list(api.get(f"/api/v1/namespaces/{NS}/pods", labelSelector=selector)["items"])


def keda_events(api: Client) -> list[tuple[str, str]]:
    """KEDA's Events on the ScaledObject, oldest first: (reason, message)."""
    events = api.get(
        f"/api/v1/namespaces/{NS}/events",
        fieldSelector=f"involvedObject.kind=ScaledObject,involvedObject.name={NAME}",
    )["items"]
    events.sort(key=lambda e: e.get("eventTime") or e.get("firstTimestamp") or "")
    return [(e["reason"], e.get("message", "")) for e in events if e["reason"].startswith("KEDAScaleTarget")]


def conditions(api: Client) -> dict[str, str]:
    """The ScaledObject's conditions by type: their status ("True", "False", "Unknown")."""
    status = api.get(SCALED_OBJECT).get("status") or {}
    return {c["type"]: c["status"] for c in status.get("conditions") or []}


def waiting_job(name: str) -> dict[str, Any]:
    """A Job whose pod, labelled for the pool as the operator labels a pooled Job's, asks the pool's
    Service until it answers (a second apart: the hang guard is the test's)."""
    url = f"http://{NAME}.{NS}.svc:{PORT}/"
    pod = {
        "metadata": {"labels": {LABEL_POOL: POOL}},
        "spec": {
            "restartPolicy": "Never",
            "terminationGracePeriodSeconds": 1,
            "containers": [
                {
                    "name": "worker",
                    "image": ociimage.PROBE_IMAGE,
                    "imagePullPolicy": "Never",
                    "args": ["get", url, "300"],
                    "resources": SMALL,
                }
            ],
        },
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": NS},
        "spec": {"backoffLimit": 0, "template": pod},
    }


def test_keda_scales_the_charts_pool_to_one_for_a_waiting_job_and_back_to_zero(api: Client) -> None:
    for doc in pool_objects():
        api.apply(doc)
    # The Deployment comes with no replicas of its own (one, by default) and nothing waits: KEDA
    # takes it to zero.
    wait_for(lambda: replicas(api) == 0 and not pool_pods(api), 120, "KEDA to scale the idle pool to zero")
    # KEDA says Active False after it has scaled (its executor sets the condition once the scale is
    # written: CI on 11-30 read it Unknown in between), and Ready stays True throughout.
    wait_for(
        lambda: conditions(api).get("Active") == "False",
        60,
        lambda: f"KEDA's Active condition False: {conditions(api)}",
    )
    assert conditions(api).get("Ready") == "True", api.get(SCALED_OBJECT)["status"]

    api.create(f"/apis/batch/v1/namespaces/{NS}/jobs", waiting_job("pooled"))
    wait_for(lambda: replicas(api) == 1, 120, "KEDA to scale the pool to one for the waiting Job")

    def succeeded() -> bool:
        status = api.get(f"/apis/batch/v1/namespaces/{NS}/jobs/pooled").get("status") or {}
        assert not status.get("failed"), status
        return bool(status.get("succeeded"))

    wait_for(succeeded, 180, "the Job's request to be answered")
    (pod,) = api.get(f"/api/v1/namespaces/{NS}/pods", labelSelector="batch.kubernetes.io/job-name=pooled")[
        "items"
    ]
    (served_by,) = [p["metadata"]["name"] for p in pool_pods(api)]
    log = api.text(f"/api/v1/namespaces/{NS}/pods/{pod['metadata']['name']}/log")
    assert f"hello from {served_by}" in log  # the pool's pod answered it

    # The Job's pod has ended (Succeeded: not counted); the pool is idle for the cooldown, then KEDA
    # takes it back to zero.
    wait_for(lambda: replicas(api) == 0 and not pool_pods(api), 120, "KEDA to scale the pool back to zero")
    events = keda_events(api)
    assert [reason for reason, _ in events] == [
        "KEDAScaleTargetDeactivated",
        "KEDAScaleTargetActivated",
        "KEDAScaleTargetDeactivated",
    ], events
    assert "from 1 to 0" in events[0][1] and "from 1 to 0" in events[2][1], events
    assert "from 0 to 1, triggered by" in events[1][1] and "workload" in events[1][1], events
