"""The real operator (kopf) against the real control plane (RBAC enforced on its ServiceAccount),
with the real worker run by the local node for every Job: the lifecycle users see through
kubectl, the store and the catalog."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from contentgen.store import keys
from tests.conftest import EXAMPLES
from tests.harness.kube import image, lora, namespaced_rbac, reason, record_calls, uid_of
from tests.httpserver import serve
from tests.kube.harness import ApiError, Cluster, cluster, operated, operator, wait_for
from tests.kubectl import Kubectl
from tests.rbac.record import CALLS_FILE, OPERATOR_USER, identity

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with operated(tmp_path_factory) as c:
        yield c
    record_calls(c)


# What the dataset stage finds in the clip (status.dataset).
CLIP_DATASET = {
    "scenes": 5,
    "candidates": 5,
    "faces": 4,
    "kept": 4,
    "minFrames": 4,
    "dropped": {
        **{"tooShort": 0, "noFace": 1, "blurry": 0, "dark": 0, "otherPerson": 0, "crowded": 0},
        **{"duplicate": 0, "overMaxFrames": 0},
    },
    "peopleFound": 1,
}


def clip_dataset(status: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """status.dataset's counts, checked whole, and its one person (the sample's astronaut), the subject."""
    dataset = status["dataset"]
    (person,) = dataset["people"]
    assert person["number"] == 1 and person["subject"] and person["scenes"] == 4
    assert dataset["subject"] == {"person": 1, "chosenBy": "screenTime", "purity": 1.0}
    return {key: dataset[key] for key in {**CLIP_DATASET, **changes}}


def catalog_status(c: Cluster, uid: str, status: str, **latest: Any) -> dict[str, Any]:
    """The record once its status is `status` (and its latest run has the fields `latest`)."""

    def check() -> dict[str, Any] | None:
        doc = c.catalog_doc(uid)
        if not doc or doc["status"] != status:
            return None
        run = doc.get("latestRun") or {}
        return doc if all(run.get(k) == v for k, v in latest.items()) else None

    return wait_for(check, 30, f"catalog {uid} {status} {latest}")


# --- the lifecycle ---------------------------------------------------------------------------


def test_lora_training_runs_as_a_job_and_succeeds(env: Cluster, tmp_path: Path) -> None:
    c, ns = env, "lifecycle"
    c.apply(lora("avatar", c.media), ns)
    status = c.wait_phase("LoraTraining", ns, "avatar", "Succeeded")
    uid = uid_of(c, "LoraTraining", ns, "avatar")

    (job,) = c.jobs(ns)
    owner = job["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "LoraTraining",
        "avatar",
        uid,
        True,
    )
    assert job["metadata"]["labels"]["contentgen.io/owner"] == "alice"
    assert status["jobName"] == job["metadata"]["name"]

    assert status["progress"] == 100 and status["latestVersion"] == 1 and reason(status) == "Succeeded"
    (v1,) = status["versions"]
    model = c.object_at(v1["modelUri"])
    assert model is not None and model.size_bytes == v1["sizeBytes"]
    assert "placeholder" in status["message"]
    # the offline placeholders show no face: the likeness condition says it is not measured
    measured = next(c for c in status["conditions"] if c["type"] == "LikenessPoor")
    assert (measured["status"], measured["reason"]) == ("Unknown", "LikenessUnmeasured")
    assert f"likeness {status['likeness']['verdict']}" in measured["message"]
    # the gate of docs/likeness.md#gates, with the real kubectl: the wait returns (an unmeasured
    # version resolves it), and the verdict's check fails at once instead of at a timeout
    kubectl = Kubectl(c.local.control.admin_kubeconfig, tmp_path / "kubectl-home")
    ref = ("-n", ns, "loratraining/avatar")
    waited = kubectl.run("wait", *ref, "--for=condition=LikenessEvaluated", "--timeout=60s", check=False)
    assert waited.returncode == 0, waited.stderr
    gate = '--for=jsonpath={.status.conditions[?(@.type=="LikenessEvaluated")].reason}=LikenessGood'
    checked = kubectl.run("wait", *ref, "--timeout=0", gate, check=False)
    assert checked.returncode != 0, checked
    evaluated = next(c for c in status["conditions"] if c["type"] == "LikenessEvaluated")
    assert (evaluated["status"], evaluated["reason"]) == ("True", "LikenessUnmeasured")

    # Live progress came from the worker while it ran.
    running = [
        s["status"]
        for s in c.history("LoraTraining", ns, "avatar")
        if (s.get("status") or {}).get("phase") == "Running"
    ]
    assert {"dataset", "train"} <= {s.get("stage") for s in running}
    assert any(0 < s.get("progress", 0) < 100 for s in running)
    # status.dataset: absent until the run has counted (no defaulted zeros while it runs)
    assert all("dataset" not in s for s in running)
    assert clip_dataset(status) == CLIP_DATASET

    reasons = wait_for(
        lambda: (r := [e["reason"] for e in c.events(ns, "avatar")]) and r[-1] == "Succeeded" and r,
        what="events",
    )
    assert reasons[:1] == ["JobCreated"] and "Running" in reasons

    doc = catalog_status(c, uid, "Succeeded")
    assert doc["type"] == "lora-training" and doc["owner"] == "alice" and doc["triggerWord"] == "tw"
    assert doc["latestVersion"] == 1 and doc["latestModelUri"] == v1["modelUri"]
    assert {a["uri"] for a in doc["artifacts"]} >= {v1["modelUri"], v1["datasetUri"]}
    assert doc["totalBytes"] > 0 and "avatar" in doc["tags"]

    # a promotion by annotation (docs/likeness.md#choosing-a-checkpoint-yourself) reaches the
    # operator: the offline trainer scored its one checkpoint, step 100, so step 50 is refused, saying so
    kubectl.run("annotate", *ref, 'contentgen.io/promoted-checkpoints={"1": 50}', "--overwrite")
    refused = wait_for(
        lambda: (c.resource("LoraTraining", ns, "avatar") or {}).get("status", {}).get("promotionProblem"),
        what="the promotion's problem in the status",
    )
    assert "version 1 has no scored checkpoint 50 (scored: 100)" in refused
    assert wait_for(
        lambda: [e for e in c.events(ns, "avatar") if e["reason"] == "PromotionRefused"], what="its Event"
    )


def test_spec_change_trains_version_two(env: Cluster) -> None:
    c, ns = env, "versions"
    c.apply(lora("style", c.media), ns)
    c.wait_phase("LoraTraining", ns, "style", "Succeeded")

    c.patch("LoraTraining", ns, "style", {"spec": {"training": {"steps": 200}}})
    status = wait_for(
        lambda: (
            (s := c.status("LoraTraining", ns, "style")).get("latestVersion") == 2
            and s.get("phase") == "Succeeded"
            and s
        ),
        what="version 2",
    )
    assert [v["version"] for v in status["versions"]] == [1, 2]
    assert [v["steps"] for v in status["versions"]] == [100, 200]
    assert status["observedGeneration"] == 2
    assert all(c.object_at(v["modelUri"]) for v in status["versions"])
    assert len(c.jobs(ns)) == 2
    doc = catalog_status(c, uid_of(c, "LoraTraining", ns, "style"), "Succeeded", version=2, phase="Succeeded")
    assert [v["version"] for v in doc["versions"]] == [1, 2]
    assert [v["spec"]["training"]["steps"] for v in doc["versions"]] == [100, 200]  # each one's snapshot


def test_lora_ref_waits_then_resolves(env: Cluster) -> None:
    c, ns = env, "refs"
    c.apply(image("portrait", model="flux-lora", loras=[{"loraRef": {"name": "later"}, "scale": 0.6}]), ns)
    stalled = wait_for(
        lambda: (s := c.status("ImageGeneration", ns, "portrait")).get("conditions") and s, what="a status"
    )
    assert reason(stalled, "Stalled") == "LoraNotFound" and not c.jobs(ns)

    c.apply(lora("later", c.media), ns)
    status = c.wait_phase("ImageGeneration", ns, "portrait", "Succeeded")
    lora_status = c.status("LoraTraining", ns, "later")
    history = [s["status"] for s in c.history("ImageGeneration", ns, "portrait") if s.get("status")]
    assert "LoraNotReady" in {reason(s) for s in history if s.get("conditions")}
    job = next(j for j in c.jobs(ns) if j["metadata"]["labels"]["contentgen.io/kind"] == "ImageGeneration")
    env_vars = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    snapshot = json.loads(env_vars["CONTENTGEN_SPEC"])
    used = {
        "uri": lora_status["versions"][0]["modelUri"],
        "scale": 0.6,
        "name": "later",
        "uid": uid_of(c, "LoraTraining", ns, "later"),
        "version": 1,
        "baseModel": "flux.1",  # what it is made for (training.baseModel), checked against the model
        "lowNoiseUri": "",  # a Wan 2.2 pair's second file; a FLUX.1 LoRA has none
    }
    assert snapshot["loras"] == [used]
    assert status["images"][0]["width"] > 0
    assert status["loras"] == [used]  # lineage, in the status too


def test_too_small_a_dataset_fails_before_paying_with_its_counts(env: Cluster) -> None:
    c, ns = env, "gate"
    c.apply(lora("small", c.media, dataset={"maxFrames": 8, "minFrames": 5, "minSceneSeconds": 0.5}), ns)
    status = c.wait_phase("LoraTraining", ns, "small", "Failed")
    assert reason(status) == "DatasetTooSmall" and reason(status, "Stalled") == "DatasetTooSmall"
    assert "gives 4 usable images, fewer than dataset.minFrames 5" in status["message"]
    assert "lower dataset.minFrames to 4" in status["message"]
    # the counts came from the worker's termination message into the status
    assert clip_dataset(status) == {**CLIP_DATASET, "minFrames": 5}
    assert status.get("versions", []) == [] and status.get("latestVersion", 0) == 0
    # permanent: one worker run, nothing uploaded
    (job,) = c.jobs(ns)
    assert c.runs(job["metadata"]["name"]) == [job["metadata"]["name"]]
    uid = uid_of(c, "LoraTraining", ns, "small")
    assert not [i for i in c.store.list("datasets/") if f"/{uid}/" in i.key]
    doc = catalog_status(c, uid, "Failed")
    assert doc["latestRun"]["error"]["reason"] == "DatasetTooSmall" and doc["dataset"]["kept"] == 4

    c.patch("LoraTraining", ns, "small", {"spec": {"dataset": {"minFrames": 4}}})  # the fix it named
    status = wait_for(
        lambda: (s := c.status("LoraTraining", ns, "small")).get("phase") == "Succeeded" and s,
        120,
        "the fixed LoraTraining to succeed",
    )
    # run 1 failed: the fixed run is version 2 (a run's number is never used again)
    assert status["latestVersion"] == 2 and clip_dataset(status) == CLIP_DATASET
    assert [v["version"] for v in status["versions"]] == [2]
    assert [i for i in c.store.list("datasets/") if f"/{uid}/" in i.key]  # now uploaded


def test_failure_is_reported_with_the_workers_reason(env: Cluster) -> None:
    c, ns = env, "failures"
    c.apply(lora("broken", c.media, source="notes.mp4"), ns)
    status = c.wait_phase("LoraTraining", ns, "broken", "Failed")
    assert reason(status) == "InvalidInput" and reason(status, "Stalled") == "InvalidInput"
    assert "notes.mp4" in status["message"] or "video" in status["message"]
    # A permanent failure is not retried: one worker run.
    (job,) = c.jobs(ns)
    assert c.runs(job["metadata"]["name"]) == [job["metadata"]["name"]]
    wait_for(
        lambda: any(e["reason"] == "InvalidInput" and e["type"] == "Warning" for e in c.events(ns, "broken")),
        what="a Warning event",
    )
    doc = catalog_status(c, uid_of(c, "LoraTraining", ns, "broken"), "Failed")
    assert doc["latestRun"]["error"]["reason"] == "InvalidInput"


def test_transcription_succeeds(env: Cluster) -> None:
    c, ns = env, "speech"
    manifest = {
        "apiVersion": "contentgen.io/v1alpha1",
        "kind": "Transcription",
        "metadata": {"name": "talk"},
        "spec": {
            "owner": "bob",
            "provider": "offline",
            "source": {"url": f"{c.media}/clip.mp4"},
            "speakerLabels": True,
        },
    }
    c.apply(manifest, ns)
    status = c.wait_phase("Transcription", ns, "talk", "Succeeded")
    transcript = status["transcript"]
    assert transcript["durationSeconds"] == pytest.approx(7.5, abs=0.2)
    assert c.read(transcript["textUri"]).decode()


def test_admission_rejects_invalid_resources(env: Cluster) -> None:
    """The control plane admits with the generated CRDs, as the API server would."""
    with pytest.raises(ApiError) as info:
        env.apply(image("bad", model="flux-dev", loras=[{"url": "https://h/x.safetensors"}]), "default")
    assert (
        info.value.code == 422 and "loras are allowed only with a model that loads them" in info.value.message
    )


# --- concurrency, deletion --------------------------------------------------------------------


def test_concurrency_limit_queues_the_rest(env: Cluster) -> None:
    c, ns = env, "busy"
    c.hold()
    try:
        for n in range(3):
            c.apply(image(f"img-{n}"), ns)
        wait_for(lambda: len(c.jobs(ns)) == 2, what="two Jobs")
        queued = wait_for(
            lambda: [
                n
                for n in range(3)
                if (
                    c.status("ImageGeneration", ns, f"img-{n}").get("conditions")
                    and reason(c.status("ImageGeneration", ns, f"img-{n}")) == "Queued"
                )
            ],
            what="one queued",
        )
        assert len(queued) == 1 and len(c.jobs(ns)) == 2
    finally:
        c.release()
    for n in range(3):
        c.wait_phase("ImageGeneration", ns, f"img-{n}", "Succeeded")
    assert len(c.jobs(ns)) == 3


def test_delete_policy_removes_objects_and_marks_the_record(env: Cluster) -> None:
    c, ns = env, "cleanup"
    c.apply(image("gone", deletionPolicy="Delete"), ns)
    c.apply(image("kept", deletionPolicy="Retain"), ns)
    talk = {
        "apiVersion": "contentgen.io/v1alpha1",
        "kind": "Transcription",
        "metadata": {"name": "said"},
        "spec": {
            "owner": "alice",
            "provider": "offline",
            "source": {"url": f"{c.media}/clip.mp4"},
            "deletionPolicy": "Delete",
        },
    }
    c.apply(talk, ns)
    c.apply(lora("learnt", c.media, deletionPolicy="Delete"), ns)
    gone = c.wait_phase("ImageGeneration", ns, "gone", "Succeeded")
    kept = c.wait_phase("ImageGeneration", ns, "kept", "Succeeded")
    gone_uid, kept_uid = uid_of(c, "ImageGeneration", ns, "gone"), uid_of(c, "ImageGeneration", ns, "kept")
    catalog_status(c, gone_uid, "Succeeded")
    catalog_status(c, kept_uid, "Succeeded")
    c.delete("ImageGeneration", ns, "gone")
    c.delete("ImageGeneration", ns, "kept")
    wait_for(
        lambda: (
            c.resource("ImageGeneration", ns, "gone") is None
            and c.resource("ImageGeneration", ns, "kept") is None
        ),
        what="deletion",
    )
    assert c.object_at(gone["images"][0]["uri"]) is None
    assert c.object_at(kept["images"][0]["uri"]) is not None
    assert c.catalog_doc(gone_uid)["status"] == "Deleted" and c.catalog_doc(gone_uid)["deletedAt"]
    assert c.catalog_doc(gone_uid)["deleted"]["policy"] == "Delete"
    # Retain: the record says the resource is gone, and that its outputs are kept (still usable)
    kept_doc = wait_for(lambda: (d := c.catalog_doc(kept_uid)) and d.get("deleted") and d, what="the mark")
    assert kept_doc["status"] == "Succeeded" and kept_doc["deleted"]["policy"] == "Retain"
    assert kept_doc["deleted"]["outputsKept"] is True and kept_doc["versions"]
    for kind, name in (("Transcription", "said"), ("LoraTraining", "learnt")):  # every kind's finalizer
        uid = uid_of(c, kind, ns, name)
        c.wait_phase(kind, ns, name, "Succeeded")
        c.delete(kind, ns, name)
        wait_for(lambda kind=kind, name=name: c.resource(kind, ns, name) is None, what=f"{name} deleted")
        assert c.catalog_doc(uid)["status"] == "Deleted"
    wait_for(lambda: c.jobs(ns) == [], what="Jobs garbage-collected with their owners")


def test_deleting_a_running_resource_stops_its_job(env: Cluster) -> None:
    c, ns = env, "stop"
    c.hold()
    try:
        c.apply(image("halt"), ns)
        wait_for(lambda: c.jobs(ns), what="a Job")
        c.delete("ImageGeneration", ns, "halt")
        wait_for(
            lambda: c.resource("ImageGeneration", ns, "halt") is None and not c.jobs(ns),
            what="resource and Job gone",
        )
    finally:
        c.release()


def test_a_deleted_resource_stops_its_worker_and_cleans_up_after_it(env: Cluster) -> None:
    """Deleted (deletionPolicy Delete) while its worker waits on a stalled source: the node sends
    the worker SIGTERM and it stops at once (exit 143, reason Stopped); the operator's cleanup
    comes after the pod is gone (the API server's audit log orders the node's last delete of the
    pod before the operator's removal of its finalizer), and the store holds nothing of the
    resource."""
    c, ns = env, "sigterm"
    release = threading.Event()
    video = (EXAMPLES / "media" / "sample.mp4").read_bytes()

    def stalled() -> tuple[int, dict[str, str], bytes]:
        release.wait(300)
        return 200, {}, video

    pods: list[dict[str, Any]] = []
    with serve({"/stalled.mp4": stalled}, host=c.host_ip) as (base, asked):
        manifest = {
            "apiVersion": "contentgen.io/v1alpha1",
            "kind": "Transcription",
            "metadata": {"name": "halt"},
            "spec": {
                "owner": "bob",
                "provider": "offline",
                "source": {"url": f"{base}/stalled.mp4"},
                "deletionPolicy": "Delete",
            },
        }
        c.apply(manifest, ns)
        uid = uid_of(c, "Transcription", ns, "halt")
        watcher = threading.Thread(target=_record_pods, args=(c, ns, pods, release), daemon=True)
        watcher.start()
        wait_for(lambda: asked, 120, "the worker to ask for its source")
        (pod,) = c.pods(ns)
        c.delete("Transcription", ns, "halt")
        wait_for(lambda: c.resource("Transcription", ns, "halt") is None, 180, "the resource gone")
        release.set()
    ended = [
        status["state"]["terminated"]
        for version in pods
        for status in (version.get("status") or {}).get("containerStatuses") or []
        if "terminated" in status["state"]
    ]
    assert ended and ended[-1]["exitCode"] == 143, ended
    assert json.loads(ended[-1]["message"])["reason"] == "Stopped"
    log = [json.loads(line) for line in c.audit_lines()]
    done = [e for e in log if e.get("stage") == "ResponseComplete"]
    pod_deleted = max(
        e["stageTimestamp"]
        for e in done
        if e["verb"] == "delete"
        and (e.get("objectRef") or {}).get("resource") == "pods"
        and (e.get("objectRef") or {}).get("name") == pod["metadata"]["name"]
        and e["user"]["username"].startswith("system:node:")
    )
    finalized = max(
        e["stageTimestamp"]
        for e in done
        if e["verb"] == "patch"
        and (e.get("objectRef") or {}).get("resource") == "transcriptions"
        and (e.get("objectRef") or {}).get("name") == "halt"
        and e["user"]["username"] == OPERATOR_USER
    )
    assert pod_deleted < finalized  # RFC 3339 with microseconds, in UTC: ordered as text
    assert [
        info.key for root in keys.resource_roots("transcription", "bob", uid) for info in c.store.list(root)
    ] == []


def _record_pods(c: Cluster, ns: str, into: list[dict[str, Any]], stop: threading.Event) -> None:
    """Every version of the namespace's pods, as a watch delivers them, until `stop`."""
    while not stop.is_set():
        for event in c.admin.watch(f"/api/v1/namespaces/{ns}/pods", timeoutSeconds=30):
            if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
                into.append(event["object"])
            if stop.is_set():
                return


def test_a_spec_change_supersedes_the_run_in_flight(env: Cluster) -> None:
    """A new prompt while generation 1 runs: its Job (and pod) are stopped, generation 2 runs at
    once, and Events say what happened and what was billed."""
    c, ns = env, "supersede"
    c.hold()
    try:
        c.apply(image("swap"), ns)
        (first,) = wait_for(lambda: c.jobs(ns), what="a Job")
        c.patch("ImageGeneration", ns, "swap", {"spec": {"prompt": "a lighthouse at night", "tags": ["b"]}})
        (second,) = wait_for(
            lambda: (
                [j for j in c.jobs(ns) if j["metadata"]["name"] != first["metadata"]["name"]]
                and len(c.jobs(ns)) == 1
                and c.jobs(ns)
            ),
            what="generation 1's Job gone, generation 2's made",
        )
    finally:
        c.release()
    assert second["metadata"]["labels"]["contentgen.io/generation"] == "2"
    status = c.wait_phase("ImageGeneration", ns, "swap", "Succeeded")
    assert status["observedGeneration"] == 2 and status["jobName"] == second["metadata"]["name"]
    reasons = wait_for(
        lambda: (r := [e["reason"] for e in c.events(ns, "swap")]) and "Succeeded" in r and r, what="events"
    )
    assert reasons.index("Superseding") < reasons.index("Superseded") < reasons.index("Succeeded")
    superseded = next(e for e in c.events(ns, "swap") if e["reason"] == "Superseded")
    assert "nothing was billed" in superseded["message"]
    assert first["metadata"]["name"] in superseded["message"]


def test_a_spec_change_that_must_wait_keeps_waiting(env: Cluster) -> None:
    """Right after generation 1 succeeded, a spec change to a provider the operator has no key
    for: generation 2 waits (MissingCredentials), and keeps waiting on every later look. It used
    to keep generation 1's jobName beside its Pending phase, and the next event failed it as
    JobLost."""
    c, ns = env, "waits"
    c.apply(image("rerun"), ns)
    c.wait_phase("ImageGeneration", ns, "rerun", "Succeeded")
    c.patch("ImageGeneration", ns, "rerun", {"spec": {"provider": "fal", "prompt": "a lighthouse at dusk"}})

    def waiting() -> dict[str, Any] | None:
        status = c.status("ImageGeneration", ns, "rerun")
        decided = status.get("observedGeneration") == 2 and status.get("conditions")
        return status if decided and reason(status) != "Succeeded" else None

    status = wait_for(waiting, 60, "generation 2 decided")
    for look in ("a", "b"):  # more events (a label each), each a new look: it keeps waiting
        c.patch("ImageGeneration", ns, "rerun", {"metadata": {"labels": {"look": look}}})
        for _ in range(10):
            assert (status["phase"], reason(status)) == ("Pending", "MissingCredentials"), status
            assert "jobName" not in status and [v["version"] for v in status["versions"]] == [1]
            time.sleep(0.2)
            status = c.status("ImageGeneration", ns, "rerun")


def test_one_name_in_three_kinds(env: Cluster) -> None:
    """An ImageGeneration, a Transcription and a LoraTraining named alike in one namespace: each
    has a Job of its own (names carry the kind and uid), and all three succeed. Jobs were named
    `{name}-g{n}` once: the second kind deleted the first one's Job, which ended JobLost."""
    c, ns = env, "kinds"
    transcription = {
        "apiVersion": "contentgen.io/v1alpha1",
        "kind": "Transcription",
        "metadata": {"name": "same"},
        "spec": {"owner": "alice", "provider": "offline", "source": {"url": f"{c.media}/clip.mp4"}},
    }
    kinds = ("ImageGeneration", "Transcription", "LoraTraining")
    for manifest in (image("same"), transcription, lora("same", c.media)):
        c.apply(manifest, ns)
    statuses = {kind: c.wait_phase(kind, ns, "same", "Succeeded", timeout=300) for kind in kinds}
    jobs = {j["metadata"]["labels"]["contentgen.io/uid"]: j["metadata"]["name"] for j in c.jobs(ns)}
    for kind in kinds:
        assert statuses[kind]["jobName"] == jobs[uid_of(c, kind, ns, "same")]
    assert len(set(jobs.values())) == 3
    lost = [e for e in c.events(ns, "same") if e["reason"] in ("JobLost", "JobNameTaken")]
    assert lost == [], lost


def test_a_job_kept_with_cascade_orphan_is_left_alone(env: Cluster) -> None:
    """Deleted with `kubectl delete --cascade=orphan` and made again under the same name at once:
    the kept Job is not the new resource's (its name and uid label are the old uid's) nor anyone's
    (the garbage collector took its ownerReference), so the operator leaves it alone (it runs out,
    and its ttlSecondsAfterFinished collects it); the new resource runs a Job of its own."""
    c, ns = env, "again"
    c.hold()
    try:
        c.apply(image("twice"), ns)
        (old,) = wait_for(lambda: c.jobs(ns), what="the first Job")
        old_name, old_uid = old["metadata"]["name"], old["metadata"]["labels"]["contentgen.io/uid"]
        c.delete("ImageGeneration", ns, "twice", propagation="Orphan")
        wait_for(lambda: c.resource("ImageGeneration", ns, "twice") is None, what="the first resource gone")
        c.apply(image("twice"), ns)
        uid = uid_of(c, "ImageGeneration", ns, "twice")
        (new,) = wait_for(
            lambda: [j for j in c.jobs(ns) if j["metadata"]["name"] != old_name], what="the new Job"
        )
    finally:
        c.release()
    status = c.wait_phase("ImageGeneration", ns, "twice", "Succeeded", timeout=180)
    assert (
        status["jobName"] == new["metadata"]["name"] and new["metadata"]["labels"]["contentgen.io/uid"] == uid
    )
    assert old_uid != uid
    kept = wait_for(
        lambda: (
            (j := c.get("jobs", ns, old_name, "batch/v1")) and (j.get("status") or {}).get("succeeded") and j
        ),
        180,
        "the orphaned Job to run out",
    )
    assert not kept["metadata"].get("deletionTimestamp") and not kept["metadata"].get("ownerReferences")
    after = c.status("ImageGeneration", ns, "twice")  # the old worker's patches name another Job
    assert after["phase"] == "Succeeded" and after["jobName"] == status["jobName"]
    assert [v["version"] for v in after["versions"]] == [1]


def test_failed_cleanup_is_retried_and_can_be_skipped(env: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    c, ns = env, "stuck"
    c.apply(image("sticky", deletionPolicy="Delete"), ns)
    c.wait_phase("ImageGeneration", ns, "sticky", "Succeeded")

    def refuse(self: object, prefix: str) -> int:
        raise PermissionError("AccessDenied: the store refused the deletion")

    monkeypatch.setattr(type(c.store), "delete_prefix", refuse)  # the operator's store is of its kind
    c.delete("ImageGeneration", ns, "sticky")
    wait_for(
        lambda: "cleanup failed" in c.status("ImageGeneration", ns, "sticky").get("message", ""),
        what="cleanup failure in status",
    )
    wait_for(
        lambda: len([e for e in c.events(ns, "sticky") if e["reason"] == "CleanupFailed"]) >= 2,
        what="a retry",
    )
    assert c.resource("ImageGeneration", ns, "sticky") is not None  # the finalizer holds it

    c.patch(
        "ImageGeneration", ns, "sticky", {"metadata": {"annotations": {"contentgen.io/skip-cleanup": "true"}}}
    )
    wait_for(lambda: c.resource("ImageGeneration", ns, "sticky") is None, what="deletion after skip")
    wait_for(
        lambda: any(e["reason"] == "CleanupSkipped" for e in c.events(ns, "sticky")), what="CleanupSkipped"
    )


# --- the catalog, restarts ---------------------------------------------------------------------


def test_mongodb_down_then_back_catches_up(env: Cluster) -> None:
    c, ns = env, "catalog"
    c.mongo_down.set()
    try:
        c.apply(image("offline-catalog", tags=["sea"]), ns)
        c.wait_phase("ImageGeneration", ns, "offline-catalog", "Succeeded")
        uid = uid_of(c, "ImageGeneration", ns, "offline-catalog")
        wait_for(
            lambda: REGISTRY.get_sample_value("contentgen_catalog_pending_writes") >= 1,
            what="a deferred write",
        )
    finally:
        c.mongo_down.clear()
    doc = catalog_status(c, uid, "Succeeded")
    assert doc["images"] and doc["artifacts"] and doc["tags"] == ["sea"] and doc["totalBytes"] > 0
    wait_for(
        lambda: REGISTRY.get_sample_value("contentgen_catalog_pending_writes") == 0, what="no pending writes"
    )


def errors_for(kind: str) -> float:
    return sum(
        sample.value
        for metric in REGISTRY.collect()
        if metric.name == "contentgen_reconcile_errors"
        for sample in metric.samples
        if sample.name.endswith("_total") and sample.labels.get("kind") == kind
    )


def test_api_errors_are_counted_and_retried(env: Cluster) -> None:
    c, ns = env, "flaky"
    before = errors_for("ImageGeneration")
    c.proxy.inject("patch", "imagegenerations/status", times=2)
    c.apply(image("wobbly"), ns)
    c.wait_phase("ImageGeneration", ns, "wobbly", "Succeeded")
    assert errors_for("ImageGeneration") >= before + 2
    assert len(c.jobs(ns)) == 1


def test_health_and_metrics(env: Cluster) -> None:
    c, ns = env, "metrics"
    c.apply(image("measured"), ns)
    c.wait_phase("ImageGeneration", ns, "measured", "Succeeded")
    assert httpx.get(f"http://127.0.0.1:{c.health_port}/healthz").status_code == 200
    assert REGISTRY.get_sample_value("contentgen_jobs_created_total", {"kind": "ImageGeneration"}) >= 1
    assert REGISTRY.get_sample_value("contentgen_reconcile_seconds_count", {"kind": "ImageGeneration"}) >= 1
    transitions = REGISTRY.get_sample_value(
        "contentgen_phase_transitions_total",
        {"kind": "ImageGeneration", "phase": "Succeeded", "reason": "Succeeded"},
    )
    assert transitions is not None and transitions >= 1


# --- what the operator and the worker asked of the API server (for the chart's RBAC) -----------


def test_namespaced_install_stays_in_its_namespaces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With watchNamespaces the operator works only there, with namespace-scoped calls only (the
    real Kueue's Workload of a Job it holds read there too), and reads the share policy's ConfigMap
    in its own, where its Lease is taken, renewed and released too."""
    with cluster(tmp_path, monkeypatch, rbac=namespaced_rbac(["team-a"]), controllers=("kueue",)) as c:
        monkeypatch.setenv("CONTENTGEN_WATCH_NAMESPACES", '["team-a"]')
        monkeypatch.setenv("CONTENTGEN_MANAGE_WORKER_ACCESS", "false")  # the chart makes them there
        monkeypatch.setattr("contentgen.controller.reconciler.RECHECK_SECONDS", 1.0)
        talk = {
            "apiVersion": "contentgen.io/v1alpha1",
            "kind": "Transcription",
            "metadata": {"name": "talk"},
            "spec": {
                "owner": "alice",
                "provider": "offline",
                "source": {"url": f"{c.media}/clip.mp4"},
                "deletionPolicy": "Delete",
            },
        }
        # A quota that admits no pod at first: the operator reads why (its Job's FailedCreate).
        c.enforce_quota("team-a", {"pods": "0"}, "none")
        with operator(c):
            c.apply(image("mine", deletionPolicy="Delete"), "team-a")
            wait_for(
                lambda: (
                    "cannot create its pod"
                    in c.status("ImageGeneration", "team-a", "mine").get("message", "")
                ),
                90,
                "PodNotCreated",
            )
            c.admin.delete("/api/v1/namespaces/team-a/resourcequotas/none")
            # A Job Kueue holds (its webhook suspended it): Kueue's reason, from its Workload, in the
            # Queued message.
            c.apply(image("queued", queueName="team-queue", deletionPolicy="Delete"), "team-a")
            held = wait_for(
                lambda: next(
                    (j for j in c.jobs("team-a") if j["metadata"]["name"].startswith("queued-")), None
                ),
                60,
                "the Job of queued",
            )
            assert held["spec"]["suspend"] is True
            wait_for(
                lambda: (
                    "waits in Kueue queue 'team-queue': LocalQueue team-queue doesn't exist"
                    in c.status("ImageGeneration", "team-a", "queued").get("message", "")
                ),
                60,
                "Kueue's words in queued's status",
            )
            team_queue(c, "team-a")  # Kueue admits it and resumes the Job
            c.apply(lora("face", c.media, deletionPolicy="Delete"), "team-a")
            c.apply(talk, "team-a")
            c.apply(image("not-mine"), "team-b")
            for kind, name in (
                ("ImageGeneration", "mine"),
                ("ImageGeneration", "queued"),
                ("LoraTraining", "face"),
                ("Transcription", "talk"),
            ):
                c.wait_phase(kind, "team-a", name, "Succeeded")
                c.delete(kind, "team-a", name)
                wait_for(
                    lambda kind=kind, name=name: c.resource(kind, "team-a", name) is None,
                    what=f"{name} deleted",
                )
        assert c.status("ImageGeneration", "team-b", "not-mine") == {} and c.jobs("team-b") == []
        ours = [d for d in c.decisions() if identity(d.user) and not d.resource.startswith("/")]
        # and in its own namespace, the share policy's ConfigMap alone (the grants it mirrors)
        assert {d.namespace for d in ours if d.resource != "configmaps"} == {"team-a"}
        assert {
            (d.namespace, d.uri.split("?")[0].rsplit("/", 1)[-1]) for d in ours if d.resource == "configmaps"
        } == {("contentgen", "contentgen-shares")}
        lease_round(c)  # `contentgen operator`'s Lease calls, under the namespaced install's RBAC
        record_calls(c, "namespaced")


def team_queue(c: Cluster, namespace: str) -> None:
    """A LocalQueue team-queue in `namespace`, into a ClusterQueue with room for the Jobs: for every
    resource they request, or Kueue admits none ("resource ephemeral-storage unavailable in
    ClusterQueue": the workers ask for scratch space)."""
    kueue = "kueue.x-k8s.io/v1beta2"
    quota = [
        {"name": "cpu", "nominalQuota": "8"},
        {"name": "memory", "nominalQuota": "32Gi"},
        {"name": "ephemeral-storage", "nominalQuota": "100Gi"},
    ]
    c.admin.apply({"apiVersion": kueue, "kind": "ResourceFlavor", "metadata": {"name": "nodes"}})
    c.admin.apply(
        {
            "apiVersion": kueue,
            "kind": "ClusterQueue",
            "metadata": {"name": "team"},
            "spec": {
                "namespaceSelector": {},
                "resourceGroups": [
                    {
                        "coveredResources": ["cpu", "memory", "ephemeral-storage"],
                        "flavors": [{"name": "nodes", "resources": quota}],
                    }
                ],
            },
        }
    )
    local = {"name": "team-queue", "namespace": namespace}
    c.admin.apply(
        {"apiVersion": kueue, "kind": "LocalQueue", "metadata": local, "spec": {"clusterQueue": "team"}}
    )


def test_recorded_calls_cover_every_identity() -> None:
    """The recorded calls (tests/rbac/observed-calls.json) hold the operator's and the worker's in
    both install modes, and the HTTP API's (its creates through the Kubernetes API)."""
    calls = [tuple(x) for x in json.loads(CALLS_FILE.read_text())]
    assert {c[0] for c in calls} == {"cluster-wide", "namespaced"}
    assert {c[1] for c in calls} == {"operator", "worker", "api"}
    assert {c[0] for c in calls if c[1] in ("operator", "worker")} == {"cluster-wide", "namespaced"}
    worker = {c[2:] for c in calls if c[1] == "worker"}
    assert all(
        re.fullmatch(r"(get|patch)", verb) and res.endswith("/status") for verb, _, res, _ in worker
    ), worker


def test_leader_election_works_under_the_charts_rbac(env: Cluster) -> None:
    """`contentgen operator`'s Lease calls (create, get, renew, release), with the operator's own
    credentials, cluster-wide (the module's operator runs without the Lease; recorded at the
    module's end); the namespaced install's are in test_namespaced_install_stays_in_its_namespaces."""
    lease_round(env)


def lease_round(c: Cluster) -> None:
    """The Lease taken, renewed and released as `contentgen operator` does, with the credentials
    in $KUBECONFIG (the operator's)."""
    import threading

    from contentgen.controller.main import elector
    from contentgen.controller.settings import OperatorSettings

    leader = elector(OperatorSettings(leader_identity="pod-a"))
    assert leader.acquire(threading.Event())
    assert leader.try_acquire_or_renew()  # renewing
    leader.release()
    lease = c.get("leases", "contentgen", "contentgen-operator", "coordination.k8s.io/v1")
    assert lease["spec"]["holderIdentity"] == ""
