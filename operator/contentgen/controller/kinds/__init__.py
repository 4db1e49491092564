"""The controller's kinds: each module of this package (those not starting with _) declares one
kind as `KIND`, a ControllerKind: which runs wait for its resources, the indexes it is kept in,
what its status says beyond the lifecycle, and what refuses its spec before its references are
waited for. Adding a kind to the controller is adding its module here."""

from __future__ import annotations

from contentgen.api.registry import UnknownKind, declared, lookup

from ._base import ControllerKind

CONTROLLER_KINDS: dict[str, ControllerKind] = declared(__name__, __path__, ControllerKind)


def controller_kind(kind: str) -> ControllerKind:
    """The declaration of `kind`; UnknownKind for a kind no module here declares."""
    return lookup(CONTROLLER_KINDS, kind, __name__)


__all__ = ["CONTROLLER_KINDS", "ControllerKind", "UnknownKind", "controller_kind"]
