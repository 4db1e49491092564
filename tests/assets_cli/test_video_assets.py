"""`contentgen assets url`, `delete` and `prune` on a VideoGeneration, on a catalog and store that
`contentgen run --offline` filled for real: the link is to the video (or the file asked for), a
dry run says what would go, and deleting or pruning removes exactly that version's files (the
video, its poster, thumbnail, strip and result.json) and nothing of the picture it animates."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from contentgen.cli.main import main
from tests.conftest import EXAMPLES
from tests.harness.cli import as_json, cli


@pytest.fixture
def store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Two versions of the demo's clip of a picture (the seed changed between them)."""
    monkeypatch.chdir(tmp_path)
    for variable in ("CONTENTGEN_STORE", "CONTENTGEN_CATALOG", "CONTENTGEN_ALLOW_PRIVATE_SOURCES"):
        monkeypatch.delenv(variable, raising=False)
    assert main(["run", "--offline", str(EXAMPLES / "imagegeneration.yaml")]) == 0
    manifest = yaml.safe_load((EXAMPLES / "videogeneration-portrait.yaml").read_text())
    manifest["spec"]["imageRef"] = {"name": "demo-landscape"}
    for seed in (1, 2):
        manifest["spec"]["seed"] = seed
        (tmp_path / "clip.yaml").write_text(yaml.safe_dump(manifest))
        assert main(["run", "--offline", "clip.yaml"]) == 0
    return tmp_path / "contentgen-data" / "store"


def files(folder: Path) -> list[str]:
    return sorted(
        p.name if p.parent == folder else f"{p.parent.name}/{p.name}"
        for p in folder.rglob("*")
        if p.is_file()
    )


VERSION_FILES = ["poster.jpg", "result.json", "strip.jpg", "thumbs/poster.jpg", "video.mp4"]


def test_url_links_the_video_or_the_file_asked_for(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    clip = as_json(capsys, "assets", "get", "demo-avatar-clip")
    folder = store / "generated-videos" / "demo-user" / clip["id"]
    link = as_json(capsys, "assets", "url", "demo-avatar-clip")
    assert link["url"] == (folder / "v2" / "video.mp4").as_uri() and set(link) == {"url", "expiresAt", "uri"}
    older = as_json(capsys, "assets", "url", "demo-avatar-clip", "--version", "1")
    assert older["url"] == (folder / "v1" / "video.mp4").as_uri()
    code, out, err = cli(capsys, "assets", "url", "demo-avatar-clip", "--file", "strip.jpg", "-o", "table")
    assert code == 0 and out == (folder / "v2" / "strip.jpg").as_uri() + "\n" and err.startswith("expires ")
    code, out, err = cli(capsys, "assets", "url", "demo-avatar-clip", "--file", "nope.mp4")
    assert (code, out) == (1, "") and "has no file 'nope.mp4'" in err and "video.mp4" in err


def test_prune_then_delete_a_video_remove_only_what_they_said(
    store: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = as_json(capsys, "assets", "get", "demo-avatar-clip")
    assert clip["kind"] == "VideoGeneration" and [v["version"] for v in clip["versions"]] == [1, 2]
    folder = store / "generated-videos" / "demo-user" / clip["id"]
    assert files(folder / "v1") == files(folder / "v2") == VERSION_FILES
    picture = as_json(capsys, "assets", "get", "default/demo-landscape")
    pictures = store / "generated-images" / "demo-user" / picture["id"]
    kept_pictures = files(pictures / "v1")

    code, out, err = cli(capsys, "assets", "prune", "demo-avatar-clip", "--keep", "1", "-o", "table")
    assert code == 0 and "would delete v1 of video-generation default/demo-avatar-clip" in err
    v1 = [f"generated-videos/demo-user/{clip['id']}/v1/{name}" for name in VERSION_FILES]
    assert sorted(out.split()) == v1 and files(folder / "v1") == VERSION_FILES  # a dry run
    done = as_json(capsys, "assets", "prune", "demo-avatar-clip", "--keep", "1", "--yes")
    assert done["versions"] == [1] and done["kept"] == [2] and done["removed"] == len(VERSION_FILES)
    assert files(folder / "v1") == [] and files(folder / "v2") == VERSION_FILES
    after = as_json(capsys, "assets", "get", clip["id"])
    assert [v["version"] for v in after["versions"]] == [2] and after["status"] == "Succeeded"
    assert [(v["version"], v["by"]) for v in after["deletedVersions"]] == [(1, "cli")]
    code, _, err = cli(capsys, "assets", "url", clip["id"], "--version", "1")
    assert code == 1 and "was deleted" in err

    code, out, err = cli(capsys, "assets", "delete", "default/demo-avatar-clip", "-o", "table")
    assert code == 0 and "add --yes to delete" in err and files(folder / "v2") == VERSION_FILES
    code, out, _ = cli(capsys, "assets", "delete", "default/demo-avatar-clip", "--yes", "-o", "table")
    assert code == 0 and out.startswith(
        f"deleted {len(VERSION_FILES)} stored objects of video-generation default/demo-avatar-clip"
    )
    assert files(folder) == []
    gone = as_json(capsys, "assets", "get", clip["id"])
    assert gone["status"] == "Deleted" and gone["deletedAt"]
    code, _, err = cli(capsys, "assets", "url", clip["id"])
    assert code == 1 and "was deleted" in err
    # the picture it animated keeps its files and its record
    assert files(pictures / "v1") == kept_pictures
    assert as_json(capsys, "assets", "get", picture["id"])["status"] == "Succeeded"
