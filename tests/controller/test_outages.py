"""What is away when a call fails (controller/outages.py): one line for a dependency that is away
and for a resource deleted while its reconcile ran; the traceback only for what is none of these."""

from __future__ import annotations

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
