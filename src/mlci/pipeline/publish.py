"""The publish stage: job summary, sticky comment, commit status (and check run).

`mlci publish` (mlci.commands.publish) runs the same Publisher on a report written earlier.

The report files are already in `.mlci/out/` when this runs. Each part is tried on its
own, so a refused comment still leaves the status and the job summary; every failure
becomes one line naming the fix, and `publish.json` records what went where. Pull
requests from forks skip the comment with one line instead of failing on a read-only
token.

The report is masked again here (`mlci.core.redact.mask`, the job's secrets): `mlci
publish` posts a report.json that another job wrote.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from mlci import ci
from mlci.ci import CiContext
from mlci.config import Config, PublishConfig
from mlci.console import Console
from mlci.core.links import utf16_len
from mlci.core.redact import mask
from mlci.core.report.document import png_names, section_png_name
from mlci.core.report.escape import md_text
from mlci.core.report.markdown import render_markdown
from mlci.core.report.model import ReportInput, headline
from mlci.errors import ExternalError, MlciError
from mlci.forges import open_forge
from mlci.forges.base import (
    CommentMode,
    Forge,
    ForgeChoice,
    HttpFactory,
    marker_key,
    status_context,
    sticky_marker,
)
from mlci.forges.local import LocalForge
from mlci.secrets import secret_values

if TYPE_CHECKING:
    from mlci.assets.base import AssetStore

STEP_SUMMARY_LIMIT = 1_048_576  # bytes per step (forge.md §1.4)


@dataclass
class PublishResult:
    published: dict[str, str] = field(default_factory=dict)  # "comment" -> URL, ...
    skipped: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.errors)


def fit_markdown(report: ReportInput, limit: int, measure: Callable[[str], int] = len) -> str:
    """The report's Markdown, folded and cut until `measure` of it is within `limit`."""
    budget = limit
    text = render_markdown(report, max_chars=budget)
    while measure(text) > limit and budget > 1000:
        budget = int(budget * limit / measure(text) * 0.95)
        text = render_markdown(report, max_chars=budget)
    return text


def write_job_summary(path: Path, key: str, markdown: str) -> None:
    """Replace this model's section of the step summary file (others' text is kept)."""
    start = f"<!-- mlci:summary key={marker_key(key)} -->"
    end = f"<!-- /mlci:summary key={marker_key(key)} -->"
    try:
        existing = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        existing = ""
    section = f"{start}\n{markdown.rstrip()}\n{end}\n"
    if start in existing and end in existing:
        before, rest = existing.split(start, 1)
        after = rest.split(end, 1)[1].lstrip("\n")
        existing = before + section + after
    else:
        existing = existing + ("\n" if existing and not existing.endswith("\n") else "") + section
    path.write_text(existing, encoding="utf-8")


def open_publisher(
    config: Config | None,
    context: CiContext | None,
    root: Path,
    env: Mapping[str, str],
    console: Console,
) -> Publisher:
    """The run's publisher, reused when it publishes again after promoting.

    When mlci.yaml did not load there is no model to key a comment or a status by, but
    the CI's job summary still shows the error, next to the run that hit it.
    """
    if config is not None:
        return Publisher(context=context, settings=config.publish, env=env, console=console)
    if context is None:
        with contextlib.suppress(MlciError):
            context = ci.detect_context(root, env)
    settings = PublishConfig(comment="off", status=False)
    return Publisher(context=context, settings=settings, env=env, console=console)


class Publisher:
    """Publishes one run's report; reused when the run publishes again after promoting."""

    def __init__(
        self,
        *,
        context: CiContext | None,
        settings: PublishConfig,
        env: Mapping[str, str],
        console: Console,
        http_factory: HttpFactory | None = None,
    ) -> None:
        self.context = context
        self.settings = settings
        self.env = env
        self.console = console
        self.http_factory = http_factory
        self._choice: ForgeChoice | None = None
        self._open_error: str | None = None
        self._pr: tuple[int, str] | bool | None = False  # False: not looked up yet
        self._commented = False
        self._uploaded: dict[str, str] = {}  # sha256 of a PNG -> its URL, once per run
        self._secrets = secret_values(env)

    def publish(self, report: ReportInput, out_dir: Path) -> PublishResult:
        result = PublishResult()
        report = mask(report, self._secrets)
        local = LocalForge(out_dir)
        local.status_context = status_context(report.model)
        body = render_markdown(report)
        result.published["local"] = local.upsert_comment(report.model, body)
        local.set_status(report.commit, report.status, headline(report), report.run_url)
        context = self.context
        if context is None or context.ci == "local":
            self._record(result, out_dir)
            return result
        self._summary(report, result)
        choice = self._open()
        if choice is None:
            assert self._open_error is not None
            result.errors.append(self._open_error)
        elif choice.forge is None:
            if choice.skip:
                result.skipped.append(choice.skip)
        else:
            self._to_forge(choice, report, result)
        for line in result.skipped:
            if choice is not None and choice.no_token:
                self.console.warn(line)
            else:
                self.console.step("publish", line)
        for name, where in result.published.items():
            if name != "local":
                self.console.step("publish", f"{name}: {where}")
        for line in result.errors:
            self.console.error(line)
        self._record(result, out_dir)
        return result

    def _open(self) -> ForgeChoice | None:
        if self._choice is None and self._open_error is None:
            assert self.context is not None
            try:
                self._choice = open_forge(
                    self.context,
                    self.env,
                    needed=self._needed(),
                    max_wait_s=self.settings.max_wait_seconds,
                    http_factory=self.http_factory,
                )
            except ExternalError as exc:
                self._open_error = exc.message
        return self._choice

    def _needed(self) -> dict[str, str]:
        needed = {"pull-requests": "write"} if self.settings.comment != "off" else {}
        if self.settings.status:
            needed["statuses"] = "write"
        if self.settings.check_run:
            needed["checks"] = "write"
        if self.settings.images == "branch":
            needed["contents"] = "write"
        return needed

    def _summary(self, report: ReportInput, result: PublishResult) -> None:
        name = self.env.get("GITHUB_STEP_SUMMARY")
        if not name or not self.settings.summary:
            return
        path = Path(name)
        try:
            others = path.read_bytes() if path.exists() else b""
        except OSError:
            others = b""
        room = max(STEP_SUMMARY_LIMIT - len(others) - 2000, 20_000)
        text = fit_markdown(report, room, lambda t: len(t.encode("utf-8")))
        try:
            write_job_summary(path, report.model, text)
        except OSError as exc:
            result.errors.append(f"cannot write the job summary to {name}: {exc.strerror}")
            return
        result.published["summary"] = name

    def _to_forge(self, choice: ForgeChoice, report: ReportInput, result: PublishResult) -> None:
        from mlci.http import Unreachable

        try:
            self._to_forge_parts(choice, report, result)
        except Unreachable as exc:  # the other parts would only wait and fail the same way
            result.errors.append(exc.message)

    def _to_forge_parts(
        self, choice: ForgeChoice, report: ReportInput, result: PublishResult
    ) -> None:
        from mlci.http import ForgeError, Unreachable

        forge = choice.forge
        assert forge is not None and self.context is not None
        forge.status_context = status_context(report.model)
        try:
            pr = self._pull_request(forge)
        except Unreachable:
            raise
        except ForgeError as exc:
            result.errors.append(exc.message)
            pr = None
        if pr is not None:
            forge = forge.aimed_at_pull_request(pr[0])
        head = pr[1] if pr else (self.context.head_sha or report.commit)
        mode: CommentMode = self.settings.comment
        if mode != "off" and pr is not None:
            if self._commented and mode == "hide":
                mode = "update"  # the second publish of one run refreshes its own comment
            limit = (forge.max_comment_chars or 1_000_000) - len(sticky_marker(report.model)) - 1
            try:
                shown = self._with_images(forge, report, head)
            except Unreachable:
                raise
            except ForgeError as exc:
                result.errors.append(exc.message)
                shown = report
            body = fit_markdown(shown, limit, utf16_len)
            try:
                result.published["comment"] = forge.upsert_comment(report.model, body, mode)
                self._commented = True
            except Unreachable:
                raise
            except ForgeError as exc:
                result.errors.append(exc.message)
        elif mode != "off":
            result.skipped.append(
                f"no open {self.context.pull_request()} for this commit: no comment"
            )
        if self.settings.status and head:
            summary = headline(report)
            try:
                result.published["status"] = forge.set_status(
                    head, report.status, summary, self.context.run_url or report.run_url
                )
                self.console.step("publish", f"required status check: {forge.status_context}")
            except Unreachable:
                raise
            except ForgeError as exc:
                result.errors.append(exc.message)
        if self.settings.check_run and head:
            try:
                check_run = forge.create_check_run(
                    head,
                    report.status,
                    headline(report),
                    render_markdown(report, max_chars=60_000),
                    self.context.run_url or report.run_url,
                )
                if check_run is not None:
                    result.published["check_run"] = check_run
            except Unreachable:
                raise
            except ForgeError as exc:
                result.errors.append(exc.message)

    def _with_images(self, forge: Forge, report: ReportInput, head: str | None) -> ReportInput:
        """The report with each figure's PNGs uploaded to the asset store and linked."""
        has_images = any(f.pngs for f in report.figures) or any(
            s.png is not None for s in report.sections
        )
        if self.settings.images == "inline" or not has_images:
            return report
        store = self._store(forge, report, head)
        figures = []
        for figure in report.figures:
            links = []
            for name, png in zip(png_names(figure), figure.pngs, strict=True):
                digest = hashlib.sha256(png).hexdigest()
                if digest not in self._uploaded:
                    url = store.url_for(name, png)
                    if url is None:
                        continue
                    self._uploaded[digest] = url
                alt = md_text(figure.title)
                links.append(f"![{alt}]({self._uploaded[digest]})")
            markdown = "\n\n".join([*links, figure.markdown]) if links else figure.markdown
            figures.append(dataclasses.replace(figure, markdown=markdown))
        sections = []
        for index, section in enumerate(report.sections):
            if section.png is not None:
                digest = hashlib.sha256(section.png).hexdigest()
                if digest not in self._uploaded:
                    url = store.url_for(section_png_name(index), section.png)
                    if url is not None:
                        self._uploaded[digest] = url
                section = dataclasses.replace(section, image_url=self._uploaded.get(digest))
            sections.append(section)
        return dataclasses.replace(report, figures=tuple(figures), sections=tuple(sections))

    def _store(self, forge: Forge, report: ReportInput, head: str | None) -> AssetStore:
        from mlci.assets import open_store

        folder = re.sub(r"[^A-Za-z0-9._-]+", "-", report.model).strip("-.") or "model"
        folder = f"{folder}/{(head or 'nocommit')[:12]}"
        return open_store(
            self.settings, self.env, forge, folder=folder, http_factory=self.http_factory
        )

    def _pull_request(self, forge: Forge) -> tuple[int, str] | None:
        """The pull request to comment on and its head sha; looked up once per run."""
        if self._pr is not False:
            return self._pr  # type: ignore[return-value]
        context = self.context
        assert context is not None
        found: tuple[int, str] | None = None
        if context.pr_number is not None:
            found = (context.pr_number, context.head_sha or context.sha or "")
        elif context.event == "push" and context.sha:
            found = forge.find_pull_request(context.sha)
        self._pr = found
        return found

    def _record(self, result: PublishResult, out_dir: Path) -> None:
        context = self.context
        record = {
            # The pull request this report is for: a later `mlci publish` in a
            # workflow_run job (fork pull requests) reads it back and verifies it.
            "pull_request": context.pr_number if context else None,
            "head_sha": context.head_sha if context else None,
            "published": result.published,
            "skipped": result.skipped,
            "errors": result.errors,
        }
        text = json.dumps(mask(record, self._secrets), indent=2)
        (out_dir / "publish.json").write_text(text + "\n", encoding="utf-8")
