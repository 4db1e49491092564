"""docs/architecture.md's table of sizes is near the truth (within 15 %, so that it need not be
regenerated for every change), and no part of `contentgen` grows past a third of it: the local
control plane was once 39 % of the package, in its images."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from scripts.sizes import CONTENTGEN, LOCALCLUSTER, ROOT, parts, table

PAGE = ROOT / "docs" / "architecture.md"
SECTION = re.compile(r"<!-- sizes:start[^>]*-->\n(.*?)<!-- sizes:end -->", re.DOTALL)
ROW = re.compile(r"^\| `(?P<name>[^`]+)`[^|]* \| (?P<lines>[\d,]+) \|", re.MULTILINE)
TOLERANCE = 0.15
LARGEST_SHARE = 1 / 3


def documented(text: str) -> dict[str, int]:
    """The lines of each part in a table as `table()` writes it."""
    return {m["name"]: int(m["lines"].replace(",", "")) for m in ROW.finditer(text)}


def problems(shown: dict[str, int], actual: dict[str, int]) -> list[str]:
    out = [f"{name} is not in the table" for name in actual.keys() - shown.keys()]
    out += [f"{name} is in the table but not in the code" for name in shown.keys() - actual.keys()]
    out += [
        f"{name}: the table says {shown[name]:,} lines, the code has {n:,}"
        for name, n in actual.items()
        if name in shown and abs(shown[name] - n) > TOLERANCE * n
    ]
    return out


def too_big(actual: dict[str, int]) -> list[str]:
    total = sum(n for name, n in actual.items() if name.startswith("contentgen/"))
    return [
        f"{name} is {n / total:.0%} of contentgen"
        for name, n in actual.items()
        if name.startswith("contentgen/") and n > LARGEST_SHARE * total
    ]


def test_the_table_is_near_the_truth() -> None:
    section = SECTION.search(PAGE.read_text())
    assert section, "docs/architecture.md has no sizes section"
    found = problems(documented(section.group(1)), parts())
    assert not found, "; ".join(found) + ": run `make generate`"


def test_no_part_of_contentgen_is_past_a_third_of_it() -> None:
    assert not too_big(parts())


def test_the_local_cluster_is_counted_apart() -> None:
    sizes = parts()
    assert sizes["localcluster/"] > 1000 and "contentgen/cluster/" not in sizes
    assert documented(table())["localcluster/"] == sizes["localcluster/"]


# --- the checks themselves, on planted trees -------------------------------------------------------


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of both packages' Python files, to plant changes in."""
    for package in (CONTENTGEN, LOCALCLUSTER):
        for source in package.rglob("*.py"):
            if "__pycache__" not in source.parts:
                copy = tmp_path / source.relative_to(ROOT)
                copy.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, copy)
    return tmp_path


def test_a_stale_table_is_found(tree: Path) -> None:
    shown = documented(table(tree))
    assert not problems(shown, parts(tree))
    # a part that grew by a fifth
    store = tree / CONTENTGEN.relative_to(ROOT) / "store" / "grown.py"
    store.write_text("x = 1\n" * (parts(tree)["contentgen/store/"] // 5 + 1))
    assert problems(shown, parts(tree)) == [
        f"contentgen/store/: the table says {shown['contentgen/store/']:,} lines, "
        f"the code has {parts(tree)['contentgen/store/']:,}"
    ]
    # a new part
    (tree / CONTENTGEN.relative_to(ROOT) / "extra").mkdir()
    (tree / CONTENTGEN.relative_to(ROOT) / "extra" / "__init__.py").write_text("x = 1\n")
    assert "contentgen/extra/ is not in the table" in problems(shown, parts(tree))


def test_a_part_past_a_third_is_found(tree: Path) -> None:
    assert not too_big(parts(tree))
    # the control plane back inside the package at the size it once had there (9.7K lines)
    inside = tree / CONTENTGEN.relative_to(ROOT) / "cluster"
    while parts(tree).get("contentgen/cluster/", 0) < 9700:
        shutil.copytree(tree / LOCALCLUSTER.relative_to(ROOT), inside / f"copy{len(list(inside.glob('*')))}")
        (inside / "__init__.py").touch()
    found = too_big(parts(tree))
    assert len(found) == 1 and found[0].startswith("contentgen/cluster/ is"), found
