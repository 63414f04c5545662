"""GitLab as its REST docs describe it: the job token, the status's documented lengths,
GitLab's words, and the strict stand-in that refuses what specs/gitlab.json does not allow."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlci.cli import main
from mlci.errors import EXIT_OK
from mlci.http import HttpClient
from tests.conftest import Project
from tests.forges.conftest import HEAD, Clock, http_factory, publish
from tests.forges.standin import GitLabStandIn
from tests.forges.test_comment import post, project
from tests.forges.test_gitlab_bitbucket import gitlab_env

FIX_WORDS = ("GITLAB_TOKEN", "project access token", "`api` scope", "masked")


def test_job_token_alone_is_no_token_one_warning_and_no_request(
    gitlab: GitLabStandIn, tmp_path: Path, clock: Clock
) -> None:
    done = publish(tmp_path, gitlab_env(gitlab, token=None), clock)

    assert done.result.errors == []
    (line,) = done.result.skipped
    assert "CI_JOB_TOKEN" in line and all(word in line for word in FIX_WORDS)
    assert done.log.count("GITLAB_TOKEN") == 1
    assert gitlab.log == []  # the job token may call none of these endpoints: no 401s
    assert gitlab.job_token not in done.log
    record = json.loads((done.out / "publish.json").read_text())
    assert record["errors"] == [] and record["skipped"] == [line]


@pytest.fixture
def job_token_pipeline(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[GitLabStandIn]:
    with GitLabStandIn().running() as server:
        assert isinstance(server, GitLabStandIn)
        server.add_mr(3)
        for name, value in gitlab_env(server, token=None).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("CI_MERGE_REQUEST_TARGET_BRANCH_NAME", "main")
        yield server


@pytest.mark.slow
def test_a_passing_merge_request_pipeline_with_only_the_job_token_exits_0(
    project: Project,
    job_token_pipeline: GitLabStandIn,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["run", "--config", str(project.config)]) == EXIT_OK

    err = capsys.readouterr().err
    assert project.gate_json()["verdict"] == "pass"
    warnings = [line for line in err.splitlines() if "no note or status on GitLab" in line]
    assert len(warnings) == 1 and "GITLAB_TOKEN" in warnings[0]
    assert job_token_pipeline.log == []
    assert job_token_pipeline.job_token not in err


def long_pipeline_url(length: int) -> str:
    head = "https://gitlab.example/" + "/".join(["a-rather-long-subgroup-name"] * 12)
    tail = "/-/pipelines/9"
    return head[: length - len(tail)] + tail


def test_a_300_character_pipeline_url_still_sets_the_status(
    gitlab: GitLabStandIn, tmp_path: Path, clock: Clock
) -> None:
    url = long_pipeline_url(300)
    env = {**gitlab_env(gitlab), "CI_PIPELINE_URL": url}

    done = publish(tmp_path, env, clock)

    assert done.result.errors == []
    (status,) = gitlab.statuses[HEAD]
    assert status["state"] == "success" and "target_url" not in status
    assert len(status["description"]) <= 255
    assert "without a link" in done.result.published["status"]
    assert "300 characters" in done.result.published["status"]
    at_the_limit = long_pipeline_url(255)  # still sent as the link
    publish(tmp_path, {**env, "CI_PIPELINE_URL": at_the_limit}, clock)
    assert gitlab.statuses[HEAD][-1]["target_url"] == at_the_limit


def test_gitlab_words_in_what_mlci_prints(
    gitlab: GitLabStandIn, tmp_path: Path, clock: Clock
) -> None:
    code, log = post(project(tmp_path), gitlab_env(gitlab), clock)

    assert code == 0
    assert "merge request !3: https://gitlab.example/team/models/-/merge_requests/3#note_" in log
    assert "pull request" not in log


def test_a_push_pipeline_says_merge_request(
    gitlab: GitLabStandIn, tmp_path: Path, clock: Clock
) -> None:
    env = gitlab_env(gitlab)
    for name in ("CI_MERGE_REQUEST_IID", "CI_MERGE_REQUEST_PROJECT_ID"):
        del env[name]
    env.update(CI_PIPELINE_SOURCE="push", CI_COMMIT_BRANCH="feature")

    done = publish(tmp_path, env, clock)

    assert "no open merge request for this commit: no comment" in done.result.skipped
    assert "pull request" not in done.log


def test_an_issue_note_url_points_at_the_issue(
    gitlab: GitLabStandIn, tmp_path: Path, clock: Clock
) -> None:
    gitlab.issue_notes[8] = []

    code, log = post(project(tmp_path), gitlab_env(gitlab), clock, target="issue/8")

    (note,) = gitlab.issue_notes[8]
    assert code == 0
    assert f"issue #8: https://gitlab.example/team/models/-/issues/8#note_{note['id']}" in log
    assert "merge_requests" not in log


# -- the stand-in itself: what GitLab refuses, it refuses -------------------------------------


def client(server: GitLabStandIn, clock: Clock, header: str = "PRIVATE-TOKEN") -> HttpClient:
    token = "glpat-write" if header == "PRIVATE-TOKEN" else server.job_token
    make = http_factory(clock)
    return make(base_url=server.api_url, headers={header: token}, secrets=(token,), max_wait_s=1.0)


STATUS = f"/projects/7/statuses/{HEAD}"
NOTES = "/projects/7/merge_requests/3/notes"


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "answer"),
    [
        (
            "POST",
            STATUS,
            {"state": "failure", "name": "mlci/m"},
            400,
            {"error": "state does not have a valid value"},
        ),
        ("POST", STATUS, {"name": "mlci/m"}, 400, {"error": "state is missing"}),
        (
            "POST",
            STATUS,
            {"state": "success", "target_url": "https://x/" + "a" * 246},
            400,
            {"message": {"target_url": ["is too long (maximum is 255 characters)"]}},
        ),
        (
            "POST",
            STATUS,
            {"state": "success", "description": "d" * 256},
            400,
            {"message": {"description": ["is too long (maximum is 255 characters)"]}},
        ),
        (
            "POST",
            NOTES,
            {"body": "x" * 1_000_001},
            400,
            {"message": {"note": ["is too long (maximum is 1000000 characters)"]}},
        ),
        ("POST", NOTES, {"text": "hi"}, 400, {"error": "body is missing"}),
        ("GET", f"{NOTES}?per_page=100&limit=50", None, 400, {"error": "limit is invalid"}),
        ("GET", f"{NOTES}?per_page=101", None, 400, {"error": "per_page is invalid"}),
        ("GET", f"{NOTES}?sort=oldest", None, 400, {"error": "sort does not have a valid value"}),
        ("DELETE", f"{NOTES}/1", None, 404, {"error": "404 Not Found"}),
    ],
)
def test_the_stand_in_refuses_what_gitlabs_docs_do_not_allow(
    gitlab: GitLabStandIn,
    clock: Clock,
    method: str,
    path: str,
    body: object,
    status: int,
    answer: object,
) -> None:
    response = client(gitlab, clock).request(method, path, body=body)

    assert (response.status, response.json()) == (status, answer)
    assert len(gitlab.violations) == 1
    gitlab.violations.clear()  # refused on purpose: the fixture fails on any left over


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("GET", "/user", None), ("GET", NOTES, None), ("POST", STATUS, {"state": "success"})],
)
def test_the_job_token_gets_401_where_the_docs_do_not_list_it(
    gitlab: GitLabStandIn, clock: Clock, method: str, path: str, body: object
) -> None:
    response = client(gitlab, clock, header="JOB-TOKEN").request(method, path, body=body)

    assert (response.status, response.json()) == (401, {"message": "401 Unauthorized"})
    assert gitlab.violations and "job token" in gitlab.violations[0]
    gitlab.violations.clear()


def test_a_request_outside_the_extract_fails_the_test(clock: Clock) -> None:
    server = GitLabStandIn()
    refused = pytest.raises(AssertionError, match=r"gitlab\.json does not allow: POST .*state")
    with refused, server.running():
        client(server, clock).request("POST", STATUS, body={"state": "error"})
