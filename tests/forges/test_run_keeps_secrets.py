"""A training that prints the job's secrets, in a GitHub pull-request build: none leaves.

GitHub masks secrets in the job's log, not in what a step posts through the API, so
mlci masks them itself (docs/security.md#secrets).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from mlci.cli import main
from mlci.errors import EXIT_TRAINING
from tests.conftest import Project
from tests.forges.conftest import HEAD, github_env
from tests.forges.standin import GitHubStandIn, GitHubToken

pytestmark = pytest.mark.slow  # runs a training

SECRETS = {
    "GITHUB_TOKEN": "ghs_8fK2mQx7LpR4vN1cT9wZ",
    "MLFLOW_TRACKING_PASSWORD": "correct-horse-battery-staple",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY",
    "HF_HUB_READ": "hf_QkZ3nN5sWqYtUv",  # not secret-looking: named in MLCI_SECRETS
}

LEAKY_TRAINING = """\
import os, sys
for name in ("GITHUB_TOKEN", "MLFLOW_TRACKING_PASSWORD", "AWS_SECRET_ACCESS_KEY", "HF_HUB_READ"):
    print(f"{name}={os.environ[name]}", flush=True)
print("cloning https://x-access-token:" + os.environ["GITHUB_TOKEN"] + "@github.com/a/b")
print(os.environ["AWS_SECRET_ACCESS_KEY"], file=sys.stderr)
sys.exit(3)
"""


@pytest.fixture
def leaky_pull_request(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[GitHubStandIn]:
    with GitHubStandIn().running() as server:
        assert isinstance(server, GitHubStandIn)
        server.add_pull(12, HEAD)
        server.tokens[SECRETS["GITHUB_TOKEN"]] = GitHubToken("github-actions[bot]")
        env = github_env(tmp_path, server.api_url, token=SECRETS["GITHUB_TOKEN"])
        for name, value in {**env, **SECRETS, "MLCI_SECRETS": "HF_HUB_READ"}.items():
            monkeypatch.setenv(name, value)
        project.write("train.py", LEAKY_TRAINING)
        project.commit("a training that prints its secrets")
        yield server


def _leaks(data: bytes) -> list[str]:
    return [name for name, value in SECRETS.items() if value.encode() in data]


def test_a_failed_training_that_prints_secrets_leaks_none(
    project: Project,
    leaky_pull_request: GitHubStandIn,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["run", "--config", str(project.config)]) == EXIT_TRAINING

    log = capsys.readouterr().err  # the CI log: the training's lines as they came
    assert "  │ GITHUB_TOKEN=***" in log
    assert _leaks(log.encode()) == []

    report = (project.out / "report.md").read_text()
    assert "GITHUB_TOKEN=***" in report and "AWS_SECRET_ACCESS_KEY=***" in report
    assert "HF_HUB_READ=***" in report and "cloning https://***@github.com/a/b" in report
    files = [path for path in project.out.rglob("*") if path.is_file()]
    assert {"report.md", "report.html", "report.json", "gate.json", "publish.json"} <= {
        path.name for path in files
    }
    for path in [*files, tmp_path / "step_summary.md"]:
        assert _leaks(path.read_bytes()) == [], path
    (comment,) = leaky_pull_request.comments[12]
    assert "MLFLOW_TRACKING_PASSWORD=***" in comment["body"]
    sent = [r for r in leaky_pull_request.log if r.body]
    assert {r.method for r in sent} >= {"POST"}  # the comment and the status
    for request in sent:
        assert _leaks(request.body) == [], request.path
