"""Reading manifests: files, directories or stdin, multi-document YAML or JSON.

Directories are walked the way a GitOps repository needs: dot-directories (.git, .venv, ...),
Helm chart templates (the `templates/` folder beside a Chart.yaml: they are not YAML until
rendered) and paths matching an exclude glob are not read, and a file that never mentions
contentgen cannot hold a contentgen resource, so it is not parsed. What was passed over is
listed in `Read.skipped` (`contentgen validate --verbose` prints it).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import yaml

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")
# A file without any of these cannot hold a contentgen resource (or a near miss worth reporting).
MARKERS = (
    b"contentgen",
    b"LoraTraining",
    b"ImageGeneration",
    b"Transcription",
    b"LoraEvaluation",
    b"VideoGeneration",
)

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when the wheel has it


class _KubeLoader(_Base):  # type: ignore[misc]
    """YAML as Kubernetes reads it: timestamps stay strings (the API server sees JSON)."""


_KubeLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


@dataclass
class Document:
    source: str  # file path or <stdin>
    index: int  # 1-based position in the file
    content: Any  # what the YAML held
    error: str = ""  # why it could not be read, when it could not
    walked: bool = False  # found by walking a directory (not named on the command line)

    @property
    def label(self) -> str:
        content = self.content if isinstance(self.content, dict) else {}
        kind = content.get("kind")
        meta = content.get("metadata")
        name = meta.get("name") if isinstance(meta, dict) else None
        where = f"document {self.index}"
        if kind and name:
            return f"{kind}/{name} ({where})"
        if kind:
            return f"{kind} ({where})"
        return where


@dataclass
class Read:
    documents: list[Document] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why), not read or not parsed
    files: int = 0  # manifest files looked at


def parse(text: str, source: str, walked: bool = False) -> list[Document]:
    docs: list[Document] = []
    try:
        for content in yaml.load_all(text, Loader=_KubeLoader):
            if content is None:
                continue
            if (
                isinstance(content, dict)
                and content.get("kind") == "List"
                and isinstance(content.get("items"), list)
            ):
                docs.extend(Document(source, len(docs) + 1, item, walked=walked) for item in content["items"])
            else:
                docs.append(Document(source, len(docs) + 1, content, walked=walked))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        docs.append(Document(source, len(docs) + 1, None, f"not valid YAML: {where}{problem}", walked))
    return docs


def _excluded(relative: str, name: str, excludes: Iterable[str]) -> bool:
    return any(fnmatch(relative, glob) or fnmatch(name, glob) for glob in excludes)


def walk(root: Path, excludes: tuple[str, ...], skipped: list[tuple[str, str]]) -> Iterator[Path]:
    """Manifest files under `root`, sorted, leaving out what the module docstring says."""
    found: list[Path] = []
    for directory, dirs, files in os.walk(root):
        here = Path(directory)
        relative_dir = here.relative_to(root).as_posix()
        kept = []
        for name in sorted(dirs):
            relative = name if relative_dir == "." else f"{relative_dir}/{name}"
            if name.startswith("."):
                skipped.append((str(here / name) + "/", "dot-directory"))
            elif name == "templates" and "Chart.yaml" in files:
                skipped.append((str(here / name) + "/", "Helm chart templates (render them to validate)"))
            elif _excluded(relative, name, excludes):
                skipped.append((str(here / name) + "/", "excluded"))
            else:
                kept.append(name)
        dirs[:] = kept
        for name in files:
            if not name.endswith(MANIFEST_SUFFIXES):
                continue
            relative = name if relative_dir == "." else f"{relative_dir}/{name}"
            if _excluded(relative, name, excludes):
                skipped.append((str(here / name), "excluded"))
            else:
                found.append(here / name)
    yield from sorted(found)


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ValueError(
            f"not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}): save it as UTF-8, as "
            "Kubernetes and Git tools expect (e.g. iconv -f latin1 -t utf-8)"
        ) from None


def read(paths: list[str], excludes: tuple[str, ...] = ()) -> Read:
    """Every document in `paths` (files, directories, or - for stdin)."""
    out = Read()
    for raw in paths:
        if raw == "-":
            out.documents += parse(sys.stdin.read(), "<stdin>")
            continue
        path = Path(raw)
        if path.is_dir():
            for file in walk(path, excludes, out.skipped):
                _read_file(file, out, walked=True)
        else:
            _read_file(path, out, walked=False)
    return out


def _read_file(path: Path, out: Read, *, walked: bool) -> None:
    name = str(path)
    out.files += 1
    try:
        data = path.read_bytes()
    except OSError as exc:
        out.documents.append(Document(name, 0, None, f"cannot read: {exc.strerror or exc}", walked))
        return
    if walked and not any(marker in data for marker in MARKERS):
        out.skipped.append((name, "no contentgen resources in it"))
        return
    try:
        text = _decode(data)
    except ValueError as exc:
        out.documents.append(Document(name, 0, None, str(exc), walked))
        return
    out.documents += parse(text, name, walked)


def load_one(path: str) -> dict[str, Any]:
    """The single resource in a manifest (for `contentgen run` and `render-job`)."""
    docs = read([path]).documents
    errors = [d.error for d in docs if d.error]
    if errors:
        raise ValueError(f"{path}: {errors[0]}")
    if len(docs) != 1 or not isinstance(docs[0].content, dict):
        raise ValueError(f"{path}: expected exactly one resource, found {len(docs)} documents")
    content: dict[str, Any] = docs[0].content
    return content
