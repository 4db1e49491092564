"""The operator's watches on the real API server: objects it does not own by kind (Jobs, pods) are
selected by the server, by label, and what it lists and watches is read from kube-apiserver's own
audit log (every request with its full URI)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from contentgen.controller.naming import LABEL_UID
from tests.kube.harness import Cluster, operated, wait_for

pytestmark = pytest.mark.timeout(600)

OPERATOR_USER = "system:serviceaccount:contentgen:contentgen-operator"
SELECTOR = "app.kubernetes.io/managed-by=contentgen-operator"


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with operated(tmp_path_factory, "watches") as c:
        yield c


def reads(c: Cluster) -> list[tuple[str, str, dict[str, list[str]]]]:
    """(verb, group/resource, query) of every list and watch the operator made, from the audit
    log's first line of each request (a watch's ResponseStarted: it completes only when it ends)."""
    seen = {}
    for line in c.audit_lines():
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


def counter(name: str, **labels: str) -> float:
    """A metric of the operator running in this process."""
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value(name, labels) or 0.0


def sample(name: str, resource: str) -> float:
    return counter(name, resource=resource)


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


def catalog_rev(c: Cluster, uid: str) -> int | None:
    doc = c.catalog_doc(uid)
    return int(doc["rev"]) if doc else None


def owner(job: dict[str, Any]) -> str:
    return str((job["metadata"].get("labels") or {}).get(LABEL_UID))


def queued(c: Cluster, ns: str, name: str) -> bool:
    from tests.harness.kube import reason

    status = c.status("ImageGeneration", ns, name)
    return bool(status.get("conditions")) and reason(status) == "Queued"


def test_a_resource_deleted_while_the_watch_was_away_leaves_every_index_and_queue(env: Cluster) -> None:
    """kopf's ImageGeneration watch is kept from the server while a Queued resource is deleted and
    kube-apiserver restarts: kopf lists again (410 Gone) and reports no deletion. The operator
    finds it missing from a listing of its own, forgets it (its catalog record is marked deleted;
    it no longer stands first in its namespace's queue: the next slot goes to the resource behind
    it, and no Job is made for it), and the unchanged resources the relist delivered again are
    not written again."""
    from tests.harness.kube import image, uid_of

    c, ns = env, "relist-cr"
    c.apply(image("settled"), ns)
    c.wait_phase("ImageGeneration", ns, "settled", "Succeeded", timeout=240)
    settled = uid_of(c, "ImageGeneration", ns, "settled")

    def rev_stable() -> int | None:
        first = catalog_rev(c, settled)
        time.sleep(3)
        return first if first is not None and catalog_rev(c, settled) == first else None

    rev = wait_for(rev_stable, 60, "the settled resource's catalog record to stay put")
    node = f"/api/v1/nodes/{c.node_name}"
    c.admin.patch(node, {"spec": {"unschedulable": True}})  # kubectl cordon: Jobs stay unfinished
    try:
        for name in ("a", "b"):  # the namespace's two slots, held
            c.apply(image(name), ns)
        held = {uid_of(c, "ImageGeneration", ns, name) for name in ("a", "b")}
        wait_for(lambda: held <= {owner(j) for j in c.jobs(ns)}, 120, "Jobs of a and b")
        c.apply(image("c"), ns)
        time.sleep(1.1)  # first come first served: c is created a second before d
        c.apply(image("d"), ns)
        for name in ("c", "d"):
            wait_for(lambda name=name: queued(c, ns, name), 120, f"{name} Queued")
        gone = uid_of(c, "ImageGeneration", ns, "c")
        wait_for(lambda: c.catalog_doc(gone), 30, "c's catalog record")
        found = counter("contentgen_resources_found_deleted_total", kind="ImageGeneration")
        created = counter("contentgen_jobs_created_total", kind="ImageGeneration")
        # kopf's watch of ImageGenerations fails (its retries wait 1, 1, 2, 3 s) while c is
        # deleted and the API server restarts; resumed from its old version, it is answered 410.
        env.proxy.inject("watch", "imagegenerations", times=4)
        env.proxy.drop_watches()
        c.delete("ImageGeneration", ns, "c")
        env.local.control.restart_apiserver()
        wait_for(
            lambda: (c.catalog_doc(gone) or {}).get("status") == "Deleted",
            120,
            "c's catalog record marked deleted",
        )
        # Found by a listing, not by an event the watch delivered.
        assert counter("contentgen_resources_found_deleted_total", kind="ImageGeneration") == found + 1
        assert catalog_rev(c, settled) == rev  # the relist wrote no unchanged record again
        c.delete("ImageGeneration", ns, "a")  # a slot comes free: d's, not the deleted c's
        d = uid_of(c, "ImageGeneration", ns, "d")
        wait_for(
            lambda: d in {owner(j) for j in c.jobs(ns)},
            120,
            "d's Job",
        )
        time.sleep(2)  # a Job made for c would be made before d's
        assert counter("contentgen_jobs_created_total", kind="ImageGeneration") == created + 1
    finally:
        c.admin.patch(node, {"spec": {"unschedulable": False}})  # kubectl uncordon
