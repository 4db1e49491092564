"""Reading a held Job's Kueue Workload (controller/workloads.py) against a scripted API server:
the label-selected list, Kueue's API versions (v1beta2, else v1beta1), and where Kueue is not
installed (404) or the operator may not read Workloads (403): no Workload read, one log line,
and no request again until the resync interval has passed."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest

from contentgen.controller import workloads
from contentgen.controller.decide import World, decide
from contentgen.controller.job_admission import Backoff, NamespaceQueue
from contentgen.controller.kube import Kube, KubeError
from contentgen.controller.reconciler import _schedule
from contentgen.controller.settings import OperatorSettings
from contentgen.controller.state import Operator
from contentgen.controller.workloads import may_read, read_workload
from tests.harness.controller import NOW, job, reason
from tests.harness.kueue import job_uid, recorded, started

WAITING = recorded("no-quota")  # the real Kueue's (tests/harness/kueue.py)
JOB_UID = job_uid(WAITING)
HELD = job(suspended=True, queue="gpus", job_uid=JOB_UID)


class Server:
    """Answers each version's list with `answers[version]`: the items, or a status code."""

    def __init__(self, **answers: Any) -> None:
        self.answers = answers
        self.requests: list[tuple[str, dict[str, str]]] = []

    async def request(self, method: str, path: str, *, params: dict[str, str]) -> Any:
        assert method == "GET"
        self.requests.append((path, params))
        version = path.split("/")[3]
        answer = self.answers.get(version, 404)
        if isinstance(answer, int):
            raise KubeError(answer, {"message": "refused"}, f"GET {path}")
        return {"apiVersion": f"kueue.x-k8s.io/{version}", "kind": "WorkloadList", "items": answer}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(workloads.time, "monotonic", clock)
    return clock


def operator(server: Server, **settings: Any) -> Operator:
    kube = Kube.__new__(Kube)
    kube.request = server.request  # type: ignore[method-assign,assignment]
    return Operator(
        settings=OperatorSettings(resync_interval_seconds=300, **settings),
        kube=kube,
        queue=NamespaceQueue(2),
        backoff=Backoff(1.0),
    )


def read(op: Operator, held: Any = HELD) -> tuple[bool, Any]:
    return asyncio.run(read_workload(op, held))


def test_the_workload_is_listed_by_its_jobs_uid(clock: Clock) -> None:
    server = Server(v1beta2=[WAITING])
    was_read, found = read(operator(server))
    assert was_read and found is not None and found.name == WAITING["metadata"]["name"]
    assert server.requests == [
        (
            "/apis/kueue.x-k8s.io/v1beta2/namespaces/ns/workloads",
            {"labelSelector": f"kueue.x-k8s.io/job-uid={JOB_UID}"},
        )
    ]
    assert read(operator(Server(v1beta2=[]))) == (True, None)  # Kueue has made none yet


def test_an_older_kueue_serves_v1beta1(clock: Clock) -> None:
    server = Server(v1beta1=[recorded("admitted-v1beta1")])
    op = operator(server)
    assert read(op)[0] and [p.split("/")[3] for p, _ in server.requests] == ["v1beta2", "v1beta1"]
    server.requests.clear()
    assert read(op)[0] and [p.split("/")[3] for p, _ in server.requests] == ["v1beta1"]  # remembered


def test_kueue_not_installed_is_said_once_and_asked_again_after_the_resync(
    clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    server = Server()  # every version: 404
    op = operator(server)
    with caplog.at_level(logging.INFO, logger="contentgen.operator"):
        assert read(op) == (False, None)
        assert len(server.requests) == 2 and not may_read(op)
        for _ in range(5):  # rechecks meanwhile: no request, no log line
            assert read(op) == (False, None)
        assert len(server.requests) == 2
        clock.now += 301
        assert may_read(op) and read(op) == (False, None) and len(server.requests) == 4
    lines = [r.getMessage() for r in caplog.records if "Kueue" in r.getMessage()]
    assert lines == [
        "Kueue's Workloads are not served (no workloads.kueue.x-k8s.io v1beta2 or v1beta1: Kueue is not "
        "installed): Queued messages name the queue without Kueue's reason"
    ]
    # installed since: read at the next look after the interval, and from then on
    server.answers["v1beta2"] = [WAITING]
    clock.now += 301
    assert read(op)[0] and may_read(op) and op.kueue.unavailable == ""


def test_rbac_refusing_is_said_once(clock: Clock, caplog: pytest.LogCaptureFixture) -> None:
    server = Server(v1beta2=403)
    op = operator(server)
    with caplog.at_level(logging.INFO, logger="contentgen.operator"):
        for _ in range(3):
            assert read(op) == (False, None)
            clock.now += 301
    assert len(server.requests) == 3  # once per interval, never the other version
    lines = [r.getMessage() for r in caplog.records if "Kueue" in r.getMessage()]
    assert len(lines) == 1 and "403" in lines[0] and "kueue.readWorkloads" in lines[0]


def test_another_error_fails_the_look(clock: Clock) -> None:
    op = operator(Server(v1beta2=500))
    with pytest.raises(KubeError):
        read(op)
    assert may_read(op)  # retried with the resource's backoff, not taken for Kueue missing


def test_nothing_is_asked_when_off_or_for_a_job_not_seen_yet(clock: Clock) -> None:
    server = Server(v1beta2=[WAITING])
    assert read(operator(server, read_kueue_workloads=False)) == (False, None)
    assert not may_read(operator(server, read_kueue_workloads=False))
    assert read(operator(server), job(suspended=True, queue="gpus")) == (False, None)  # no uid yet
    assert server.requests == []


def test_a_held_resource_is_looked_at_again_at_least_every_minute(clock: Clock) -> None:
    """What Kueue says changes with nothing on the Job to announce it: the resource's rechecks
    stop doubling at RECHECK_SECONDS while Workloads can be read (else at the backoff's 5 minutes)."""
    res = started()
    decision = decide(res, World(now=NOW, jobs=(HELD,), workload_read=True))
    assert decision.recheck and reason(decision.status) == "Queued"
    for reads, longest in ((True, workloads.RECHECK_SECONDS), (False, 300.0)):
        op = operator(Server(), read_kueue_workloads=reads)
        for _ in range(12):
            _schedule(op, res, decision)
        assert op.backoff.next_at[res.uid] - time.monotonic() == pytest.approx(longest, abs=1)
