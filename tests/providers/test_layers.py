"""The providers sit below the pipeline, the operator and the user interfaces: none of their
modules imports those (the pipeline hands progress in through `providers.progress.SubProgress`)."""

from __future__ import annotations

import ast
from pathlib import Path

import contentgen.providers

HIGHER = ("contentgen.pipeline", "contentgen.controller", "contentgen.cli", "contentgen.httpapi")


def imported(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_no_provider_module_imports_a_higher_layer():
    root = Path(contentgen.providers.__file__).parent
    modules = sorted(root.rglob("*.py"))
    assert len(modules) > 10
    offending = {
        str(path.relative_to(root)): sorted(n for n in imported(path) if n.startswith(HIGHER))
        for path in modules
    }
    assert {k: v for k, v in offending.items() if v} == {}


def test_the_layer_check_sees_an_offending_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from contentgen.pipeline.progress import Span\nimport contentgen.cli.main\n")
    assert imported(bad) == {"contentgen.pipeline.progress", "contentgen.cli.main"}
