"""The install values of issue 13: worker scheduling, the store's public endpoint, the API's
Ingress, and the commands `make images` runs."""

from __future__ import annotations

from typing import Any

from contentgen.api import SpecSnapshot
from contentgen.controller.jobs import render_job
from scripts import images
from tests.chart.conftest import (
    API,
    EVERYTHING,
    of_kind,
    operator_settings,
    render,
    settings_env,
    template_error,
)
from tests.conftest import ROOT

SNAPSHOT = SpecSnapshot(
    kind="LoraTraining",
    name="x",
    uid="u-1",
    version=1,
    spec={"owner": "a", "provider": "offline", "source": {"url": "s3://b/v.mp4"}, "triggerWord": "t"},
)


def test_worker_scheduling_values_reach_every_job() -> None:
    settings = operator_settings(settings_env(render(EVERYTHING)))
    pod = render_job(SNAPSHOT, settings)["spec"]["template"]["spec"]
    worker = EVERYTHING["worker"]
    assert pod["nodeSelector"] == worker["nodeSelector"]
    assert pod["tolerations"] == worker["tolerations"]
    assert pod["affinity"] == worker["affinity"]
    assert pod["priorityClassName"] == "batch-low"
    assert pod["terminationGracePeriodSeconds"] == 90  # SIGTERM to SIGKILL; the cleanup waits as long
    # Per kind: the resources of that kind's Jobs.
    assert pod["containers"][0]["resources"]["requests"]["cpu"] == "2"


def test_no_scheduling_fields_by_default() -> None:
    pod = render_job(SNAPSHOT, operator_settings(settings_env(render())))["spec"]["template"]["spec"]
    assert not {"nodeSelector", "tolerations", "affinity", "priorityClassName"} & set(pod)
    assert pod["terminationGracePeriodSeconds"] == 30  # the chart's, and Kubernetes', default


def test_the_public_endpoint_signs_the_links_of_the_api_and_the_workers() -> None:
    docs = render(EVERYTHING)
    settings = operator_settings(settings_env(docs))
    assert settings.store_public_endpoint_url == "https://s3.example.com"
    env = {
        e["name"]: e.get("value")
        for e in render_job(SNAPSHOT, settings)["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert env["CONTENTGEN_STORE_PUBLIC_ENDPOINT_URL"] == "https://s3.example.com"
    assert env["AWS_ENDPOINT_URL"] == "http://minio.storage:9000"  # uploads stay in the cluster
    api = next(d for d in of_kind(docs, "Deployment") if d["metadata"]["name"].endswith("-api"))
    api_env = {e["name"]: e.get("value") for e in api["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert api_env["CONTENTGEN_STORE_PUBLIC_ENDPOINT_URL"] == "https://s3.example.com"


def test_an_ingress_for_the_api_when_asked() -> None:
    assert of_kind(render({"api": EVERYTHING["api"], "mongodb": {"existingSecret": "m"}}), "Ingress")
    assert not of_kind(render(), "Ingress")
    (ingress,) = of_kind(render(EVERYTHING), "Ingress")
    spec = ingress["spec"]
    assert spec["ingressClassName"] == "nginx"
    assert spec["tls"] == [{"secretName": "contentgen-tls", "hosts": ["contentgen.example.com"]}]
    (rule,) = spec["rules"]
    assert rule["host"] == "contentgen.example.com"
    (path,) = rule["http"]["paths"]
    assert path["path"] == "/" and path["backend"]["service"] == {
        "name": "contentgen-api",
        "port": {"name": "http"},
    }
    assert ingress["metadata"]["annotations"] == {"nginx.ingress.kubernetes.io/proxy-buffering": "off"}


def test_ingress_tls_needs_its_secret() -> None:
    message = template_error(
        "--set",
        "api.enabled=true,api.tokensSecret.name=t,mongodb.existingSecret=m,"
        "api.ingress.enabled=true,api.ingress.tls.enabled=true",
    )
    assert "api.ingress.tls.secretName" in message


# --- make images -----------------------------------------------------------------------------------


def test_the_build_commands_tag_the_images_as_the_chart_names_them() -> None:
    tagged = "registry.example.com/team/contentgen"
    assert images.build_commands("podman", "registry.example.com/team/", "1.2.3") == [
        ["podman", "build", "--file", "Dockerfile", "--tag", f"{tagged}:1.2.3", "."],
        ["podman", "build", "--file", "worker-image/Dockerfile", "--tag", f"{tagged}-worker:1.2.3", "."],
        [
            "podman",
            "build",
            "--file",
            "worker-image/gpu.Dockerfile",
            "--tag",
            f"{tagged}-worker-gpu:1.2.3",
            ".",
        ],
    ]
    assert images.push_commands("docker", "ghcr.io/contentgen", "0.1.0") == [
        ["docker", "push", "ghcr.io/contentgen/contentgen:0.1.0"],
        ["docker", "push", "ghcr.io/contentgen/contentgen-worker:0.1.0"],
        ["docker", "push", "ghcr.io/contentgen/contentgen-worker-gpu:0.1.0"],
    ]
    values = render()
    deployment = of_kind(values, "Deployment")[0]
    assert (
        deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        == "ghcr.io/contentgen/contentgen:0.1.0"
    )
    assert (
        operator_settings(settings_env(values)).worker_image == "ghcr.io/contentgen/contentgen-worker:0.1.0"
    )
    for dockerfile in images.IMAGES.values():
        assert (ROOT / dockerfile).is_file()


NODE_LOSS = ("node.kubernetes.io/unreachable", "node.kubernetes.io/not-ready")


def _deployments(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    deployments = of_kind(render(values), "Deployment")
    return {d["metadata"]["name"]: d["spec"]["template"]["spec"] for d in deployments}


def test_the_operator_and_the_api_leave_a_lost_node_within_30_seconds_not_five_minutes() -> None:
    """A single operator replica on a node that stops answering reconciles nothing until its pod is
    evicted: 300 s by the API server's default toleration, 30 s by the chart's. Given tolerations
    are kept, the node-loss ones added after them; null leaves the API server's default."""
    for values in (API, EVERYTHING):
        pods = _deployments(values)
        assert len(pods) == 2, pods.keys()  # the operator's and the API's
        for name, pod in pods.items():
            tolerations = pod["tolerations"]
            part: Any = values["api"] if name.endswith("-api") else values
            theirs = part.get("tolerations") or []
            assert tolerations[: len(theirs)] == theirs, name
            lost = {t["key"]: t for t in tolerations if t.get("effect") == "NoExecute"}
            assert set(lost) == set(NODE_LOSS), name
            assert all(t["tolerationSeconds"] == 30 and t["operator"] == "Exists" for t in lost.values())
    for pod in _deployments({**API, "nodeLossTolerationSeconds": 5}).values():
        assert {t["tolerationSeconds"] for t in pod["tolerations"]} == {5}
    for pod in _deployments({**API, "nodeLossTolerationSeconds": None}).values():
        assert "tolerations" not in pod  # the API server adds its 300 s
    assert "nodeLossTolerationSeconds" in template_error("--set", "nodeLossTolerationSeconds=-1")
