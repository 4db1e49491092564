"""S3 and S3-compatible stores (MinIO, SeaweedFS, ...) through boto3.

Credentials come from boto3's usual chain (env AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, IRSA or
other workload identity); `AWS_ENDPOINT_URL` points at an S3-compatible endpoint, which then
gets path-style addressing. Presigned links can be signed for another, public endpoint
(CONTENTGEN_STORE_PUBLIC_ENDPOINT_URL) when the store's own is reachable in the cluster only.
Uploads stream from disk in parts (multipart above 16 MiB), each request with the SHA-256 of
its bytes, which the server checks; the object's SHA-256 is kept as metadata, so it can be
reported without reading the object back, and every download is checked against it. Outputs are
created with If-None-Match: * (`put_once`): a server that does not support it is refused, not
trusted (ConditionalWritesUnsupported).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from contentgen.api import Artifact
from contentgen.errors import InvalidInput, PermanentError, TransientError
from contentgen.files import CHUNK, sha256_file

from .access import StorePlace
from .base import (
    KeyTaken,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    StoredObjectCorrupt,
    UploadsRefused,
    content_disposition,
    download_checked,
    say_once,
)

log = logging.getLogger(__name__)

MULTIPART_THRESHOLD = 16 * 1024 * 1024
ABORT_SECONDS = 60.0  # how long a failed multipart upload's abort is tried again
pause = time.sleep  # between two tries of an abort (a test's hook)
MAX_LINK_SECONDS = 7 * 24 * 3600  # SigV4 presigned URLs: S3 refuses longer ones
CONFLICT_RETRIES = 5
# Answers to a housekeeping call on unfinished uploads that no retry changes: a policy without the
# permission (403 AccessDenied; "403" where the answer has no body), a store without it (501).
REFUSED = ("AccessDenied", "403", "NotImplemented", "501")
RESTORE = "restore it from a backup, or delete it and run again"


# A worker's own run's credentials (controller/run_credentials.py): a file its pod mounts from the
# run's Secret, which the operator renews while the run lives (the kubelet updates the file).
CREDENTIALS_ENV = "CONTENTGEN_STORE_ACCESS_FILE"
# Read the file again this long before the credentials' end (and, past the second, before any call).
ADVISORY_REFRESH_SECONDS, MANDATORY_REFRESH_SECONDS = 300, 60


def run_credentials(path: Path) -> Any:
    """The run's credentials in `path` (AWS's credential_process JSON), read again as they near
    their end: botocore's RefreshableCredentials."""
    from botocore.credentials import RefreshableCredentials

    def read() -> dict[str, str]:
        found = json.loads(path.read_text())
        return {
            "access_key": found["AccessKeyId"],
            "secret_key": found["SecretAccessKey"],
            "token": found["SessionToken"],
            "expiry_time": found["Expiration"],
        }

    credentials = RefreshableCredentials.create_from_metadata(read(), read, "contentgen-run-credentials")
    credentials._advisory_refresh_timeout = ADVISORY_REFRESH_SECONDS
    credentials._mandatory_refresh_timeout = MANDATORY_REFRESH_SECONDS
    return credentials


def _session() -> Any:
    """boto3's session: with the run's own credentials where the pod has them, else boto3's chain."""
    import boto3
    import botocore.session
    from botocore.credentials import CredentialProvider

    path = os.environ.get(CREDENTIALS_ENV)
    if not path:
        return boto3
    credentials = run_credentials(Path(path))

    class RunProvider(CredentialProvider):  # type: ignore[misc]
        METHOD = "contentgen-run-credentials"

        def load(self) -> Any:
            return credentials

    core = botocore.session.get_session()
    core.get_component("credential_provider").insert_before("env", RunProvider())
    return boto3.Session(botocore_session=core)


def s3_client(endpoint_url: str | None = None) -> Any:
    """A client for the store's endpoint (AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL), or for
    `endpoint_url` (the public endpoint presigned links are made for)."""
    from botocore.config import Config

    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    config = Config(
        retries={"mode": "standard", "max_attempts": 5},
        s3={"addressing_style": "path" if endpoint else "auto"},
        signature_version="s3v4",
    )
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return _session().client("s3", region_name=region, config=config, endpoint_url=endpoint_url)


def _code(exc: Exception) -> str:
    return str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))


def _missing(exc: Exception) -> bool:
    return _code(exc) in ("404", "NoSuchKey", "NotFound")


def _b64(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


def write_outcome(code: str, if_absent: bool) -> Literal["taken", "unsupported", "again", "error"]:
    """What an S3 error code means for a write: "taken" (a conditional create found an object:
    412), "unsupported" (the server does not do conditional writes: 501), "again" (a concurrent
    conditional write was in flight: AWS's 409, to be retried), or "error"."""
    if if_absent and code in ("PreconditionFailed", "412"):
        return "taken"
    if if_absent and code in ("NotImplemented", "501"):
        return "unsupported"
    if code == "ConditionalRequestConflict":
        return "again"
    return "error"


class ConditionalWritesUnsupported(PermanentError):
    """An S3 server that does not do If-None-Match on writes: outputs are not written there,
    since nothing would stop a second writer from replacing one."""

    reason = "StoreUnsupported"

    def __init__(self, uri: str) -> None:
        super().__init__(
            f"{uri}: the object store does not support conditional writes (If-None-Match: *, "
            "answered 501 NotImplemented); outputs are written once, and without them a second "
            "writer could replace one: use a store that supports them (AWS S3, MinIO, versitygw)"
        )


class S3Store(ObjectStore):
    def __init__(
        self, bucket: str, prefix: str = "", client: Any = None, public_endpoint_url: str | None = None
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.client = client if client is not None else s3_client()
        # Signing is local: a second client only changes the host the links are signed for.
        self.signer = s3_client(public_endpoint_url) if public_endpoint_url else self.client

    def __repr__(self) -> str:
        return f"S3Store(s3://{self.bucket}/{self.prefix})"

    def _full(self, key: str) -> str:
        if not key or key.startswith("/") or ".." in key.split("/"):
            raise ValueError(f"invalid object key {key!r}")
        return self.prefix + key

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._full(key)}"

    def place(self) -> StorePlace:
        endpoints = {str(client.meta.endpoint_url) for client in (self.client, self.signer)}
        return StorePlace.of(f"s3://{self.bucket}/{self.prefix}", *sorted(endpoints))

    def key_of(self, uri: str) -> str:
        parsed = urlparse(uri)
        full = parsed.path.lstrip("/")
        if parsed.scheme != "s3" or parsed.netloc != self.bucket or not full.startswith(self.prefix):
            raise ValueError(f"{uri} is not in the store s3://{self.bucket}/{self.prefix}")
        return full[len(self.prefix) :]

    def put_file(self, key: str, path: Path, content_type: str, *, if_absent: bool = False) -> Artifact:
        digest = sha256_file(path)
        size = path.stat().st_size
        if size <= MULTIPART_THRESHOLD:
            with path.open("rb") as body:
                self._put(key, body, content_type, digest, if_absent)
        else:
            self._put_parts(key, path, content_type, digest, if_absent)
        return Artifact(uri=self.uri(key), size_bytes=size, sha256=digest, content_type=content_type)

    def put_bytes(self, key: str, data: bytes, content_type: str, *, if_absent: bool = False) -> Artifact:
        digest = hashlib.sha256(data).hexdigest()
        self._put(key, data, content_type, digest, if_absent)
        return Artifact(uri=self.uri(key), size_bytes=len(data), sha256=digest, content_type=content_type)

    def _put(self, key: str, body: Any, content_type: str, digest: str, if_absent: bool) -> None:
        # The SHA-256 that was hashed travels as the request's checksum: the server refuses bytes
        # that do not match it (BadDigest), and keeps it as the object's metadata.
        self._write(
            key,
            if_absent,
            self.client.put_object,
            Bucket=self.bucket,
            Key=self._full(key),
            Body=body,
            ContentType=content_type,
            Metadata={"sha256": digest},
            ChecksumSHA256=_b64(bytes.fromhex(digest)),
            **({"IfNoneMatch": "*"} if if_absent else {}),
        )

    def _put_parts(self, key: str, path: Path, content_type: str, digest: str, if_absent: bool) -> None:
        """A multipart upload, each part with its SHA-256 checksum; with `if_absent`, the completion
        is conditional (the object appears only then). A failed upload is aborted."""
        full = self._full(key)
        upload_id = self._call(
            self.client.create_multipart_upload,
            Bucket=self.bucket,
            Key=full,
            ContentType=content_type,
            Metadata={"sha256": digest},
            ChecksumAlgorithm="SHA256",
        )["UploadId"]
        try:
            parts: list[dict[str, Any]] = []
            with path.open("rb") as fh:
                while chunk := fh.read(MULTIPART_THRESHOLD):
                    number, checksum = len(parts) + 1, _b64(hashlib.sha256(chunk).digest())
                    answer = self._call(
                        self.client.upload_part,
                        Bucket=self.bucket,
                        Key=full,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=chunk,
                        ChecksumSHA256=checksum,
                    )
                    parts.append({"PartNumber": number, "ETag": answer["ETag"], "ChecksumSHA256": checksum})
            self._write(
                key,
                if_absent,
                self.client.complete_multipart_upload,
                Bucket=self.bucket,
                Key=full,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
                **({"IfNoneMatch": "*"} if if_absent else {}),
            )
        except BaseException:
            self._abort(full, upload_id)
            raise

    def _abort(self, full: str, upload_id: str, *, refusal_raises: bool = False) -> bool:
        """Abort a failed multipart upload, again and again for up to ABORT_SECONDS while the
        store does not answer (its parts are stored, and billed, until it is aborted): True once
        it is gone. One the store does not take back in time is aborted by the next start of a
        run writing there (`abort_uploads`) or the operator's sweep of stale uploads. A store that
        refuses aborts (REFUSED) is not asked again: said once (UploadsRefused, raised instead
        with `refusal_raises`)."""
        wait, deadline = 0.5, time.monotonic() + ABORT_SECONDS
        while True:
            try:
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=full, UploadId=upload_id)
                return True
            except Exception as exc:
                code = _code(exc)
                if code == "NoSuchUpload":
                    return True
                if code in REFUSED:
                    refused = UploadsRefused(code, "s3:AbortMultipartUpload")
                    if refusal_raises:
                        raise refused from None
                    say_once(log, refused)
                    return False
                if time.monotonic() + wait > deadline:
                    log.warning(
                        "could not abort the upload of s3://%s/%s (%s) for %.0f s; it is aborted by the "
                        "next run writing there or the operator's sweep of stale uploads",
                        self.bucket,
                        full,
                        " ".join(str(exc).split())[:200],
                        ABORT_SECONDS,
                    )
                    return False
            pause(wait)
            wait = min(wait * 2, 8.0)

    def abort_uploads(self, prefix: str, older_than: float = 0.0) -> int:
        """Abort the multipart uploads under `prefix` (of this store's prefix) begun more than
        `older_than` seconds ago; how many. Uploads outside the store's prefix are never touched.
        UploadsRefused where the store refuses to list them (s3:ListBucketMultipartUploads) or
        to abort one (s3:AbortMultipartUpload)."""
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than)
        # "" is the whole store prefix (the leader's sweep), not a key: _full refuses it
        pages = self.client.get_paginator("list_multipart_uploads").paginate(
            Bucket=self.bucket, Prefix=self._full(prefix) if prefix else self.prefix
        )
        aborted = 0
        try:
            for page in pages:
                for upload in page.get("Uploads") or []:
                    if upload["Initiated"] <= cutoff and self._abort(
                        upload["Key"], upload["UploadId"], refusal_raises=True
                    ):
                        aborted += 1
        except UploadsRefused:
            raise
        except Exception as exc:
            if _code(exc) in REFUSED:
                raise UploadsRefused(_code(exc), "s3:ListBucketMultipartUploads") from None
            raise _classify(exc, self) from exc
        return aborted

    def _write(self, key: str, if_absent: bool, fn: Any, **kwargs: Any) -> None:
        for _ in range(CONFLICT_RETRIES):
            try:
                fn(**kwargs)
                return
            except Exception as exc:
                match write_outcome(_code(exc), if_absent):
                    case "taken":
                        raise KeyTaken(key) from None
                    case "unsupported":
                        raise ConditionalWritesUnsupported(self.uri(key)) from None
                    case "again":
                        continue
                raise _classify(exc, self) from exc
        raise TransientError(
            f"{self.uri(key)}: the store answered ConditionalRequestConflict {CONFLICT_RETRIES} times",
            reason="StoreUnavailable",
        )

    def get_file(self, key: str, dest: Path, max_bytes: int | None = None) -> Path:
        response = self._get(key)
        size = int(response["ContentLength"])
        if max_bytes is not None and size > max_bytes:
            response["Body"].close()
            raise InvalidInput(f"{self.uri(key)} is {size} bytes, over the {max_bytes}-byte limit")
        chunks = self._read(key, response["Body"].iter_chunks(CHUNK))
        return download_checked(dest, chunks, lambda actual: self._check(key, response, actual))

    def get_bytes(self, key: str) -> bytes:
        response = self._get(key)
        body = b"".join(self._read(key, response["Body"].iter_chunks(CHUNK)))
        self._check(key, response, hashlib.sha256(body).hexdigest())
        return body

    def _read(self, key: str, chunks: Iterator[bytes]) -> Iterator[bytes]:
        """The body's chunks; botocore checks them against the checksum the server kept (it asks
        for it), and a mismatch is a corrupt object, not a failure to retry."""
        from botocore.exceptions import FlexibleChecksumError

        try:
            yield from chunks
        except FlexibleChecksumError as exc:
            raise StoredObjectCorrupt(f"{self.uri(key)} is corrupt: {exc}; {RESTORE}") from None
        except Exception as exc:
            raise _classify(exc, self) from exc

    def _get(self, key: str) -> Any:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=self._full(key))
        except Exception as exc:
            if _missing(exc):
                raise ObjectNotFound(self.uri(key)) from None
            raise _classify(exc, self) from exc

    def _check(self, key: str, response: Any, sha256: str) -> None:
        """The bytes read are the ones written: their SHA-256 is the one recorded at upload."""
        recorded = response.get("Metadata", {}).get("sha256", "")
        if recorded and recorded != sha256:
            raise StoredObjectCorrupt(
                f"{self.uri(key)} is corrupt: its bytes hash to sha256 {sha256}, and {recorded} was "
                f"recorded when it was written; {RESTORE}"
            )

    def head(self, key: str) -> ObjectInfo | None:
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=self._full(key))
        except Exception as exc:
            if _missing(exc):
                return None
            raise _classify(exc, self) from exc
        return ObjectInfo(
            key,
            int(response["ContentLength"]),
            response.get("ContentType", "application/octet-stream"),
            response.get("Metadata", {}).get("sha256", ""),
        )

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                for item in page.get("Contents", []):
                    yield ObjectInfo(item["Key"][len(self.prefix) :], int(item["Size"]))
        except Exception as exc:
            raise _classify(exc, self) from exc

    def check(self) -> None:
        """One listing of the prefix: a bucket that does not exist, refused credentials or an
        endpoint that does not answer are said in one line (PermanentError, TransientError)."""
        self._call(self.client.list_objects_v2, Bucket=self.bucket, Prefix=self.prefix, MaxKeys=1)

    def delete(self, key: str) -> bool:
        if self.head(key) is None:
            return False
        self._call(self.client.delete_object, Bucket=self.bucket, Key=self._full(key))
        return True

    def delete_prefix(self, prefix: str) -> int:
        if not prefix.endswith("/"):
            raise ValueError(f"refusing to delete {prefix!r}: a prefix must end with '/'")
        keys = [self._full(info.key) for info in self.list(prefix)]
        for start in range(0, len(keys), 1000):
            batch = keys[start : start + 1000]
            response = self._call(
                self.client.delete_objects,
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
            )
            if response.get("Errors"):
                first = response["Errors"][0]
                raise TransientError(
                    f"could not delete s3://{self.bucket}/{first['Key']}: {first.get('Message')}"
                )
        return len(keys)

    def presign(self, key: str, expires_seconds: int, download_name: str | None = None) -> str:
        if not 1 <= expires_seconds <= MAX_LINK_SECONDS:
            raise ValueError(
                f"a link is valid for 1 to {MAX_LINK_SECONDS} seconds (7 days, what S3 accepts), "
                f"not {expires_seconds}"
            )
        if self.head(key) is None:
            raise ObjectNotFound(self.uri(key))
        params = {"Bucket": self.bucket, "Key": self._full(key)}
        if download_name:
            params["ResponseContentDisposition"] = content_disposition(download_name)
        url: str = self.signer.generate_presigned_url("get_object", Params=params, ExpiresIn=expires_seconds)
        return url

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise _classify(exc, self) from exc


def _classify(exc: Exception, store: S3Store | None = None) -> Exception:
    """botocore errors as ours: access problems are permanent, the rest worth a retry."""
    from botocore.exceptions import EndpointConnectionError, NoCredentialsError

    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    bucket = f"s3://{store.bucket}" if store is not None else "the store's bucket"
    if code == "NoSuchBucket":
        endpoint = store.client.meta.endpoint_url if store is not None else ""
        return PermanentError(
            f"the bucket {bucket} does not exist{f' at {endpoint}' if endpoint else ''}: create it, or "
            "set CONTENTGEN_STORE (contentgen run --store) to s3://BUCKET/PREFIX of a bucket that exists",
            reason="StoreAccessDenied",
        )
    if code == "InvalidBucketName":
        return PermanentError(
            f"{bucket} is not a valid bucket name (3 to 63 lower-case letters, digits, dots and "
            "hyphens): set CONTENTGEN_STORE (contentgen run --store) to s3://BUCKET/PREFIX",
            reason="StoreAccessDenied",
        )
    if isinstance(exc, NoCredentialsError):
        return PermanentError(
            f"no S3 credentials for {bucket}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
            "(or AWS_PROFILE), or use workload identity in a cluster",
            reason="StoreAccessDenied",
        )
    if isinstance(exc, EndpointConnectionError):
        return TransientError(
            f"the object store of {bucket} does not answer ({exc}): check that it runs and "
            "AWS_ENDPOINT_URL names it",
            reason="StoreUnavailable",
        )
    if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"):
        return PermanentError(
            f"object store refused the request ({code}): check the store URL and credentials",
            reason="StoreAccessDenied",
        )
    if _missing(exc):
        return exc
    return TransientError(f"object store request failed: {exc}", reason="StoreUnavailable")
