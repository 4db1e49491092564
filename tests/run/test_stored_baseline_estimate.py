"""`contentgen run` of a second version of a LoraTraining on fal (the fal fake behind the real
fal-client), its likeness baseline stored by the first: the estimate said when it starts and
recorded in the catalog leaves the pictures without the LoRA out, as the bill does, so the two are
equal (issue 36: a laptop estimated $2.84 and billed $2.42, the baseline counted though
stored)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from contentgen.api.providers import FAL
from contentgen.catalog import open_catalog
from contentgen.cli.main import main
from contentgen.pipeline.likeness.plan import Plan, baseline_cached
from contentgen.pricing import PriceTable
from contentgen.store import open_store
from tests.harness.faces import shows, the_subject
from tests.providers.fake_fal import FAL_KEY, FakeFal
from tests.providers.fakes import mocked, unslept_retries
from tests.run.checkpoint_pictures import subject_video

PROMPTS = 6  # likeness-v1, one seed
FLUX = FAL.draws["flux-lora"]


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, s3: str) -> Path:
    """A laptop's run with a bucket of the real S3 server as its store (fal is handed presigned
    links to the LoRA, which a local store cannot give), the catalog local."""
    monkeypatch.chdir(tmp_path)
    for variable in ("CONTENTGEN_CATALOG", "ASSEMBLYAI_API_KEY", "CONTENTGEN_PRICES"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("CONTENTGEN_STORE", f"s3://{s3}/cg")
    monkeypatch.setenv("FAL_KEY", FAL_KEY)
    unslept_retries(monkeypatch)  # the providers' waits are recorded, not slept
    subject_video(tmp_path / "subject.mp4", monkeypatch)
    return tmp_path


def manifest(path: Path) -> Path:
    spec = {
        "owner": "demo",
        "provider": "fal",
        "triggerWord": "jx",
        "source": {"url": "https://example.com/subject.mp4"},
        "dataset": {"maxFrames": 8, "minFrames": 4},
        "evaluation": {"seeds": [1]},
    }
    kind = {"apiVersion": "contentgen.io/v1alpha1", "kind": "LoraTraining"}
    path.write_text(yaml.safe_dump({**kind, "metadata": {"name": "jx"}, "spec": spec}))
    return path


def run(workspace: Path, capsys: pytest.CaptureFixture[str], result: str) -> tuple[Any, str]:
    """One run of the manifest: its result and what it said on stderr."""
    lora = manifest(workspace / "lora.yaml")
    code = main(["run", "--source", str(workspace / "subject.mp4"), "--result", result, str(lora)])
    said = capsys.readouterr()
    assert code == 0, said.err
    return json.loads((workspace / result).read_text()), said.err


def announced(err: str) -> tuple[float, float]:
    """The estimate said when the run starts: its amount and its FLUX megapixels."""
    said = rf"contentgen run: estimated cost \$(\d+\.\d+) at fal \(.*?(\d+) megapixels of {FLUX} x"
    [(usd, flux)] = re.findall(said, err)
    return float(usd), float(flux)


def pictures(fal: FakeFal, *, with_lora: bool) -> int:
    return sum(1 for app, a in fal.submitted if app == FLUX and bool(a.get("loras")) == with_lora)


def recorded(uid: str) -> dict[str, Any]:
    catalog = open_catalog()
    try:
        record = catalog.get(uid)
    finally:
        catalog.close()
    assert record is not None
    return record


def test_a_second_version_with_its_baseline_stored_is_estimated_as_it_is_billed(
    workspace: Path, capsys: pytest.CaptureFixture[str], s3: str
) -> None:
    fal = FakeFal()
    fal.picture = shows(the_subject)
    # the account's prices are the built-in table's, which the estimate uses: what differs is
    # what was counted, not what a unit costs
    table = PriceTable()
    fal.prices = {app: (table.price("fal", app, u), u) for app, (_, u) in fal.prices.items()}
    with mocked(fal):
        first, first_err = run(workspace, capsys, "r1.json")
        once = recorded(first["uid"])
        assert (pictures(fal, with_lora=True), pictures(fal, with_lora=False)) == (PROMPTS, PROMPTS)
        assert baseline_cached(open_store(f"s3://{s3}/cg"), "fal", Plan(seeds=(1,)))  # stored
        second, second_err = run(workspace, capsys, "r2.json")
        twice = recorded(second["uid"])
    assert (first["version"], second["version"]) == (1, 2) and first["uid"] == second["uid"]
    # the second run paid for its pictures with the LoRA only: the baseline came from the store
    assert (pictures(fal, with_lora=True), pictures(fal, with_lora=False)) == (2 * PROMPTS, PROMPTS)
    assert second["lora"]["likeness"]["verdict"] == "good"
    likeness = first["lora"]["likeness"], second["lora"]["likeness"]
    assert likeness[1]["baselineMedian"] == likeness[0]["baselineMedian"]

    for record, result, err, drawn in (
        (once, first, first_err, 2 * PROMPTS),
        (twice, second, second_err, PROMPTS),
    ):
        usd, flux = announced(err)
        billed = [line for line in result["usage"] if line["item"] == FLUX]
        # the estimate said, the one recorded and the bill: the same pictures, the same amount
        assert flux == sum(line["quantity"] for line in billed) and len(billed) == drawn
        assert record["cost"]["estimatedUsd"] == pytest.approx(usd, abs=1e-4)
        assert record["cost"]["actualUsd"] == pytest.approx(record["cost"]["estimatedUsd"])
        assert record["runs"][-1]["actualUsd"] == pytest.approx(usd)
    assert twice["cost"]["estimatedUsd"] < once["cost"]["estimatedUsd"]
