"""Commands the docs show but do not run are still commands that exist. Runnable blocks run
(test_runnable.py); every other `contentgen ...` line of a shell block is parsed by contentgen's
own argument parser, every usage line and quoted command (`contentgen assets get`) must name
commands and actions that exist, and no `kubectl get -w` anywhere (docs, the chart's NOTES) names
more than one kind: kubectl watches one ("you may only specify a single resource type")."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

import pytest

from contentgen.cli.main import COMMANDS, build_parser
from contentgen.docs import _subcommands
from tests.conftest import ROOT
from tests.docs.blocks import documents

NOTES = ROOT / "charts" / "contentgen" / "templates" / "NOTES.txt"
FENCE = re.compile(r"^\s*(`{3,})(?P<lang>[a-z]*)\s*$")
SHELLS = {"sh", "bash", "shell", "console"}
INLINE = re.compile(r"(?<!`)`((?:\.venv/bin/)?(?:contentgen|kubectl) [^`\n]+)`(?!`)")
ENV = re.compile(r"^[A-Z_][A-Z0-9_]*=\S*$")
SYNOPSIS = re.compile(r"\[|\]|\.\.\.|\w\|\w|<[a-z]")  # [--opt], PATH..., a|b, <placeholder>
KINDS_CATEGORY = {"contentgen", "all"}
KUBECTL_ANYWHERE = re.compile(r"(?:^|[\s`(])(kubectl\s[^`|;&#)\n]*\s(?:-w|--watch)\b[^`|;&#)\n]*)")
TEMPLATE = re.compile(r"\{\{.*?\}\}")
# kubectl's options that take a value as the next word (the resource type is the first other word)
KUBECTL_VALUED = {"-n", "--namespace", "-l", "--selector", "-o", "--output", "--field-selector", "-L"}


@dataclass(frozen=True)
class Command:
    where: str
    text: str
    quoted: bool  # inline in prose, not a line of a shell block


def shell_lines(path: Path) -> list[tuple[int, str]]:
    """The lines of the shell blocks of a markdown file, continuation lines joined."""
    out: list[tuple[int, str]] = []
    fence, lang, pending, start = "", "", "", 0
    for number, line in enumerate(path.read_text().splitlines(), 1):
        match = FENCE.match(line)
        if not fence:
            if match:
                fence, lang = match.group(1), match["lang"]
            continue
        if line.strip() == fence:
            fence = ""
            continue
        if lang not in SHELLS:
            continue
        pending, start = (pending + " " + line.strip(), start) if pending else (line.strip(), number)
        if pending.endswith("\\"):
            pending = pending[:-1].rstrip()
            continue
        out.append((start, pending))
        pending = ""
    return out


def words(text: str) -> list[str]:
    """The words of one command as the shell splits them, up to a pipe, a redirection or the next
    command, with leading variable assignments and the virtualenv's path dropped."""
    lexer = shlex.shlex(text.lstrip("$ "), posix=True, punctuation_chars="|&;<>")
    lexer.whitespace_split = True
    try:
        tokens = list(lexer)
    except ValueError:  # an unclosed quote: a fragment, not a command
        return []
    out = []
    for n, token in enumerate(tokens):
        if set(token) <= set("|&;<>"):
            break
        if token.isdigit() and n + 1 < len(tokens) and tokens[n + 1][:1] in "<>":
            break  # a redirection's file descriptor (`2>&1`)
        out.append(token)
    while out and ENV.match(out[0]):
        out.pop(0)
    if out:
        out[0] = out[0].removeprefix(".venv/bin/").removeprefix(".tools/bin/")
    return out


def commands(paths: list[Path] | None = None) -> list[Command]:
    found: list[Command] = []
    for path in [*documents(), NOTES] if paths is None else paths:
        name = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for match in KUBECTL_ANYWHERE.finditer(TEMPLATE.sub("x", line)):  # any block, the usage too
                found.append(Command(f"{name}:{number}", match.group(1).strip(), quoted=False))
        if name.startswith("docs/reference/"):
            continue  # the generated usage, from the same parser
        for number, line in shell_lines(path):
            found.append(Command(f"{name}:{number}", line, quoted=False))
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for match in INLINE.finditer(line):
                found.append(Command(f"{name}:{number}", match.group(1), quoted=True))
    return found


def parse_error(argv: list[str]) -> str:
    """contentgen's parser on argv: "" when it parses, else what it said."""
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
            build_parser().parse_args(argv)
    except SystemExit as exc:
        return stderr.getvalue().strip().splitlines()[-1] if exc.code else ""
    return ""


def contentgen_problem(command: Command) -> str:
    argv = words(command.text)
    if not argv or argv[0] != "contentgen" or len(argv) < 2 or argv[1].endswith(":"):
        return ""  # not a contentgen command (or its output: "contentgen run: InvalidInput: ...")
    name = argv[1]
    if name.startswith("-"):
        return "" if name in ("--help", "-h", "--version") else f"{name} before the command"
    if name not in COMMANDS:
        return f"there is no command `contentgen {name}`"
    actions = _subcommands(_subcommands(build_parser())[name])
    action = next((w for w in argv[2:] if not w.startswith("-")), None) if actions else None
    unknown = actions and action is not None and action not in actions and not SYNOPSIS.search(action)
    # (with options before it, the first word may be an option's value: the parser judges)
    if unknown and (command.quoted or not any(w.startswith("-") for w in argv[2:])):
        return f"`contentgen {name}` has no action {action!r} ({', '.join(actions)})"
    if command.quoted or any(SYNOPSIS.search(w) for w in argv):
        return ""  # a usage line or a fragment in prose: its names are checked, not its arguments
    return parse_error(argv[1:])


def kubectl_problem(command: Command) -> str:
    argv = words(command.text)
    if len(argv) < 3 or argv[0] != "kubectl" or not {"-w", "--watch", "--watch-only"} & set(argv):
        return ""
    if "get" not in argv:
        return ""
    rest, after = [], argv[argv.index("get") + 1 :]
    for i, word in enumerate(after):
        if not word.startswith("-") and (i == 0 or after[i - 1] not in KUBECTL_VALUED):
            rest.append(word)
    if not rest:
        return ""
    kinds = rest[0].split("/")[0].split(",")
    if len(kinds) > 1 or kinds[0] in KINDS_CATEGORY:
        what = "a category" if len(kinds) == 1 else "several"
        return f"kubectl watches one kind at a time; {rest[0]!r} is {what}"
    return ""


def problems(found: list[Command]) -> list[str]:
    out = []
    for command in found:
        for check in (contentgen_problem, kubectl_problem):
            if why := check(command):
                out.append(f"{command.where}: `{command.text}`: {why}")
    return out


def test_the_docs_show_commands_that_exist() -> None:
    found = commands()
    assert sum("contentgen" in c.text for c in found) > 30 and sum("kubectl" in c.text for c in found) > 30
    assert not problems(found), "\n".join(problems(found))


@pytest.mark.parametrize(
    ("text", "quoted", "why"),
    [
        # the commands issue 21 found in the docs
        ("kubectl get contentgen -w", False, "a category"),
        ("contentgen assets --catalog DIR/catalog list", False, ""),  # works since cffe0b2
        ("contentgen assets show", True, "has no action 'show'"),
        ("contentgen assets show default/demo-avatar", False, "has no action 'show'"),
        # and their kin
        ("kubectl -n team-a get loratrainings,imagegenerations -w", False, "several"),
        (".venv/bin/contentgen run --offlne examples/", False, "unrecognized arguments: --offlne"),
        ("CONTENTGEN_X=1 contentgen valdate examples/", False, "no command `contentgen valdate`"),
        ("contentgen assets list --limit many", False, "not a whole number"),
        ("contentgen local-cluster --offline", False, "required: --dir"),
        # and what is fine
        ("kubectl get imagegenerations -w", False, ""),
        ("kubectl get -n team-a -l x=y imagegenerations --watch", False, ""),
        ("kubectl get -n contentgen loratrainings,transcriptions -w", False, "several"),
        ("contentgen assets list --owner demo-user | head", False, ""),
        ("contentgen assets list   [FILTERS] [--limit N]", False, ""),
        ("contentgen run: InvalidInput: ...", True, ""),
        ("contentgen assets --owner", True, ""),
    ],
)
def test_a_command_that_does_not_exist_is_found(text: str, quoted: bool, why: str) -> None:
    found = problems([Command("planted", text, quoted)])
    if why:
        assert len(found) == 1 and why in found[0], found
    else:
        assert not found, found


def test_shell_lines_are_read_as_the_shell_reads_them(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "```sh\ncontentgen validate \\\n  examples/   # a comment\n```\n"
        "```yaml\ncontentgen: not a command\n```\n````markdown\n```sh\nkubectl get x\n```\n````\n"
    )
    assert shell_lines(page) == [(2, "contentgen validate examples/   # a comment")]
    assert words("contentgen validate examples/   # a comment") == ["contentgen", "validate", "examples/"]


def test_a_watch_of_several_kinds_is_found_in_any_block(tmp_path: Path) -> None:
    """Also in a usage text (the commands reference shows each command's docstring) and prose."""
    page = tmp_path / "page.md"
    page.write_text(
        "```text\n    kubectl apply -f DIR/examples/ && kubectl get loratrainings,transcriptions -w\n```\n"
        "Then `kubectl get contentgen --watch` follows them.\n"
        "```sh\nkubectl get imagegenerations -w   # one kind\n```\n"
    )
    found = sorted(set(problems(commands([page]))))  # the prose's command is quoted too: found twice
    assert len(found) == 2 and "several" in found[0] and "a category" in found[1], found


def indented(doc: str) -> list[str]:
    return [line for line in doc.splitlines() if line.startswith("    ") and line.strip()]


def test_command_descriptions_have_no_blocks_argparse_would_run_together() -> None:
    """argparse reflows a command's description (its module's docstring) into one paragraph: an
    indented block of commands there reads as one line in --help and in the commands reference."""
    import importlib

    for module_name, _ in COMMANDS.values():
        doc = importlib.import_module(module_name).__doc__ or ""
        assert not indented(doc), f"{module_name}: {indented(doc)}"
    planted = "Then:\n\n    export A=1\n    kubectl apply -f x\n"
    assert indented(planted) == ["    export A=1", "    kubectl apply -f x"]
