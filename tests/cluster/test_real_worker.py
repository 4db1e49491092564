"""Real mode: a Job exactly as the operator renders it (controller/jobs.py) runs the real
`contentgen worker` on the local node, with the offline provider and a local store, to Complete;
the termination message is the result the operator reads. No CRDs are installed, so the Job's
owner reference names a kind the server does not serve and the garbage collector leaves it be."""

from __future__ import annotations

from pathlib import Path

import pytest

from contentgen.api import RunResult, SpecSnapshot
from contentgen.api.run import parse_termination
from contentgen.cluster.kubelet import contentgen_command
from contentgen.controller.jobs import render_job
from contentgen.controller.settings import OperatorSettings
from tests.cluster.conftest import Cluster, wait_for

pytestmark = pytest.mark.timeout(120)


def test_the_operators_job_runs_the_real_worker(cluster: Cluster, tmp_path: Path) -> None:
    cluster.node.command = contentgen_command
    store = tmp_path / "store"
    spec = {"owner": "alice", "provider": "offline", "prompt": "a lighthouse", "numImages": 1}
    snapshot = SpecSnapshot(
        kind="ImageGeneration",
        name="demo",
        namespace="default",
        uid="5d1c9b8e-0000-4000-8000-000000000001",
        version=1,  # the operator numbers every run
        spec=spec,
    )
    settings = OperatorSettings(store=store.as_uri(), worker_service_account="default")
    job = cluster.create("batch", "jobs", render_job(snapshot, settings))
    name = job["metadata"]["name"]
    wait_for(
        lambda: cluster.job_condition("default", name, "Complete"), "the real worker's Job to complete", 90
    )
    (pod,) = cluster.pods_of(job)
    state = pod["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (state["exitCode"], state["reason"]) == (0, "Completed")
    result = parse_termination(state["message"])
    assert isinstance(result, RunResult), state["message"]
    assert result.placeholder and result.images and result.images[0].uri.startswith(store.as_uri())
    assert list(store.rglob("*.png"))  # the images are in the store the Job named
    work = tmp_path / "node" / "pods" / pod["metadata"]["uid"] / "volumes" / "work"
    assert work.is_dir()  # /work was this pod's own directory
    (run,) = cluster.node.processes
    assert run.argv[1] == "worker" and Path(run.argv[0]).name == "contentgen"
