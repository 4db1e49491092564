"""The pipeline's own check of the addresses a spec names (store/access.py), before it fetches or
presigns anything: a resource made before the admission policy, or by a cluster administrator,
still cannot read another owner's outputs. What another owner shared with the run's owner comes
with the snapshot (`SpecSnapshot.shared`, as the operator or `contentgen run` found it)."""

from __future__ import annotations

import logging

from contentgen.api import SpecSnapshot
from contentgen.api.inputs import inputs
from contentgen.api.sharing import Grant
from contentgen.errors import PermanentError
from contentgen.store import ObjectStore
from contentgen.store.access import REASON, Crossing, crossings, first_refusal

log = logging.getLogger(__name__)


def checked_inputs(snap: SpecSnapshot, store: ObjectStore) -> list[Crossing]:
    """The spec's inputs that name other owners' outputs, each shared with its owner; an
    InputNotShared failure (one line, the admission policy's words) for the first that is not."""

    def grants_of(uid: str) -> list[Grant]:
        return [Grant(f"owner:{snap.owner}", s.access) for s in snap.shared if s.uid == uid]

    model = snap.kind_info.spec
    crossed = crossings(inputs(model, snap.spec), snap.owner, store.place(), grants_of)
    refused = first_refusal(crossed)
    if refused is not None:
        log.warning(
            "refused %s of owner %s naming %s (owner %s): not shared for %s",
            refused.input.field,
            snap.owner,
            refused.holder.named,
            refused.holder.owner or "-",
            refused.needs,
        )
        raise PermanentError(refused.refusal, reason=REASON)
    for used in crossed:
        log.info(
            "%s of owner %s uses %s of owner %s, shared for %s",
            used.input.field,
            snap.owner,
            used.holder.named,
            used.holder.owner,
            used.needs,
        )
    return crossed
