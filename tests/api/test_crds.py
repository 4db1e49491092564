"""The generated CRDs: committed, structural, accepted as apiextensions.k8s.io/v1, cost-bounded."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from contentgen.api import CATEGORY, GROUP, KINDS, VERSION
from contentgen.api.crd import crd, rendered_crds
from contentgen.api.schema import structural_problems
from contentgen.cli.main import main
from tests.conftest import ROOT

KUBERNETES_VERSION = "1.33.0"


def schema_of(kind_name: str) -> dict[str, Any]:
    return crd(KINDS[kind_name])["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_committed_crds_match_the_models() -> None:
    committed = {p.name: p.read_text() for p in (ROOT / "crds").glob("*.yaml")}
    assert committed == rendered_crds(), "crds/ is stale: run `make generate`"


def test_crds_command_reproduces_crds_dir(tmp_path: Path) -> None:
    assert main(["crds", "--out", str(tmp_path)]) == 0
    generated = {p.name: p.read_text() for p in tmp_path.iterdir()}
    committed = {p.name: p.read_text() for p in (ROOT / "crds").glob("*.yaml")}
    assert generated == committed


def test_crds_command_prints_all_to_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["crds"]) == 0
    docs = list(yaml.safe_load_all(capsys.readouterr().out))
    expected = [k.crd_name for k in KINDS.values()] + ["notifications.contentgen.io"]
    assert sorted(d["metadata"]["name"] for d in docs) == sorted(expected)
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("kind_name", list(KINDS))
def test_crd_is_valid_apiextensions_v1(kind_name: str) -> None:
    kubernetes_validate.validate(crd(KINDS[kind_name]), KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("kind_name", list(KINDS))
def test_schema_is_structural(kind_name: str) -> None:
    assert structural_problems(schema_of(kind_name)) == []


def test_structural_check_catches_untyped_nodes() -> None:
    bad = {
        "type": "object",
        "properties": {"a": {"description": "no type"}, "b": {"anyOf": [{"type": "string"}]}},
    }
    problems = structural_problems(bad)
    assert ".a: no type" in problems
    assert any(".b: anyOf" in p for p in problems)


def _nodes(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = [(path, schema)]
    for name, sub in schema.get("properties", {}).items():
        out += _nodes(sub, f"{path}.{name}")
    if "items" in schema:
        out += _nodes(schema["items"], f"{path}[*]")
    return out


@pytest.mark.parametrize("kind_name", list(KINDS))
def test_cel_rules_are_cost_bounded(kind_name: str) -> None:
    """The API server refuses rules whose worst-case cost it cannot bound: every string a rule
    reads has maxLength and every list on the way to a rule has maxItems."""
    for path, node in _nodes(schema_of(kind_name)):
        if not node.get("x-kubernetes-validations"):
            continue
        if node.get("type") == "string":
            assert "maxLength" in node, f"{path}: string with CEL rules needs maxLength"
        for rule in node["x-kubernetes-validations"]:
            assert rule["message"], path
            assert "self" in rule["rule"], path
    for path, node in _nodes(schema_of(kind_name)):
        if node.get("type") == "array" and _has_rules(node["items"]):
            assert "maxItems" in node, f"{path}: list whose items have CEL rules needs maxItems"


def _has_rules(schema: dict[str, Any]) -> bool:
    return any(node.get("x-kubernetes-validations") for _, node in _nodes(schema))


@pytest.mark.parametrize("kind_name", list(KINDS))
def test_names_and_printer_columns(kind_name: str) -> None:
    kind = KINDS[kind_name]
    spec = crd(kind)["spec"]
    assert spec["group"] == GROUP
    assert spec["scope"] == "Namespaced"
    assert (
        spec["names"]["plural"]
        == {
            "LoraTraining": "loratrainings",
            "ImageGeneration": "imagegenerations",
            "Transcription": "transcriptions",
            "LoraEvaluation": "loraevaluations",
            "VideoGeneration": "videogenerations",
        }[kind_name]
    )
    assert CATEGORY in spec["names"]["categories"]
    assert spec["names"]["shortNames"]
    version = spec["versions"][0]
    assert version["name"] == VERSION and version["served"] and version["storage"]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns["Phase"] == ".status.phase"
    assert columns["Progress"] == ".status.progress"
    assert columns["Age"] == ".metadata.creationTimestamp"
    specific = {
        "LoraTraining": ["Trigger"],
        "ImageGeneration": ["Model"],
        "Transcription": ["Words"],
        "LoraEvaluation": ["LoRA", "Version", "Verdict", "Median"],
        "VideoGeneration": ["Model", "Duration"],
    }[kind_name]
    assert set(specific) <= set(columns)
    # every column points at a field the schema has
    for name, json_path in columns.items():
        node = schema_of(kind_name)
        for part in json_path.strip(".").split("."):
            if part == "metadata":
                break
            node = node["properties"][part]
        assert node, name


def test_the_notification_crd_is_structural_valid_and_not_a_kind_of_work() -> None:
    from contentgen.api.notification import notification_crd

    doc = notification_crd()
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    assert structural_problems(doc["spec"]["versions"][0]["schema"]["openAPIV3Schema"]) == []
    assert "Notification" not in KINDS and CATEGORY not in doc["spec"]["names"]["categories"]


def test_short_names_are_unique() -> None:
    names = [n for k in KINDS.values() for n in k.short_names]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("kind_name", list(KINDS))
def test_every_spec_field_is_described(kind_name: str) -> None:
    """`kubectl explain` shows these descriptions; the spec is what users write."""
    spec = schema_of(kind_name)["properties"]["spec"]
    for path, node in _nodes(spec, "spec"):
        if path.endswith("[*]") or (node.get("type") == "object" and path.count(".") > 2):
            continue
        assert node.get("description"), f"{path} has no description"
