"""`mlci comment`: a CML-style report posted through the forge stand-ins and asset stores."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from mlci.commands.comment import comment_command, find_links, fit
from mlci.config import PublishConfig, S3Config
from mlci.console import Console
from mlci.errors import UsageError
from mlci.forges.base import sticky_marker
from mlci.http import ForgeError
from tests.forges.conftest import HEAD, Clock, github_env, http_factory
from tests.forges.standin import GitHubStandIn, GitHubToken, GitLabStandIn
from tests.forges.test_gitlab_bitbucket import gitlab_env
from tests.servers import S3Server

PNG = b"\x89PNG\r\n\x1a\n"
REPORT = """# Training report

Accuracy 0.93 ([the run](https://example.com/run), [top](#top), [mail](mailto:a@b.c)).

![feature importance](plots/importance.png)

<img src="plots/samples.png" width="300">

![attention][att]

Full [log](train.log).

```
![in a code block](plots/not-there.png)
```

And `![inline code](nope.png)` too.

[att]: plots/attention.png
"""
IMAGES = ("importance", "samples", "attention")
KEY = sticky_marker("comment:report")


def project(tmp_path: Path, version: bytes = b"1") -> Path:
    root = tmp_path / "repo"
    (root / "plots").mkdir(parents=True, exist_ok=True)
    for name in IMAGES:
        (root / "plots" / f"{name}.png").write_bytes(PNG + name.encode() + version)
    (root / "train.log").write_text("epoch 1 loss 0.5\nepoch 2 loss 0.3\n")
    (root / "report.md").write_text(REPORT)
    return root


def post(
    root: Path,
    env: dict[str, str],
    clock: Clock,
    *,
    settings: PublishConfig | None = None,
    file: str = "report.md",
    **options: object,
) -> tuple[int, str]:
    log = io.StringIO()
    arguments: dict[str, object] = {
        "target": "auto",
        "key": None,
        "mode": "update",
        "dry_run": False,
        "as_json": False,
        **options,
    }
    code = comment_command(
        markdown=Path(file),
        config=None,
        env=env,
        cwd=root,
        console=Console(log),
        http_factory=http_factory(clock),
        settings=settings or PublishConfig(),
        **arguments,  # type: ignore[arg-type]
    )
    return code, log.getvalue()


def remote_links_untouched(body: str) -> None:
    assert "[the run](https://example.com/run)" in body
    assert "[top](#top)" in body and "[mail](mailto:a@b.c)" in body
    assert "![in a code block](plots/not-there.png)" in body
    assert "`![inline code](nope.png)`" in body


def test_inline_store_posts_once_and_names_the_store_options(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    root = project(tmp_path)
    env = github_env(tmp_path, github.api_url)

    code, log = post(root, env, clock)
    project(tmp_path, b"2")
    again, _ = post(root, env, clock)

    assert code == again == 0
    (comment,) = github.comments[12]
    body = comment["body"]
    assert body.startswith(KEY + "\n# Training report")
    remote_links_untouched(body)
    # No image is left pointing at a file the forge cannot serve.
    assert not re.search(r"\]\(plots/(importance|samples|attention)", body)
    assert 'src="plots/' not in body and "](train.log)" not in body
    for name in ("plots/importance.png", "plots/samples.png", "train.log"):
        assert f"{name}: not attached" in body.replace("\\", "")
    assert "publish.images" in body and "`branch`" in body and "`s3`" in body
    assert "not attached" in log and "publish.images" in log


def test_branch_store_uploads_every_file_once_and_updates_in_place(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    root = project(tmp_path)
    env = github_env(tmp_path, github.api_url)
    settings = PublishConfig(images="branch")

    assert post(root, env, clock, settings=settings)[0] == 0
    project(tmp_path, b"2")
    assert post(root, env, clock, settings=settings)[0] == 0

    (comment,) = github.comments[12]
    body = comment["body"]
    files = github.branches["mlci-assets"]
    folder = f"comments/report/{HEAD[:12]}"
    for name in IMAGES:
        assert files[f"{folder}/plots/{name}.png"] == PNG + name.encode() + b"2"
    assert files[f"{folder}/train.log"].startswith(b"epoch 1")
    assert re.search(rf"!\[feature importance\]\(\.\./blob/[0-9a-f]{{40}}/{folder}/plots/", body)
    assert re.search(rf'<img src="\.\./blob/[0-9a-f]{{40}}/{folder}/plots/samples\.png', body)
    assert re.search(rf"\[att\]: \.\./blob/[0-9a-f]{{40}}/{folder}/plots/attention\.png", body)
    assert re.search(rf"\[log\]\(\.\./blob/[0-9a-f]{{40}}/{folder}/train\.log", body)
    remote_links_untouched(body)
    assert "not attached" not in body
    # Each file went up once per post, though importance.png is linked once and shown once.
    assert len(github.requests("PUT", "/contents/")) == 2 * 4


def test_gitlab_uploads(gitlab: GitLabStandIn, tmp_path: Path, clock: Clock) -> None:
    root = project(tmp_path)
    settings = PublishConfig(images="gitlab")
    assert post(root, gitlab_env(gitlab), clock, settings=settings)[0] == 0
    assert post(root, gitlab_env(gitlab), clock, settings=settings)[0] == 0

    (note,) = gitlab.notes[3]
    assert note["body"].startswith(KEY)
    assert len(gitlab.uploads) == 2 * 4
    assert b"epoch 1 loss" in gitlab.uploads[-1] or any(b"epoch" in u for u in gitlab.uploads)
    assert len(re.findall(r"\(/uploads/[0-9a-f]+/", note["body"])) == 2  # image and log
    assert 'src="/uploads/' in note["body"] and "[att]: /uploads/" in note["body"]
    remote_links_untouched(note["body"])


def test_gitea_attachments(tmp_path: Path, clock: Clock) -> None:
    with GitHubStandIn(prefix="/api/v1", flavour="gitea").running() as server:
        assert isinstance(server, GitHubStandIn)
        server.add_pull(4, HEAD)
        env = github_env(tmp_path, server.api_url, pr=4)
        env["GITEA_ACTIONS"] = "true"
        root = project(tmp_path)
        settings = PublishConfig(images="gitea")
        assert post(root, env, clock, settings=settings)[0] == 0
        assert post(root, env, clock, settings=settings)[0] == 0
        (comment,) = server.comments[4]
        assert len(server.attachments[4]) == 2 * 4
        assert comment["body"].count("https://gitea.example/attachments/") == 4
        remote_links_untouched(comment["body"])


@pytest.mark.slow
def test_s3_store(s3_server: S3Server, github: GitHubStandIn, tmp_path: Path, clock: Clock) -> None:
    s3 = s3_server.client()
    s3.create_bucket(Bucket="comment-files")
    key_id, secret = s3_server.reader
    env = github_env(tmp_path, github.api_url)
    env.update({"AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret})
    store = S3Config(bucket="comment-files", endpoint_url=s3_server.url)
    settings = PublishConfig(images="s3", s3=store)
    root = project(tmp_path)

    code, log = post(root, env, clock, settings=settings)
    assert code == 0 and post(root, env, clock, settings=settings)[0] == 0

    (comment,) = github.comments[12]
    key = f"mlci/comments/report/{HEAD[:12]}/plots/importance.png"
    assert s3.get_object(Bucket="comment-files", Key=key)["Body"].read() == PNG + b"importance1"
    log_key = key.replace("plots/importance.png", "train.log")
    log_object = s3.get_object(Bucket="comment-files", Key=log_key)
    assert log_object["ContentType"].startswith("text/plain")
    assert comment["body"].count("X-Amz-Signature=") == 4
    assert secret not in log + comment["body"]


def test_over_the_limit_is_cut_at_a_paragraph_with_blocks_closed(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    paragraphs = [f"Paragraph {i}: " + "x" * 500 for i in range(100)]
    text = "\n\n".join(paragraphs) + "\n\n<details><summary>log</summary>\n\n```\n"
    text += "\n".join(f"line {i}" for i in range(10_000)) + "\n```\n\n</details>\n"
    (root / "big.md").write_text(text)
    env = github_env(tmp_path, github.api_url)

    code, _ = post(root, env, clock, file="big.md")

    assert code == 0
    (comment,) = github.comments[12]
    body = comment["body"]
    assert len(body.encode("utf-16-le")) // 2 <= 65_536
    assert "Cut to fit the forge's limit" in body and ".mlci/out/comments/big.md" in body
    kept = body.split("> ✂️")[0]
    assert kept.count("```") % 2 == 0
    assert kept.count("<details>") == kept.count("</details>")
    assert (root / ".mlci/out/comments/big.md").read_text().count("Cut to fit") == 1


def test_fit_keeps_short_text() -> None:
    assert fit("short\n", 100, "x") == ("short\n", False)


def test_missing_files_are_named_and_nothing_is_posted(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    root = project(tmp_path)
    (root / "plots" / "samples.png").unlink()
    (root / "train.log").unlink()
    env = github_env(tmp_path, github.api_url)

    with pytest.raises(UsageError) as caught:
        post(root, env, clock, settings=PublishConfig(images="branch"))

    assert caught.value.exit_code == 2
    message = caught.value.message
    assert "plots/samples.png" in message and "train.log" in message
    assert "importance" not in message and "Nothing was posted" in message
    assert github.log == []  # not one request: no upload, no comment


@pytest.mark.parametrize(
    "link",
    ["![x](../../etc/passwd)", "[y](/etc/passwd)", '<img src="../outside.png">', "[z](escape)"],
)
def test_paths_outside_the_repository_are_refused(
    link: str, github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    root = project(tmp_path)
    (tmp_path / "outside.png").write_bytes(PNG)
    (root / "escape").symlink_to(tmp_path / "outside.png")
    (root / "report.md").write_text(f"# r\n\n{link}\n")
    with pytest.raises(UsageError, match="outside the repository") as caught:
        post(root, github_env(tmp_path, github.api_url), clock)
    assert caught.value.exit_code == 2 and github.log == []


@pytest.mark.parametrize("link", ["[c](.git/config)", "[e](.env)", "[k](plots/.secret/key)"])
def test_hidden_files_are_never_published(
    link: str, github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    root = project(tmp_path)
    for name in (".git/config", ".env", "plots/.secret/key"):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text("token=ghs_secret")
    (root / ".mlci/out/plots").mkdir(parents=True)
    (root / ".mlci/out/plots/roc.png").write_bytes(PNG)
    (root / "report.md").write_text(f"# r\n\n{link} ![roc](.mlci/out/plots/roc.png)\n")
    with pytest.raises(UsageError, match="hidden files") as caught:
        post(root, github_env(tmp_path, github.api_url), clock)
    assert "roc.png" not in caught.value.message and github.log == []


def test_dry_run_prints_the_final_markdown_and_posts_nothing(
    github: GitHubStandIn, tmp_path: Path, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    root = project(tmp_path)
    env = github_env(tmp_path, github.api_url)

    code, log = post(root, env, clock, dry_run=True, settings=PublishConfig(images="branch"))

    out = capsys.readouterr().out
    assert code == 0 and github.log == [] and github.branches == {}
    assert out.startswith(KEY + "\n# Training report")
    assert "](mlci-asset://branch/plots/importance.png)" in out
    assert "dry run: nothing posted" in log


def test_target_commit_posts_one_commit_comment(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    root = project(tmp_path)
    env = github_env(tmp_path, github.api_url)
    assert post(root, env, clock, target="commit")[0] == 0
    (root / "report.md").write_text("# Training report\n\nsecond\n")
    assert post(root, env, clock, target="commit")[0] == 0

    (comment,) = github.commit_comments[HEAD]
    assert comment["body"] == f"{KEY}\n# Training report\n\nsecond\n"
    assert github.comments[12] == []


def test_target_issue_posts_on_that_issue(
    github: GitHubStandIn, tmp_path: Path, clock: Clock, capsys: pytest.CaptureFixture[str]
) -> None:
    github.add_issue(30)
    root = project(tmp_path)
    env = github_env(tmp_path, github.api_url)
    for _ in range(2):
        assert post(root, env, clock, target="issue/30", key="nightly", as_json=True)[0] == 0
    (comment,) = github.comments[30]
    assert comment["body"].startswith(sticky_marker("comment:nightly"))
    assert github.comments[12] == []
    result = json.loads(capsys.readouterr().out.split("\n}\n")[-2] + "\n}")
    assert result["posted"] is True and result["target"] == "issue/30"
    assert result["where"].endswith(f"#issuecomment-{comment['id']}")


def test_a_read_only_token_gets_the_permissions_fix_and_the_token_is_not_shown(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    github.tokens["ghs_secret_ro"] = GitHubToken("github-actions[bot]", write=False)
    root = project(tmp_path)
    env = github_env(tmp_path, github.api_url, token="ghs_secret_ro")
    with pytest.raises(ForgeError) as caught:
        post(root, env, clock)
    assert "pull-requests: write" in caught.value.message
    assert caught.value.exit_code == 3 and "ghs_secret_ro" not in caught.value.message


def test_a_fork_skips_with_one_line_and_keeps_the_comment(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    root = project(tmp_path)
    code, log = post(root, github_env(tmp_path, github.api_url, fork=True), clock)
    assert code == 0 and "comes from a fork" in log
    assert github.comments[12] == []
    assert (root / ".mlci/out/comments/report.md").read_text().startswith(KEY)


def test_outside_ci_writes_the_comment_and_its_files_locally(tmp_path: Path, clock: Clock) -> None:
    root = project(tmp_path)
    code, log = post(root, {}, clock)
    out = root / ".mlci/out/comments"
    body = (out / "report.md").read_text()
    assert code == 0 and "not in CI, so nothing was posted" in log
    assert "![feature importance](report-files/plots/importance.png)" in body
    assert (out / "report-files/plots/importance.png").read_bytes() == PNG + b"importance1"
    assert (out / "report-files/train.log").exists()


def test_find_links_skips_code_and_sees_html() -> None:
    links = find_links(REPORT)
    assert [link.dest for link in links] == [
        "https://example.com/run",
        "#top",
        "mailto:a@b.c",
        "plots/importance.png",
        "plots/samples.png",
        "train.log",
        "plots/attention.png",
    ]


def test_a_report_section_image_goes_through_the_asset_store(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    import dataclasses

    from mlci.core.report import ReportSection
    from tests.forges.conftest import make_report, publish

    section = ReportSection("plots/importance.png", png=PNG + b"section")
    report = dataclasses.replace(make_report(), sections=(section,))
    env = github_env(tmp_path, github.api_url)
    done = publish(tmp_path, env, clock, report=report, settings=PublishConfig(images="branch"))

    assert done.result.errors == []
    path = f"tiny-model/{HEAD[:12]}/section-1.png"
    assert github.branches["mlci-assets"][path] == PNG + b"section"
    body = github.comments[12][0]["body"]
    assert re.search(rf"!\[plots/importance\.png\]\(\.\./blob/[0-9a-f]{{40}}/{path}", body)


def test_mlci_yaml_with_only_a_publish_section_chooses_the_store(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    root = project(tmp_path)
    (root / "mlci.yaml").write_text("publish:\n  images: branch\n")
    log = io.StringIO()
    code = comment_command(
        markdown=Path("report.md"),
        target="auto",
        key=None,
        mode="update",
        dry_run=False,
        as_json=False,
        config=None,
        env=github_env(tmp_path, github.api_url),
        cwd=root,
        console=Console(log),
        http_factory=http_factory(clock),
    )
    assert code == 0 and "mlci-assets" in github.branches
    assert "not attached" not in github.comments[12][0]["body"]


def test_target_issue_on_gitlab_posts_an_issue_note(
    gitlab: GitLabStandIn, tmp_path: Path, clock: Clock
) -> None:
    gitlab.issue_notes[8] = []
    root = project(tmp_path)
    for _ in range(2):
        assert post(root, gitlab_env(gitlab), clock, target="issue/8")[0] == 0
    (note,) = gitlab.issue_notes[8]
    assert note["body"].startswith(KEY) and gitlab.notes[3] == []


def test_target_commit_is_refused_where_commit_comments_cannot_be_updated(
    gitlab: GitLabStandIn, tmp_path: Path, clock: Clock
) -> None:
    root = project(tmp_path)
    with pytest.raises(UsageError, match="--target commit: GitLab") as caught:
        post(root, gitlab_env(gitlab), clock, target="commit")
    assert caught.value.exit_code == 2 and gitlab.notes[3] == []


@pytest.mark.parametrize("target", ["issue", "issue/0", "pr/x", "branch/main"])
def test_a_bad_target_names_the_grammar(target: str, tmp_path: Path, clock: Clock) -> None:
    root = project(tmp_path)
    with pytest.raises(UsageError, match=r"use auto .* pr, pr/N, commit or issue/N"):
        post(root, {}, clock, target=target)


def test_a_store_the_forge_cannot_serve_is_a_setup_error_before_posting(
    gitlab: GitLabStandIn, tmp_path: Path, clock: Clock
) -> None:
    root = project(tmp_path)
    with pytest.raises(UsageError, match="branch works on GitHub and GHES only") as caught:
        post(root, gitlab_env(gitlab), clock, settings=PublishConfig(images="branch"))
    assert "Nothing was posted" in caught.value.message and "tables" not in caught.value.message
    assert gitlab.notes[3] == [] and gitlab.uploads == []


def test_the_cli_exits_2_naming_the_missing_image(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from mlci.cli import main

    root = project(tmp_path)
    (root / "plots" / "attention.png").unlink()
    monkeypatch.chdir(root)
    assert main(["comment", "report.md", "--dry-run"]) == 2
    captured = capsys.readouterr()
    assert "plots/attention.png" in captured.err and captured.out == ""


def test_embedded_data_images_are_hosted_or_named_never_left_to_be_stripped(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    import base64

    root = project(tmp_path)
    encoded = base64.b64encode(PNG + b"dvclive").decode()
    (root / "report.md").write_text(f"# dvclive\n\n![loss](data:image/png;base64,{encoded})\n")
    env = github_env(tmp_path, github.api_url)

    assert post(root, env, clock)[0] == 0
    inline = github.comments[12][0]["body"]
    assert "data:image" not in inline and "an embedded image" in inline
    assert "not attached" in inline

    assert post(root, env, clock, settings=PublishConfig(images="branch"))[0] == 0
    (comment,) = github.comments[12]
    (path,) = [p for p in github.branches["mlci-assets"] if "/embedded/" in p]
    assert github.branches["mlci-assets"][path] == PNG + b"dvclive"
    link = rf"!\[loss\]\(\.\./blob/[0-9a-f]{{40}}/{re.escape(path)}\?raw=true\)"
    assert re.search(link, comment["body"])


HTML_AND_INDENTED = """# Training report

See <a href="train.log">the full log</a> and <A HREF='plots/importance.png'><img
src="plots/samples.png" width="300"></A>.

    ![in indented code](plots/not-there.png) <a href="nope.log">x</a>

- a list item

    ![a paragraph of the item, not code](plots/attention.png)
a paragraph
    ![its continuation, not code](plots/importance.png)
"""


def test_inline_store_replaces_an_html_link_whole_and_leaves_indented_code_alone(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    root = project(tmp_path)
    (root / "report.md").write_text(HTML_AND_INDENTED)
    env = github_env(tmp_path, github.api_url)

    code, _ = post(root, env, clock)

    assert code == 0  # plots/not-there.png and nope.log are in code: not files to attach
    body = github.comments[12][0]["body"].replace("\\", "")
    prose = body.split("\n    ![in indented code]")[0]
    assert "</a>" not in prose.lower() and "<a " not in prose.lower()
    assert "See the full log *(train.log: not attached, see the note below)* and " in body
    assert "*🖼️ plots/samples.png: not attached, see the note below* *🖼️ plots/importance" in body
    assert "\n    ![in indented code](plots/not-there.png) <a href=" in body  # verbatim
    assert "![a paragraph of the item" not in body
    assert "![its continuation" not in body


def test_a_hosted_html_link_keeps_its_tags(
    github: GitHubStandIn, tmp_path: Path, clock: Clock
) -> None:
    root = project(tmp_path)
    (root / "report.md").write_text(HTML_AND_INDENTED)
    env = github_env(tmp_path, github.api_url)

    code, _ = post(root, env, clock, settings=PublishConfig(images="branch"))

    body = github.comments[12][0]["body"]
    assert code == 0
    assert re.search(r'<a href="[^"]+/train\.log[^"]*">the full log</a>', body)
    assert re.search(r"<A HREF='[^']+/plots/importance\.png[^']*'><img\nsrc=\"[^\"]+\"", body)
    assert 'width="300"></A>.' in body


@pytest.mark.parametrize(
    ("markdown", "dest"),
    [
        ("text\n\n    ![code](a.png)\n", None),  # an indented code block
        ("text\n    ![not code](a.png)\n", "a.png"),  # it cannot interrupt a paragraph
        ("- item\n\n    ![in the item](a.png)\n", "a.png"),  # the item's content column
        ("- item\n\n      ![code](a.png)\n", None),  # four past the item's content
        ("1. item\n\n       ![code](a.png)\n\n![after](b.png)\n", "b.png"),
        ("\t![code](a.png)\n", None),  # a tab is four columns
        ("- ```\n  ![fenced](a.png)\n  ```\n![after](b.png)\n", "b.png"),
        ("- item\n  ```\n  ![fenced](a.png)\n![the item ended](b.png)\n", "b.png"),
        ("```x```\n![inline code, then a link](a.png)\n", "a.png"),
    ],
)
def test_find_links_follows_commonmark_on_indented_code(markdown: str, dest: str | None) -> None:
    assert [link.dest for link in find_links(markdown)] == ([dest] if dest else [])
