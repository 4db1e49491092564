"""What a person sees in a terminal: the progress bar, `| head`, and mistakes in arguments."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest

from contentgen.api import KINDS
from contentgen.catalog.embedded import EmbeddedCatalog
from contentgen.cli.main import main
from contentgen.pipeline.reporters import ConsoleProgress
from tests.catalog.factory import image_doc
from tests.conftest import ROOT


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
    catalog = EmbeddedCatalog(tmp_path / "catalog")
    for n in range(150):  # well over a pipe's buffer of JSON
        catalog.upsert(image_doc(f"img-{n:03d}", prompt="a long prompt " * 20))
    catalog.close()
    command = [sys.executable, "-m", "contentgen", "assets", "list", "--catalog", str(tmp_path / "catalog")]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        process.stdout.read(100)  # `| head -c 100`
        process.stdout.close()
        err = process.stderr.read().decode()
        code = process.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert code == 141


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
