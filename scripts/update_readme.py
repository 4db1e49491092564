"""Regenerate README.md's API reference from the models (run by `make generate`)."""

from pathlib import Path

from contentgen.api.docs import splice

readme = Path(__file__).resolve().parent.parent / "README.md"
readme.write_text(splice(readme.read_text()))
