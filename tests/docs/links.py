"""Links in markdown, checked without the network: a relative link names a file of the repository
that exists, and an anchor a heading of it (as GitHub makes anchors); an external link is a
well-formed http(s) URL. Links inside code (fenced blocks, `inline code`) are not links."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from urllib.parse import unquote, urlsplit

INLINE_LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?(?P<target>[^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
AUTOLINK = re.compile(r"<(?P<target>https?://[^>\s]+)>")
INLINE_CODE = re.compile(r"(`+)(?:(?!\1).)+?\1")
HEADING = re.compile(r"^(#{1,6})\s+(?P<text>.+?)\s*#*\s*$")
HTML_ID = re.compile(r"""<a\s+(?:name|id)=["'](?P<id>[^"']+)["']""")
HOST = re.compile(
    r"^(?:localhost|(?:\d{1,3}\.){3}\d{1,3}|(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,})(?::\d+)?$"
)


@dataclass(frozen=True)
class Link:
    path: Path
    line: int
    target: str


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks, with inline code blanked."""
    out = []
    fence = ""
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if fence:
            if stripped.startswith(fence) and not stripped[len(fence) :].strip():
                fence = ""
            continue
        if stripped.startswith(("```", "~~~")):
            marker = stripped[0]
            fence = stripped[: len(stripped) - len(stripped.lstrip(marker))]
            continue
        out.append((number, INLINE_CODE.sub("code", line)))
    return out


def links(path: Path) -> list[Link]:
    found = []
    for number, line in prose_lines(path.read_text()):
        for pattern in (INLINE_LINK, AUTOLINK):
            found += [Link(path, number, m["target"]) for m in pattern.finditer(line)]
    return found


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: markup and punctuation dropped, lower case, each space a
    hyphen (runs are not collapsed)."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text
    text = re.sub(r"<[^>]+>", "", text).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


@cache
def anchors(path: Path) -> frozenset[str]:
    seen: Counter[str] = Counter()
    result = set()
    for _, line in prose_lines(path.read_text()):
        result |= {m["id"] for m in HTML_ID.finditer(line)}
        match = HEADING.match(line)
        if match:
            slug = github_slug(match["text"])
            result.add(slug if not seen[slug] else f"{slug}-{seen[slug]}")
            seen[slug] += 1
    return frozenset(result)


def problem(link: Link, root: Path) -> str:
    """Why the link is broken, or ""."""
    target = link.target
    parts = urlsplit(target)
    if parts.scheme in ("http", "https"):
        if not HOST.match(parts.netloc.lower()) or " " in target:
            return "not a well-formed URL"
        return ""
    if parts.scheme or target.startswith("//"):
        return "" if parts.scheme == "mailto" else f"a {parts.scheme or 'protocol-relative'} link"
    file_part, _, anchor = target.partition("#")
    if file_part:
        resolved = (link.path.parent / unquote(file_part)).resolve()
        if not resolved.is_relative_to(root):
            return "points outside the repository"
        if not resolved.exists():
            return f"{resolved.relative_to(root)} does not exist"
    else:
        resolved = link.path
    if anchor:
        if resolved.suffix != ".md" or resolved.is_dir():
            return "an anchor into a file that is not markdown"
        if unquote(anchor) not in anchors(resolved):
            return f"{resolved.relative_to(root)} has no heading for #{anchor}"
    return ""
