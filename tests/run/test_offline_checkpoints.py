"""The checkpoint workflow offline (docs/likeness.md#checkpoints): the offline provider simulates a
checkpoint every training.checkpointEvery steps, marked simulated, so that `make demo` and the
getting-started page show the checkpoints scored, their side-by-side grid, the choice, and a
promotion that a later loraRef uses."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from safetensors import safe_open

from contentgen.api import RunResult
from contentgen.cli.main import main
from contentgen.pipeline import lora as lora_stage
from contentgen.pipeline.likeness.checkpoints import SIMULATED
from contentgen.pipeline.likeness.evaluation import draw_checkpoint_grid
from contentgen.providers.offline_training import checkpoint_steps
from contentgen.store import LocalStore
from tests.conftest import ROOT


def test_the_steps_are_every_checkpoint_every_and_the_last() -> None:
    """As the cluster's trainer stores them (training.Plan.checkpoint_steps): the last always, so that
    every version keeps a state to go on from (issue 77: a continue of 250 steps kept none)."""
    assert checkpoint_steps(0, 1000, 250) == [250, 500, 750, 1000]
    assert checkpoint_steps(0, 1000, 300) == [300, 600, 900, 1000]
    assert checkpoint_steps(0, 1000, 0) == [1000] and checkpoint_steps(0, 1000, 1000) == [1000]
    assert checkpoint_steps(1000, 1250, 250) == [1250]  # a continue of 250 steps from step 1000


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for variable in ("CONTENTGEN_STORE", "CONTENTGEN_CATALOG", "FAL_KEY", "CONTENTGEN_PRICES"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("CONTENTGEN_WORK_DIR", str(tmp_path / "work"))
    return tmp_path


def test_the_example_lora_offline_has_simulated_checkpoints_to_choose_from(
    workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    drawn: list[tuple[str, list[str]]] = []  # the side-by-side grid's title and row titles

    def grid(out: Path, rows: list[tuple[str, Any]], *, title: str) -> Path:
        drawn.append((title, [label for label, _ in rows]))
        return draw_checkpoint_grid(out, rows, title=title)

    monkeypatch.setattr(lora_stage, "draw_checkpoint_grid", grid)
    sample, lora = ROOT / "examples/media/sample.mp4", ROOT / "examples/loratraining.yaml"
    code = main(["run", "--offline", "--source", str(sample), "--result", "r.json", str(lora)])
    assert code == 0, capsys.readouterr().err
    result = RunResult.model_validate_json((workspace / "r.json").read_text())
    assert result.lora is not None and result.lora.likeness is not None
    likeness, store = result.lora.likeness, LocalStore(workspace / "contentgen-data" / "store")
    prefix = f"loras/demo-user/{result.uid}/v1/"

    # four checkpoints (1000 steps, one every 250), each a placeholder LoRA that says it is simulated
    assert [p.step for p in likeness.checkpoints] == [250, 500, 750, 1000]
    for point in likeness.checkpoints:
        assert point.model_uri == store.uri(f"{prefix}checkpoints/step-{point.step:06d}.safetensors")
        copy = store.get_file(f"{prefix}checkpoints/step-{point.step:06d}.safetensors", workspace / "c")
        with safe_open(str(copy), "np") as opened:
            meta = opened.metadata()
        assert (meta["contentgen.step"], meta["contentgen.simulated"]) == (str(point.step), "true")
        assert store.exists(f"{prefix}likeness/step-{point.step:06d}/likeness-grid.jpg")
    # each draws the dataset's face as far as its step learned it (providers/offline_subject.py), and
    # the real scorer measures every one: faint at first, clearest part-way, burnt at the last step
    medians = {p.step: p.median for p in likeness.checkpoints}
    assert all(median is not None for median in medians.values()), medians
    peak = max(medians, key=lambda step: medians[step] or 0.0)
    assert peak not in (250, 1000), medians
    assert medians[250] < medians[500] and medians[1000] < medians[peak]
    verdicts = {p.step: p.verdict for p in likeness.checkpoints}
    assert verdicts[250] == verdicts[1000] == "poor" and verdicts[peak] == "good", verdicts
    # the choice is the best good one, and the last step's LoRA is kept beside it
    good = [p for p in likeness.checkpoints if p.verdict == "good"]
    best = max(good, key=lambda p: (p.median or 0.0, -p.step))
    assert (likeness.chosen_step, likeness.final_step) == (best.step, 1000)
    # what `make demo` says of them before it promotes step 500 (Makefile)
    assert (best.step, verdicts[500], verdicts[750]) == (750, "good", "good")
    assert likeness.verdict == "good" and likeness.median == best.median
    assert likeness.choice.startswith(f"step {best.step} scored best of 4 checkpoints")
    assert likeness.choice.endswith(f"({SIMULATED})")
    assert likeness.checkpoints_grid_uri == store.uri(f"{prefix}likeness-checkpoints.jpg")
    assert store.get_bytes(f"{prefix}model.safetensors") == store.get_bytes(
        f"{prefix}checkpoints/step-{best.step:06d}.safetensors"
    )
    # the grid, written once before anyone can promote another step, stars the run's choice and says
    # so; each row's title a line each: its step, verdict and median
    [(title, labels)] = drawn
    assert title == "dmavatar: 4 simulated checkpoints (* the run's automatic choice); likeness-v1"
    assert labels == [
        f"step {p.step}{' *' if p.step == best.step else ''}\n{p.verdict}\nmedian {p.median:.2f}"
        for p in likeness.checkpoints
    ]
    curve = json.loads(store.get_bytes(f"{prefix}likeness-curve.json"))
    assert [p["step"] for p in curve["checkpoints"]] == [250, 500, 750, 1000]

    # the figures `make demo` prints, then a promotion of another good step, which the record and
    # `assets get` show; the run's choice stays marked *, and no line says it is the model
    capsys.readouterr()
    assert main(["assets", "get", "demo-avatar", "-o", "table"]) == 0
    lines = [line.strip() for line in capsys.readouterr().out.splitlines()]
    steps = [line for line in lines if re.match(r"^[>* ]* ?step \d+:", line)]
    assert steps == [
        f"{'* ' if p.step == best.step else ''}step {p.step}: {p.verdict}, median {p.median:.2f}"
        for p in likeness.checkpoints
    ]
    other = next(p for p in good if p.step != best.step)
    assert main(["assets", "promote", "demo-avatar", "--step", str(other.step), "--note", "less burnt"]) == 0
    promotion = json.loads(capsys.readouterr().out)
    assert (promotion["step"], promotion["automaticStep"]) == (other.step, best.step)
    assert main(["assets", "get", "demo-avatar", "-o", "json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["latestModelUri"] == store.uri(f"{prefix}checkpoints/step-{other.step:06d}.safetensors")
    assert shown["versions"][0]["promotion"]["note"] == "less burnt"
    assert main(["assets", "get", "demo-avatar", "-o", "table"]) == 0
    table = capsys.readouterr().out
    assert f"> step {other.step}: good, median {other.median:.2f}" in table
    assert f"* step {best.step}: good, median {best.median:.2f}" in table
    assert f"> the model is step {other.step}'s, chosen by cli:" in table and '"less burnt"' in table
    assert "is the version's model" not in table  # the run's words, said of its own choice
    # one screen: the essentials, what it stored in a line; every object behind --detail
    assert len(table.splitlines()) <= 30 and "artifacts:" not in table
    assert f"{len(shown['artifacts'])} objects" in table and "(--detail lists them)" in table
    assert main(["assets", "get", "demo-avatar", "-o", "table", "--detail"]) == 0
    detail = capsys.readouterr().out
    assert all(artifact["uri"] in detail for artifact in shown["artifacts"])
    assert len(detail.splitlines()) > len(shown["artifacts"])
