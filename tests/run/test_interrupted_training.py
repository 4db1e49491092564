"""Ctrl-C of a laptop's training is an outcome (issue 77): SIGINT to `contentgen run` after its first
checkpoint was scored ends the record Interrupted at once, saying the step it reached and the
checkpoint it keeps; the same command again resumes it as the same version from that checkpoint,
its score read back and its steps not trained again, and makes the very model (the same bytes, the
same curve) an uninterrupted run of the same spec makes. The offline provider's simulated training,
paced by CONTENTGEN_OFFLINE_STEP_SECONDS so that the signal lands between two checkpoints."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from contentgen.catalog import open_catalog
from contentgen.cli.main import main
from contentgen.pipeline.local_run import local_uid
from contentgen.providers import offline_training
from tests.conftest import ROOT
from tests.docs.blocks import AS_FROM_A_TERMINAL

SAMPLE = ROOT / "examples/media/sample.mp4"
UID = local_uid("LoraTraining", "default", "demo-avatar")
HANG_GUARD = 300  # seconds: a wait that is no measurement


@pytest.fixture
def lora(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The example LoRA, scored on one seed (half the pictures: the test's CPU)."""
    for variable in ("CONTENTGEN_STORE", "CONTENTGEN_CATALOG", "FAL_KEY", "CONTENTGEN_PRICES"):
        monkeypatch.delenv(variable, raising=False)
    doc = yaml.safe_load((ROOT / "examples/loratraining.yaml").read_text())
    doc["spec"]["evaluation"] = {"seeds": [1]}
    path = tmp_path / "lora.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def _record(root: Path) -> dict[str, Any]:
    catalog = open_catalog(str(root / "contentgen-data" / "catalog"))
    try:
        found = catalog.get(UID)
    finally:
        catalog.close()
    assert found is not None
    return found


def _interrupted_after_first_checkpoint(root: Path, lora: Path) -> subprocess.CompletedProcess[str]:
    """`contentgen run` in its own process, SIGINT once checkpoint 250's score is stored (each step
    20 ms: the next checkpoint is 5 s away)."""

    def scored() -> bool:  # by a pattern: a failure below lists what the store held instead
        return any(root.glob("**/likeness/step-000250/likeness.json"))

    env = {**os.environ, "CONTENTGEN_OFFLINE_STEP_SECONDS": "0.02", "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "contentgen", "run", "--offline", "--source", str(SAMPLE), str(lora)]
    # as from a terminal: Ctrl-C at its default and no signal blocked, whatever this process
    # inherited or a thread of it blocks (make test's runs twice ran to the end through the SIGINT)
    terminal = [sys.executable, "-c", AS_FROM_A_TERMINAL, *command]
    with subprocess.Popen(
        terminal, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as run:
        deadline = time.monotonic() + HANG_GUARD
        while not scored() and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        ended_first = run.poll() is not None
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=HANG_GUARD)
    if ended_first:
        held = sorted(
            str(p.relative_to(root)) for p in root.glob("contentgen-data/store/**/*") if p.is_file()
        )
        raise AssertionError(f"the run ended before checkpoint 250's score was seen; the store holds {held}")
    return subprocess.CompletedProcess(command, run.returncode, out, err)


class _Steps:
    """The offline provider's clock, counting the simulated steps it sleeps through."""

    def __init__(self) -> None:
        self.slept = 0

    def sleep(self, seconds: float) -> None:
        self.slept += 1

    def monotonic(self) -> float:
        return time.monotonic()


def test_ctrl_c_after_a_checkpoint_ends_the_record_and_the_next_run_goes_on_from_it(
    tmp_path: Path, lora: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    first = tmp_path / "interrupted"
    first.mkdir()
    stopped = _interrupted_after_first_checkpoint(first, lora)
    assert stopped.returncode == 130, stopped.stderr
    run = _record(first)["latestRun"]  # ended by the process itself, before it exited
    assert (run["version"], run["phase"], run["error"]["reason"]) == (1, "Interrupted", "Interrupted")
    step = run["training"]["step"]
    assert 250 <= step < 500 and run["completedAt"] is not None
    said = run["error"]["message"]
    assert said.startswith(f"interrupted by Ctrl-C at step {step} of 1000 (train): checkpoint 250 (scored ")
    assert said.endswith(
        "is stored; the same `contentgen run` resumes it as v1 from step 250, not training its steps again"
    )
    assert stopped.stderr.strip().splitlines()[-1] == f"contentgen run: {said}"

    steps = _Steps()
    monkeypatch.setattr(offline_training, "time", steps)
    monkeypatch.setenv("CONTENTGEN_OFFLINE_STEP_SECONDS", "0.001")
    monkeypatch.chdir(first)
    assert main(["run", "--offline", "--source", str(SAMPLE), "--result", "r.json", str(lora)]) == 0
    assert "its training goes on from checkpoint 250" in capsys.readouterr().err
    assert steps.slept == 750  # steps 251 to 1000: the 250 before the checkpoint not trained again
    resumed = json.loads((first / "r.json").read_text())
    doc = _record(first)
    assert [(r["version"], r["phase"]) for r in doc["runs"]] == [(1, "Succeeded")]  # one run, resumed

    fresh = tmp_path / "uninterrupted"
    fresh.mkdir()
    monkeypatch.chdir(fresh)
    steps.slept = 0
    assert main(["run", "--offline", "--source", str(SAMPLE), "--result", "r.json", str(lora)]) == 0
    assert steps.slept == 1000
    whole = json.loads((fresh / "r.json").read_text())
    assert resumed["lora"]["sha256"] == whole["lora"]["sha256"]  # the very model
    assert resumed["lora"]["chosenStep"] == whole["lora"]["chosenStep"]
    curve = lambda result: [  # noqa: E731
        (p["step"], p["verdict"], p["median"]) for p in result["lora"]["likeness"]["checkpoints"]
    ]
    assert curve(resumed) == curve(whole) and len(curve(whole)) == 4


def test_sigterm_stops_a_run_as_ctrl_c_does_and_the_handler_is_the_commands_only() -> None:
    """SIGTERM raises where the run is, as Ctrl-C does (the same record, exit 143); once the command
    returns, the process's own handler is back."""
    from contentgen.cli.run import Interrupted, _signals

    def terminated() -> None:
        with _signals():
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)  # the signal arrives before this ends

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Interrupted) as stopped:
        terminated()
    assert (stopped.value.how, stopped.value.status) == ("SIGTERM", 143)
    assert signal.getsignal(signal.SIGTERM) is before
