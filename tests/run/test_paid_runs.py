"""`contentgen run` around paid work: the fal fake behind the real fal-client, the real S3 server
(versitygw) with writes refused, a catalog that goes away. Billed requests are counted in each."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import botocore.exceptions
import mongomock
import pytest
import yaml

from contentgen.catalog import Catalog, Filters, open_catalog
from contentgen.catalog.outbox import catalog_id
from contentgen.cli.main import main
from contentgen.cli.run import EXIT_RECORDING_PENDING
from contentgen.store import open_store
from tests.conftest import EXAMPLES
from tests.kube.harness import FlakyCollection
from tests.providers.fake_fal import FAL_KEY, FakeFal
from tests.providers.fakes import mocked, unslept_retries

IMAGES = str(EXAMPLES / "imagegeneration.yaml")  # flux-dev, 2 images, provider fal
VIDEO = str(EXAMPLES / "videogeneration.yaml")  # wan-2.2-t2v, 33 frames at 16 fps, provider fal
SAMPLE = EXAMPLES / "media" / "sample.mp4"


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for variable in ("CONTENTGEN_STORE", "CONTENTGEN_CATALOG", "ASSEMBLYAI_API_KEY", "CONTENTGEN_PRICES"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("FAL_KEY", FAL_KEY)
    unslept_retries(monkeypatch)  # the providers' waits are recorded, not slept
    return tmp_path


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["run", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


# --- a store that refuses the write after fal was paid ----------------------------------------------


@pytest.fixture
def refusing_s3(s3: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    """The run's S3 client; while `refuse["images"]` (`refuse["videos"]`) is set, writes under
    generated-images/ (generated-videos/) are answered AccessDenied (a bucket policy, a wrong
    secret for that prefix)."""
    from contentgen.store import s3 as s3_module

    refuse = {"images": True, "videos": False}
    make = s3_module.s3_client

    def client() -> Any:
        real = make()

        def deny(params: dict[str, Any], **_: Any) -> None:
            key = f"/{params.get('Key', '')}"
            if any(refuse[kind] and f"/generated-{kind}/" in key for kind in refuse):
                raise botocore.exceptions.ClientError(
                    {"Error": {"Code": "AccessDenied", "Message": "Access Denied"}}, "PutObject"
                )

        real.meta.events.register("before-parameter-build.s3.PutObject", deny)
        return real

    monkeypatch.setattr(s3_module, "s3_client", client)
    monkeypatch.setenv("CONTENTGEN_STORE", f"s3://{s3}/cg")
    return refuse


def test_a_store_failure_after_a_paid_generation_stores_it_next_time_without_paying(
    workspace: Path, capsys: pytest.CaptureFixture[str], refusing_s3: dict[str, bool], s3: str
) -> None:
    fal = FakeFal()
    with mocked(fal):
        code, _, err = run(capsys, IMAGES)
    assert code == 1
    assert "StoreAccessDenied" in err and "were paid for and are kept in the provider's checkpoint" in err
    assert (fal.accepted, fal.billed) == (1, 1)

    refusing_s3["images"] = False  # the secret is fixed
    asked = len(fal.requests)
    with mocked(fal):
        code, _, err = run(capsys, "--result", "r.json", IMAGES)
    assert code == 0, err
    assert (fal.accepted, fal.billed) == (1, 1)  # stored what was paid for; nothing paid twice
    assert {kind for kind, _ in fal.requests[asked:]} == {"download"}
    result = json.loads((workspace / "r.json").read_text())
    images = [a["uri"].rsplit("/", 1)[1] for a in result["artifacts"] if "/thumbs/" not in a["uri"]]
    assert images == ["image_1.png", "image_2.png"]
    [line] = result["usage"]
    assert {k: line[k] for k in ("provider", "item", "unit", "quantity", "request")} == {
        "provider": "fal",
        "item": "fal-ai/flux/dev",
        "unit": "megapixel",
        "quantity": 2.0,
        "request": "req-1",
    }
    # priced at the account's price from fal's pricing API, not the table's $0.025
    assert (line["unitPriceUsd"], line["priceSource"]) == (0.02, "fal pricing API") and line["priceDate"]
    record = open_catalog().get(result["uid"])
    assert record is not None and record["status"] == "Succeeded"
    # 2 images of 1024x768, each 1 megapixel at fal's $0.02; estimated with the table's $0.025
    assert record["cost"]["actualUsd"] == pytest.approx(0.04)
    assert record["cost"]["estimatedUsd"] == pytest.approx(0.05)
    assert "x $0.02 (fal pricing API, " in record["cost"]["detail"]
    # the failed run counted what fal billed; the run that stored it does not count it again
    assert list(record["cost"]["byMonth"].values()) == [pytest.approx(0.04)]
    assert record["cost"]["countedRequests"] == ["req-1"] and "counted then" in record["cost"]["detail"]
    assert "estimated cost $0.0500 at fal" in err


def test_a_fal_video_refused_by_the_store_is_stored_next_time_without_paying(
    workspace: Path, capsys: pytest.CaptureFixture[str], refusing_s3: dict[str, bool], s3: str
) -> None:
    refusing_s3.update(images=False, videos=True)
    fal = FakeFal()
    with mocked(fal):
        code, _, err = run(capsys, VIDEO)
    assert code == 1
    said = "the video was paid for and is kept in the provider's checkpoint: the next attempt stores it"
    assert "StoreAccessDenied" in err and said in err
    assert (fal.accepted, fal.billed) == (1, 1)

    refusing_s3["videos"] = False
    asked = len(fal.requests)
    with mocked(fal):
        code, _, err = run(capsys, "--result", "r.json", VIDEO)
    assert code == 0, err
    assert (fal.accepted, fal.billed) == (1, 1) and {k for k, _ in fal.requests[asked:]} == {"download"}
    [(app, sent)] = fal.submitted
    assert app == "fal-ai/wan/v2.2-a14b/text-to-video/lora" and sent["num_interpolated_frames"] == 0
    result = json.loads((workspace / "r.json").read_text())
    video = result["video"]  # measured from the file fal delivered
    assert (video["frames"], video["fps"], video["seed"], video["codec"]) == (33, 16.0, 7, "h264")
    [line] = result["usage"]
    assert {k: line[k] for k in ("provider", "item", "unit", "quantity", "request")} == {
        "provider": "fal",
        "item": "fal-ai/wan/v2.2-a14b/text-to-video/lora",
        "unit": "video-second",
        "quantity": 33 / 16,
        "request": "req-1",
    }
    record = open_catalog().get(result["uid"])
    assert record is not None and record["status"] == "Succeeded"
    assert record["cost"]["countedRequests"] == ["req-1"]


def test_a_laptop_animates_a_fal_picture_on_fal_by_uploading_it(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fal = FakeFal()
    manifest = yaml.safe_load((EXAMPLES / "videogeneration-portrait.yaml").read_text())
    manifest["spec"]["imageRef"] = {"name": "demo-landscape", "image": 2}
    (workspace / "clip.yaml").write_text(yaml.safe_dump(manifest))
    with mocked(fal):
        assert run(capsys, IMAGES)[0] == 0
        code, _, err = run(capsys, "--result", "r.json", "clip.yaml")
    assert code == 0, err
    # the local store's file:// picture cannot be fetched by fal: it went to fal's CDN, once
    name = fal.uploads[-1][0]
    assert len(fal.uploads) == 1 and name == "image_2.png"
    [(_, _), (app, sent)] = fal.submitted
    assert app == "fal-ai/wan/v2.2-a14b/image-to-video"
    assert sent["image_url"].startswith("https://v3.fal.media/") and sent["aspect_ratio"] == "auto"
    assert (sent["num_frames"], sent["frames_per_second"]) == (32, 16)  # durationSeconds 2 at 16 fps
    result = json.loads((workspace / "r.json").read_text())
    assert result["image"]["name"] == "demo-landscape" and result["video"]["frames"] == 32
    assert (fal.accepted, fal.billed) == (2, 2)


# --- a catalog that is away -----------------------------------------------------------------------


@pytest.fixture
def catalog_down(monkeypatch: pytest.MonkeyPatch) -> tuple[threading.Event, Catalog]:
    down = threading.Event()
    down.set()
    collection = mongomock.MongoClient(tz_aware=True)["contentgen"]["jobs"]
    catalog = Catalog(FlakyCollection(collection, down), close=lambda: None)
    import contentgen.catalog as catalog_module

    monkeypatch.setattr(catalog_module, "open_catalog", lambda url=None, **_: catalog)
    monkeypatch.setenv("CONTENTGEN_CATALOG", "mongodb://user:s3cret@mongodb:27017/contentgen")
    return down, catalog


def test_a_run_while_the_catalog_is_away_is_recorded_by_the_next_run(
    workspace: Path, capsys: pytest.CaptureFixture[str], catalog_down: tuple[threading.Event, Catalog]
) -> None:
    down, catalog = catalog_down
    code, _, err = run(capsys, "--offline", "--result", "first.json", IMAGES)
    assert code == EXIT_RECORDING_PENDING == 3
    assert "the catalog mongodb://mongodb:27017/contentgen is unavailable" in err
    assert "s3cret" not in err and "waits in file://" in err
    first = json.loads((workspace / "first.json").read_text())
    store = open_store("./contentgen-data/store")
    [waiting] = [info.key for info in store.list("outbox/catalog/")]
    entry = json.loads(store.get_bytes(waiting))
    assert entry["snapshot"]["uid"] == first["uid"] and "s3cret" not in json.dumps(entry)
    assert entry["catalog"] == catalog_id("mongodb://user:s3cret@mongodb:27017/contentgen")

    down.clear()  # MongoDB is back
    other = workspace / "other.yaml"
    other.write_text((EXAMPLES / "imagegeneration.yaml").read_text().replace("demo-landscape", "other"))
    code, _, err = run(capsys, "--offline", str(other))
    assert code == 0, err
    assert "recorded 1 earlier run that waited for the catalog" in err
    assert list(store.list("outbox/catalog/")) == []
    record = catalog.get(first["uid"])
    assert record is not None and record["status"] == "Succeeded"
    assert record["cost"]["actualUsd"] == 0.0  # offline: nothing billed
    assert catalog.find(Filters()).total == 2


def test_a_failed_run_while_the_catalog_is_away_says_its_record_waits(
    workspace: Path, capsys: pytest.CaptureFixture[str], catalog_down: tuple[threading.Event, Catalog]
) -> None:
    (workspace / "notes.mp4").write_text("not a recording")  # there, so the run fails, not its start
    code, _, err = run(capsys, "--offline", "--source", "notes.mp4", str(EXAMPLES / "transcription.yaml"))
    assert code == 1 and "its record waits in the outbox for the catalog" in err
    down, catalog = catalog_down
    down.clear()
    assert run(capsys, "--offline", IMAGES)[0] == 0
    assert sorted(doc["status"] for doc in catalog.find(Filters()).docs) == ["Failed", "Succeeded"]


# --- captions, then training: what a failed run still counts -----------------------------------


def test_captions_billed_before_a_refused_training_are_counted_and_never_paid_again(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.providers.fake_fal import VISION_APP
    from tests.providers.fakes import failure

    training = "fal-ai/flux-lora-fast-training"
    fal = FakeFal()
    fal.fail_job(  # the trainer refuses the dataset: fal bills nothing for it
        training,
        {"status": "COMPLETED", "logs": [], "error": "bad dataset", "error_type": None},
        failure(422, {"detail": [{"loc": ["body", "steps"], "msg": "bad dataset", "type": "value_error"}]}),
    )
    lora = str(EXAMPLES / "loratraining.yaml")  # provider fal, captioning auto
    with mocked(fal):
        code, _, err = run(capsys, "--source", str(SAMPLE), "--result", "failed.json", lora)
    assert code == 1 and "ProviderJobFailed" in err
    captioned = sum(1 for app, _ in fal.submitted if app == VISION_APP)
    assert captioned >= 4 and fal.billed == captioned  # every caption, not the training
    failed = json.loads((workspace / "failed.json").read_text())
    assert [line["unit"] for line in failed["usage"]] == ["request"] * captioned
    # 1000 steps, up to 12 captions and the likeness evaluation (24 pictures of 1 megapixel)
    assert "estimated cost $2.8520 at fal" in err

    del fal.failures[training]  # the dataset problem is fixed at fal's end
    with mocked(fal):
        code, _, err = run(capsys, "--source", str(SAMPLE), "--result", "r.json", lora)
    assert code == 0, err
    assert sum(1 for app, _ in fal.submitted if app == VISION_APP) == captioned  # not paid again
    assert fal.billed == captioned + 1
    result = json.loads((workspace / "r.json").read_text())
    assert [line["unit"] for line in result["usage"]] == ["request"] * captioned + ["step"]
    # fal prices the trainer per step ($0.0015 for this account) and the vision router per token,
    # which a run does not count: the captions are priced with the table
    sources = {(line["item"], line["priceSource"]) for line in result["usage"]}
    assert sources == {(training, "fal pricing API"), (VISION_APP, "table, as of 2026-11-22")}
    record = open_catalog().get(result["uid"])
    assert record is not None and record["status"] == "Succeeded"
    assert record["cost"]["actualUsd"] == pytest.approx(1.5 + 0.001 * captioned)
    captions = f"{captioned} requests of {VISION_APP} x $0.001 (table, as of 2026-11-22)"
    assert captions in record["cost"]["detail"]
    # the captions were counted by the failed run, the training by this one: each once
    assert sum(record["cost"]["byMonth"].values()) == pytest.approx(1.5 + 0.001 * captioned)


def test_assets_delete_erases_fals_copies_of_every_request_the_runs_made(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The captions, the training fal refused (not billed, but its payloads are kept at fal) and the
    training that succeeded: every one is erased at fal, not only the counted ones."""
    from tests.providers.fake_fal import VISION_APP
    from tests.providers.fakes import failure

    training = "fal-ai/flux-lora-fast-training"
    fal = FakeFal()
    fal.fail_job(
        training,
        {"status": "COMPLETED", "logs": [], "error": "bad dataset", "error_type": None},
        failure(422, {"detail": [{"loc": ["body", "steps"], "msg": "bad dataset", "type": "value_error"}]}),
    )
    lora = str(EXAMPLES / "loratraining.yaml")
    with mocked(fal):
        assert run(capsys, "--source", str(SAMPLE), lora)[0] == 1
        del fal.failures[training]
        code, _, err = run(capsys, "--source", str(SAMPLE), "--result", "r.json", lora)
        assert code == 0, err
        uid = json.loads((workspace / "r.json").read_text())["uid"]
        code, out, err = run_assets(capsys, "delete", uid, "--yes", "-o", "json")
    assert code == 0, err
    report = json.loads(out)
    made = [job.request_id for job in fal.ours]
    trainings = [job.request_id for job in fal.ours if job.app == training]
    assert len(trainings) == 2 and len(made) > len(trainings)
    assert sorted(fal.erased) == sorted(made)  # the refused training too
    assert len(report["providerErased"]) == len(made)
    assert report["providerKept"] and "inputs" in report["providerKept"][-1]
    weights = [url for url in fal.files if url.endswith(".safetensors")]
    assert weights and set(weights) <= fal.dead  # the paid outputs are gone from fal's CDN too
    assert all(app in (VISION_APP, training) for app, _ in fal.submitted)


def run_assets(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["assets", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


# --- the likeness evaluation of a LoRA trained on fal -----------------------------------------------


def test_a_lora_trained_on_fal_carries_a_likeness_report_paid_once(
    workspace: Path, capsys: pytest.CaptureFixture[str], s3: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole path: `contentgen run` of the example LoRA on fal (the fake) with an S3 store. The
    fake's flux-lora pictures show the sample video's subject (the astronaut of scikit-image) when
    asked with the LoRA and other people without it: the version's report says she is there, every
    picture is billed once and counted in the run's cost, and a new version pays only for its own
    pictures (the baseline is stored)."""
    from contentgen.api import RunResult
    from contentgen.pipeline.likeness import score
    from scripts.synthetic_video import source_image

    def picture(arguments: dict[str, Any], _: int) -> Any:
        name = "astronaut" if arguments.get("loras") else ("grace_hopper", "luispedro")[arguments["seed"] % 2]
        photo = source_image(name)[:, ::-1, ::-1] if arguments["seed"] % 2 else source_image(name)[:, :, ::-1]
        return photo.copy()

    monkeypatch.setenv("CONTENTGEN_STORE", f"s3://{s3}/cg")
    fal = FakeFal()
    fal.picture = picture
    lora = str(EXAMPLES / "loratraining.yaml")  # provider fal, evaluation on by default
    with mocked(fal):
        code, _, err = run(capsys, "--source", str(SAMPLE), "--result", "r.json", lora)
    assert code == 0, err
    assert "24 megapixels of fal-ai/flux-lora" in err  # the estimate shown before it starts
    result = RunResult.model_validate_json((workspace / "r.json").read_text())
    assert result.lora is not None and result.lora.likeness is not None
    likeness = result.lora.likeness
    assert likeness.median is not None and likeness.median >= score.THRESHOLD
    assert likeness.gain is not None and likeness.gain >= score.MIN_GAIN
    assert likeness.bleed is None  # the fake draws one person, also when two were asked for
    # the sample's dataset is crops of one photograph, and so are the fake's pictures: copies
    assert likeness.verdict == "poor" and any("generated faces are copies of" in r for r in likeness.reasons)
    pictures = [job for job in fal.ours if job.app == "fal-ai/flux-lora"]
    assert len(pictures) == 24 and all(job.billed for job in pictures)
    assert result.usage is not None
    paid = {line.request for line in result.usage if line.item == "fal-ai/flux-lora"}
    assert paid == {job.request_id for job in pictures}
    record = open_catalog().get(result.uid)
    assert record is not None and record["versions"][0]["likeness"]["median"] == likeness.median
    store = open_store(f"s3://{s3}/cg")
    assert store.exists(store.key_of(likeness.grid_uri)) and store.exists(store.key_of(likeness.report_uri))

    # a new version of the same resource: only its own twelve pictures are paid
    with mocked(fal):
        code, _, err = run(capsys, "--source", str(SAMPLE), "--result", "r2.json", lora)
    assert code == 0, err
    assert len([job for job in fal.ours if job.app == "fal-ai/flux-lora"]) == 24 + 12
    second = RunResult.model_validate_json((workspace / "r2.json").read_text())
    assert second.lora is not None and second.lora.likeness is not None
    assert second.lora.likeness.baseline_median == likeness.baseline_median


def test_an_offline_runs_store_failure_says_nothing_was_paid(
    workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The offline provider charges nothing and keeps no checkpoint: a store that refuses its
    images says so (issue 36), not that they "were paid for" and are kept in a checkpoint."""
    from contentgen.store.local import LocalStore

    write = LocalStore._write

    def refuse(self: LocalStore, key: str, *args: Any) -> Any:
        if key.startswith("generated-images/"):
            raise PermissionError(13, "Permission denied", key)
        return write(self, key, *args)

    monkeypatch.setattr(LocalStore, "_write", refuse)
    code, _, err = run(capsys, "--offline", IMAGES)
    assert code == 1
    assert "contentgen run: StoreAccessDenied: could not write to the store" in err
    said = "the images were made by the offline provider, which charges nothing: the next attempt makes them "
    said += "again"
    assert err.rstrip().endswith(said)
    assert "were paid for" not in err
