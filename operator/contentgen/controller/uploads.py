"""The leader's sweep of unfinished uploads: a multipart upload cut by a store outage leaves its
parts stored (and billed) until it is aborted. The worker aborts its own at once, and again at the
next attempt of its run; this catches the rest (a run never tried again, a store that came back
too late), under the store's own prefix only."""

from __future__ import annotations

import asyncio
import logging

from contentgen.store.base import UploadsRefused, say_once

from .outages import report
from .runtime.leader import may_act
from .state import Operator

log = logging.getLogger("contentgen.operator")
EVERY_SECONDS = 3600.0


async def abort_stale_uploads(op: Operator) -> int:
    """One sweep: uploads begun more than `stale_upload_seconds` ago aborted; how many."""
    if op.store is None or not may_act():
        return 0
    try:
        aborted: int = await asyncio.to_thread(op.store.abort_uploads, "", op.settings.stale_upload_seconds)
    except UploadsRefused as refused:  # the policy leaves it to the bucket's lifecycle rule
        say_once(log, refused)
        return 0
    except Exception as exc:
        report("aborting stale uploads", exc, f"tried again in {EVERY_SECONDS / 60:.0f} minutes")
        return 0
    if aborted:
        log.info(
            "aborted %d unfinished upload(s) begun over %.0f s ago", aborted, op.settings.stale_upload_seconds
        )
    return aborted


async def sweep_uploads(op: Operator) -> None:
    while True:
        await abort_stale_uploads(op)
        await asyncio.sleep(EVERY_SECONDS)
