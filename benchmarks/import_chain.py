"""The longest chain of module imports inside mlci, imports inside functions counted.

Run from the repository root with the Python that has mlci installed (and grimp, from the
`dev` extra):

    .venv/bin/python benchmarks/import_chain.py

A chain is a path of distinct modules, each importing the next (`import` statements
anywhere in the module, inside functions too, as grimp reads them); its length is the
number of modules in it. Imports under `if TYPE_CHECKING:` never run (they name types for
annotations), so the chain that `tests/test_architecture.py` holds to 10 leaves them out;
the script prints the longer chain that counts them too, for information.
`tests/test_architecture.py` keeps it at most 10. Lazy imports make cycles, so the search
is exact over simple paths: once a path leaves a strongly connected component it can never
come back, so what is left to find from a module depends only on the modules already
visited in its own component, which keeps the search small.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Mapping, Set

Imports = Mapping[str, Set[str]]  # module -> the modules it imports


def import_graph(package: str = "mlci", *, annotations: bool = False) -> dict[str, frozenset[str]]:
    """Each module of `package` and the modules of `package` it imports (at run time; with
    `annotations`, also those imported only for type checking)."""
    import grimp

    graph = grimp.build_graph(
        package, cache_dir=None, exclude_type_checking_imports=not annotations
    )
    return {
        module: frozenset(graph.find_modules_directly_imported_by(module))
        for module in sorted(graph.modules)
    }


def longest_chain(imports: Imports) -> tuple[str, ...]:
    """The longest path of distinct modules along `imports`; the first in name order of
    those as long."""
    component = _components(imports)

    @functools.cache
    def longest_from(module: str, visited: frozenset[str]) -> tuple[str, ...]:
        best: tuple[str, ...] = ()
        for imported in sorted(imports.get(module, ())):
            if imported in visited:
                continue
            if component[imported] is component[module]:
                rest = longest_from(imported, visited | {imported})
            else:  # left the component: nothing visited is reachable from here
                rest = longest_from(imported, frozenset({imported}))
            if len(rest) > len(best):
                best = rest
        return (module, *best)

    chains = (longest_from(module, frozenset({module})) for module in sorted(imports))
    return max(chains, key=len, default=())


def _components(imports: Imports) -> dict[str, frozenset[str]]:
    """Each module's strongly connected component (Tarjan's algorithm, without recursion)."""
    modules = sorted(set(imports) | {m for targets in imports.values() for m in targets})
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    component: dict[str, frozenset[str]] = {}
    for root in modules:
        if root in index:
            continue
        work = [(root, iter(sorted(imports.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, targets = work[-1]
            for target in targets:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(imports.get(target, ())))))
                    break
                if target in on_stack:
                    low[module] = min(low[module], index[target])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[module])
                if low[module] == index[module]:
                    members: set[str] = set()
                    member = None
                    while member != module:
                        member = stack.pop()
                        on_stack.discard(member)
                        members.add(member)
                    found = frozenset(members)
                    component.update(dict.fromkeys(found, found))
    return component


def describe(chain: tuple[str, ...], package: str = "mlci") -> str:
    """`chain` as the issue writes it: `__main__ → cli → … → core`, and its length."""
    prefix = f"{package}."
    names = [m[len(prefix) :] if m.startswith(prefix) else m for m in chain]
    return f"{len(chain)} modules: " + " → ".join(names)


def main() -> int:
    print("run time:", describe(longest_chain(import_graph())))
    print("with annotation-only imports:", describe(longest_chain(import_graph(annotations=True))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
