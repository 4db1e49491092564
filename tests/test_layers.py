"""The layers of docs/architecture.md hold: import-linter's contracts in pyproject.toml (each
layer imports only from those below it, every top-level module is in a layer, localcluster
imports nothing of contentgen and contentgen reaches it only through cli/local_cluster.py, no
circles among siblings) and a stricter search for circles between any modules. Each check is
also run on copies of the packages with a violation planted, so it is known to fail."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"
PACKAGES = {
    "contentgen": ROOT / "operator" / "contentgen",
    "localcluster": ROOT / "local-cluster" / "localcluster",
}


def lint_imports(cwd: Path, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    if pythonpath is not None:  # the copies come before the installed (editable) packages
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(ROOT / "pyproject.toml")],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def circles(pythonpath: Path | None = None) -> list[list[str]]:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    if pythonpath is not None:
        env["PYTHONPATH"] = f"{pythonpath}{os.pathsep}{ROOT}"
    done = subprocess.run(
        [sys.executable, "-m", "tests.importgraph", *PACKAGES],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_the_contracts_hold(tmp_path: Path) -> None:
    done = lint_imports(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Contracts: 4 kept, 0 broken." in done.stdout, done.stdout


def test_no_import_circle_anywhere() -> None:
    assert circles() == []


# --- planted violations: each check fails on what it is there to catch ----------------------------

PLANTED = {
    "a lower layer imports a higher one": (
        {"contentgen/store/_probe.py": "from contentgen.controller import settings\n"},
        "contentgen.store is not allowed to import contentgen.controller",
    ),
    "siblings in one layer import each other": (
        {"contentgen/providers/_probe.py": "def f():\n    import contentgen.catalog.names\n"},
        "contentgen.providers is not allowed to import contentgen.catalog",
    ),
    "a top-level module in no layer": (
        {"contentgen/newthing.py": "X = 1\n"},
        "contentgen.newthing",
    ),
    "localcluster imports contentgen": (
        {"localcluster/_probe.py": "import contentgen.api\n"},
        "localcluster is not allowed to import contentgen",
    ),
    "contentgen imports localcluster outside the seam": (
        {"contentgen/cli/_probe.py": "from localcluster import Options\n"},
        "contentgen.cli._probe",
    ),
    "a circle inside a package, under TYPE_CHECKING": (
        {
            "contentgen/store/_a.py": "from . import _b\n",
            "contentgen/store/_b.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from . import _a\n"
            ),
        },
        "no circles between the modules of any package BROKEN",
    ),
}


def planted_copy(root: Path, files: dict[str, str]) -> Path:
    for name, source in PACKAGES.items():
        shutil.copytree(source, root / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    for path, text in files.items():
        (root / path).write_text(text)
    return root


@pytest.mark.parametrize("case", list(PLANTED))
def test_lint_imports_fails_on(case: str, tmp_path: Path) -> None:
    files, expected = PLANTED[case]
    copy = planted_copy(tmp_path / "src", files)
    done = lint_imports(tmp_path, copy)
    assert done.returncode == 1, done.stdout + done.stderr
    assert expected in done.stdout, done.stdout


def test_circle_search_finds_circles_the_contracts_do_not(tmp_path: Path) -> None:
    """A module importing its own package, whose __init__ imports the module (a circle between a
    parent and its child, which no sibling contract sees), and a circle across packages."""
    copy = planted_copy(
        tmp_path / "src",
        {
            "contentgen/store/_child.py": "from contentgen.store import ObjectStore\n",
            "contentgen/redact.py": (ROOT / "operator/contentgen/redact.py").read_text()
            + "\nfrom contentgen.files import sha256_file  # noqa\n",
            "contentgen/files.py": (ROOT / "operator/contentgen/files.py").read_text()
            + "\nimport contentgen.redact  # noqa\n",
        },
    )
    init = copy / "contentgen" / "store" / "__init__.py"
    init.write_text(init.read_text() + "\nfrom . import _child  # noqa\n")
    assert circles(copy) == [
        ["contentgen.files", "contentgen.redact"],
        ["contentgen.store", "contentgen.store._child"],
    ]
