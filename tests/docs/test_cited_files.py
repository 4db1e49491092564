"""Files the docs cite exist: a path in inline code (`localcluster/node/real.py`,
`tests/store/test_s3.py`) whose first folder is one of this repository's names a file or folder of
it, read from the page's own folder, the repository's root, the `contentgen` package or the
`localcluster` one (as the docs write them). A page that still cites a module after it was moved
or deleted fails here (docs/performance.md cited `localcluster/node/pods.py` long after the
process node was gone).
What runs write (a path git ignores, such as `bench/out/...`) is not held to it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.docs.links import INLINE_CODE

ROOT = Path(__file__).resolve().parents[2]
ROOTS = (ROOT, ROOT / "operator", ROOT / "operator" / "contentgen", ROOT / "local-cluster")
PAGES = sorted(
    [
        *ROOT.joinpath("docs").rglob("*.md"),
        *(ROOT / folder / "README.md" for folder in (".", "tests", "bench", "local-cluster")),
    ]
)
# a repository path: folders and a file with a source or data suffix, or a folder ending in /
PATH = re.compile(
    r"^[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*(?:\.(?:py|go|js|css|html|yaml|yml|json|md|txt|toml|tpl)|/)$"
)
# paths of other projects' repositories that the docs cite as such
ELSEWHERE = {"examples/dreambooth/train_dreambooth_lora_flux.py": "diffusers' repository"}


def _made_by_runs(path: str) -> bool:
    """A path git ignores (bench/out/..., what a benchmark or a run writes), not a file of ours."""
    return subprocess.run(["git", "check-ignore", "-q", path], cwd=ROOT, check=False).returncode == 0


def _first_folders() -> set[str]:
    return {p.name for root in ROOTS if root.is_dir() for p in root.iterdir() if p.is_dir()}


def cited(text: str) -> list[tuple[int, str]]:
    """(line, path) of every inline-code path with a folder in it, fenced blocks left out."""
    found, fence = [], False
    for number, line in enumerate(text.splitlines(), 1):
        if line.lstrip().startswith(("```", "~~~")):
            fence = not fence
            continue
        if fence:
            continue
        for span in INLINE_CODE.finditer(line):
            value = span.group(0).strip("`").strip()
            if "/" in value.rstrip("/") and PATH.match(value):
                found.append((number, value))
    return found


def test_cited_finds_paths_in_inline_code_only() -> None:
    text = (
        "See `localcluster/node/real.py` and `pipeline/lora.py`.\n```\ncat `not/this.py`\n```\n`a b/c.py`\n"
    )
    assert cited(text) == [(1, "localcluster/node/real.py"), (1, "pipeline/lora.py")]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_cited_file_exists(page: Path) -> None:
    ours = _first_folders()
    missing = [
        f"{page.relative_to(ROOT)}:{line}: `{path}`"
        for line, path in cited(page.read_text())
        if path.split("/", 1)[0] in ours
        and path not in ELSEWHERE
        and not any((root / path).exists() for root in (page.parent, *ROOTS))
        and not _made_by_runs(path)
    ]
    assert not missing, "the docs cite files that do not exist:\n" + "\n".join(missing)
