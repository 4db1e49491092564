"""The operator started by the test, on one cluster for the module: with settings of its own
(test_operator.py's module runs one operator throughout), or stopped and started again."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.harness.kube import image, reason, record_calls
from tests.kube.harness import Cluster, operator, unoperated, wait_for

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with unoperated(tmp_path_factory) as c:
        yield c


def test_pod_that_cannot_start_is_reported(bare: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    """A Secret missing in the resource's namespace keeps the pod from starting: say so in status."""
    c = bare
    monkeypatch.setenv("CONTENTGEN_FAL_KEY_SECRET__NAME", "fal-credentials")
    monkeypatch.setenv(
        "CONTENTGEN_WORKER_SERVICE_ACCOUNT_ANNOTATIONS",
        '{"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/w"}',
    )
    with operator(c):
        c.apply(image("needs-key", provider="fal"), "team-b")
        status = wait_for(
            lambda: (
                (s := c.status("ImageGeneration", "team-b", "needs-key")).get("conditions")
                and reason(s) == "PodNotStarting"
                and s
            ),
            what="PodNotStarting",
        )
        assert 'CreateContainerConfigError: secret "fal-credentials" not found' in status["message"]
        assert status["phase"] == "Pending"
        wait_for(
            lambda: any(
                e["reason"] == "PodNotStarting" and e["type"] == "Warning"
                for e in c.events("team-b", "needs-key")
            ),
            what="a Warning",
        )
        account = c.get("serviceaccounts", "team-b", "contentgen-worker")
        assert account is not None and account["metadata"]["annotations"] == {
            "eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/w"
        }
        c.delete("ImageGeneration", "team-b", "needs-key")  # nothing reaches fal
        wait_for(lambda: c.resource("ImageGeneration", "team-b", "needs-key") is None, what="deletion")
    assert c.runs() == []


def test_operator_restart_mid_job_creates_no_second_job(bare: Cluster) -> None:
    c = bare
    c.hold()
    with operator(c):
        c.apply(image("survivor"), "default")
        wait_for(lambda: c.jobs("default"), what="a Job")
    # The operator is gone; the pod runs on.
    with operator(c):
        c.release()
        status = c.wait_phase("ImageGeneration", "default", "survivor", "Succeeded")
    (job,) = c.jobs("default")
    survivor = [run for run in c.runs() if run.startswith("survivor-")]
    assert survivor == [job["metadata"]["name"]] and status["jobName"] == job["metadata"]["name"]
    record_calls(c)
