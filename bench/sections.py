"""The benchmarks' tables in the docs: each between `<!-- NAME:start -->` and `<!-- NAME:end -->`,
rewritten by the run that measured them, wherever the docs hold those markers (README.md,
bench/README.md, docs/*.md)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def replace_section(name: str, text: str) -> list[Path]:
    """Put `text` between the markers of `name` in every doc that has them; the docs written."""
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    written = []
    for path in [ROOT / "README.md", ROOT / "bench" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        if not path.exists():
            continue
        content = path.read_text()
        if start in content and end in content:
            head, rest = content.split(start, 1)
            path.write_text(f"{head}{start}\n{text}{end}{rest.split(end, 1)[1]}")
            written.append(path)
    return written
