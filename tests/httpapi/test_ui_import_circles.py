"""The web UI's modules import one another without a circle: the router imports no view (the entry
module, app.js, hands it the views), so a view may import the router. A circle among native ES
modules means one of them runs before what it imports has (a `let` read too early throws), and it
ties every module on it to the others. The imports are read from the sources as the browser reads
them (static imports and re-exports in any form, and dynamic imports), each resolved to its file;
the search is proven on copies of the modules with a circle planted in each form."""

from __future__ import annotations

import itertools
import re
import shutil
from collections import deque
from importlib import resources
from pathlib import Path

import pytest

UI = Path(str(resources.files("contentgen.httpapi") / "ui"))
ENTRY = "app.js"  # the module index.html loads
# The page's scripts, each loaded by index.html: app.js, and boot.js before it (a classic script
# that says so when a module cannot be fetched).
SCRIPTS = re.findall(r'<script src="/ui/([^"]+)"', (UI / "index.html").read_text())

# A statement at the start of a line: `import "x"`, `import ... from "x"`, `export ... from "x"`
# (the names may span lines); and `import("x")` anywhere.
STATIC = re.compile(
    r"""^[ \t]*(?:import[ \t]*|(?:import\b(?![ \t]*[(.])|export\b)[^;"'`]*?\bfrom[ \t\n]*)"""
    r"""(["'])(?P<spec>[^"'\n]+)\1""",
    re.M,
)
DYNAMIC = re.compile(r"""\bimport[ \t]*\([ \t]*(["'])(?P<spec>[^"'\n]+)\1[ \t]*\)""")
# Every line that begins an import or a re-export, whether the patterns above can read it or not.
BEGINS = re.compile(r"""^[ \t]*(?:import\b(?![ \t]*[(.])|export\b[^;"'`]*?\bfrom[ \t\n]*["'`])""", re.M)


def resolve(folder: Path, module: Path, spec: str) -> str:
    """The module file (its name in `folder`) that import specifier `spec` of `module` loads."""
    if spec.startswith("/ui/"):
        target = folder / spec.removeprefix("/ui/")
    elif spec.startswith(("./", "../")):
        target = (module.parent / spec).resolve()
    else:
        raise AssertionError(f"{module.name} imports {spec!r}: the page loads only its own modules")
    if target.parent != folder.resolve() and target.parent != folder:
        raise AssertionError(f"{module.name} imports {spec!r}, outside the page's modules")
    assert target.is_file(), f"{module.name} imports {spec!r}, which the page does not have"
    return target.name


def imports(folder: Path) -> dict[str, set[str]]:
    """Each module's name -> the names of the modules it imports."""
    graph: dict[str, set[str]] = {}
    for module in sorted(folder.glob("*.js")):
        source = module.read_text()
        static = [m["spec"] for m in STATIC.finditer(source)]
        begun = len(BEGINS.findall(source))
        assert len(static) == begun, f"{module.name}: {begun} import statements, {len(static)} read"
        specs = static + [m["spec"] for m in DYNAMIC.finditer(source)]
        graph[module.name] = {resolve(folder, module, spec) for spec in specs}
    return graph


def circles(graph: dict[str, set[str]]) -> list[tuple[list[str], list[str]]]:
    """Every import circle: each group of modules that reach one another (Tarjan's strongly
    connected components of more than one module, or a module importing itself), by name, with a
    shortest path around it from its first module back to it."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[tuple[list[str], list[str]]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1 or node in graph[node]:
                found.append((sorted(group), around(graph, set(group))))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def around(graph: dict[str, set[str]], group: set[str]) -> list[str]:
    """A shortest path from the group's first module back to it, through the group's imports."""
    start = min(group)
    parent: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for target in sorted(graph[node] & group):
            if target == start:
                path = [node]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if target not in parent:
                parent[target] = node
                queue.append(target)
    raise AssertionError(f"no way around {sorted(group)}")


def reached(graph: dict[str, set[str]], entry: str) -> set[str]:
    seen, todo = {entry}, [entry]
    while todo:
        for target in graph[todo.pop()] - seen:
            seen.add(target)
            todo.append(target)
    return seen


def test_the_ui_modules_import_one_another_without_a_circle() -> None:
    graph = imports(UI)
    assert len(graph) > 20 and "router.js" in graph[ENTRY]
    said = [
        f"{len(group)} modules ({', '.join(group)}), as {' → '.join(path)}" for group, path in circles(graph)
    ]
    assert said == [], f"the UI's modules import one another in circles: {said}"


def test_the_entry_module_reaches_every_module() -> None:
    """Each module is loaded by the page: a module no import reaches would be dead code, and one
    this test's reading missed would show here. The page loads app.js and boot.js, which imports
    nothing."""
    graph = imports(UI)
    assert SCRIPTS == ["boot.js", ENTRY] and graph["boot.js"] == set()
    assert reached(graph, ENTRY) | {"boot.js"} == set(graph)


# Each form an import takes, planted where it closes a circle (state.js is imported by the router;
# dom.js by nearly every module; gallery.js reaches the router through sharing.js).
PLANTED = {
    "the-router-importing-a-view": ("router.js", 'import { gallery } from "./gallery.js";\n'),
    "names-over-lines": ("state.js", 'import {\n  route,\n  showVersion,\n} from "./router.js";\n'),
    "a-default-and-a-namespace": ("dom.js", 'import app, * as everything from "./app.js";\n'),
    "for-its-effects": ("format.js", "import './jobs.js';\n"),
    "a-re-export": ("api.js", 'export { route } from "./router.js";\n'),
    "everything-re-exported": ("api.js", 'export * from "./signin.js";\n'),
    "by-its-url": ("state.js", 'import { start } from "/ui/signin.js";\n'),
    "dynamic": ("dom.js", 'export const later = () => import("./app.js");\n'),
    "itself": ("format.js", 'import { num } from "./format.js";\n'),
}


@pytest.mark.parametrize("form", sorted(PLANTED))
def test_a_planted_circle_is_found(tmp_path: Path, form: str) -> None:
    folder = tmp_path / "ui"
    shutil.copytree(UI, folder, ignore=shutil.ignore_patterns("__pycache__"))
    module, statement = PLANTED[form]
    source = (folder / module).read_text()
    (folder / module).write_text(statement + source)
    found = circles(imports(folder))
    assert len(found) == 1, found
    group, path = found[0]
    assert module in group and path[0] == path[-1] == group[0] and set(path) <= set(group)
    graph = imports(folder)
    assert all(b in graph[a] for a, b in itertools.pairwise(path)), path


def test_an_import_it_cannot_read_fails_rather_than_passing_unseen(tmp_path: Path) -> None:
    folder = tmp_path / "ui"
    shutil.copytree(UI, folder, ignore=shutil.ignore_patterns("__pycache__"))
    (folder / "dom.js").write_text("import { route } from `./router.js`;\n" + (folder / "dom.js").read_text())
    with pytest.raises(AssertionError, match=r"dom\.js: .* import statements"):
        imports(folder)
    (folder / "dom.js").write_text('import { x } from "./nowhere.js";\n' + (UI / "dom.js").read_text())
    with pytest.raises(AssertionError, match="which the page does not have"):
        imports(folder)
