"""`make demo`, as the tests read it: its contentgen commands in its order, and the packages its
own virtualenv (.venv-demo) must never need (tests/test_demo_set.py)."""

from __future__ import annotations

import re

from tests.conftest import ROOT

# What the demo must never need: the GPU extra's torch and its CUDA libraries, and what only it runs.
HEAVY: tuple[str, ...] = (
    "torch",
    "triton",
    "nvidia",
    "diffusers",
    "transformers",
    "accelerate",
    "peft",
    "bitsandbytes",
)
HEAVY += ("torchao", "faster-whisper", "ctranslate2", "tensorflow", "onnxruntime")


def demo_commands() -> list[list[str]]:
    """`make demo`'s contentgen commands, in its order, then `contentgen api --local --offline`."""
    commands = []
    for line in (
        (ROOT / "Makefile").read_text().split("\ndemo: demo-install", 1)[1].split("\n\n", 1)[0].splitlines()
    ):
        found = re.match(r"^\t\$\(DEMO\) (.*?)(?: \|.*)?$", line)
        if found:
            commands.append(found.group(1).replace('"', "").split())
    promote = next(c for c in commands if c[:2] == ["assets", "promote"])
    promote[promote.index("--note") + 1 : promote.index("-o")] = ["the demo's note"]
    return [*commands, ["api", "--local", "--offline"]]
