"""Regenerate README.md's generated sections (run by `make generate`)."""

from pathlib import Path

from contentgen.docs import splice

readme = Path(__file__).resolve().parent.parent / "README.md"
readme.write_text(splice(readme.read_text()))
