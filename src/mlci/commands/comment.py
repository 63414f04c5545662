"""`mlci comment FILE.md`: post your own Markdown report, the way `cml comment create` does.

The comment goes through the same forge layer as `mlci run` (sticky per key, folded to
the forge's limit, retries, fork detection, the fix for a 403). Local files the Markdown
links (`![](plots/x.png)`, `[log](train.log)`, `<img src=...>`) are checked first: a
missing file, or one outside the repository, stops the command before anything is sent.
Then each goes through the asset store of `publish.images` and its link is rewritten;
with the `inline` default nothing is hosted, and each such file becomes a visible note
that names the stores that would show it.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import hashlib
import html
import json
import mimetypes
import re
import sys
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from mlci.ci import CiContext
from mlci.config import PublishConfig, load_publish_config, locate_optional
from mlci.console import Console
from mlci.core.links import IMAGE_SUFFIXES, Link, edit, find_links, fit, local_path, replace_link
from mlci.core.markdown import code_ranges, inside
from mlci.core.redact import mask_text
from mlci.core.report.escape import md_text
from mlci.errors import EXIT_OK, UsageError
from mlci.forges.base import CommentMode, Forge, HttpFactory, sticky_marker
from mlci.secrets import secret_values

MAX_FILE_BYTES = 25_000_000  # GitHub's attachment limit for non-image files
LIMITS = {"github": 65_536, "gitea": 65_536, "gitlab": 1_000_000, "bitbucket": 32_000}
MODES: dict[str, CommentMode] = {"update": "update", "new": "new", "hide-old": "hide"}
STORE_OPTIONS = (
    "set publish.images in mlci.yaml to `branch` (GitHub, GHES), `gitlab`, `gitea` "
    "(Gitea, Forgejo), `bitbucket` or `s3` (docs/forges.md#images)"
)


# -- the target -----------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """Where the comment goes: `auto` (the pull request, else the commit), or one of them."""

    kind: Literal["auto", "pr", "commit", "issue"]
    number: int | None = None

    @classmethod
    def parse(cls, text: str) -> Target:
        if text in ("auto", "pr", "commit"):
            return cls(text)  # type: ignore[arg-type]  # checked just above
        match = re.fullmatch(r"(issue|pr)/([1-9][0-9]{0,9})", text)
        if match:
            kind = "issue" if match.group(1) == "issue" else "pr"
            return cls(kind, int(match.group(2)))  # type: ignore[arg-type]
        raise UsageError(
            f"--target {text}: not a target; use auto (the pull request, else the commit), "
            "pr, pr/N, commit or issue/N"
        )

    def __str__(self) -> str:
        return f"{self.kind}/{self.number}" if self.number is not None else self.kind


# -- the local files ----------------------------------------------------------------


@dataclass(frozen=True)
class LocalFile:
    path: Path  # resolved, inside the root (for an embedded image: a name, not a file)
    shown: str  # as the Markdown wrote it
    name: str  # relative to the root: the name it is uploaded under
    image: bool
    embedded: bytes | None = None  # the bytes of a `data:image/...;base64,` link

    def read(self) -> bytes:
        return self.embedded if self.embedded is not None else self.path.read_bytes()


_DATA_IMAGE = re.compile(
    r"data:image/(png|jpeg|gif|webp|svg\+xml);base64,([A-Za-z0-9+/=\s]+)", re.IGNORECASE
)
_DATA_SUFFIX = {"png": ".png", "jpeg": ".jpg", "gif": ".gif", "webp": ".webp", "svg+xml": ".svg"}


def _embedded(dest: str) -> LocalFile | None:
    """A `data:` image (dvclive writes them): pull request pages strip these, so mlci
    hosts it like a file; None when `dest` is not one."""
    match = _DATA_IMAGE.fullmatch(dest.strip().strip("<>"))
    if match is None:
        return None
    try:
        data = base64.b64decode("".join(match.group(2).split()), validate=True)
    except ValueError:
        return None
    digest = hashlib.sha256(data).hexdigest()[:16]
    name = f"embedded/{digest}{_DATA_SUFFIX[match.group(1).lower()]}"
    return LocalFile(Path(name), f"an embedded image ({name})", name, True, data)


def check_local_files(
    links: list[Link], *, base: Path, root: Path, source: str
) -> dict[int, LocalFile]:
    """The local file of each link (by index); UsageError naming every bad one."""
    found: dict[int, LocalFile] = {}
    missing: list[str] = []
    outside: list[str] = []
    hidden: list[str] = []
    big: list[str] = []
    root = root.resolve()
    for index, link in enumerate(links):
        embedded = _embedded(link.dest)
        if embedded is not None and len(embedded.read()) <= MAX_FILE_BYTES:
            found[index] = embedded
            continue
        relative = local_path(link.dest)
        if relative is None:
            continue
        try:
            resolved = (base / relative).resolve()
        except (OSError, RuntimeError, ValueError):
            missing.append(relative)
            continue
        if not resolved.is_relative_to(root):
            outside.append(relative)
            continue
        if _hidden(resolved.relative_to(root)):
            hidden.append(relative)
            continue
        if not resolved.is_file():
            missing.append(relative)
            continue
        if resolved.stat().st_size > MAX_FILE_BYTES:
            big.append(relative)
            continue
        image = link.image or resolved.suffix.lower() in IMAGE_SUFFIXES
        name = resolved.relative_to(root).as_posix()
        found[index] = LocalFile(resolved, relative, name, image)
    problems = []
    if outside:
        problems.append(
            f"{source} links files outside the repository ({root}), which mlci never "
            f"publishes: {', '.join(_unique(outside))}; link files inside it"
        )
    if hidden:
        problems.append(
            f"{source} links hidden files ({', '.join(_unique(hidden))}); mlci never publishes "
            "files or folders whose name starts with a dot (.git/config, .env hold "
            "credentials), except under .mlci/"
        )
    if missing:
        problems.append(
            f"{source} links local files that are not there: {', '.join(_unique(missing))} "
            f"(paths are relative to {source}); write them before `mlci comment`, or fix "
            "the links"
        )
    if big:
        problems.append(
            f"{source} links files over {MAX_FILE_BYTES // 1_000_000} MB: "
            f"{', '.join(_unique(big))}; link a smaller file or a URL"
        )
    if problems:
        raise UsageError("; ".join(problems) + ". Nothing was posted.")
    return found


def _hidden(relative: Path) -> bool:
    """A dot-file or a file in a dot-folder other than .mlci/ (its reports and plots)."""
    parts = relative.parts
    if parts and parts[0] == ".mlci" and len(parts) > 1:
        parts = parts[1:]
    return any(part.startswith(".") for part in parts)


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def rewrite(
    text: str,
    links: list[Link],
    files: Mapping[int, LocalFile],
    url_for: Callable[[LocalFile], str | None],
) -> tuple[str, list[LocalFile]]:
    """The Markdown with each local link pointing at its hosted URL; the files left out.

    A file with no URL (the inline store) becomes a visible note in place of its image or
    link, so a reader never sees a broken image.
    """
    edits: list[tuple[int, int, str]] = []
    left_out: list[LocalFile] = []
    for index, link in enumerate(links):
        local = files.get(index)
        if local is None:
            continue
        url = url_for(local)
        if url is not None:
            value = html.escape(url, quote=True) if link.kind == "html" else _md_url(url)
            edits.append((link.dest_start, link.dest_end, value))
            continue
        left_out.append(local)
        edits += replace_link(link, _note(link, local))
    result = edit(text, edits)
    labels = {
        link.text.strip().lower(): files[i]
        for i, link in enumerate(links)
        if link.kind == "definition" and i in files and files[i] in left_out
    }
    if labels:
        result = _unlink_references(result, labels)
    return result, left_out


def _unlink_references(text: str, labels: Mapping[str, LocalFile]) -> str:
    """`![alt][label]` of a file that is not hosted: the note, not a broken image."""
    code = code_ranges(text)

    def replace(match: re.Match[str]) -> str:
        label = (match.group(3) or match.group(2)).strip().lower()
        local = labels.get(label)
        if local is None or inside(match.start(), code):
            return match.group(0)
        kind: Literal["inline"] = "inline"
        link = Link(0, 0, 0, 0, "", bool(match.group(1)), match.group(2), kind)
        return _note(link, local)

    pattern = r"(!?)\[([^\[\]\n]+)\](?:\[([^\[\]\n]*)\])?(?![(:\[])"
    return re.sub(pattern, replace, text)


def _md_url(url: str) -> str:
    return f"<{url}>" if re.search(r"[\s()<>]", url) else url


def _note(link: Link, local: LocalFile) -> str:
    name = md_text(local.shown)
    if link.kind == "definition":
        return f"[{link.text}]: #mlci-not-attached"
    if local.image:
        alt = f" ({md_text(link.text)})" if link.text.strip() else ""
        return f"*🖼️ {name}: not attached{alt}, see the note below*"
    text = link.text if link.kind == "inline" and link.text.strip() else ""
    label = f"{text} " if text else ""
    return f"{label}*({name}: not attached, see the note below)*"


def left_out_note(files: list[LocalFile]) -> str:
    names = ", ".join(md_text(f.shown) for f in {f.path: f for f in files}.values())
    return (
        f"> ℹ️ Not attached: {names}. `publish.images` is `inline`, which hosts no files, "
        "and pull request pages do not show embedded (`data:`) images. To show them, "
        + STORE_OPTIONS
        + "."
    )


# -- the command ----------------------------------------------------------------------


@dataclass
class CommentResult:
    target: str
    key: str
    where: str | None = None  # the comment's URL, or the local file
    files: list[dict[str, str | None]] = field(default_factory=list)
    cut: bool = False
    posted: bool = False
    note: str | None = None

    def as_json(self) -> dict[str, object]:
        return {
            "target": self.target,
            "key": self.key,
            "where": self.where,
            "posted": self.posted,
            "cut": self.cut,
            "files": self.files,
            "note": self.note,
        }


def comment_command(
    *,
    markdown: Path,
    target: str,
    key: str | None,
    mode: str,
    dry_run: bool,
    as_json: bool,
    config: Path | None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    console: Console | None = None,
    http_factory: HttpFactory | None = None,
    settings: PublishConfig | None = None,
) -> int:
    """Post `markdown` as a sticky comment; returns the exit code.

    `settings` overrides the `publish` section of mlci.yaml (tests).
    """
    import os

    env = os.environ if env is None else env
    cwd = cwd or Path.cwd()
    console = console or Console()
    chosen = Target.parse(target)
    key = key or markdown.stem
    if not key.strip():
        raise UsageError("--key: give a name (the comment's sticky key)")
    source = markdown if markdown.is_absolute() else cwd / markdown
    try:
        text = source.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UsageError(f"{markdown}: no such file; write the report first") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"{markdown}: cannot read it as UTF-8 text ({exc})") from None
    text = mask_text(text, secret_values(env))  # a report may quote what the training printed
    settings = settings or _settings(config, cwd)
    root = _root(source.parent)
    links = find_links(text)
    files = check_local_files(links, base=source.parent, root=root, source=str(markdown))
    context = _context(cwd, env)
    out_dir = cwd / ".mlci" / "out" / "comments"
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", key).strip("-.") or "comment"
    saved = out_dir / f"{slug}.md"
    marker_key = f"comment:{key}"
    result = CommentResult(target=str(chosen), key=key)

    if dry_run or context.ci == "local":
        return _local(
            text,
            links,
            files,
            settings,
            context,
            out_dir,
            slug,
            marker_key,
            chosen,
            result,
            dry_run=dry_run,
            as_json=as_json,
            console=console,
        )

    from mlci.forges import open_forge
    from mlci.http import ForgeError

    needed = _needed(chosen, settings)
    choice = open_forge(
        context,
        env,
        needed=needed,
        max_wait_s=settings.max_wait_seconds,
        http_factory=http_factory,
    )
    forge = choice.forge
    if forge is None:
        body, _ = rewrite(text, links, files, lambda f: None)
        _save(saved, marker_key, body)
        line = choice.skip or f"{context.ci}: no forge to post to"
        if choice.no_token:
            raise UsageError(f"{line}. The comment is in {saved}")
        console.warn(f"{line}; the comment is in {saved}")
        _summary(env, marker_key, body)
        result.where, result.note = str(saved), line
        return _finish(result, as_json)
    forge, where = _aim(forge, chosen, context)
    folder = f"comments/{slug}/{(context.head_sha or context.sha or 'nocommit')[:12]}"
    from mlci.assets import open_store

    try:
        store = open_store(settings, env, forge, folder=folder, http_factory=http_factory)
    except ForgeError as exc:  # a store this forge cannot serve, or no credentials: setup
        reason = exc.message.split("; the comment shows")[0]
        raise UsageError(
            f"{reason}; choose a store that works here (docs/forges.md#images). Nothing was posted."
        ) from None

    def upload(local: LocalFile) -> str | None:
        return store.url_for(local.name, local.read(), content_type(local.path))

    body = _publish_files(text, links, files, upload, result, console)
    limit = (forge.max_comment_chars or 1_000_000) - len(sticky_marker(marker_key)) - 1
    body, result.cut = fit(body, limit, f"in the CI job's .mlci/out/comments/{slug}.md")
    _save(saved, marker_key, body)
    result.where = forge.upsert_comment(marker_key, body, MODES[mode])
    result.posted = True
    console.step("comment", f"{where}: {result.where}")
    return _finish(result, as_json)


def _local(
    text: str,
    links: list[Link],
    files: Mapping[int, LocalFile],
    settings: PublishConfig,
    context: CiContext,
    out_dir: Path,
    slug: str,
    marker_key: str,
    chosen: Target,
    result: CommentResult,
    *,
    dry_run: bool,
    as_json: bool,
    console: Console,
) -> int:
    saved = out_dir / f"{slug}.md"
    if dry_run:
        kind = settings.images

        def planned(local: LocalFile) -> str | None:
            return None if kind == "inline" else f"mlci-asset://{kind}/{local.name}"

        body = _publish_files(text, links, files, planned, result, console)
        limit = LIMITS.get(context.ci)
        if limit is not None:
            body, result.cut = fit(body, limit - len(sticky_marker(marker_key)) - 1, "in CI")
        full = f"{sticky_marker(marker_key)}\n{body}"
        if as_json:
            sys.stdout.write(json.dumps({**result.as_json(), "body": full}, indent=2) + "\n")
        else:
            sys.stdout.write(full if full.endswith("\n") else full + "\n")
        console.step("comment", f"dry run: nothing posted ({len(result.files)} local files)")
        return EXIT_OK
    files_dir = out_dir / f"{slug}-files"

    def copy(local: LocalFile) -> str:
        target = files_dir / local.name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(local.read())
        return urllib.parse.quote(f"{slug}-files/{local.name}")

    body = _publish_files(text, links, files, copy, result, console)
    _save(saved, marker_key, body)
    result.where = str(saved)
    result.note = "not in CI: nothing posted"
    console.step(
        "comment",
        f"not in CI, so nothing was posted: the comment is in {saved} (with its files "
        f"next to it), as a pull request would get it (--target {chosen})",
    )
    return _finish(result, as_json)


def _publish_files(
    text: str,
    links: list[Link],
    files: Mapping[int, LocalFile],
    url_for: Callable[[LocalFile], str | None],
    result: CommentResult,
    console: Console,
) -> str:
    urls: dict[Path, str | None] = {}

    def once(local: LocalFile) -> str | None:
        if local.path not in urls:
            name = re.sub(r"[^A-Za-z0-9._/-]+", "-", local.name)
            urls[local.path] = url_for(dataclasses.replace(local, name=name))
            result.files.append({"path": local.name, "url": urls[local.path]})
        return urls[local.path]

    body, left_out = rewrite(text, links, files, once)
    if left_out:
        body = body.rstrip("\n") + "\n\n" + left_out_note(left_out) + "\n"
        names = ", ".join(dict.fromkeys(f.shown for f in left_out))
        console.warn(
            f"not attached (publish.images is inline): {names}; to show them, {STORE_OPTIONS}"
        )
    return body


def content_type(path: Path) -> str:
    """The MIME type a file is uploaded with; text (logs, CSV) as UTF-8 plain text."""
    kind = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if kind.startswith("text/") or path.suffix.lower() in (".log", ".md", ".csv", ".txt"):
        return "text/plain; charset=utf-8"
    return kind


def _save(path: Path, marker_key: str, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{sticky_marker(marker_key)}\n{body}", encoding="utf-8")


def _summary(env: Mapping[str, str], key: str, body: str) -> None:
    name = env.get("GITHUB_STEP_SUMMARY")
    if name:
        from mlci.pipeline.publish import write_job_summary

        with contextlib.suppress(OSError):  # the comment is saved in .mlci/out/ anyway
            write_job_summary(Path(name), key, body)


def _finish(result: CommentResult, as_json: bool) -> int:
    if as_json:
        sys.stdout.write(json.dumps(result.as_json(), indent=2) + "\n")
    elif result.where:
        sys.stdout.write(result.where + "\n")
    return EXIT_OK


def _settings(config: Path | None, cwd: Path) -> PublishConfig:
    found = locate_optional(config, start=cwd)
    if found is None:
        return PublishConfig()  # no mlci.yaml: the defaults (inline images)
    return load_publish_config(found)


def _root(start: Path) -> Path:
    from mlci import git
    from mlci.errors import MlciError

    try:
        return git.repo_root(start)
    except MlciError:
        return start.resolve()


def _context(cwd: Path, env: Mapping[str, str]) -> CiContext:
    from mlci import ci

    try:
        return ci.detect_context(cwd, env)
    except UsageError:  # outside CI and outside git: still a local run
        return CiContext(ci="local", event="local", branch=None, sha=None)


def _needed(target: Target, settings: PublishConfig) -> dict[str, str]:
    needed = {
        "auto": {"pull-requests": "write"},
        "pr": {"pull-requests": "write"},
        "commit": {"contents": "write"},
        "issue": {"issues": "write"},
    }[target.kind]
    if settings.images == "branch":
        needed = {**needed, "contents": "write"}
    return needed


def _aim(forge: Forge, target: Target, context: CiContext) -> tuple[Forge, str]:
    """`forge` aimed at the target's thread, and what that is, for the log."""
    head = context.head_sha or context.sha
    kind, number = target.kind, target.number
    if kind in ("auto", "pr") and number is None:
        number = context.pr_number
        if number is None and head:
            found = forge.find_pull_request(head)
            number = found[0] if found else None
        if number is None and kind == "pr":
            raise UsageError(
                f"--target pr: no open {context.pull_request()} for commit "
                f"{(head or 'unknown')[:12]} on {forge.name}; run on pull_request events, "
                "or use --target pr/N, issue/N or commit"
            )
        if number is None:
            kind = "commit"
    if kind == "commit":
        aimed = forge.aimed_at_commit(head or "")
        if aimed is None:
            raise UsageError(
                f"--target commit: {forge.name} comments are posted to pull requests and issues "
                "only (commit comments there cannot be updated); run in a pull or merge "
                "request pipeline, or use --target issue/N"
            )
        if not head:
            raise UsageError("--target commit: no commit in this CI context")
        return aimed, f"commit {head[:12]}"
    assert number is not None  # issue/N and pr/N carry one; auto and pr found one above
    if kind == "issue":
        return forge.aimed_at_issue(number), f"issue #{number}"
    return forge.aimed_at_pull_request(number), context.pull_request(number)
