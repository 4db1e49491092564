"""What the HTTP API knows of one kind, declared once in the kind's own module of this package."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

# runs_here(): the providers this process's runs of the kind use (providers/__init__.py: what
# `contentgen run` runs); a function, as the providers' module is imported on use
RunsHere = Callable[[], tuple[str, ...]]


@dataclass(frozen=True)
class HttpKind:
    kind: str
    # a resource created without a name is named `prefix-` and six random hex digits
    prefix: str
    runs_here: RunsHere
    # a re-run takes a new random seed, or a given one
    seeded: bool = False
    # the field a refusal of the spec's references names
    references: str = "spec.loras"
