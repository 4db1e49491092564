"""Regenerate the docs' generated sections (run by `make generate`; contentgen/docs.py says which
page holds which)."""

from pathlib import Path

from contentgen.docs import PAGES, splice

ROOT = Path(__file__).resolve().parent.parent

for page, sections in PAGES.items():
    path = ROOT / page
    path.write_text(splice(path.read_text(), sections, page))
