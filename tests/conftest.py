from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def load_yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())


@pytest.fixture
def example():
    """A fresh copy of an example manifest by kind."""
    files = {
        "LoraTraining": "loratraining.yaml",
        "ImageGeneration": "imagegeneration.yaml",
        "ImageGeneration/lora": "imagegeneration-lora.yaml",
        "Transcription": "transcription.yaml",
    }

    def get(kind: str) -> dict[str, Any]:
        return copy.deepcopy(load_yaml(EXAMPLES / files[kind]))

    return get
