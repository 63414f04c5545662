"""Which build this is: from CI variables, or from git outside CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlci.ci import CiContext, detect_context
from mlci.errors import UsageError
from tests.conftest import Project


def test_local_build_reads_branch_and_commit_from_git(project: Project) -> None:
    context = detect_context(project.root, {})
    assert context.ci == "local"
    assert context.event == "local"
    assert context.branch == "main"
    assert context.sha is not None and len(context.sha) == 40
    assert context.dirty is False


def test_local_build_notices_uncommitted_changes(project: Project) -> None:
    project.write("train.py", "print('edited')\n")
    assert detect_context(project.root, {}).dirty is True


def test_github_push(project: Project) -> None:
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_REF_NAME": "main",
        "GITHUB_REF_TYPE": "branch",
        "GITHUB_SHA": "f" * 40,
        "GITHUB_SERVER_URL": "https://ghes.example",
        "GITHUB_REPOSITORY": "team/models",
        "GITHUB_RUN_ID": "42",
    }
    context = detect_context(project.root, env)
    assert (context.ci, context.event, context.branch, context.sha) == (
        "github",
        "push",
        "main",
        "f" * 40,
    )
    assert context.run_url == "https://ghes.example/team/models/actions/runs/42"
    assert context.report_url == context.run_url  # the run page lists its artifacts
    assert context.promotes(("main",)) == (True, "branch main is in registry.promote_on")
    hosted = detect_context(project.root, {**env, "MLCI_REPORT_URL": "https://r.example/42.html"})
    assert hosted.report_url == "https://r.example/42.html"


def test_github_pull_request_uses_the_head_branch_and_never_promotes(project: Project) -> None:
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_REF_NAME": "12/merge",
        "GITHUB_REF": "refs/pull/12/merge",
        "GITHUB_HEAD_REF": "feature/x",
        "GITHUB_BASE_REF": "main",
    }
    context = detect_context(project.root, env)
    assert (context.event, context.branch, context.base_ref) == (
        "pull_request",
        "feature/x",
        "main",
    )
    assert context.pr_number == 12
    assert context.promotes(("main", "feature/x"))[0] is False


def test_github_tag_push_does_not_promote(project: Project) -> None:
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_REF_TYPE": "tag",
        "GITHUB_REF_NAME": "main",
    }
    context = detect_context(project.root, env)
    assert context.event == "other"
    assert context.promotes(("main",)) == (False, "only pushes to the configured branches promote")


def test_gitlab_merge_request(project: Project) -> None:
    env = {
        "GITLAB_CI": "true",
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_MERGE_REQUEST_IID": "17",
        "CI_MERGE_REQUEST_SOURCE_BRANCH_NAME": "fix-loss",
        "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
        "CI_COMMIT_SHA": "e" * 40,
        "CI_PIPELINE_URL": "https://gitlab.example/p/-/pipelines/9",
        "CI_JOB_URL": "https://gitlab.example/p/-/jobs/31",
    }
    context = detect_context(project.root, env)
    assert (context.ci, context.event, context.branch, context.pr_number) == (
        "gitlab",
        "pull_request",
        "fix-loss",
        17,
    )
    assert context.run_url == "https://gitlab.example/p/-/pipelines/9"
    # GitLab serves one file of a job's artifacts at a stable address.
    assert context.report_url == (
        "https://gitlab.example/p/-/jobs/31/artifacts/file/.mlci/out/report.html"
    )


def test_gitlab_push_to_main_promotes(project: Project) -> None:
    env = {
        "GITLAB_CI": "true",
        "CI_PIPELINE_SOURCE": "push",
        "CI_COMMIT_BRANCH": "main",
        "CI_COMMIT_SHA": "e" * 40,
    }
    assert detect_context(project.root, env).promotes(("main",))[0] is True


def test_branch_outside_promote_on_is_explained() -> None:
    context = CiContext(ci="local", event="local", branch="dev", sha="a" * 40)
    assert context.promotes(("main", "release")) == (
        False,
        "branch dev is not in registry.promote_on (main, release)",
    )


def test_outside_a_git_repository_the_error_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as refused:
        detect_context(tmp_path, {})
    assert "not inside a git repository" in refused.value.message
    assert "git init" in refused.value.message


def test_github_event_payload_gives_the_head_sha_and_the_fork(tmp_path: Path) -> None:
    import json

    event = tmp_path / "event.json"
    event.write_text(
        json.dumps(
            {
                "number": 9,
                "pull_request": {
                    "number": 9,
                    "head": {"sha": "a" * 40, "repo": {"full_name": "someone/models"}},
                    "base": {"sha": "c" * 40, "repo": {"full_name": "team/models"}},
                },
            }
        )
    )
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_SHA": "b" * 40,
        "GITHUB_EVENT_PATH": str(event),
        "GITHUB_REPOSITORY": "team/models",
        "GITHUB_API_URL": "https://ghes.example/api/v3",
    }
    context = detect_context(tmp_path, env)
    assert (context.ci, context.pr_number, context.sha, context.head_sha) == (
        "github",
        9,
        "b" * 40,
        "a" * 40,
    )
    assert context.fork is True
    assert (context.api_url, context.repository) == ("https://ghes.example/api/v3", "team/models")


def test_gitea_actions_set_the_github_variables(tmp_path: Path) -> None:
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_SHA": "b" * 40,
        "GITHUB_API_URL": "https://code.example/api/v1",
    }
    assert detect_context(tmp_path, env).ci == "gitea"


def test_gitlab_merge_request_context(tmp_path: Path) -> None:
    env = {
        "GITLAB_CI": "true",
        "CI_MERGE_REQUEST_IID": "3",
        "CI_COMMIT_SHA": "b" * 40,
        "CI_MERGE_REQUEST_SOURCE_BRANCH_SHA": "a" * 40,
        "CI_API_V4_URL": "https://gitlab.example/sub/api/v4",
        "CI_PROJECT_ID": "7",
        "CI_MERGE_REQUEST_PROJECT_ID": "7",
        "CI_MERGE_REQUEST_SOURCE_PROJECT_ID": "8",
    }
    context = detect_context(tmp_path, env)
    assert (context.pr_number, context.head_sha, context.repository) == (3, "a" * 40, "7")
    assert context.api_url == "https://gitlab.example/sub/api/v4"
    assert context.fork is True


def test_bitbucket_pull_request_context(tmp_path: Path) -> None:
    env = {
        "BITBUCKET_BUILD_NUMBER": "17",
        "BITBUCKET_PR_ID": "5",
        "BITBUCKET_BRANCH": "feature",
        "BITBUCKET_COMMIT": "a" * 40,
        "BITBUCKET_REPO_FULL_NAME": "team/models",
    }
    context = detect_context(tmp_path, env)
    assert (context.ci, context.event, context.pr_number, context.branch) == (
        "bitbucket",
        "pull_request",
        5,
        "feature",
    )
    assert context.run_url == "https://bitbucket.org/team/models/pipelines/results/17"
    assert context.api_url == "https://api.bitbucket.org/2.0"
