"""Import circles between modules, read with grimp (import-linter's graph): every import counts,
also those inside functions and under `if TYPE_CHECKING:`, and a module importing its own package
(whose __init__ imports it back) is a circle too. `python -m tests.importgraph PACKAGE...` prints
them as JSON (tests/test_layers.py runs it on copies of the packages with circles planted)."""

from __future__ import annotations

import json
import sys

import grimp


def circles(*packages: str) -> list[list[str]]:
    """Every group of modules that import each other (directly or through others), sorted."""
    graph = grimp.build_graph(*packages, cache_dir=None)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(start: str) -> None:  # Tarjan's strongly connected components, without recursion
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            module, targets = work[-1]
            for target in targets:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph.find_modules_directly_imported_by(target)))))
                    break
                if target in on_stack:
                    low[module] = min(low[module], index[target])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[module])
                if low[module] == index[module]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == module:
                            break
                    if len(group) > 1:
                        found.append(sorted(group))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return sorted(found)


if __name__ == "__main__":
    print(json.dumps(circles(*sys.argv[1:])))
