"""No code outside operator/contentgen/providers/ asks which provider it is: a provider's name is
never compared there (`==`, `!=`, `in`, `not in`, `match`), alone, in a tuple or in a set. What
differs between providers is data: the provider's entry (api/providers.py) or what its outputs
carry (providers/base.py). The finder is shown to catch each form in planted code."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from contentgen import providers
from contentgen.api import KINDS
from contentgen.api.providers import PROVIDERS
from tests.conftest import ROOT

PACKAGE = ROOT / "operator" / "contentgen"
OWN = PACKAGE / "providers"
NAMES = frozenset(PROVIDERS)


def _named(node: ast.AST) -> bool:
    """Whether `node` is a provider's name, or a tuple, list or set holding one."""
    if isinstance(node, ast.Constant):
        return isinstance(node.value, str) and node.value in NAMES
    if isinstance(node, ast.Tuple | ast.List | ast.Set):
        return any(_named(element) for element in node.elts)
    return False


# What the other side of a comparison must speak of for it to ask which provider it is: a
# provider (`spec.provider`, `spec.get("provider")`) or a name (`generator.name`, `name`). A word
# that is also a provider's (reference.py's room "cluster", as against "laptop") is left alone.
_ABOUT_A_PROVIDER = re.compile(r"provider|\bname\b", re.IGNORECASE)


def comparisons(source: str) -> Iterator[int]:
    """The lines of `source` where a provider's name is compared with a provider or a name."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Compare):
            operands: list[ast.expr] = [node.left, *node.comparators]
            lineno = node.lineno
        elif isinstance(node, ast.Match):
            for case in node.cases:
                values = [p.value for p in ast.walk(case.pattern) if isinstance(p, ast.MatchValue)]
                if any(_named(v) for v in values) and _ABOUT_A_PROVIDER.search(ast.unparse(node.subject)):
                    yield case.pattern.lineno
            continue
        else:
            continue
        named = [o for o in operands if _named(o)]
        others = " ".join(ast.unparse(o) for o in operands if not _named(o))
        if named and _ABOUT_A_PROVIDER.search(others):
            yield lineno


def found(package: Path = PACKAGE, own: Path = OWN) -> list[str]:
    return [
        f"{path.relative_to(package.parent)}:{line}"
        for path in sorted(package.rglob("*.py"))
        if not path.is_relative_to(own)
        for line in sorted(comparisons(path.read_text()))
    ]


def test_every_registered_provider_is_declared_once() -> None:
    assert set(providers.REGISTRY) == NAMES
    assert all(providers.REGISTRY[name].provider is PROVIDERS[name] for name in NAMES)


def _choices(schema: dict[str, Any]) -> set[str]:
    """The strings a property's JSON schema allows, however deep in anyOf (Optional)."""
    return set(schema.get("enum", ())).union(*(_choices(s) for s in schema.get("anyOf", ())))


@pytest.mark.parametrize(
    ("kind", "offered"),
    [
        ("LoraTraining", providers.TRAINERS),
        ("ImageGeneration", providers.IMAGE_GENERATORS),
        ("LoraEvaluation", providers.IMAGE_GENERATORS),
        ("Transcription", providers.TRANSCRIBERS),
        ("VideoGeneration", providers.VIDEO_GENERATORS),
    ],
)
def test_each_kind_offers_the_providers_that_make_it(kind: str, offered: tuple[str, ...]) -> None:
    assert _choices(KINDS[kind].spec.model_json_schema()["properties"]["provider"]) == set(offered)


def test_no_provider_name_is_compared_outside_providers() -> None:
    assert found() == [], (
        "a provider's name is compared outside providers/: ask its entry instead "
        "(api/providers.py's provider_entry(name).own_gpus, .placeholders, ...), or what its outputs carry"
    )


# each form of comparison, and the line it is found on
PLANTED = {
    "==": ('if spec.provider == "cluster":\n    pass\n', 1),
    "!= on the left": ('ok = "fal" != provider.name\n', 1),
    "in a tuple": ('ok = name in ("offline", "fal")\n', 1),
    "not in a set": ('ok = name not in {"assemblyai"}\n', 1),
    "a tuple compared": ('ok = (provider, unit) == ("cluster", "gpu-hour")\n', 1),
    "match": ('match name:\n    case "offline":\n        pass\n', 2),
}


@pytest.mark.parametrize("form", list(PLANTED))
def test_the_finder_catches(form: str, tmp_path: Path) -> None:
    source, line = PLANTED[form]
    package = tmp_path / "contentgen"
    (package / "providers").mkdir(parents=True)
    (package / "pipeline").mkdir()
    (package / "pipeline" / "planted.py").write_text(source)
    (package / "providers" / "allowed.py").write_text(source)  # providers/ own their names
    assert found(package, package / "providers") == [f"contentgen/pipeline/planted.py:{line}"]


def test_the_finder_leaves_names_used_as_data_alone() -> None:
    source = (
        'CLUSTER = Provider("cluster")\nitems = {"fal": 1}\nkind == "Job"\nf(provider="offline")\n'
        'where = "nearby" if self.room == "cluster" else "far"\n'
    )
    assert list(comparisons(source)) == []


def listings(source: str) -> Iterator[int]:
    """The lines of `source` that spell the providers as a Literal of their names (a copy of the
    list api/providers.py declares)."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Subscript) and ast.unparse(node.value).endswith("Literal"):
            values = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            if all(_named(v) for v in values):  # a room's Literal["cluster", "laptop"] is not one
                yield node.lineno


def test_no_copy_of_the_provider_list_outside_its_declaration() -> None:
    """The `provider` fields' types are api/providers.py's (PictureProvider, TranscriptProvider),
    made from the entries: a new provider is declared once, and the schema reads it (issue 71)."""
    copies = [
        f"{path.relative_to(PACKAGE.parent)}:{line}"
        for path in sorted(PACKAGE.rglob("*.py"))
        if path != PACKAGE / "api" / "providers.py"
        for line in listings(path.read_text())
    ]
    assert copies == [], "a Literal of provider names: use api/providers.py's PictureProvider and the like"
    assert list(listings('p: Literal["fal", "offline"] = "fal"\n')) == [1]  # the finder finds one
    assert list(listings('m: Literal["flux-dev"] = "flux-dev"\n')) == []
    assert list(listings('r: Literal["cluster", "laptop"] = "laptop"\n')) == []
