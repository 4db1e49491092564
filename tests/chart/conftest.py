"""Rendering the chart for the tests: `helm template` once per set of values per session."""

from __future__ import annotations

import copy
import json
import os
import tempfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml

from contentgen.controller.settings import OperatorSettings
from scripts import chart as chart_files
from scripts.chart import HelmMissing

CHART = chart_files.CHART
RELEASE = chart_files.RELEASE
NAMESPACE = chart_files.NAMESPACE

Doc = dict[str, Any]

# The value sets the tests render (and combinations that change what is rendered).
API = {
    "api": {"enabled": True, "tokensSecret": {"name": "api-tokens"}},
    "mongodb": {"existingSecret": "mongodb"},
}
SECRETS = {
    "s3": {"existingSecret": "s3-credentials"},
    "fal": {"existingSecret": "fal"},
    "assemblyai": {"existingSecret": "assemblyai", "key": "api-key"},
    "mongodb": {"existingSecret": "mongodb"},
    "store": {"url": "s3://bucket/prefix", "endpointUrl": "http://minio.storage:9000", "region": "eu-west-1"},
}
NAMESPACED = {"watchNamespaces": ["team-a", "team-b"]}
EVERYTHING = {
    **SECRETS,
    **API,
    "mongodb": {"existingSecret": "mongodb", "key": "connection"},
    "replicaCount": 3,
    "metrics": {"serviceMonitor": {"enabled": True, "labels": {"release": "prometheus"}}},
    "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/op"}},
    "podLabels": {"team": "platform"},
    "podAnnotations": {"example.com/owner": "platform"},
    "nodeSelector": {"kubernetes.io/os": "linux"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "ops", "effect": "NoSchedule"}],
    "affinity": {
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {
                    "weight": 100,
                    "podAffinityTerm": {
                        "topologyKey": "kubernetes.io/hostname",
                        "labelSelector": {"matchLabels": {"app.kubernetes.io/component": "operator"}},
                    },
                }
            ]
        }
    },
    "priorityClassName": "system-cluster-critical",
    "imagePullSecrets": [{"name": "registry"}],
    "worker": {
        "serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/w"}},
        "imagePullSecrets": ["registry"],
        "nodeSelector": {"pool": "batch"},
        "tolerations": [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}],
        "affinity": {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {
                            "matchExpressions": [
                                {"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}
                            ]
                        }
                    ]
                }
            }
        },
        "priorityClassName": "batch-low",
        "terminationGracePeriodSeconds": 90,
    },
    "gpu": {
        "image": {"repository": "registry.example.com/contentgen-worker-gpu", "tag": "1.2.3"},
        "nodeSelector": {"nvidia.com/gpu.present": "true"},
        "priorityClassName": "gpu-batch",
        "fluxModel": "FLUX.1-dev-2025",
        "fluxSchnellModel": "flux-schnell-fp8",
        "inferenceSteps": 20,
        "whisperBatchSize": 16,
        "jobs": {
            "LoraTraining": {"count": 2, "resourceName": "nvidia.com/gpu", "nodeSelector": {"gpu": "h100"}}
        },
        "models": {"storePrefix": "s3://weights/models", "cacheHostPath": "/var/cache/contentgen-models"},
    },
    "kueue": {"queueName": "gpus"},
    "prices": {"cluster": {"gpuHourUsd": 3.25, "trainingStepSeconds": 1.5}},
}
EVERYTHING["store"] = {**SECRETS["store"], "publicEndpointUrl": "https://s3.example.com"}
EVERYTHING["api"] = {
    **API["api"],
    "ingress": {
        "enabled": True,
        "className": "nginx",
        "host": "contentgen.example.com",
        "annotations": {"nginx.ingress.kubernetes.io/proxy-buffering": "off"},
        "tls": {"enabled": True, "secretName": "contentgen-tls"},
    },
}
VARIANTS: dict[str, Doc] = {
    "default": {},
    "namespaced": NAMESPACED,
    "replicas3": {"replicaCount": 3},
    "api": API,
    "secrets": SECRETS,
    "namespaced-replicas3-api": {**NAMESPACED, **API, "replicaCount": 3},
    "everything": EVERYTHING,
    "everything-namespaced": {
        **EVERYTHING,
        **NAMESPACED,
        "worker": {"serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": "arn:x:role/worker"}}},
    },
    "metrics-off": {"metrics": {"enabled": False}},
    # The oauth2-proxy example as shipped (docs/identity.md).
    "oauth2-proxy": yaml.safe_load((CHART / "examples" / "oauth2-proxy-sidecar.yaml").read_text()),
}


def find_helm() -> str:
    try:
        return chart_files.helm_binary()
    except HelmMissing as exc:
        pytest.fail(str(exc))


@cache
def _render(values_json: str, include_crds: bool) -> str:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        f.write(values_json)  # JSON is YAML
    try:
        return chart_files.template("--values", f.name, include_crds=include_crds)
    finally:
        Path(f.name).unlink()


def render_text(values: Doc | None = None, *, include_crds: bool = False) -> str:
    find_helm()
    return _render(json.dumps(values or {}, sort_keys=True), include_crds)


def render(values: Doc | None = None) -> list[Doc]:
    """The rendered documents (deep copies: tests may change them)."""
    return copy.deepcopy(_parsed(json.dumps(values or {}, sort_keys=True)))


@cache
def _parsed(values_json: str) -> list[Doc]:
    return [d for d in yaml.safe_load_all(render_text(json.loads(values_json))) if d]


def template_error(*args: str) -> str:
    """helm template's error message for these arguments (fails the test if it renders)."""
    try:
        chart_files.template(*args)
    except RuntimeError as exc:
        return str(exc)
    pytest.fail(f"helm template {' '.join(args)} rendered")


def of_kind(docs: list[Doc], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def one(docs: list[Doc], kind: str, name: str | None = None) -> Doc:
    found = [d for d in of_kind(docs, kind) if name is None or d["metadata"]["name"] == name]
    assert len(found) == 1, f"{len(found)} {kind} named {name}"
    return found[0]


def operator_deployment(docs: list[Doc]) -> Doc:
    return one(docs, "Deployment", f"{RELEASE}-operator")


def settings_env(docs: list[Doc]) -> dict[str, str]:
    """The operator's environment from its ConfigMap (what envFrom gives it)."""
    return dict(one(docs, "ConfigMap", f"{RELEASE}-operator")["data"])


def operator_settings(env: dict[str, str]) -> OperatorSettings:
    """OperatorSettings as the operator reads them from this environment (and nothing else)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CONTENTGEN_")}
    with mock.patch.dict(os.environ, {**clean, **env}, clear=True):
        return OperatorSettings()


def pod_specs(docs: list[Doc]) -> Iterator[tuple[str, Doc]]:
    for doc in docs:
        if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            yield f"{doc['kind']}/{doc['metadata']['name']}", doc["spec"]["template"]["spec"]


@pytest.fixture(scope="session")
def helm() -> str:
    return find_helm()
