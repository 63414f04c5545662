"""Publishing to GitHub (and GHES, Gitea) through the stand-in API on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from mlci.ci import CiContext, detect_context
from mlci.config import PublishConfig
from mlci.forges import check_access
from mlci.forges.base import sticky_marker
from tests.forges.conftest import (
    HEAD,
    MERGE,
    Clock,
    github_env,
    http_factory,
    make_report,
    publish,
)
from tests.forges.standin import Fault, GitHubStandIn, GitHubToken

MARKER = sticky_marker("tiny-model")


def test_first_run_comments_sets_the_status_on_the_head_and_writes_the_summary(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    done = publish(tmp_path, github_env(tmp_path, github.api_url), clock)

    assert done.result.errors == []
    (comment,) = github.comments[12]
    assert comment["body"].startswith(MARKER + "\n## ")
    assert "tiny-model" in comment["body"]
    assert done.result.published["comment"] == comment["html_url"]
    # The status goes on the pull request's head, never on the test-merge commit.
    assert MERGE not in github.statuses
    (status,) = github.statuses[HEAD]
    assert status["state"] == "success"
    assert status["context"] == "mlci/tiny-model"
    assert status["target_url"].endswith("/actions/runs/42")
    summary = (tmp_path / "step_summary.md").read_text()
    assert "tiny-model" in summary
    record = json.loads((done.out / "publish.json").read_text())
    assert record["published"]["comment"] == comment["html_url"]
    assert (done.out / "comment.md").exists()


def test_a_forged_model_name_stays_inside_the_summary_markers(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    # mlci.yaml refuses such a name; `mlci publish` reads it from an artifact the PR built.
    forged = dataclasses.replace(make_report(), model="m -->\n# Approved\n<!-- x")
    publish(tmp_path, github_env(tmp_path, github.api_url), clock, report=forged)

    lines = (tmp_path / "step_summary.md").read_text().splitlines()
    assert lines[0] == "<!-- mlci:summary key=m - -# Approved<!- - x -->"
    assert lines[-1] == "<!-- /mlci:summary key=m - -# Approved<!- - x -->"
    assert "# Approved" not in lines


def test_second_run_updates_the_same_comment_without_a_new_one(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    env = github_env(tmp_path, github.api_url)
    publish(tmp_path, env, clock, report=make_report(0.9))
    first_id = github.comments[12][0]["id"]

    publish(tmp_path, env, clock, report=make_report(0.7))

    (comment,) = github.comments[12]
    assert comment["id"] == first_id
    assert "0.7" in comment["body"]
    assert len(github.requests("POST", "/comments")) == 1
    assert len(github.requests("PATCH", "/issues/comments/")) == 1
    assert github.statuses[HEAD][-1]["state"] == "failure"
    # The job summary holds this model's section once, however often it is published.
    assert (tmp_path / "step_summary.md").read_text().count("<!-- mlci:summary") == 1


def test_unchanged_report_is_not_edited_again(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    env = github_env(tmp_path, github.api_url)
    publish(tmp_path, env, clock)
    publish(tmp_path, env, clock)
    assert github.requests("PATCH") == []
    assert len(github.comments[12]) == 1


def test_finds_its_comment_among_150_others_on_later_pages(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    for index in range(140):
        github.add_comment(12, f"review comment {index}", "alice")
    ours = github.add_comment(12, f"{MARKER}\nold report", "github-actions[bot]")
    for index in range(10):
        github.add_comment(12, f"later comment {index}", "bob")

    done = publish(tmp_path, github_env(tmp_path, github.api_url), clock)

    assert done.result.errors == []
    assert len(github.comments[12]) == 151
    assert ours["body"] != f"{MARKER}\nold report"
    assert any("page=2" in r.path for r in github.requests("GET", "/comments"))
    assert github.requests("POST", "/comments") == []


def test_someone_elses_comment_with_the_marker_is_left_alone(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    theirs = github.add_comment(12, f"{MARKER}\nquoting the bot", "mallory")

    publish(tmp_path, github_env(tmp_path, github.api_url), clock)

    assert theirs["body"] == f"{MARKER}\nquoting the bot"
    assert [c["user"]["login"] for c in github.comments[12]] == ["mallory", "github-actions[bot]"]


def test_a_personal_token_matches_comments_by_its_own_login(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    github.tokens["ghp_user"] = GitHubToken("carol", app=False)
    github.add_comment(12, f"{MARKER}\nbot's report", "github-actions[bot]")
    env = github_env(tmp_path, github.api_url, token="ghp_user")

    publish(tmp_path, env, clock)
    publish(tmp_path, env, clock)

    authors = [c["user"]["login"] for c in github.comments[12]]
    assert authors == ["github-actions[bot]", "carol"]


def test_mode_new_always_creates_and_hide_folds_the_old_ones(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    env = github_env(tmp_path, github.api_url)
    publish(tmp_path, env, clock, settings=PublishConfig(comment="new"))
    publish(tmp_path, env, clock, settings=PublishConfig(comment="new"))
    assert len(github.comments[12]) == 2

    publish(tmp_path, env, clock, settings=PublishConfig(comment="hide"))

    bodies = [c["body"] for c in github.comments[12]]
    assert len(bodies) == 3
    assert all(b.startswith("<!-- mlci:outdated key=tiny-model -->") for b in bodies[:2])
    assert "<details><summary>Outdated mlci report" in bodies[0]
    assert bodies[2].startswith(MARKER)
    minimized = [c.get("is_minimized", False) for c in github.comments[12]]
    assert minimized == [True, True, False]


def test_comment_off_and_status_off_touch_nothing(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    settings = PublishConfig(comment="off", status=False)
    done = publish(tmp_path, github_env(tmp_path, github.api_url), clock, settings=settings)
    assert github.comments[12] == [] and github.statuses == {}
    assert "summary" in done.result.published


def test_read_only_token_names_the_permissions_block(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    env = github_env(tmp_path, github.api_url, token="ghs_read")

    done = publish(tmp_path, env, clock)

    comment_error, status_error = done.result.errors
    assert "403 Resource not accessible by integration" in comment_error
    assert "issues=write; pull_requests=write" in comment_error
    assert "permissions:\n    contents: read\n    pull-requests: write\n" in comment_error
    assert "statuses: write" in comment_error
    assert "statuses=write" in status_error
    assert "ghs_read" not in done.log + "".join(done.result.errors)
    # Nothing is lost: the summary and the files are there.
    assert (tmp_path / "step_summary.md").exists()
    assert json.loads((done.out / "publish.json").read_text())["errors"] == done.result.errors


def test_bad_token_is_named_but_never_shown(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    env = github_env(tmp_path, github.api_url, token="ghs_SECRET_expired")

    done = publish(tmp_path, env, clock)

    assert "401 Bad credentials" in done.result.errors[0]
    assert "GITHUB_TOKEN" in done.result.errors[0]
    everything = done.log + json.dumps(done.result.errors) + (done.out / "publish.json").read_text()
    assert "ghs_SECRET_expired" not in everything


def test_fork_pull_request_skips_the_comment_but_writes_the_summary(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    env = github_env(tmp_path, github.api_url, token="ghs_read", fork=True)

    done = publish(tmp_path, env, clock)

    assert github.log == []  # detected up front: not one request
    assert done.result.errors == []
    (line,) = done.result.skipped
    assert "comes from a fork" in line and "read-only" in line
    assert "comes from a fork" in done.log
    assert "tiny-model" in (tmp_path / "step_summary.md").read_text()


def test_no_token_writes_the_summary_and_says_how_to_pass_one(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    done = publish(tmp_path, github_env(tmp_path, github.api_url, token=None), clock)
    assert github.log == []
    assert not done.result.failed
    assert "GITHUB_TOKEN: ${{ github.token }}" in done.log
    assert (tmp_path / "step_summary.md").exists()


def test_429_waits_for_retry_after_then_posts_once(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    github.faults.append(
        Fault(
            "POST",
            "/comments$",
            status=429,
            headers={"Retry-After": "7"},
            body={
                "message": "You have exceeded a secondary rate limit and have been "
                "temporarily blocked from content creation. Please retry your request "
                "again later."
            },
        )
    )

    done = publish(tmp_path, github_env(tmp_path, github.api_url), clock)

    assert done.result.errors == []
    assert clock.slept == [7.0]
    assert len(github.comments[12]) == 1


def test_primary_rate_limit_waits_until_the_reset(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    reset = int(clock.t) + 30
    github.faults.append(
        Fault(
            "GET",
            "/comments$",
            status=403,
            headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": str(reset)},
            body={"message": "API rate limit exceeded for installation ID 1."},
        )
    )
    done = publish(tmp_path, github_env(tmp_path, github.api_url), clock)
    assert done.result.errors == []
    assert clock.slept == [31.0]


def test_a_rate_limit_longer_than_the_budget_fails_with_the_reset_time(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    github.faults.append(
        Fault("POST", "/comments$", status=429, headers={"Retry-After": "3600"}, times=5)
    )
    done = publish(tmp_path, github_env(tmp_path, github.api_url), clock)
    (error,) = done.result.errors
    assert "rate limited" in error and "publish.max_wait_seconds" in error and "UTC" in error
    assert clock.slept == []
    assert github.comments[12] == []


def test_502_on_a_read_is_retried_with_backoff(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    github.faults.append(Fault("GET", "/comments$", status=502, times=2))
    done = publish(tmp_path, github_env(tmp_path, github.api_url), clock)
    assert done.result.errors == []
    assert clock.slept == [1.0, 2.0]
    assert len(github.comments[12]) == 1


@pytest.mark.parametrize(
    ("body", "shown"),
    [
        (
            b"<html><body>\x1b[31mSign in</body></html>",
            "'<html><body>\\x1b[31mSign in</body></html>'",
        ),
        (b"{}", "'{}'"),
    ],
    ids=["html", "object"],
)
def test_a_listing_that_is_not_a_list_fails_instead_of_posting_again(
    github: GitHubStandIn, tmp_path: Path, clock: Clock, body: bytes, shown: str
) -> None:
    env = github_env(tmp_path, github.api_url)
    publish(tmp_path, env, clock)
    github.faults.append(
        Fault("GET", "/comments$", status=200, headers={"Content-Type": "text/html"}, body=body)
    )

    done = publish(tmp_path, env, clock)

    assert len(github.comments[12]) == 1  # read as "no comments", a duplicate was posted
    assert done.result.failed
    (error,) = done.result.errors
    assert error == (
        "could not read the comments of pull request #12: GitHub answered "
        f"/repos/team/models/issues/12/comments with 200 but not a list: {shown}; check the "
        "forge's API URL (a proxy or a sign-in page answers HTML)"
    )


def test_502_on_the_create_rereads_before_posting_again(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    github.faults.append(Fault("POST", "/comments$", status=502))
    done = publish(tmp_path, github_env(tmp_path, github.api_url), clock)
    assert done.result.errors == []
    assert len(github.comments[12]) == 1
    methods = [r.method for r in github.log if "/comments" in r.path]
    assert methods == ["GET", "POST", "GET", "POST"]


def test_timed_out_create_that_happened_is_not_repeated(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    # The forge creates the comment, but answers after the client gave up.
    github.faults.append(Fault("POST", "/comments$", status=201, act=True, delay_s=1.5))

    done = publish(tmp_path, github_env(tmp_path, github.api_url), clock, timeout_s=0.5)

    assert done.result.errors == []
    assert len(github.comments[12]) == 1
    assert len(github.requests("POST", "/comments")) == 1


def test_report_over_the_limit_is_folded_to_fit(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    notes = tuple(f"note {i}: " + "🔥 long text " * 60 for i in range(200))
    report = make_report(notes=notes)

    done = publish(tmp_path, github_env(tmp_path, github.api_url), clock, report=report)

    assert done.result.errors == []
    (comment,) = github.comments[12]
    assert comment["body"].startswith(MARKER)
    assert len(comment["body"].encode("utf-16-le")) // 2 <= 65_536
    assert "cut to fit" in comment["body"]
    # The local copy keeps everything.
    assert (done.out / "comment.md").read_text().count("note 199") == 1


def test_push_build_finds_its_pull_request_from_the_commit(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    env = github_env(tmp_path, github.api_url, event="push")

    done = publish(tmp_path, env, clock)

    assert done.result.errors == []
    assert len(github.comments[12]) == 1
    assert github.requests("GET", f"/commits/{HEAD}/pulls")


def test_push_without_an_open_pull_request_sets_only_the_status(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    github.pulls[12]["state"] = "closed"
    done = publish(tmp_path, github_env(tmp_path, github.api_url, event="push"), clock)
    assert github.comments[12] == []
    assert github.statuses[HEAD][0]["state"] == "success"
    assert "no open pull request" in done.result.skipped[0]


def test_check_run_when_configured(github: GitHubStandIn, tmp_path: Path, clock: Clock) -> None:
    settings = PublishConfig(check_run=True)
    done = publish(tmp_path, github_env(tmp_path, github.api_url), clock, settings=settings)
    (run,) = github.check_runs
    assert run["head_sha"] == HEAD and run["conclusion"] == "success"
    assert run["name"] == "mlci/tiny-model"
    assert "check_run" in done.result.published


def test_ghes_path_prefix(tmp_path: Path, clock: Clock) -> None:
    with GitHubStandIn(prefix="/api/v3").running() as server:
        assert isinstance(server, GitHubStandIn)
        server.add_pull(12, HEAD)
        done = publish(tmp_path, github_env(tmp_path, server.api_url), clock)
        assert done.result.errors == []
        assert len(server.comments[12]) == 1
        assert all(r.path.startswith("/api/v3/") for r in server.log)

        # Without the prefix (GITHUB_API_URL wrong): 404 names the variable.
        wrong = publish(tmp_path, github_env(tmp_path, server.origin), clock)
        assert "404" in wrong.result.errors[0] and "GITHUB_API_URL" in wrong.result.errors[0]


def test_gitea_api_v1(tmp_path: Path, clock: Clock) -> None:
    with GitHubStandIn(prefix="/api/v1", flavour="gitea").running() as server:
        assert isinstance(server, GitHubStandIn)
        server.add_pull(4, HEAD)
        for index in range(60):  # more than Gitea's 50 per page
            server.add_comment(4, f"comment {index}", "alice")
        env = github_env(tmp_path, server.api_url, pr=4)
        env.update({"GITEA_ACTIONS": "true", "GITEA_TOKEN": env.pop("GITHUB_TOKEN")})
        assert detect_context(tmp_path, env).ci == "gitea"

        publish(tmp_path, env, clock)
        publish(tmp_path, env, clock, report=make_report(0.7))

        ours = [c for c in server.comments[4] if c["user"]["login"] == "gitea-actions"]
        assert len(ours) == 1 and "0.7" in ours[0]["body"]
        # Gitea's comment list takes only since/before: one request answers all of them.
        lists = server.requests("GET", r"/issues/4/comments")
        assert lists and all(r.path.endswith("/issues/4/comments") for r in lists)
        assert server.statuses[HEAD][-1]["state"] == "failure"


def test_check_access_for_doctor(github: GitHubStandIn, tmp_path: Path, clock: Clock) -> None:
    def access(**kwargs: object) -> list[tuple[bool, str]]:
        env = github_env(tmp_path, github.api_url, **kwargs)  # type: ignore[arg-type]
        return check_access(detect_context(tmp_path, env), env, http_factory=http_factory(clock))

    assert access() == [(True, "GitHub: the token can read team/models")]
    ((ok, message),) = access(token=None)
    assert not ok and "GITHUB_TOKEN" in message
    ((ok, message),) = access(token="ghs_wrong")
    assert not ok and "401" in message and "ghs_wrong" not in message
    ((ok, message),) = access(fork=True)
    assert not ok and "fork" in message
    local = CiContext(ci="local", event="local", branch="main", sha=None)
    assert check_access(local, {}) == [
        (True, "outside CI: reports go to .mlci/out/ (comment.md, status.json)")
    ]


def test_the_http_client_repr_never_shows_the_token(github: GitHubStandIn, clock: Clock) -> None:
    client = http_factory(clock)(
        base_url=github.api_url,
        headers={"Authorization": "Bearer ghs_TOPSECRET"},
        secrets=("ghs_TOPSECRET",),
    )
    assert "ghs_TOPSECRET" not in repr(client)


def test_unreachable_api_names_the_url_variable(tmp_path: Path, clock: Clock) -> None:
    env = github_env(tmp_path, "http://127.0.0.1:9/api/v3")  # nothing listens on port 9
    done = publish(tmp_path, env, clock)
    assert "cannot reach GitHub" in done.result.errors[0]
    assert clock.slept == [1.0, 2.0, 4.0]


def test_hide_on_ghes_minimizes_through_its_graphql_url(tmp_path: Path, clock: Clock) -> None:
    with GitHubStandIn(prefix="/api/v3").running() as server:
        assert isinstance(server, GitHubStandIn)
        server.add_pull(12, HEAD)
        env = github_env(tmp_path, server.api_url)
        publish(tmp_path, env, clock)
        publish(tmp_path, env, clock, settings=PublishConfig(comment="hide"))
        assert [c.get("is_minimized", False) for c in server.comments[12]] == [True, False]
        assert server.requests("POST", "^/api/graphql$")
