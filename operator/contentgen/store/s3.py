"""S3 and S3-compatible stores (MinIO, SeaweedFS, ...) through boto3.

Credentials come from boto3's usual chain (env AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, IRSA or
other workload identity); `AWS_ENDPOINT_URL` points at an S3-compatible endpoint, which then
gets path-style addressing. Presigned links can be signed for another, public endpoint
(CONTENTGEN_STORE_PUBLIC_ENDPOINT_URL) when the store's own is reachable in the cluster only.
Uploads stream from disk in parts (multipart above 16 MiB) with
boto3's integrity checksums; the object's SHA-256 is kept as metadata so it can be reported
without reading the object back.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from contentgen.api import Artifact
from contentgen.errors import InvalidInput, TransientError
from contentgen.files import sha256_file

from .base import ObjectInfo, ObjectNotFound, ObjectStore, content_disposition

MULTIPART_THRESHOLD = 16 * 1024 * 1024


def s3_client(endpoint_url: str | None = None) -> Any:
    """A client for the store's endpoint (AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL), or for
    `endpoint_url` (the public endpoint presigned links are made for)."""
    import boto3
    from botocore.config import Config

    endpoint = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
    config = Config(
        retries={"mode": "standard", "max_attempts": 5},
        s3={"addressing_style": "path" if endpoint else "auto"},
        signature_version="s3v4",
    )
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    return boto3.client("s3", region_name=region, config=config, endpoint_url=endpoint_url)


def _missing(exc: Exception) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return code in ("404", "NoSuchKey", "NotFound")


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

    def key_of(self, uri: str) -> str:
        parsed = urlparse(uri)
        full = parsed.path.lstrip("/")
        if parsed.scheme != "s3" or parsed.netloc != self.bucket or not full.startswith(self.prefix):
            raise ValueError(f"{uri} is not in the store s3://{self.bucket}/{self.prefix}")
        return full[len(self.prefix) :]

    def put_file(self, key: str, path: Path, content_type: str) -> Artifact:
        from boto3.s3.transfer import TransferConfig

        digest = sha256_file(path)
        self._call(
            self.client.upload_file,
            str(path),
            self.bucket,
            self._full(key),
            ExtraArgs={"ContentType": content_type, "Metadata": {"sha256": digest}},
            Config=TransferConfig(
                multipart_threshold=MULTIPART_THRESHOLD, multipart_chunksize=MULTIPART_THRESHOLD
            ),
        )
        return Artifact(
            uri=self.uri(key), size_bytes=path.stat().st_size, sha256=digest, content_type=content_type
        )

    def put_bytes(self, key: str, data: bytes, content_type: str) -> Artifact:
        digest = hashlib.sha256(data).hexdigest()
        self._call(
            self.client.put_object,
            Bucket=self.bucket,
            Key=self._full(key),
            Body=data,
            ContentType=content_type,
            Metadata={"sha256": digest},
            ChecksumAlgorithm="SHA256",
        )
        return Artifact(uri=self.uri(key), size_bytes=len(data), sha256=digest, content_type=content_type)

    def get_file(self, key: str, dest: Path, max_bytes: int | None = None) -> Path:
        info = self.head(key)
        if info is None:
            raise ObjectNotFound(self.uri(key))
        if max_bytes is not None and info.size_bytes > max_bytes:
            raise InvalidInput(f"{self.uri(key)} is {info.size_bytes} bytes, over the {max_bytes}-byte limit")
        dest.parent.mkdir(parents=True, exist_ok=True)
        partial = dest.with_name(dest.name + ".partial")
        self._call(self.client.download_file, self.bucket, self._full(key), str(partial))
        partial.replace(dest)
        return dest

    def get_bytes(self, key: str) -> bytes:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self._full(key))
        except Exception as exc:
            if _missing(exc):
                raise ObjectNotFound(self.uri(key)) from None
            raise _classify(exc) from exc
        body: bytes = response["Body"].read()
        return body

    def head(self, key: str) -> ObjectInfo | None:
        try:
            response = self.client.head_object(Bucket=self.bucket, Key=self._full(key))
        except Exception as exc:
            if _missing(exc):
                return None
            raise _classify(exc) from exc
        return ObjectInfo(
            key,
            int(response["ContentLength"]),
            response.get("ContentType", "application/octet-stream"),
            response.get("Metadata", {}).get("sha256", ""),
        )

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
            for item in page.get("Contents", []):
                yield ObjectInfo(item["Key"][len(self.prefix) :], int(item["Size"]))

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
            raise _classify(exc) from exc


def _classify(exc: Exception) -> Exception:
    """botocore errors as ours: access problems are permanent, the rest worth a retry."""
    from contentgen.errors import PermanentError

    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    if code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "NoSuchBucket", "403"):
        return PermanentError(
            f"object store refused the request ({code}): check the store URL and credentials",
            reason="StoreAccessDenied",
        )
    if _missing(exc):
        return exc
    return TransientError(f"object store request failed: {exc}", reason="StoreUnavailable")
