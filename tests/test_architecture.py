"""The layout keeps its shape: import chains stay short (the layers themselves are
import-linter's contracts in pyproject.toml, checked by `make lint`)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from benchmarks.import_chain import describe, import_graph, longest_chain

MAX_CHAIN = 10
ROOT = Path(__file__).resolve().parent.parent


def test_the_longest_chain_of_imports_inside_mlci_is_at_most_10_modules() -> None:
    pytest.importorskip("grimp")

    chain = longest_chain(import_graph())

    assert len(chain) <= MAX_CHAIN, (
        f"the longest import chain is {describe(chain)}; move the helper that makes an "
        f"edge of it into the lower module (docs/architecture.md, the layers)"
    )


def test_the_chain_is_the_longest_path_of_distinct_modules_through_cycles() -> None:
    # A lazy import back up (c -> a) makes a cycle; a path may cross it but not repeat a module.
    imports = {
        "a": {"b"},
        "b": {"c", "z"},
        "c": {"a", "d"},
        "d": {"e"},
        "e": set(),
        "z": set(),
    }

    assert longest_chain(imports) == ("a", "b", "c", "d", "e")
    # Closing the loop (e -> b) makes no longer path: b is visited already.
    assert len(longest_chain({**imports, "e": {"b"}})) == 5


def _tree_in_the_docs() -> set[str]:
    """The modules docs/architecture.md's tree names, as paths under src/mlci."""
    text = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    block = text.split("## The tree", 1)[1].split("```", 2)[1]
    named: set[str] = set()
    open_packages: list[tuple[int, str]] = []  # (indent, path) of the packages around a line
    for line in block.splitlines()[2:]:  # after the fence's language and `src/mlci/`
        indent = len(line) - len(line.lstrip())
        while open_packages and open_packages[-1][0] >= indent:
            open_packages.pop()
        header = re.match(r"\s*(\w+)/", line)
        if header:
            parent = open_packages[-1][1] if open_packages else ""
            open_packages.append((indent, f"{parent}{header.group(1)}/"))
            line = line[header.end() :]
        folder = open_packages[-1][1] if open_packages else ""
        named |= {folder + name for name in re.findall(r"\b(\w+\.py)\b", line)}
    return named


def test_docs_architecture_names_every_module_and_only_modules_that_exist() -> None:
    package = ROOT / "src" / "mlci"
    modules = {
        path.relative_to(package).as_posix()
        for path in package.rglob("*.py")
        if "examples" not in path.relative_to(package).parts
    }

    named = _tree_in_the_docs()

    assert sorted(named - modules) == [], "docs/architecture.md names modules that do not exist"
    assert sorted(modules - named - {"__init__.py"} - _package_inits(modules)) == [], (
        "modules missing from the tree in docs/architecture.md"
    )


def _package_inits(modules: set[str]) -> set[str]:
    """A package's __init__.py is named by its folder."""
    return {m for m in modules if m.endswith("/__init__.py")}
