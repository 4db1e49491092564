"""Haiku's run: three lines about the spec's season, stored under the run's version."""

from __future__ import annotations

from contentgen.api import RunResult
from contentgen.pipeline.context import RunContext
from contentgen.pipeline.kinds import PipelineKind
from contentgen.pipeline.progress import Stages
from contentgen.store import keys

from .api import KIND as API

LINES = {
    "spring": "an old silent pond / a frog jumps into the pond / splash! silence again",
    "summer": "the light of a candle / is transferred to another candle / spring twilight",
    "autumn": "on a withered branch / a crow has alighted / nightfall in autumn",
    "winter": "the first cold shower / even the monkey seems to want / a little coat of straw",
}
STAGES = Stages(("write", 1))


def run(ctx: RunContext) -> RunResult:
    snap = ctx.snapshot
    with ctx.stage(STAGES, "write"):
        text = "\n".join(LINES[str(snap.spec["season"])].split(" / ")) + "\n"
        [root] = keys.version_roots(API.catalog_type, snap.owner, snap.uid, snap.version)
        written = ctx.store.put_once_bytes(f"{root}haiku.txt", text.encode(), "text/plain; charset=utf-8")
    return RunResult(kind=snap.kind, provider=ctx.provider, placeholder=True, artifacts=[written])


KIND = PipelineKind("Haiku", run=run)
