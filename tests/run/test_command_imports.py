"""`contentgen COMMAND` imports what COMMAND needs, not every subcommand's modules: the worker
image's entrypoint starts every Job, and the parser that imported all eleven subcommands (the
catalog, OpenCV, the HTTP API, kopf) cost each Job's worker about a second of CPU before it began.
What an offline run of each example imports is read from the demo's own runs (tests/test_demo_set.py),
which run each in a process of its own."""

from __future__ import annotations

import subprocess
import sys

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
