"""The decisions of the store's credentials where Jobs run (controller/store_secret.py): what a copy
holds, when one is made, replaced or left alone, and when the operator copies at all. The copies
on the real cluster: tests/kube/test_store_secret.py."""

from __future__ import annotations

from typing import Any

from contentgen.controller.settings import OperatorSettings
from contentgen.controller.store_secret import copy_of, missing_copy, source_data, step
from tests.chart.conftest import operator_settings, render, settings_env

DATA = {"AWS_ACCESS_KEY_ID": "a2V5", "AWS_SECRET_ACCESS_KEY": "c2VjcmV0"}
OWNER = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "name": "w", "uid": "u"}


def existing(labels: dict[str, str] | None, data: dict[str, str]) -> dict[str, Any]:
    return {"metadata": {"name": "contentgen-s3", "labels": labels or {}}, "data": data}


def test_a_copy_holds_the_two_keys_and_nothing_else() -> None:
    source = {"data": {**DATA, "AWS_SESSION_TOKEN": "dG9r", "note": "eA=="}}
    assert source_data(source) == DATA  # as the API server gives them: never decoded
    assert source_data({"data": {"AWS_ACCESS_KEY_ID": "a2V5"}}) is None  # a key missing: no copy
    assert source_data(None) is None
    copy = copy_of("contentgen-s3", "team", DATA, OWNER)
    assert copy["data"] == DATA and copy["type"] == "Opaque"
    assert copy["metadata"] == {
        "name": "contentgen-s3",
        "namespace": "team",
        "labels": {
            "app.kubernetes.io/managed-by": "contentgen-operator",
            "app.kubernetes.io/part-of": "contentgen",
        },
        "ownerReferences": [OWNER],  # no blockOwnerDeletion: no finalizers rights needed
    }


def test_made_where_missing_replaced_where_stale_and_someone_elses_left_alone() -> None:
    ours = {"app.kubernetes.io/managed-by": "contentgen-operator"}
    assert step(None, DATA) == "create"
    assert step(existing(ours, DATA), DATA) == "current"
    assert step(existing(ours, {**DATA, "AWS_SECRET_ACCESS_KEY": "b2xk"}), DATA) == "update"
    assert step(existing(None, {}), DATA) == "theirs"  # a platform team's, whatever it holds
    assert step(existing({"app.kubernetes.io/managed-by": "Helm"}, DATA), DATA) == "theirs"


def test_a_pod_wanting_the_copy_is_recognised() -> None:
    assert missing_copy('Error: secret "contentgen-s3" not found', "contentgen-s3")
    assert not missing_copy('Error: secret "contentgen-fal" not found', "contentgen-s3")


def test_the_operator_copies_only_where_the_chart_asks_with_a_secret() -> None:
    """Only s3.workerCredentials namespaceSecret with copyToNamespaces copies: not the chart's
    default (each run's own credentials), nor workload identity (no s3.existingSecret: no Secret
    to copy), a namespaced install or copyToNamespaces: false."""
    assert not OperatorSettings().copy_s3_secret
    copying = {
        "existingSecret": "contentgen-s3",
        "workerCredentials": "namespaceSecret",
        "copyToNamespaces": True,
    }
    for values, copies in (
        ({"s3": copying}, True),
        ({"s3": {"existingSecret": "contentgen-s3"}}, False),
        ({}, False),
        ({"s3": {**copying, "copyToNamespaces": False}}, False),
        ({"s3": copying, "watchNamespaces": ["a"]}, False),
    ):
        settings = operator_settings(settings_env(render(values)))
        assert settings.copy_s3_secret is copies, values
