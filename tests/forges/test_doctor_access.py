"""`mlci doctor`'s forge access check, against the GitHub stand-in."""

from __future__ import annotations

from pathlib import Path

from mlci.pipeline.preflight import DoctorContext, check_forge_access
from tests.forges.conftest import github_env
from tests.forges.standin import GitHubStandIn


def _check(tmp_path: Path, env: dict[str, str]) -> tuple[str, str]:
    ctx = DoctorContext(root=tmp_path, config=None, config_error=None, env=env)
    result = check_forge_access(ctx)
    return result.status, result.detail


def test_a_token_that_reads_the_repository_passes(github: GitHubStandIn, tmp_path: Path) -> None:
    status, detail = _check(tmp_path, github_env(tmp_path, github.api_url))
    assert (status, detail) == ("ok", "GitHub: the token can read team/models")


def test_a_refused_token_fails_with_the_fix_and_never_shows_it(
    github: GitHubStandIn, tmp_path: Path
) -> None:
    status, detail = _check(tmp_path, github_env(tmp_path, github.api_url, token="ghs_wrong"))
    assert status == "fail"
    assert "401" in detail and "GITHUB_TOKEN" in detail
    assert "ghs_wrong" not in detail


def test_a_fork_warns_and_no_token_or_a_local_run_skips(
    github: GitHubStandIn, tmp_path: Path
) -> None:
    assert _check(tmp_path, github_env(tmp_path, github.api_url, fork=True))[0] == "warn"
    assert _check(tmp_path, github_env(tmp_path, github.api_url, token=None)) == (
        "skip",
        "no token to try (see forge token)",
    )
    assert _check(tmp_path, {}) == ("skip", "a local run: nothing is posted")
