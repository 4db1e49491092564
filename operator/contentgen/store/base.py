"""One interface over the object stores: S3 (and S3-compatibles) and a local directory."""

from __future__ import annotations

import hashlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from contentgen.api import Artifact
from contentgen.errors import PermanentError, TransientError
from contentgen.files import sha256_file

from .access import StorePlace


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


def content_disposition(name: str, disposition: str = "attachment") -> str:
    """A Content-Disposition header value for `name` (RFC 6266: an ASCII fallback, and the
    UTF-8 name percent-encoded)."""
    ascii_name = "".join(c if 32 <= ord(c) < 127 and c not in '"\\' else "_" for c in name)
    return f"{disposition}; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


class ObjectExists(PermanentError):
    """An output key that already holds other bytes: outputs are written once, never over."""

    reason = "ObjectExists"


class KeyTaken(Exception):
    """A create-if-absent found an object under the key (another writer's, or an earlier one)."""


class UploadsRefused(Exception):
    """The store answers a housekeeping call on unfinished multipart uploads (listing or aborting
    them) with AccessDenied, as a policy without that permission does, or NotImplemented, as an
    S3-compatible store without them does. Cleaning up is best effort: its callers say this once
    and go on (the bucket's lifecycle rule for incomplete uploads does it instead)."""

    def __init__(self, code: str, action: str) -> None:
        super().__init__(
            f"the object store refuses {action} ({code}): unfinished uploads are not cleaned up here; "
            f"grant {action} to this identity, or let the bucket's lifecycle rule abort incomplete "
            "multipart uploads (docs/install.md, the store's permissions)"
        )
        self.code, self.action = code, action


_SAID: set[str] = set()


def say_once(log: logging.Logger, refused: UploadsRefused) -> None:
    """One warning line a process for each refused action, however many runs, prefixes or uploads
    meet it: it says what to grant once, and the rest would be the same line."""
    if refused.action not in _SAID:
        _SAID.add(refused.action)
        log.warning("%s", refused)


class StoredObjectCorrupt(PermanentError):
    """An object whose bytes are not the ones recorded (their SHA-256) when it was written."""

    reason = "StoreCorrupt"


def download_checked(dest: Path, chunks: Iterable[bytes], check: Callable[[str], None]) -> Path:
    """Write `chunks` to `dest` through a `.partial` beside it, hashing as they come; `check(sha256)`
    raises for bytes that are not the stored object's, and then nothing is left at `dest`."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    digest = hashlib.sha256()
    try:
        with partial.open("wb") as out:
            for chunk in chunks:
                digest.update(chunk)
                out.write(chunk)
        check(digest.hexdigest())
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    partial.replace(dest)
    return dest


class ObjectStore(ABC):
    """Keys are relative ('loras/u/uid/v1/model.safetensors'); URIs name store and key."""

    # The keys written once since `record_writes()` (a run's outputs so far): None when not asked.
    _written: list[str] | None = None

    def record_writes(self) -> list[str]:
        """From now on, note each key `put_once_*` writes or finds already written, in order, in
        the list returned: what a run that fails has stored, so that its failure names it."""
        self._written = []
        return self._written

    @abstractmethod
    def uri(self, key: str) -> str:
        """s3://bucket/prefix/key or file:///dir/key."""

    @abstractmethod
    def key_of(self, uri: str) -> str:
        """The key of a URI of this store; ValueError for URIs of other stores."""

    def check(self) -> None:
        """Raise a ContentgenError naming what to fix when the store cannot be used at all (an S3
        bucket that does not exist, refused credentials); before a run records anything. A local
        store's directory is made when written to: nothing to look at."""
        return None

    @abstractmethod
    def place(self) -> StorePlace:
        """Every name its objects can be reached by (store/access.py): what a spec naming one is
        checked against."""

    def owns(self, uri: str) -> bool:
        try:
            self.key_of(uri)
        except ValueError:
            return False
        return True

    @abstractmethod
    def put_file(self, key: str, path: Path, content_type: str, *, if_absent: bool = False) -> Artifact:
        """Upload (streaming; multipart for large files) and return what was stored. With
        `if_absent`, the key is created only where no object is: KeyTaken otherwise, the check and
        the write being one step of the store (no writer can come between them)."""

    @abstractmethod
    def put_bytes(self, key: str, data: bytes, content_type: str, *, if_absent: bool = False) -> Artifact:
        """`put_file` for bytes in memory."""

    def put_once_bytes(self, key: str, data: bytes, content_type: str) -> Artifact:
        """Write an output once: an absent key is written; a key that already holds these very
        bytes (an earlier attempt of the same run, or a writer racing this one, stored them) is
        left alone and described; other bytes under it raise ObjectExists, and nothing is
        overwritten. Of writers racing on one key, exactly one writes: the store creates the key
        only where it is absent, in one step (`put_bytes(..., if_absent=True)`)."""
        digest = hashlib.sha256(data).hexdigest()
        create = lambda: self.put_bytes(key, data, content_type, if_absent=True)  # noqa: E731
        return self._once(key, digest, len(data), content_type, create)

    def put_once_file(self, key: str, path: Path, content_type: str) -> Artifact:
        """`put_once_bytes` for a file (streamed, as `put_file`)."""
        return self._once(
            key,
            sha256_file(path),
            path.stat().st_size,
            content_type,
            lambda: self.put_file(key, path, content_type, if_absent=True),
        )

    def _once(
        self, key: str, sha256: str, size: int, content_type: str, create: Callable[[], Artifact]
    ) -> Artifact:
        # The look first spares an upload the key already holds (a resumed run's outputs); the
        # conditional create is what keeps the promise when writers race between look and write.
        existing = self._existing(key, sha256, size, content_type)
        if existing is not None:
            return self._wrote(key, existing)
        try:
            return self._wrote(key, create())
        except KeyTaken:
            existing = self._existing(key, sha256, size, content_type)
        if existing is None:
            raise TransientError(
                f"{self.uri(key)} was written by another writer and deleted since; try again",
                reason="StoreUnavailable",
            )
        return self._wrote(key, existing)

    def _wrote(self, key: str, artifact: Artifact) -> Artifact:
        if self._written is not None and key not in self._written:
            self._written.append(key)
        return artifact

    def _existing(self, key: str, sha256: str, size: int, content_type: str) -> Artifact | None:
        info = self.head(key)
        if info is None:
            return None
        stored = info.sha256 or hashlib.sha256(self.get_bytes(key)).hexdigest()
        if stored != sha256:
            raise ObjectExists(
                f"{self.uri(key)} already holds other content ({info.size_bytes} bytes) from an earlier "
                "attempt of this run; outputs are never overwritten: look at it, and start a new run "
                "(edit the spec) to make new outputs"
            )
        return Artifact(uri=self.uri(key), size_bytes=size, sha256=sha256, content_type=content_type)

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

    def abort_uploads(self, prefix: str, older_than: float = 0.0) -> int:
        """Abort unfinished uploads under `prefix` begun more than `older_than` seconds ago (S3's
        multipart uploads, whose parts are stored and billed until then); how many. A store
        without them has none. UploadsRefused where the store refuses to list or abort them."""
        return 0

    @abstractmethod
    def delete_prefix(self, prefix: str) -> int:
        """Delete every object under `prefix` (which must end with '/'); returns how many."""

    @abstractmethod
    def presign(self, key: str, expires_seconds: int, download_name: str | None = None) -> str:
        """A URL that reads the object until it expires (file:// for the local store). With
        `download_name`, a store that can (S3) answers it with a Content-Disposition that saves
        it under that name."""
