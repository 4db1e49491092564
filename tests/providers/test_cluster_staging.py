"""provider: cluster's models staged from the object store (the real S3 server, versitygw) into a
node's cache volume: copied once and verified against SHA256SUMS, atomically (never a partial
directory under the model's name), once for pods that stage together (flock), copied again when
SHA256SUMS changes; a missing or incomplete prefix, damaged bytes or a bad SHA256SUMS are
ModelNotFound saying what to do."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from contentgen.errors import ModelNotFound
from contentgen.providers.cluster.staging import MANIFEST, locate, parse_manifest, stage
from contentgen.store import ObjectStore
from contentgen.store.s3 import S3Store
from tests.staged_models import sha256sums as manifest

FILES = {"config.json": b'{"layers": 2}', "model.bin": bytes(range(256)) * 4096, "sub/tokenizer.json": b"{}"}


class Counting:
    """The store, counting downloads (and slowed, so that racing stagers overlap)."""

    def __init__(self, store: ObjectStore, delay: threading.Event | None = None) -> None:
        self.store, self.downloads, self.delay = store, 0, delay
        self._lock = threading.Lock()

    def __getattr__(self, name: str):  # type: ignore[no-untyped-def]
        return getattr(self.store, name)

    def get_file(self, key: str, dest: Path, max_bytes: int | None = None) -> Path:
        with self._lock:
            self.downloads += 1
        if self.delay is not None:
            self.delay.wait(timeout=60)
        return self.store.get_file(key, dest, max_bytes)


def upload(store: ObjectStore, name: str, files: dict[str, bytes], sums: bytes | None = None) -> None:
    """As a platform team would: every file (plain uploads, none of our metadata) and SHA256SUMS."""
    import boto3

    assert isinstance(store, S3Store)
    client = boto3.client("s3")
    for relative, data in files.items():
        client.put_object(Bucket=store.bucket, Key=f"models/{name}/{relative}", Body=data)
    client.put_object(Bucket=store.bucket, Key=f"models/{name}/{MANIFEST}", Body=sums or manifest(files))


@pytest.fixture
def store(s3: str) -> ObjectStore:
    return S3Store(s3, "models")


def test_a_model_is_copied_once_and_verified(store: ObjectStore, tmp_path: Path) -> None:
    upload(store, "whisper-small", FILES)
    counting = Counting(store)
    root = tmp_path / "cache"
    path = stage(counting, "whisper-small", root)  # type: ignore[arg-type]
    assert path == root / "whisper-small"
    assert {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()} == {
        **FILES,
        MANIFEST: manifest(FILES),
    }
    assert counting.downloads == len(FILES)
    assert stage(counting, "whisper-small", root) == path  # type: ignore[arg-type]
    assert counting.downloads == len(FILES)  # staged already: nothing copied
    assert sorted(p.name for p in root.iterdir()) == [".whisper-small.lock", "whisper-small"]


def test_pods_of_one_node_copy_once(store: ObjectStore, tmp_path: Path) -> None:
    upload(store, "flux-schnell", FILES)
    release = threading.Event()
    counting = Counting(store, release)
    root, found, errors = tmp_path / "cache", [], []

    def pod() -> None:
        try:
            found.append(stage(counting, "flux-schnell", root))  # type: ignore[arg-type]
        except Exception as exc:  # reported below
            errors.append(exc)

    pods = [threading.Thread(target=pod) for _ in range(4)]
    for thread in pods:
        thread.start()
    # the first copier is in its first download, the others wait on the lock
    for _ in range(600):
        if counting.downloads:
            break
        threading.Event().wait(0.1)
    assert not (root / "flux-schnell").exists()  # nothing under the model's name until it is whole
    release.set()
    for thread in pods:
        thread.join(timeout=120)
    assert not errors and found == [root / "flux-schnell"] * 4
    assert counting.downloads == len(FILES)


def test_a_changed_sha256sums_is_copied_again_and_a_dead_copier_is_cleaned_up(
    store: ObjectStore, tmp_path: Path
) -> None:
    root = tmp_path / "cache"
    upload(store, "m", FILES)
    stage(store, "m", root)
    (root / ".m.partial-dead").mkdir()  # a pod killed mid-copy
    (root / ".m.partial-dead" / "model.bin").write_bytes(b"half")
    newer = {**FILES, "model.bin": b"new weights"}
    upload(store, "m", newer)
    path = stage(store, "m", root)
    assert (path / "model.bin").read_bytes() == b"new weights"
    assert sorted(p.name for p in root.iterdir()) == [".m.lock", "m"]


def test_missing_incomplete_or_damaged_models_are_model_not_found(store: ObjectStore, tmp_path: Path) -> None:
    root = tmp_path / "cache"
    with pytest.raises(
        ModelNotFound, match=r"'absent' is not in the models' store: s3://.*/models/absent/SHA256SUMS"
    ):
        stage(store, "absent", root)

    upload(store, "incomplete", {"config.json": FILES["config.json"]}, sums=manifest(FILES))
    with pytest.raises(
        ModelNotFound, match=r"incomplete: s3://.*/models/incomplete/model\.bin, listed in its"
    ):
        stage(store, "incomplete", root)

    damaged = {**FILES, "model.bin": b"other bytes"}
    upload(store, "damaged", damaged, sums=manifest(FILES))
    with pytest.raises(ModelNotFound, match=r"damaged: s3://.*/models/damaged/model\.bin hashes to sha256"):
        stage(store, "damaged", root)
    # nothing is left under a model's name, nor half-copied
    assert sorted(p.name for p in root.iterdir()) == [".damaged.lock", ".incomplete.lock"]

    with pytest.raises(ModelNotFound, match="not a directory name"):
        stage(store, "../escape", root)


def test_sha256sums_lines_are_checked() -> None:
    digest = "a" * 64
    assert parse_manifest(f"{digest}  ./model.bin\n{digest} *sub/x.json\n\n", "S") == {
        "model.bin": digest,
        "sub/x.json": digest,
    }
    for text, message in [
        ("", "lists no file"),
        ("model.bin", "line 1 is not `sha256sum` output"),
        (f"{digest}  ../etc/passwd", "names '../etc/passwd'"),
        (f"{digest}  /etc/passwd", "names '/etc/passwd'"),
    ]:
        with pytest.raises(ModelNotFound, match=message):
            parse_manifest(text, "S")


def test_locate_stages_from_the_configured_store(store: ObjectStore, tmp_path: Path, s3: str) -> None:
    upload(store, "tiny", FILES)
    env = {
        "CONTENTGEN_CLUSTER_MODELS_DIR": str(tmp_path / "cache"),
        "CONTENTGEN_CLUSTER_MODELS_STORE": f"s3://{s3}/models",
    }
    assert locate("tiny", ["model.bin", "config.json"], env=env) == tmp_path / "cache" / "tiny"
    with pytest.raises(ModelNotFound, match=r"incomplete: vocabulary\.txt missing"):
        locate("tiny", ["model.bin", "vocabulary.txt"], env=env)
    with pytest.raises(ModelNotFound, match="CONTENTGEN_CLUSTER_MODELS_STORE: unsupported store URL"):
        locate("tiny", ["model.bin"], env={**env, "CONTENTGEN_CLUSTER_MODELS_STORE": "ftp://x/y"})
