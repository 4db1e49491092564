"""Base models staged from the object store: with CONTENTGEN_CLUSTER_MODELS_STORE set
(`s3://bucket/prefix`), a model is the store's `prefix/NAME/`, listed with its SHA-256s in
`prefix/NAME/SHA256SUMS` (`sha256sum`'s format), and the worker copies it once per node into the
models' root, a cache volume (CONTENTGEN_CLUSTER_MODELS_DIR) that outlives its pods.

The copy is made whole or not at all: into a partial directory beside the model's, each file
checked against SHA256SUMS, then renamed into place (a rename is atomic on one filesystem). A lock
file in the root (flock) makes the pods of one node copy once: the others wait for it, then find
the model staged. A model whose SHA256SUMS changed is copied again. A missing SHA256SUMS, a file it
lists that the store lacks, or bytes that do not match are `ModelNotFound`, before any GPU work."""

from __future__ import annotations

import fcntl
import re
import shutil
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from contentgen.errors import ModelNotFound
from contentgen.files import sha256_file
from contentgen.providers.settings import ClusterWorkerSettings, from_environment
from contentgen.store import ObjectNotFound, ObjectStore, open_store

from .models import check_name, model_dir

MODELS_STORE_ENV = "CONTENTGEN_CLUSTER_MODELS_STORE"
MANIFEST = "SHA256SUMS"

# sha256sum's lines: the digest, a space, a space or '*' (binary mode), the path
_LINE = re.compile(r"^([0-9a-fA-F]{64}) [ *](.+)$")


def parse_manifest(text: str, where: str) -> dict[str, str]:
    """{relative path: sha256} from a SHA256SUMS; ModelNotFound naming `where` when a line is not
    `sha256sum`'s or a path leaves the model's directory."""
    files: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _LINE.match(line)
        if match is None:
            raise ModelNotFound(
                f"{where} line {number} is not `sha256sum` output: make it with docs/cluster-gpus.md"
            )
        digest, name = match.group(1).lower(), match.group(2).removeprefix("./")
        path = PurePosixPath(name)
        if path.is_absolute() or ".." in path.parts or name in {"", MANIFEST}:
            raise ModelNotFound(
                f"{where} line {number} names {name!r}: list paths inside the model's directory"
            )
        files[str(path)] = digest
    if not files:
        raise ModelNotFound(f"{where} lists no file: make it with docs/cluster-gpus.md")
    return files


def stage(store: ObjectStore, name: str, root: Path) -> Path:
    """`root/name`, copied from the store's `name/` once and verified (see the module's docstring)."""
    check_name(name, root)
    manifest_key = f"{name}/{MANIFEST}"
    try:
        manifest = store.get_bytes(manifest_key)
    except ObjectNotFound:
        raise ModelNotFound(
            f"model {name!r} is not in the models' store: {store.uri(manifest_key)} does not exist "
            "(upload the model's directory with its SHA256SUMS, see docs/cluster-gpus.md)"
        ) from None
    wanted = parse_manifest(manifest.decode("utf-8", "replace"), store.uri(manifest_key))
    final = root / name
    if _current(final, manifest):
        return final
    root.mkdir(parents=True, exist_ok=True)
    with _locked(root / f".{name}.lock"):
        if _current(final, manifest):  # another pod of the node copied it while this one waited
            return final
        for stale in root.glob(f".{name}.partial-*"):  # a copier that died; the lock is ours now
            shutil.rmtree(stale, ignore_errors=True)
        partial = root / f".{name}.partial-{uuid.uuid4().hex[:12]}"
        try:
            _copy(store, name, wanted, partial)
            (partial / MANIFEST).write_bytes(manifest)
            old = None
            if final.exists():  # staged from an earlier SHA256SUMS: replaced, never mixed
                old = root / f".{name}.old-{uuid.uuid4().hex[:12]}"
                final.rename(old)
            partial.rename(final)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            if partial.exists():
                shutil.rmtree(partial, ignore_errors=True)
    return final


def locate(
    name: str,
    required: Iterable[str],
    *,
    env: Mapping[str, str] | None = None,
    opener: Callable[[str], ObjectStore] = open_store,
) -> Path:
    """The directory of model `name`: staged from the models' store first when one is configured,
    then checked for its `required` files under the models' root (`models.model_dir`)."""
    worker = from_environment(ClusterWorkerSettings, env)
    return staged(
        name, required, root=worker.cluster_models_dir, url=worker.cluster_models_store, opener=opener
    )


def staged(
    name: str,
    required: Iterable[str],
    *,
    root: Path,
    url: str,
    opener: Callable[[str], ObjectStore] = open_store,
) -> Path:
    """`locate` with the models' root and store prefix given (`url` empty: no staging)."""
    if url:
        try:
            store = opener(url)
        except ValueError as exc:
            raise ModelNotFound(f"{MODELS_STORE_ENV}: {exc}") from None
        stage(store, name, root)
    return model_dir(name, required, root=root)


def _current(final: Path, manifest: bytes) -> bool:
    try:
        return (final / MANIFEST).read_bytes() == manifest
    except OSError:
        return False


def _copy(store: ObjectStore, name: str, wanted: dict[str, str], into: Path) -> None:
    into.mkdir()
    for relative, digest in sorted(wanted.items()):
        dest = into / relative
        dest.parent.mkdir(parents=True, exist_ok=True)
        key = f"{name}/{relative}"
        try:
            store.get_file(key, dest)
        except ObjectNotFound:
            raise ModelNotFound(
                f"model {name!r} in the models' store is incomplete: {store.uri(key)}, listed in its "
                "SHA256SUMS, does not exist (upload the whole directory)"
            ) from None
        actual = sha256_file(dest)
        if actual != digest:
            raise ModelNotFound(
                f"model {name!r} in the models' store is damaged: {store.uri(key)} hashes to sha256 "
                f"{actual}, its SHA256SUMS says {digest} (upload it again)"
            )


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive flock on `path`, released when the block ends or the process dies."""
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
