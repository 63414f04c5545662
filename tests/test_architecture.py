"""The layout keeps its shape: import chains stay short (the layers themselves are
import-linter's contracts in pyproject.toml, checked by `make lint`)."""

from __future__ import annotations

import pytest
from benchmarks.import_chain import describe, import_graph, longest_chain

MAX_CHAIN = 10


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
