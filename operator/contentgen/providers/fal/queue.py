"""One paid request on fal's queue, made once as far as fal allows.

What the checkpoint holds, in the order it is written:

    sent {at, input}    before the submit leaves (the input without URL query strings). From
                        here on a crash or a lost answer is resolved through fal's request list
                        (history.py), never by submitting again: recognised once -> adopted,
                        whether it has ended or is still queued or running (then waited on);
                        several equally good candidates, or none in time -> ProviderOutcomeUnknown
                        with the app, the time and what to check.
    request_id          the queue's answer; `sent` is dropped. A retried pod polls this request.
    result              the output, saved the moment fal returns it: fal keeps a result for an
                        hour at most, so a retry (after a store failure, say) downloads what was
                        paid for instead of generating it again.

A request fal reports as failed is forgotten (fal bills successful outputs only, see the package)
and may be submitted again: at once when `heal` repaired its input (a dataset link fal could
not fetch, uploaded again once), else by a later attempt for infrastructure failures.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import fal_client
import fal_client.client

from contentgen.errors import ContentgenError, MissingCredentials, PermanentError, TransientError

from ..base import Checkpoint
from ..billing import accepted, submit_once
from ..retry import Retry, bad_response
from .errors import (
    classify,
    error_detail,
    job_error,
    outcome_unknown,
    output_lost,
    validation_errors,
)
from .history import History, arguments_digest, in_flight, recognise, succeeded, without_queries

log = logging.getLogger(__name__)

# How far before our own clock fal's sent_at may be (clock skew, queueing at fal's edge).
SKEW = timedelta(minutes=10)
MAX_SUBMITS = 3  # per attempt: the first, one after a healed input, one spare


@dataclass(frozen=True)
class JobFailure:
    """A request fal ran and reports as failed."""

    request_id: str
    detail: str
    error_type: str | None = None
    status: int | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)  # fal's {loc, msg, type} items


class _Forgotten(Exception):
    """The queue answers 404 for a request id it gave us (its result expired, or it is unknown)."""


class _Failed(Exception):
    def __init__(self, failure: JobFailure) -> None:
        super().__init__(failure.detail)
        self.failure = failure


@dataclass
class Waiting:
    """How a wait is reported and bounded."""

    queued: Callable[[int], None]
    running: Callable[[list[dict[str, Any]] | None], None]
    resolve_wait: float  # how long a lost submit is looked for in fal's request list


def _sdk_makes_one_attempt() -> None:
    # fal-client retries 408/409/429, some 502-504 and transport errors (a read timeout after a
    # submit left included) up to 10 times, with time.sleep and without reading Retry-After. Our
    # Retry owns that policy, its clock, and the rule that a billed request is never blindly
    # repeated, so the SDK gets one attempt per call (a module setting: for every client).
    if hasattr(fal_client.client, "MAX_ATTEMPTS"):
        fal_client.client.MAX_ATTEMPTS = 1


class FalQueue:
    def __init__(
        self,
        fal: fal_client.SyncClient,
        key: str,
        retry: Retry,
        history: History,
        *,
        poll_interval: float,
        max_wait: float,
        clock: Callable[[], datetime] | None = None,
        store_io: bool = True,
    ) -> None:
        _sdk_makes_one_attempt()
        # Sent with every submit (https://fal.ai/docs/documentation/model-apis/common-parameters):
        # X-Fal-Store-IO asks fal to keep the request's input and output (for 30 days), whatever
        # the account's setting, so a lost submit can be recognised in the request list; "0"
        # trades that for privacy. Fallbacks to another endpoint are declined: a rerouted request
        # is billed at another endpoint's price and is harder to recognise (the code is safe
        # without this: fal may still list a request under another endpoint id).
        self._headers = {"X-Fal-Store-IO": "1" if store_io else "0", "X-Fal-Disable-Fallbacks": "true"}
        self._fal = fal
        self._key = key
        self._retry = retry
        self._history = history
        self._poll_interval = poll_interval
        self._max_wait = max_wait
        self._clock = clock or (lambda: datetime.now(UTC))

    def run(
        self,
        app: str,
        arguments: Callable[[], dict[str, Any]],
        saved: dict[str, Any],
        checkpoint: Checkpoint,
        waiting: Waiting,
        heal: Callable[[JobFailure], bool] | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """The request's (id, result): from the checkpoint, by finding a lost submit, by resuming
        the saved request, or by submitting `arguments()`."""
        submits = 0
        while True:
            if isinstance(saved.get("result"), dict):
                return str(saved.get("request_id", "")), dict(saved["result"])
            request_id = saved.get("request_id")
            if not request_id and saved.get("sent"):
                self._resolve(app, saved, checkpoint, waiting.resolve_wait)
                continue
            if not request_id:
                submits += 1
                if submits > MAX_SUBMITS:
                    raise TransientError(
                        f"fal's {app} did not take the request after {MAX_SUBMITS} submits",
                        reason="ProviderUnavailable",
                    )
                self._submit(app, arguments(), saved, checkpoint)
                continue
            request_id = str(request_id)
            try:
                result = self._wait(app, request_id, waiting)
            except _Forgotten:
                self._recover(app, request_id, saved, checkpoint)
                continue
            except _Failed as failed:
                saved.pop("request_id", None)
                saved.setdefault("failed", []).append(request_id)
                checkpoint.save(saved)
                if heal is not None and heal(failed.failure):
                    continue
                f = failed.failure
                raise job_error(app, request_id, f.detail, f.error_type, f.status) from None
            saved["result"] = result
            checkpoint.save(saved)
            return request_id, result

    # --- submitting --------------------------------------------------------------------------

    def _submit(self, app: str, args: dict[str, Any], saved: dict[str, Any], checkpoint: Checkpoint) -> None:
        handle = submit_once(
            self._retry,
            lambda: self._fal.submit(app, args, headers=self._headers),
            classify=lambda exc: classify(exc, key=self._key, what="the submit", billed=True),
            what=f"submitting to fal's {app}",
            saved=saved,
            checkpoint=checkpoint,
            intent={"input": without_queries(args), "digest": arguments_digest(args)},
            at=self._clock(),
            secrets=(self._key,),
        )
        if handle is not None:
            request_id = getattr(handle, "request_id", None)
            if accepted(
                saved, checkpoint, "request_id", request_id, "fal accepted the submit but named no id"
            ):
                log.info("submitted fal request %s on %s", request_id, app)

    # --- finding a lost submit ----------------------------------------------------------------

    def _resolve(self, app: str, saved: dict[str, Any], checkpoint: Checkpoint, resolve_wait: float) -> None:
        sent = saved["sent"]
        at = datetime.fromisoformat(sent["at"])
        why = sent.get("why") or "the run stopped before fal's answer was saved"
        where = getattr(checkpoint, "location", "") or "the run's checkpoint"
        known = set(saved.get("failed") or []) | _known(checkpoint)
        waited = 0.0
        interval = self._poll_interval * 6
        while True:
            try:
                items = self._history.since(app, at - SKEW)
            except MissingCredentials as exc:
                raise outcome_unknown(
                    app, sent["at"], why, f"its request list cannot be read: {exc}", where
                ) from None
            verdict = recognise(sent, items, app, known)
            if verdict.rivals:
                ids = ", ".join(str(i.get("request_id")) for i in verdict.rivals)
                detail = f"fal lists {len(verdict.rivals)} requests that fit equally well ({ids})"
                raise outcome_unknown(app, sent["at"], why, detail, where)
            if verdict.found is not None:
                self._adopt(app, verdict.found, saved, checkpoint)
                return
            if waited >= resolve_wait:
                seen = f"; {verdict.blind} of them without their input" if verdict.blind else ""
                detail = (
                    f"none of the {verdict.listed} requests fal lists on {app} since then fits{seen} "
                    f"(looked for {waited:.0f} s)"
                )
                raise outcome_unknown(app, sent["at"], why, detail, where)
            self._retry.sleep(interval)
            waited += interval

    def _adopt(self, app: str, item: dict[str, Any], saved: dict[str, Any], checkpoint: Checkpoint) -> None:
        """Takes over the lost request: waited on while queued or running, its output kept when it
        succeeded, forgotten (fal bills successful requests only) when it failed."""
        request_id = str(item.get("request_id"))
        state = "still running" if in_flight(item) else f"HTTP {item.get('status_code')}"
        log.info("found the lost submit in fal's request list: request %s on %s (%s)", request_id, app, state)
        saved.pop("sent", None)
        if in_flight(item) or succeeded(item):
            saved["request_id"] = request_id
            if isinstance(item.get("json_output"), dict) and succeeded(item):
                saved["result"] = item["json_output"]
            checkpoint.save(saved)
            return
        saved.setdefault("failed", []).append(request_id)
        checkpoint.save(saved)
        raise _listed_failure(app, request_id, item)

    def _recover(self, app: str, request_id: str, saved: dict[str, Any], checkpoint: Checkpoint) -> None:
        """The queue forgot a request it gave us: its outcome from fal's request list."""
        where = getattr(checkpoint, "location", "") or "the run's checkpoint"
        waited = 0.0
        while True:
            try:
                item = self._history.find(app, request_id)
            except MissingCredentials as exc:
                raise outcome_unknown(
                    app, "", f"fal's queue no longer knows request {request_id}", str(exc), where
                ) from None
            if item is None:
                raise outcome_unknown(
                    app,
                    "",
                    f"fal's queue no longer knows request {request_id}",
                    "fal's request list of the last 90 days does not show it",
                    where,
                )
            if not in_flight(item):
                break
            if waited >= self._max_wait:  # listed as running all along: a later attempt looks again
                raise TransientError(
                    f"fal lists request {request_id} on {app} as still running after {waited:.0f} s; "
                    "the checkpoint keeps it, a new attempt resumes waiting",
                    reason="ProviderTimeout",
                )
            self._retry.sleep(self._poll_interval * 6)
            waited += self._poll_interval * 6
        if not succeeded(item):
            saved.pop("request_id", None)
            saved.setdefault("failed", []).append(request_id)
            checkpoint.save(saved)
            raise _listed_failure(app, request_id, item)
        output = item.get("json_output")
        if not isinstance(output, dict):
            raise output_lost(
                app, request_id, "its result has expired and fal's request list holds no output", where
            )
        saved["result"] = output
        checkpoint.save(saved)
        log.info("fal request %s: result taken from fal's request list", request_id)

    # --- waiting ------------------------------------------------------------------------------

    def _wait(self, app: str, request_id: str, waiting: Waiting) -> dict[str, Any]:
        handle = self._fal.get_handle(app, request_id)
        waited = 0.0
        while True:
            status = self._poll(handle, request_id)
            if isinstance(status, fal_client.Completed):
                break
            if isinstance(status, fal_client.Queued):
                waiting.queued(status.position)
            elif isinstance(status, fal_client.InProgress):
                waiting.running(status.logs)
            if waited >= self._max_wait:
                raise TransientError(
                    f"fal request {request_id} on {app} has not finished after {waited:.0f} s; "
                    "the checkpoint keeps it, a new attempt resumes waiting",
                    reason="ProviderTimeout",
                )
            self._retry.sleep(self._poll_interval)
            waited += self._poll_interval
        try:
            result = self._call(
                handle.get, f"the result of fal request {request_id}", passthrough=(404,), failed=True
            )
        except fal_client.FalClientHTTPError as exc:
            if exc.status_code == 404:
                raise _Forgotten from None
            raise _Failed(
                JobFailure(
                    request_id, error_detail(exc), exc.error_type, exc.status_code, validation_errors(exc)
                )
            ) from None
        if not isinstance(result, dict):
            raise bad_response(
                "fal", f"the result of request {request_id} on {app}", "something that is not an object"
            )
        if status.error:
            log.warning(
                "fal request %s: status says %r, yet a result came; using the result",
                request_id,
                status.error,
            )
        return result

    def _poll(self, handle: fal_client.SyncRequestHandle, request_id: str) -> fal_client.Status:
        try:
            status: fal_client.Status = self._call(
                lambda: handle.status(with_logs=True),
                f"the status of fal request {request_id}",
                passthrough=(404,),
            )
        except fal_client.FalClientHTTPError:  # the 404 let through
            raise _Forgotten from None
        return status

    def _call(
        self, fn: Callable[[], Any], what: str, *, passthrough: tuple[int, ...] = (), failed: bool = False
    ) -> Any:
        """`fn`, an idempotent read, under the retry policy. Statuses in `passthrough` (and, with
        `failed`, a finished request's own error) come out raw."""

        def judge(exc: Exception) -> ContentgenError | None:
            if isinstance(exc, fal_client.FalClientHTTPError) and (
                exc.status_code in passthrough or (failed and _ran_and_failed(exc))
            ):
                return None
            return classify(exc, key=self._key, what=what)

        return self._retry.call(fn, classify=judge, what=f"reading {what}")


def _known(checkpoint: Checkpoint) -> set[str]:
    """The request ids a checkpoint of several parts (billing.Part) holds in its other parts."""
    known = getattr(checkpoint, "known_requests", None)
    return set(known()) if callable(known) else set()


def _listed_failure(app: str, request_id: str, item: dict[str, Any]) -> ContentgenError:
    """A request fal's list shows as failed: not billed; a server error may succeed if sent again."""
    code = item.get("status_code")
    if isinstance(code, int) and code >= 500:
        return TransientError(
            f"fal request {request_id} on {app} failed (HTTP {code} in fal's request list); it was not "
            "billed, a new attempt submits it again",
            reason="ProviderUnavailable",
        )
    return PermanentError(
        f"fal's {app} failed request {request_id} (HTTP {code} in fal's request list)",
        reason="ProviderJobFailed",
    )


def _ran_and_failed(exc: fal_client.FalClientHTTPError) -> bool:
    """Whether a result fetch failed because the request ran and failed (a client error, or
    any status that carries fal's error_type), rather than because fal could not answer."""
    return bool(exc.error_type) or exc.status_code in (400, 409, 410, 413, 415, 422)
