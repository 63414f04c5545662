"""Bitbucket as its published API description allows: status keys, token kinds, no /user.

The stand-in checks every request against tests/forges/specs/bitbucket.json (an extract
of Atlassian's swagger.v3.json); `violations` lists what broke it.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from mlci.errors import UsageError
from mlci.forges.base import sticky_marker
from mlci.http import HttpClient
from tests.forges.conftest import HEAD, Clock, http_factory, make_report, publish
from tests.forges.standin import BitbucketStandIn
from tests.forges.test_bitbucket import api_token_env, post
from tests.forges.test_gitlab_bitbucket import bitbucket_env

MARKER = sticky_marker("tiny-model")
SHARED = "customer-churn-gradient-boosting-v"  # 34 characters: `mlci/` + it is 39


def test_two_models_with_a_long_shared_prefix_keep_their_own_status(
    bitbucket: BitbucketStandIn, tmp_path: Path, clock: Clock
) -> None:
    env = bitbucket_env(bitbucket)
    failing = dataclasses.replace(make_report(0.7), model=f"{SHARED}2-eu-west")
    passing = dataclasses.replace(make_report(0.9), model=f"{SHARED}2-us-east")

    logs = [publish(tmp_path, env, clock, report=r).log for r in (failing, passing)]
    publish(tmp_path, env, clock, report=failing)  # a rerun: the same key, replaced

    statuses = bitbucket.statuses[HEAD]
    by_name = {s["name"]: s for s in statuses.values()}
    assert len(statuses) == 2 and bitbucket.violations == []
    assert by_name[f"mlci/{failing.model}"]["state"] == "FAILED"  # not turned green
    assert by_name[f"mlci/{passing.model}"]["state"] == "SUCCESSFUL"
    for key, status, log in zip(statuses, statuses.values(), logs, strict=True):
        assert len(key) <= 40 and key.startswith("mlci-") and status["key"] == key
        assert f"(key {key})" in log  # the key a merge check or a script names


def test_a_short_model_name_is_its_own_readable_key(
    bitbucket: BitbucketStandIn, tmp_path: Path, clock: Clock
) -> None:
    done = publish(tmp_path, bitbucket_env(bitbucket), clock)
    assert list(bitbucket.statuses[HEAD]) == ["mlci/tiny-model"]
    assert "build status mlci/tiny-model SUCCESSFUL" in done.result.published["status"]


# -- token kinds ----------------------------------------------------------------------


def test_an_api_token_with_its_owners_email_goes_over_basic(
    bitbucket: BitbucketStandIn, tmp_path: Path, clock: Clock
) -> None:
    env = api_token_env(bitbucket)

    first = publish(tmp_path, env, clock)
    second = publish(tmp_path, env, clock, report=make_report(0.7))

    assert first.result.errors == second.result.errors == [] and bitbucket.violations == []
    (comment,) = bitbucket.comments[5]  # created, then updated in place
    assert comment["user"]["account_id"] == "{dev-account}" and "0.7" in comment["content"]["raw"]
    assert bitbucket.statuses[HEAD]["mlci/tiny-model"]["state"] == "FAILED"
    assert "api-token" not in second.log + json.dumps(second.result.errors)


@pytest.mark.parametrize(
    ("token", "username"), [("api-token", None), ("bb-token", "dev@example.com")]
)
def test_a_token_sent_with_the_scheme_of_another_kind_is_refused_and_named(
    bitbucket: BitbucketStandIn, tmp_path: Path, clock: Clock, token: str, username: str | None
) -> None:
    env = bitbucket_env(bitbucket, token=token)
    if username:
        env["BITBUCKET_USERNAME"] = username

    done = publish(tmp_path, env, clock)

    error = done.result.errors[0]
    assert "401" in error and "BITBUCKET_USERNAME" in error and "repository access token" in error
    assert bitbucket.comments[5] == [] and bitbucket.statuses == {}


def test_an_issue_target_with_an_access_token_says_which_token_works_before_posting(
    bitbucket: BitbucketStandIn, tmp_path: Path, clock: Clock
) -> None:
    bitbucket.add_issue(8)

    with pytest.raises(UsageError) as caught:
        post(tmp_path, bitbucket_env(bitbucket), clock, target="issue/8")

    message = caught.value.message
    assert caught.value.exit_code == 2
    assert "API token" in message and "write:issue:bitbucket" in message
    assert "BITBUCKET_USERNAME" in message and "--target pr" in message
    assert bitbucket.requests("POST") == bitbucket.requests("GET", "/issues/") == []


# -- the comment's author, without GET /user ------------------------------------------


def test_no_get_user_and_a_persons_comment_with_the_marker_is_never_edited(
    bitbucket: BitbucketStandIn, tmp_path: Path, clock: Clock
) -> None:
    quoted = bitbucket.add_comment(5, f"{MARKER}\nquoting the bot", "{alice}")
    env = bitbucket_env(bitbucket)

    first = publish(tmp_path, env, clock)
    second = publish(tmp_path, env, clock, report=make_report(0.7))

    assert first.result.errors == second.result.errors == []
    assert bitbucket.requests("GET", "/user") == []
    assert quoted["content"]["raw"] == f"{MARKER}\nquoting the bot"
    ours = [c for c in bitbucket.comments[5] if c["user"]["account_id"] == "{bot-account}"]
    assert len(ours) == 1 and "0.7" in ours[0]["content"]["raw"]  # created, then updated


# -- the stand-in is strict -----------------------------------------------------------


def client(server: BitbucketStandIn, clock: Clock, token: str = "bb-token") -> HttpClient:
    return http_factory(clock)(
        base_url=server.api_url,
        headers={"Authorization": f"Bearer {token}"},
        secrets=(token,),
        max_wait_s=0,
    )


STATUS = f"/repositories/team/models/commit/{HEAD}/statuses/build"
COMMENTS = "/repositories/team/models/pullrequests/5/comments"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "message"),
    [
        ("GET", f"{COMMENTS}?pagelen=500", None, 400, "Invalid pagelen: 500 is outside 1..100"),
        ("GET", f"{COMMENTS}?limit=50", None, 400, "Invalid limit: not a parameter"),
        ("POST", STATUS, {"key": "k", "state": "PASSED"}, 400, "state: 'PASSED' is not one of"),
        ("POST", STATUS, {"key": "k" * 41, "state": "FAILED"}, 400, "at most 40 characters"),
        ("POST", STATUS, {"state": "FAILED"}, 400, "key: this field is required"),
        ("POST", COMMENTS, {"content": {"raw": "x", "text": "y"}}, 400, "content.text: unknown"),
        ("DELETE", STATUS, None, 405, "DELETE"),
        ("GET", "/user", None, 404, "no such resource in the API description"),
    ],
)
def test_a_request_the_description_does_not_allow_is_refused_as_bitbucket_does(
    bitbucket: BitbucketStandIn,
    clock: Clock,
    method: str,
    path: str,
    body: object,
    status: int,
    message: str,
) -> None:
    response = client(bitbucket, clock).request(method, path, body=body, idempotent=True)

    assert response.status == status
    answer = response.json()
    assert answer["type"] == "error" and message in answer["error"]["message"]
    assert bitbucket.violations == [answer["error"]["message"]]


def test_an_api_token_sent_as_bearer_is_refused(bitbucket: BitbucketStandIn, clock: Clock) -> None:
    response = client(bitbucket, clock, token="api-token").request(
        "GET", "/repositories/team/models"
    )
    assert response.status == 401
    assert response.json()["error"]["message"].startswith("Token is invalid")


def test_the_extract_names_its_source_and_holds_every_operation_mlci_calls() -> None:
    spec = json.loads((Path(__file__).parent / "specs" / "bitbucket.json").read_text())
    assert spec["x-source"]["url"].startswith("https://dac-static.atlassian.com/cloud/bitbucket/")
    operations = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
    base = "/repositories/{workspace}/{repo_slug}"
    assert ("POST", f"{base}/commit/{{commit}}/statuses/build") in operations
    assert ("PUT", f"{base}/issues/{{issue_id}}/comments/{{comment_id}}") in operations
    assert ("GET", "/user") not in operations
