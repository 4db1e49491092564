"""`contentgen assets lineage`, `delete`, lookups, the shared filter vocabulary, and catalogs that
are missing or down, on catalogs `contentgen run --offline` filled for real."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from contentgen.catalog import FILTER_HELP, SORT_HELP, Filters
from contentgen.cli.main import build_parser, main
from contentgen.httpapi import ApiSettings, create_app
from tests.conftest import EXAMPLES
from tests.harness.cli import as_json, cli

SAMPLE = EXAMPLES / "media" / "sample.mp4"


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's LoRA (trained twice) and the image generation that uses it, run offline."""
    root = tmp_path_factory.mktemp("made")
    with pytest.MonkeyPatch.context() as env:
        env.chdir(root)
        for variable in ("CONTENTGEN_STORE", "CONTENTGEN_CATALOG", "CONTENTGEN_ALLOW_PRIVATE_SOURCES"):
            env.delenv(variable, raising=False)
        lora = EXAMPLES / "loratraining.yaml"
        for args in (
            ["--source", str(SAMPLE), str(lora)],
            ["--source", str(SAMPLE), str(lora)],  # version 2
            [str(EXAMPLES / "imagegeneration-lora.yaml")],
            [str(EXAMPLES / "imagegeneration.yaml")],
        ):
            assert main(["run", "--offline", *args]) == 0
    return root


@pytest.fixture
def here(made: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of `made` to work in (delete changes it)."""
    import shutil

    work = tmp_path / "work"
    shutil.copytree(made, work)
    monkeypatch.chdir(work)
    for variable in ("CONTENTGEN_STORE", "CONTENTGEN_CATALOG"):
        monkeypatch.delenv(variable, raising=False)
    return work


def test_lineage_of_an_image_and_of_its_lora(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    image = as_json(capsys, "assets", "lineage", "default/demo-avatar-portrait")
    (lora,) = image["loras"]
    assert (lora["name"], lora["version"], lora["scale"], lora["found"]) == ("demo-avatar", 2, 0.8, True)
    # the checkpoint it used: the version's model, its run's automatic choice (none promoted)
    assert (lora["step"], lora["promotion"], lora["usedBy"]) == (lora["trained"]["chosenStep"], None, [1])
    assert lora["trained"]["sourceUrl"] == str(SAMPLE)
    assert lora["trained"]["datasetUri"].endswith(f"/datasets/demo-user/{lora['uid']}/v2/dataset.zip")
    trained = as_json(capsys, "assets", "lineage", lora["uid"][:8])  # a prefix of the id
    assert [v["version"] for v in trained["versions"]] == [1, 2]
    assert [i["id"] for i in trained["versions"][1]["images"]] == [image["id"]]
    assert trained["versions"][0]["images"] == [] and trained["imagesTotal"] == 1
    code, out, _ = cli(capsys, "assets", "lineage", "default/demo-avatar-portrait", "-o", "table")
    assert code == 0
    assert out.splitlines()[1:4] == [
        f"  made with LoRA demo-avatar {lora['uid']} v2 step {lora['step']} (the automatic choice) "
        "(scale 0.8), by its v1",
        f"    dataset {lora['trained']['datasetUri']} ({lora['trained']['frames']} images)",
        f"    source  {SAMPLE}",
    ]
    # The same lineage is in the record, and in the images' status the run recorded.
    record = as_json(capsys, "assets", "get", "default/demo-avatar-portrait")
    assert record["loras"] == [{k: lora[k] for k in ("uri", "scale", "name", "uid", "version")}]
    assert record["images"][0]["thumbnailUri"].endswith("/thumbs/image_1.jpg")


def test_names_that_several_kinds_share_need_the_type(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(capsys, "assets", "get", "demo")
    assert code == 1 and "no record 'demo'" in err  # too short for a prefix, not a name
    record = as_json(capsys, "assets", "get", "default/demo-avatar", "--type", "lora-training")
    assert record["kind"] == "LoraTraining"


def test_delete_removes_the_stored_objects_and_marks_the_record(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for variable in ("CONTENTGEN_STORE", "CONTENTGEN_CATALOG"):
        monkeypatch.delenv(variable, raising=False)
    assert main(["run", "--offline", str(EXAMPLES / "imagegeneration.yaml")]) == 0
    assert main(["run", "--offline", "--source", str(SAMPLE), str(EXAMPLES / "transcription.yaml")]) == 0
    store = tmp_path / "contentgen-data" / "store"
    record = as_json(capsys, "assets", "get", "default/demo-landscape")
    folder = store / "generated-images" / "demo-user" / record["id"]
    before = sorted(p.relative_to(store).as_posix() for p in folder.rglob("*") if p.is_file())
    assert len(before) == 5  # two images, their thumbnails, result.json
    code, out, err = cli(capsys, "assets", "delete", "default/demo-landscape", "-o", "table")
    assert code == 0 and sorted(out.split()) == before and "add --yes to delete" in err
    assert folder.is_dir()  # only said what would go
    code, out, _ = cli(capsys, "assets", "delete", "default/demo-landscape", "--yes", "-o", "table")
    assert code == 0 and out.startswith("deleted 5 stored objects of image-generation default/demo-landscape")
    assert not any(p.is_file() for p in folder.rglob("*"))
    after = as_json(capsys, "assets", "get", record["id"])
    assert after["status"] == "Deleted" and after["deletedAt"]
    code, _, err = cli(capsys, "assets", "url", record["id"])
    assert code == 1 and "was deleted" in err
    # Other records keep their files.
    assert any((store / "transcripts" / "demo-user").rglob("transcript.txt"))


def test_delete_refuses_a_record_of_another_store(here: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = cli(
        capsys, "assets", "delete", "default/demo-landscape", "--store", str(here / "elsewhere")
    )
    assert code == 1 and "are in another store" in err and "--store" in err


def test_a_lora_whose_retraining_failed_is_still_usable(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = here / "notes.mp4"
    bad.write_text("not a video")
    assert cli(capsys, "run", "--offline", "--source", str(bad), str(EXAMPLES / "loratraining.yaml"))[0] == 1
    record = as_json(capsys, "assets", "get", "default/demo-avatar", "--type", "lora-training")
    assert record["status"] == "Succeeded" and [v["version"] for v in record["versions"]] == [1, 2]
    assert record["latestRun"]["phase"] == "Failed" and record["latestRun"]["version"] == 3
    usable = as_json(capsys, "assets", "list", "--type", "lora-training", "--status", "Succeeded")
    assert [r["id"] for r in usable["items"]] == [record["id"]]
    assert usable["items"][0]["latestModelUri"].endswith("/v2/model.safetensors")


def test_every_command_takes_catalog_and_store_and_readers_create_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], made: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    catalog, store = made / "contentgen-data" / "catalog", made / "contentgen-data" / "store"
    listed = as_json(capsys, "assets", "list", "--catalog", str(catalog))
    assert listed["total"] == 3
    code, out, _ = cli(capsys, "assets", "url", "default/demo-landscape", "--catalog", str(catalog),
                       "--store", str(store), "-o", "table")  # fmt: skip
    assert code == 0 and out.startswith(f"file://{store}/generated-images/")
    code, _, err = cli(capsys, "assets", "list", "--catalog", str(tmp_path / "typo"))
    assert code == 1 and f"there is no catalog at {tmp_path}/typo" in err
    code, _, err = cli(capsys, "assets", "list")  # the default, ./contentgen-data/catalog
    assert code == 1 and "there is no catalog at" in err
    assert not (tmp_path / "contentgen-data").exists() and not (tmp_path / "typo").exists()
    parser = build_parser()
    for command in ("list", "get", "search", "stats", "lineage", "url", "delete"):
        flags = _flags(parser, "assets", command)
        assert {"--catalog", "--store"} <= flags, command
    assert {"--catalog", "--store"} <= _flags(parser, "run") and {"--catalog", "--store"} <= _flags(
        parser, "api"
    )


def _flags(parser: Any, *path: str) -> set[str]:
    for name in path:
        sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
        parser = sub.choices[name]
    return {o for a in parser._actions for o in a.option_strings if o.startswith("--")}


def test_the_cli_and_the_api_filter_with_the_same_words(tmp_path: Path) -> None:
    """`assets list --NAME` and `GET /api/jobs?NAME=` are one vocabulary (catalog.FILTER_HELP)."""
    flags = {f.removeprefix("--") for f in _flags(build_parser(), "assets", "list")}
    app = create_app(ApiSettings(catalog="unused://", api_tokens_file=None), catalog=object(),  # type: ignore[arg-type]
                     tokens=object())  # type: ignore[arg-type]  # fmt: skip
    params = {p["name"] for p in app.openapi()["paths"]["/api/jobs"]["get"]["parameters"]}
    vocabulary = set(FILTER_HELP) | set(SORT_HELP)
    assert params == vocabulary
    assert flags - {"output", "catalog", "store", "help"} == vocabulary
    assert set(Filters.__dataclass_fields__) == set(FILTER_HELP)


def test_a_mongodb_that_is_down_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "assets", "list", "--catalog", "mongodb://user:hunter2@127.0.0.1:1/x")
    assert (code, out) == (1, "")
    assert err.startswith("contentgen assets: the catalog mongodb://127.0.0.1:1/x cannot be reached")
    assert "hunter2" not in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_prune_and_delete_a_version_say_what_would_go_then_remove_only_that(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for variable in ("CONTENTGEN_STORE", "CONTENTGEN_CATALOG"):
        monkeypatch.delenv(variable, raising=False)
    lora_yaml = str(EXAMPLES / "loratraining.yaml")
    for args in (["--source", str(SAMPLE), lora_yaml], ["--source", str(SAMPLE), lora_yaml]):
        assert main(["run", "--offline", *args]) == 0
    assert main(["run", "--offline", str(EXAMPLES / "imagegeneration-lora.yaml")]) == 0  # made with v2
    lora = as_json(capsys, "assets", "get", "demo-avatar")  # a bare name: namespace default
    assert lora["kind"] == "LoraTraining" and [v["version"] for v in lora["versions"]] == [1, 2]
    store = tmp_path / "contentgen-data" / "store"
    folders = [store / root / "demo-user" / lora["id"] / "v1" for root in ("loras", "datasets")]
    v1 = [p for folder in folders for p in folder.rglob("*") if p.is_file()]
    assert v1

    code, _, err = cli(capsys, "assets", "delete", "default/demo-avatar", "--version", "2", "-o", "table")
    assert code == 0 and "(v2 was used by 1 image generation)" in err and "add --yes" in err
    code, out, err = cli(capsys, "assets", "prune", "demo-avatar", "--keep", "1", "-o", "table")
    assert code == 0 and "would delete v1 of lora-training default/demo-avatar" in err and "--yes" in err
    assert sorted(out.split()) == sorted(p.relative_to(store).as_posix() for p in v1)
    assert all(p.exists() for p in v1)  # dry runs
    assert [v["version"] for v in as_json(capsys, "assets", "get", lora["id"])["versions"]] == [1, 2]

    done = as_json(capsys, "assets", "prune", "demo-avatar", "--keep", "1", "--yes")
    assert done["versions"] == [1] and done["kept"] == [2] and done["removed"] == len(v1)
    assert not any(p.exists() for p in v1)
    after = as_json(capsys, "assets", "get", lora["id"])
    assert [v["version"] for v in after["versions"]] == [2] and after["status"] == "Succeeded"
    assert [(v["version"], v["by"]) for v in after["deletedVersions"]] == [(1, "cli")]
    assert after["latestModelUri"].endswith("/v2/model.safetensors")
    assert as_json(capsys, "assets", "prune", "demo-avatar", "--keep", "1", "--yes")["versions"] == []

    gone = as_json(capsys, "assets", "delete", lora["id"], "--version", "2", "--yes")
    assert gone["versions"] == [2] and gone["usedBy"] == {"v2": 1} and gone["removed"] > 0
    last = as_json(capsys, "assets", "get", lora["id"])
    assert last["versions"] == [] and last["status"] == "Deleted"  # every version was deleted
    code, _, err = cli(capsys, "assets", "delete", lora["id"], "--version", "2", "--yes")
    assert code == 1 and f"version 2 of {lora['id']} was deleted" in err
    code, _, err = cli(capsys, "assets", "url", lora["id"], "--version", "1")
    assert code == 1 and "was deleted" in err
    # the image generation made with it is untouched
    portrait = as_json(capsys, "assets", "get", "default/demo-avatar-portrait")
    assert portrait["status"] == "Succeeded" and portrait["loras"][0]["version"] == 2
