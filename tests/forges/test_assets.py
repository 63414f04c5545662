"""Images in the comment: the asset stores against the stand-ins and a local S3 server."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from mlci.config import PublishConfig, S3Config
from mlci.core.report import Figure, ReportInput
from tests.forges.conftest import HEAD, Clock, github_env, make_report, publish
from tests.forges.standin import GitHubStandIn, GitHubToken, GitLabStandIn
from tests.forges.test_gitlab_bitbucket import gitlab_env
from tests.servers import S3Server

PNG = b"\x89PNG\r\n\x1a\n" + b"plot-bytes" * 10


def report_with_plot(png: bytes = PNG) -> ReportInput:
    figure = Figure(
        key="confusion_matrix",
        title="Confusion matrix",
        markdown="| | a | b |\n|---|---|---|\n| a | 1 | 0 |",
        pngs=(png,),
    )
    return dataclasses.replace(make_report(), figures=(figure,))


def test_inline_default_uploads_nothing(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    publish(tmp_path, github_env(tmp_path, github.api_url), clock, report=report_with_plot())
    assert github.branches == {}
    assert "![" not in github.comments[12][0]["body"]
    assert "| a | 1 | 0 |" in github.comments[12][0]["body"]


def test_branch_store_commits_to_an_orphan_branch_and_links_relatively(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    settings = PublishConfig(images="branch")
    env = github_env(tmp_path, github.api_url)

    done = publish(tmp_path, env, clock, report=report_with_plot(), settings=settings)
    again = publish(tmp_path, env, clock, report=report_with_plot(PNG + b"2"), settings=settings)

    assert done.result.errors == again.result.errors == []
    files = github.branches["mlci-assets"]
    path = f"tiny-model/{HEAD[:12]}/confusion_matrix.png"
    assert files[path] == PNG + b"2"  # the rerun replaced it (with the blob's sha)
    body = github.comments[12][0]["body"]
    link = re.search(r"!\[Confusion matrix\]\(([^)]+)\)", body)
    assert link is not None
    assert re.fullmatch(rf"\.\./blob/[0-9a-f]{{40}}/{re.escape(path)}\?raw=true", link.group(1))
    assert "| a | 1 | 0 |" in body  # the table stays, for readers without access


def test_branch_store_without_contents_write_names_it_and_still_comments(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    github.tokens["ghs_write"] = GitHubToken("github-actions[bot]", contents=False)
    settings = PublishConfig(images="branch")

    done = publish(
        tmp_path,
        github_env(tmp_path, github.api_url),
        clock,
        report=report_with_plot(),
        settings=settings,
    )

    (error,) = done.result.errors
    assert "contents: write" in error and "403" in error
    assert len(github.comments[12]) == 1  # the comment went out, with the table only
    assert "![" not in github.comments[12][0]["body"]


def test_branch_store_is_refused_on_gitlab(
    gitlab: GitLabStandIn, tmp_path: Path, clock: Clock
) -> None:
    settings = PublishConfig(images="branch")
    done = publish(
        tmp_path, gitlab_env(gitlab), clock, report=report_with_plot(), settings=settings
    )
    assert "publish.images: branch works on GitHub and GHES only" in done.result.errors[0]


def test_gitlab_uploads(gitlab: GitLabStandIn, tmp_path: Path, clock: Clock) -> None:
    settings = PublishConfig(images="gitlab")
    done = publish(
        tmp_path, gitlab_env(gitlab), clock, report=report_with_plot(), settings=settings
    )
    assert done.result.errors == []
    assert gitlab.uploads == [PNG]
    assert re.search(
        r"!\[Confusion matrix\]\(/uploads/[0-9a-f]+/plot\.png\)", gitlab.notes[3][0]["body"]
    )


def test_gitea_attachments(tmp_path: Path, clock: Clock) -> None:
    with GitHubStandIn(prefix="/api/v1", flavour="gitea").running() as server:
        assert isinstance(server, GitHubStandIn)
        server.add_pull(4, HEAD)
        env = github_env(tmp_path, server.api_url, pr=4)
        env["GITEA_ACTIONS"] = "true"
        settings = PublishConfig(images="gitea")
        done = publish(tmp_path, env, clock, report=report_with_plot(), settings=settings)
        assert done.result.errors == []
        assert server.attachments[4] == [PNG]
        assert "](https://gitea.example/attachments/" in server.comments[4][0]["body"]


@pytest.mark.slow
def test_s3_store_uploads_and_links_a_presigned_url(
    s3_server: S3Server, github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    s3 = s3_server.client()
    s3.create_bucket(Bucket="reports")
    key_id, secret = s3_server.reader
    env = github_env(tmp_path, github.api_url)
    env.update({"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret})
    settings = PublishConfig(images="s3", s3=S3Config(bucket="reports", endpoint_url=s3_server.url))

    done = publish(tmp_path, env, clock, report=report_with_plot(), settings=settings)

    assert done.result.errors == []
    stored = s3.get_object(
        Bucket="reports", Key=f"mlci/tiny-model/{HEAD[:12]}/confusion_matrix.png"
    )
    assert stored["Body"].read() == PNG
    link = re.search(r"!\[Confusion matrix\]\(([^)]+)\)", github.comments[12][0]["body"])
    assert link is not None and "X-Amz-Signature=" in link.group(1)
    assert link.group(1).startswith(f"{s3_server.url}/reports/mlci/tiny-model/{HEAD[:12]}/")
    assert secret not in done.log + github.comments[12][0]["body"]

    # A wrong secret is refused by the server, and the error does not show it.
    env["AWS_SECRET_ACCESS_KEY"] = "wrong-secret-value"
    failed = publish(tmp_path, env, clock, report=report_with_plot(PNG + b"x"), settings=settings)
    assert "refused the upload" in failed.result.errors[0]
    assert "wrong-secret-value" not in "".join(failed.result.errors)


def test_presigned_url_signature_matches_botocore(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto cannot check presigned URLs with auth on; botocore's signer is the reference."""
    import datetime as dt
    import urllib.parse

    boto3 = pytest.importorskip("boto3")
    import botocore.auth
    from botocore.config import Config

    from mlci.assets import S3Credentials, S3Store
    from mlci.http import HttpClient

    when = dt.datetime(2026, 11, 30, 1, 2, 3, tzinfo=dt.timezone.utc)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: when.replace(tzinfo=None))
    endpoint = "http://127.0.0.1:9000"
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="eu-west-1",
        aws_access_key_id="AKIDEXAMPLE",
        aws_secret_access_key="SECRETEXAMPLE",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    theirs = client.generate_presigned_url(
        "get_object", Params={"Bucket": "reports", "Key": "mlci/m/x.png"}, ExpiresIn=604800
    )
    store = S3Store(
        S3Config(bucket="reports", endpoint_url=endpoint),
        S3Credentials("AKIDEXAMPLE", "SECRETEXAMPLE", region="eu-west-1"),
        folder="m",
        http=HttpClient(base_url=endpoint),
        now=when,
    )
    ours = store._presign("/reports/mlci/m/x.png")

    def params(url: str) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)

    assert urllib.parse.urlsplit(ours).path == urllib.parse.urlsplit(theirs).path
    assert params(ours)["X-Amz-Signature"] == params(theirs)["X-Amz-Signature"]


def test_a_hostile_file_name_stays_one_file_in_the_upload_form() -> None:
    import email.parser

    from mlci.assets import multipart

    name = 'plot".png"\r\nContent-Type: text/html\r\n\r\n<script>\\x.png'
    body, content_type = multipart("file", name, PNG, "image/png")

    message = email.parser.BytesParser().parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    parts = message.get_payload()
    assert isinstance(parts, list) and len(parts) == 1
    assert parts[0].get_content_type() == "image/png"
    assert parts[0].get_filename() == "plot-.png-Content-Type: text/html-<script>-x.png"
    assert parts[0].get_payload(decode=True) == PNG
