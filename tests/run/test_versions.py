"""Issue 17's cases, locally (`contentgen run` on embedded defaults): a re-run keeps what the run
before made, a failed run hides nothing, and the run's progress is in the catalog while it runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from contentgen.catalog import Filters, open_catalog, to_record
from contentgen.cli.main import main
from contentgen.pipeline import local_run
from tests.conftest import EXAMPLES

SAMPLE = EXAMPLES / "media" / "sample.mp4"


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for variable in ("CONTENTGEN_STORE", "CONTENTGEN_CATALOG", "FAL_KEY", "ASSEMBLYAI_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    return tmp_path


def landscape(workspace: Path, **changes: Any) -> str:
    doc = yaml.safe_load((EXAMPLES / "imagegeneration.yaml").read_text())
    doc["spec"].update(changes)
    path = workspace / f"landscape-{len(list(workspace.glob('*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def assets(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    capsys.readouterr()
    assert main(["assets", *args, "-o", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_rerun_with_a_new_seed_keeps_both_images(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--offline", landscape(workspace, seed=42)]) == 0
    assert main(["run", "--offline", landscape(workspace, seed=7)]) == 0
    record = assets(capsys, "get", "default/demo-landscape")
    assert [v["version"] for v in record["versions"]] == [1, 2]
    first, second = record["versions"]
    assert {i["seed"] for i in first["images"]} == {42} and {i["seed"] for i in second["images"]} == {7}
    assert first["spec"]["seed"] == 42 and second["spec"]["seed"] == 7  # what each ran
    for version in (first, second):
        for image in version["images"]:
            assert Path(image["uri"].removeprefix("file://")).is_file()
    paths = {i["uri"] for v in record["versions"] for i in v["images"]}
    assert len(paths) == 4  # nothing written over
    listed = assets(capsys, "list", "--type", "image-generation")
    assert listed["total"] == 1 and len(listed["items"][0]["versions"]) == 2
    # a link to each version's image, named after the record and the version
    capsys.readouterr()
    assert main(["assets", "url", "demo-landscape", "--version", "1", "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["uri"] == first["images"][0]["uri"]


def test_a_failed_rerun_leaves_the_earlier_versions_listed(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 17: without --offline the example fails at once (MissingCredentials); its images stay
    in the record, in --status Succeeded, and the table's STATUS says what the filter matched."""
    assert main(["run", "--offline", landscape(workspace)]) == 0
    assert main(["run", landscape(workspace)]) == 1
    record = assets(capsys, "get", "demo-landscape")
    assert record["status"] == "Succeeded" and len(record["images"]) == 2
    assert record["latestRun"]["phase"] == "Failed"
    assert record["latestRun"]["error"]["reason"] == "MissingCredentials"
    assert [(r["version"], r["phase"]) for r in record["runs"]] == [(1, "Succeeded"), (2, "Failed")]
    succeeded = assets(capsys, "list", "--status", "Succeeded")
    assert [r["name"] for r in succeeded["items"]] == ["demo-landscape"]
    assert [r["name"] for r in assets(capsys, "list", "--run", "Failed")["items"]] == ["demo-landscape"]
    assert assets(capsys, "list", "--status", "Failed")["items"] == []
    capsys.readouterr()
    assert main(["assets", "list", "--status", "Succeeded", "-o", "table"]) == 0
    header, row = capsys.readouterr().out.splitlines()
    assert row[header.index("STATUS") :].startswith("Succeeded")
    assert row[header.index("LATEST RUN") :].startswith("Failed (MissingCredentials)")
    assert row[header.index("VERSIONS") :].startswith("v1 ")
    stats = assets(capsys, "stats")
    assert stats["byStatus"]["Succeeded"] == 1 and stats["totalVersions"] == 1


def test_the_run_writes_its_progress_into_the_catalog_while_it_runs(
    workspace: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Running and the stage's percent reach the catalog during the run (each progress report
    is followed by a look at the record; a clock that moves a second per look lets every report
    through the throttle)."""
    seen: list[tuple[str, str, str, int]] = []
    original_init, original_call = local_run.CatalogProgress.__init__, local_run.CatalogProgress.__call__
    ticks = iter(range(10**6))

    def init(self: Any, *args: Any, **kwargs: Any) -> None:
        original_init(self, *args, **kwargs, clock=lambda: float(next(ticks)))

    def call(self: Any, stage: str, percent: float, message: str = "") -> None:
        original_call(self, stage, percent, message)
        doc = self.catalog.record(self.snapshot.uid)
        run = doc["latestRun"]
        seen.append((doc["status"], run["phase"], run["stage"], run["progress"]))

    monkeypatch.setattr(local_run.CatalogProgress, "__init__", init)
    monkeypatch.setattr(local_run.CatalogProgress, "__call__", call)
    assert main(["run", "--offline", "--source", str(SAMPLE), str(EXAMPLES / "loratraining.yaml")]) == 0
    dataset = [s for s in seen if s[2] == "dataset"]
    assert dataset and all(state[:2] == ("Running", "Running") for state in dataset)
    assert len({p for *_, p in dataset}) > 2 and all(8 <= p <= 45 for *_, p in dataset)
    assert {s[2] for s in seen} >= {"fetch", "dataset", "train"}
    record = open_catalog().find(Filters()).docs[0]
    assert (record["status"], record["latestRun"]["phase"], record["latestRun"]["progress"]) == (
        "Succeeded",
        "Succeeded",
        100,
    )
    # ...and a second run shows v1 as usable while it runs
    seen.clear()
    assert main(["run", "--offline", "--source", str(SAMPLE), str(EXAMPLES / "loratraining.yaml")]) == 0
    assert all(status == "Succeeded" for status, phase, *_ in seen if phase == "Running")


def test_a_record_deleted_with_assets_delete_runs_again_under_new_numbers(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["run", "--offline", landscape(workspace)]) == 0
    assert main(["assets", "delete", "demo-landscape", "--yes"]) == 0
    deleted = assets(capsys, "get", "demo-landscape")
    assert deleted["status"] == "Deleted" and deleted["versions"] == []
    assert main(["run", "--offline", landscape(workspace)]) == 0
    record = to_record(open_catalog().find(Filters()).docs[0]).wire()
    assert record["status"] == "Succeeded" and record["deleted"] is None
    assert [v["version"] for v in record["versions"]] == [2]  # v1's keys are not written again
    assert [v["version"] for v in record["deletedVersions"]] == [1]
