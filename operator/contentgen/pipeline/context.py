"""Everything one run needs, handed to the per-kind flows."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from contentgen.api import SpecSnapshot, StageTiming, UsageLine
from contentgen.api.providers import placeholders
from contentgen.errors import ContentgenError, PermanentError, TransientError
from contentgen.store import ObjectStore

from .fetch import Fetched, fetch
from .live import Live, NoLive
from .progress import Progress, Span, Stages, SubProgress
from .settings import PipelineSettings

SOURCE_FIELD = "source.url"  # what a fetch's errors name, unless told another field

_PAID = (
    "{were} paid for and {are} kept in the provider's checkpoint: the next attempt stores {them} "
    "without paying again"
)
# The offline provider charges nothing and keeps no checkpoint: a retry simply makes them again.
_UNPAID = "{were} made by the offline provider, which charges nothing: the next attempt makes {them} again"


# Failures that say the provider did not bill the call that failed (fal bills successful outputs
# only, AssemblyAI completed transcripts only), or that nothing was sent.
UNBILLED = frozenset(
    {
        "ProviderJobFailed",
        "TranscriptionFailed",
        "MissingCredentials",
        "InvalidInput",
        "SourceRefused",
        "DeviceUnavailable",  # provider cluster: refused before any model was loaded
    }
)


class StoreCheckpoint:
    """A provider checkpoint kept as a small JSON object in the store (temp/{uid}/checkpoints/).

    It holds what a provider needs to never pay twice: the intent to submit, the request id, the
    paid outputs' URLs. A store that cannot be read or written stops the run before the provider
    is called (reading) or before a submit leaves (writing the intent)."""

    def __init__(self, store: ObjectStore, key: str, earlier: str = "") -> None:
        """`earlier`: the name of checkpoints kept per version before versions were per run
        (lora-v2.json): read, when this one does not exist yet, so what was paid then is not
        paid again (the provider's fingerprint still decides whether it applies)."""
        self.store, self.key, self.earlier = store, key, earlier

    @property
    def location(self) -> str:
        """Where it is, for messages that tell how to start over (delete it)."""
        return f"the checkpoint {self.store.uri(self.key)}"

    def _earlier_key(self) -> str | None:
        if not self.earlier:
            return None
        folder = self.key.rpartition("/")[0] + "/"
        named = re.compile(re.escape(folder + self.earlier) + r"-v(\d+)\.json$")
        found = [(int(m.group(1)), i.key) for i in self.store.list(folder) if (m := named.match(i.key))]
        return max(found)[1] if found else None

    def load(self) -> dict[str, Any]:
        if not self.store.exists(self.key):
            earlier = self._earlier_key()
            if earlier is None:
                return {}
            return StoreCheckpoint(self.store, earlier).load()
        try:
            data = json.loads(self.store.get_bytes(self.key))
        except ValueError:
            raise PermanentError(
                f"{self.location} is not JSON; it may hold a paid request's id, so it is not overwritten: "
                "look at it, then delete it to start over",
                reason="CheckpointUnreadable",
            ) from None
        if not isinstance(data, dict):
            raise PermanentError(f"{self.location} is not a JSON object", reason="CheckpointUnreadable")
        return data

    def save(self, data: dict[str, Any]) -> None:
        self.store.put_bytes(self.key, json.dumps(data, sort_keys=True).encode(), "application/json")


class StoreFiles:
    """A provider's checkpoint files (`providers.base.CheckpointFiles`) in one folder of the
    store, each written once (`put_once_file`): a retried pod lists and reads them there."""

    def __init__(self, store: ObjectStore, prefix: str) -> None:
        self.store, self.prefix = store, prefix

    def names(self) -> list[str]:
        return sorted(item.key[len(self.prefix) :] for item in self.store.list(self.prefix))

    def put(self, name: str, path: Path) -> str:
        return self.store.put_once_file(self.prefix + name, path, "application/octet-stream").uri

    def get(self, name: str, path: Path) -> Path:
        self.store.get_file(self.prefix + name, path)
        return path

    def uri(self, name: str) -> str:
        return self.store.uri(self.prefix + name)

    def delete(self, name: str) -> None:
        self.store.delete(self.prefix + name)


@dataclass
class RunContext:
    snapshot: SpecSnapshot
    store: ObjectStore
    settings: PipelineSettings
    work_dir: Path
    progress: Progress
    local: bool = False  # `contentgen run`: local sources allowed
    provider: str = ""  # the provider to use (the spec's, or offline when forced)
    timings: list[StageTiming] = field(default_factory=list)
    # What the provider billed so far: [] before any paid call, None while one is under way (a
    # failure then leaves the bill unknown), the call's usage once it has returned.
    usage: list[UsageLine] | None = field(default_factory=list)
    # a training's live channel: where it reports the run under way, and hears a stop (live.py)
    live: Live = field(default_factory=NoLive)

    @contextmanager
    def stage(self, stages: Stages, name: str) -> Iterator[Span]:
        """Time the stage `name` of the flow's `stages` and map its 0-100 onto its window of the
        run's progress."""
        span = Span(self.progress, name, *stages.window(name))
        span(0)
        began = time.monotonic()
        try:
            yield span
        finally:
            self.timings.append(StageTiming(name=name, seconds=round(time.monotonic() - began, 3)))
        span(100)

    @contextmanager
    def paying(self, billed: list[UsageLine]) -> Iterator[None]:
        """Around paid calls after others were billed: the bill is unknown while they run (usage
        None), unless they fail in a way that says the failing call was not billed; then `billed`
        stands (what was billed before, and by the calls that finished: the caller appends to it
        as they do). The caller sets the usage once the calls have returned."""
        self.usage = None
        try:
            yield
        except ContentgenError as exc:
            if exc.reason in UNBILLED:
                self.usage = list(billed)
            raise

    def priced_usage(self, usage: list[UsageLine] | None = None) -> list[UsageLine] | None:
        """`usage` (the context's by default), each line with its price, the price's source and
        date: the provider's pricing API where it has one (read now, right after the billing),
        else the price table. None stays None (the bill is unknown)."""
        usage = self.usage if usage is None else usage
        if not usage:
            return usage
        from contentgen.pricing import stamped
        from contentgen.providers import price_quotes

        wanted = {(line.item, line.unit) for line in usage if line.provider == self.provider}
        return stamped(usage, price_quotes(self.provider, wanted), self.settings.prices)

    def fetch_source(
        self, url: str, progress: SubProgress, *, folder: str = "source", spec_field: str = SOURCE_FIELD
    ) -> Fetched:
        """Fetch a spec's source (or another input, whose spec field is `spec_field`: its errors
        name that field) into a `folder` of the work directory, within the settings' limits. Whose
        it may be was checked before the run began (pipeline/owners.py)."""
        try:
            return fetch(
                url,
                self.scratch(folder),
                max_bytes=self.settings.max_download_bytes,
                allow_private=self.settings.allow_private_sources,
                local=self.local,
                timeout=self.settings.http_timeout_seconds,
                progress=progress,
                store=self.store.place(),
            )
        except ContentgenError as exc:
            if spec_field == SOURCE_FIELD:
                raise
            message = str(exc).replace(f"check {SOURCE_FIELD}", f"check {spec_field}")
            raise type(exc)(f"{spec_field}: {message}", reason=exc.reason) from None

    @contextmanager
    def storing_paid_output(self, what: str) -> Iterator[None]:
        """Around the writes of outputs that were paid for: a store failure fails the run with its
        reason (StoreUnavailable, StoreAccessDenied) and says that the next attempt stores them
        from the provider's checkpoint without paying again (the offline provider's: that nothing
        was paid, and the next attempt makes them again)."""
        plural = what.endswith("s")  # "the images", "the LoRA weights"; "the video"
        kept = (_UNPAID if placeholders(self.provider) else _PAID).format(
            were="were" if plural else "was", are="are" if plural else "is", them="them" if plural else "it"
        )
        try:
            yield
        except ContentgenError as exc:
            if exc.reason not in ("StoreUnavailable", "StoreAccessDenied"):
                raise
            raise type(exc)(f"{exc}; {what} {kept}", reason=exc.reason) from None
        except OSError as exc:  # the local store
            reason = "StoreAccessDenied" if isinstance(exc, PermissionError) else "StoreUnavailable"
            error = PermanentError if reason == "StoreAccessDenied" else TransientError
            raise error(
                f"could not write to the store ({exc.strerror or exc}); {what} {kept}", reason=reason
            ) from None

    def scratch(self, name: str) -> Path:
        path = self.work_dir / name
        path.mkdir(parents=True, exist_ok=True)
        return path
