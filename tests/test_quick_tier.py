"""`make test-quick` leaves out the tests marked real_node (tests/conftest.py: REAL_NODE): every test
module that starts the local cluster's real node or builds the images it runs must be among them,
or the quick tier would start nodes after all."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from tests.conftest import REAL_NODE, ROOT
from tests.docs.blocks import cluster_pages, runnable_pages

# What starts a node or builds the images, called from a test module.
STARTS = re.compile(r"\b(LocalCluster|RealNode|image_archives|images\.build|operated|unoperated)\(")
# What tests/kube/harness.py gives that starts one.
HARNESS_STARTS = {"cluster", "operated", "unoperated", "operator"}


def modules() -> list[Path]:
    """The test modules, but this one (its cases name what starts a node)."""
    found = [*(ROOT / "tests").rglob("test_*.py"), *(ROOT / "local-cluster" / "tests").glob("test_*.py")]
    return sorted(p for p in found if p != Path(__file__))


def relative(path: Path) -> str:
    return str(path.relative_to(ROOT))


def starts_a_node(path: Path) -> bool:
    text = path.read_text()
    if STARTS.search(text):
        return True
    imports = [n for n in ast.walk(ast.parse(text)) if isinstance(n, ast.ImportFrom)]
    harness = {a.name for n in imports if n.module == "tests.kube.harness" for a in n.names}
    return bool(HARNESS_STARTS & harness)


def test_every_module_that_starts_a_node_is_marked() -> None:
    marked = [relative(p) for p in modules() if relative(p).startswith(REAL_NODE)]
    unmarked = [relative(p) for p in modules() if starts_a_node(p) and not relative(p).startswith(REAL_NODE)]
    # the docs' commands: marked page by page (a page that starts `contentgen local-cluster`)
    assert unmarked == ["tests/docs/test_runnable.py"], unmarked
    assert all(any(m.startswith(prefix) for m in marked) for prefix in REAL_NODE), (REAL_NODE, marked)


def test_the_docs_page_that_starts_a_cluster_is_marked_and_the_others_are_not() -> None:
    pages = {relative(p) for p in cluster_pages(runnable_pages())}
    assert pages == {"docs/local-cluster.md"}, pages


def test_the_signals_find_what_starts_a_node(tmp_path: Path) -> None:
    cases = {
        "with LocalCluster(Options(root)).start():\n    pass\n": True,
        "archives = image_archives(root)\n": True,
        "from tests.kube.harness import Cluster, operated\n": True,
        "from tests.kube.harness import FlakyCollection\n": False,  # a mongomock wrapper: no node
        "done = contentgen(venv, 'local-cluster', '--dir', d)\n": False,  # refused without the package
    }
    for text, starts in cases.items():
        path = tmp_path / "test_case.py"
        path.write_text(text)
        assert starts_a_node(path) is starts, text
