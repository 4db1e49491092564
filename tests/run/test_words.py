"""What a user reads when something is wrong or asked for help (issue 45): each message names
the field and what to do, the help names every kind, tables print values for people."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from contentgen.api import KINDS
from contentgen.api.manifests import parse
from contentgen.api.validation import validate_document
from contentgen.catalog import open_catalog, to_record
from contentgen.cli.main import main
from contentgen.tables import latest_lora_words, record_block
from tests.conftest import EXAMPLES
from tests.httpserver import serve

PICTURE = EXAMPLES / "media" / "sample.mp4"


def helped(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    with pytest.raises(SystemExit):
        main([*args, "--help"])
    return " ".join(capsys.readouterr().out.split())


def test_the_help_names_every_kind(capsys: pytest.CaptureFixture[str]) -> None:
    run = helped(capsys, "run")
    assert [k for k in KINDS if k not in run] == []
    assert "VideoGeneration" in helped(capsys, "assets", "lineage")
    assert "VideoGeneration" in helped(capsys, "operator")


def manifest(path: Path, kind: str, spec: dict[str, Any]) -> str:
    doc = {"apiVersion": "contentgen.io/v1alpha1", "kind": kind, "metadata": {"name": "x"}, "spec": spec}
    path.write_text(yaml.safe_dump(doc))
    return str(path)


def test_a_video_whose_picture_cannot_be_fetched_names_image_url(
    workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONTENTGEN_ALLOW_PRIVATE_SOURCES", "true")  # served on loopback
    with serve({}) as (base, _):
        spec = {"owner": "u", "prompt": "waves", "model": "wan-2.2-i2v", "image": {"url": f"{base}/gone.png"}}
        assert main(["run", "--offline", manifest(workspace / "v.yaml", "VideoGeneration", spec)]) == 1
    [said] = [line for line in capsys.readouterr().err.splitlines() if line.startswith("contentgen run:")]
    assert "image.url:" in said and "check image.url" in said and "source.url" not in said


def test_a_picture_given_as_a_loras_video_is_said_to_be_a_picture(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    png = workspace / "face.png"
    png.write_bytes(_png())
    lora = str(EXAMPLES / "loratraining.yaml")
    assert main(["run", "--offline", "--source", str(png), lora]) == 1
    said = capsys.readouterr().err.splitlines()[-1]
    assert "source.url: face.png is a PNG picture, not a video" in said
    assert "minSceneSeconds" not in said
    record = open_catalog().find_raw({})[0]
    assert record["latestRun"]["error"]["reason"] == "InvalidInput"  # nothing was stored or paid


def _png() -> bytes:
    import cv2
    import numpy as np

    ok, data = cv2.imencode(".png", np.full((64, 64, 3), 200, np.uint8))
    assert ok
    return bytes(data)


def test_a_misspelled_notification_field_gets_did_you_mean() -> None:
    [doc] = parse(
        yaml.safe_dump(
            {
                "apiVersion": "contentgen.io/v1alpha1",
                "kind": "Notification",
                "metadata": {"name": "hooks"},
                "spec": {
                    "url": "https://hooks.example.com/x",
                    "secretRef": {"name": "contentgen-webhook", "key": ["secret"]},
                    "event": ["succeeded"],
                },
            }
        ),
        "n.yaml",
    )
    said = {p.path: p.reason for p in validate_document(doc).problems}
    assert said["spec.event"].endswith('did you mean "events"?')
    assert said["spec.secretRef.key"].endswith('did you mean "keys"?')
    assert not any("Extra inputs" in reason for reason in said.values())


def test_a_records_table_prints_values_for_people(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A LoRA whose run failed (no error of the latest run is None, its dataset's dropped counts a
    mapping) and a video (placeholder a boolean, likeness None), as `assets get -o table` shows
    them: no Python notation."""
    spec = yaml.safe_load((EXAMPLES / "loratraining.yaml").read_text())
    spec["spec"]["dataset"]["minSceneSeconds"] = 30  # every scene too short: DatasetTooSmall
    (workspace / "lora.yaml").write_text(yaml.safe_dump(spec))
    assert main(["run", "--offline", "--source", str(PICTURE), str(workspace / "lora.yaml")]) == 1
    assert main(["run", "--offline", str(EXAMPLES / "videogeneration.yaml")]) == 0
    capsys.readouterr()
    shown = []
    for doc in open_catalog().find_raw({}):
        shown += [record_block(to_record(doc)), record_block(to_record(doc), detail=True)]
        for detail in ([], ["--detail"]):
            assert main(["assets", "get", str(doc["_id"]), "-o", "table", *detail]) == 0
            shown.append(capsys.readouterr().out)
    text = "\n".join(shown)
    for python in ("None", "True", "False", "{'", "['", "[]", "{}"):
        assert python not in text, python
    assert "dropped=(tooShort=" in text and "placeholder           yes" in text


def test_a_bare_lora_ref_says_the_version_it_uses_and_a_better_one() -> None:
    """A loraRef without version is its LoraTraining's latest version (issue 77): said at generation
    time, with an earlier version that scored better and how to pin it; nothing more where the
    latest is the best, or where nothing was measured."""
    good = {"version": 1, "likeness": {"verdict": "good", "median": 0.61}}
    worse = {"version": 2, "likeness": {"verdict": "poor", "median": 0.30}}
    unmeasured = {"version": 3, "likeness": {"verdict": "skipped"}}
    assert latest_lora_words("avatar", 2, [good, worse]) == (
        "loraRef 'avatar' (no version) uses v2, its latest version (likeness poor, median 0.30); v1 scored "
        "better (likeness good, median 0.61): pin loraRef.version: 1 to use it"
    )
    assert latest_lora_words("avatar", 1, [good]) == (
        "loraRef 'avatar' (no version) uses v1, its latest version (likeness good, median 0.61)"
    )
    assert latest_lora_words("avatar", 3, [unmeasured]).endswith("its latest version (likeness skipped)")
    assert "v1 scored better" in latest_lora_words("avatar", 3, [good, worse, unmeasured])
