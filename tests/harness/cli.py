"""The CLI as a reader runs it: contentgen's main with its output captured, a run's result, a
worker's snapshot file and the worker run on it (tests/run, assets_cli)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from contentgen.api import RunResult, SpecSnapshot
from contentgen.catalog import Catalog, open_catalog
from contentgen.cli.main import main
from contentgen.store import LocalStore
from tests.conftest import EXAMPLES

SAMPLE = EXAMPLES / "media" / "sample.mp4"


def offline_lora(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, edit: Callable[[dict[str, Any]], None]
) -> Iterator[tuple[Catalog, LocalStore, str]]:
    """The example LoRA of the sample video (template captions, `edit` on its spec), trained by
    `contentgen run --offline` in `tmp_path`: its catalog, store and uid, the catalog closed after."""
    monkeypatch.chdir(tmp_path)
    for variable in ("CONTENTGEN_STORE", "CONTENTGEN_CATALOG", "CONTENTGEN_BUDGETS"):
        monkeypatch.delenv(variable, raising=False)
    manifest = yaml.safe_load((EXAMPLES / "loratraining.yaml").read_text())
    manifest["spec"]["dataset"]["captioning"] = "template"
    edit(manifest["spec"])
    (tmp_path / "lora.yaml").write_text(yaml.safe_dump(manifest))
    assert main(["run", "--offline", "--source", str(SAMPLE), str(tmp_path / "lora.yaml")]) == 0
    catalog = open_catalog()
    [doc] = catalog.find_raw({"kind": "LoraTraining"})
    yield catalog, LocalStore(tmp_path / "contentgen-data" / "store"), str(doc["_id"])
    catalog.close()


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


def assets_json(catalog: str, store: str, env: dict[str, str], *args: str) -> Any:
    """`contentgen assets ARGS --catalog CATALOG --store STORE -o json` as its own process, as a
    user runs it against a cluster's catalog and store (`env`: the store's account and endpoint)."""
    where = ["--catalog", catalog, "--store", store, "-o", "json"]
    done = subprocess.run(
        [str(Path(sys.executable).parent / "contentgen"), "assets", *args, *where],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={**os.environ, **env},
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)
