"""The web UI as the getting-started page serves it on a laptop: one that creates, compares and
re-runs (not read-only, where Create says `kubectl apply`); and the files the docs have readers
write in the repository (a tokens file) are ones git ignores."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from contentgen.catalog import open_catalog
from contentgen.cli.main import main
from tests.conftest import ROOT
from tests.docs.blocks import documents, runnable_blocks

GETTING_STARTED = ROOT / "docs" / "getting-started.md"


def served_as_the_page_says(monkeypatch: pytest.MonkeyPatch) -> Any:
    """The app of the page's `contentgen api` block (its environment and flags), not served."""
    [block] = [b for b in runnable_blocks(GETTING_STARTED) if b.background and "contentgen api" in b.text]
    words = shlex.split(block.text.split("#", 1)[0])
    while "=" in words[0]:
        name, value = words.pop(0).split("=", 1)
        monkeypatch.setenv(name, value)
    assert words[:2] == ["contentgen", "api"], block.text
    served: list[Any] = []
    monkeypatch.setattr("uvicorn.run", lambda app, **_: served.append(app))
    assert main(words[1:]) == 0
    return served[0]


@pytest.mark.asyncio
async def test_the_getting_started_web_ui_creates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("CONTENTGEN_API_AUTH", "CONTENTGEN_API_CREATE", "CONTENTGEN_API_KUBECONFIG", "KUBECONFIG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("CONTENTGEN_CATALOG", raising=False)
    open_catalog(create=True).close()  # after `contentgen run`, as on the page
    (tmp_path / "tokens.yaml").write_text(
        'tokens:\n  - owner: demo-user\n    token: "demo-user-local-token"\n'
    )
    app = served_as_the_page_says(monkeypatch)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1"
    ) as client:
        config = (await client.get("/ui/config")).json()
        jobs = await client.get("/api/jobs?type=lora-training")  # the page's curl, as it is
    assert config["create"] == "local", config  # Create, Compare, Re-run and New seed work
    assert jobs.status_code == 200, jobs.text
    creator = app.state.services.creator
    if creator is not None:
        creator.close()


def test_the_tokens_files_the_docs_write_are_ignored() -> None:
    """Every file a docs command writes with a token in it (`> tokens.yaml`) is one git ignores,
    written where the docs say (the repository's root)."""
    written = {
        target
        for page in documents()
        for line in page.read_text().splitlines()
        for target in re.findall(r">\s*(\S*tokens\S*\.(?:ya?ml|json))", line)
    }
    assert "tokens.yaml" in written
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", *sorted(written)], cwd=ROOT, capture_output=True, text=True
    )
    assert set(ignored.stdout.split()) == written, f"not ignored: {written - set(ignored.stdout.split())}"
