"""`mlci publish`: the reporter job of the two-workflow setup for pull requests from forks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from mlci.cli import main
from mlci.errors import EXIT_EXTERNAL, EXIT_OK
from mlci.forges.base import sticky_marker
from mlci.pipeline import write_outputs
from tests.forges.conftest import HEAD, github_env, make_report
from tests.forges.standin import GitHubStandIn


def reporter_job(
    tmp_path: Path, server: GitHubStandIn, monkeypatch: pytest.MonkeyPatch, *, named_pr: int
) -> Path:
    """The artifact of the unprivileged job, and the environment of a workflow_run job."""
    artifact = tmp_path / "artifact"
    write_outputs(make_report(0.7), artifact)
    (artifact / "publish.json").write_text(json.dumps({"pull_request": named_pr}))
    env = github_env(tmp_path, server.api_url, event="workflow_run")
    event = tmp_path / "run.json"
    # GitHub leaves pull_requests empty when the pull request came from a fork.
    event.write_text(json.dumps({"workflow_run": {"head_sha": HEAD, "pull_requests": []}}))
    env.update({"GITHUB_EVENT_PATH": str(event), "GITHUB_SHA": "d" * 40})
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    return artifact


def test_publish_posts_the_artifact_to_the_verified_pull_request(
    github: GitHubStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    artifact = reporter_job(tmp_path, github, monkeypatch, named_pr=12)

    assert main(["publish", "--from", str(artifact)]) == EXIT_OK

    (comment,) = github.comments[12]
    assert comment["body"].startswith(sticky_marker("tiny-model"))
    assert "0.7" in comment["body"]
    assert github.statuses[HEAD][0]["state"] == "failure"


def test_publish_refuses_an_artifact_naming_another_pull_request(
    github: GitHubStandIn,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    github.add_pull(13, "e" * 40)
    artifact = reporter_job(tmp_path, github, monkeypatch, named_pr=13)

    assert main(["publish", "--from", str(artifact)]) == EXIT_EXTERNAL

    assert "names pull request #13, but its head is eeeeeeeeeeee" in capsys.readouterr().err
    assert github.comments[13] == [] and github.comments[12] == []


def test_publish_outside_ci_says_there_is_nowhere_to_publish(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    write_outputs(make_report(), tmp_path / "out")
    monkeypatch.chdir(tmp_path)
    import subprocess

    subprocess.run(["git", "init", "-q"], cwd=tmp_path, check=True)
    assert main(["publish", "--from", str(tmp_path / "out")]) == 2
    assert "mlci publish runs in CI" in capsys.readouterr().err


def test_publish_without_a_report_names_the_artifact(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["publish", "--from", str(tmp_path)]) == 2
    assert "report.json: not found" in capsys.readouterr().err
