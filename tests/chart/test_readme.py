"""The chart's README names only what the chart has. Its prose once described kopf peering
(`ClusterKopfPeering`, `peeringName`) long after the chart dropped it: every identifier it quotes
in code (a camelCase or CamelCase word, or a dotted path of them) must be a value of values.yaml,
or a key or a word of what the chart renders, with every variant of values the tests render."""

from __future__ import annotations

import re
from functools import cache
from typing import Any

import pytest
import yaml

from tests.chart.conftest import CHART, VARIANTS, render_text

README = CHART / "README.md"
GENERATED = re.compile(r"<!-- values:start.*?<!-- values:end -->", re.DOTALL)
# A quoted identifier: `leaseName`, `worker.serviceAccount.annotations`, `jobs.<Kind>.ttl`,
# `worker.image.*`, `ClusterRole`.
IDENTIFIER = re.compile(r"`([A-Za-z][A-Za-z0-9]*(?:\.(?:[A-Za-z0-9]+|<[A-Za-z]+>|\*))*)`")
MIXED_CASE = re.compile(r"[a-z][A-Z]|^[A-Z][a-z]+[A-Z]")


def quoted(text: str) -> set[str]:
    """The identifiers a text quotes that could name something of the chart: dotted paths, and
    words in camelCase or CamelCase (plain words such as `kubectl` or `status` are prose)."""
    text = GENERATED.sub("", text)
    return {m for m in IDENTIFIER.findall(text) if "." in m or MIXED_CASE.search(m)}


def is_value(path: str, values: Any) -> bool:
    node = values
    for part in path.split("."):
        if part == "*":
            return isinstance(node, dict)
        if part.startswith("<"):  # a placeholder: any key at this level
            if not isinstance(node, dict) or not node:
                return False
            node = next(iter(node.values()))
            continue
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return True


def words(node: Any) -> set[str]:
    """Every key and every scalar (and each word of a string) of a rendered document."""
    if isinstance(node, dict):
        return {str(k) for k in node} | {w for v in node.values() for w in words(v)}
    if isinstance(node, list):
        return {w for v in node for w in words(v)}
    return set(re.findall(r"[A-Za-z][A-Za-z0-9.]*", str(node))) | {str(node)}


@cache
def rendered_words() -> frozenset[str]:
    out: set[str] = set()
    for values in VARIANTS.values():
        for doc in yaml.safe_load_all(render_text(values, include_crds=True)):
            out |= words(doc)
    return frozenset(out)


def unknown(text: str) -> list[str]:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    return sorted(n for n in quoted(text) if not is_value(n, values) and n not in rendered_words())


def test_the_readme_quotes_only_what_the_chart_has(helm: str) -> None:
    assert not unknown(README.read_text()), "the chart's README names what the chart does not have"


@pytest.mark.parametrize(
    "stale",
    [
        "Replicas elect a leader through `ClusterKopfPeering`.",
        "Set `peeringName` to share peering between releases.",
        "`worker.serviceAccount.annotation` applies to every worker.",
        "`jobs.<Kind>.retries` bounds the retries.",
    ],
)
def test_a_stale_sentence_is_found(helm: str, stale: str) -> None:
    assert len(unknown(README.read_text() + "\n" + stale + "\n")) == 1


def test_what_is_quoted_is_found() -> None:
    text = "`leaseName`, `worker.image.*`, `jobs.<Kind>.ttlSecondsAfterFinished`, `kubectl`, `status`"
    assert quoted(text) == {"leaseName", "worker.image.*", "jobs.<Kind>.ttlSecondsAfterFinished"}
