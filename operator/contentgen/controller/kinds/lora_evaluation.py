"""LoraEvaluation in the controller: nothing beyond the lifecycle. That its runs evaluate a LoRA
version's likeness (the LikenessEvaluated gate; a stored baseline left out of its estimate) is its
API declaration's (Kind.likeness_plan)."""

from __future__ import annotations

from ._base import ControllerKind

KIND = ControllerKind("LoraEvaluation")
