"""A checkpoint store on a local folder: where the trainer keeps its states when no object store
is handed in (the self-check, a process that need not survive)."""

from __future__ import annotations

import shutil
from pathlib import Path

from contentgen.files import sha256_file


class FolderFiles:
    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    def names(self) -> list[str]:
        return sorted(p.name for p in self.folder.iterdir() if p.is_file() and not p.name.startswith("."))

    def put(self, name: str, path: Path) -> str:
        target = self.folder / name
        if target.exists():
            if sha256_file(target) != sha256_file(path):
                raise FileExistsError(f"{target} holds other bytes; it is never overwritten")
            return self.uri(name)
        partial = self.folder / f".{name}.partial"
        shutil.copyfile(path, partial)
        partial.rename(target)
        return self.uri(name)

    def get(self, name: str, path: Path) -> Path:
        if path.resolve() != (self.folder / name).resolve():
            shutil.copyfile(self.folder / name, path)
        return path

    def uri(self, name: str) -> str:
        return (self.folder / name).resolve().as_uri()

    def delete(self, name: str) -> None:
        (self.folder / name).unlink(missing_ok=True)
