"""A re-run that fails (issue 45: a re-run's --source that is no video) is shown as a run beside
the versions that stand, not as the LoRA's state: the record stays Succeeded with its usable
version, its latest run says Failed with the reason and the message once (`contentgen assets
list`/`get`, the record the HTTP API serves). A --source that is not there at all (a typo) fails
before the run touches a record (issue 77): no failed run, no empty record under a new name."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from contentgen.catalog import open_catalog, to_record
from contentgen.cli.main import main
from tests.conftest import ROOT

SAMPLE = ROOT / "examples/media/sample.mp4"


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for variable in ("CONTENTGEN_STORE", "CONTENTGEN_CATALOG", "FAL_KEY", "CONTENTGEN_PRICES"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("CONTENTGEN_WORK_DIR", str(tmp_path / "work"))
    return tmp_path


def test_a_failed_rerun_is_a_run_beside_the_version_that_stands(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = yaml.safe_load((ROOT / "examples/loratraining.yaml").read_text())
    manifest["spec"]["evaluation"] = {"enabled": False}
    (workspace / "lora.yaml").write_text(yaml.safe_dump(manifest))
    assert main(["run", "--offline", "--source", str(SAMPLE), "lora.yaml"]) == 0
    notes = workspace / "notes.txt"
    notes.write_text("the shot list, not a video\n")
    assert main(["run", "--offline", "--source", str(notes), "lora.yaml"]) != 0
    capsys.readouterr()

    catalog = open_catalog()
    [doc] = catalog.find_raw({"kind": "LoraTraining"})
    record = to_record(doc).wire()  # what GET /api/jobs/REF answers
    catalog.close()
    assert record["status"] == "Succeeded" and record["latestVersion"] == 1
    assert [v["version"] for v in record["versions"]] == [1]
    run = record["latestRun"]
    assert (run["version"], run["phase"], run["reason"]) == (2, "Failed", "InvalidInput")

    assert main(["assets", "get", "demo-avatar", "-o", "table"]) == 0
    shown = capsys.readouterr().out
    [line] = [line for line in shown.splitlines() if line.startswith("latestRun")]
    assert line.split(None, 1)[1].startswith(
        "v2 Failed (InvalidInput): notes.txt is not a readable audio or video file (invalid data found "
    )
    assert line.endswith("; v1 stands, usable")
    assert shown.count("not a readable") == 1  # the message once, not again as the error's
    assert "status                Succeeded" in shown

    assert main(["assets", "list", "-o", "table"]) == 0
    [row] = [r for r in capsys.readouterr().out.splitlines() if "demo-avatar" in r]
    assert "Succeeded" in row and "Failed (InvalidInput)" in row and " v1 " in row


def test_a_mistyped_source_fails_before_it_touches_a_record(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """On an existing LoRA and under a new name alike: one line naming the flag and the path, and
    the catalog as it was (no failed run, no empty record)."""
    manifest = yaml.safe_load((ROOT / "examples/loratraining.yaml").read_text())
    manifest["spec"]["evaluation"] = {"enabled": False}
    (workspace / "lora.yaml").write_text(yaml.safe_dump(manifest))
    assert main(["run", "--offline", "--source", str(SAMPLE), "lora.yaml"]) == 0
    catalog = open_catalog()
    [before] = catalog.find_raw({"kind": "LoraTraining"})
    catalog.close()
    manifest["metadata"]["name"] = "new-avatar"
    (workspace / "new.yaml").write_text(yaml.safe_dump(manifest))
    typo = SAMPLE.with_name("sampel.mp4")
    capsys.readouterr()
    for named in ("lora.yaml", "new.yaml"):
        assert main(["run", "--offline", "--source", str(typo), named]) == 1
        assert capsys.readouterr().err == (
            f"contentgen run: --source: source file {typo} does not exist (or is not a file); nothing "
            "was run or recorded\n"
        )
    catalog = open_catalog()
    assert catalog.find_raw({"kind": "LoraTraining"}) == [before]
    catalog.close()
