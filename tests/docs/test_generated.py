"""README's generated sections (API reference, settings) match the code."""

from contentgen.api.docs import reference
from contentgen.docs import SECTIONS, splice
from tests.conftest import ROOT


def test_readme_generated_sections_are_current() -> None:
    readme = (ROOT / "README.md").read_text()
    assert splice(readme) == readme, "README is stale: run `make generate`"


def test_reference_covers_every_spec_field() -> None:
    text = reference()
    for field in (
        "spec.dataset.captionTemplate",
        "spec.loras[].loraRef.name",
        "spec.speakerLabels",
        "status.versions[].sha256",
        "status.transcript.wordCount",
        "status.conditions[].reason",
    ):
        assert f"`{field}`" in text


def test_every_setting_is_documented() -> None:
    for name, render in SECTIONS.items():
        if name.startswith("settings-"):
            for line in render().splitlines()[2:]:
                if line.startswith("| `CONTENTGEN_"):
                    assert line.rstrip(" |").split("|")[-1].strip(), f"{name}: {line} has no description"
