"""One Secret per cluster for the store (s3.copyToNamespaces): on the real control plane and node,
under the chart's RBAC and admission policies, the operator copies the chart's Secret into each
namespace before its first Job there, so that a namespace made after the install runs its work
with nobody copying a Secret (its worker a container of the project's worker image, reaching the
real S3 server with the copy's keys); it keeps the copies in step with the source, makes a copy
someone deleted again, leaves a platform team's own Secret of that name alone, may write no other
Secret (the chart's policy, met with the operator's own token), never logs a value, and
uninstalling (the worker ClusterRole deleted) takes the copies with it."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest

from contentgen.controller.store_secret import KEYS
from localcluster.client import ApiError, Client
from tests.harness.kube import image, record_calls
from tests.kube.harness import (
    LOG,
    OPERATOR_ACCOUNT,
    OPERATOR_NAMESPACE,
    S3_SECRET,
    Cluster,
    cluster,
    operator,
    wait_for,
)

pytestmark = pytest.mark.timeout(900)
WORKER_ROLE = "contentgen-worker"
MANAGED = "app.kubernetes.io/managed-by"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with (
        pytest.MonkeyPatch.context() as mp,
        cluster(tmp_path_factory.mktemp("cluster"), mp) as c,
    ):
        mp.setenv("CONTENTGEN_COPY_S3_SECRET", "true")  # what the chart's ConfigMap says (test_rbac.py)
        with operator(c):
            yield c
        record_calls(c)


def new_namespace(c: Cluster, name: str) -> None:
    """A namespace made as anyone makes one: nothing in it (not Cluster.ensure_namespace, which
    puts the store's Secret there as the tests of an install without copies need)."""
    c.admin.create(
        "/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    )


def run_image(c: Cluster, namespace: str, name: str) -> dict[str, Any]:
    body = image(name)
    body["metadata"]["namespace"] = namespace
    c.admin.create(f"/apis/contentgen.io/v1alpha1/namespaces/{namespace}/imagegenerations", body)
    return c.wait_phase("ImageGeneration", namespace, name, "Succeeded", timeout=420)


def secret(c: Cluster, namespace: str) -> dict[str, Any] | None:
    return c.get("secrets", namespace, S3_SECRET)


def source_keys(c: Cluster) -> dict[str, str]:
    source = secret(c, OPERATOR_NAMESPACE)
    assert source is not None
    return {key: source["data"][key] for key in KEYS}


def set_source(c: Cluster, secret_key: str) -> None:
    c.admin.patch(
        f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/secrets/{S3_SECRET}",
        {"stringData": {"AWS_SECRET_ACCESS_KEY": secret_key}},
        "application/merge-patch+json",
    )


def copy_is(c: Cluster, namespace: str, data: dict[str, str]) -> bool:
    found = secret(c, namespace)
    return found is not None and {k: found["data"].get(k) for k in KEYS} == data


def test_a_namespace_made_after_the_install_runs_with_nobody_copying_a_secret(env: Cluster) -> None:
    c, ns = env, "late-team"
    new_namespace(c, ns)
    assert secret(c, ns) is None
    status = run_image(c, ns, "first")
    assert status["images"] and all(c.object_at(i["uri"]) is not None for i in status["images"])
    copy = secret(c, ns)
    assert copy is not None and copy["data"] == source_keys(c) and copy["type"] == "Opaque"
    assert copy["metadata"]["labels"][MANAGED] == "contentgen-operator"
    role = c.get("clusterroles", "", WORKER_ROLE, "rbac.authorization.k8s.io/v1")
    assert role is not None
    (owner,) = copy["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "ClusterRole",
        WORKER_ROLE,
        role["metadata"]["uid"],
    )


def test_the_copies_follow_the_source_and_a_deleted_one_is_made_again(env: Cluster) -> None:
    c, ns = env, "late-team"
    first = secret(c, ns)
    assert first is not None
    original = base64.b64decode(source_keys(c)["AWS_SECRET_ACCESS_KEY"]).decode()
    set_source(c, "rotated-secret-value")  # the platform team rotates the store's keys
    wait_for(lambda: copy_is(c, ns, source_keys(c)), 60, "the copy to follow the rotated source")
    updated = secret(c, ns)
    assert updated is not None and updated["metadata"]["uid"] == first["metadata"]["uid"]  # in place
    set_source(c, original)  # and back to the ones the S3 server knows
    wait_for(lambda: copy_is(c, ns, source_keys(c)), 60, "the copy to follow the source back")
    c.admin.delete(f"/api/v1/namespaces/{ns}/secrets/{S3_SECRET}")  # someone deletes the copy
    run_image(c, ns, "second")
    assert copy_is(c, ns, source_keys(c))
    said = "\n".join(LOG.lines())
    assert "rotated-secret-value" not in said and original not in said  # never logged
    assert "copied the store's credentials" in said


def test_a_platform_teams_own_secret_is_left_alone(env: Cluster) -> None:
    c, ns = env, "own-keys"
    new_namespace(c, ns)
    assert c.s3 is not None
    own = {"AWS_ACCESS_KEY_ID": c.s3.access_key, "AWS_SECRET_ACCESS_KEY": c.s3.secret_key}
    c.admin.create(
        f"/api/v1/namespaces/{ns}/secrets",
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": S3_SECRET}, "stringData": own},
    )
    before = secret(c, ns)
    run_image(c, ns, "theirs")
    after = secret(c, ns)
    assert after is not None and before is not None
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    assert (
        MANAGED not in (after["metadata"].get("labels") or {}) and "ownerReferences" not in after["metadata"]
    )


def test_the_operator_may_write_no_other_secret(env: Cluster) -> None:
    """RBAC cannot limit create by name: the chart's admission policy holds the operator to its
    copies, here met with the operator's own token."""
    c = env
    assert c.local.control is not None
    token = c.local.token(OPERATOR_NAMESPACE, OPERATOR_ACCOUNT)
    as_operator = Client(c.local.control.url, c.local.control.ca.cert_file, token=token)
    other = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "anything"}, "stringData": {"k": "v"}}
    with pytest.raises(ApiError) as refused:
        as_operator.create("/api/v1/namespaces/late-team/secrets", other)
    assert "writes only its own Secrets" in str(refused.value) and "late-team/anything is not one" in str(
        refused.value
    )
    theirs = secret(c, "own-keys")
    assert theirs is not None
    theirs["metadata"]["labels"] = {MANAGED: "contentgen-operator"}
    with pytest.raises(ApiError) as taken:
        as_operator.request("PUT", f"/api/v1/namespaces/own-keys/secrets/{S3_SECRET}", body=theirs)
    assert f"own-keys/{S3_SECRET} is not one" in str(taken.value)


def test_uninstalling_takes_the_copies_with_it(env: Cluster) -> None:
    """Last: the worker ClusterRole (the copies' owner) deleted, as `helm uninstall` deletes it."""
    c = env
    c.admin.delete(f"/apis/rbac.authorization.k8s.io/v1/clusterroles/{WORKER_ROLE}")
    wait_for(lambda: secret(c, "late-team") is None, 120, "the garbage collector to delete the copy")
    assert secret(c, "own-keys") is not None and secret(c, OPERATOR_NAMESPACE) is not None
