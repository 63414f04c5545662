"""`mlci run` in a GitHub Actions pull-request build, publishing to the GitHub stand-in."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlci.cli import main
from mlci.errors import EXIT_EXTERNAL, EXIT_GATE_FAILED, EXIT_OK
from mlci.forges.base import sticky_marker
from tests.conftest import Project
from tests.forges.conftest import HEAD, github_env
from tests.forges.standin import GitHubStandIn

pytestmark = pytest.mark.slow  # trains and opens the registry: seconds per run


@pytest.fixture
def pull_request(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[GitHubStandIn]:
    with GitHubStandIn().running() as server:
        assert isinstance(server, GitHubStandIn)
        server.add_pull(12, HEAD)
        for name, value in github_env(tmp_path, server.api_url).items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("GITHUB_HEAD_REF", "feature")
        monkeypatch.setenv("GITHUB_BASE_REF", "main")
        yield server


def test_run_posts_one_sticky_comment_and_the_status(
    project: Project,
    pull_request: GitHubStandIn,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["run", "--config", str(project.config)]) == EXIT_OK
    assert main(["run", "--config", str(project.config)]) == EXIT_OK

    (comment,) = pull_request.comments[12]
    assert comment["body"].startswith(sticky_marker("tiny-model"))
    assert "accuracy" in comment["body"]
    assert [s["state"] for s in pull_request.statuses[HEAD]] == ["success", "success"]
    assert "tiny-model" in (tmp_path / "step_summary.md").read_text()
    assert "publish: comment: https://github.example/" in capsys.readouterr().err


def test_refused_publish_exits_3_when_the_gate_passed_and_keeps_the_report(
    project: Project,
    pull_request: GitHubStandIn,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_read")

    assert main(["run", "--config", str(project.config)]) == EXIT_EXTERNAL

    err = capsys.readouterr().err
    assert "pull-requests: write" in err and "ghs_read" not in err
    assert (project.out / "report.md").exists() and (project.out / "comment.md").exists()
    assert project.gate_json()["verdict"] == "pass"
    assert json.loads((project.out / "publish.json").read_text())["errors"]


def test_refused_publish_never_hides_a_failed_gate(
    project: Project, pull_request: GitHubStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghs_read")
    project.set_params(metrics={"accuracy": 0.5, "log_loss": 0.3, "f1": 0.5})
    project.commit("worse")

    assert main(["run", "--config", str(project.config)]) == EXIT_GATE_FAILED
    assert project.gate_json()["verdict"] == "fail"


def test_a_broken_config_still_lands_in_the_job_summary_and_posts_nothing(
    project: Project, pull_request: GitHubStandIn, tmp_path: Path
) -> None:
    project.write("mlci.yaml", "version: 1\nmodel: {name: tiny-model}\ngate: [not, a, mapping]\n")

    assert main(["run", "--config", str(project.config)]) == 2

    summary = (tmp_path / "step_summary.md").read_text()
    assert "gate" in summary and "expected a mapping" in summary
    assert pull_request.comments.get(12, []) == []
    assert pull_request.statuses.get(HEAD, []) == []
    assert (project.out / "report.md").exists()
