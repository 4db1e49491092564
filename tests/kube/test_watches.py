"""The operator's watches on the real API server: objects it does not own by kind (Jobs, pods) are
selected by the server, by label, and what it lists and watches is read from kube-apiserver's own
audit log (every request with its full URI)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.kube.harness import Cluster, cluster, operator, wait_for

pytestmark = pytest.mark.timeout(600)

OPERATOR_USER = "system:serviceaccount:contentgen:contentgen-operator"
SELECTOR = "app.kubernetes.io/managed-by=contentgen-operator"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with (
        pytest.MonkeyPatch.context() as mp,
        cluster(tmp_path_factory.mktemp("watches"), mp) as c,
        operator(c),
    ):
        yield c


def reads(c: Cluster) -> list[tuple[str, str, dict[str, list[str]]]]:
    """(verb, group/resource, query) of every list and watch the operator made, from the audit
    log's first line of each request (a watch's ResponseStarted: it completes only when it ends)."""
    seen = {}
    for line in c.audit_log.read_text().splitlines():
        event = json.loads(line)
        ref = event.get("objectRef") or {}
        if event["user"]["username"] == OPERATOR_USER and event["verb"] in ("list", "watch"):
            resource = f"{ref.get('apiGroup', '')}/{ref.get('resource', '')}"
            query = parse_qs(urlsplit(event["requestURI"]).query)
            seen[event["auditID"]] = (event["verb"], resource, query)
    return list(seen.values())


def test_jobs_and_pods_are_selected_by_the_server(env: Cluster) -> None:
    foreign_job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "not-ours", "labels": {"team": "other"}},
        "spec": {
            "suspend": True,
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox:1"}]}
            },
        },
    }
    env.ensure_namespace("shared")
    env.admin.create("/apis/batch/v1/namespaces/shared/jobs", foreign_job)
    env.apply(
        {
            "apiVersion": "contentgen.io/v1alpha1",
            "kind": "ImageGeneration",
            "metadata": {"name": "selected"},
            "spec": {"owner": "alice", "provider": "offline", "prompt": "a lighthouse", "numImages": 1},
        },
        "shared",
    )
    # Our own Job and its pod are seen through the selected watches: the resource completes.
    env.wait_phase("ImageGeneration", "shared", "selected", "Succeeded", timeout=180)

    def watched() -> list[tuple[str, str, dict[str, list[str]]]] | None:
        seen = reads(env)
        kinds = {(verb, resource) for verb, resource, _ in seen}
        wanted = {(v, r) for v in ("list", "watch") for r in ("batch/jobs", "/pods")}
        return seen if wanted <= kinds else None

    seen = wait_for(watched, 60, "the operator's lists and watches of Jobs and pods in the audit log")
    for verb, resource, query in seen:
        if resource in ("batch/jobs", "/pods"):
            assert query.get("labelSelector") == [SELECTOR], (verb, resource, query)
        else:  # everything else it reads is its own by kind
            assert resource.startswith("contentgen.io/"), (verb, resource, query)


def sample(name: str, resource: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, {"resource": resource}) or 0.0


def test_a_job_deleted_while_the_watch_was_away_leaves_the_store_after_a_relist(env: Cluster) -> None:
    """The operator's Job watch is kept from the server while a Job is deleted and kube-apiserver
    restarts; resumed from its old version, it is answered 410 Gone, lists again, and the Job
    the listing lacks is gone from its store (it no longer counts as one of its Jobs). Last in this
    module: the restart also cuts the node's connections."""
    env.apply(
        {
            "apiVersion": "contentgen.io/v1alpha1",
            "kind": "ImageGeneration",
            "metadata": {"name": "relisted"},
            "spec": {"owner": "alice", "provider": "offline", "prompt": "a harbour", "numImages": 1},
        },
        "relist",
    )
    env.wait_phase("ImageGeneration", "relist", "relisted", "Succeeded", timeout=180)
    (job,) = env.jobs("relist")
    held = wait_for(lambda: sample("contentgen_watched_objects", "jobs"), 30, "the Job in the store")
    lists = sample("contentgen_watch_lists_total", "jobs")
    # The Job watch fails for a while (the informer backs off: 0.5, 1, 2, 4, 8 s), then the API
    # server is away while it restarts.
    env.proxy.inject("watch", "jobs", times=5)
    env.proxy.drop_watches()
    env.admin.delete(
        f"/apis/batch/v1/namespaces/relist/jobs/{job['metadata']['name']}",
        {"apiVersion": "v1", "kind": "DeleteOptions", "propagationPolicy": "Background"},
    )
    env.local.control.restart_apiserver()
    wait_for(
        lambda: sample("contentgen_watched_objects", "jobs") == held - 1,
        120,
        "the deleted Job to leave the operator's store",
    )
    assert sample("contentgen_watch_lists_total", "jobs") > lists  # by a new listing, not an event
