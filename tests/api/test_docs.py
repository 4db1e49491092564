from contentgen.api.docs import reference, splice
from tests.conftest import ROOT


def test_readme_api_reference_is_current() -> None:
    readme = (ROOT / "README.md").read_text()
    assert splice(readme) == readme, "README's API reference is stale: run `make generate`"


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
