"""Kind registries: a package whose modules (those not starting with _) each declare one kind as
`KIND`, so that adding a kind to a layer is adding one module to its package (catalog/kinds,
pipeline/kinds)."""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Iterable
from typing import Protocol, TypeVar


class Declaration(Protocol):
    @property
    def kind(self) -> str: ...


D = TypeVar("D", bound=Declaration)


class UnknownKind(ValueError):
    """A kind that a layer's registry has no declaration of."""


def declared(package: str, path: Iterable[str], declaration: type[D]) -> dict[str, D]:
    """Every kind the modules of `package` (at `path`) declare, by kind name."""
    found: dict[str, D] = {}
    for module in sorted(m.name for m in pkgutil.iter_modules(path) if not m.name.startswith("_")):
        made = declaration_in(f"{package}.{module}", declaration)
        if made.kind in found:
            raise TypeError(f"{package}.{module}: kind {made.kind!r} is declared twice")
        found[made.kind] = made
    return found


def declaration_in(module: str, declaration: type[D]) -> D:
    """The `KIND` that `module` sets (imported); TypeError where it sets none of `declaration`'s type."""
    made = getattr(importlib.import_module(module), "KIND", None)
    if not isinstance(made, declaration):
        raise TypeError(f"{module} declares no KIND: set KIND = {declaration.__name__}(...) in it")
    return made


def lookup(registry: dict[str, D], kind: str, package: str) -> D:
    """`kind`'s declaration in `registry`; UnknownKind when no module of `package` declares it
    (never another kind's)."""
    try:
        return registry[kind]
    except KeyError:
        raise UnknownKind(
            f"kind {kind!r} is not declared in {package}: add a module for it there"
            f" (known: {', '.join(sorted(registry))})"
        ) from None
