"""The docs as a whole: the site builds in strict mode, every link of every markdown file in the
repository resolves (nothing is fetched), the README stays a front door, and every contentgen
manifest shown in the docs is valid."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from contentgen.api.manifests import parse
from contentgen.api.validation import validate_document
from tests.conftest import ROOT
from tests.docs.blocks import documents
from tests.docs.links import github_slug, links, problem

MKDOCS = Path(sys.executable).parent / "mkdocs"
YAML_BLOCK = re.compile(r"^```ya?ml\n(?P<body>.*?)^```", re.DOTALL | re.MULTILINE)


def build(config: Path, site: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(MKDOCS), "build", "--strict", "--config-file", str(config), "--site-dir", str(site)],
        cwd=config.parent,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.timeout(600)
def test_the_site_builds_strictly(tmp_path: Path) -> None:
    done = build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert done.returncode == 0, done.stderr
    for page in ("index.html", "local-cluster/index.html", "reference/statuses/index.html"):
        assert (tmp_path / "site" / page).is_file(), page
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text())["nav"]
    listed = set(re.findall(r"[\w/-]+\.md", str(nav)))
    pages = {str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md")}
    assert pages == listed, f"pages not in the nav: {pages - listed}; missing: {listed - pages}"


@pytest.mark.timeout(600)
def test_a_broken_link_or_anchor_fails_the_build(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "index.md").write_text("# Home\n\n## A part\n\n[there](other.md)\n")
    (docs / "other.md").write_text("# Other\n\n[back](index.md#a-part)\n")
    config = tmp_path / "mkdocs.yml"
    config.write_text((ROOT / "mkdocs.yml").read_text().split("\nnav:")[0] + "\nnav: [index.md, other.md]\n")
    assert build(config, tmp_path / "site").returncode == 0
    (docs / "other.md").write_text("# Other\n\n[back](index.md#no-such-part)\n")
    done = build(config, tmp_path / "site")
    assert done.returncode == 1 and "does not contain an anchor '#no-such-part'" in done.stderr


MARKDOWN = documents()


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_resolve(path: Path) -> None:
    broken = [f"{link.line}: {link.target}: {why}" for link in links(path) if (why := problem(link, ROOT))]
    assert not broken, f"{path.relative_to(ROOT)}:\n" + "\n".join(broken)


def test_the_link_checker_finds_what_is_broken(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Title: `code` — here\n\n## A part\n\n## A part\n\n"
        "[ok](#a-part) [ok](#a-part-1) [ok](#title-code--here) [ok](sub/) [ok](https://fal.ai/docs)\n"
        "[no](#b-part) [no](missing.md) [no](https://nodot/x) [no](../../x.md)\n"
        "`[not a link](nowhere.md)`\n```\n[not a link](nowhere.md)\n```\n"
    )
    (tmp_path / "sub").mkdir()
    found = {link.target: problem(link, tmp_path) for link in links(page)}
    assert [t for t, why in found.items() if not why] == [
        "#a-part",
        "#a-part-1",
        "#title-code--here",
        "sub/",
        "https://fal.ai/docs",
    ]
    assert {t for t, why in found.items() if why} == {
        "#b-part",
        "missing.md",
        "https://nodot/x",
        "../../x.md",
    }
    assert github_slug("Running locally: `contentgen run`") == "running-locally-contentgen-run"


def test_readme_is_a_front_door() -> None:
    """At most about 300 lines, with what it promises: the two commands, the picture, the three
    kinds, the three install paths, links into docs/."""
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 300
    for heading in ("## Quick start", "## How it works", "## The kinds", "### With Helm"):
        assert heading in text, heading
    assert "make demo" in text and "make test" in text and "contentgen local-cluster" in text
    assert "charts/install.yaml" in text
    targets = {link.target.split("#")[0] for link in links(ROOT / "README.md")}
    assert {"docs/index.md", "docs/install.md", "docs/local-cluster.md"} <= targets


def yaml_blocks(path: Path) -> list[tuple[int, str]]:
    text = path.read_text()
    return [(text[: m.start()].count("\n") + 1, m["body"]) for m in YAML_BLOCK.finditer(text)]


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_manifests_in_the_docs_are_valid(path: Path) -> None:
    for line, body in yaml_blocks(path):
        for doc in parse(body, f"{path.relative_to(ROOT)}:{line}"):
            content = doc.content if isinstance(doc.content, dict) else {}
            if str(content.get("apiVersion", "")).startswith("contentgen.io/"):
                outcome = validate_document(doc)
                assert not outcome.problems, [p.line() for p in outcome.problems]
