"""What a person sees in a terminal: the progress bar, `| head`, and mistakes in arguments."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from contentgen.api import KINDS
from contentgen.catalog.embedded import EmbeddedCatalog
from contentgen.cli.main import main
from contentgen.cli.output import print_json
from contentgen.pipeline.interruption import interruption
from contentgen.pipeline.local_run import CatalogProgress
from contentgen.pipeline.reporters import ConsoleProgress
from tests.catalog.factory import image_doc
from tests.conftest import ROOT
from tests.harness.live import running


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_moves_on_small_steps() -> None:
    """The dataset stage reports in fractions of a percent; they add up to redraws."""
    screen = Terminal()
    bar = ConsoleProgress(screen)
    for tenth in range(101):
        bar("dataset", tenth / 10)
    draws = screen.getvalue().count("\r")
    assert draws == 11  # at 0, 1, 2, ..., 10 %
    assert "dataset" in screen.getvalue() and " 10.0%" in screen.getvalue()


def test_plain_lines_every_ten_percent_of_small_steps() -> None:
    lines = io.StringIO()
    report = ConsoleProgress(lines, tty=False)
    for step in range(0, 1001):
        report("train", step / 10)
    assert lines.getvalue().splitlines() == [f"train {p}%" for p in range(0, 101, 10)]


def test_a_reader_that_goes_away_is_no_traceback(tmp_path: Path) -> None:
    """`| head -c 100`: the answer is one write (print_json), which the kernel takes as far as
    the pipe holds; CPython's `sys.stdout.write` may then return without seeing the reader go (0,
    measured on this machine's kernel), or meet the closed pipe (141). Quiet either way."""
    catalog = EmbeddedCatalog(tmp_path / "catalog")
    for n in range(150):  # well over a pipe's buffer of JSON
        catalog.upsert(image_doc(f"img-{n:03d}", prompt="a long prompt " * 20))
    catalog.close()
    command = [sys.executable, "-m", "contentgen", "assets", "list", "--catalog", str(tmp_path / "catalog")]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        assert len(process.stdout.read(100)) == 100  # `| head -c 100`
        process.stdout.close()
        err = process.stderr.read().decode()
        code = process.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert code in (0, 141) and err == "", (code, err)


def test_a_reader_gone_before_the_answer_ends_it_with_sigpipes_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader gone before the first write (`| true`): the write meets the closed pipe, and the
    command ends quietly with the status a SIGPIPE would give."""
    EmbeddedCatalog(tmp_path / "catalog").close()
    read, write = os.pipe()
    os.close(read)
    with open(write, "w") as out:
        monkeypatch.setattr(sys, "stdout", out)
        assert main(["assets", "list", "--catalog", str(tmp_path / "catalog"), "-o", "json"]) == 141


class Writes(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, text: str) -> int:
        self.writes += 1
        return super().write(text)


def test_a_json_answer_is_one_write(monkeypatch: pytest.MonkeyPatch) -> None:
    """`until contentgen assets get X -o json | grep -q '"bestStep"'` under `set -o pipefail`: grep
    quits at its match; a document written token by token met the closed pipe part way (status 141,
    so the loop never saw its match), where one write lands in the pipe whole."""
    out = Writes()
    monkeypatch.setattr(sys, "stdout", out)
    document = {"training": {"bestStep": 500, "checkpoints": [{"step": s, "median": 0.5} for s in range(99)]}}
    print_json(document)
    assert out.writes == 1
    assert json.loads(out.getvalue()) == document


def test_crds_out_at_a_file_says_what_to_do(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "crds.yaml"
    target.write_text("")
    assert main(["crds", "--out", str(target)]) == 1
    err = capsys.readouterr().err
    assert err == (
        f"contentgen crds: --out {target} is a file: give a directory (it gets one file per CRD), "
        "or leave --out out to print them all\n"
    )
    assert main(["crds", "--out", str(tmp_path / "new" / "dir")]) == 0
    # one file per CRD, named as the committed crds/ are (the kinds and Notification)
    written = sorted(p.name for p in (tmp_path / "new" / "dir").glob("*.yaml"))
    assert written == sorted(p.name for p in (ROOT / "crds").glob("*.yaml"))
    assert len(written) == len(KINDS) + 1


def _report(step: int, scored: list[tuple[int, str, float | None, bool]], **more: Any) -> dict[str, Any]:
    """A training's report as the watch makes it (status.training, wire form)."""
    points = [{"step": s, "verdict": v, "median": m, "chosen": c} for s, v, m, c in scored]
    return {"version": 1, "step": step, "steps": 1000, "checkpoints": points, **more}


def test_a_training_shows_its_step_loss_and_time_left_and_each_checkpoint_as_it_lands() -> None:
    """On a terminal the bar says where the training is; each checkpoint scored is a line of its own
    above it, said once; a stop asked is said."""
    screen = Terminal()
    bar = ConsoleProgress(screen, width=100, clock=iter(range(100)).__next__)
    bar("train", 60.0)
    bar.training(_report(430, [], loss=[{"step": 430, "loss": 0.1234}], etaSeconds=125.0))
    bar.training(_report(500, [(250, "good", 0.56, True)], etaSeconds=100.0))
    bar.training(_report(510, [(250, "good", 0.56, True)], etaSeconds=99.0, stopAsked="keep-best by alice"))
    bar.close()
    frames = [frame.rstrip() for frame in screen.getvalue().replace("\n", "\r").split("\r") if frame.strip()]
    assert (
        "train          [############........]  60.0% step 430 of 1000, loss 0.1234, about 2 min left"
        in frames
    )
    assert [f for f in frames if "checkpoint" in f or "stop asked" in f] == [
        "  checkpoint 250: good, median 0.56 (the best so far)",
        "  stop asked (keep-best by alice): it stops at its next step, keeping its best checkpoint",
    ]
    assert frames[-1].endswith("step 510 of 1000, about 2 min left")


def test_not_at_a_terminal_only_the_checkpoints_are_said() -> None:
    lines = io.StringIO()
    report = ConsoleProgress(lines, tty=False)
    report("train", 50.0)
    for step in range(1, 300):
        report.training(_report(step, [(100, "no-faces", None, True)] if step >= 100 else []))
    assert lines.getvalue().splitlines() == ["train 50%", "  checkpoint 100: no-faces"]


def test_a_new_stage_is_written_to_the_catalog_at_once() -> None:
    """Its percent at most once a second, but `train` as soon as it trains (issue 77: the record
    said `dataset 45%` through the whole training)."""
    written: list[tuple[str, int]] = []

    class Catalog:
        doc = running("u", "avatar", None, progress=0)  # its v2 started, as its record is written

        def modify(self, uid: str, change: Any) -> None:
            new = change(self.doc)
            if new is not None:
                self.doc = new
                written.append((new["latestRun"]["stage"], new["latestRun"]["progress"]))

    snapshot = type("Snapshot", (), {"uid": "u", "version": 2})()
    progress = CatalogProgress(Catalog(), snapshot, clock=lambda: 0.0)  # type: ignore[arg-type]
    for stage, percent in (("dataset", 30.0), ("dataset", 45.0), ("train", 50.0), ("train", 60.0)):
        progress(stage, percent)
    assert written == [("dataset", 30), ("train", 50)]


def test_an_interruption_says_where_it_was_and_what_it_keeps() -> None:
    run = {"version": 2, "stage": "dataset", "progress": 29}
    assert interruption("Ctrl-C", run, None, []) == (
        "interrupted by Ctrl-C in stage dataset (29 %); the same `contentgen run` resumes it as v2, "
        "adopting what it paid for"
    )
    training = _report(120, [])
    assert interruption("SIGTERM", run, training, []) == (
        "interrupted by SIGTERM at step 120 of 1000 (train), before its first checkpoint: nothing is "
        "kept; the same `contentgen run` resumes it as v2"
    )
    training = _report(520, [(250, "poor", 0.21, False), (500, "good", 0.55, True)])
    assert interruption("Ctrl-C", run, training, [250, 500]) == (
        "interrupted by Ctrl-C at step 520 of 1000 (train): checkpoints 250 and checkpoint 500 (scored "
        "good, median 0.55) is stored; the same `contentgen run` resumes it as v2 from step 500, not "
        "training its steps again"
    )
