"""Tests share helpers through tests/harness/ (and fixtures through conftest.py files), never by
importing another test module: a test module imported by another registers its fixtures twice, runs
its module-level setup in the importer's worker, and ties two files' tests together in ways no
reader of either sees. This test fails on any `import tests...test_x` or `from ...test_x import`."""

from __future__ import annotations

import ast

from tests.conftest import ROOT

FOLDERS = (ROOT / "tests", ROOT / "local-cluster" / "tests")


def imported_test_modules(source: str) -> list[tuple[int, str]]:
    """(line, module) for each import of a test module (a module whose name starts with test_),
    absolute or relative, at any depth of the file."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            module = "." * node.level + (node.module or "")
            joined = module + "." if node.module else module
            aliases = [joined + alias.name for alias in node.names]
            names = [module] if any(p.startswith("test_") for p in module.split(".")) else aliases
        else:
            continue
        found += [(node.lineno, n) for n in names if any(p.startswith("test_") for p in n.split("."))]
    return found


def test_no_test_module_imports_another() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line}: imports {module}"
        for folder in FOLDERS
        for path in sorted(folder.rglob("*.py"))
        for line, module in imported_test_modules(path.read_text())
    ]
    assert offenders == [], "move what is shared to tests/harness/: " + "; ".join(offenders)


def test_the_guard_sees_every_form_of_such_an_import() -> None:
    planted = """
import tests.kube.test_operator
from tests.kube.test_operator import image
from .test_reconcile import NOW
from . import test_reconcile
from tests.docs import test_runnable
def later():
    from tests.run.test_run_cli import run as r
"""
    assert [m for _, m in imported_test_modules(planted)] == [
        "tests.kube.test_operator",
        "tests.kube.test_operator",
        ".test_reconcile",
        ".test_reconcile",
        "tests.docs.test_runnable",
        "tests.run.test_run_cli",
    ]
    allowed = "from tests.harness.kube import image\nfrom tests.conftest import EXAMPLES\nimport pytest\n"
    assert imported_test_modules(allowed) == []
