"""A LoraEvaluation with provider cluster, through `contentgen run`, on the tiny FLUX: a LoRA trained
on the cluster's trainer (the real one), then its version evaluated again by the cluster's own
generator with that version's LoRA file, without naming a provider (the version's is cluster). Its
pictures are the tiny FLUX's (noise: no faces), each made once and counted as GPU time of item
`likeness-evaluation`, priced at the GPU-hour; the evaluation is stored beside the version."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from contentgen.api import RunResult
from contentgen.cli.main import main
from contentgen.pipeline.local_run import local_uid
from contentgen.store import LocalStore
from tests.run.checkpoint_pictures import manifest

pytestmark = pytest.mark.cluster_models


def test_a_cluster_loras_version_is_evaluated_again_on_the_cluster(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lora = manifest(workspace / "lora.yaml", steps=100, every=0, enabled=False)  # trained only
    assert main(["run", "--source", str(workspace / "subject.mp4"), str(lora)]) == 0, capsys.readouterr().err
    evaluation = {
        "apiVersion": "contentgen.io/v1alpha1",
        "kind": "LoraEvaluation",
        "metadata": {"name": "jx-again"},
        "spec": {"owner": "demo", "loraRef": {"name": "jx"}, "evaluation": {"seeds": [7]}},
    }
    (workspace / "again.yaml").write_text(yaml.safe_dump(evaluation))
    capsys.readouterr()
    assert main(["run", "--result", "r.json", str(workspace / "again.yaml")]) == 0, capsys.readouterr().err
    result = RunResult.model_validate_json((workspace / "r.json").read_text())
    assert result.provider == "cluster" and result.evaluation is not None  # the version's provider
    assert result.evaluation.lora.provider == "cluster" and result.evaluation.likeness.verdict == "no-faces"
    # six prompts, one seed, with the LoRA and without it: each a GPU-time line of its own
    usage = result.usage or []
    assert len(usage) == 12 and {(u.provider, u.item, u.unit) for u in usage} == {
        ("cluster", "likeness-evaluation", "gpu-hour")
    }
    assert all(u.quantity > 0 for u in usage)
    assert all(u.unit_price_usd == 2.0 for u in usage)  # the table's GPU-hour
    store = LocalStore(workspace / "contentgen-data" / "store")
    lora_uid = local_uid("LoraTraining", "default", "jx")
    folder = f"loras/demo/{lora_uid}/v1/likeness/e1/"
    assert {i.key.removeprefix(folder) for i in store.list(folder)} == {
        "claim.json",
        "evaluation.json",
        "likeness-grid.jpg",
        "likeness.json",
    }
