"""The CLI as a reader runs it: contentgen's main with its output captured, a run's result, a
worker's snapshot file and the worker run on it (tests/run, assets_cli)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from contentgen.api import RunResult, SpecSnapshot
from contentgen.cli.main import main
from tests.conftest import EXAMPLES

SAMPLE = EXAMPLES / "media" / "sample.mp4"


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["run", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def result_of(path: Path) -> RunResult:
    return RunResult.model_validate_json(path.read_text())


def snapshot_file(tmp_path: Path, kind: str, spec: dict[str, Any], **extra: Any) -> Path:
    path = tmp_path / "spec.json"
    snap = SpecSnapshot(
        kind=kind,
        name="w",
        namespace="ns",
        uid="11111111-2222-3333-4444-555555555555",
        generation=1,
        spec=spec,
        **extra,
    )
    path.write_text(snap.model_dump_json(by_alias=True))
    return path


def worker(tmp_path: Path, spec: Path, monkeypatch: pytest.MonkeyPatch, **env: str) -> tuple[int, str]:
    monkeypatch.setenv("CONTENTGEN_STORE", (tmp_path / "store").as_uri())
    monkeypatch.setenv("CONTENTGEN_WORK_DIR", str(tmp_path / "work"))
    monkeypatch.delenv("CONTENTGEN_KUBE_API", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    log = tmp_path / "termination-log"
    code = main(["worker", "--spec", str(spec), "--termination-log", str(log)])
    return code, log.read_text() if log.exists() else ""


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def as_json(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code, out, err = cli(capsys, *args, "-o", "json")
    assert code == 0, err
    return json.loads(out)
