"""What the pipeline knows of one kind, declared once in the kind's own module of this package."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from contentgen.api import RunResult, SpecSnapshot

from ..context import RunContext

# run(ctx): the kind's run. Each kind's module imports its flow on use: every flow pulls in its
# own heavy dependencies.
Run = Callable[[RunContext], RunResult]
# lineage(result, snapshot): `result` naming where its outputs came from.
Lineage = Callable[[RunResult, SpecSnapshot], RunResult]


def unchanged(result: RunResult, _: SpecSnapshot) -> RunResult:
    return result


@dataclass(frozen=True)
class PipelineKind:
    kind: str
    run: Run
    lineage: Lineage = unchanged
