"""Fixtures for the forge tests: the stand-ins, a fake clock, a report, a publisher."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mlci.ci import detect_context
from mlci.config import PublishConfig
from mlci.console import Console
from mlci.core.gate import Baseline, Rule, evaluate_gate
from mlci.core.report import ReportInput
from mlci.http import HttpClient
from mlci.pipeline.publish import Publisher, PublishResult
from tests.forges.standin import BitbucketStandIn, GitHubStandIn, GitLabStandIn

HEAD = "a" * 40  # the pull request's head commit
MERGE = "b" * 40  # the test-merge commit GitHub builds for pull_request events


@dataclass
class Clock:
    """Time that only moves when the code under test sleeps."""

    t: float = 1_800_000_000.0
    slept: list[float] = field(default_factory=list)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds

    def now(self) -> float:
        return self.t


@pytest.fixture
def clock() -> Clock:
    return Clock()


def http_factory(clock: Clock, timeout_s: float = 2.0) -> Callable[..., HttpClient]:
    def make(**kwargs: Any) -> HttpClient:
        return HttpClient(**kwargs, sleep=clock.sleep, now=clock.now, timeout_s=timeout_s)

    return make


@pytest.fixture
def github() -> Iterator[GitHubStandIn]:
    with GitHubStandIn().running() as server:
        assert isinstance(server, GitHubStandIn)
        server.add_pull(12, HEAD)
        yield server


@pytest.fixture
def gitlab() -> Iterator[GitLabStandIn]:
    with GitLabStandIn().running() as server:
        assert isinstance(server, GitLabStandIn)
        server.add_mr(3)
        yield server


@pytest.fixture
def bitbucket() -> Iterator[BitbucketStandIn]:
    with BitbucketStandIn().running() as server:
        assert isinstance(server, BitbucketStandIn)
        server.add_pull(5)
        yield server


def make_report(accuracy: float = 0.9, notes: tuple[str, ...] = ()) -> ReportInput:
    gate = evaluate_gate(
        [Rule("accuracy", min=0.8)], {"accuracy": accuracy}, Baseline("file", "b.json", {})
    )
    if notes:
        import dataclasses

        gate = dataclasses.replace(gate, notes=notes)
    return ReportInput(
        model="tiny-model",
        gate=gate,
        candidate={"accuracy": accuracy},
        commit=MERGE,
        ci="github",
        event="pull_request",
        run_url="https://github.example/team/models/actions/runs/42",
    )


def github_env(
    tmp_path: Path,
    api_url: str,
    *,
    token: str | None = "ghs_write",
    pr: int | None = 12,
    fork: bool = False,
    event: str = "pull_request",
) -> dict[str, str]:
    """The variables GitHub Actions sets, with the event payload file it writes."""
    env = {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": event,
        "GITHUB_REPOSITORY": "team/models",
        "GITHUB_API_URL": api_url,
        "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_RUN_ID": "42",
        "GITHUB_SHA": MERGE if event == "pull_request" else HEAD,
        "GITHUB_STEP_SUMMARY": str(tmp_path / "step_summary.md"),
    }
    if token:
        env["GITHUB_TOKEN"] = token
    if pr is not None and event == "pull_request":
        env["GITHUB_REF"] = f"refs/pull/{pr}/merge"
        payload = {
            "number": pr,
            "pull_request": {
                "number": pr,
                "head": {
                    "sha": HEAD,
                    "repo": {"full_name": "fork/models" if fork else "team/models"},
                },
                "base": {"sha": "c" * 40, "repo": {"full_name": "team/models"}},
            },
        }
        path = tmp_path / "event.json"
        path.write_text(json.dumps(payload))
        env["GITHUB_EVENT_PATH"] = str(path)
    else:
        env["GITHUB_REF"] = "refs/heads/feature"
        env["GITHUB_REF_NAME"] = "feature"
    return env


@dataclass
class Published:
    result: PublishResult
    log: str
    out: Path


def publish(
    tmp_path: Path,
    env: Mapping[str, str],
    clock: Clock,
    *,
    report: ReportInput | None = None,
    settings: PublishConfig | None = None,
    timeout_s: float = 2.0,
) -> Published:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    log = io.StringIO()
    publisher = Publisher(
        context=detect_context(tmp_path, env),
        settings=settings or PublishConfig(),
        env=env,
        console=Console(log),
        http_factory=http_factory(clock, timeout_s),
    )
    result = publisher.publish(report or make_report(), out)
    return Published(result, log.getvalue(), out)
