"""The forge seam: what mlci needs from GitHub, GitLab, ... or the local files.

`Forge` is every operation a caller uses; a forge that cannot do one says so in its
answer (None, or a line for the log), so no caller probes a forge for what it has.
`ForgeChoice` is what a forge module's `open_forge` answers: the forge, or why there is
none.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from mlci.ci import CiContext
    from mlci.http import HttpClient

CommentMode = Literal["update", "new", "hide", "off"]

HttpFactory = Callable[..., "HttpClient"]

# The variables each forge's token is read from, in order of preference.
TOKEN_VARIABLES: dict[str, tuple[str, ...]] = {
    "github": ("GITHUB_TOKEN", "GH_TOKEN"),
    "gitea": ("GITEA_TOKEN", "FORGEJO_TOKEN", "GITHUB_TOKEN"),
    "gitlab": ("GITLAB_TOKEN",),  # not CI_JOB_TOKEN: it may call none of mlci's endpoints
    "bitbucket": ("BITBUCKET_TOKEN",),
}


def sticky_marker(key: str) -> str:
    """The hidden first line that identifies mlci's comment for `key` (the model)."""
    return f"<!-- mlci:report key={marker_key(key)} -->"


def marker_key(key: str) -> str:
    """`key` (the model's name) as it may stand in a one-line HTML comment: the name is
    checked in mlci.yaml, but `mlci publish` reads it from an artifact the PR built."""
    return re.sub(r"-(?=-)", "- ", re.sub(r"[\x00-\x1f\x7f>]", "", key))


def status_context(model: str) -> str:
    """The commit status's (and check run's) name for `model`: what a branch-protection
    rule requires, the same in status.json, the log and the docs."""
    return f"mlci/{model}"


def status_state(verdict: str) -> str:
    """A report status (pass, warn, fail, error) as a GitHub-style commit status state."""
    return {"pass": "success", "warn": "success", "fail": "failure"}.get(verdict, "error")


class Forge(Protocol):
    """Where a report is published: GitHub (and GHES), Gitea, GitLab, Bitbucket, files.

    A forge is aimed at one thread (a pull request, an issue or a commit) for its
    comments; `aimed_at_*` answer a copy aimed elsewhere and leave this one as it is.
    """

    name: str
    """Shown in messages: "GitHub", "GitLab", "local files"."""

    max_comment_chars: int | None
    """The longest comment the forge accepts; None: no limit."""

    status_context: str
    """The name of the commit status and check run; the publisher sets
    `status_context(model)`, i.e. `mlci/<model>`."""

    def upsert_comment(self, key: str, body: str, mode: CommentMode = "update") -> str:
        """Create or update the one comment for `key`; returns where it went."""
        ...

    def set_status(
        self, sha: str | None, verdict: str, summary: str, url: str | None = None
    ) -> str:
        """Record the verdict on the commit; returns where it went."""
        ...

    def create_check_run(
        self, sha: str, verdict: str, title: str, summary: str, url: str | None
    ) -> str | None:
        """A completed check run on `sha`; returns where it went (or a line saying why
        not). None: this forge has no check runs, and nothing to say about it."""
        ...

    def find_pull_request(self, sha: str) -> tuple[int, str] | None:
        """The open pull request whose head is `sha` (a push build): number and head sha.

        None: there is none, or this forge does not look pull requests up by commit.
        """
        ...

    def pull_request_head(self, number: int) -> str | None:
        """The head commit of pull request `number`, read from the forge.

        None: this forge does not look pull requests up by number.
        """
        ...

    def check_access(self) -> list[tuple[bool, str]]:
        """Whether the token may publish here, from one read: (ok, message) lines."""
        ...

    def aimed_at_pull_request(self, number: int) -> Forge:
        """This forge, with its comments on pull (or merge) request `number`."""
        ...

    def aimed_at_issue(self, number: int) -> Forge:
        """This forge, with its comments on issue `number`."""
        ...

    def aimed_at_commit(self, sha: str) -> Forge | None:
        """This forge, with its comments on commit `sha`.

        None: this forge cannot keep one updated comment on a commit.
        """
        ...


@dataclass(frozen=True)
class ForgeChoice:
    """The forge to publish to, or why there is none (`skip` is one line for the log)."""

    forge: Forge | None
    skip: str | None = None
    read_only: bool = False  # a fork's pull request: the token cannot write
    no_token: bool = False  # no token (or repository) in the environment: summary and files only

    @classmethod
    def fork(cls, number: int | None, why: str, where: str, docs: str) -> ForgeChoice:
        """No forge for a pull request from a fork: one line that says so, and where the
        report is."""
        return cls(
            None,
            skip=(
                f"pull request #{number} comes from a fork{why}: no comment or status (the "
                f"report is in {where}; docs/forges.md#pull-requests-from-forks {docs})"
            ),
            read_only=True,
        )


@dataclass(frozen=True)
class Opening:
    """What a forge module's `open_forge` is given: where the build runs, and how to reach
    the forge's API."""

    context: CiContext
    env: Mapping[str, str]
    make: HttpFactory
    max_wait_s: float
    needed: dict[str, str] | None = None  # GitHub: the permissions its 403 messages ask for

    def token(self) -> tuple[str, str] | None:
        """The first of the CI's token variables set (`TOKEN_VARIABLES`): name and value."""
        for name in TOKEN_VARIABLES[self.context.ci]:
            if self.env.get(name):
                return name, self.env[name]
        return None

    def connect(self, base_url: str, headers: dict[str, str], secret: str) -> HttpClient:
        """The client for the forge's API; `secret` (the token) is never shown in a message."""
        return self.make(
            base_url=base_url, headers=headers, secrets=(secret,), max_wait_s=self.max_wait_s
        )


Opener = Callable[[Opening], ForgeChoice]


class NoLookups:
    """The answers of a forge that looks no pull request up and has no check runs."""

    def create_check_run(
        self, sha: str, verdict: str, title: str, summary: str, url: str | None
    ) -> None:
        """None: no check runs here; the commit status says the verdict."""
        return None

    def find_pull_request(self, sha: str) -> None:
        """None: the build names its pull request itself, or there is none to find."""
        return None

    def pull_request_head(self, number: int) -> None:
        """None: pull requests are not looked up by number (no two-workflow pattern here)."""
        return None
