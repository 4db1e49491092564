"""ImageGeneration in the controller: a VideoGeneration's imageRef names it (the runs animating
its pictures wait for it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._base import ControllerKind, Waiters

if TYPE_CHECKING:
    from ..state import Operator


def waiters(op: Operator) -> Waiters:
    """The VideoGenerations waiting for its pictures."""
    return op.image_waiters


KIND = ControllerKind("ImageGeneration", waiters=waiters)
