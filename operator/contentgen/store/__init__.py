"""Object stores: one interface (ObjectStore), one key layout (keys), two backends."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlparse

from contentgen.files import sha256_file

from .base import ObjectInfo, ObjectNotFound, ObjectStore
from .local import LocalStore

DEFAULT_LOCAL_STORE = "./contentgen-data/store"


def open_store(url: str) -> ObjectStore:
    """`file://DIR`, a plain directory path, or `s3://bucket[/prefix]`."""
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        if not parsed.netloc:
            raise ValueError(f"store URL {url!r} names no bucket: use s3://bucket or s3://bucket/prefix")
        from .s3 import S3Store

        return S3Store(parsed.netloc, parsed.path)
    if parsed.scheme == "file":
        return LocalStore(Path(unquote(parsed.netloc + parsed.path)))
    if parsed.scheme == "":
        return LocalStore(Path(url))
    raise ValueError(f"unsupported store URL {url!r}: use file://DIR, a directory, or s3://bucket/prefix")


__all__ = [
    "DEFAULT_LOCAL_STORE",
    "LocalStore",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "open_store",
    "sha256_file",
]
