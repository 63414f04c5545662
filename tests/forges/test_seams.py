"""The `Forge` Protocol: aiming at a thread, and what a forge says it cannot do."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlci.assets import BranchStore, open_store
from mlci.ci import CiContext, detect_context
from mlci.config import PublishConfig
from mlci.forges import check_access, open_forge
from mlci.forges.base import Forge, sticky_marker
from mlci.forges.local import LocalForge
from mlci.http import ForgeError
from tests.forges.conftest import HEAD, Clock, github_env, http_factory
from tests.forges.standin import GitHubStandIn, GitLabStandIn
from tests.forges.test_gitlab_bitbucket import gitlab_env


def _open(tmp_path: Path, env: dict[str, str], clock: Clock) -> Forge:
    forge = open_forge(detect_context(tmp_path, env), env, http_factory=http_factory(clock)).forge
    assert forge is not None
    return forge


def test_an_aimed_forge_comments_there_and_the_original_stays_on_the_pull_request(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    github.add_issue(7)
    forge = _open(tmp_path, github_env(tmp_path, github.api_url), clock)

    forge.aimed_at_issue(7).upsert_comment("k", "on the issue")
    forge.upsert_comment("k", "on the pull request")
    commit = forge.aimed_at_commit(HEAD)
    assert commit is not None
    commit.upsert_comment("k", "on the commit")

    marker = sticky_marker("k")
    assert [c["body"] for c in github.comments[7]] == [f"{marker}\non the issue"]
    assert [c["body"] for c in github.comments[12]] == [f"{marker}\non the pull request"]
    assert [c["body"] for c in github.commit_comments[HEAD]] == [f"{marker}\non the commit"]


def test_gitlab_says_what_it_cannot_do_without_asking_the_server(
    gitlab: GitLabStandIn, tmp_path: Path, clock: Clock
) -> None:
    forge = _open(tmp_path, gitlab_env(gitlab), clock)

    assert forge.aimed_at_commit(HEAD) is None
    assert forge.find_pull_request(HEAD) is None
    assert forge.pull_request_head(3) is None
    assert forge.create_check_run(HEAD, "pass", "title", "summary", None) is None
    assert gitlab.requests("GET") == gitlab.requests("POST") == []


def test_a_pull_request_without_a_head_commit_is_an_error_not_a_match(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    forge = _open(tmp_path, github_env(tmp_path, github.api_url), clock)
    assert forge.pull_request_head(12) == HEAD

    github.pulls[12]["head"] = {}
    with pytest.raises(ForgeError, match="pull request #12 without its head commit"):
        forge.pull_request_head(12)


def test_the_local_forge_answers_every_operation_with_its_files(tmp_path: Path) -> None:
    forge: Forge = LocalForge(tmp_path)
    local = CiContext(ci="local", event="local", branch=None, sha=None)

    assert forge.aimed_at_commit(HEAD) is forge and forge.aimed_at_issue(7) is forge
    assert forge.find_pull_request(HEAD) is None and forge.pull_request_head(12) is None
    assert forge.create_check_run(HEAD, "pass", "title", "summary", None) is None
    assert forge.check_access() == check_access(local, {})
    forge.set_status(HEAD, "fail", "accuracy 0.7 < 0.8")
    status = json.loads((tmp_path / "status.json").read_text())
    assert status["context"] == "mlci" and status["state"] == "failure"


def test_open_store_serves_the_forge_it_fits_and_names_the_one_it_does_not(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    forge = _open(tmp_path, github_env(tmp_path, github.api_url), clock)

    store = open_store(PublishConfig(images="branch"), {}, forge, folder="m/abc")
    assert isinstance(store, BranchStore) and store.folder == "m/abc"
    with pytest.raises(ForgeError) as refused:
        open_store(PublishConfig(images="gitlab"), {}, forge, folder="m/abc")
    assert refused.value.message == (
        "publish.images: gitlab works on GitLab only, not on GitHub; the comment shows the "
        "plots as tables and charts instead"
    )
