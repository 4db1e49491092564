"""Fixtures of the `contentgen run` and `contentgen worker` tests."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Run in an empty directory: the embedded defaults land in ./contentgen-data."""
    monkeypatch.chdir(tmp_path)
    for variable in (
        "CONTENTGEN_STORE",
        "CONTENTGEN_CATALOG",
        "CONTENTGEN_ALLOW_PRIVATE_SOURCES",
        "FAL_KEY",
        "ASSEMBLYAI_API_KEY",
    ):
        monkeypatch.delenv(variable, raising=False)
    return tmp_path
