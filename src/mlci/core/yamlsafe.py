"""A safe YAML loader for mlci.yaml and metric files.

Two fixes over PyYAML's SafeLoader: numbers follow YAML 1.2 (so `1e-05`, as ruamel.yaml
and DVC write small floats, is a number, not a text), and a key that appears twice in a
mapping is an error instead of silently keeping the last value.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

_FLOAT_12 = re.compile(
    r"""^(?:[-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
    |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
    |\.[0-9_]+(?:[eE][-+]?[0-9]+)?
    |[-+]?\.(?:inf|Inf|INF)
    |\.(?:nan|NaN|NAN))$""",
    re.VERBOSE,
)


class DuplicateKeyError(yaml.MarkedYAMLError):
    """A mapping defines the same key twice."""


class StrictLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 floats and no duplicate keys."""


def _construct_mapping(loader: StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[object] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            raise DuplicateKeyError(
                problem=f"the key {key!r} appears twice", problem_mark=key_node.start_mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
# Replace the YAML 1.1 float pattern (which needs a dot in `1.0e-05`) by YAML 1.2's.
StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:float"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
StrictLoader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789."))


def load(text: str) -> Any:
    """Parse YAML text; raises yaml.YAMLError (with a mark where known)."""
    return yaml.load(text, Loader=StrictLoader)


def describe_error(exc: yaml.YAMLError) -> str:
    """`line L, column C: problem` for a YAML error."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is None:
        return str(problem)
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
