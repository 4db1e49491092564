"""What an image is built from, and the cache key that names it (scripts/images.py).

The build context is the repository minus what `.dockerignore` excludes, with docker's rules:
patterns are paths relative to the root, `*` and `?` stay inside one path segment, `**` spans any
number of them, a pattern matches a path and everything under it, `!` re-includes, and the last
matching pattern wins. The key is a SHA-256 over the Dockerfile, every context file (path,
executable bit, content), the base image's id and the tag the image gets: any change to what the
build could see is a new key, and the same inputs give the same key on any machine.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

# Bumped when how an image is built changes in a way the inputs below do not show (the builder's
# flags, the trim): every cached image is then rebuilt once.
RECIPE = "contentgen-images/1"


@dataclass(frozen=True)
class Pattern:
    regex: re.Pattern[str]
    negate: bool
    segments: tuple[str, ...]  # the pattern's segments, for pruning directories while walking


def _segment_regex(pattern: str) -> str:
    out = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            if pattern.startswith("/", i):  # `**/` also matches no directory at all
                out[-1] = "(?:.*/)?"
                i += 1
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


def parse_dockerignore(text: str) -> list[Pattern]:
    patterns = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        body = os.path.normpath(line.removeprefix("!").strip()).lstrip("/")
        if body in (".", ""):
            continue
        patterns.append(Pattern(re.compile(_segment_regex(body)), negate, tuple(body.split("/"))))
    return patterns


def ignored(path: str, patterns: Iterable[Pattern]) -> bool:
    """Whether `path` (relative, with `/`) is left out of the build context."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    result = False
    for pattern in patterns:
        if any(pattern.regex.fullmatch(p) for p in prefixes):
            result = not pattern.negate
    return result


def _may_reinclude(directory: str, patterns: Iterable[Pattern]) -> bool:
    """Whether a `!` pattern could match something under an ignored `directory`."""
    parts = directory.split("/")
    for pattern in patterns:
        if not pattern.negate:
            continue
        if "**" in pattern.segments[: len(parts)]:
            return True
        head = "/".join(pattern.segments[: len(parts)])
        if re.fullmatch(_segment_regex(head), directory):
            return True
    return False


def context_files(root: Path, patterns: list[Pattern]) -> Iterator[str]:
    """The build context's files, relative to `root`, sorted; ignored directories are not walked
    (a .venv or .git is never read) unless a `!` pattern could re-include something in them."""
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        rel = "" if rel == "." else rel.replace(os.sep, "/")
        keep = []
        for name in sorted(dirnames):
            path = f"{rel}/{name}" if rel else name
            if not ignored(path, patterns) or _may_reinclude(path, patterns):
                keep.append(name)
        dirnames[:] = keep
        for name in sorted(filenames):
            path = f"{rel}/{name}" if rel else name
            if not ignored(path, patterns):
                yield path


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def context_manifest(root: Path) -> list[tuple[str, bool, str]]:
    """(path, executable, sha256) of every file in the build context, sorted by path."""
    ignore = root / ".dockerignore"
    patterns = parse_dockerignore(ignore.read_text()) if ignore.exists() else []
    result = []
    for rel in sorted(context_files(root, patterns)):
        path = root / rel
        if path.is_symlink() or not path.is_file():
            continue
        result.append((rel, os.access(path, os.X_OK), file_digest(path)))
    return result


def cache_key(dockerfile: bytes, manifest: list[tuple[str, bool, str]], base_id: str, image: str) -> str:
    """The content key of one image: equal inputs, equal key."""
    document = {
        "recipe": RECIPE,
        "dockerfile": hashlib.sha256(dockerfile).hexdigest(),
        "context": manifest,
        "base": base_id,
        "image": image,
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()
