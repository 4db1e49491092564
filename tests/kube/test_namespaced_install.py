"""The chart's namespaced install (watchNamespaces, the worker's access made by the chart) on one
cluster, for the kinds whose calls go beyond test_operator.py's namespaced test: a LoraEvaluation
of a shared LoRA (the operator mirrors its grants into the share policy's ConfigMap) and a
VideoGeneration of a picture, deleted with deletionPolicy Delete, all at once. Every call the
operator and the worker make is one the chart's RBAC test knows (tests/rbac/observed-calls.json).
UPDATE_OBSERVED_CALLS=1 records them, the kinds' watches too (which the audit log has only once
a watch ends: the operator stopped, and the API server told so by the next event it would send,
minutes later), and runs the chart's cluster-wide install as well (each kind's module checks its
own calls under it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.harness.kube import clip, evaluation, image, lora, namespaced_rbac, record_calls
from tests.kube.harness import cluster, operator, wait_for
from tests.rbac.record import identity

pytestmark = pytest.mark.timeout(600)

RECORDING = os.environ.get("UPDATE_OBSERVED_CALLS") == "1"
NS = "team-e"


@pytest.mark.parametrize("mode", ["cluster-wide", "namespaced"] if RECORDING else ["namespaced"])
def test_the_charts_rbac_runs_each_kind_in_both_install_modes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    namespaced = mode == "namespaced"
    with cluster(tmp_path, monkeypatch, rbac=namespaced_rbac([NS]) if namespaced else None) as c:
        if namespaced:
            monkeypatch.setenv("CONTENTGEN_WATCH_NAMESPACES", f'["{NS}"]')
            monkeypatch.setenv("CONTENTGEN_MANAGE_WORKER_ACCESS", "false")  # the chart makes them there
        with operator(c):
            shared = lora("face", c.media)
            shared["metadata"]["annotations"] = {"contentgen.io/shared-with": "owner:bob=use"}
            c.apply(shared, NS)
            c.apply(evaluation("face-again", "face", deletionPolicy="Delete"), NS)
            c.apply(image("lighthouse"), NS)
            c.apply(clip("beam", "lighthouse", deletionPolicy="Delete"), NS)
            # the LoRA's grant mirrored for the share and input policies: the ConfigMap's get and
            # patch, by name; by the LoRA's name and by its uid (controller/shares.py)
            wait_for(
                lambda: (
                    ((c.get("configmaps", "contentgen", "contentgen-shares") or {}).get("data") or {})
                    == {
                        f"{NS}.face": "owner:bob=use",
                        f"_{c.resource('LoraTraining', NS, 'face')['metadata']['uid']}": "owner:bob=use",
                    }
                ),
                60,
                "the grant mirrored",
            )
            evaluated = c.wait_phase("LoraEvaluation", NS, "face-again", "Succeeded")
            assert evaluated["likeness"]["verdict"] == "no-faces" and evaluated["lora"]["version"] == 1
            animated = c.wait_phase("VideoGeneration", NS, "beam", "Succeeded", timeout=240)
            assert animated["video"]["frames"] == 17
            for kind, name in (("LoraEvaluation", "face-again"), ("VideoGeneration", "beam")):
                c.delete(kind, NS, name)
                wait_for(
                    lambda kind=kind, name=name: c.resource(kind, NS, name) is None, what=f"{name} deleted"
                )
        if RECORDING:  # an event for each of the stopped operator's watches, to end them
            c.apply(evaluation("after", "face"), NS)
            c.apply(clip("after-beam", "lighthouse"), NS)

            def watches_ended() -> bool:
                ended = {
                    d.resource for d in c.decisions() if d.verb == "watch" and identity(d.user) == "operator"
                }
                return {"loraevaluations", "videogenerations"} <= ended

            wait_for(watches_ended, 180, "the operator's watches of both kinds in the audit log")
        record_calls(c, mode)
