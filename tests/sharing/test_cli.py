"""Issue 38's done-when on a laptop, through the real commands: alice's LoRA, trained offline and
shared with bob for use, is used by bob's ImageGeneration (`contentgen run`); carol's is refused
(LoraNotShared), and carol finds none of it with `contentgen assets` or `contentgen collections`."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from contentgen.cli.main import main
from tests.conftest import EXAMPLES
from tests.harness.cli import as_json, cli

SAMPLE = EXAMPLES / "media" / "sample.mp4"


def manifest(path: Path, kind: str, name: str, owner: str, **spec: Any) -> Path:
    doc = {
        "apiVersion": "contentgen.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": name},
        "spec": {"owner": owner, **spec},
    }
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for variable in ("CONTENTGEN_STORE", "CONTENTGEN_CATALOG", "CONTENTGEN_ALLOW_PRIVATE_SOURCES"):
        monkeypatch.delenv(variable, raising=False)
    lora = yaml.safe_load((EXAMPLES / "loratraining.yaml").read_text())
    lora["metadata"]["name"], lora["spec"]["owner"] = "avatar", "alice"
    (tmp_path / "lora.yaml").write_text(yaml.safe_dump(lora))
    assert main(["run", "--offline", "--source", str(SAMPLE), str(tmp_path / "lora.yaml")]) == 0
    return tmp_path


def test_a_shared_lora_is_used_by_bob_and_refused_to_carol(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    picture = {"prompt": "dmavatar in a suit", "model": "flux-lora", "numImages": 1, "imageSize": "square"}
    ref = {"loraRef": {"name": "avatar", "owner": "alice"}, "scale": 0.8}
    bobs = manifest(here / "bob.yaml", "ImageGeneration", "bobs-portrait", "bob", **picture, loras=[ref])
    carols = manifest(
        here / "carol.yaml", "ImageGeneration", "carols-portrait", "carol", **picture, loras=[ref]
    )

    # not shared yet: refused, nothing made
    code, _, err = cli(capsys, "run", "--offline", str(bobs))
    assert code == 1 and "LoraNotShared" in err and "contentgen assets share default/avatar" in err

    shared = as_json(
        capsys, "assets", "share", "default/avatar", "--owner", "alice", "--to", "bob", "--access", "use"
    )
    assert [(s["to"], s["access"]) for s in shared["shares"]] == [("owner:bob", "use")]
    # carol cannot share alice's LoRA (she does not find it), nor can bob (use, not ownership)
    assert cli(capsys, "assets", "share", "default/avatar", "--owner", "carol", "--to", "carol")[0] == 1
    assert cli(capsys, "assets", "share", "default/avatar", "--owner", "bob", "--to", "carol")[0] == 1

    assert cli(capsys, "run", "--offline", str(bobs))[0] == 0
    made = as_json(capsys, "assets", "get", "default/bobs-portrait")
    lora = as_json(capsys, "assets", "get", "default/avatar", "--owner", "alice")
    assert made["owner"] == "bob" and made["status"] == "Succeeded"
    assert [(u["uid"], u["version"]) for u in made["versions"][-1]["loras"]] == [(lora["id"], 1)]

    code, _, err = cli(capsys, "run", "--offline", str(carols))
    assert code == 1 and "LoraNotShared" in err and "has not shared it with owner 'carol'" in err
    # nor by naming its file in the store (issue 75): its path, its file:// URI; bob, shared for use, may
    weights = here / "contentgen-data" / "store" / lora["versions"][-1]["modelUri"].split("/store/", 1)[1]
    for url in (str(weights), weights.as_uri()):
        by_key = manifest(
            here / "carol-key.yaml", "ImageGeneration", "carols-key", "carol", **picture, loras=[{"url": url}]
        )
        code, _, err = cli(capsys, "run", "--offline", str(by_key))
        assert code == 1 and "InputNotShared" in err and "belongs to owner 'alice'" in err, err
        assert not (here / "contentgen-data" / "store" / "generated-images" / "carol").exists()
    bobs_key = manifest(
        here / "bob-key.yaml", "ImageGeneration", "bobs-key", "bob", **picture, loras=[{"url": url}]
    )
    assert cli(capsys, "run", "--offline", str(bobs_key))[0] == 0

    # bob sees it (not its files: use only); carol sees nothing, as if it did not exist
    assert as_json(capsys, "assets", "get", "default/avatar", "--owner", "bob")["shares"] == []
    code, _, err = cli(capsys, "assets", "url", "default/avatar", "--owner", "bob")
    assert code == 1 and "use only" in err
    for args in (("get",), ("url",), ("usage",), ("lineage",)):
        code, _, err = cli(capsys, "assets", *args, "default/avatar", "--owner", "carol")
        assert code == 1 and "no record 'default/avatar'" in err, args
    assert as_json(capsys, "assets", "shared", "--owner", "bob")["total"] == 1
    assert as_json(capsys, "assets", "shared", "--owner", "carol")["total"] == 0

    # usage: downloads by `assets url`, where it was used (bob's two pictures counted, not shown)
    assert cli(capsys, "assets", "url", "default/avatar", "--owner", "alice")[0] == 0
    usage = as_json(capsys, "assets", "usage", "default/avatar", "--owner", "alice", "--price-per-gb", "0.1")
    assert usage["downloads"] == 1 and usage["versions"][0]["downloads"] == 1 and usage["lastAccessedAt"]
    assert usage["usedIn"] == [] and usage["usedByOtherOwners"] == 2
    assert usage["monthlyStorageUsd"] == round(usage["totalBytes"] / 1024**3 * 0.1, 6) > 0
    everyone = as_json(capsys, "assets", "usage", "default/avatar")  # the catalog's administrator
    assert sorted(u["name"] for u in everyone["usedIn"]) == ["bobs-key", "bobs-portrait"]

    # taken back: bob's next run is refused too
    assert cli(capsys, "assets", "unshare", "default/avatar", "--owner", "alice", "--to", "bob")[0] == 0
    code, _, err = cli(capsys, "run", "--offline", str(bobs))
    assert code == 1 and "LoraNotShared" in err


def test_a_collection_is_shared_with_bob_and_not_carol(
    here: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    made = as_json(capsys, "collections", "create", "campaign", "--owner", "alice", "--description", "spring")
    as_json(capsys, "collections", "add", "campaign", "default/avatar", "--owner", "alice")
    shared = as_json(capsys, "collections", "share", "campaign", "--owner", "alice", "--to", "bob")
    assert shared["memberCount"] == 1 and shared["shares"][0]["to"] == "owner:bob"

    seen = as_json(capsys, "collections", "show", made["id"], "--owner", "bob")
    assert seen["access"] == "read" and [i["name"] for i in seen["items"]] == ["avatar"]
    assert [
        i["name"]
        for i in as_json(capsys, "collections", "search", made["id"], "dmavatar", "--owner", "bob")["items"]
    ] == ["avatar"]
    assert as_json(capsys, "collections", "search", made["id"], "nowhere", "--owner", "bob")["items"] == []
    code, _, err = cli(
        capsys, "collections", "archive", made["id"], "--owner", "bob", "--out", str(here / "c.zip")
    )
    assert code == 0, err
    names = zipfile.ZipFile(io.BytesIO((here / "c.zip").read_bytes())).namelist()
    assert "default_avatar-v1/model.safetensors" in names

    for action in (
        ("show", made["id"]),
        ("search", made["id"], "avatar"),
        ("archive", made["id"], "--out", "x.zip"),
    ):
        code, _, err = cli(capsys, "collections", *action, "--owner", "carol")
        assert code == 1 and "no collection" in err, action
    assert as_json(capsys, "collections", "list", "--owner", "carol")["items"] == []
    assert (
        cli(capsys, "collections", "add", made["id"], "default/avatar", "--owner", "bob")[0] == 1
    )  # read only
    # unshared: bob no longer finds it; unsharing again says it was not shared, in one line
    unshared = as_json(capsys, "collections", "unshare", "campaign", "--owner", "alice", "--to", "bob")
    assert unshared["shares"] == []
    code, _, err = cli(capsys, "collections", "show", made["id"], "--owner", "bob")
    assert code == 1 and "no collection" in err
    code, _, err = cli(capsys, "collections", "unshare", "campaign", "--owner", "alice", "--to", "bob")
    assert code == 1 and err.strip().endswith("collection 'campaign' is not shared with owner:bob"), err
    # a member taken out by namespace/name (the asset stays); one that is not a member is named
    code, _, err = cli(capsys, "collections", "remove", "campaign", "default/nothing", "--owner", "alice")
    assert code == 1 and "'default/nothing' names no member of 'campaign'" in err, err
    left = as_json(capsys, "collections", "remove", "campaign", "default/avatar", "--owner", "alice")
    assert left["memberCount"] == 0 and left["items"] == []
    assert as_json(capsys, "assets", "get", "default/avatar", "--owner", "alice")["name"] == "avatar"
    assert cli(capsys, "collections", "delete", "campaign", "--owner", "alice")[0] == 0
