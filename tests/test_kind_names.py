"""Kinds are seams, not switches: a kind's name and catalog type are spelled only where the kind
is declared (each layer's kinds/ folder: api/kinds/, pricing/kinds/, catalog/kinds/,
pipeline/kinds/, controller/kinds/, httpapi/kinds/; Notification's own api/notification.py), and
every kind the API knows is declared in each registry. Code elsewhere that means one kind names
its declaration (`LORA_TRAINING.kind`, `.catalog_type`, its pricing's `.item`). (The CLI has no
kind facts of its own: it reads the API's models and the catalog's registry.)

Spelled: every string constant equal to a kind name or a catalog type, by the AST, wherever it
stands (a call's argument, a default, a constant, a dict's key or value).

The layers not converted yet keep an allowance, file by file: how many kind-name comparisons each
still has. It is a ratchet: a comparison beyond a file's allowance fails (a file that is not listed
is allowed none), and an allowance above what its file has fails too, so that it is lowered as the
comparisons go (a converted file leaves the list). Counted: a string constant equal to a kind name
or a catalog type on either side of ==, !=, is, is not; in an in / not in over a tuple, list or set
literal; a case pattern; a dict literal's key, a subscript, a `.get()`: a table keyed by kind is a
switch too."""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest

from contentgen.api import KINDS
from contentgen.api.kinds import CATALOG_TYPES
from contentgen.api.notification import KIND as NOTIFICATION
from contentgen.api.registry import UnknownKind
from contentgen.catalog.document import summarize
from contentgen.catalog.kinds import CATALOG_KINDS, catalog_kind
from contentgen.controller.kinds import CONTROLLER_KINDS, controller_kind
from contentgen.httpapi.kinds import HTTP_KINDS, http_kind
from contentgen.pipeline.kinds import PIPELINE_KINDS, pipeline_kind
from contentgen.pricing import PRICING_KINDS, pricing_kind
from scripts.structure import compared, keyed
from tests.conftest import ROOT

PACKAGE = ROOT / "operator" / "contentgen"
KIND_NAMES = frozenset({*KINDS, NOTIFICATION, *CATALOG_TYPES})
REGISTRIES = (
    "api/kinds/",
    "api/registry.py",
    "pricing/kinds/",
    "catalog/kinds/",
    "pipeline/kinds/",
    "controller/kinds/",
    "httpapi/kinds/",
)

# Where a kind is declared: its name is spelled there (Notification is the operator's own kind).
DECLARED = (*REGISTRIES, "api/notification.py")

# Comparisons of kind names left in the layers not converted yet: only ever lowered.
ALLOWANCE: dict[str, int] = {}


def comparisons(source: str) -> int:
    """How many kind names `source` compares or looks up (see the module docstring)."""
    tree = ast.parse(source)
    return compared(tree, KIND_NAMES) + keyed(tree, KIND_NAMES)


def counts(package: Path) -> dict[str, int]:
    """Kind-name comparisons per module of `package` outside the registries, where there are any."""
    found: dict[str, int] = {}
    for path in sorted(package.rglob("*.py")):
        name = path.relative_to(package).as_posix()
        if name.startswith(REGISTRIES):
            continue
        n = comparisons(path.read_text(encoding="utf-8"))
        if n:
            found[name] = n
    return found


def beyond(found: dict[str, int], allowance: dict[str, int]) -> dict[str, str]:
    """The modules that compare kind names more often than their allowance lets them."""
    return {f: f"{n} (allowed {allowance.get(f, 0)})" for f, n in found.items() if n > allowance.get(f, 0)}


def above(found: dict[str, int], allowance: dict[str, int]) -> dict[str, str]:
    """The allowances that are more than their module uses: to be lowered."""
    return {f: f"allowed {n}, has {found.get(f, 0)}" for f, n in allowance.items() if found.get(f, 0) < n}


@pytest.fixture(scope="module")
def found() -> dict[str, int]:
    return counts(PACKAGE)


def test_no_kind_name_comparison_beyond_the_allowance(found: dict[str, int]) -> None:
    over = beyond(found, ALLOWANCE)
    assert not over, (
        f"kind names compared outside the kind registries: {over}; ask the kind's registry "
        "(api/kinds, pricing/kinds, catalog/kinds, pipeline/kinds, controller/kinds, httpapi/kinds) instead"
    )


def test_the_allowance_is_lowered_as_comparisons_go(found: dict[str, int]) -> None:
    stale = above(found, ALLOWANCE)
    assert not stale, f"lower these allowances in tests/test_kind_names.py to what the files have: {stale}"


def test_the_converted_modules_compare_no_kind_name(found: dict[str, int]) -> None:
    converted = (
        "catalog/document.py",
        "catalog/versions.py",
        "pipeline/runner.py",
        "cli/run.py",
        "cli/sharing.py",
        "controller/handlers.py",
        "controller/decide.py",
        "controller/reconciler.py",
        "controller/relist.py",
        "httpapi/creators.py",
        "httpapi/manifests.py",
        "httpapi/routes/assets.py",
    )
    assert {f: n for f, n in found.items() if f in converted} == {}
    assert not set(converted) & set(ALLOWANCE)


def test_every_api_kind_is_declared_in_every_registry() -> None:
    assert set(CATALOG_KINDS) == set(KINDS), "catalog/kinds/ declares other kinds than api/kinds/"
    assert set(PIPELINE_KINDS) == set(KINDS), "pipeline/kinds/ declares other kinds than api/kinds/"
    assert set(CONTROLLER_KINDS) == set(KINDS), "controller/kinds/ declares other kinds than api/kinds/"
    assert set(HTTP_KINDS) == set(KINDS), "httpapi/kinds/ declares other kinds than api/kinds/"
    assert set(PRICING_KINDS) == set(KINDS), "pricing/kinds/ prices other kinds than api/kinds/"


def test_an_undeclared_kind_is_an_error_not_another_kinds_fields() -> None:
    doc = {"kind": "Sculpture", "versions": [], "latestRun": {"phase": "Pending"}, "spec": {}}
    with pytest.raises(
        UnknownKind, match=re.escape("'Sculpture' is not declared in contentgen.catalog.kinds")
    ):
        summarize(doc)
    assert "transcript" not in doc
    with pytest.raises(
        UnknownKind, match=re.escape("'Sculpture' is not declared in contentgen.pipeline.kinds")
    ):
        pipeline_kind("Sculpture")
    with pytest.raises(
        UnknownKind, match=re.escape("'Sculpture' is not declared in contentgen.catalog.kinds")
    ):
        catalog_kind("Sculpture")
    with pytest.raises(
        UnknownKind, match=re.escape("'Sculpture' is not declared in contentgen.controller.kinds")
    ):
        controller_kind("Sculpture")
    with pytest.raises(
        UnknownKind, match=re.escape("'Sculpture' is not declared in contentgen.httpapi.kinds")
    ):
        http_kind("Sculpture")
    with pytest.raises(UnknownKind, match=re.escape("kind 'Sculpture' has no pricing")):
        pricing_kind("Sculpture")


# --- the guard catches what it is there to catch -------------------------------------------------

COMPARED = {
    'kind == "LoraTraining"': 1,
    '"ImageGeneration" != doc["kind"]': 1,
    'kind in ("ImageGeneration", "VideoGeneration")': 2,
    'kind not in ["Transcription"]': 1,
    'kind in {"LoraEvaluation", "other"}': 1,
    'content.get("kind") == "Notification"': 1,
    'a == b == "LoraTraining"': 1,
    'match k:\n    case "VideoGeneration":\n        pass\n    case "Transcription" | "x":\n        pass': 2,
    'catalog_type == "lora-training"': 1,
    'table = {"ImageGeneration": 1, "video-generation": 2, "x": 3}': 2,
    'KINDS["LoraTraining"].plural': 1,
    'by_type.get("transcription")': 1,
}
NOT_COMPARED = [
    'KIND = "LoraTraining"',
    'f("Transcription")',
    "kind in KINDS",
    'kind == "Lora"',
    '"LoraTraining" in text',
    'message = f"a {kind} is not a LoraTraining"',
]


@pytest.mark.parametrize("source", COMPARED)
def test_a_comparison_is_counted(source: str) -> None:
    assert comparisons(source) == COMPARED[source]


@pytest.mark.parametrize("source", NOT_COMPARED)
def test_a_declaration_or_a_mention_is_not(source: str) -> None:
    assert comparisons(source) == 0


def test_a_planted_comparison_fails_the_guard(tmp_path: Path, found: dict[str, int]) -> None:
    copy = tmp_path / "contentgen"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / "catalog" / "document.py").open("a", encoding="utf-8") as module:
        module.write('\n\ndef is_lora(doc):\n    return doc["kind"] == "LoraTraining"\n')
    with (copy / "catalog" / "migrate.py").open("a", encoding="utf-8") as module:
        module.write('\n\ndef is_video(kind):\n    return kind in ("VideoGeneration",)\n')
    (copy / "newmodule.py").write_text(
        'def f(kind):\n    match kind:\n        case "Transcription":\n            pass\n'
    )
    # a comparison inside a registry is its business
    (copy / "catalog" / "kinds" / "lora_training.py").write_text('X = "a" == "LoraTraining"\n')
    planted = counts(copy)
    migrate = ALLOWANCE.get("catalog/migrate.py", 0)  # what it has (test_the_allowance_is_lowered_...)
    assert beyond(planted, ALLOWANCE) == {
        **beyond(found, ALLOWANCE),
        "catalog/document.py": "1 (allowed 0)",
        "catalog/migrate.py": f"{migrate + 1} (allowed {migrate})",
        "newmodule.py": "1 (allowed 0)",
    }
    assert "catalog/kinds/lora_training.py" not in planted


# --- every spelling: a kind's name written only where the kind is declared -----------------------


def spelled(source: str) -> int:
    """How many string constants of `source` are a kind's name or catalog type."""
    return sum(
        1
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in KIND_NAMES
    )


def spellings(package: Path) -> dict[str, int]:
    """Kind names spelled per module of `package` outside where the kinds are declared."""
    found: dict[str, int] = {}
    for path in sorted(package.rglob("*.py")):
        name = path.relative_to(package).as_posix()
        if not name.startswith(DECLARED) and (n := spelled(path.read_text(encoding="utf-8"))):
            found[name] = n
    return found


def test_kind_names_are_spelled_only_where_the_kinds_are_declared() -> None:
    assert spellings(PACKAGE) == {}, (
        "a kind's name or catalog type spelled outside its declarations: name the declaration instead "
        "(api/kinds/<kind>.py's KIND: .kind, .catalog_type; pricing/kinds/<kind>.py's KIND: .item)"
    )


@pytest.mark.parametrize(
    ("source", "count"),
    [
        ('KIND = "LoraTraining"', 1),
        ('f("Transcription")', 1),
        ('def f(kind="image-generation"): ...', 1),
        ('usage = gpu_usage(p, "video-generation", 1.0)', 1),
        ('query = {"kind": "LoraEvaluation", "owner": o}', 1),
        ('message = f"a {kind} is not a LoraTraining"', 0),
        ('kind == "Lora"', 0),
        ("kind == LORA_TRAINING.kind", 0),
    ],
)
def test_every_spelling_is_counted(source: str, count: int) -> None:
    assert spelled(source) == count


def test_a_planted_spelling_fails_the_guard(tmp_path: Path) -> None:
    copy = tmp_path / "contentgen"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    with (copy / "pipeline" / "images.py").open("a", encoding="utf-8") as module:
        module.write('\nITEM = "image-generation"\n')
    with (copy / "pricing" / "kinds" / "image_generation.py").open("a", encoding="utf-8") as module:
        module.write('\nITEM = "image-generation"\n')  # where the kind is declared: its business
    assert spellings(copy) == {"pipeline/images.py": 1}
