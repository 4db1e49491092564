"""One interface over the object stores: S3 (and S3-compatibles) and a local directory."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from contentgen.api import Artifact


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size_bytes: int
    content_type: str = "application/octet-stream"
    sha256: str = ""  # when the store knows it


class ObjectNotFound(KeyError):
    def __init__(self, uri: str) -> None:
        super().__init__(uri)
        self.uri = uri

    def __str__(self) -> str:
        return f"{self.uri} does not exist"


class ObjectStore(ABC):
    """Keys are relative ('loras/u/uid/v1/model.safetensors'); URIs name store and key."""

    @abstractmethod
    def uri(self, key: str) -> str:
        """s3://bucket/prefix/key or file:///dir/key."""

    @abstractmethod
    def key_of(self, uri: str) -> str:
        """The key of a URI of this store; ValueError for URIs of other stores."""

    def owns(self, uri: str) -> bool:
        try:
            self.key_of(uri)
        except ValueError:
            return False
        return True

    @abstractmethod
    def put_file(self, key: str, path: Path, content_type: str) -> Artifact:
        """Upload (streaming; multipart for large files) and return what was stored."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes, content_type: str) -> Artifact: ...

    @abstractmethod
    def get_file(self, key: str, dest: Path, max_bytes: int | None = None) -> Path:
        """Download to `dest`; ObjectNotFound when missing; InvalidInput when over max_bytes."""

    @abstractmethod
    def get_bytes(self, key: str) -> bytes: ...

    @abstractmethod
    def head(self, key: str) -> ObjectInfo | None: ...

    def exists(self, key: str) -> bool:
        return self.head(key) is not None

    @abstractmethod
    def list(self, prefix: str) -> Iterator[ObjectInfo]: ...

    @abstractmethod
    def delete(self, key: str) -> bool:
        """Delete one object; False when it did not exist."""

    @abstractmethod
    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under `prefix` (which must end with '/'); returns how many."""

    @abstractmethod
    def presign(self, key: str, expires_seconds: int) -> str:
        """A URL that reads the object until it expires (file:// for the local store)."""
