"""The local directory store: what `contentgen run` uses by default (./contentgen-data/store).

Each object's SHA-256 is kept with its file, in the extended attribute `user.contentgen.sha256`
(set on the file before it is put in place, so the bytes and their digest appear together), and
every read is checked against it, as S3 objects are against their metadata: a file whose bytes
changed is StoredObjectCorrupt. A file system without user extended attributes (or a file put
there by hand) keeps no digest, and its reads are not checked.
"""

from __future__ import annotations

import contextlib
import hashlib
import mimetypes
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

from contentgen.api import Artifact
from contentgen.errors import InvalidInput, PermanentError
from contentgen.files import CHUNK

from .access import StorePlace
from .base import KeyTaken, ObjectInfo, ObjectNotFound, ObjectStore, StoredObjectCorrupt, download_checked

mimetypes.add_type("application/octet-stream", ".safetensors")
SHA256_ATTRIBUTE = "user.contentgen.sha256"
RESTORE = "restore it from a backup, or delete it and run again"


def content_type_of(key: str) -> str:
    return mimetypes.guess_type(key)[0] or "application/octet-stream"


class LocalStore(ObjectStore):
    def __init__(self, root: Path) -> None:
        self.root = root.expanduser().resolve()

    def __repr__(self) -> str:
        return f"LocalStore({self.root})"

    def check(self) -> None:
        """The directory exists (made here when it does not) and can be written."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.root):
                pass
        except OSError as exc:
            raise PermanentError(
                f"the store directory {self.root} cannot be written ({exc.strerror or exc}): set "
                "CONTENTGEN_STORE (contentgen run --store) to a directory you can write",
                reason="StoreAccessDenied",
            ) from None

    def _path(self, key: str) -> Path:
        if (
            not key
            or key.startswith("/")
            or any(part in ("", ".", "..") for part in key.rstrip("/").split("/"))
        ):
            raise ValueError(f"invalid object key {key!r}")
        return self.root / key

    def uri(self, key: str) -> str:
        return self._path(key).as_uri()

    def place(self) -> StorePlace:
        return StorePlace(root=str(self.root))

    def key_of(self, uri: str) -> str:
        parsed = urlparse(uri)
        if parsed.scheme != "file":
            raise ValueError(f"{uri} is not in the local store {self.root}")
        path = Path(unquote(parsed.path))
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            raise ValueError(f"{uri} is not in the local store {self.root}") from None

    def _write(self, key: str, chunks: Iterator[bytes], content_type: str, if_absent: bool) -> Artifact:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        digest, size = hashlib.sha256(), 0
        # Written beside the target, then put in place whole, so readers never see half an object.
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".partial-")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
                _record(out.fileno(), digest.hexdigest())
            if if_absent:
                # A hard link fails where the target exists (a rename would replace it): the
                # check and the write are one step of the file system.
                try:
                    os.link(tmp, target)
                except FileExistsError:
                    raise KeyTaken(key) from None
            else:
                os.replace(tmp, target)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return Artifact(
            uri=self.uri(key), size_bytes=size, sha256=digest.hexdigest(), content_type=content_type
        )

    def put_file(self, key: str, path: Path, content_type: str, *, if_absent: bool = False) -> Artifact:
        def chunks() -> Iterator[bytes]:
            with path.open("rb") as fh:
                while chunk := fh.read(CHUNK):
                    yield chunk

        return self._write(key, chunks(), content_type, if_absent)

    def put_bytes(self, key: str, data: bytes, content_type: str, *, if_absent: bool = False) -> Artifact:
        return self._write(key, iter([data]), content_type, if_absent)

    def get_file(self, key: str, dest: Path, max_bytes: int | None = None) -> Path:
        source = self._path(key)
        if not source.is_file():
            raise ObjectNotFound(self.uri(key))
        if max_bytes is not None and source.stat().st_size > max_bytes:
            raise InvalidInput(f"{self.uri(key)} is larger than the {max_bytes}-byte limit")
        with source.open("rb") as fh:
            recorded = _recorded(fh.fileno())
            chunks = iter(lambda: fh.read(CHUNK), b"")
            return download_checked(dest, chunks, lambda actual: self._check(key, recorded, actual))

    def get_bytes(self, key: str) -> bytes:
        source = self._path(key)
        if not source.is_file():
            raise ObjectNotFound(self.uri(key))
        with source.open("rb") as fh:
            recorded = _recorded(fh.fileno())
            data = fh.read()
        self._check(key, recorded, hashlib.sha256(data).hexdigest())
        return data

    def _check(self, key: str, recorded: str, sha256: str) -> None:
        """The bytes read are the ones written: their SHA-256 is the one recorded with the file."""
        if recorded and recorded != sha256:
            raise StoredObjectCorrupt(
                f"{self.uri(key)} is corrupt: its bytes hash to sha256 {sha256}, and {recorded} was "
                f"recorded when it was written; {RESTORE}"
            )

    def head(self, key: str) -> ObjectInfo | None:
        path = self._path(key)
        if not path.is_file():
            return None
        return ObjectInfo(key, path.stat().st_size, content_type_of(key), _recorded(path))

    def list(self, prefix: str) -> Iterator[ObjectInfo]:
        base = self.root / prefix if prefix else self.root
        start = base if base.is_dir() else base.parent
        if not start.is_dir():
            return
        for path in sorted(start.rglob("*")):
            if not path.is_file() or path.name.startswith(".partial-"):
                continue
            key = path.relative_to(self.root).as_posix()
            if key.startswith(prefix):
                yield ObjectInfo(key, path.stat().st_size, content_type_of(key))

    def delete(self, key: str) -> bool:
        path = self._path(key)
        if not path.is_file():
            return False
        path.unlink()
        return True

    def delete_prefix(self, prefix: str) -> int:
        if not prefix.endswith("/"):
            raise ValueError(f"refusing to delete {prefix!r}: a prefix must end with '/'")
        target = self._path(prefix)
        if not target.is_dir():
            return 0
        count = sum(1 for p in target.rglob("*") if p.is_file())
        shutil.rmtree(target)
        return count

    def presign(self, key: str, expires_seconds: int, download_name: str | None = None) -> str:
        # A local file needs no signature; the path is the link.
        if not self._path(key).is_file():
            raise ObjectNotFound(self.uri(key))
        return self.uri(key)


def _record(fd: int, sha256: str) -> None:
    """Keep `sha256` with the file open as `fd`, where the file system can."""
    with contextlib.suppress(AttributeError, OSError):  # not Linux, or no user attributes here
        os.setxattr(fd, SHA256_ATTRIBUTE, sha256.encode())


def _recorded(file: int | Path) -> str:
    """The SHA-256 kept with a file; empty when none was (see the module docstring)."""
    try:
        return os.getxattr(file, SHA256_ATTRIBUTE).decode()
    except (AttributeError, OSError, UnicodeDecodeError):
        return ""
