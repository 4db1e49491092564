"""Object stores: one interface (ObjectStore), one key layout (keys), two backends."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from contentgen.files import sha256_file

from .base import ObjectExists, ObjectInfo, ObjectNotFound, ObjectStore
from .local import LocalStore

DEFAULT_LOCAL_STORE = "./contentgen-data/store"


PUBLIC_ENDPOINT_ENV = "CONTENTGEN_STORE_PUBLIC_ENDPOINT_URL"


def open_store(url: str, public_endpoint_url: str | None = None) -> ObjectStore:
    """`file://DIR`, a plain directory path, or `s3://bucket[/prefix]`. For S3, presigned links are
    signed for `public_endpoint_url` (default $CONTENTGEN_STORE_PUBLIC_ENDPOINT_URL) when set: the
    endpoint as browsers and providers reach it, where the store's own may be in-cluster only."""
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"store URL {url!r} names no bucket: use s3://bucket or s3://bucket/prefix")
        from .s3 import S3Store

        public = (
            public_endpoint_url if public_endpoint_url is not None else os.environ.get(PUBLIC_ENDPOINT_ENV)
        )
        return S3Store(parsed.netloc, parsed.path, public_endpoint_url=public or None)
    if parsed.scheme == "file":
        return LocalStore(Path(unquote(parsed.netloc + parsed.path)))
    if parsed.scheme == "":
        return LocalStore(Path(url))
    raise ValueError(f"unsupported store URL {url!r}: use file://DIR, a directory, or s3://bucket/prefix")


__all__ = [
    "DEFAULT_LOCAL_STORE",
    "LocalStore",
    "ObjectExists",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "open_store",
    "sha256_file",
]
