"""LoraEvaluation in the controller: its runs evaluate a LoRA version's likeness (the
LikenessEvaluated gate; a stored baseline left out of its estimate)."""

from __future__ import annotations

from ._base import ControllerKind

KIND = ControllerKind("LoraEvaluation", evaluates_likeness=True)
