"""Reading manifests: files, directories or stdin, multi-document YAML or JSON."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

MANIFEST_SUFFIXES = (".yaml", ".yml", ".json")


class _KubeLoader(yaml.SafeLoader):
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


def parse(text: str, source: str) -> list[Document]:
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
                docs.extend(Document(source, len(docs) + 1, item) for item in content["items"])
            else:
                docs.append(Document(source, len(docs) + 1, content))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        docs.append(Document(source, len(docs) + 1, None, f"not valid YAML: {where}{problem}"))
    return docs


def expand(paths: list[str]) -> Iterator[str]:
    """Files in the order given; directories walked recursively for manifest files."""
    for raw in paths:
        path = Path(raw)
        if raw != "-" and path.is_dir():
            yield from sorted(
                str(p) for p in path.rglob("*") if p.is_file() and p.suffix in MANIFEST_SUFFIXES
            )
        else:
            yield raw


def read(paths: list[str]) -> list[Document]:
    docs: list[Document] = []
    for name in expand(paths):
        if name == "-":
            docs += parse(sys.stdin.read(), "<stdin>")
            continue
        try:
            text = Path(name).read_text()
        except OSError as exc:
            docs.append(Document(name, 0, None, f"cannot read: {exc.strerror or exc}"))
            continue
        docs += parse(text, name)
    return docs


def load_one(path: str) -> dict[str, Any]:
    """The single resource in a manifest (for `contentgen run` and `render-job`)."""
    docs = read([path])
    errors = [d.error for d in docs if d.error]
    if errors:
        raise ValueError(f"{path}: {errors[0]}")
    if len(docs) != 1 or not isinstance(docs[0].content, dict):
        raise ValueError(f"{path}: expected exactly one resource, found {len(docs)} documents")
    content: dict[str, Any] = docs[0].content
    return content
