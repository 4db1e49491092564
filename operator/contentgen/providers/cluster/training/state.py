"""A training's stored states, whatever its family: each checkpoint's state (every expert's LoRA and
optimizer, the generator that draws its samples, its losses and routing, the checkpoints before
it, the time it took) written once as `step-NNNNNN.pt` beside its LoRA files, the newest read back
by a retried process (its own: the same fingerprint) or by a continued training (another version's:
what it keeps and may change, providers/continuing.py).

A state's keys are the FLUX trainer's (`lora`, `optimizer`), a second expert's beside them with its
name (`lora_low`, `optimizer_low`: Wan 2.2's low-noise expert), so states stored before the
framework was one are read as they are."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from contentgen.errors import InvalidInput, PermanentError
from contentgen.providers import continuing
from contentgen.providers.base import CheckpointFiles, Continued

from .adapters import Expert
from .plan import Plan

_STATE = re.compile(r"^step-(\d{6})\.pt$")


def lora_name(step: int) -> str:
    return f"step-{step:06d}.safetensors"


def state_name(step: int) -> str:
    return f"step-{step:06d}.pt"


def latest_state(names: Sequence[str]) -> tuple[int, str] | None:
    """The newest stored state among a checkpoint store's names (pure)."""
    found = [(int(m.group(1)), n) for n in names if (m := _STATE.match(n))]
    return max(found) if found else None


@dataclass(frozen=True)
class Saved:
    """A stored checkpoint: its step, its LoRA file's URI (the first expert's), its state's, and a
    pair's second expert's file (`more`)."""

    step: int
    lora: str
    state: str
    more: tuple[str, ...] = ()


@dataclass
class Done:
    """What the steps before this process did: the last of them, the seconds they took, the
    checkpoints they saved, their losses and which expert each sample trained."""

    start: int = 0
    before: float = 0.0
    saved: list[Saved] = field(default_factory=list)
    losses: list[tuple[int, float]] = field(default_factory=list)
    routed: list[tuple[int, float, str]] = field(default_factory=list)  # (step, timestep, expert)


def key(expert: int, names: Sequence[str], what: str) -> str:
    """A state's key for the `expert`-th expert's `what` (lora, optimizer): the first's bare."""
    return what if expert == 0 else f"{what}_{names[expert]}"


def stored_state(
    files: CheckpointFiles, work_dir: Path, identity: str
) -> tuple[tuple[int, str] | None, dict[str, Any] | None]:
    """The latest stored training state and its contents, read first: the plan it was trained
    with is the plan it goes on with. Refused when it is another dataset's, model's or plan's."""
    found = latest_state(files.names())
    if found is None:
        return None, None
    state = read_state(files, work_dir, found[1])
    if state["fingerprint"] != identity:
        raise PermanentError(
            f"the stored training state {found[1]} belongs to another dataset, model or plan: delete the "
            "version's checkpoints/ to start over",
            reason="CheckpointUnreadable",
        )
    return found, state


def read_state(files: CheckpointFiles, work_dir: Path, name: str) -> dict[str, Any]:
    path = files.get(name, work_dir / f"read-{name}")
    state: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=True)
    path.unlink()
    return state


def continued_state(continued: Continued) -> tuple[int, str]:
    """The state of the continued version a training goes on from: the step asked, or its last;
    refused in one line where the version kept none."""
    names = continued.files.names()
    field_name = f"training.continueFrom: version {continued.version}"
    if continued.step is None:
        found = latest_state(names)
        if found is None:
            raise InvalidInput(
                f"{field_name} kept no training state to go on from (trained on another provider, or "
                "before states were kept)"
            )
        return found
    if state_name(continued.step) not in names:
        stored = sorted(int(m.group(1)) for n in names if (m := _STATE.match(n)))
        kept = ", ".join(str(s) for s in stored) or "none"
        raise InvalidInput(f"{field_name} has no stored state at step {continued.step} (kept: {kept})")
    return continued.step, state_name(continued.step)


def spec_terms(plan: Mapping[str, Any], model: str, memory: str = "") -> dict[str, Any]:
    """A loop plan's settings (a stored state's `plan`, or this training's) by the spec's names, as
    providers/continuing.py compares them."""
    names = {
        "rank": "rank",
        "targets": "loraTargets",
        "optimizer": "optimizer",
        "learning_rate": "learningRate",
        "max_grad_norm": "maxGradNorm",
        "timestep_sampling": "timestepSampling",
        "guidance": "guidance",
        "resolution": "resolution",
        "batch": "batchSize",
    }
    said = {names[k]: v for k, v in plan.items() if k in names}
    return {**said, **({"baseModel": model} if model else {}), **({"memoryPlan": memory} if memory else {})}


def went_on_terms(
    continued: Continued, step: int, state: Mapping[str, Any], model: str, plan: Plan
) -> continuing.Terms:
    """What a continue from `state` keeps and changes, refused in one line where it cannot go on
    (another base model, rank, targets or optimizer; the memory plan is the state's, which the
    chooser takes). A state kept before its plan was (no `plan`) is read by its LoRA's shapes."""
    was = spec_terms(state.get("plan") or {}, str(state.get("model") or ""))
    if not state.get("plan"):
        ranks = {int(v.shape[0]) for k, v in state["lora"].items() if "lora_A" in k}
        if len(ranks) == 1:
            was["rank"] = ranks.pop()
    now = spec_terms(plan.stated(), model)
    terms = continuing.compare(was, now)
    continuing.check(f"training.continueFrom: version {continued.version}'s step {step}", terms)
    return terms


def restored(
    state: Mapping[str, Any], experts: Sequence[Expert], generator: torch.Generator, step: int, *, own: bool
) -> Done:
    """A stored state put back: each expert's LoRA and optimizer (the optimizer at this plan's
    learning rate), the generator, the losses and routing; its checkpoints and time where it is this
    training's own (`own`), not another version's. A state whose LoRA does not fit is refused in one
    line."""
    from peft.utils import set_peft_model_state_dict

    names = [e.name for e in experts]
    try:
        for index, expert in enumerate(experts):
            set_peft_model_state_dict(expert.transformer, state[key(index, names, "lora")])
            rates = [group["lr"] for group in expert.optimizer.param_groups]
            expert.optimizer.load_state_dict(state[key(index, names, "optimizer")])
            for group, rate in zip(expert.optimizer.param_groups, rates, strict=True):
                group["lr"] = rate  # the plan's: the state's rate is the continued version's
    except (RuntimeError, ValueError, KeyError) as exc:
        raise InvalidInput(
            f"training.continueFrom: the state of step {step} does not fit this spec's LoRA ({exc}): a "
            "training goes on only with the same base model, rank, loraTargets and optimizer"
        ) from None
    generator.set_state(state["generator"])
    return Done(
        start=step,
        before=float(state.get("seconds", 0.0)) if own else 0.0,
        saved=[Saved(s, lora, at, tuple(more)) for s, lora, at, *more in state["saved"]] if own else [],
        losses=[(int(s), float(v)) for s, v in state.get("losses") or [] if int(s) <= step],
        routed=[(int(s), float(t), str(e)) for s, t, e in state.get("routed") or [] if int(s) <= step],
    )


def kept_state(
    step: int,
    experts: Sequence[Expert],
    loras: Sequence[Mapping[str, torch.Tensor]],
    generator: torch.Generator,
    done: Done,
    about: Mapping[str, Any],
) -> dict[str, Any]:
    """What a checkpoint's state holds (see the module); `about`: its fingerprint, memory plan,
    plan, model and the training's seconds so far."""
    names = [e.name for e in experts]
    tensors: dict[str, Any] = {}
    for index, (expert, lora) in enumerate(zip(experts, loras, strict=True)):
        tensors[key(index, names, "lora")] = lora
        tensors[key(index, names, "optimizer")] = expert.optimizer.state_dict()
    return {
        **about,
        "step": step,
        **tensors,
        "generator": generator.get_state(),
        "saved": [[s.step, s.lora, s.state, *s.more] for s in done.saved],
        "losses": [list(pair) for pair in done.losses],
        "routed": [list(r) for r in done.routed],
    }
