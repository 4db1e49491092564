"""`contentgen assets` against an embedded catalog in a temporary directory (as on a laptop)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from contentgen.catalog.embedded import EmbeddedCatalog
from contentgen.cli.main import main
from contentgen.store import LocalStore, ObjectStore
from contentgen.store.s3 import S3Store
from tests.catalog.factory import T0, image_doc, lora_doc, transcript_doc

HOUR = timedelta(hours=1)
Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def local_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalStore:
    monkeypatch.setenv("CONTENTGEN_STORE", f"file://{tmp_path}/store")
    return LocalStore(tmp_path / "store")


def fill(path: Path, store: ObjectStore) -> None:
    """alice: a LoRA with two versions, an image run, a deleted image run; bob: a transcript."""
    catalog = EmbeddedCatalog(path)
    catalog.upsert(lora_doc("lora-1", name="jesse-avatar", versions=2, tags=("headshot",), uri_of=store.uri))
    catalog.upsert(image_doc("img-1", prompt="a red fox", created=T0 + HOUR, uri_of=store.uri))
    catalog.upsert(image_doc("img-del", prompt="a red fox", created=T0 + 2 * HOUR, uri_of=store.uri))
    catalog.upsert(transcript_doc("tr-1", owner="bob", created=T0 + 3 * HOUR, uri_of=store.uri))
    catalog.mark_deleted("img-del", T0 + 4 * HOUR)
    catalog.close()
    for key in (
        "loras/alice/lora-1/v1/model.safetensors",
        "loras/alice/lora-1/v2/model.safetensors",
        "loras/alice/lora-1/v2/config.json",
        "generated-images/alice/img-1/v1/image_1.png",
    ):
        store.put_bytes(key, f"bytes of {key}".encode(), "application/octet-stream")


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    """`contentgen assets ARGS` on the catalog in tmp_path/catalog: (exit code, stdout, stderr)."""
    monkeypatch.setenv("CONTENTGEN_CATALOG", f"file://{tmp_path}/catalog")
    monkeypatch.delenv("CONTENTGEN_PRICE_PER_GB_MONTH", raising=False)

    def invoke(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["assets", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


@pytest.fixture
def run(cli: Run, tmp_path: Path, local_store: LocalStore) -> Run:
    """`cli` with the catalog filled (see fill)."""
    fill(tmp_path / "catalog", local_store)
    return cli


def json_out(run: Run, *args: str) -> Any:
    code, out, _ = run(*args)
    assert code == 0
    return json.loads(out)


def ids(page: dict[str, Any]) -> list[str]:
    return [item["id"] for item in page["items"]]


# --- list -----------------------------------------------------------------------------------


def test_list_prints_json_when_not_on_a_terminal(run: Run) -> None:
    page = json_out(run, "list")
    assert ids(page) == ["tr-1", "img-1", "lora-1"]  # newest first, the deleted one left out
    assert page["total"] == 3 and page["limit"] == 50 and page["offset"] == 0
    lora = page["items"][2]
    assert lora["latestModelUri"].endswith("/loras/alice/lora-1/v2/model.safetensors")


def test_catalog_store_and_output_go_before_or_after_the_action(
    run: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTENTGEN_CATALOG", str(tmp_path / "elsewhere"))  # not the filled one
    catalog = f"file://{tmp_path}/catalog"
    before = json_out(run, "--catalog", catalog, "list")
    assert ids(before) == ["tr-1", "img-1", "lora-1"]
    assert json_out(run, "list", "--catalog", catalog) == before
    # given twice, the one after the action wins, as the action's own option
    code, _, err = run("--catalog", catalog, "list", "--catalog", str(tmp_path / "nowhere"))
    assert code == 1 and "nowhere" in err
    code, out, _ = run("-o", "table", "--catalog", catalog, "get", "lora-1")
    assert code == 0 and not out.startswith("{")


def test_list_filters(run: Run) -> None:
    assert ids(json_out(run, "list", "--type", "lora-training")) == ["lora-1"]
    assert ids(json_out(run, "list", "--owner", "bob")) == ["tr-1"]
    assert ids(json_out(run, "list", "--status", "Deleted")) == ["img-del"]
    assert ids(json_out(run, "list", "--since", "2025-03-01T13:00:00Z", "--until", "2025-03-01T15:00")) == [
        "img-1"
    ]
    assert ids(json_out(run, "list", "--until", "2025-03-01")) == ["tr-1", "img-1", "lora-1"]  # the whole day
    assert ids(json_out(run, "list", "--until", "2025-02-28")) == []


def test_list_sorts_and_pages(run: Run) -> None:
    assert ids(json_out(run, "list", "--sort", "name", "--order", "asc")) == ["lora-1", "tr-1", "img-1"]
    page = json_out(run, "list", "--order", "asc", "--limit", "1", "--offset", "1")
    assert ids(page) == ["img-1"] and page["total"] == 3


def test_list_prints_a_table_on_a_terminal(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    code, out, err = run("list", "--owner", "alice")
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split() == [
        "ID", "TYPE", "NAME", "OWNER", "STATUS", "VERSIONS", "LATEST", "RUN", "CREATED", "SIZE", "DETAIL"
    ]  # fmt: skip
    assert [row.split()[0] for row in rows] == ["img-1", "lora-1"]
    column = {name: header.index(name) for name in ("STATUS", "VERSIONS", "LATEST RUN", "DETAIL")}
    assert rows[1][column["VERSIONS"] :].startswith("v1, v2 ")
    assert rows[1][column["LATEST RUN"] :].startswith("Succeeded ")
    assert rows[1][column["DETAIL"] :] == "trigger dmavatar"
    assert err.strip() == "(1-2 of 2)"


# --- get ------------------------------------------------------------------------------------


def test_get_prints_the_record(run: Run) -> None:
    record = json_out(run, "get", "tr-1")
    assert record["id"] == "tr-1" and record["owner"] == "bob" and record["wordCount"] == 8
    code, out, _ = run("get", "lora-1", "-o", "table")
    assert code == 0
    assert "latestModelUri" in out and "loras/alice/lora-1/v2/model.safetensors" in out


def test_get_prints_the_likeness_of_each_checkpoint_with_the_versions_model_marked(
    cli: Run, tmp_path: Path, local_store: LocalStore
) -> None:
    """A version whose training's checkpoints were scored (docs/likeness.md#checkpoints): a line
    per checkpoint, the model's marked; after a re-evaluation of its model the curve is still its
    run's."""
    from contentgen.api import CheckpointLikeness, Likeness

    doc = lora_doc("lora-gpu", name="gpu-avatar", uri_of=local_store.uri)
    version = doc["versions"][0]
    points = [
        CheckpointLikeness(step=250, verdict="poor", median=0.21),
        CheckpointLikeness(step=500, verdict="good", median=0.58, chosen=True),
        CheckpointLikeness(step=750, verdict="no-faces"),
    ]
    why = "step 500 scored best of 3 checkpoints (good, median 0.58; the last step, 750: no-faces)"
    report = Likeness(
        verdict="good", median=0.58, checkpoints=points, chosen_step=500, final_step=750, choice=why
    )
    final = local_store.uri("loras/alice/lora-gpu/v1/checkpoints/step-000750.safetensors")
    version.update(likeness=report.wire(), chosenStep=500, finalModelUri=final)
    catalog = EmbeddedCatalog(tmp_path / "catalog")
    catalog.upsert(doc)
    catalog.close()
    code, out, _ = cli("get", "lora-gpu", "-o", "table")
    assert code == 0
    lines = out.splitlines()
    start = lines.index(f"    checkpoints scored: {why}")
    assert lines[start + 1 : start + 4] == [
        "      step 250: poor, median 0.21",
        "    * step 500: good, median 0.58",
        "      step 750: no-faces, no median",  # nothing measured: said, never a number
    ]
    # the last step's LoRA, with every stored object, behind --detail
    code, out, _ = cli("get", "lora-gpu", "-o", "table", "--detail")
    assert code == 0 and f"    checkpoints scored: {why}; the last step's LoRA {final}" in out.splitlines()
    # a re-evaluation of the model (no checkpoints) joins its history and does not replace the
    # run's own verdict (issue 45: one meaning per verdict); the curve shown is still its run's
    again = Likeness(verdict="poor", median=0.3).wire()
    version["evaluations"] = [{"evaluation": 1, "at": T0, "by": "cli", "likeness": again, "costUsd": 0.4}]
    catalog = EmbeddedCatalog(tmp_path / "catalog")
    catalog.upsert(doc)
    catalog.close()
    code, out, _ = cli("get", "lora-gpu", "-o", "table")
    print(out)
    assert (
        "likeness good, median 0.58 (the verdict of its run's evaluation e0; also e1 poor (cli))" in out
        and "    * step 500: good, median 0.58" in out.splitlines()
    )
    # a video LoRA's checkpoints, scored on its clips' frames: the head line says so
    wan = lora_doc("lora-wan", name="wan-avatar", uri_of=local_store.uri)
    wan["versions"][0].update(likeness=report.model_copy(update={"clip_frames": 4}).wire(), chosenStep=500)
    catalog = EmbeddedCatalog(tmp_path / "catalog")
    catalog.upsert(wan)
    catalog.close()
    code, out, _ = cli("get", "lora-wan", "-o", "table")
    assert (
        f"    checkpoints scored: {why}; each scored on its clips, 4 frames across each" in out.splitlines()
    )


def test_another_owners_record_is_not_found_like_a_missing_one(run: Run) -> None:
    assert run("get", "tr-1", "--owner", "bob")[0] == 0
    other = run("get", "tr-1", "--owner", "alice")
    missing = run("get", "nope", "--owner", "alice")
    hint = (
        "(an id, a unique prefix of one, namespace/name, or a name); "
        "`contentgen assets list` shows what there is"
    )
    assert other == (1, "", f"contentgen assets: no record 'tr-1' {hint}\n")
    assert missing == (1, "", f"contentgen assets: no record 'nope' {hint}\n")


# --- search ---------------------------------------------------------------------------------


def test_search(run: Run) -> None:
    assert ids(json_out(run, "search", "Jesse", "headshot")) == ["lora-1"]
    assert ids(json_out(run, "search", "red fox")) == ["img-1"]  # not the deleted run
    assert ids(json_out(run, "search", "wildfires", "--owner", "alice")) == []
    assert ids(json_out(run, "search", "wildfires", "--type", "transcription")) == ["tr-1"]


def test_an_empty_search_is_an_error(run: Run) -> None:
    assert run("search", "  ") == (1, "", "contentgen assets: the search query is empty\n")


# --- stats ----------------------------------------------------------------------------------


def test_stats(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    stats = json_out(run, "stats", "--owner", "alice")
    assert stats["totalJobs"] == 2
    assert stats["byType"] == {
        "lora-training": 1,
        "image-generation": 1,
        "transcription": 0,
        "lora-evaluation": 0,
        "video-generation": 0,
    }
    assert stats["totalBytes"] == 2 * 1010 + 2 * 500
    assert stats["pricePerGbMonth"] == 0.023
    assert json_out(run, "stats", "--price-per-gb", "1.5")["pricePerGbMonth"] == 1.5
    monkeypatch.setenv("CONTENTGEN_PRICE_PER_GB_MONTH", "0.01")
    assert json_out(run, "stats")["pricePerGbMonth"] == 0.01
    assert json_out(run, "stats")["totalJobs"] == 3
    monkeypatch.setenv("CONTENTGEN_PRICE_PER_GB_MONTH", "free")
    code, _, err = run("stats")
    assert code == 1 and "CONTENTGEN_PRICE_PER_GB_MONTH: not a number: 'free'" in err
    code, out, _ = run("stats", "-o", "table", "--price-per-gb", "0.023")
    assert code == 0 and "total jobs    3" in out


# --- url ------------------------------------------------------------------------------------


def test_url_links_the_primary_output_in_the_local_store(run: Run, local_store: LocalStore) -> None:
    link = json_out(run, "url", "lora-1", "--expires", "60")
    path = local_store.root / "loras/alice/lora-1/v2/model.safetensors"
    assert link["url"] == path.as_uri() and link["uri"] == path.as_uri()
    assert set(link) == {"url", "expiresAt", "uri"}
    image = json_out(run, "url", "img-1")
    assert image["url"].endswith("/generated-images/alice/img-1/v1/image_1.png")


def test_url_picks_a_file_and_prints_only_the_link_as_text(run: Run, local_store: LocalStore) -> None:
    code, out, err = run("url", "lora-1", "--file", "v1/model.safetensors", "-o", "table")
    assert code == 0
    assert out == (local_store.root / "loras/alice/lora-1/v1/model.safetensors").as_uri() + "\n"
    assert err.startswith("expires ")
    assert json_out(run, "url", "lora-1", "--file", "config.json")["url"].endswith("/v2/config.json")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("url", "tr-1", "--owner", "alice"), "no record 'tr-1'"),
        (
            ("url", "lora-1", "--file", "nope.bin"),
            "has no file 'nope.bin' (files: config.json, model.safetensors)",
        ),
        (("url", "img-del"), "img-del was deleted; its assets were removed"),
        (("url", "tr-1"), "transcript.txt is listed in the catalog but missing from the store"),
    ],
)
def test_url_errors(run: Run, args: tuple[str, ...], message: str) -> None:
    code, out, err = run(*args)
    assert (code, out) == (1, "")
    assert message in err


def test_url_needs_the_artifacts_store(run: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CONTENTGEN_STORE", str(tmp_path / "another-store"))
    code, _, err = run("url", "lora-1")
    assert code == 1 and f"is in the store {(tmp_path / 'store').as_uri()}, not in" in err
    assert f"set CONTENTGEN_STORE={(tmp_path / 'store').as_uri()}" in err


def test_url_presigns_s3_objects(
    s3: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    store = S3Store(s3, "assets")
    monkeypatch.setenv("CONTENTGEN_STORE", f"s3://{s3}/assets")
    monkeypatch.setenv("CONTENTGEN_CATALOG", str(tmp_path / "catalog"))
    fill(tmp_path / "catalog", store)
    assert main(["assets", "url", "lora-1", "--expires", "120", "-o", "json"]) == 0
    link = json.loads(capsys.readouterr().out)
    assert link["uri"] == f"s3://{s3}/assets/loras/alice/lora-1/v2/model.safetensors"
    assert "X-Amz-Expires=120" in link["url"] and "X-Amz-Signature=" in link["url"]
    response = httpx.get(link["url"])
    assert response.status_code == 200
    assert response.content == b"bytes of loras/alice/lora-1/v2/model.safetensors"


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("list", "--type", "video"),
            "argument --type: invalid choice: 'video' (choose from 'image-generation', 'lora-evaluation', "
            "'lora-training', 'transcription', 'video-generation')",
        ),
        (("list", "--status", "done"), "argument --status: invalid choice: 'done'"),
        (("list", "--since", "yesterday"), "argument --since: 'yesterday' is not an ISO date or datetime"),
        (("list", "--until", "2025-02-30"), "argument --until: '2025-02-30' is not an ISO date or datetime"),
        (("list", "--limit", "0"), "argument --limit: must be at least 1, got 0"),
        (("list", "--limit", "-3"), "argument --limit: must be at least 1, got -3"),
        (("list", "--limit", "ten"), "argument --limit: not a whole number: 'ten'"),
        (("list", "--offset", "-1"), "argument --offset: must be at least 0, got -1"),
        (("list", "--sort", "spec"), "argument --sort: invalid choice: 'spec'"),
        (("search", "x", "--limit", "0"), "argument --limit: must be at least 1"),
        (("stats", "--price-per-gb", "-1"), "argument --price-per-gb: must be a number 0 or more, got -1.0"),
        (
            ("url", "lora-1", "--expires", "0"),
            "argument --expires: must be between 1 second and 604800 seconds",
        ),
        (("url", "lora-1", "--expires", "604801"), "argument --expires: must be between 1 second"),
        (("url", "lora-1", "--expires", "soon"), "argument --expires: not a whole number of seconds: 'soon'"),
    ],
)
def test_bad_flags_are_usage_errors_naming_the_flag(
    cli: Run, capsys: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    with pytest.raises(SystemExit) as raised:
        cli(*args)
    assert raised.value.code == 2
    assert message in capsys.readouterr().err


def test_an_empty_date_range_names_the_flags(run: Run) -> None:
    code, _, err = run("list", "--since", "2025-03-02", "--until", "2025-03-01T00:00")
    assert code == 1 and err.startswith("contentgen assets: --since/--until: the range is empty")


def test_a_bad_catalog_url_is_reported(cli: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONTENTGEN_CATALOG", "redis://localhost")
    code, _, err = cli("list")
    assert code == 1 and err.startswith("contentgen assets: CONTENTGEN_CATALOG: unsupported catalog URL")
