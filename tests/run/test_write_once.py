"""No stored object is ever written twice under one key (issue 17): every kind's re-runs (a new
version each, whatever the spec), a failed run and the run after it, a worker attempt that fails
half way and its retry, a paid generation resumed from its checkpoint, and an attempt after the
result was stored. A store that counts every write (and can refuse one, as an S3 outage would)
stands in for the store; only the mutable state under temp/ and outbox/ (provider checkpoints,
records waiting for the catalog) may be written again. Nothing is deleted either."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from contentgen.api import SpecSnapshot
from contentgen.api.run import parse_termination
from contentgen.catalog import open_catalog
from contentgen.cli.main import main
from contentgen.store import keys
from scripts.synthetic_video import face_scene, other_scene, write_video
from tests.harness.stores import CountingStore
from tests.httpserver import serve
from tests.providers.fake_fal import FAL_KEY, FakeFal
from tests.providers.fakes import mocked


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[CountingStore]:
    counting = CountingStore(tmp_path / "store")
    monkeypatch.setattr("contentgen.store.open_store", lambda url, **_: counting)
    monkeypatch.chdir(tmp_path)
    for variable in ("CONTENTGEN_STORE", "CONTENTGEN_CATALOG", "FAL_KEY", "ASSEMBLYAI_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("CONTENTGEN_ALLOW_PRIVATE_SOURCES", "true")  # the clip is served on loopback
    yield counting
    assert counting.outputs_written_twice() == {}
    assert [k for k in counting.deletes if not keys.is_mutable(k)] == []


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Four shots of a face and one of a cup, with sound, served over HTTP."""
    root = tmp_path_factory.mktemp("clip")
    plan = [face_scene(1.5), other_scene(1.5, "coffee"), *(face_scene(1.5, variant=v) for v in (1, 2, 3))]
    video = write_video(root / "clip.mp4", plan, audio=True, threads=1)
    with serve(
        {"/clip.mp4": (200, {}, video.path.read_bytes()), "/notes.mp4": (200, {}, b"no video\n" * 40)}
    ) as (
        base,
        _,
    ):
        yield base


def manifest(tmp_path: Path, kind: str, name: str, spec: dict[str, Any]) -> str:
    path = tmp_path / f"{name}-{len(list(tmp_path.glob('*.yaml')))}.yaml"
    doc = {"apiVersion": "contentgen.io/v1alpha1", "kind": kind, "metadata": {"name": name}, "spec": spec}
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def lora_spec(clip: str, **changes: Any) -> dict[str, Any]:
    spec = {
        "owner": "alice",
        "provider": "offline",
        "source": {"url": f"{clip}/clip.mp4"},
        "triggerWord": "tw",
        "dataset": {"maxFrames": 4, "minFrames": 4, "minSceneSeconds": 0.5, "captioning": "auto"},
        "training": {"steps": 100},
    }
    return {**spec, **changes}


def handed_over(store: CountingStore, log: Path) -> dict[str, Any]:
    """The result a worker hands the operator: its termination message, or, where that was too
    large to carry it (a LoRA's scored checkpoints), the result it names in the store."""
    said: dict[str, Any] = json.loads(log.read_text())
    if said.get("truncated") and "version" not in said:
        said = json.loads(store.get_bytes(store.key_of(said["resultUri"])))
    return said


def versions(uid: str) -> list[int]:
    record = open_catalog().record(uid)
    assert record is not None
    return [int(v["version"]) for v in record["versions"]]


def test_local_reruns_and_failed_runs_of_every_kind(store: CountingStore, clip: str, tmp_path: Path) -> None:
    fox = {"owner": "alice", "prompt": "a red fox", "numImages": 2, "provider": "offline", "seed": 1}
    image = manifest(tmp_path, "ImageGeneration", "fox", fox)
    assert main(["run", image]) == 0
    assert main(["run", image]) == 0  # the same spec again: a new version, not the same keys
    assert main(["run", manifest(tmp_path, "ImageGeneration", "fox", {**fox, "seed": 2})]) == 0
    assert main(["run", manifest(tmp_path, "ImageGeneration", "fox", {**fox, "provider": "fal"})]) == 1
    assert main(["run", image]) == 0

    talk = {"owner": "alice", "provider": "offline", "source": {"url": f"{clip}/clip.mp4"}}
    assert main(["run", manifest(tmp_path, "Transcription", "talk", talk)]) == 0
    bad = {**talk, "source": {"url": f"{clip}/notes.mp4"}}
    assert main(["run", manifest(tmp_path, "Transcription", "talk", bad)]) == 1
    assert main(["run", manifest(tmp_path, "Transcription", "talk", talk)]) == 0

    assert main(["run", manifest(tmp_path, "LoraTraining", "avatar", lora_spec(clip))]) == 0
    broken = lora_spec(clip, source={"url": f"{clip}/notes.mp4"})
    assert main(["run", manifest(tmp_path, "LoraTraining", "avatar", broken)]) == 1
    assert (
        main(["run", manifest(tmp_path, "LoraTraining", "avatar", lora_spec(clip, training={"steps": 200}))])
        == 0
    )

    by_name = {d["name"]: d["_id"] for d in open_catalog().find_raw({})}
    assert versions(by_name["fox"]) == [1, 2, 3, 5]  # run 4 failed: its number is not reused
    assert versions(by_name["talk"]) == [1, 3]
    assert versions(by_name["avatar"]) == [1, 3]
    # every version's outputs are stored, under its own prefix
    assert sum(1 for k in store.writes if k.startswith("generated-images/") and k.endswith(".png")) == 8


def test_a_worker_attempt_that_fails_half_way_and_its_retry(
    store: CountingStore, clip: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The retried pod runs the same snapshot: what the first attempt stored (the same bytes) is
    kept, not written again; a third attempt after the result is stored runs nothing."""
    monkeypatch.setenv("CONTENTGEN_WORK_DIR", str(tmp_path / "work"))
    monkeypatch.delenv("CONTENTGEN_KUBE_API", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    images = {"owner": "alice", "prompt": "p", "numImages": 3, "provider": "offline"}
    talk = {"owner": "alice", "provider": "offline", "source": {"url": f"{clip}/clip.mp4"}}
    cases = [  # the kind, its spec, the write the store refuses once
        ("LoraTraining", lora_spec(clip), "/v1/model.safetensors"),
        ("ImageGeneration", images, "/v1/image_2.png"),
        ("Transcription", talk, "/v1/transcript.txt"),
    ]
    for n, (kind, spec, refused) in enumerate(cases):
        snapshot = SpecSnapshot(kind=kind, name=f"w{n}", namespace="ns", uid=f"uid-{n}", version=1, spec=spec)
        path = tmp_path / f"spec-{n}.json"
        path.write_text(snapshot.model_dump_json(by_alias=True))
        store.refuse = lambda key, refused=refused: key.endswith(refused)
        log = tmp_path / f"log-{n}"
        assert main(["worker", "--spec", str(path), "--termination-log", str(log)]) == 1  # transient: retried
        assert parse_termination(log.read_text()).reason == "StoreUnavailable"  # type: ignore[union-attr]
        before = sum(store.writes.values())
        assert main(["worker", "--spec", str(path), "--termination-log", str(log)]) == 0
        assert sum(store.writes.values()) > before  # the retry stored what was missing
        done = sum(store.writes.values())
        assert main(["worker", "--spec", str(path), "--termination-log", str(log)]) == 0
        assert sum(store.writes.values()) == done  # the result was stored: nothing runs again
        result = handed_over(store, log)
        assert result["version"] == 1 and result["uid"] == f"uid-{n}"


def test_a_worker_told_to_skip_the_evaluation_reports_it_skipped_with_the_reason(
    store: CountingStore, clip: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The operator's budget covered the training only (controller/budget.py): the snapshot says
    so, no evaluation picture is made or stored, and the version's likeness says why."""
    monkeypatch.setenv("CONTENTGEN_WORK_DIR", str(tmp_path / "work"))
    monkeypatch.delenv("CONTENTGEN_KUBE_API", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    why = "budget: the monthly budget of namespace ns is $2.00 (operator settings); ..."
    snapshot = SpecSnapshot(
        kind="LoraTraining", name="w", namespace="ns", uid="uid-s", version=1, spec=lora_spec(clip)
    )
    for n, skip in enumerate(("", why)):
        path = tmp_path / f"spec-{n}.json"
        path.write_text(
            snapshot.model_copy(update={"uid": f"uid-{n}", "skip_evaluation": skip}).model_dump_json(
                by_alias=True
            )
        )
        log = tmp_path / f"log-{n}"
        assert main(["worker", "--spec", str(path), "--termination-log", str(log)]) == 0
        likeness = handed_over(store, log)["lora"]["likeness"]
        grids = [k for k in store.writes if f"uid-{n}/" in k and "likeness" in k]
        if skip:
            assert likeness["verdict"] == "skipped" and likeness["reasons"] == [why]
            assert grids == []
        else:  # the offline pictures of its subject, measured, the report stored with the version
            assert likeness["median"] is not None and grids


def test_a_paid_generation_resumed_from_its_checkpoint(
    store: CountingStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fal bills the images once; the store refuses the second; the next attempt (same snapshot)
    stores both from the checkpoint without paying, and writes the first not again."""
    monkeypatch.setenv("FAL_KEY", FAL_KEY)
    monkeypatch.setenv("CONTENTGEN_WORK_DIR", str(tmp_path / "work"))
    monkeypatch.delenv("CONTENTGEN_KUBE_API", raising=False)
    from contentgen.providers import retry as retry_module
    from tests.providers.fakes import FakeSleep

    original = retry_module.Retry.__init__

    def no_sleep(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        self.sleep = FakeSleep()

    monkeypatch.setattr(retry_module.Retry, "__init__", no_sleep)
    spec = {
        "owner": "alice",
        "prompt": "a lighthouse",
        "numImages": 2,
        "provider": "fal",
        "model": "flux-dev",
    }
    snapshot = SpecSnapshot(
        kind="ImageGeneration", name="paid", namespace="ns", uid="uid-paid", version=1, spec=spec
    )
    path = tmp_path / "spec.json"
    path.write_text(snapshot.model_dump_json(by_alias=True))
    store.refuse = lambda key: key.endswith("v1/image_2.png")
    fal = FakeFal()
    with mocked(fal):
        assert main(["worker", "--spec", str(path), "--termination-log", str(tmp_path / "log")]) == 1
        assert main(["worker", "--spec", str(path), "--termination-log", str(tmp_path / "log")]) == 0
    assert (fal.accepted, fal.billed) == (1, 1)
    assert store.writes["generated-images/alice/uid-paid/v1/image_1.png"] == 1
    assert store.writes["generated-images/alice/uid-paid/v1/image_2.png"] == 1
    assert store.writes["temp/uid-paid/checkpoints/images.json"] >= 2  # state, rewritten by design
