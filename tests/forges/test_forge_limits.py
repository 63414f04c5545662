"""Limits and names the forges document: hide at the limit on every forge, the status
context, and the strict stand-ins (requests checked against the published descriptions)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mlci.config import PublishConfig
from mlci.forges.base import sticky_marker
from mlci.http import HttpClient
from tests.forges.conftest import HEAD, Clock, github_env, http_factory, publish
from tests.forges.standin import BitbucketStandIn, GitHubStandIn, GitLabStandIn
from tests.forges.test_gitlab_bitbucket import bitbucket_env, gitlab_env

MODEL = "tiny-model"  # make_report's model


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _old_report(limit: int) -> str:
    """A sticky comment 58 characters under `limit`: folding adds more than that."""
    marker = sticky_marker(MODEL)
    filler = "\n".join(f"| row {i} | " + "x" * 60 + " |" for i in range(limit // 70 + 1))
    body = f"{marker}\n## Report\n\n```\ncode\n```\n\n{filler}"
    return body[: limit - 58]


def _github(tmp_path: Path, flavour: str) -> tuple[Any, dict[str, str], Callable[[], list[str]]]:
    server = GitHubStandIn(prefix="/api/v1" if flavour == "gitea" else "", flavour=flavour)
    server.add_pull(12, HEAD)
    login = "gitea-actions" if flavour == "gitea" else "github-actions[bot]"
    server.add_comment(12, _old_report(65_536), login)
    env = github_env(tmp_path, "", pr=12)
    if flavour == "gitea":
        env.update({"GITEA_ACTIONS": "true", "GITEA_TOKEN": env.pop("GITHUB_TOKEN")})
    return server, env, lambda: [c["body"] for c in server.comments[12]]


def _gitlab(tmp_path: Path) -> tuple[Any, dict[str, str], Callable[[], list[str]]]:
    server = GitLabStandIn()
    server.add_mr(3)
    server.add_note(3, _old_report(1_000_000), "project_7_bot")
    return server, {}, lambda: [n["body"] for n in server.notes[3]]


def _bitbucket(tmp_path: Path) -> tuple[Any, dict[str, str], Callable[[], list[str]]]:
    server = BitbucketStandIn()
    server.add_pull(5)
    server.add_comment(5, _old_report(32_000), "{bot-account}", kind="app_user")  # a token
    return server, {}, lambda: [c["content"]["raw"] for c in server.comments[5]]


@pytest.mark.parametrize(
    ("forge", "limit"),
    [("github", 65_536), ("gitea", 65_536), ("gitlab", 1_000_000), ("bitbucket", 32_000)],
)
def test_hide_at_the_limit_folds_within_it_and_posts_the_new_report(
    forge: str, limit: int, tmp_path: Path, clock: Clock
) -> None:
    if forge in ("github", "gitea"):
        server, env, bodies = _github(tmp_path, forge)
    elif forge == "gitlab":
        server, env, bodies = _gitlab(tmp_path)
    else:
        server, env, bodies = _bitbucket(tmp_path)
    with server.running():
        if forge in ("github", "gitea"):
            env["GITHUB_API_URL"] = server.api_url
        elif forge == "gitlab":
            env = gitlab_env(server)
        else:
            env = bitbucket_env(server)
        published = publish(tmp_path, env, clock, settings=PublishConfig(comment="hide"))

    assert published.result.errors == []
    assert "comment" in published.result.published
    old, new = bodies()
    assert old.startswith("<!-- mlci:outdated key=tiny-model -->")
    assert _utf16(old) <= limit
    assert old.rstrip().endswith("</details>")
    assert "cut to fit" in old
    assert new.startswith(sticky_marker(MODEL)) and _utf16(new) <= limit


def test_a_refused_fold_does_not_keep_the_new_report_from_landing(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    github.add_comment(12, f"{sticky_marker(MODEL)}\nold report", "github-actions[bot]")
    from tests.forges.standin import Fault

    github.faults.append(Fault("PATCH", r"/issues/comments/", status=422, body={"message": "x"}))
    published = publish(
        tmp_path,
        github_env(tmp_path, github.api_url),
        clock,
        settings=PublishConfig(comment="hide"),
    )

    assert "comment" in published.result.published
    assert [c["body"].splitlines()[0] for c in github.comments[12]] == [
        sticky_marker(MODEL),
        sticky_marker(MODEL),
    ]


def test_the_status_context_is_the_same_in_status_json_the_log_and_on_github(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    published = publish(tmp_path, github_env(tmp_path, github.api_url), clock)

    status_json = json.loads((published.out / "status.json").read_text())
    posted = github.statuses[HEAD][-1]["context"]
    assert posted == status_json["context"] == f"mlci/{MODEL}"
    assert f"required status check: mlci/{MODEL}" in published.log
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    assert "`context` (`mlci/<model>`" in readme


def _client(server: GitHubStandIn, clock: Clock, token: str) -> HttpClient:
    scheme = "token" if server.flavour == "gitea" else "Bearer"
    return http_factory(clock)(
        base_url=server.api_url,
        headers={"Authorization": f"{scheme} {token}"},
        secrets=(token,),
        max_wait_s=1.0,
    )


@pytest.mark.parametrize(
    ("flavour", "method", "path", "body", "field"),
    [
        ("gitea", "GET", "/repos/team/models/issues/12/comments?limit=50", None, "limit"),
        ("github", "GET", "/repos/team/models/issues/12/comments?per_pag=100", None, "per_pag"),
        ("github", "POST", f"/repos/team/models/statuses/{HEAD}", {"state": "ok"}, "state"),
        ("gitea", "POST", f"/repos/team/models/statuses/{HEAD}", {"state": "skip"}, "state"),
        (
            "github",
            "POST",
            "/repos/team/models/check-runs",
            {"name": "mlci/m", "head_sha": HEAD, "conclusion": "passed"},
            "conclusion",
        ),
        (
            "github",
            "POST",
            "/repos/team/models/check-runs",
            {"name": "m", "head_sha": HEAD, "output": {"title": "t", "summary": "s" * 65_536}},
            "output.summary",
        ),
        ("github", "POST", "/repos/team/models/issues/12/comments", {"text": "hi"}, "body"),
        ("github", "DELETE", "/repos/team/models/issues/comments/1", None, "path"),
    ],
)
def test_the_stand_in_refuses_what_the_description_does_not_allow(
    flavour: str, method: str, path: str, body: Any, field: str, clock: Clock
) -> None:
    server = GitHubStandIn(prefix="/api/v1" if flavour == "gitea" else "", flavour=flavour)
    refused = pytest.raises(AssertionError, match="API description does not allow")
    with refused, server.running():
        server.add_pull(12, HEAD)
        response = _client(server, clock, "ghs_write").request(method, path, body=body)
        assert response.status == 422
        answer = response.json()
        assert isinstance(answer, dict)
        if flavour == "github":
            assert answer["message"] == "Validation Failed"
            assert field in [e["field"] for e in answer["errors"]]
        else:
            assert field in answer["message"]


def test_hide_minimizes_the_old_report_with_a_mutation_github_s_schema_allows(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    github.add_comment(12, f"{sticky_marker(MODEL)}\nold report", "github-actions[bot]")

    published = publish(
        tmp_path,
        github_env(tmp_path, github.api_url),
        clock,
        settings=PublishConfig(comment="hide"),
    )

    assert published.result.errors == []
    (request,) = github.requests("POST", "^/graphql$")
    assert request.status == 200 and github.violations == []
    assert [c.get("is_minimized", False) for c in github.comments[12]] == [True, False]


MINIMIZE = """mutation($id: ID!) {
  minimizeComment(input: {subjectId: $id, classifier: OUTDATED}) {
    minimizedComment { isMinimized }
  }
}"""


@pytest.mark.parametrize(
    ("query", "variables", "message", "line"),
    [
        (MINIMIZE.replace("OUTDATED", "STALE"), {"id": "IC_1001"}, "'STALE'", 2),
        (MINIMIZE.replace("($id: ID!)", "").replace("subjectId: $id, ", ""), {}, "subjectId", 2),
        (MINIMIZE.replace("isMinimized", "hidden"), {"id": "IC_1001"}, "'hidden'", 3),
        (MINIMIZE.replace("minimizeComment", "hideComment"), {"id": "IC_1001"}, "hideComment", 2),
        (MINIMIZE, {}, "'$id'", 1),
        (MINIMIZE, {"id": None}, "'$id'", 1),
        (MINIMIZE, {"id": "IC_1001", "classifier": "OUTDATED"}, "$classifier", None),
        (MINIMIZE[:-1], {"id": "IC_1001"}, "Syntax Error", 5),
    ],
)
def test_the_stand_in_refuses_a_graphql_request_github_s_schema_does_not_allow(
    query: str, variables: dict[str, Any], message: str, line: int | None, clock: Clock
) -> None:
    server = GitHubStandIn()
    refused = pytest.raises(AssertionError, match="API description does not allow")
    with refused, server.running():
        server.add_pull(12, HEAD)
        comment = server.add_comment(12, "old report", "github-actions[bot]")
        body = {"query": query, "variables": variables}
        response = _client(server, clock, "ghs_write").request(
            "POST", server.origin + "/graphql", body=body
        )
        assert response.status == 200
        answer = response.json()
        assert isinstance(answer, dict) and list(answer) == ["errors"]
        (error,) = answer["errors"]
        assert message in error["message"]
        assert [where["line"] for where in error.get("locations", [])] == ([line] if line else [])
        assert "is_minimized" not in comment


def test_minimizing_a_comment_that_is_not_there_answers_not_found_as_github_does(
    github: GitHubStandIn, clock: Clock
) -> None:
    body = {"query": MINIMIZE, "variables": {"id": "IC_gone"}}
    response = _client(github, clock, "ghs_write").request(
        "POST", github.origin + "/graphql", body=body
    )

    assert response.status == 200
    assert response.json() == {
        "data": {"minimizeComment": None},
        "errors": [
            {
                "type": "NOT_FOUND",
                "message": "Could not resolve to a node with the global id of 'IC_gone'",
                "path": ["minimizeComment"],
                "locations": [{"line": 2, "column": 3}],
            }
        ],
    }
