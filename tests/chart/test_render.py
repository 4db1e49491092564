"""The chart renders valid Kubernetes 1.33 objects for every value set that matters, rejects bad
values, runs everything restricted, holds no secret, and its settings are the operator's."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any
from unittest import mock

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate
import pytest
import yaml

from contentgen.api import SpecSnapshot
from contentgen.api.providers import PROVIDERS
from contentgen.controller.budget import Budgets
from contentgen.controller.jobs import render_job
from contentgen.controller.main import kopf_args
from contentgen.controller.settings import OperatorSettings, SecretKey
from contentgen.pricing import PriceTable
from contentgen.providers.settings import ClusterWorkerSettings, ProviderSettings, from_environment
from scripts import chart as chart_files
from tests.chart.conftest import (
    API,
    CHART,
    EVERYTHING,
    NAMESPACE,
    RELEASE,
    SECRETS,
    VARIANTS,
    Doc,
    of_kind,
    one,
    operator_deployment,
    operator_settings,
    pod_specs,
    render,
    render_text,
    settings_env,
    template_error,
)
from tests.conftest import ROOT
from tests.harness.chart import (
    CRDS,
    KUBERNETES_VERSION,
    assert_restricted,
    secret_problems,
    validate,
)

# --- lint and schema validity -------------------------------------------------------------------


def test_helm_lint_strict(helm: str) -> None:
    out = chart_files.helm("lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in out


def test_helm_lint_strict_with_every_value_set(helm: str, tmp_path: Path) -> None:
    for name, values in VARIANTS.items():
        path = tmp_path / f"{name}.yaml"
        path.write_text(json.dumps(values))
        assert "0 chart(s) failed" in chart_files.helm("lint", "--strict", str(CHART), "--values", str(path))


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_rendered_object_is_valid_for_kubernetes_1_33(variant: str) -> None:
    docs = render(VARIANTS[variant])
    assert docs
    for doc in docs:
        validate(doc)
    namespaced = {"ServiceAccount", "ConfigMap", "Deployment", "Service", "Role", "RoleBinding"}
    for doc in docs:
        if doc["kind"] in namespaced | {"PodDisruptionBudget", "ServiceMonitor"}:
            assert doc["metadata"].get("namespace"), (
                f"{doc['kind']}/{doc['metadata']['name']} has no namespace"
            )


def test_validation_catches_a_bad_object() -> None:
    (deployment,) = of_kind(render(), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["portt"] = 1
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(deployment)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--set", "replicaCount=many"], "/replicaCount"),
        (["--set", "replicas=3"], "additional properties 'replicas' not allowed"),
        (["--set", "watchNamespaces=team-a"], "/watchNamespaces"),
        (["--set", "watchNamespaces={Team_A}"], "/watchNamespaces/0"),
        (["--set", "store.url=/var/data"], "/store/url"),
        (["--set", "jobs.LoraTraining.backoffLimit=11"], "/jobs/LoraTraining/backoffLimit"),
        (["--set", "jobs.Video.backoffLimit=1"], "additional properties 'Video' not allowed"),
        (["--set", "image.pullPolicy=Sometimes"], "/image/pullPolicy"),
        (["--set", "fal.apiKey=abc"], "additional properties 'apiKey' not allowed"),
        (["--set", "fal.storeIO=yes"], "/fal/storeIO"),
        (["--set", "assemblyai.unresolved=retry"], "/assemblyai/unresolved"),
        (["--set", "assemblyai.resolveWindowSeconds=-1"], "/assemblyai/resolveWindowSeconds"),
        (["--set", "healthPort=0"], "/healthPort"),
        (["--set", "api.enabled=true"], "api.enabled needs mongodb.existingSecret"),
        (
            ["--set", "api.enabled=true", "--set", "mongodb.existingSecret=m"],
            "api.auth tokens needs api.tokensSecret.name",
        ),
        (
            ["--set", "api.enabled=true", "--set", "mongodb.existingSecret=m", "--set", "api.auth={proxy}"],
            "api.auth proxy needs api.trustedProxies",
        ),
        (["--set", "api.auth={oidc}"], "/api/auth/0"),
        (["--set", "api.auth={}"], "/api/auth"),
        (["--set", "api.owners.owners[0].owner=Alice"], "/api/owners/owners/0/owner"),
        (["--set", "ownerPolicy.default={Alice}"], "/ownerPolicy/default/0"),
        (["--set", "ownerPolicy.namespaces.Team_A={alice}"], "invalid propertyName 'Team_A'"),
        (["--set", "worker.imagePullSecrets[0].name=registry"], "/worker/imagePullSecrets/0"),
        (
            ["--set", "gpu.models.hostPath=/m", "--set", "gpu.models.storePrefix=s3://b/m"],
            "gpu.models: set one of persistentVolumeClaim, hostPath, storePrefix",
        ),
        (["--set", "gpu.models.cacheHostPath=/c"], "gpu.models.cacheHostPath needs gpu.models.storePrefix"),
        (["--set", "gpu.models.hostPath=models"], "/gpu/models/hostPath"),
        (["--set", "gpu.fluxModel=../weights"], "/gpu/fluxModel"),
        (["--set", "gpu.inferenceSteps=-1"], "/gpu/inferenceSteps"),
        (["--set", "gpu.whisperBatchSize=0"], "/gpu/whisperBatchSize"),
        (["--set", "gpu.whisperBatchSize=65"], "/gpu/whisperBatchSize"),
        (["--set", "gpu.jobs.LoraTraining.count=0"], "/gpu/jobs/LoraTraining/count"),
        (["--set", "gpu.jobs.LoraTraining.resourceName=gpu"], "/gpu/jobs/LoraTraining/resourceName"),
        (["--set", "kueue.queueName=GPU_Queue"], "/kueue/queueName"),
        (["--set", "prices.cluster.gpuHourUsd=-1"], "/prices/cluster/gpuHourUsd"),
    ],
)
def test_bad_values_are_rejected(helm: str, args: list[str], message: str) -> None:
    assert message in template_error(*args)


def test_install_rejects_a_bad_value_too(helm: str) -> None:
    """`helm install` checks the same schema (a dry run needs no cluster)."""
    with pytest.raises(RuntimeError, match="/replicaCount"):
        chart_files.helm("install", "x", str(CHART), "--dry-run=client", "--set", "replicaCount=many")


def test_schema_rejects_unknown_keys_everywhere_but_free_form_maps() -> None:
    schema = json.loads((CHART / "values.schema.json").read_text())
    free_form = {"resources.requests", "resources.limits", "affinity", "api.affinity"}
    open_objects = []

    def walk(node: dict[str, Any], path: str) -> None:
        if node.get("type") == "object" and "properties" in node:
            if node.get("additionalProperties") is not False:
                open_objects.append(path)
            for key, child in node["properties"].items():
                walk(child, f"{path}.{key}" if path else key)
        elif (
            node.get("type") == "object"
            and node.get("additionalProperties") is None
            and not any(path.endswith(f) for f in free_form)
        ):
            open_objects.append(path)

    walk(schema, "")
    assert schema["additionalProperties"] is False
    assert open_objects == []


# The cluster prices the operator fills in itself (from its GPU and pool settings), not a value.
OPERATOR_FILLED = {"gpus", "denoising", "pooledModels", "poolGpus"}


def test_every_cluster_price_is_a_value_with_its_default() -> None:
    """prices.cluster in values.yaml and its schema state every price of ClusterPrices at its default:
    a documented price the schema leaves out is refused by `helm install` (videoFrameSeconds was)."""
    from contentgen.pricing import ClusterPrices

    schema = json.loads((CHART / "values.schema.json").read_text())
    stated = set(schema["properties"]["prices"]["properties"]["cluster"]["properties"])
    values = yaml.safe_load((CHART / "values.yaml").read_text())["prices"]["cluster"]
    defaults = ClusterPrices().model_dump(by_alias=True)
    prices = set(defaults) - OPERATOR_FILLED
    assert stated == prices
    assert values == {name: defaults[name] for name in prices}


# --- what is rendered in each mode ---------------------------------------------------------------


def test_default_install_is_cluster_wide_with_a_lease_role() -> None:
    docs = render()
    # The only Roles, in the operator's own namespace: the Lease's and the share policy's ConfigMap's.
    roles = of_kind(docs, "Role")
    assert {r["metadata"]["namespace"] for r in roles} == {NAMESPACE}
    assert sorted(sorted({r for rule in role["rules"] for r in rule["resources"]}) for role in roles) == [
        ["configmaps"],
        ["leases"],
    ]
    assert of_kind(docs, "PodDisruptionBudget") == []
    assert operator_deployment(docs)["spec"]["replicas"] == 1
    assert not of_kind(docs, "Secret")


def test_the_operator_elects_its_leader_with_the_lease_its_rbac_names() -> None:
    for values in ({}, VARIANTS["namespaced"], {"leaseName": "other-lease"}):
        docs = render(values)
        settings = operator_settings(settings_env(docs))
        role = next(d for d in of_kind(docs, "Role") if "leader-election" in d["metadata"]["name"])
        named = {n for rule in role["rules"] for n in rule.get("resourceNames", [])}
        assert named == {settings.leader_election_lease} and settings.leader_election
        env = operator_deployment(docs)["spec"]["template"]["spec"]["containers"][0]["env"]
        assert {
            "name": "POD_NAMESPACE",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
        } in env


def test_replicas_get_a_disruption_budget_over_the_operator_pods() -> None:
    docs = render({"replicaCount": 3})
    deployment = operator_deployment(docs)
    assert deployment["spec"]["replicas"] == 3
    pdb = one(docs, "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]


def test_settings_are_what_the_operator_reads() -> None:
    cases: list[Doc] = [{}, VARIANTS["namespaced"], EVERYTHING]
    for values in cases:
        docs = render(values)
        env = settings_env(docs)
        assert all(isinstance(v, str) for v in env.values())
        settings = operator_settings(env)
        assert settings.watch_namespaces == values.get("watchNamespaces", [])
        assert settings.manage_worker_access is not bool(values.get("watchNamespaces"))
        assert settings.worker_image == "ghcr.io/contentgen/contentgen-worker:0.1.0"
        assert settings.store == values.get("store", {}).get("url", "s3://contentgen-assets/contentgen")
        assert settings.max_download_bytes == 4 * 1024**3 and settings.allow_private_sources is False
        # Every setting the chart writes is one the operator knows.
        known = {f"CONTENTGEN_{name.upper()}" for name in OperatorSettings.model_fields}
        known |= {p.key_secret_variable for p in PROVIDERS.values() if p.key}
        for key in env:
            assert key.split("__")[0] in known or key in ("AWS_ENDPOINT_URL", "AWS_REGION"), key
    settings = operator_settings(settings_env(render(EVERYTHING)))
    assert settings.key_secret("fal") == SecretKey(name="fal", key="FAL_KEY")
    assert settings.key_secret("assemblyai") == SecretKey(name="assemblyai", key="api-key")
    assert settings.s3_secret == "s3-credentials"
    assert (settings.s3_endpoint_url, settings.s3_region) == ("http://minio.storage:9000", "eu-west-1")
    # Cluster-wide, the operator creates the worker ServiceAccounts: with these annotations.
    assert settings.worker_service_account_annotations == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/w"
    }
    assert settings.worker_image_pull_secrets == ["registry"]


def test_budgets_and_prices_reach_the_operator() -> None:
    defaults = operator_settings(settings_env(render()))
    assert defaults.budgets == Budgets() and defaults.prices == PriceTable()  # none; fal's and AssemblyAI's
    values = {
        "budgets": {"namespaceMonthlyUsd": 200, "owners": {"alice": 25.5}},
        "prices": {
            "asOf": "2026-12-01",
            "items": {"fal": {"fal-ai/flux/dev": {"megapixel": 0.02}}},
            "assumedAudioHours": 1,
        },
        "gpu": {"jobs": {"LoraEvaluation": {"count": 2}}},
    }
    settings = operator_settings(settings_env(render(values)))
    assert settings.budgets.namespace_monthly_usd == 200 and settings.budgets.owners == {"alice": 25.5}
    assert settings.budgets.owner_monthly_usd is None
    assert (
        settings.prices.as_of == "2026-12-01"
        and settings.prices.price("fal", "fal-ai/flux/dev", "megapixel") == 0.02
    )
    # the API shows estimates (a re-evaluation's in a cluster) with the same prices, the same GPUs
    # per Job, and the same budgets, read from its own environment
    from contentgen.httpapi.settings import ENV_PREFIX, ApiSettings

    pod = one(render({**API, **values}), "Deployment", f"{RELEASE}-api")["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in pod["containers"][0]["env"] if "value" in e}
    with mock.patch.dict(os.environ, {k: v for k, v in env.items() if k.startswith(ENV_PREFIX)}, clear=True):
        api = ApiSettings()
    assert settings.prices.cluster.gpus == {"LoraEvaluation": 2}
    assert api.prices == settings.prices and api.budgets == settings.budgets


def test_gpu_whisper_batch_size_reaches_the_transcription_job() -> None:
    """gpu.whisperBatchSize (issue 39) is CONTENTGEN_CLUSTER_WHISPER_BATCH_SIZE in a cluster
    Transcription's worker Job, read back as the transcriber reads it; the default is the worker's."""
    snap = SpecSnapshot(
        kind="Transcription",
        name="x",
        namespace="team-a",
        uid="u-1",
        spec={"owner": "a", "provider": "cluster", "source": {"url": "https://e.com/a.mp3"}},
    )
    for values, expected in ((EVERYTHING, 16), ({}, 8)):
        job = render_job(snap, operator_settings(settings_env(render(values))))
        kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)
        (container,) = job["spec"]["template"]["spec"]["containers"]
        env = {e["name"]: e["value"] for e in container["env"] if "value" in e}
        assert env["CONTENTGEN_CLUSTER_WHISPER_BATCH_SIZE"] == str(expected)
        assert from_environment(ProviderSettings, env).cluster_whisper_batch_size == expected


def test_chart_job_defaults_are_the_operators() -> None:
    """values.yaml's jobs are exactly OperatorSettings' defaults (one source would be better; this
    keeps the two from drifting)."""
    assert operator_settings(settings_env(render())).kinds == OperatorSettings().kinds


def test_chart_gpu_defaults_are_the_operators() -> None:
    settings = operator_settings(settings_env(render()))
    defaults = OperatorSettings()
    assert settings.gpu_jobs == defaults.gpu_jobs and settings.gpu_tolerations == defaults.gpu_tolerations
    assert settings.prices == defaults.prices == PriceTable()
    assert settings.cluster_models == defaults.cluster_models and settings.queue_name == ""
    assert settings.read_kueue_workloads is defaults.read_kueue_workloads is True
    assert (settings.cluster_flux_model, settings.cluster_flux_schnell_model) == (
        "FLUX.1-dev",
        "FLUX.1-schnell",
    )
    assert settings.cluster_inference_steps == defaults.cluster_inference_steps == 0  # the model's own
    assert settings.cluster_whisper_batch_size == defaults.cluster_whisper_batch_size == 8
    app_version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert settings.gpu_worker_image == f"ghcr.io/contentgen/contentgen-worker-gpu:{app_version}"


def test_gpu_values_reach_the_gpu_jobs() -> None:
    """`gpu`, `kueue` and `prices.cluster` as the operator reads them, and the Job it makes of them."""
    settings = operator_settings(settings_env(render(EVERYTHING)))
    snap = SpecSnapshot(
        kind="LoraTraining",
        name="x",
        namespace="team-a",
        uid="u-1",
        spec={
            "owner": "a",
            "provider": "cluster",
            "source": {"url": "https://e.com/v.mp4"},
            "triggerWord": "tw",
        },
    )
    job = render_job(snap, settings)
    kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)
    pod = job["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "registry.example.com/contentgen-worker-gpu:1.2.3"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert pod["nodeSelector"] == {"pool": "batch", "nvidia.com/gpu.present": "true", "gpu": "h100"}
    assert pod["priorityClassName"] == "gpu-batch"
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    assert {"key": "batch", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    models = next(v for v in pod["volumes"] if v["name"] == "models")
    assert models["hostPath"]["path"] == "/var/cache/contentgen-models"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CONTENTGEN_CLUSTER_MODELS_STORE"] == "s3://weights/models"
    # the models and steps the GPU worker runs (providers/settings.py), as the worker reads them
    assert env["CONTENTGEN_CLUSTER_FLUX_MODEL"] == "FLUX.1-dev-2025"
    assert env["CONTENTGEN_CLUSTER_FLUX_SCHNELL_MODEL"] == "flux-schnell-fp8"
    assert env["CONTENTGEN_CLUSTER_INFERENCE_STEPS"] == "20"
    given = {k: v for k, v in env.items() if v is not None}
    worker, own = from_environment(ProviderSettings, given), from_environment(ClusterWorkerSettings, given)
    assert (worker.cluster_flux_model, worker.cluster_flux_schnell_model, worker.cluster_inference_steps) == (
        "FLUX.1-dev-2025",
        "flux-schnell-fp8",
        20,
    )
    assert (own.cluster_models_dir, own.cluster_models_store, own.gpu_count) == (
        Path("/models-cache"),
        "s3://weights/models",
        2,
    )
    assert "CONTENTGEN_CLUSTER_DEVICE" not in env  # the pod's own GPU
    assert job["metadata"]["labels"]["kueue.x-k8s.io/queue-name"] == "gpus"
    assert (
        settings.prices.cluster.gpu_hour_usd == 3.25 and settings.prices.cluster.training_step_seconds == 1.5
    )
    assert settings.prices.cluster.gpus == {"LoraTraining": 2}
    assert settings.prices.price("fal", "fal-ai/flux/dev", "megapixel") == PriceTable().price(
        "fal", "fal-ai/flux/dev", "megapixel"
    )  # `cluster` alone leaves the default items
    # a host path is not "restricted" (docs/cluster-gpus.md); a volume claim is
    claimed = {**EVERYTHING, "gpu": {**EVERYTHING["gpu"], "models": {"persistentVolumeClaim": "weights"}}}
    pod = render_job(snap, operator_settings(settings_env(render(claimed))))["spec"]["template"]["spec"]
    assert {"name": "models", "persistentVolumeClaim": {"claimName": "weights", "readOnly": True}} in pod[
        "volumes"
    ]
    assert_restricted("the GPU worker", pod)


def test_job_values_reach_the_jobs() -> None:
    values = {"jobs": {"ImageGeneration": {"backoffLimit": 0, "activeDeadlineSeconds": 600}}}
    settings = operator_settings(settings_env(render(values)))
    snap = SpecSnapshot(
        kind="ImageGeneration", name="x", uid="u-1", spec={"owner": "a", "provider": "offline", "prompt": "p"}
    )
    job = render_job(snap, settings)
    assert (job["spec"]["backoffLimit"], job["spec"]["activeDeadlineSeconds"]) == (0, 600)
    assert job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["memory"] == "1Gi"


def test_kopf_runs_on_the_watched_namespaces_with_the_probed_port() -> None:
    docs = render(VARIANTS["namespaced"])
    settings = operator_settings(settings_env(docs))
    args = kopf_args(settings)
    assert "--namespace=team-a" in args and "--namespace=team-b" in args and "--all-namespaces" not in args
    assert "--all-namespaces" in kopf_args(operator_settings(settings_env(render())))
    container = operator_deployment(docs)["spec"]["template"]["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    # The operator serves the probes on the health port (controller/health.py), kopf behind it.
    assert ports["health"] == settings.health_port
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "health"}
    assert ports["metrics"] == settings.metrics_port
    assert container["args"] == ["operator"]
    assert container["envFrom"] == [{"configMapRef": {"name": f"{RELEASE}-operator"}}]


def test_metrics_service_and_service_monitor() -> None:
    docs = render(EVERYTHING)
    service = one(docs, "Service", f"{RELEASE}-operator-metrics")
    monitor = one(docs, "ServiceMonitor")
    deployment = operator_deployment(docs)
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert [p["name"] for p in service["spec"]["ports"]] == ["metrics"]
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("metrics", "/metrics")
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert all(
        service["metadata"]["labels"].get(k) == v
        for k, v in monitor["spec"]["selector"]["matchLabels"].items()
    )
    # Without metrics: no port, no Service, and the operator does not serve them.
    off = render(VARIANTS["metrics-off"])
    assert not [s for s in of_kind(off, "Service") if s["metadata"]["name"].endswith("-metrics")]
    assert operator_settings(settings_env(off)).metrics_port == 0


def test_config_change_restarts_the_operator() -> None:
    def checksum(docs: list[Doc]) -> str:
        return str(
            operator_deployment(docs)["spec"]["template"]["metadata"]["annotations"]["checksum/config"]
        )

    assert checksum(render()) != checksum(render({"maxRunningJobsPerNamespace": 2}))


def test_api_deployment() -> None:
    docs = render(API)
    deployment = one(docs, "Deployment", f"{RELEASE}-api")
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert (
        container["image"] == operator_deployment(docs)["spec"]["template"]["spec"]["containers"][0]["image"]
    )
    assert container["args"] == ["api", "--host", "0.0.0.0", "--port", "8080"]
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    env = {e["name"]: e for e in container["env"]}
    assert env["CONTENTGEN_CATALOG"]["valueFrom"] == {"secretKeyRef": {"name": "mongodb", "key": "uri"}}
    assert env["CONTENTGEN_STORE"]["value"] == "s3://contentgen-assets/contentgen"
    # The tokens file: the whole Secret as a directory (no subPath, so rotation reaches the pod).
    tokens_file = Path(env["CONTENTGEN_API_TOKENS_FILE"]["value"])
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "tokens"]
    assert "subPath" not in mount and mount["readOnly"] is True
    assert tokens_file == Path(mount["mountPath"]) / "tokens.yaml"
    (volume,) = [v for v in pod["volumes"] if v["name"] == "tokens"]
    assert volume["secret"]["secretName"] == "api-tokens"
    # It creates resources (api.create): its own ServiceAccount's token, bound to its own role
    # (tests/chart/test_rbac.py holds it to the calls it makes); read-only: no token, no binding.
    assert pod["automountServiceAccountToken"] is True
    account = one(docs, "ServiceAccount", pod["serviceAccountName"])
    assert account["automountServiceAccountToken"] is False

    def bound(rendered: list[Doc]) -> list[str]:
        bindings = of_kind(rendered, "RoleBinding") + of_kind(rendered, "ClusterRoleBinding")
        return [
            b["roleRef"]["name"]
            for b in bindings
            if pod["serviceAccountName"] in {s["name"] for s in b["subjects"]}
        ]

    assert bound(docs) == [f"{RELEASE}-api"]
    assert (
        env["CONTENTGEN_API_CREATE"]["value"] == "kubernetes"
        and env["CONTENTGEN_API_AUTH"]["value"] == "tokens"
    )
    read_only = render({**API, "api": {**API["api"], "create": False}})
    read_only_pod = one(read_only, "Deployment", f"{RELEASE}-api")["spec"]["template"]["spec"]
    assert read_only_pod["automountServiceAccountToken"] is False and bound(read_only) == []
    read_only_env = {e["name"]: e.get("value") for e in read_only_pod["containers"][0]["env"]}
    assert read_only_env["CONTENTGEN_API_CREATE"] == "off"
    # The owners file, from values, in a ConfigMap the pod mounts.
    owners = {"owners": [{"owner": "alice", "groups": ["team-a"]}], "admins": {"users": ["ops@example.com"]}}
    mapped = render({**API, "api": {**API["api"], "owners": owners}})
    config = one(mapped, "ConfigMap", f"{RELEASE}-api-owners")
    loaded = yaml.safe_load(config["data"]["owners.yaml"])
    assert loaded["owners"] == owners["owners"] and loaded["admins"]["users"] == ["ops@example.com"]
    assert env["CONTENTGEN_API_OWNERS_FILE"]["value"] == "/etc/contentgen/owners/owners.yaml"
    service = one(docs, "Service", f"{RELEASE}-api")
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert service["spec"]["ports"][0]["targetPort"] == "http"
    assert [d["metadata"]["name"] for d in of_kind(render(), "Deployment")] == [f"{RELEASE}-operator"]


def test_api_modes_set_what_the_api_reads() -> None:
    """Each identity mode's values reach the API's settings (the names ApiSettings reads), and the
    oauth2-proxy example sends every request through its sidecar, whose headers the API believes
    from the pod's loopback only."""
    from contentgen.httpapi.settings import ENV_PREFIX, ApiSettings

    def api_env(values: Doc) -> dict[str, str]:
        pod = one(render(values), "Deployment", f"{RELEASE}-api")["spec"]["template"]["spec"]
        return {e["name"]: e.get("value", "") for e in pod["containers"][0]["env"]}

    known = {f"{ENV_PREFIX}{name.upper()}" for name in ApiSettings.model_fields}
    kube = {**API, "api": {**API["api"], "auth": ["kubernetes"], "tokenAudiences": ["contentgen"]}}
    env = api_env(kube)
    assert {k for k in env if k.startswith(ENV_PREFIX)} <= known
    assert (
        env["CONTENTGEN_API_AUTH"] == "kubernetes" and env["CONTENTGEN_API_TOKEN_AUDIENCES"] == "contentgen"
    )
    assert "CONTENTGEN_API_TOKENS_FILE" not in env and "CONTENTGEN_API_TRUSTED_PROXIES" not in env
    example = VARIANTS["oauth2-proxy"]
    docs = render(example)
    env = api_env(example)
    assert {k for k in env if k.startswith(ENV_PREFIX)} <= known
    assert env["CONTENTGEN_API_AUTH"] == "proxy" and env["CONTENTGEN_API_TRUSTED_PROXIES"] == "127.0.0.1/32"
    assert env["CONTENTGEN_API_PROXY_USER_HEADER"] == "X-Forwarded-User"
    assert env["CONTENTGEN_API_PROXY_GROUPS_HEADER"] == "X-Forwarded-Groups"
    with mock.patch.dict(os.environ, {k: v for k, v in env.items() if k in known}):
        settings = ApiSettings()
    assert settings.api_auth == ["proxy"] and settings.api_trusted_proxies == ["127.0.0.1/32"]
    pod = one(docs, "Deployment", f"{RELEASE}-api")["spec"]["template"]["spec"]
    api, proxy = pod["containers"]
    assert api["args"][-1] == "8080"  # the port the sidecar sends to
    assert proxy["name"] == "oauth2-proxy" and "--upstream=http://127.0.0.1:8080/" in proxy["args"]
    assert "--pass-user-headers=true" in proxy["args"]
    service = one(docs, "Service", f"{RELEASE}-api")
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == "proxy" and "proxy" in {p["name"] for p in proxy["ports"]}
    owners = yaml.safe_load(one(docs, "ConfigMap", f"{RELEASE}-api-owners")["data"]["owners.yaml"])
    assert owners == example["api"]["owners"]
    assert "api.auth proxy needs api.trustedProxies" in template_error(
        "--set", "api.enabled=true", "--set", "mongodb.existingSecret=m", "--set", "api.auth={proxy}"
    )


def test_service_accounts_mount_tokens_only_where_needed() -> None:
    docs = render(VARIANTS["everything-namespaced"])
    for account in of_kind(docs, "ServiceAccount"):
        assert account["automountServiceAccountToken"] is False, account["metadata"]
    assert operator_deployment(docs)["spec"]["template"]["spec"]["automountServiceAccountToken"] is True
    operator_account = one(docs, "ServiceAccount", f"{RELEASE}-operator")
    assert operator_account["metadata"]["annotations"] == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::111122223333:role/op"
    }
    workers = [a for a in of_kind(docs, "ServiceAccount") if a["metadata"]["name"] == "contentgen-worker"]
    assert {a["metadata"]["namespace"] for a in workers} == {"team-a", "team-b"}
    assert all(
        a["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": "arn:x:role/worker"} for a in workers
    )


def test_s3_credentials_reach_the_operator_and_the_api() -> None:
    docs = render(EVERYTHING)
    for name in (f"{RELEASE}-operator", f"{RELEASE}-api"):
        container = one(docs, "Deployment", name)["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("valueFrom") for e in container["env"]}
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
            assert env[key] == {"secretKeyRef": {"name": "s3-credentials", "key": key}}
    data = settings_env(docs)
    assert (data["AWS_ENDPOINT_URL"], data["AWS_REGION"]) == ("http://minio.storage:9000", "eu-west-1")
    operator_env = {
        e["name"]: e for e in operator_deployment(docs)["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    assert operator_env["CONTENTGEN_MONGODB_URI"]["valueFrom"] == {
        "secretKeyRef": {"name": "mongodb", "key": "connection"}
    }
    # Without a Secret: nothing to reference (workload identity or the node's role).
    plain = operator_deployment(render())["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {e["name"] for e in plain} == {"HOME", "POD_NAMESPACE"}


def test_jobs_of_the_chart_settings_are_valid_and_restricted() -> None:
    settings = operator_settings(settings_env(render(EVERYTHING)))
    for kind, spec in (
        (
            "LoraTraining",
            {"owner": "a", "provider": "fal", "source": {"url": "https://x/v.mp4"}, "triggerWord": "t"},
        ),
        ("Transcription", {"owner": "a", "provider": "assemblyai", "source": {"url": "https://x/a.mp3"}}),
    ):
        job = render_job(SpecSnapshot(kind=kind, name="x", uid="u-1", version=1, spec=spec), settings)
        kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)
        assert_restricted(f"Job/{kind}", job["spec"]["template"]["spec"])
        env = {e["name"]: e for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
        provider_key = {
            "LoraTraining": ("FAL_KEY", "fal", "FAL_KEY"),
            "Transcription": ("ASSEMBLYAI_API_KEY", "assemblyai", "api-key"),
        }
        name, secret, key = provider_key[kind]
        assert env[name]["valueFrom"] == {"secretKeyRef": {"name": secret, "key": key}}
        assert job["spec"]["template"]["spec"]["serviceAccountName"] == "contentgen-worker"


# --- restricted pods -----------------------------------------------------------------------------


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_every_pod_runs_restricted(variant: str) -> None:
    specs = list(pod_specs(render(VARIANTS[variant])))
    assert specs
    for where, pod in specs:
        assert_restricted(where, pod)


def test_restricted_check_catches_a_root_container() -> None:
    (where, pod), *_ = pod_specs(render())
    pod["containers"][0]["securityContext"]["runAsUser"] = 0
    with pytest.raises(AssertionError):
        assert_restricted(where, pod)


# --- secrets only by reference -------------------------------------------------------------------


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_no_secret_values_in_rendered_manifests(variant: str) -> None:
    values = VARIANTS[variant]
    assert secret_problems(render_text(values), render(values)) == []


def test_no_secret_values_in_the_chart_files() -> None:
    for path in [
        CHART / "values.yaml",
        CHART / "values.schema.json",
        *sorted((CHART / "templates").iterdir()),
    ]:
        assert secret_problems(path.read_text(), []) == [], path.name
    assert secret_problems(chart_files.INSTALL_MANIFEST.read_text(), []) == []


@pytest.mark.parametrize(
    "planted",
    [
        "  CONTENTGEN_MONGODB_URI: mongodb://contentgen:hunter2hunter2@mongo:27017/contentgen",
        "  AWS_ACCESS_KEY_ID: AKIAIOSFODNN7EXAMPLE",
        "  FAL_KEY: 0a1b2c3d-0a1b-0a1b-0a1b-0a1b2c3d4e5f:0123456789abcdef0123456789abcdef",
        "  ASSEMBLYAI_API_KEY: Zk9vYmFyYmF6cXV4cXV1eHF1dXhxdXV4cXV1eHF1dXg",
        "  STRIPE: sk_live_51H8s7dKq2wXyZ9aBcDeFgHiJkLmN",
        "  SIGNING: 0123456789abcdef0123456789abcdef",
    ],
)
def test_secret_check_finds_planted_secrets(planted: str) -> None:
    configmap = one(render(), "ConfigMap", f"{RELEASE}-operator")
    key, value = planted.strip().split(": ", 1)
    configmap["data"][key] = value
    text = render_text() + f"\n---\n{yaml.safe_dump(configmap)}"
    assert secret_problems(text, [configmap])


def test_secret_check_finds_a_plain_env_value() -> None:
    docs = render(SECRETS)
    container = operator_deployment(docs)["spec"]["template"]["spec"]["containers"][0]
    container["env"].append({"name": "FAL_KEY", "value": "x"})
    assert secret_problems("", docs) == [f"Deployment/{RELEASE}-operator: env FAL_KEY is not a secretKeyRef"]


# --- committed files agree with their sources ----------------------------------------------------


def test_chart_crds_equal_the_top_level_crds() -> None:
    top = {p.name: p.read_bytes() for p in (ROOT / "crds").glob("*.yaml")}
    chart = {p.name: p.read_bytes() for p in (CHART / "crds").iterdir()}
    assert top and chart == top, "charts/contentgen/crds/ differs from crds/: run `make generate`"


def test_app_version_is_the_package_version() -> None:
    import tomllib

    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert (chart["apiVersion"], chart["appVersion"], chart["version"]) == ("v2", version, version)


def test_install_manifest_has_no_drift(helm: str) -> None:
    assert chart_files.INSTALL_MANIFEST.read_text() == chart_files.install_manifest(), (
        "charts/install.yaml is stale: run `make install-manifest`"
    )


def test_local_cluster_install_has_no_drift(helm: str) -> None:
    """`contentgen local-cluster` installs exactly the chart (its RBAC, Deployment, ConfigMap)."""
    assert chart_files.LOCAL_INSTALL.read_text() == chart_files.local_install(), (
        "operator/contentgen/cli/chart-install.yaml is stale: run `make generate`"
    )


def test_install_manifest_is_the_default_install_with_crds_and_namespace() -> None:
    docs = [d for d in yaml.safe_load_all(chart_files.INSTALL_MANIFEST.read_text()) if d]
    assert docs[0]["kind"] == "Namespace" and docs[0]["metadata"]["name"] == NAMESPACE
    crds = {d["metadata"]["name"] for d in of_kind(docs, "CustomResourceDefinition")}
    assert crds == {d["metadata"]["name"] for d in CRDS.values()}
    # CRDs come before anything that uses them; then exactly the default render.
    kinds = [d["kind"] for d in docs]
    assert kinds.index("ClusterRole") > max(i for i, k in enumerate(kinds) if k == "CustomResourceDefinition")
    rest = [d for d in docs[1:] if d["kind"] != "CustomResourceDefinition"]
    assert rest == render(install_values())
    for doc in docs:
        validate(doc)
        if doc["kind"] not in (
            "Namespace",
            "CustomResourceDefinition",
            "ClusterRole",
            "ClusterRoleBinding",
            "ValidatingAdmissionPolicy",
            "ValidatingAdmissionPolicyBinding",
        ):
            assert doc["metadata"]["namespace"] == NAMESPACE, doc["kind"]


def install_values() -> Doc:
    """scripts/chart.py's INSTALL_VALUES (--set a.b=c) as nested values."""
    values: Doc = {}
    for dotted, text in chart_files.INSTALL_VALUES.items():
        *parents, last = dotted.split(".")
        node = values
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = {"true": True, "false": False}.get(text, text)
    return values


def test_install_manifest_wires_the_secrets_readme_names_as_the_chart_does() -> None:
    """Without Helm, editing the ConfigMap is all it takes: the operator already reads the S3
    credentials and the MongoDB URI from the Secrets README has you create (when they exist)."""
    docs = [d for d in yaml.safe_load_all(chart_files.INSTALL_MANIFEST.read_text()) if d]
    (deployment,) = of_kind(docs, "Deployment")
    env = {e["name"]: e for e in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    refs = {
        name: e["valueFrom"]["secretKeyRef"]
        for name, e in env.items()
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert refs == {
        "CONTENTGEN_MONGODB_URI": {"name": "contentgen-mongodb", "key": "uri", "optional": True},
        "AWS_ACCESS_KEY_ID": {"name": "contentgen-s3", "key": "AWS_ACCESS_KEY_ID", "optional": True},
        "AWS_SECRET_ACCESS_KEY": {"name": "contentgen-s3", "key": "AWS_SECRET_ACCESS_KEY", "optional": True},
        # to cancel the fal requests of deleted resources
        "FAL_KEY": {"name": "contentgen-fal", "key": "FAL_KEY", "optional": True},
    }
    settings = operator_settings(settings_env(docs))
    assert settings.s3_secret == "contentgen-s3"
    assert settings.key_secret("fal") == SecretKey(name="contentgen-fal", key="FAL_KEY")
    assert settings.key_secret("assemblyai") == SecretKey(
        name="contentgen-assemblyai", key="ASSEMBLYAI_API_KEY"
    )
    # The chart's own references are the same, and required unless optionalSecrets is set.
    chart_env = operator_deployment(render(SECRETS))["spec"]["template"]["spec"]["containers"][0]["env"]
    chart_refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in chart_env
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    assert set(chart_refs) == set(refs) and not any("optional" in r for r in chart_refs.values())


@pytest.mark.parametrize("path", chart_files.VALUES_DOCS, ids=lambda p: p.name)
def test_values_table_has_no_drift(path: Path) -> None:
    readme = path.read_text()
    assert readme == chart_files.spliced_readme(readme), f"{path} is stale: run `make generate`"


def test_every_value_is_documented_and_typed() -> None:
    text = (CHART / "values.yaml").read_text()
    values = yaml.safe_load(text)
    schema = json.loads((CHART / "values.schema.json").read_text())
    documented = {d.path for d in chart_files.documented_values(text)}

    def leaves(node: Any, path: tuple[str, ...]) -> list[tuple[str, ...]]:
        if isinstance(node, dict) and node:
            return [leaf for key, child in node.items() for leaf in leaves(child, (*path, key))]
        return [path]

    for leaf in leaves(values, ()):
        assert any(leaf[: len(d)] == d for d in documented), f"{'.'.join(leaf)} has no '# --' comment"
    for path in documented:
        assert chart_files.schema_at(schema, path) is not None, f"{'.'.join(path)} is not in the schema"

    def schema_paths(node: dict[str, Any], path: tuple[str, ...]) -> list[tuple[str, ...]]:
        children = node.get("properties") or {}
        return [path] + [p for key, child in children.items() for p in schema_paths(child, (*path, key))]

    for path in schema_paths(schema, ())[1:]:
        chart_files.value_at(values, path)  # KeyError: the schema has a key values.yaml lacks
    # The defaults satisfy the schema (helm checks this too; this names the key).
    jsonschema.validate(values, schema)


def test_values_parser_reads_nested_keys() -> None:
    text = "# -- top\na:\n  # -- nested,\n  # two lines\n  b: 1\n  c: 2\n# not a doc\nd: 3\n"
    docs = chart_files.documented_values(text)
    assert [(d.path, d.description) for d in docs] == [(("a",), "top"), (("a", "b"), "nested, two lines")]


def test_missing_helm_is_named_with_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(chart_files, "ROOT", tmp_path)
    monkeypatch.setenv("HELM", "")
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(chart_files.HelmMissing, match="make tools"):
        chart_files.helm_binary()


def test_provider_settings_reach_the_operator_and_its_jobs() -> None:
    defaults = operator_settings(settings_env(render()))
    assert (defaults.fal_store_io, defaults.fal_pricing_api) == (True, True)
    assert (defaults.assemblyai_resolve_window_seconds, defaults.assemblyai_unresolved) == (120, "fail")
    values = {
        "fal": {"existingSecret": "fal", "storeIO": False, "pricingApi": False},
        "assemblyai": {"existingSecret": "aai", "resolveWindowSeconds": 600, "unresolved": "resubmit"},
    }
    settings = operator_settings(settings_env(render(values)))
    assert (settings.fal_store_io, settings.fal_pricing_api) == (False, False)
    assert (settings.assemblyai_resolve_window_seconds, settings.assemblyai_unresolved) == (600, "resubmit")
    snap = SpecSnapshot(
        kind="Transcription",
        name="x",
        uid="u-1",
        spec={"owner": "a", "provider": "assemblyai", "source": {"url": "https://x/a.mp3"}},
    )
    container = render_job(snap, settings)["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["CONTENTGEN_ASSEMBLYAI_UNRESOLVED"] == "resubmit"
    assert env["CONTENTGEN_ASSEMBLYAI_RESOLVE_WINDOW_SECONDS"] == "600"


def test_the_charts_kinds_are_the_apis(monkeypatch: pytest.MonkeyPatch) -> None:
    """templates/_kinds.tpl is made from the API's kinds (`make generate`): current, and a kind
    declared in the API (the test-only Haiku) is in the operator's RBAC and the owner policy with
    no chart file edited (issue 71)."""
    from tests.kinds import haiku

    assert chart_files.KINDS_TEMPLATE.read_text() == chart_files.kinds_template(), "run `make generate`"
    haiku.register(monkeypatch)
    made = chart_files.kinds_template()
    assert "- haikus\n" in made and "- haikus/status\n" in made and '"haikus"]' in made


def test_the_charts_provider_keys_are_the_apis(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """templates/_providers.tpl and values.schema.json's key sections are made from the API's
    providers (`make generate`): current; a keyed provider declared in the API (the test-only
    echo) is in the chart as `make generate` remakes it, with no chart file edited by hand: its
    Secret set by `--set echo.existingSecret` reaches the operator's settings, and the chart
    renders without it (no Secret: its resources wait as MissingCredentials). A provider that
    cancels its requests gives the operator its key, one that does not gives none."""
    from contentgen.api.providers import Provider
    from tests.providers import echo

    assert chart_files.PROVIDERS_TEMPLATE.read_text() == chart_files.providers_template(), (
        "run `make generate`"
    )
    assert chart_files.VALUES_SCHEMA.read_text() == chart_files.values_schema(), "run `make generate`"
    echo.register(monkeypatch)
    chart = tmp_path / "contentgen"
    shutil.copytree(CHART, chart)
    (chart / "templates" / "_providers.tpl").write_text(chart_files.providers_template())
    (chart / "values.schema.json").write_text(chart_files.values_schema())

    def rendered(*values: str) -> list[Doc]:
        text = chart_files.helm("template", "contentgen", str(chart), "--namespace", "contentgen", *values)
        return [d for d in yaml.safe_load_all(text) if d]

    settings = operator_settings(settings_env(rendered("--set", "echo.existingSecret=echo-credentials")))
    assert settings.key_secret("echo") == SecretKey(name="echo-credentials", key="ECHO_API_KEY")
    unset = operator_settings(settings_env(rendered()))
    assert unset.key_secret("echo") == SecretKey(name="", key="ECHO_API_KEY")
    env = operator_deployment(rendered("--set", "echo.existingSecret=e"))["spec"]["template"]["spec"]
    assert "ECHO_API_KEY" not in [e["name"] for e in env["containers"][0]["env"]]  # it cancels nothing
    monkeypatch.setitem(PROVIDERS, "echo", Provider("echo", key="ECHO_API_KEY", cancels=True))
    assert "- name: ECHO_API_KEY  # to cancel the echo requests" in chart_files.providers_template()


def test_a_providers_own_settings_are_its_rows(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A provider's settings beyond its key are declared in its row (api/providers.py `settings`):
    the chart's ConfigMap lines and the values' schema are made from it by `make generate`, and the
    operator passes exactly those into the provider's Jobs. A test-only provider (echo) declaring
    one is set by its own section's value with no chart file edited by hand; a value its section
    leaves out is the operator's default, not an empty string."""
    from dataclasses import replace

    from contentgen.api.providers import Setting
    from contentgen.providers.settings import ProviderSettings
    from tests.providers import echo

    fields = ProviderSettings.model_fields
    for p in PROVIDERS.values():  # each declared setting is one the workers read
        assert all(s.field in fields for s in p.settings), p.name
        assert set(ProviderSettings().environment(p.name)) == {s.variable for s in p.settings}
    echo.register(monkeypatch)
    monkeypatch.setitem(
        PROVIDERS, "echo", replace(PROVIDERS["echo"], settings=(Setting("offline_step_seconds", "pace"),))
    )
    made = chart_files.providers_template()
    assert "CONTENTGEN_OFFLINE_STEP_SECONDS: {{ $echo.pace | quote }}" in made
    pace = json.loads(chart_files.values_schema())["properties"]["echo"]["properties"]["pace"]
    assert pace == {"type": "number", "minimum": 0, "maximum": 10}  # as ProviderSettings takes it
    chart = tmp_path / "contentgen"
    shutil.copytree(CHART, chart)
    (chart / "templates" / "_providers.tpl").write_text(made)
    (chart / "values.schema.json").write_text(chart_files.values_schema())
    values = yaml.safe_load((chart / "values.yaml").read_text())
    del values["fal"]["storeIO"]  # a section that leaves a setting out
    (chart / "values.yaml").write_text(yaml.safe_dump(values))

    def rendered(*given: str) -> dict[str, str]:
        text = chart_files.helm("template", "contentgen", str(chart), "--namespace", "contentgen", *given)
        return settings_env([d for d in yaml.safe_load_all(text) if d])

    env = rendered("--set-json", "echo.pace=2.5")
    assert env["CONTENTGEN_OFFLINE_STEP_SECONDS"] == "2.5"
    assert "CONTENTGEN_FAL_STORE_IO" not in env and env["CONTENTGEN_FAL_PRICING_API"] == "true"
    settings = operator_settings(env)
    assert settings.fal_store_io is True and settings.offline_step_seconds == 2.5
    assert settings.environment("echo") == {"CONTENTGEN_OFFLINE_STEP_SECONDS": "2.5"}
    assert "CONTENTGEN_OFFLINE_STEP_SECONDS" not in rendered()  # unset: the operator's default
    with pytest.raises(RuntimeError, match="echo/pace"):  # above what the workers take: refused
        rendered("--set-json", "echo.pace=11")


def test_the_input_policies_are_the_kinds_inputs() -> None:
    """templates/input-policy.yaml is made from the kinds' declared inputs (api/inputs.py) by
    `make generate`: current; a policy and its binding for every kind with an input, none without
    the share policy (whose ConfigMap holds the grants)."""
    from contentgen.api import KINDS
    from contentgen.api.inputs import declared

    assert chart_files.INPUTS_TEMPLATE.read_text() == chart_files.inputs_template(), "run `make generate`"
    with_inputs = sorted(k.plural for k in KINDS.values() if declared(k.spec))
    names = [d["metadata"]["name"] for d in render(SECRETS) if "-inputs-" in d["metadata"]["name"]]
    assert sorted(names) == sorted(f"contentgen-shares-inputs-{p}" for p in with_inputs * 2)
    unshared = render({**SECRETS, "sharePolicy": {"enabled": False}})
    assert not [d for d in unshared if "-inputs-" in d["metadata"]["name"]]
