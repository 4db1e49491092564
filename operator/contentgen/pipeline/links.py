"""Links a provider can fetch: presigned URLs for objects in S3, public URLs as they are."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlparse

from contentgen.api import is_local_path
from contentgen.errors import InvalidInput
from contentgen.store import ObjectNotFound, ObjectStore


def provider_url(uri: str, store: ObjectStore, expires_seconds: int) -> str:
    scheme = urlparse(uri).scheme
    if scheme in ("https", "http"):
        return uri
    try:
        if store.owns(uri):
            return store.presign(store.key_of(uri), expires_seconds)
        if scheme == "s3":
            from contentgen.store.s3 import S3Store

            parsed = urlparse(uri)
            other = S3Store(parsed.netloc)
            return other.presign(parsed.path.lstrip("/"), expires_seconds)
    except ObjectNotFound:
        raise InvalidInput(f"{uri} does not exist") from None
    if scheme == "file":
        return uri  # only the offline and cluster providers can use it; live providers refuse file:// links
    if is_local_path(uri):  # a local run's file by its path (validation let only local runs have one)
        return Path(uri).expanduser().resolve().as_uri()
    raise InvalidInput(f"cannot hand {uri} to a provider: use https:// or s3://")
