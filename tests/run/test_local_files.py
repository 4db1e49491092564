"""Local files where the run is local (issue 70): `contentgen run` animates a picture given by its
path and draws with a LoRA given by its path (offline here), where it said "use https:// or s3://";
admission, and `contentgen validate`, which says what admission says, still refuse them, and say
that a local run would take them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
import yaml

from contentgen.api import KINDS
from contentgen.api.crd import crd
from contentgen.cli.main import main
from tests.admission import admit

LOCAL_ONLY = "(a local file is taken by local runs only: contentgen run, contentgen api --local)"


def _video(picture: str) -> dict[str, Any]:
    return {
        "apiVersion": "contentgen.io/v1alpha1",
        "kind": "VideoGeneration",
        "metadata": {"name": "local-picture"},
        "spec": {
            "owner": "demo-user",
            "prompt": "the lighthouse's light turns",
            "model": "wan-2.2-i2v",
            "image": {"url": picture},
            "durationSeconds": 2,
            "resolution": "480p",
        },
    }


def _image(lora: str) -> dict[str, Any]:
    return {
        "apiVersion": "contentgen.io/v1alpha1",
        "kind": "ImageGeneration",
        "metadata": {"name": "local-lora"},
        "spec": {
            "owner": "demo-user",
            "prompt": "a lighthouse at dusk",
            "model": "flux-lora",
            "loras": [{"url": lora, "scale": 0.8}],
        },
    }


@pytest.fixture
def files(workspace: Path) -> Path:
    picture = np.zeros((360, 480, 3), np.uint8)
    picture[:, :, 1] = np.linspace(0, 255, 480, dtype=np.uint8)
    assert cv2.imwrite(str(workspace / "lighthouse.png"), picture)
    (workspace / "mine.safetensors").write_bytes(b"\0" * 64)
    return workspace


def test_a_local_run_animates_a_picture_and_draws_with_a_lora_by_their_paths(
    files: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (files / "video.yaml").write_text(yaml.safe_dump(_video("lighthouse.png")))
    assert main(["run", "--offline", "video.yaml"]) == 0, capsys.readouterr().err
    (files / "image.yaml").write_text(yaml.safe_dump(_image("mine.safetensors")))
    assert main(["run", "--offline", "image.yaml"]) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert main(["assets", "get", "default/local-picture", "-o", "json"]) == 0
    video = json.loads(capsys.readouterr().out)
    assert main(["assets", "get", "default/local-lora", "-o", "json"]) == 0
    image = json.loads(capsys.readouterr().out)
    assert video["versions"][-1]["video"]["uri"].endswith("/video.mp4")
    assert [lora["uri"] for lora in image["versions"][-1]["loras"]] == ["mine.safetensors"]


@pytest.mark.parametrize(
    ("manifest", "field"),
    [(_video("lighthouse.png"), "spec.image.url"), (_image("mine.safetensors"), "spec.loras[0].url")],
)
def test_admission_and_validate_refuse_a_local_file_and_say_where_it_is_taken(
    files: Path, capsys: pytest.CaptureFixture[str], manifest: dict[str, Any], field: str
) -> None:
    (files / "m.yaml").write_text(yaml.safe_dump(manifest))
    assert main(["validate", "m.yaml"]) == 1
    [line] = [line for line in capsys.readouterr().out.splitlines() if line.startswith("m.yaml")]
    assert line.startswith(
        f"m.yaml: {manifest['kind']}/{manifest['metadata']['name']} (document 1): {field}: must be"
    )
    assert line.endswith(LOCAL_ONLY)
    _, errors = admit(crd(KINDS[manifest["kind"]]), manifest)
    assert [path for path, _ in errors] == [field], errors
