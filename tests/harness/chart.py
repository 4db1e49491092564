"""The chart's rendered objects checked as Kubernetes would: validated against the cluster's schemas,
the restricted Pod Security profile, no secret in a value (tests/chart); and the chart rendered
with a user's values, for tests that install part of it or run the operator as it configures it
(`rendered`, `operator_settings`)."""

from __future__ import annotations

import math
import re
import tempfile
from collections import Counter
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate
import yaml

from tests.chart.conftest import (
    CHART,
    Doc,
    pod_specs,
)

KUBERNETES_VERSION = "1.33.0"


def rendered(values: dict[str, Any]) -> list[Doc]:
    """`helm template` of the chart with `values` (the release `contentgen` in `contentgen`)."""
    from scripts.chart import template

    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as file:
        yaml.safe_dump(values, file)
        file.flush()
        return [d for d in yaml.safe_load_all(template("--values", file.name)) if d]


def operator_settings(docs: list[Doc], prefixes: tuple[str, ...]) -> dict[str, str]:
    """The operator's ConfigMap entries starting with `prefixes`, as the chart renders them."""
    (config,) = [
        d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "contentgen-operator"
    ]
    return {k: v for k, v in config["data"].items() if k.startswith(prefixes)}


def validate(doc: Doc) -> None:
    group, _, version = doc["apiVersion"].rpartition("/")
    if (group, doc["kind"]) in CRDS:
        # One of ours (kopf's peering objects): scope and schema from the chart's own CRD.
        crd = CRDS[(group, doc["kind"])]
        assert ("namespace" in doc["metadata"]) == (crd["spec"]["scope"] == "Namespaced"), doc["kind"]
        (served,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
        body = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind", "metadata")}
        jsonschema.validate(body, served["schema"]["openAPIV3Schema"])
    elif doc["apiVersion"] in NOT_IN_KUBERNETES_SCHEMAS:
        pass
    else:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def assert_restricted(where: str, pod: Doc) -> None:
    """Pod Security Standard "restricted", plus a read-only root with an emptyDir /tmp."""
    ctx = pod.get("securityContext") or {}
    assert ctx.get("runAsNonRoot") is True, where
    assert (ctx.get("seccompProfile") or {}).get("type") == "RuntimeDefault", where
    for flag in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(flag), where
    empty_dirs = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
    for volume in pod.get("volumes", []):
        allowed = {"emptyDir", "secret", "configMap", "projected", "persistentVolumeClaim"}
        assert set(volume) - {"name"} <= allowed, (where, volume)
    for container in pod["containers"] + pod.get("initContainers", []):
        sc = container.get("securityContext") or {}
        name = f"{where}/{container['name']}"
        assert sc.get("allowPrivilegeEscalation") is False, name
        assert sc.get("privileged") in (None, False), name
        assert (sc.get("capabilities") or {}).get("drop") == ["ALL"], name
        assert not (sc.get("capabilities") or {}).get("add"), name
        assert sc.get("readOnlyRootFilesystem") is True, name
        assert sc.get("runAsNonRoot", ctx.get("runAsNonRoot")) is True, name
        user = sc.get("runAsUser", ctx.get("runAsUser"))
        assert isinstance(user, int) and user > 0, name
        assert (sc.get("seccompProfile") or ctx.get("seccompProfile") or {}).get("type") == "RuntimeDefault"
        tmp = [m for m in container.get("volumeMounts", []) if m["mountPath"] == "/tmp"]
        assert len(tmp) == 1 and tmp[0]["name"] in empty_dirs, name
        assert container.get("resources", {}).get("limits", {}).get("memory"), name


def secret_problems(text: str, docs: list[Doc]) -> list[str]:
    problems = []
    scrubbed = CHECKSUM_LINE.sub("", text)
    for pattern in SECRET_VALUE:
        problems += [f"secret-looking value: {m.group(0)[:8]}..." for m in pattern.finditer(scrubbed)]
    problems += [f"random-looking value: {t[:8]}..." for t in TOKEN.findall(scrubbed) if random_looking(t)]
    for doc in docs:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        if doc["kind"] == "Secret":
            problems.append(f"{where}: the chart must not create Secrets")
        if doc["kind"] == "ConfigMap":
            for key, value in doc.get("data", {}).items():
                if SECRET_NAME.search(key) and not key.endswith(REFERENCE_SUFFIXES):
                    problems.append(f"{where}: {key} holds a value ({value!r}), not a reference")
        for _, pod in pod_specs([doc]):
            for container in pod["containers"]:
                for env in container.get("env", []):
                    if not SECRET_NAME.search(env["name"]) or env["name"].endswith(REFERENCE_SUFFIXES):
                        continue
                    if "secretKeyRef" not in (env.get("valueFrom") or {}):
                        problems.append(f"{where}: env {env['name']} is not a secretKeyRef")
            for volume in pod.get("volumes", []):
                if "secret" in volume:
                    assert set(volume["secret"]) <= {"secretName", "items", "defaultMode", "optional"}
    return problems


CRDS = {
    (d["spec"]["group"], d["spec"]["names"]["kind"]): d
    for d in (yaml.safe_load(p.read_text()) for p in sorted((CHART / "crds").glob("*.yaml")))
}


# Custom resources kubernetes-validate has no schema for, and why that is fine.
NOT_IN_KUBERNETES_SCHEMAS = {
    "monitoring.coreos.com/v1": "the Prometheus Operator's CRD; checked for its Service port below",
}


SECRET_NAME = re.compile(r"(KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL|URI|DSN)", re.IGNORECASE)


# Settings whose value is the name of a Secret, a key in one, or a file path, not a secret.
# Variables that name Secrets (or keys in them) rather than hold one.
REFERENCE_SUFFIXES = ("__NAME", "__KEY", "_SECRET", "_FILE", "_PULL_SECRETS")


SECRET_VALUE = [
    re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"),  # AWS access key id
    re.compile(r"[a-z0-9+.-]+://[^/\s:@\"']+:[^/\s@\"']+@"),  # user:password@ in a URL
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"(?<![0-9a-fA-F])[0-9a-f]{32,}(?![0-9a-fA-F])"),  # hex keys and digests
]


TOKEN = re.compile(r"(?<![A-Za-z0-9/+=_-])[A-Za-z0-9/+=_-]{24,}(?![A-Za-z0-9/+=_-])")


# The one long token the chart renders on purpose: the ConfigMap's checksum on the pod template.
CHECKSUM_LINE = re.compile(r"^\s*checksum/config: [0-9a-f]{64}$", re.MULTILINE)


def random_looking(token: str) -> bool:
    """Long, with letters and digits, and as varied as random base64: an API key, not a name
    like CONTENTGEN_MAX_RUNNING_JOBS_PER_NAMESPACE."""
    counts = Counter(token)
    entropy = -sum(n / len(token) * math.log2(n / len(token)) for n in counts.values())
    has_digit, has_letter = any(c.isdigit() for c in token), any(c.isalpha() for c in token)
    return has_digit and has_letter and entropy >= 3.9
