"""Publishing to GitLab merge requests and Bitbucket pull requests through their stand-ins."""

from __future__ import annotations

from pathlib import Path

from mlci.ci import detect_context
from mlci.forges import check_access
from mlci.forges.base import sticky_marker
from tests.forges.conftest import HEAD, Clock, http_factory, make_report, publish
from tests.forges.standin import BitbucketStandIn, Fault, GitLabStandIn

MARKER = sticky_marker("tiny-model")


def gitlab_env(server: GitLabStandIn, *, token: str | None = "glpat-write") -> dict[str, str]:
    env = {
        "GITLAB_CI": "true",
        "CI_API_V4_URL": server.api_url,
        "CI_PROJECT_ID": "7",
        "CI_PROJECT_URL": "https://gitlab.example/team/models",
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_MERGE_REQUEST_IID": "3",
        "CI_MERGE_REQUEST_PROJECT_ID": "7",
        "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "feature",
        "CI_COMMIT_SHA": HEAD,
        "CI_PIPELINE_URL": "https://gitlab.example/team/models/-/pipelines/9",
        "CI_JOB_TOKEN": server.job_token,
    }
    if token:
        env["GITLAB_TOKEN"] = token
    return env


def test_gitlab_note_is_created_then_updated_across_pages(
    gitlab: GitLabStandIn, tmp_path: Path, clock: Clock
) -> None:
    for index in range(120):
        gitlab.add_note(3, f"review {index}", "alice")
    gitlab.add_note(3, "added 1 commit", "alice", system=True)
    env = gitlab_env(gitlab)

    first = publish(tmp_path, env, clock)
    second = publish(tmp_path, env, clock, report=make_report(0.7))

    assert first.result.errors == second.result.errors == []
    ours = [n for n in gitlab.notes[3] if n["author"]["username"] == "project_7_bot"]
    assert len(ours) == 1
    assert ours[0]["body"].startswith(MARKER) and "0.7" in ours[0]["body"]
    assert second.result.published["comment"].endswith(f"/-/merge_requests/3#note_{ours[0]['id']}")
    assert [s["state"] for s in gitlab.statuses[HEAD]] == ["success", "failed"]
    assert gitlab.statuses[HEAD][0]["name"] == "mlci/tiny-model"
    assert any("page=2" in r.path for r in gitlab.requests("GET", "/notes"))


def test_gitlab_retries_a_502_on_the_update(
    gitlab: GitLabStandIn, tmp_path: Path, clock: Clock
) -> None:
    env = gitlab_env(gitlab)
    publish(tmp_path, env, clock)
    gitlab.faults.append(Fault("PUT", "/notes/", status=502))

    done = publish(tmp_path, env, clock, report=make_report(0.7))

    assert done.result.errors == []
    assert clock.slept == [1.0]
    assert "0.7" in gitlab.notes[3][0]["body"]


def test_gitlab_check_access(gitlab: GitLabStandIn, tmp_path: Path, clock: Clock) -> None:
    env = gitlab_env(gitlab)
    context = detect_context(tmp_path, env)
    factory = http_factory(clock)
    assert check_access(context, env, http_factory=factory) == [
        (True, "GitLab: GITLAB_TOKEN can read project 7")
    ]
    env = gitlab_env(gitlab, token=None)
    ((ok, message),) = check_access(detect_context(tmp_path, env), env, http_factory=factory)
    assert not ok and "GITLAB_TOKEN" in message


def bitbucket_env(server: BitbucketStandIn, token: str = "bb-token") -> dict[str, str]:
    return {
        "BITBUCKET_BUILD_NUMBER": "17",
        "BITBUCKET_PR_ID": "5",
        "BITBUCKET_BRANCH": "feature",
        "BITBUCKET_COMMIT": HEAD,
        "BITBUCKET_REPO_FULL_NAME": "team/models",
        "BITBUCKET_API_URL": server.api_url,
        "BITBUCKET_TOKEN": token,
    }


def test_bitbucket_comment_and_build_status(
    bitbucket: BitbucketStandIn, tmp_path: Path, clock: Clock
) -> None:
    for index in range(130):
        bitbucket.add_comment(5, f"comment {index}", "{alice}")
    env = bitbucket_env(bitbucket)

    publish(tmp_path, env, clock)
    done = publish(tmp_path, env, clock, report=make_report(0.7))

    assert done.result.errors == []
    ours = [c for c in bitbucket.comments[5] if c["content"]["raw"].startswith(MARKER)]
    assert len(ours) == 1 and "0.7" in ours[0]["content"]["raw"]
    status = bitbucket.statuses[HEAD]["mlci/tiny-model"]
    assert status["state"] == "FAILED"
    assert status["url"] == "https://bitbucket.org/team/models/pipelines/results/17"
    assert any("page=2" in r.path for r in bitbucket.requests("GET", "/comments"))


def test_bitbucket_bad_token_names_the_variable(
    bitbucket: BitbucketStandIn, tmp_path: Path, clock: Clock
) -> None:
    done = publish(tmp_path, bitbucket_env(bitbucket, token="bb-SECRET"), clock)
    error = done.result.errors[0]
    assert "401" in error and "BITBUCKET_TOKEN" in error and "repository access token" in error
    assert "bb-SECRET" not in done.log + "".join(done.result.errors)
