"""Each run's own store credentials (store_access: per-run; docs/security.md).

Before a Job is made, the operator asks the store's STS for a role session narrowed by a session
policy to what the run may reach (store/scopes.py: its spec's inputs, its own resource's outputs,
its version's folders and working state), for `sts_window_seconds` (at least STS's
shortest session, 15 minutes; a store may end it sooner, and its answer says so), and puts it in a
Secret of the run's own in the Job's namespace (`{job}-store`, owned by the resource, labelled as
the operator's), which the worker's pod mounts and re-reads as it changes (store/s3.py). While the
run's Job has not finished, the leader renews it at half the window; once it has, the Secret is
deleted and the credentials stop working at the session's end at the latest (STS credentials cannot
be taken back: the session's length bounds them). The bucket-wide key stays in the operator's
namespace; no user namespace holds it.

- A renewal that fails is tried again at the next pass (a quarter of the window): the credentials
  in the Secret still work until their end.
- A new leader knows no windows: it renews every unfinished run's at once.
- The Secret's values are never logged; what is logged is the run and the window's end.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from contentgen.api import API_VERSION, KINDS, SpecSnapshot, format_time, parse_timestamp
from contentgen.store.access import StorePlace
from contentgen.store.s3 import CREDENTIALS_ENV
from contentgen.store.scopes import run_scope, session_policy

from .kube import Kube, KubeError
from .naming import LABEL_UID, MANAGED_BY, job_name
from .settings import OperatorSettings

log = logging.getLogger("contentgen.operator.credentials")

SUFFIX = "-store"
FILE = "credentials.json"
MOUNT = "/var/run/contentgen/store"
ENV = CREDENTIALS_ENV  # the worker reads its credentials from this file (store/s3.py)
LABEL = "contentgen.io/run-credentials"
MIN_SESSION_SECONDS = 900  # STS's shortest session (AWS, SeaweedFS)


class CredentialsUnavailable(Exception):
    """The store's STS gave no credentials for a run (its words, no value): the Job waits."""


def secret_name(job: str) -> str:
    return f"{job}{SUFFIX}"


@dataclass(frozen=True)
class Minted:
    """A role session's temporary credentials, good until `until` (the policy's end)."""

    key_id: str
    secret: str
    token: str
    until: datetime

    def document(self) -> str:
        """As AWS's credential_process prints them: what the worker reads."""
        return json.dumps(
            {
                "Version": 1,
                "AccessKeyId": self.key_id,
                "SecretAccessKey": self.secret,
                "SessionToken": self.token,
                "Expiration": format_time(self.until),
            }
        )


Minter = Callable[[str, str, int], dict[str, Any]]  # (session name, policy, seconds) -> Credentials


def sts_minter(settings: OperatorSettings) -> Minter:
    """AssumeRole of `sts_role_arn` at the store's STS, as the operator's own identity (the
    chart's s3.existingSecret in its namespace, or its workload identity)."""
    import boto3

    endpoint = settings.sts_endpoint_url or settings.s3_endpoint_url or None
    # a session of its own: boto3's default one keeps the first credentials it resolved
    client = boto3.session.Session().client(
        "sts", region_name=settings.s3_region or "us-east-1", endpoint_url=endpoint
    )

    def mint(name: str, policy: str, seconds: int) -> dict[str, Any]:
        answer = client.assume_role(
            RoleArn=settings.sts_role_arn, RoleSessionName=name, Policy=policy, DurationSeconds=seconds
        )
        found: dict[str, Any] = answer["Credentials"]
        return found

    return mint


def _aware(value: Any) -> datetime | None:
    """STS's Expiration (a datetime from boto3, or ISO text), aware; None where there is none."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return parse_timestamp(value)


def run_name(snap: SpecSnapshot) -> str:
    """The name of what runs `snap` (its Job, JobSet or TrainJob), which its Secret is named after."""
    return job_name(KINDS[snap.kind], snap.name, snap.uid, snap.generation)


def session_name(snap: SpecSnapshot, at: datetime) -> str:
    """The role session's name: the run and when it was asked for, as STS and the store's logs
    show it (each renewal a session of its own)."""
    return f"contentgen-{snap.uid[:8]}-v{snap.version}-{int(at.timestamp())}"


def secret_of(job: str, snap: SpecSnapshot, minted: Minted) -> dict[str, Any]:
    """The run's Secret, owned by its resource (deleting it deletes the Secret)."""
    owner = {"apiVersion": API_VERSION, "kind": snap.kind, "name": snap.name, "uid": snap.uid}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": secret_name(job),
            "namespace": snap.namespace,
            "labels": {
                "app.kubernetes.io/managed-by": MANAGED_BY,
                "app.kubernetes.io/part-of": "contentgen",
                LABEL: "true",
                LABEL_UID: snap.uid,
            },
            "annotations": {"contentgen.io/credentials-until": format_time(minted.until)},
            "ownerReferences": [owner],
        },
        "data": {FILE: base64.b64encode(minted.document().encode()).decode()},
    }


class RunCredentials:
    """The runs' credentials: `issue` before a run's Job; `run` renews and retires them."""

    def __init__(
        self,
        kube: Kube,
        settings: OperatorSettings,
        place: StorePlace,
        minter: Minter | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.kube, self.settings, self.place, self.clock = kube, settings, place, clock
        self.minter = minter or sts_minter(settings)
        self.window = timedelta(seconds=settings.sts_window_seconds)
        self.until: dict[tuple[str, str], datetime] = {}  # (namespace, job) -> the window's end

    async def mint(self, snap: SpecSnapshot) -> Minted:
        """The run's credentials, narrowed to its scope, for one window from now (or less, where
        the store ends the session sooner)."""
        now = self.clock()
        asked = now + self.window
        scope = run_scope(snap, self.place, self.settings.cluster_models.store_prefix)
        policy = session_policy(scope, self.place.bucket)
        seconds = max(MIN_SESSION_SECONDS, int(self.window.total_seconds()))
        try:
            found = await asyncio.to_thread(self.minter, session_name(snap, now), policy, seconds)
        except Exception as exc:  # botocore's errors: refused, unreachable, no role
            raise CredentialsUnavailable(
                f"the store's STS gave no credentials for {snap.namespace}/{snap.name}: {str(exc)[:300]}; "
                "the operator's role and s3.sts (docs/security.md) decide what it may ask for"
            ) from None
        until = min(asked, _aware(found.get("Expiration")) or asked)
        return Minted(found["AccessKeyId"], found["SecretAccessKey"], found["SessionToken"], until)

    async def issue(self, snap: SpecSnapshot, job: str) -> None:
        """Mint the run's credentials and write its Secret (again, for a start tried again)."""
        minted = await self.mint(snap)
        await self._write(secret_of(job, snap, minted))
        self.until[(snap.namespace, job)] = minted.until
        log.info("store credentials of %s/%s issued until %s", snap.namespace, job, format_time(minted.until))

    async def _write(self, secret: dict[str, Any]) -> None:
        meta = secret["metadata"]
        path = f"/api/v1/namespaces/{meta['namespace']}/secrets"
        try:
            await self.kube.request("POST", path, secret)
        except KubeError as exc:
            if exc.status != 409:
                raise
            await self.kube.request("PUT", f"{path}/{meta['name']}", secret)

    async def retire(self, namespace: str, job: str) -> None:
        """The run ended: its Secret goes (its credentials end with their window)."""
        self.until.pop((namespace, job), None)
        try:
            await self.kube.request("DELETE", f"/api/v1/namespaces/{namespace}/secrets/{secret_name(job)}")
        except KubeError as exc:
            if exc.status != 404:
                raise
        log.info("store credentials of %s/%s retired", namespace, job)

    async def renew(self, runs: Iterable[tuple[str, str, bool, str]]) -> None:
        """One pass over the runs' Jobs (namespace, name, finished, snapshot JSON): renew those due
        (half their window gone, or unknown to this process), retire those that ended."""
        seen: set[tuple[str, str]] = set()
        for namespace, job, finished, snapshot in runs:
            key = (namespace, job)
            seen.add(key)
            if finished:
                if key in self.until:
                    await self._quietly(self.retire(namespace, job), key)
                continue
            until = self.until.get(key)
            if not snapshot or (until is not None and until - self.clock() > self.window / 2):
                continue
            snap = SpecSnapshot.model_validate_json(snapshot)
            if job == run_name(
                snap
            ):  # not a JobSet's or TrainJob's Job of one node: their pods mount the run's
                await self._quietly(self.issue(snap, job), key)
        for namespace, job in [k for k in self.until if k not in seen]:  # its Job is gone
            await self._quietly(self.retire(namespace, job), (namespace, job))

    async def _quietly(self, done: Any, key: tuple[str, str]) -> None:
        try:
            await done
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the store's STS or the API server away: the next pass tries again
            log.warning("store credentials of %s/%s not renewed: %s", key[0], key[1], str(exc)[:300])

    async def run(self, runs: Callable[[], Iterable[tuple[str, str, bool, str]]]) -> None:
        """Renew and retire, every quarter of the window, for as long as the operator leads."""
        while True:
            await self.renew(list(runs()))
            await asyncio.sleep(self.window.total_seconds() / 4)
