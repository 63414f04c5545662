"""A safe, bounded YAML loader for mlci.yaml, params and metric files.

Fixes over PyYAML's SafeLoader: numbers follow YAML 1.2 (so `1e-05`, as ruamel.yaml and
DVC write small floats, is a number, not a text; `2024-01-31` is a text, not a date), a
key that appears twice in a mapping is an error instead of silently keeping the last
value, and keys are names or numbers, never lists or mappings. These files come from the
pull request, so the document is bounded (`BoundedLoader`): nesting depth, the number of
values once aliases are expanded (a 300-byte alias bomb is a billion values), and the
digits of a number. Only plain values are built: texts, numbers, booleans, null, lists
and mappings (no `!!set`, `!!binary` or dates).
"""

from __future__ import annotations

import re
from typing import Any

import yaml

MAX_DEPTH = 100  # nested lists and mappings
MAX_VALUES = 100_000  # values of a document, with each alias counted as what it repeats
MAX_NUMBER_DIGITS = 100  # characters of one number (a float holds 17 significant digits)

_FLOAT_12 = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.VERBOSE,
)
_FLOAT_TAG = "tag:yaml.org,2002:float"
_INT_TAG = "tag:yaml.org,2002:int"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"
_PLAIN_TAGS = ("null", "bool", "int", "float", "str", "seq", "map")


class DuplicateKeyError(yaml.MarkedYAMLError):
    """A mapping defines the same key twice."""


class LimitError(yaml.MarkedYAMLError):
    """The document is past one of mlci's bounds, or holds what mlci does not read."""


class BoundedLoader(yaml.SafeLoader):
    """SafeLoader that refuses documents past MAX_DEPTH, MAX_VALUES or recursive aliases.

    Counted while composing, before any Python value is built: an alias adds the values
    of the node it repeats, so the count is the size of the expanded document.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._sizes: dict[int, int] = {}  # id(node) -> its values, aliases expanded
        self._values = 0
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        mark = event.start_mark
        if isinstance(event, yaml.AliasEvent):
            target = self.anchors.get(event.anchor)
            if target is not None:  # else PyYAML's own "found undefined alias"
                if id(target) not in self._sizes:
                    raise LimitError(
                        problem=f"the alias *{event.anchor} repeats a list or mapping that "
                        "contains it; write the values out",
                        problem_mark=mark,
                    )
                self._count(self._sizes[id(target)], mark)
            return super().compose_node(parent, index)
        self._depth += 1
        if self._depth > MAX_DEPTH:
            raise LimitError(
                problem=f"nested more than {MAX_DEPTH} levels deep (mlci's limit)",
                problem_mark=mark,
            )
        before = self._values
        self._count(1, mark)
        node = super().compose_node(parent, index)
        self._sizes[id(node)] = self._values - before
        self._depth -= 1
        return node

    def _count(self, values: int, mark: Any) -> None:
        self._values += values
        if self._values > MAX_VALUES:
            raise LimitError(
                problem=f"more than {MAX_VALUES:,} values once its aliases (*name) are "
                "expanded (mlci's limit); write the values out instead of repeating anchors",
                problem_mark=mark,
            )


class StrictLoader(BoundedLoader):
    """BoundedLoader with YAML 1.2 numbers, plain values only and no duplicate keys."""


def _construct_mapping(loader: StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[object] = set()
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode):
            kind = "list" if isinstance(key_node, yaml.SequenceNode) else "mapping"
            raise LimitError(
                problem=f"a key is a {kind}; write a name or a number as the key",
                problem_mark=key_node.start_mark,
            )
        key = _key(loader, key_node)
        if key in seen:
            raise DuplicateKeyError(
                problem=f"the key {key!r} appears twice", problem_mark=key_node.start_mark
            )
        seen.add(key)
    loader.flatten_mapping(node)  # `<<: *defaults` merge keys, as SafeLoader reads them
    return {
        _key(loader, key_node): loader.construct_object(value_node, deep=True)
        for key_node, value_node in node.value
    }


def _key(loader: StrictLoader, node: yaml.ScalarNode) -> Any:
    """A mapping key; a plain `on`, `off`, `yes` or `no` stays that text (YAML 1.1 reads
    them as true/false, which would turn `train: {on: ray}` into `{True: "ray"}`)."""
    key = loader.construct_object(node)
    if isinstance(key, bool) and node.style is None and node.value.lower() in _BOOL_WORDS:
        return node.value
    return key


_BOOL_WORDS = frozenset({"on", "off", "yes", "no", "y", "n"})


def _bounded_number(construct: Any) -> Any:
    def construct_number(loader: StrictLoader, node: yaml.ScalarNode) -> Any:
        if len(node.value) > MAX_NUMBER_DIGITS:
            raise LimitError(
                problem=f"a number of {len(node.value):,} characters; mlci reads numbers of "
                f"up to {MAX_NUMBER_DIGITS} characters (quote it to keep it as a text)",
                problem_mark=node.start_mark,
            )
        return construct(loader, node)

    return construct_number


# Only plain values: a set, binary or a date would reach the report as Python's repr.
StrictLoader.yaml_constructors = {
    tag: construct
    for tag, construct in yaml.SafeLoader.yaml_constructors.items()
    if tag is None or tag.rsplit(":", 1)[-1] in _PLAIN_TAGS
}
StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
for _tag in (_INT_TAG, _FLOAT_TAG):
    StrictLoader.add_constructor(_tag, _bounded_number(yaml.SafeLoader.yaml_constructors[_tag]))
# YAML 1.2's core schema: its float pattern (1.1's needs a dot in `1.0e-05`), no dates.
StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag not in (_FLOAT_TAG, _TIMESTAMP_TAG)]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
StrictLoader.add_implicit_resolver(_FLOAT_TAG, _FLOAT_12, list("-+0123456789."))


def load(text: str) -> Any:
    """Parse YAML text; raises yaml.YAMLError (with a mark where known)."""
    return yaml.load(text, Loader=StrictLoader)


def load_bounded(text: str) -> Any:
    """Parse YAML text with SafeLoader's types (dvc.lock, .dvc files), within the bounds."""
    return yaml.load(text, Loader=BoundedLoader)


def describe_error(exc: yaml.YAMLError) -> str:
    """`line L, column C: problem` for a YAML error."""
    if isinstance(exc, yaml.reader.ReaderError):
        character = exc.character
        code = character if isinstance(character, int) else character[0]
        return f"character {exc.position + 1}: U+{code:04X} is not allowed in YAML text"
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return str(problem)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
