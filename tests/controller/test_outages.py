"""What is away when a call fails (controller/outages.py): one line for a dependency that is away
and for a resource deleted while its reconcile ran; the traceback only for what is none of these."""

from __future__ import annotations

import asyncio
import logging

import pytest

from contentgen.catalog.base import CatalogUnavailable
from contentgen.controller.kube import KubeError
from contentgen.controller.outages import away, deleted_meanwhile, report

GONE = {
    "kind": "Status",
    "status": "Failure",
    "reason": "NotFound",
    "message": 'imagegenerations.contentgen.io "offline-0" not found',
    "details": {"name": "offline-0", "group": "contentgen.io", "kind": "imagegenerations"},
    "code": 404,
}
PATCH = "PATCH /apis/contentgen.io/v1alpha1/namespaces/ns/imagegenerations/offline-0/status"


def test_what_is_away() -> None:
    assert away(KubeError(503, {"message": "unavailable"}, "GET /x")) == "the API server"
    assert away(KubeError(0, "connection refused", "GET /x")) == "the API server"
    assert away(ConnectionRefusedError()) == "the API server"
    assert away(CatalogUnavailable("the catalog cannot be reached")) == "the catalog"
    assert away(KubeError(404, GONE, PATCH)) == "" and away(ValueError("a bug")) == ""


def test_only_the_resources_own_404_is_a_deletion_meanwhile() -> None:
    """Found on the real node: a status write of an ImageGeneration deleted while the catalog was
    down was logged with its traceback."""
    assert deleted_meanwhile(KubeError(404, GONE, PATCH), "imagegenerations", "offline-0")
    assert not deleted_meanwhile(KubeError(404, GONE, PATCH), "imagegenerations", "offline-1")
    secret = {**GONE, "details": {"name": "offline-0", "kind": "secrets"}}
    assert not deleted_meanwhile(
        KubeError(404, secret, "GET /api/v1/namespaces/ns/secrets/offline-0"), "imagegenerations", "offline-0"
    )
    crd_missing = {
        "kind": "Status",
        "code": 404,
        "message": "the server could not find the requested resource",
    }
    assert not deleted_meanwhile(KubeError(404, crd_missing, PATCH), "imagegenerations", "offline-0")
    assert not deleted_meanwhile(KubeError(409, GONE, PATCH), "imagegenerations", "offline-0")


def test_an_outage_is_one_line_and_a_bug_keeps_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, "contentgen.operator")
    report(
        "reconcile of ImageGeneration ns/a", KubeError(503, {"message": "down"}, "GET /x"), "it is retried"
    )
    report("reconcile of ImageGeneration ns/b", ValueError("a bug"), "it is retried")
    outage, bug = caplog.records
    assert "the API server is away" in outage.getMessage() and outage.exc_info is None
    assert "a bug" in bug.getMessage() and bug.exc_info is not None


# What kube-apiserver answered a Job's creation in CI, its CRDs installed moments before (and again
# after it restarted): its garbage-collector admission (plugin/pkg/admission/gc) reads kinds from a
# discovery cache refreshed every 30 seconds.
KIND_UNKNOWN = {
    "kind": "Status",
    "status": "Failure",
    "reason": "Forbidden",
    "code": 403,
    "message": 'jobs.batch "a-ig-4c390d92-g1" is forbidden: cannot set blockOwnerDeletion in this case'
    " because cannot find RESTMapping for APIVersion contentgen.io/v1alpha1 Kind ImageGeneration: no"
    ' matches for kind "ImageGeneration" in version "contentgen.io/v1alpha1"',
}
JOBS = "POST /apis/batch/v1/namespaces/ns/jobs"


def test_a_kind_the_api_server_does_not_know_yet_passes_and_is_retried_soon() -> None:
    from contentgen.controller.job_admission import Backoff
    from contentgen.controller.outages import KIND_UNKNOWN_RETRY_SECONDS, kind_not_yet_known

    exc = KubeError(403, KIND_UNKNOWN, JOBS)
    assert kind_not_yet_known(exc) and away(exc) == "the API server"
    lacking = {**KIND_UNKNOWN, "message": 'jobs.batch is forbidden: User "x" cannot create resource "jobs"'}
    assert not kind_not_yet_known(KubeError(403, lacking, JOBS)) and away(KubeError(403, lacking, JOBS)) == ""
    backoff = Backoff(0.3)
    delays = [backoff.failed("u", 0.0, cap=KIND_UNKNOWN_RETRY_SECONDS) for _ in range(12)]
    assert max(delays) == KIND_UNKNOWN_RETRY_SECONDS < 30.0  # looked at again within the cache's refresh


def test_a_reconcile_the_api_server_refused_for_an_unknown_kind_is_looked_at_again_within_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The resource's backoff is capped at a few seconds, not the 300 s of a failure: a resource
    applied right after `helm install` gets its Job within seconds of the server knowing its kind."""
    import time
    from types import SimpleNamespace

    from contentgen.api import KINDS
    from contentgen.controller import reconciler
    from contentgen.controller.job_admission import Backoff
    from contentgen.controller.outages import KIND_UNKNOWN_RETRY_SECONDS

    async def refused(*_: object) -> None:
        raise KubeError(403, KIND_UNKNOWN, JOBS)

    monkeypatch.setattr(reconciler, "_reconcile", refused)
    op = SimpleNamespace(backoff=Backoff(0.3), written={})
    body = {"metadata": {"uid": "u", "namespace": "ns", "name": "a"}}
    for _ in range(12):
        with pytest.raises(KubeError):
            asyncio.run(reconciler.reconcile(op, KINDS["ImageGeneration"], body))  # type: ignore[arg-type]
    assert op.backoff.next_at["u"] - time.monotonic() <= KIND_UNKNOWN_RETRY_SECONDS

    async def lacking(*_: object) -> None:  # any other refusal backs off as far as the backoff goes
        raise KubeError(403, {"message": 'User "x" cannot create resource "jobs"'}, JOBS)

    monkeypatch.setattr(reconciler, "_reconcile", lacking)
    with pytest.raises(KubeError):
        asyncio.run(reconciler.reconcile(op, KINDS["ImageGeneration"], body))  # type: ignore[arg-type]
    assert op.backoff.next_at["u"] - time.monotonic() > 60.0
