"""`contentgen assets get -w`, `stop` and `continue` (issue 67) against an embedded catalog, as on a
laptop: the watch prints each change of a training as it is recorded (its step, loss and time left,
each checkpoint as it is scored, a stop asked, the version it made and why it stopped) and exits
0 when the run succeeded, 1 when it failed; a stop says what it keeps and asks the laptop's run
through its stop file; a continue says what it runs and refuses what it cannot; a cluster's record
is answered with the kubectl command that does it."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from contentgen.catalog.embedded import EmbeddedCatalog
from contentgen.cli import training as cli_training
from contentgen.cli.main import main
from contentgen.pipeline.local_run import RunLock
from contentgen.pipeline.training_controls import local_stop_asked
from tests.catalog.factory import T0, lora_doc
from tests.harness.live import running, training

UID = "lora-live"
Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> Run:
    monkeypatch.setenv("CONTENTGEN_CATALOG", f"file://{tmp_path}/catalog")
    monkeypatch.setenv("CONTENTGEN_WORK_DIR", str(tmp_path / "work"))

    def invoke(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["assets", *args])
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def _put(tmp_path: Path, doc: dict[str, Any]) -> None:
    catalog = EmbeddedCatalog(tmp_path / "catalog")
    catalog.upsert(doc)
    catalog.close()


def _states() -> Iterator[dict[str, Any]]:
    """A laptop's training of v2 as its record is written: started, a checkpoint scored, a second
    (the best) and a stop asked, then the version made, stopped at step 510."""
    at = T0 + timedelta(hours=1)
    doc = running(UID, "avatar", None)
    yield doc
    doc = running(UID, "avatar", training(UID, 300, [(250, "poor", 0.21)], at=at), previous=doc, progress=40)
    yield doc
    scored = [(250, "poor", 0.21), (500, "good", 0.55)]
    doc = running(UID, "avatar", training(UID, 510, scored, at=at, stop_asked="keep-best"), previous=doc)
    yield doc
    made = lora_doc(UID, name="avatar", versions=2, owner="alice", previous=doc)
    made["versions"][1]["stopped"] = {
        "how": "asked", "step": 510, "plannedSteps": 1000, "why": "a person asked (cli:alice)",
        "stepsSaved": 490,
    }  # fmt: skip
    yield made


def test_watch_prints_each_change_until_the_run_ends(
    cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    states = _states()
    _put(tmp_path, {**next(states), "origin": "local"})

    def next_state(seconds: float) -> None:
        assert seconds == 0.01
        _put(tmp_path, {**next(states), "origin": "local"})

    monkeypatch.setattr(cli_training, "_sleep", next_state)
    code, out, err = cli("get", "avatar", "-w", "--every", "0.01", "-o", "table")
    assert code == 0, err
    assert out.splitlines() == [
        "v2 Running train 50%",
        "v2 Running train 40%: step 300 of 1000, loss 0.3704, about 18 min left",
        "  checkpoint 250: poor, median 0.21 (the best so far); grid "
        f"file:///store/loras/alice/{UID}/v2/likeness/step-000250/likeness-grid.jpg",
        "v2 Running train 50%: step 510 of 1000, loss 0.2165, about 12 min left",
        "  checkpoint 500: good, median 0.55 (the best so far); grid "
        f"file:///store/loras/alice/{UID}/v2/likeness/step-000500/likeness-grid.jpg",
        "  stop asked (keep-best): it stops at its next step, keeping its best",
        "v2 Succeeded",
        f"v2 made: its model s3://catalog-tests/loras/alice/{UID}/v2/model.safetensors",
        "  stopped at step 510 of 1000 (asked to stop): a person asked (cli:alice); saved 490 steps",
    ]


def test_watch_in_json_and_a_failed_run_exits_1(
    cli: Run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    failed = lora_doc(UID, name="avatar", versions=2, owner="alice", phase="Failed")
    states = iter([failed])
    _put(tmp_path, running(UID, "avatar", training(UID, 300, [], at=T0)))
    monkeypatch.setattr(cli_training, "_sleep", lambda _: _put(tmp_path, next(states)))
    code, out, _ = cli("get", "avatar", "-w", "-o", "json")
    assert code == 1
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(d["latestRun"]["phase"], d["latestRun"]["version"]) for d in lines] == [
        ("Running", 2),
        ("Failed", 2),
    ]
    assert lines[0]["latestRun"]["training"]["step"] == 300


def test_stop_says_what_it_keeps_and_asks_the_laptops_run(cli: Run, tmp_path: Path) -> None:
    _put(tmp_path, lora_doc(UID, name="avatar", versions=1, owner="alice"))
    code, _, err = cli("stop", "avatar", "--yes")
    assert code == 1 and "its latest run (v1) is Succeeded; there is no training under way to stop" in err
    scored = [(250, "poor", 0.21), (500, "good", 0.55)]
    _put(tmp_path, {**running(UID, "avatar", training(UID, 510, scored, at=T0)), "origin": "local"})
    # its record shows it Running, but no process holds it (killed): nothing to stop, nothing asked
    code, _, err = cli("stop", "avatar", "--yes")
    assert code == 1 and err == (
        "contentgen assets: default/avatar: its record shows v2 Running (step 510 of 1000), but no process "
        "on this machine runs it (it was killed, or the machine went down): there is nothing to stop, and "
        "nothing was changed; the same `contentgen run` resumes it from its newest stored checkpoint\n"
    )
    assert local_stop_asked(tmp_path / "work", UID, 2) is None
    going_on = RunLock(tmp_path / "work", UID)  # the run's process, as `contentgen run` holds it
    assert going_on.acquire()
    code, out, err = cli("stop", "avatar")  # not at a terminal, without --yes: asked, not stopped
    assert code == 1 and "not stopped (--yes stops it)" in err
    assert local_stop_asked(tmp_path / "work", UID, 2) is None
    code, out, err = cli("stop", "avatar", "--yes", "-o", "table")
    going_on.release()
    assert code == 0, err
    assert out.startswith(
        "stops v2 at its next step (step 510 of 1000 so far) and keeps checkpoint 500 (good, "
    )
    asked = local_stop_asked(tmp_path / "work", UID, 2)
    assert asked is not None and asked["stop"] == "keep-best" and asked["by"].startswith("cli:")
    assert local_stop_asked(tmp_path / "work", UID, 3) is None  # another run is not stopped by it
    # a cluster's: the kubectl command that stops it
    _put(tmp_path, {**running(UID, "avatar", training(UID, 510, scored, at=T0)), "origin": "operator"})
    code, _, err = cli("stop", "avatar", "--yes")
    assert code == 1
    assert (
        "it runs in a cluster: kubectl annotate -n default loratraining/avatar contentgen.io/stop=keep-best"
        in err
    )


def test_continue_says_what_it_runs_and_refuses_what_it_cannot(cli: Run, tmp_path: Path) -> None:
    doc = lora_doc(UID, name="avatar", versions=2, owner="alice")
    _put(tmp_path, {**doc, "origin": "local"})
    code, _, err = cli("continue", "avatar", "--steps", "500")
    assert code == 1 and err == (
        "contentgen assets: --from-version: v2 of avatar kept no training state to go on from (its "
        "training stored none); train a new version (`contentgen run`)\n"
    )
    code, _, err = cli("continue", "avatar", "--steps", "500", "--from-version", "7")
    assert code == 1 and "--from-version: avatar has no usable version 7 (usable: v1, v2)" in err
    with pytest.raises(SystemExit):
        cli("continue", "avatar", "--steps", "0")
    doc["versions"][0]["stateUri"] = f"s3://bucket/loras/alice/{UID}/v1/checkpoints/step-000100.pt"
    _put(tmp_path, {**doc, "origin": "operator"})
    code, _, err = cli("continue", "avatar", "--steps", "500", "--from-version", "1")
    assert code == 1
    assert (
        "runs in a cluster: kubectl patch -n default loratraining/avatar --type merge -p "
        """'{"spec": {"training": {"continueFrom": {"version": 1}, "steps": 500}}}'"""
    ) in err


def test_continue_runs_the_next_version_here_from_the_versions_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """On a laptop `contentgen assets continue` runs the record's resource with the training going on
    from the version, as `contentgen run` of the changed manifest does: the offline provider's
    simulated training keeps its state with each version, and the new version names it."""
    import yaml

    from contentgen.catalog import open_catalog
    from tests.conftest import EXAMPLES

    monkeypatch.chdir(tmp_path)
    for variable in ("CONTENTGEN_STORE", "CONTENTGEN_CATALOG", "CONTENTGEN_PRICES"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("CONTENTGEN_WORK_DIR", str(tmp_path / "work"))
    manifest = yaml.safe_load((EXAMPLES / "loratraining.yaml").read_text())
    manifest["spec"]["dataset"]["captioning"] = "template"
    manifest["spec"]["training"] = {"steps": 300, "checkpointEvery": 100}
    (tmp_path / "lora.yaml").write_text(yaml.safe_dump(manifest))
    sample = EXAMPLES / "media" / "sample.mp4"
    assert main(["run", "--offline", "--source", str(sample), str(tmp_path / "lora.yaml")]) == 0
    capsys.readouterr()
    assert main(["assets", "continue", "demo-avatar", "--steps", "200"]) == 0  # free: no question asked
    said = capsys.readouterr().err
    assert "trains default/demo-avatar on from v1 for 200 more steps, as a new version" in said
    catalog = open_catalog()
    [doc] = catalog.find_raw({"kind": "LoraTraining"})
    catalog.close()
    assert [v["version"] for v in doc["versions"]] == [1, 2]
    assert doc["versions"][1]["continuedFrom"]["version"] == 1
    assert (
        doc["spec"]["training"]["continueFrom"] == {"version": 1} and doc["spec"]["training"]["steps"] == 200
    )
    capsys.readouterr()
    assert main(["assets", "get", "demo-avatar", "-w", "-o", "table"]) == 0  # ended: what it made, from what
    said = capsys.readouterr().out.splitlines()
    assert said[:2] == ["v2 Succeeded", f"v2 made: its model {doc['versions'][1]['modelUri']}"]
    assert said[2] == f"  continued from v1, after its step {doc['versions'][1]['continuedFrom']['step']}"
