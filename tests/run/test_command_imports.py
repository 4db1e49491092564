"""`contentgen COMMAND` imports what COMMAND needs, not every subcommand's modules: the worker
image's entrypoint starts every Job, and the parser that imported all eleven subcommands (the
catalog, OpenCV, the HTTP API, kopf) cost each Job's worker about a second of CPU before it began.
And an offline run of each example imports no model stack, and of the libraries that weigh only its
stages' own (issue 71)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from contentgen.cli.main import COMMANDS, build_parser, chosen


def imported_by(*argv: str) -> set[str]:
    """The modules a fresh `python -m contentgen ARGV` process has imported when it ends."""
    probe = (
        "import runpy, sys\n"
        f"sys.argv = ['contentgen', *{list(argv)!r}]\n"
        "try:\n"
        "    runpy.run_module('contentgen', run_name='__main__')\n"
        "except SystemExit:\n"
        "    pass\n"
        "print('\\n'.join(sorted(sys.modules)))\n"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(done.stdout.split())


HEAVY = ("contentgen.catalog", "contentgen.httpapi", "contentgen.controller", "cv2", "kopf", "fastapi")


@pytest.mark.parametrize("argv", [("worker", "--help"), ("validate", "--help"), ("--help",)])
def test_a_command_does_not_import_the_other_commands(argv: tuple[str, ...]) -> None:
    modules = imported_by(*argv)
    others = {module for name, (module, _) in COMMANDS.items() if name != argv[0]}
    assert not modules & others, sorted(modules & others)
    assert not [m for m in modules if m.split(".")[0] in HEAVY or m.startswith(HEAVY)]


def test_the_full_parser_and_one_commands_parse_alike() -> None:
    """The reference docs read the full parser; a run parses with its command's alone."""
    argv = ["assets", "list", "--owner", "alice", "-o", "json"]
    assert vars(build_parser().parse_args(argv)) == vars(build_parser("assets").parse_args(argv))
    assert build_parser("worker").format_help() == build_parser().format_help()  # `contentgen --help`


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (["worker"], "worker"),
        (["--version"], None),
        ([], None),
        (["nope", "run"], None),
        (["-h", "run"], "run"),
    ],
)
def test_the_chosen_command_is_the_first_word(argv: list[str], name: str | None) -> None:
    assert chosen(argv) == name


# An offline `contentgen run` of each example imports what its stages use, when they run (issue
# 71): never the model stack (torch, diffusers, transformers and the rest of the GPU extra:
# tests/harness/demo.py's HEAVY, which `make demo`'s own virtualenv leaves out), and of the
# libraries that weigh, only those of its kind's stages. Each run in a process of its own, in
# `make demo`'s order (a later example uses an earlier one's LoRA), with notification.yaml last.
WEIGHTY: tuple[str, ...] = (
    "numpy",
    "cv2",
    "av",
    "PIL",
    "scipy",
    "skimage",
    "sklearn",
    "matplotlib",
    "onnxruntime",
)
WEIGHTY += ("httpx", "fastapi", "starlette", "uvicorn", "kopf", "kubernetes", "aiohttp", "boto3")
WEIGHTY += ("pymongo", "safetensors", "huggingface_hub", "rich", "pandas", "mongomock")
USES = {
    # frames decoded (av), looked at and written (cv2: faces, crops, the contact sheet), pictures
    # drawn and scored for likeness
    "loratraining.yaml": {"numpy", "cv2", "av"},
    # and each checkpoint's clips read back as one mosaic picture, its frames' times in its PNG
    # text chunks (PIL: providers/clip_frames.py)
    "loratraining-video.yaml": {"numpy", "cv2", "av", "PIL"},
    "loratraining-early-stop.yaml": {"numpy", "cv2", "av"},
    # placeholder pictures drawn and encoded; a LoRA's scored for likeness
    "imagegeneration.yaml": {"numpy", "cv2"},
    "imagegeneration-lora.yaml": {"numpy", "cv2"},
    "loraevaluation.yaml": {"numpy", "cv2"},
    # a clip written (av) from pictures (cv2)
    "videogeneration.yaml": {"numpy", "cv2", "av"},
    "videogeneration-portrait.yaml": {"numpy", "cv2", "av"},
    "videogeneration-lora.yaml": {"numpy", "cv2", "av"},
    # the audio's duration measured (av)
    "transcription.yaml": {"av"},
    "notification.yaml": set(),
}
RUN_PROBE = """
import runpy, sys
sys.argv = ["contentgen", *sys.argv[1:]]
try:
    runpy.run_module("contentgen", run_name="__main__")
except SystemExit as end:
    if end.code:
        raise
print(" ".join(sorted({name.partition(".")[0] for name in sys.modules})))
"""


@pytest.mark.slow
def test_an_offline_run_of_each_example_imports_only_what_its_stages_use(tmp_path: Path) -> None:
    from tests.conftest import EXAMPLES
    from tests.harness.demo import HEAVY, demo_commands

    runs = [c for c in demo_commands() if c[0] == "run"] + [
        ["run", "--offline", "examples/notification.yaml"]
    ]
    examples = {p.name for p in EXAMPLES.glob("*.yaml")}
    assert examples == set(USES), f"USES says what each example's run may import: add {examples - set(USES)}"
    assert sorted(Path(c[-1]).name for c in runs) == sorted(examples)  # each run once
    (tmp_path / "examples").symlink_to(EXAMPLES)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONTENTGEN_", "FAL_", "ASSEMBLYAI_"))}
    imported = {}
    for argv in runs:
        done = subprocess.run(
            [sys.executable, "-c", RUN_PROBE, *argv],
            cwd=tmp_path,
            env={**env, "CONTENTGEN_WORK_DIR": str(tmp_path / "work")},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert done.returncode == 0, (argv, done.stderr[-2000:])
        imported[Path(argv[-1]).name] = set(done.stdout.split())
    stacks = {
        name: sorted(m for m in modules if m.replace("_", "-").startswith(HEAVY))
        for name, modules in imported.items()
    }
    assert stacks == {name: [] for name in USES}
    assert {name: modules & set(WEIGHTY) for name, modules in imported.items()} == USES
