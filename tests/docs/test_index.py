"""docs/index.md is the way in (issue 45): it links every page of the site and names every kind
the CRDs define, and where it counts the kinds of work it counts them right."""

from __future__ import annotations

import re

import yaml

from tests.conftest import ROOT

DOCS = ROOT / "docs"
WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7}


def kinds() -> dict[str, list[str]]:
    """Each CRD's kind with its categories."""
    found = {}
    for path in sorted((ROOT / "crds").glob("*.yaml")):
        names = yaml.safe_load(path.read_text())["spec"]["names"]
        found[names["kind"]] = list(names.get("categories") or [])
    return found


def test_the_index_links_every_page() -> None:
    index = (DOCS / "index.md").read_text()
    linked = set(re.findall(r"\]\(([a-z0-9-]+\.md)", index))
    pages = {p.name for p in DOCS.glob("*.md")} - {"index.md"}
    assert sorted(pages - linked) == []


def test_the_index_names_every_kind_and_counts_the_kinds_of_work() -> None:
    index = (DOCS / "index.md").read_text()
    defined = kinds()
    assert [k for k in defined if f"`{k}`" not in index] == []
    work = [k for k, categories in defined.items() if "contentgen" in categories]
    counted = [WORDS[w] for w in re.findall(r"\b(two|three|four|five|six|seven) kinds\b", index)]
    assert counted and set(counted) == {len(work)}
