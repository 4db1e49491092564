"""A training stopped and kept with kubectl, then continued, in the cluster: the real operator
(kopf) against the real control plane under the chart's RBAC, each Job's worker a container of the
worker image on the real node, on the offline provider, whose simulated training trains live as
the cluster's trainer does (its steps paced by CONTENTGEN_OFFLINE_STEP_SECONDS, so there is a
running training to stop). The tiny FLUX needs torch, which only the GPU worker image has: the
cluster trainer's own loop is tested on the CPU in tests/cluster/test_live_training.py.

- status.training grows while the run goes: its step, and each checkpoint's point as it is scored;
- `kubectl annotate loratraining/NAME contentgen.io/stop=keep-best`: the worker, which may only
  read and patch its resource's status, sees it in its patches' answers and stops at its next step;
  the version is Succeeded with its best checkpoint so far as its model and says it stopped
  (`stopped.how: asked`), the operator says it (TrainingStopped) and removes the annotation;
- a spec going on from version 1 (`training.continueFrom`) makes version 2 from version 1's newest
  state, its steps numbered on from it, its lineage naming it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contentgen.api.lora import STOP_ANNOTATION
from tests.harness.kube import lora
from tests.kube.harness import Cluster, operator, unoperated, wait_for
from tests.kubectl import Kubectl

pytestmark = pytest.mark.timeout(900)


def still_asked(c: Cluster, ns: str) -> bool:
    """Whether the LoraTraining still has the stop annotation."""
    return STOP_ANNOTATION in (
        (c.resource("LoraTraining", ns, "face") or {})["metadata"].get("annotations") or {}
    )


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with unoperated(tmp_path_factory) as c:
        yield c


def test_a_training_stopped_with_kubectl_keeps_its_best_checkpoint_and_goes_on(
    bare: Cluster, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    c, ns = bare, "live"
    monkeypatch.setenv("CONTENTGEN_OFFLINE_STEP_SECONDS", "0.1")  # passed into every offline Job
    training = {"steps": 1000, "checkpointEvery": 100}
    with operator(c):
        c.apply(lora("face", c.media, training=training, evaluation={"seeds": [1], "checkpoints": 10}), ns)

        def scored(least: int) -> dict[str, Any] | None:
            live = c.status("LoraTraining", ns, "face").get("training") or {}
            return live if len(live.get("checkpoints") or []) >= least else None

        # the live view: checkpoints appear in status.training while the run goes
        early = wait_for(lambda: scored(1), 300, "a first checkpoint scored in status.training")
        live = wait_for(lambda: scored(3), 300, "three checkpoints scored in status.training")
        assert c.status("LoraTraining", ns, "face")["phase"] == "Running"
        assert live["version"] == 1 and live["steps"] == 1000 and live["step"] >= 300 > early["step"]
        assert [p["step"] for p in live["checkpoints"]][:3] == [100, 200, 300]

        kubectl = Kubectl(c.local.control.admin_kubeconfig, tmp_path / "kubectl-home")
        kubectl.run("-n", ns, "annotate", "loratraining/face", f"{STOP_ANNOTATION}=keep-best", timeout=60)
        status = c.wait_phase("LoraTraining", ns, "face", "Succeeded", timeout=300)
        [version] = status["versions"]
        stopped = version["stopped"]
        assert stopped["how"] == "asked" and 300 <= stopped["step"] < 1000
        assert stopped["stepsSaved"] == 1000 - stopped["step"]
        points = version["likeness"]["checkpoints"]
        assert version["chosenStep"] == next(p["step"] for p in points if p.get("chosen"))
        assert all(p["step"] <= stopped["step"] for p in points)
        assert version["stateUri"].endswith(".state.json")
        reasons = [e["reason"] for e in c.events(ns, "face")]
        assert "TrainingStopped" in reasons
        wait_for(lambda: not still_asked(c, ns), 120, "the operator to remove the followed stop")
        assert "StopRefused" not in reasons  # it was followed

        # go on from version 1 for 200 more steps: version 2
        kept = int(version["stateUri"].rsplit("step-", 1)[1][:6])
        c.patch(
            "LoraTraining", ns, "face", {"spec": {"training": {"steps": 200, "continueFrom": {"version": 1}}}}
        )
        wait_for(
            lambda: c.status("LoraTraining", ns, "face").get("latestVersion") == 2, 600, "version 2 trained"
        )
        status = c.status("LoraTraining", ns, "face")
        second = next(v for v in status["versions"] if v["version"] == 2)
        assert second["continuedFrom"]["version"] == 1 and second["continuedFrom"]["step"] == kept
        assert [p["step"] for p in second["likeness"]["checkpoints"]][-1] == kept + 200
        assert "stopped" not in second

        # a stop asked when no run goes: removed, and said
        kubectl.run("-n", ns, "annotate", "loratraining/face", f"{STOP_ANNOTATION}=keep-best", timeout=60)
        wait_for(lambda: "StopRefused" in [e["reason"] for e in c.events(ns, "face")], 120, "StopRefused")
        wait_for(lambda: not still_asked(c, ns), 120, "the operator to remove a stop of nothing")
