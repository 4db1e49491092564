"""Regenerate the docs' generated sections (run by `make generate`; contentgen/docs.py says which
page holds which; scripts/sizes.py writes the table of sizes in docs/architecture.md)."""

from pathlib import Path

from contentgen.docs import PAGES, splice
from scripts.sizes import table

ROOT = Path(__file__).resolve().parent.parent

for page, sections in PAGES.items():
    path = ROOT / page
    path.write_text(splice(path.read_text(), sections, page))

architecture = ROOT / "docs" / "architecture.md"
architecture.write_text(splice(architecture.read_text(), {"sizes": lambda: table(ROOT)}, str(architecture)))
