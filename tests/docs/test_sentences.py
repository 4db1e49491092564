"""The getting-started page is read by newcomers first: its sentences are short (issue 77: its
median sentence was 37 words). Code, tables and headings are left out; a sentence ends at `.`, `?`
or `!` before a space, or at the end of a paragraph."""

from __future__ import annotations

import re
import statistics

from tests.conftest import ROOT

GETTING_STARTED = ROOT / "docs" / "getting-started.md"
MEDIAN_WORDS = 15


def sentences(markdown: str) -> list[str]:
    prose = re.sub(r"^(`{3,}).*?^\1\s*$", "\n", markdown, flags=re.S | re.M)  # code blocks
    prose = re.sub(r"<!--.*?-->", "", prose, flags=re.S)
    found: list[str] = []
    for paragraph in re.split(r"\n\s*\n", prose):
        lines = [line for line in paragraph.splitlines() if not line.lstrip().startswith(("#", "|"))]
        text = re.sub(r"`[^`]*`", "X", " ".join(lines))  # a command: one word
        text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link: its words
        found += [s for s in re.split(r"(?<=[.!?])\s+", text) if s.split()]
    return found


def test_sentences_are_counted_as_a_reader_reads_them() -> None:
    text = "# Title\n\nOne two three. Four `contentgen run x`?\n\n```sh\nnot counted\n```\n[a b](x.md) c\n"
    assert [len(s.split()) for s in sentences(text)] == [3, 2, 3]


def test_the_getting_started_page_speaks_in_short_sentences() -> None:
    counts = [len(s.split()) for s in sentences(GETTING_STARTED.read_text())]
    assert len(counts) > 50 and statistics.median(counts) <= MEDIAN_WORDS, statistics.median(counts)
