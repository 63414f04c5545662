"""Bitbucket Cloud parity: Downloads as the asset store, commit and issue comments, forks."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest

from mlci.assets import content_name
from mlci.config import PublishConfig
from mlci.forges import check_access
from mlci.forges.base import sticky_marker
from mlci.forges.bitbucket import scope_label
from mlci.http import ForgeError
from tests.forges.conftest import HEAD, Clock, http_factory, make_report, publish
from tests.forges.standin import BitbucketStandIn, BitbucketToken, Fault
from tests.forges.test_assets import PNG, report_with_plot
from tests.forges.test_comment import post as post_comment
from tests.forges.test_gitlab_bitbucket import bitbucket_env

MARKER = sticky_marker("tiny-model")
DOWNLOADS = "https://bitbucket.org/team/models/downloads/"
IMAGES = PublishConfig(images="bitbucket")


def stored_name(png: bytes, name: str = "confusion_matrix.png") -> str:
    return f"mlci-{hashlib.sha256(png).hexdigest()[:16]}-{name}"


def push_env(server: BitbucketStandIn) -> dict[str, str]:
    """A branch build: Pipelines set no BITBUCKET_PR_ID."""
    env = bitbucket_env(server)
    del env["BITBUCKET_PR_ID"]
    return env


def api_token_env(server: BitbucketStandIn) -> dict[str, str]:
    """An Atlassian API token (the stand-in's "api-token") with its owner's email."""
    return {
        **bitbucket_env(server, token="api-token"),
        "BITBUCKET_USERNAME": "dev@example.com",
    }


def post(
    tmp_path: Path, env: dict[str, str], clock: Clock, *, target: str = "auto", text: str = "hi"
) -> tuple[int, str]:
    """`mlci comment report.md --target TARGET` in a folder of its own."""
    root = tmp_path / "repo"
    root.mkdir(exist_ok=True)
    (root / "report.md").write_text(f"# Report\n\n{text}\n")
    return post_comment(root, env, clock, target=target)


# -- the asset store: the repository's Downloads ---------------------------------------


def test_downloads_host_the_plot_under_a_content_name_that_reruns_replace(
    bitbucket: BitbucketStandIn, tmp_path: Path, clock: Clock
) -> None:
    env = bitbucket_env(bitbucket)

    first = publish(tmp_path, env, clock, report=report_with_plot(), settings=IMAGES)
    again = publish(tmp_path, env, clock, report=report_with_plot(), settings=IMAGES)

    assert first.result.errors == again.result.errors == []
    assert bitbucket.downloads == {stored_name(PNG): PNG}  # the rerun replaced, not added
    (comment,) = bitbucket.comments[5]
    link = f"![Confusion matrix]({DOWNLOADS}{stored_name(PNG)})"
    assert link in comment["content"]["raw"]
    assert "| a | 1 | 0 |" in comment["content"]["raw"]  # the table stays

    changed = publish(tmp_path, env, clock, report=report_with_plot(PNG + b"2"), settings=IMAGES)

    assert changed.result.errors == []
    assert set(bitbucket.downloads) == {stored_name(PNG), stored_name(PNG + b"2")}
    assert f"{DOWNLOADS}{stored_name(PNG + b'2')}" in bitbucket.comments[5][0]["content"]["raw"]


def test_downloads_without_repository_write_name_the_permission_and_still_comment(
    bitbucket: BitbucketStandIn, tmp_path: Path, clock: Clock
) -> None:
    bitbucket.tokens["bb-token"] = BitbucketToken(
        "{bot-account}", frozenset({"repository", "pullrequest:write"})
    )

    done = publish(
        tmp_path, bitbucket_env(bitbucket), clock, report=report_with_plot(), settings=IMAGES
    )

    (error,) = done.result.errors
    assert "403" in error and "Repositories: Write" in error and "BITBUCKET_TOKEN" in error
    assert bitbucket.downloads == {}
    (comment,) = bitbucket.comments[5]  # the comment went out, with the table only
    assert "![" not in comment["content"]["raw"]


def test_mlci_comment_uploads_its_files_to_downloads(
    bitbucket: BitbucketStandIn, tmp_path: Path, clock: Clock
) -> None:
    root = tmp_path / "repo"
    (root / "plots").mkdir(parents=True)
    (root / "plots" / "loss.png").write_bytes(PNG)
    (root / "report.md").write_text("![loss](plots/loss.png)\n")
    code, _ = post_comment(root, bitbucket_env(bitbucket), clock, settings=IMAGES)
    assert code == 0
    assert bitbucket.downloads == {stored_name(PNG, "loss.png"): PNG}
    body = bitbucket.comments[5][0]["content"]["raw"]
    assert f"![loss]({DOWNLOADS}{stored_name(PNG, 'loss.png')})" in body


# -- commit comments --------------------------------------------------------------------


def test_target_commit_posts_one_sticky_commit_comment_read_across_pages(
    bitbucket: BitbucketStandIn, tmp_path: Path, clock: Clock
) -> None:
    for index in range(130):
        bitbucket.add_commit_comment(HEAD, f"c {index}", "{alice}")
    env = bitbucket_env(bitbucket)

    assert post(tmp_path, env, clock, target="commit")[0] == 0
    assert post(tmp_path, env, clock, target="commit", text="second")[0] == 0

    ours = [c for c in bitbucket.commit_comments[HEAD] if c["user"]["account_id"] != "{alice}"]
    assert len(ours) == 1
    assert ours[0]["content"]["raw"] == f"{sticky_marker('comment:report')}\n# Report\n\nsecond\n"
    assert bitbucket.comments[5] == []
    assert len(bitbucket.requests("PUT", rf"/commit/{HEAD}/comments/\d+$")) == 1
    assert any("page=2" in r.path for r in bitbucket.requests("GET", f"/commit/{HEAD}/comments"))


def test_auto_target_without_a_pull_request_comments_on_the_commit(
    bitbucket: BitbucketStandIn, tmp_path: Path, clock: Clock
) -> None:
    code, log = post(tmp_path, push_env(bitbucket), clock)
    assert code == 0 and f"commit {HEAD[:12]}" in log
    (comment,) = bitbucket.commit_comments[HEAD]
    assert comment["content"]["raw"].startswith(sticky_marker("comment:report"))


# -- issue comments -------------------------------------------------------------------


def test_target_issue_posts_one_sticky_issue_comment(
    bitbucket: BitbucketStandIn, tmp_path: Path, clock: Clock
) -> None:
    bitbucket.add_issue(8)
    env = api_token_env(bitbucket)
    for text in ("first", "second"):
        assert post(tmp_path, env, clock, target="issue/8", text=text)[0] == 0
    (comment,) = bitbucket.issue_comments[8]
    assert comment["content"]["raw"].endswith("second\n")
    assert bitbucket.comments[5] == []


def test_an_issue_target_without_an_issue_tracker_says_so(
    bitbucket: BitbucketStandIn, tmp_path: Path, clock: Clock
) -> None:
    bitbucket.issue_tracker = False
    with pytest.raises(ForgeError) as caught:
        post(tmp_path, api_token_env(bitbucket), clock, target="issue/8")
    message = caught.value.message
    assert caught.value.exit_code == 3
    assert "Repository has no issue tracker" in message
    assert "Repository settings > Issue tracker" in message and "--target pr" in message


# -- forks ----------------------------------------------------------------------------


def test_a_pull_request_from_a_fork_posts_nothing_and_keeps_the_exit_code(
    bitbucket: BitbucketStandIn, tmp_path: Path, clock: Clock
) -> None:
    bitbucket.add_pull(5, source="stranger/models")
    env = bitbucket_env(bitbucket)

    done = publish(tmp_path, env, clock, report=make_report(0.9))

    assert done.result.errors == [] and not done.result.failed
    (line,) = done.result.skipped
    assert "pull request #5 comes from a fork (stranger/models)" in line
    assert ".mlci/out/" in line and "comes from a fork" in done.log
    assert bitbucket.comments[5] == [] and bitbucket.statuses == {}
    assert bitbucket.requests("GET", r"/pullrequests/5$")  # the pull request was read
    assert (done.out / "comment.md").exists()  # the report is still in .mlci/out/


def test_mlci_comment_and_doctor_on_a_fork(
    bitbucket: BitbucketStandIn, tmp_path: Path, clock: Clock
) -> None:
    bitbucket.add_pull(5, source="stranger/models")
    env = bitbucket_env(bitbucket)

    code, log = post(tmp_path, env, clock)

    assert code == 0 and "comes from a fork" in log
    assert bitbucket.comments[5] == [] and bitbucket.commit_comments == {}
    saved = tmp_path / "repo/.mlci/out/comments/report.md"
    assert saved.read_text().startswith(sticky_marker("comment:report"))
    from mlci.ci import detect_context

    ((ok, message),) = check_access(
        detect_context(tmp_path, env), env, http_factory=http_factory(clock)
    )
    assert not ok and "fork" in message


def test_a_pull_request_of_the_same_repository_is_not_a_fork(
    bitbucket: BitbucketStandIn, tmp_path: Path, clock: Clock
) -> None:
    done = publish(tmp_path, bitbucket_env(bitbucket), clock)
    assert done.result.skipped == [] and done.result.errors == []
    assert re.match(re.escape(MARKER), bitbucket.comments[5][0]["content"]["raw"])


def test_a_403_without_the_scope_named_still_says_which_permission_the_upload_needs(
    bitbucket: BitbucketStandIn, tmp_path: Path, clock: Clock
) -> None:
    forbidden = {"type": "error", "error": {"message": "Forbidden"}}
    bitbucket.faults.append(Fault("POST", "/downloads$", status=403, body=forbidden))
    done = publish(
        tmp_path, bitbucket_env(bitbucket), clock, report=report_with_plot(), settings=IMAGES
    )
    (error,) = done.result.errors
    assert "403 Forbidden" in error and "Repositories: Write" in error


@pytest.mark.parametrize(
    ("scope", "label"),
    [
        ("repository:write", "Repositories: Write"),
        ("write:repository:bitbucket", "Repositories: Write"),
        ("pullrequest", "Pull requests: Read"),
        ("write:issue:bitbucket", "Issues: Write"),
    ],
)
def test_scopes_are_named_as_the_token_settings_show_them(scope: str, label: str) -> None:
    assert scope_label(scope) == label


def test_a_plot_name_is_made_safe_for_the_upload_header_and_the_url() -> None:
    assert content_name('a/b/"evil"\r\nX: y.png', b"x").endswith("-evil-X-y.png")
    assert re.fullmatch(r"mlci-[0-9a-f]{16}-[A-Za-z0-9._-]+", content_name("\r\n", b""))
