"""A kind declared as one package: a module per layer, each setting `KIND` to that layer's
declaration, and `add` putting each into its layer's registry. The product's own kinds are found
by each layer in its own folder (api/kinds, pricing/kinds, pipeline/kinds, catalog/kinds,
controller/kinds, httpapi/kinds); a kind that lives elsewhere (a test's, a plugin's) is one package
of the same modules, added by one call:

    kinds.add(package)                            # for the process
    kinds.add(package, monkeypatch.setitem)       # until a test ends

Above every layer, as the CLI is: it reads each layer's registry and declaration type."""

from __future__ import annotations

import operator
from collections.abc import Callable, MutableMapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from contentgen.api import KINDS, Kind
from contentgen.api.registry import declaration_in
from contentgen.catalog.kinds import CATALOG_KINDS, CatalogKind
from contentgen.controller.kinds import CONTROLLER_KINDS, ControllerKind
from contentgen.httpapi.kinds import HTTP_KINDS, HttpKind
from contentgen.pipeline.kinds import PIPELINE_KINDS, PipelineKind
from contentgen.pricing import PRICING_KINDS, KindPricing

# A registry holds one layer's declarations by kind name; the layers' declarations differ in type.
Registry = MutableMapping[str, Any]
# How a declaration goes into a registry: operator.setitem, or a test's monkeypatch.setitem.
Put = Callable[[Registry, str, Any], None]


@dataclass(frozen=True)
class Layer:
    """A layer's part of a kind: the module of the kind's package that declares it, the
    declaration's type, and the registry it goes into."""

    module: str
    declaration: type
    registry: Registry

    def read(self, package: ModuleType) -> Any:
        """`package`'s declaration for this layer (TypeError naming what is missing)."""
        where = f"{package.__name__}.{self.module}"
        try:
            return declaration_in(where, self.declaration)
        except ModuleNotFoundError as missing:
            if missing.name != where:
                raise
            raise TypeError(
                f"{package.__name__} has no {self.module} module: a kind declares every layer "
                f"({', '.join(layer.module for layer in LAYERS)})"
            ) from None


LAYERS = (
    Layer("api", Kind, KINDS),
    Layer("pricing", KindPricing, PRICING_KINDS),
    Layer("pipeline", PipelineKind, PIPELINE_KINDS),
    Layer("catalog", CatalogKind, CATALOG_KINDS),
    Layer("controller", ControllerKind, CONTROLLER_KINDS),
    Layer("httpapi", HttpKind, HTTP_KINDS),
)


def add(package: ModuleType, put: Put = operator.setitem) -> Kind:
    """The kind `package` declares (a module for each of LAYERS: `package.api`'s KIND,
    `package.pricing`'s, ...) in every layer's registry, by `put(registry, name, declaration)`; its
    API declaration. Every module is read before any registry changes: a package missing a layer,
    declaring another kind in one, or a kind declared already, changes nothing (TypeError naming
    the module and its fix)."""
    declared = [(layer, layer.read(package)) for layer in LAYERS]
    api: Kind = declared[0][1]
    for layer, declaration in declared:
        if declaration.kind != api.kind:
            raise TypeError(
                f"{package.__name__}.{layer.module} declares kind {declaration.kind!r} where "
                f"{package.__name__}.api declares {api.kind!r}: one package is one kind"
            )
    taken = [layer.module for layer in LAYERS if api.kind in layer.registry]
    if taken:
        raise TypeError(f"kind {api.kind!r} is declared already ({', '.join(taken)}): a kind is added once")
    for layer, declaration in declared:
        put(layer.registry, declaration.kind, declaration)
    return api  # in api.CATALOG_TYPES too, which is read from KINDS
