"""Counts are said as a person says them (issue 70): "1 person found", "(1 member)", "3 problems in
1 of 2 documents", never "1 people", "(1 members)" or "image(s)". One helper says them in Python
(api/words.py) and one in the web UI (format.js), and they agree; no message in the package or the
UI writes a count beside a "(s)" or a fixed plural (a sweep of the sources)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from contentgen.api.words import counted
from tests.conftest import ROOT

PACKAGE = ROOT / "operator" / "contentgen"
UI = PACKAGE / "httpapi" / "ui"
CASES = [
    (0, "image"),
    (1, "image"),
    (2, "image"),
    (1, "person"),
    (2, "person"),
    (1, "member"),
    (7, "member"),
    (1, "copy"),
    (3, "copy"),
    (2, "match"),
    (2, "stored object"),
    (1, "image generation"),
    (4, "image generation"),
    (2, "delivery"),
    (3, "failed try"),
    (2, "day"),
]
# a count interpolated right before a word that ends in "(s)": f"{n} image(s)", `${n} version(s)`
PY_MAYBE_PLURAL = re.compile(r"\{[^{}]+\}[\w ]*\w\(s\)")
JS_MAYBE_PLURAL = re.compile(r"\$\{[^{}]+\}[\w ]*\w\(s\)")
# a count interpolated right before a noun only the plural suits
FIXED_PLURAL = re.compile(r"(\$?\{(?:len\([^{}]*\)|[^{}]*(?:length|count|Count)[^{}]*)\}) (people|members)\b")


def test_counted_says_the_count_with_its_noun() -> None:
    said = [counted(n, noun) for n, noun in CASES]
    assert said[:6] == ["0 images", "1 image", "2 images", "1 person", "2 people", "1 member"]
    assert said[6:] == [
        "7 members",
        "1 copy",
        "3 copies",
        "2 matches",
        "2 stored objects",
        "1 image generation",
        "4 image generations",
        "2 deliveries",
        "3 failed tries",
        "2 days",
    ]
    assert counted(2, "child", "children") == "2 children"


def test_the_web_ui_counts_as_python_does() -> None:
    script = (
        f"import {{ counted }} from {json.dumps((UI / 'format.js').as_uri())};\n"
        f"console.log(JSON.stringify({json.dumps(CASES)}.map(([n, noun]) => counted(n, noun))));"
    )
    out = subprocess.run(
        ["node", "--input-type=module", "-e", script], capture_output=True, text=True, check=True, timeout=60
    ).stdout
    assert json.loads(out) == [counted(n, noun) for n, noun in CASES]


def _sources(root: Path, suffix: str) -> list[Path]:
    return sorted(p for p in root.rglob(f"*{suffix}") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("suffix", [".py", ".js"])
def test_no_message_counts_with_a_maybe_plural(suffix: str) -> None:
    maybe = PY_MAYBE_PLURAL if suffix == ".py" else JS_MAYBE_PLURAL
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _sources(PACKAGE, suffix)
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if maybe.search(line) or FIXED_PLURAL.search(line)
    ]
    assert found == [], "say counts with counted() (api/words.py, format.js):\n" + "\n".join(found)


def test_the_sweep_finds_what_it_looks_for() -> None:
    assert PY_MAYBE_PLURAL.search('f"{len(images)} image(s) {uri}"')
    assert PY_MAYBE_PLURAL.search('f"deleted {removed} stored object(s) of {what}"')
    assert JS_MAYBE_PLURAL.search("`${lora.versions.length} version(s)`")
    assert FIXED_PLURAL.search('print(f"({len(records)} members)")')
    assert FIXED_PLURAL.search('f"{len(people)} people found"')
    assert FIXED_PLURAL.search("`${item['memberCount']} members`") or FIXED_PLURAL.search(
        "f\"{item['memberCount']} members\""
    )
    assert not PY_MAYBE_PLURAL.search('"fal can only fetch LoRA weights from http(s) URLs"')
