"""`contentgen run` and `contentgen worker`: the pipeline end to end on the offline provider,
with every local stage real (fetch, scenes, frames, dataset, store, catalog)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import yaml

from contentgen.api import RunFailure, RunResult
from contentgen.api.run import TERMINATION_LIMIT, parse_termination, termination_message
from contentgen.catalog import Filters, open_catalog
from contentgen.cli.main import main
from tests.conftest import EXAMPLES
from tests.harness.cli import SAMPLE, result_of, run, snapshot_file, worker
from tests.httpserver import serve


def local(uri: str) -> Path:
    assert uri.startswith("file://"), uri
    return Path(uri.removeprefix("file://"))


def check_artifacts(result: RunResult) -> None:
    assert result.artifacts
    for artifact in result.artifacts:
        data = local(artifact.uri).read_bytes()
        assert len(data) == artifact.size_bytes and hashlib.sha256(data).hexdigest() == artifact.sha256


def test_lora_training_offline(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(
        capsys,
        "--offline",
        "--source",
        str(SAMPLE),
        "--result",
        "r.json",
        str(EXAMPLES / "loratraining.yaml"),
    )
    assert code == 0, err
    result = result_of(workspace / "r.json")
    assert (result.kind, result.provider, result.version, result.placeholder) == (
        "LoraTraining",
        "offline",
        1,
        True,
    )
    assert [s.name for s in result.stages] == [
        "fetch",
        "dataset",
        "captions",
        "upload-dataset",
        "train",
        "store-model",
        "evaluate",
        "thumbnails",
    ]
    check_artifacts(result)
    assert result.lora is not None and result.dataset is not None
    assert "/loras/demo-user/" in result.lora.model_uri and result.lora.model_uri.endswith(
        "/v1/model.safetensors"
    )
    dataset = result.dataset
    assert dataset.frames == len(dataset.images) >= 3 and len(dataset.scenes) >= len(dataset.images)
    assert all(image.face for image in dataset.images)  # faceFilter: the sample's face shots only
    for image in dataset.images:
        assert (image.width, image.height) == (1024, 1024) and image.sharpness > 0
        start, end = dataset.scenes[image.scene].start, dataset.scenes[image.scene].end
        assert start <= image.time <= end
        assert local(image.uri).is_file() and "/datasets/demo-user/" in image.uri
        caption = local(image.uri.replace("/images/", "/captions/").replace(".jpg", ".txt")).read_text()
        # captioning auto on the offline provider: the template around a labelled placeholder
        assert (
            caption
            == image.caption
            == ("a photo of dmavatar, offline placeholder caption, no vision model described this image")
        )
    assert dataset.captioning is not None and dataset.captioning.placeholder
    assert (dataset.captioning.mode, dataset.captioning.provider) == ("auto", "offline")
    summary = dataset.summary
    assert summary is not None and summary.kept == dataset.frames and summary.scenes == len(dataset.scenes)
    assert summary.kept + summary.dropped.total == summary.scenes
    sheet = dataset.contact_sheet
    assert (
        sheet is not None
        and sheet.content_type == "image/jpeg"
        and sheet.uri.endswith("/v1/contact-sheet.jpg")
    )
    assert result.lora.contact_sheet_uri == sheet.uri and local(sheet.uri).read_bytes()[:2] == b"\xff\xd8"
    assert sheet.uri in [a.uri for a in result.artifacts]
    thumb = result.lora.contact_sheet_thumbnail_uri  # issue 13's thumbnail of the sheet
    assert (
        thumb and thumb in [a.uri for a in result.artifacts] and local(thumb).read_bytes()[:2] == b"\xff\xd8"
    )
    assert result.lora.source_url == str(SAMPLE)
    # the offline captioner reports one (unpriced) request per image, like a live provider
    assert result.usage is not None
    captions = [line for line in result.usage if line.unit == "request"]
    assert len(captions) == dataset.frames and all(line.request.startswith("offline-") for line in captions)
    # the likeness evaluation: 6 prompts × 2 seeds with each of the four simulated checkpoints' LoRAs
    # (1000 steps, one every 250) and once without, each picture in the usage; the offline pictures
    # show the subject's face as far as each checkpoint learned it (providers/offline_subject.py),
    # scored for real; those without the LoRA show no face, so there is no gain over them
    pictures = [line for line in result.usage if line.unit == "megapixel"]
    assert [line.unit for line in result.usage if line.unit != "request"] == ["step", "megapixel"]
    assert pictures[0].quantity == 12 * 5 and pictures[0].item == "flux-lora"  # 512 × 512: 1 each
    likeness = result.lora.likeness
    assert likeness is not None and likeness.verdict == "good" and likeness.median is not None
    assert (likeness.images, likeness.faces, likeness.no_face_rate) == (12, 12, 0.0)
    assert likeness.baseline_median is None and likeness.gain is None
    assert likeness.upper_bound is not None and likeness.upper_bound > 0.3  # the dataset's own faces
    for uri, start in ((likeness.grid_uri, b"\xff\xd8"), (likeness.report_uri, b"{")):
        assert uri in [a.uri for a in result.artifacts] and local(uri).read_bytes()[:1] == start[:1]
    assert "LoRA version 1" in out and "placeholder" in out
    # The dataset stage reports progress on stderr (plain lines when not on a terminal).
    assert "dataset" in err and "%" in err
    record = open_catalog().get(result.uid)
    assert record is not None and record["status"] == "Succeeded" and record["latestVersion"] == 1
    assert record["provider"] == "offline"
    assert record["versions"][0]["contactSheetUri"] == sheet.uri
    assert record["versions"][0]["likeness"]["verdict"] == "good"
    assert main(["assets", "get", result.uid, "-o", "table"]) == 0
    shown = capsys.readouterr().out
    assert f"likeness good, median {likeness.median:.2f} (" in shown
    assert record["dataset"]["kept"] == dataset.frames


def test_too_small_a_dataset_fails_before_anything_is_stored(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = yaml.safe_load((EXAMPLES / "loratraining.yaml").read_text())
    manifest["spec"]["dataset"]["minFrames"] = 10  # the default; the sample has four face shots
    path = workspace / "lora.yaml"
    path.write_text(yaml.safe_dump(manifest))
    code, out, err = run(capsys, "--offline", "--source", str(SAMPLE), "--result", "r.json", str(path))

    assert code == 1 and out == ""
    last = err.strip().splitlines()[-1]
    assert last.startswith("contentgen run: DatasetTooSmall: sample.mp4 gives 4 usable images, fewer than ")
    assert "dataset.minFrames 10" in last and "lower dataset.minFrames to 4" in last
    failed = RunFailure.model_validate_json((workspace / "r.json").read_text())
    assert failed.reason == "DatasetTooSmall" and failed.dataset is not None
    assert failed.dataset.kept == 4 and failed.dataset.min_frames == 10
    assert failed.dataset.kept + failed.dataset.dropped.total == failed.dataset.scenes
    # nothing was uploaded: no dataset, no model, no checkpoint
    store = workspace / "contentgen-data" / "store"
    assert not store.exists() or not [p for p in store.rglob("*") if p.is_file()]
    (record,) = open_catalog().find(Filters(status="Failed")).docs
    assert record["latestRun"]["error"]["reason"] == "DatasetTooSmall"
    assert record["dataset"]["kept"] == 4 and record["dataset"]["minFrames"] == 10


def test_rerun_trains_the_next_version(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = str(EXAMPLES / "loratraining.yaml")
    for expected in (1, 2):
        code, _out, err = run(
            capsys, "--offline", "--source", str(SAMPLE), "--result", f"v{expected}.json", manifest
        )
        assert code == 0, err
        assert result_of(workspace / f"v{expected}.json").version == expected
    v1, v2 = result_of(workspace / "v1.json"), result_of(workspace / "v2.json")
    assert v1.uid == v2.uid and local(v1.lora.model_uri).is_file() and local(v2.lora.model_uri).is_file()  # type: ignore[union-attr]
    record = open_catalog().get(v1.uid)
    assert record is not None and [v["version"] for v in record["versions"]] == [1, 2]


def test_image_generation_uses_the_local_lora(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "--offline", str(EXAMPLES / "imagegeneration-lora.yaml"))
    assert code == 1 and "loraRef 'demo-avatar'" in err and "run its manifest first" in err
    assert (
        run(
            capsys,
            "--offline",
            "--source",
            str(SAMPLE),
            "--result",
            "lora.json",
            str(EXAMPLES / "loratraining.yaml"),
        )[0]
        == 0
    )
    code, _out, err = run(
        capsys, "--offline", "--result", "img.json", str(EXAMPLES / "imagegeneration-lora.yaml")
    )
    assert code == 0, err
    images = result_of(workspace / "img.json")
    check_artifacts(images)
    assert images.images and (images.images[0].width, images.images[0].height) == (768, 1024)
    assert images.images[0].uri.endswith("/image_1.png")


def test_transcription_offline(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    manifest = str(EXAMPLES / "transcription.yaml")
    code, _, err = run(capsys, "--offline", "--source", str(SAMPLE), "--result", "t.json", manifest)
    assert code == 0, err
    result = result_of(workspace / "t.json")
    check_artifacts(result)
    assert result.transcript is not None and result.transcript.duration_seconds == pytest.approx(25, abs=1)
    text = local(result.transcript.text_uri).read_text()
    assert "offline" in text.lower()
    assert json.loads(local(result.transcript.json_uri).read_text())["audio_duration"] == pytest.approx(
        25, abs=1
    )
    # the placeholder counts its own words, as the record and `assets list` say (not "0 words")
    said = json.loads(local(result.transcript.json_uri).read_text())["text"].split()
    assert result.transcript.word_count == len(said) > 20
    assert main(["assets", "list", "-o", "table"]) == 0
    assert f"{len(said)} words" in capsys.readouterr().out
    # what search keeps: the words, and when every fifth is said (untimed here: spread over the audio)
    words, times = (result.transcript_text or "").split(), result.transcript_times or []
    assert len(times) == (len(words) + 4) // 5 and times[0] == [0, 0.0]
    assert [m[1] for m in times] == sorted(m[1] for m in times) and times[-1][1] < 25
    catalog = open_catalog()
    try:
        found = catalog.search(words[-1], Filters())
        [hit, *_] = found.hits[0].transcript
        assert found.engine == "sqlite-fts5" and hit.at_seconds is not None and hit.at_seconds > 0
    finally:
        catalog.close()


def test_internal_sources_are_refused_unless_allowed(
    workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same default as the worker: a loopback server is an internal address."""
    manifest = str(EXAMPLES / "transcription.yaml")
    with serve({"/sample.mp4": (200, {}, SAMPLE.read_bytes())}) as (base, requests):
        code, _, err = run(capsys, "--offline", "--source", f"{base}/sample.mp4", manifest)
        assert code == 1 and "SourceRefused" in err and "CONTENTGEN_ALLOW_PRIVATE_SOURCES=true" in err
        assert not requests  # refused before connecting
        monkeypatch.setenv("CONTENTGEN_ALLOW_PRIVATE_SOURCES", "true")
        code, _, err = run(capsys, "--offline", "--source", f"{base}/sample.mp4", manifest)
        assert code == 0, err


def test_result_to_stdout(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--offline", "--result", "-", str(EXAMPLES / "imagegeneration.yaml"))
    assert code == 0
    result = RunResult.model_validate_json(out)
    assert result.kind == "ImageGeneration" and len(result.images or []) == 2


def test_failures_exit_non_zero_with_one_line(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    notes = workspace / "notes.mp4"
    notes.write_text("not a video\n" * 100)
    code, out, err = run(capsys, "--offline", "--source", str(notes), str(EXAMPLES / "loratraining.yaml"))
    assert code == 1 and out == ""
    last = err.strip().splitlines()[-1]
    assert last.startswith("contentgen run: InvalidInput:") and "notes.mp4" in last
    (record,) = open_catalog().find(Filters(status="Failed")).docs
    assert record["latestRun"]["error"]["reason"] == "InvalidInput"

    code, _, err = run(
        capsys, "--offline", "--source", str(workspace / "missing.mp4"), str(EXAMPLES / "loratraining.yaml")
    )
    assert code == 1 and "does not exist" in err


def test_live_provider_without_its_key_fails_at_once(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(capsys, str(EXAMPLES / "imagegeneration.yaml"))
    assert code == 1 and "FAL_KEY is not set" in err and "--offline" in err
    code, _, err = run(capsys, "--source", str(SAMPLE), str(EXAMPLES / "transcription.yaml"))
    assert code == 1 and "ASSEMBLYAI_API_KEY" in err


def test_invalid_manifests_are_refused(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = workspace / "bad.yaml"
    doc = yaml.safe_load((EXAMPLES / "imagegeneration.yaml").read_text())
    doc["spec"]["numImages"] = 20
    bad.write_text(yaml.safe_dump(doc))
    code, _, err = run(capsys, "--offline", str(bad))
    assert code == 1 and "spec.numImages: must be at most 8" in err
    code, _, err = run(capsys, "--offline", "--source", "x.mp4", str(EXAMPLES / "imagegeneration.yaml"))
    assert code == 1 and "--source applies to" in err


def test_s3_store(workspace: Path, capsys: pytest.CaptureFixture[str], s3: str) -> None:
    code, _, err = run(
        capsys,
        "--offline",
        "--store",
        f"s3://{s3}/contentgen",
        "--result",
        "r.json",
        str(EXAMPLES / "imagegeneration.yaml"),
    )
    assert code == 0, err
    result = result_of(workspace / "r.json")
    assert all(
        a.uri.startswith(f"s3://{s3}/contentgen/generated-images/demo-user/") for a in result.artifacts
    )
    assert result.result_uri.endswith("/result.json")
    from contentgen.store.s3 import S3Store

    store = S3Store(s3, "contentgen")
    stored = RunResult.model_validate_json(store.get_bytes(store.key_of(result.result_uri)))
    assert stored.images == result.images


def test_a_bucket_that_does_not_exist_is_said_in_one_line(
    workspace: Path, capsys: pytest.CaptureFixture[str], s3: str
) -> None:
    manifest = str(EXAMPLES / "imagegeneration.yaml")
    code, _, err = run(capsys, "--offline", "--store", f"s3://{s3}/contentgen", manifest)
    assert code == 0, err
    before = open_catalog().find(Filters()).docs
    assert [r["status"] for r in before] == ["Succeeded"]

    missing = "missing-" + s3[-8:]
    code, out, err = run(capsys, "--offline", "--store", f"s3://{missing}/contentgen", manifest)
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert f"the bucket s3://{missing} does not exist" in err and "create it" in err
    assert "CONTENTGEN_STORE" in err and "catalog" not in err
    assert open_catalog().find(Filters()).docs == before  # nothing recorded: none Running, no version


def test_a_store_directory_that_cannot_be_written_is_said_in_one_line(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workspace / "a-file").write_text("")
    store = workspace / "a-file" / "store"
    code, out, err = run(capsys, "--offline", "--store", str(store), str(EXAMPLES / "imagegeneration.yaml"))
    assert (code, out) == (1, "")
    assert err == (
        f"contentgen run: the store directory {store} cannot be written (Not a directory): set "
        "CONTENTGEN_STORE (contentgen run --store) to a directory you can write\n"
    )
    assert not (workspace / "contentgen-data").exists()  # nothing recorded, not even as failed


# --- the worker --------------------------------------------------------------------------------


def test_worker_runs_the_snapshot_and_leaves_its_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lora_spec = {
        "owner": "u",
        "provider": "offline",
        "source": {"url": "http://placeholder/x.mp4"},
        "triggerWord": "tw",
        "dataset": {"maxFrames": 4},
    }
    with serve({"/sample.mp4": (200, {}, SAMPLE.read_bytes())}) as (base, _):
        lora_spec["source"] = {"url": f"{base}/sample.mp4"}
        spec = snapshot_file(tmp_path, "LoraTraining", lora_spec, version=1)
        code, message = worker(tmp_path, spec, monkeypatch, CONTENTGEN_ALLOW_PRIVATE_SOURCES="true")
    assert code == 0
    assert len(message) <= TERMINATION_LIMIT
    parsed = parse_termination(message)
    assert isinstance(parsed, RunResult)
    if parsed.truncated:  # the offline checkpoints' curve makes it long: the operator reads the stored one
        parsed = result_of(local(parsed.result_uri))
    assert parsed.lora is not None and parsed.generation == 1
    assert local(parsed.lora.model_uri).is_file()


def test_worker_refuses_what_only_local_runs_accept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = snapshot_file(
        tmp_path,
        "LoraTraining",
        {"owner": "u", "provider": "offline", "source": {"url": str(SAMPLE)}, "triggerWord": "tw"},
        version=1,
    )
    code, message = worker(tmp_path, spec, monkeypatch)
    assert code == 2
    failure = parse_termination(message)
    assert isinstance(failure, RunFailure) and failure.reason == "InvalidSpec"


def test_worker_refuses_internal_hosts_permanently(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = snapshot_file(
        tmp_path,
        "Transcription",
        {
            "owner": "u",
            "provider": "offline",
            "source": {"url": "http://169.254.169.254/latest/meta-data/x.mp3"},
        },
        version=1,
    )
    code, message = worker(tmp_path, spec, monkeypatch)
    failure = parse_termination(message)
    assert code == 2 and isinstance(failure, RunFailure) and failure.reason == "SourceRefused"


def test_worker_refuses_another_owners_upload_before_reading_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An upload (POST /api/uploads) is its owner's, and a spec of another owner that names it is
    refused by the worker's own check before anything is read (no S3 server here: a read would
    fail otherwise)."""
    theirs = "s3://contentgen/uploads/alice/0123456789abcdef0123456789abcdef/upload.mp3"
    spec = snapshot_file(
        tmp_path,
        "Transcription",
        {"owner": "bob", "provider": "offline", "source": {"url": theirs}},
        version=1,
    )
    # were it read, from nowhere: a closed local port, never the internet
    code, message = worker(
        tmp_path, spec, monkeypatch, CONTENTGEN_STORE="s3://contentgen", AWS_ENDPOINT_URL="http://127.0.0.1:9"
    )
    failure = parse_termination(message)
    assert code == 2 and isinstance(failure, RunFailure) and failure.reason == "InputNotShared"
    assert failure.message == (
        "spec.source.url: uploads/alice/… is an upload of owner 'alice', and uploads are not shared; "
        "upload the file as owner 'bob' (spec.owner)"
    )


def test_worker_without_a_spec(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("CONTENTGEN_SPEC", raising=False)
    assert main(["worker", "--termination-log", str(tmp_path / "log")]) == 2
    assert "CONTENTGEN_SPEC" in capsys.readouterr().err


def test_termination_message_fits_and_points_at_the_full_result(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    # one LoRA with its last step's checkpoint only, unscored (the evaluation off), whose version
    # fits in a trimmed message
    example = yaml.safe_load((EXAMPLES / "loratraining.yaml").read_text())
    example["spec"]["training"]["checkpointEvery"] = 0
    example["spec"]["evaluation"] = {"enabled": False}
    (tmp_path / "lora.yaml").write_text(yaml.safe_dump(example))
    assert run(capsys, "--offline", "--source", str(SAMPLE), "--result", "r.json", "lora.yaml")[0] == 0
    result = result_of(tmp_path / "r.json")
    big = result.model_copy(update={"transcript_text": "word " * 5000})
    message = termination_message(big)
    assert len(message) <= TERMINATION_LIMIT
    slim = parse_termination(message)
    assert isinstance(slim, RunResult) and slim.truncated and slim.result_uri == result.result_uri
    assert slim.lora == result.lora  # what the status needs survives the trimming
    assert (
        parse_termination(termination_message(result)) == result
        or len(termination_message(result)) <= TERMINATION_LIMIT
    )


def test_checkpoints_survive_in_the_store(tmp_path: Path, s3: str) -> None:
    from contentgen.pipeline.context import StoreCheckpoint
    from contentgen.store import LocalStore, keys
    from contentgen.store.s3 import S3Store

    for store in (LocalStore(tmp_path / "store"), S3Store(s3)):
        key = keys.checkpoint("uid-1", "lora-v2")
        first = StoreCheckpoint(store, key)
        assert first.load() == {}
        first.save({"request_id": "req-123", "app": "fal-ai/flux-lora-fast-training"})
        assert StoreCheckpoint(store, key).load()["request_id"] == "req-123"  # a retried pod reads it back
        assert key.startswith("temp/uid-1/")
        # Checkpoints were kept per version before runs had numbers of their own: the newest of
        # those is read until the per-resource one exists, so what was paid is not paid again.
        StoreCheckpoint(store, keys.checkpoint("uid-1", "lora-v1")).save({"request_id": "req-old"})
        current = StoreCheckpoint(store, keys.checkpoint("uid-1", "lora"), earlier="lora")
        assert current.load()["request_id"] == "req-123"  # v2 is the newest
        current.save({"request_id": "req-new"})
        assert current.load()["request_id"] == "req-new"
        assert StoreCheckpoint(store, key).load()["request_id"] == "req-123"  # left as it was
        assert StoreCheckpoint(store, keys.checkpoint("uid-2", "lora"), earlier="lora").load() == {}


def test_demo_sample_video_is_small() -> None:
    assert SAMPLE.is_file() and SAMPLE.stat().st_size < 2 * 1024 * 1024


def test_a_failure_with_many_billed_captions_fits_its_termination_message() -> None:
    """A failure has no stored copy: when its usage does not fit, it is summed per item and price,
    so the spend stays known (counted, never lost)."""
    from contentgen.api import UsageLine
    from contentgen.api.run import failure_message
    from contentgen.pricing import PriceTable, priced

    captions = [
        UsageLine(
            provider="fal",
            item="openrouter/router/vision",
            unit="request",
            quantity=1,
            request=f"0b6c1f0e-3a55-4f8e-9a4d-{n:012d}",
            unit_price_usd=0.001,
            price_source="table, as of 2026-11-22",
            price_date="2026-11-22",
        )
        for n in range(40)
    ]
    small = RunFailure(reason="ProviderJobFailed", message="the trainer failed", usage=captions[:3])
    assert parse_termination(failure_message(small)) == small  # whole when it fits
    big = RunFailure(reason="ProviderJobFailed", message="why " * 600, usage=captions)
    message = failure_message(big)
    assert len(message) <= TERMINATION_LIMIT
    parsed = parse_termination(message)
    assert isinstance(parsed, RunFailure) and parsed.reason == "ProviderJobFailed"
    assert parsed.usage is not None and len(parsed.usage) == 1 and parsed.usage[0].quantity == 40
    assert priced(parsed.usage, PriceTable()) == priced(captions, PriceTable())
    unknown = RunFailure(reason="ProviderOutcomeUnknown", message="why " * 2000, usage=None)
    parsed = parse_termination(failure_message(unknown))
    assert isinstance(parsed, RunFailure) and parsed.usage is None
