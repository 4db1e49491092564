"""contentgen.kinds.add: a kind package's layers into every registry at once, or none of them."""

from __future__ import annotations

import sys
from dataclasses import replace
from types import ModuleType

import pytest

from contentgen import kinds
from contentgen.api import CATALOG_TYPES, KINDS
from tests.kinds.haiku import api, catalog, controller, httpapi, pipeline, pricing

LAYER_MODULES = {
    "api": api,
    "pricing": pricing,
    "pipeline": pipeline,
    "catalog": catalog,
    "controller": controller,
    "httpapi": httpapi,
}


def _package(monkeypatch: pytest.MonkeyPatch, name: str, **modules: ModuleType) -> ModuleType:
    """A kind package `name` of `modules` (by layer), importable until the test ends."""
    package = ModuleType(name)
    package.__path__ = []
    monkeypatch.setitem(sys.modules, name, package)
    for layer, module in modules.items():
        monkeypatch.setitem(sys.modules, f"{name}.{layer}", module)
    return package


def _registries() -> list[dict[str, object]]:
    return [dict(layer.registry) for layer in kinds.LAYERS] + [dict(CATALOG_TYPES)]


def test_a_kind_package_is_added_to_every_layer_by_one_call(monkeypatch: pytest.MonkeyPatch) -> None:
    package = _package(monkeypatch, "plugin_haiku", **LAYER_MODULES)
    added = kinds.add(package, monkeypatch.setitem)
    assert added is api.KIND
    for layer in kinds.LAYERS:
        assert layer.registry["Haiku"] is LAYER_MODULES[layer.module].KIND
    assert CATALOG_TYPES[api.KIND.catalog_type] is api.KIND


def test_a_package_missing_a_layer_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    partial = {k: v for k, v in LAYER_MODULES.items() if k != "httpapi"}
    package = _package(monkeypatch, "plugin_partial", **partial)
    before = _registries()
    with pytest.raises(TypeError, match=r"plugin_partial has no httpapi module: a kind declares every layer"):
        kinds.add(package, monkeypatch.setitem)
    assert _registries() == before


def test_a_layer_declaring_another_kind_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    other = ModuleType("other_pricing")
    other.KIND = replace(pricing.KIND, kind="Limerick")  # type: ignore[attr-defined]
    package = _package(monkeypatch, "plugin_mixed", **{**LAYER_MODULES, "pricing": other})
    before = _registries()
    with pytest.raises(TypeError, match=r"plugin_mixed.pricing declares kind 'Limerick' where .* 'Haiku'"):
        kinds.add(package, monkeypatch.setitem)
    assert _registries() == before


def test_a_module_without_its_declaration_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    empty = ModuleType("empty_catalog")
    package = _package(monkeypatch, "plugin_empty", **{**LAYER_MODULES, "catalog": empty})
    with pytest.raises(TypeError, match=r"plugin_empty.catalog declares no KIND: set KIND = CatalogKind"):
        kinds.add(package, monkeypatch.setitem)


def test_a_kind_is_added_once_and_never_over_a_product_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    package = _package(monkeypatch, "plugin_twice", **LAYER_MODULES)
    kinds.add(package, monkeypatch.setitem)
    with pytest.raises(TypeError, match=r"kind 'Haiku' is declared already"):
        kinds.add(package, monkeypatch.setitem)
    clash = ModuleType("clash_api")
    clash.KIND = KINDS["LoraTraining"]  # type: ignore[attr-defined]
    others = {layer: ModuleType(f"clash_{layer}") for layer in LAYER_MODULES if layer != "api"}
    for layer, module in others.items():
        module.KIND = replace(LAYER_MODULES[layer].KIND, kind="LoraTraining")  # type: ignore[attr-defined]
    before = _registries()
    with pytest.raises(TypeError, match=r"kind 'LoraTraining' is declared already \(api, pricing, pipeline"):
        kinds.add(_package(monkeypatch, "plugin_clash", api=clash, **others), monkeypatch.setitem)
    assert _registries() == before
