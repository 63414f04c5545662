"""GraphQL requests checked against GitHub's published schema (specs/github.graphql).

The extract holds only what mlci sends (the `minimizeComment` mutation). `errors` answers
what GitHub puts in a refused request's `errors` (each a `message` and, where the document
has one, its `locations`); an empty list means the schema allows the request. The
document is parsed and validated, and the variables coerced, by graphql-core, the
reference implementation: its wording, not graphql-ruby's that GitHub answers with.
Stricter than GitHub on one point, as openapi.py is: a variable the operation does not
declare is refused, since GitHub ignores it silently.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from graphql import (
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    build_schema,
    get_operation_ast,
    parse,
    validate,
)
from graphql.execution.values import get_argument_values, get_variable_values

from tests.forges.openapi import SPECS

NO_QUERY = "A query attribute must be specified and must be a string."


@cache
def schema() -> GraphQLSchema:
    """The extract `specs/github.graphql`."""
    return build_schema((SPECS / "github.graphql").read_text(encoding="utf-8"))


def errors(body: Any) -> list[dict[str, Any]]:
    """What the schema does not allow in this request body (empty: all of it is allowed)."""
    if not isinstance(body, dict) or not isinstance(body.get("query"), str):
        return [{"message": NO_QUERY}]
    try:
        document = parse(body["query"])
    except GraphQLError as error:
        return [_shape(error)]
    found = validate(schema(), document)
    if found:
        return [_shape(error) for error in found]
    operation = get_operation_ast(document, body.get("operationName"))
    if operation is None:
        return [{"message": "An operation name is required (the document has several)"}]
    variables = body.get("variables") or {}
    if not isinstance(variables, dict):
        return [{"message": "Variables must be a JSON object"}]
    coerced = get_variable_values(schema(), operation.variable_definitions, variables)
    if isinstance(coerced, list):
        return [_shape(error) for error in coerced]
    declared = {v.variable.name.value for v in operation.variable_definitions}
    return [
        {"message": f"Variable ${name} is not declared by the operation"}
        for name in variables
        if name not in declared
    ]


def _shape(error: GraphQLError) -> dict[str, Any]:
    """As GitHub lists it: `message`, and `locations` in the document where known."""
    return dict(error.formatted)


def root_fields(body: dict[str, Any]) -> list[tuple[FieldNode, dict[str, Any]]]:
    """The operation's top-level fields and their coerced arguments (a body `errors` allows)."""
    operation = get_operation_ast(parse(body["query"]), body.get("operationName"))
    assert isinstance(operation, OperationDefinitionNode)
    root = schema().get_root_type(operation.operation)
    assert root is not None
    variables = get_variable_values(
        schema(), operation.variable_definitions, body.get("variables") or {}
    )
    assert isinstance(variables, dict)
    return [
        (node, get_argument_values(root.fields[node.name.value], node, variables))
        for node in operation.selection_set.selections
        if isinstance(node, FieldNode)
    ]
