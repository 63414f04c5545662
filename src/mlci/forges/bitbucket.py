"""Bitbucket Cloud: comments (pull request, commit, issue) and build statuses.

Pipelines give no API token: a repository access token goes in a secured repository
variable, BITBUCKET_TOKEN, and is sent as `Bearer`. An Atlassian API token works only over
HTTP Basic with its owner's email: BITBUCKET_USERNAME set means BITBUCKET_TOKEN is one.
App passwords stopped working in 2026. Pull requests, commits and issues have the same
comment API (`.../comments`, body `{"content": {"raw": ...}}`, pages linked by `next`), so
one sticky comment serves all three; `mlci comment --target` chooses which.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import urllib.parse
from collections.abc import Iterator
from typing import Any

from mlci.errors import UsageError
from mlci.forges.base import ForgeChoice, NoLookups, Opening, status_state
from mlci.forges.remote import Comment, RemoteForge, shorten
from mlci.http import ForgeError, HttpClient, Response

# Bitbucket does not document a comment size limit; stay well under what it accepts.
BITBUCKET_COMMENT_LIMIT = 32_000
# Its API description gives a build status's key no length; mlci keeps to 40 characters.
STATUS_KEY_LIMIT = 40

TOKEN_FIX = (
    "create a repository access token with the scopes Pull requests: Write and "
    "Repositories: Read (Repository settings > Security > Access tokens) and add it as a "
    "secured repository variable named BITBUCKET_TOKEN (an Atlassian API token works "
    "too, with its owner's email in BITBUCKET_USERNAME; app passwords no longer work)"
)

ISSUE_TOKEN_FIX = (
    "an access token cannot have the Issues scopes that issue comments take. Use an "
    "Atlassian API token with the scopes write:issue:bitbucket and read:issue:bitbucket "
    "(Atlassian account > Security > API tokens) in BITBUCKET_TOKEN, with its owner's "
    "email in BITBUCKET_USERNAME, or comment on the pull request (--target pr) or the "
    "commit (--target commit)"
)


def open_forge(opening: Opening) -> ForgeChoice:
    """Bitbucket Cloud, authenticated with BITBUCKET_TOKEN; none for a fork's pull request."""
    context = opening.context
    found = opening.token()
    if found is None:
        return ForgeChoice(
            None,
            skip=f"no comment or status on Bitbucket: no BITBUCKET_TOKEN; {TOKEN_FIX}",
            no_token=True,
        )
    api_url = context.api_url or "https://api.bitbucket.org/2.0"
    username = opening.env.get("BITBUCKET_USERNAME")
    http = opening.connect(api_url, {"Authorization": authorization(found[1], username)}, found[1])
    forge = BitbucketForge(
        http,
        repository=context.repository or "",
        pr_id=context.pr_number,
        api_token=bool(username),
    )
    # Pipelines say nothing of forks: the pull request itself names its source.
    fork_of = forge.fork_of() if context.pr_number is not None else None
    if fork_of is not None:
        return ForgeChoice.fork(
            context.pr_number,
            f" ({fork_of}) and its code ran in this build, so BITBUCKET_TOKEN is not used",
            ".mlci/out/, which the step's `artifacts:` keeps",
            "says more",
        )
    return ForgeChoice(forge)


def authorization(token: str, username: str | None) -> str:
    """The Authorization header: Basic `username:token` for an API token (its owner's
    email as the username), Bearer for an access token."""
    if not username:
        return f"Bearer {token}"
    return "Basic " + base64.b64encode(f"{username}:{token}".encode()).decode("ascii")


def status_key(context: str) -> str:
    """The build status's key for `context` (`mlci/<model>`), the same on every run.

    Bitbucket overwrites a status whose key it already has, so two models never share
    one: the readable context where it fits, else `mlci-` and a hash of the whole context.
    """
    readable = (
        len(context) <= STATUS_KEY_LIMIT
        and not context.startswith("mlci-")
        and context.isprintable()
        and not any(c.isspace() for c in context)
    )
    if readable:
        return context
    return "mlci-" + hashlib.sha256(context.encode("utf-8")).hexdigest()[:32]


# Scope names as the token settings label them: `repository:write` (access tokens) and
# `write:repository:bitbucket` (API tokens) are both "Repositories: Write".
_RESOURCES = {
    "repository": "Repositories",
    "pullrequest": "Pull requests",
    "issue": "Issues",
    "pipeline": "Pipelines",
    "account": "Account",
    "user": "User data",
}


def scope_label(scope: str) -> str:
    """`repository:write` or `write:repository:bitbucket` as "Repositories: Write"."""
    parts = scope.split(":")
    if len(parts) == 3 and parts[2] == "bitbucket":
        level, resource = parts[0], parts[1]
    else:
        resource, level = parts[0], parts[1] if len(parts) > 1 else "read"
    return f"{_RESOURCES.get(resource, resource)}: {level.capitalize()}"


class BitbucketForge(NoLookups, RemoteForge):
    """One sticky comment (pull request, issue or commit) and build statuses. No check
    runs, and a pull request pipeline names its pull request: nothing to look up."""

    name = "Bitbucket"

    def __init__(
        self, http: HttpClient, *, repository: str, pr_id: int | None, api_token: bool = False
    ) -> None:
        super().__init__(http)
        self.api_token = api_token  # an API token over Basic; else an access token (Bearer)
        self.repository = repository
        self.pr_id = pr_id
        self.max_comment_chars = BITBUCKET_COMMENT_LIMIT
        self.status_context = "mlci"
        # Aimed at a commit (`mlci comment --target commit`) or at an issue (`--target
        # issue/N`: "issues", and pr_id N): the sticky comment goes there instead.
        self.commit_sha: str | None = None
        self.noteable = "pullrequests"
        # Who mlci's comments are by, without GET /user (it takes the `account` scope,
        # which access tokens cannot have): the authors of what mlci posted, and the app
        # users (what an access token posts as, which no person is) seen among comments.
        self._posted_as: set[str] = set()
        self._app_users: set[str] = set()
        http.forge_name = self.name

    @property
    def _repo_path(self) -> str:
        return "/repositories/" + "/".join(
            urllib.parse.quote(p, safe="") for p in self.repository.split("/")
        )

    @property
    def _thread(self) -> tuple[str, str]:
        """The comments' API path, and what they are on (for messages)."""
        if self.commit_sha:
            where = f"commit {self.commit_sha[:12]}"
            return f"{self._repo_path}/commit/{self.commit_sha}/comments", where
        if self.noteable == "issues":
            return f"{self._repo_path}/issues/{self.pr_id}/comments", f"issue #{self.pr_id}"
        path = f"{self._repo_path}/pullrequests/{self.pr_id}/comments"
        return path, f"pull request #{self.pr_id}"

    def aimed_at_pull_request(self, number: int) -> BitbucketForge:
        return self._aimed("pullrequests", number)

    def aimed_at_issue(self, number: int) -> BitbucketForge:
        if not self.api_token:
            raise UsageError(
                f"--target issue/{number}: BITBUCKET_TOKEN is sent as an access token "
                f"(no BITBUCKET_USERNAME), and {ISSUE_TOKEN_FIX}. Nothing was posted."
            )
        return self._aimed("issues", number)

    def aimed_at_commit(self, sha: str) -> BitbucketForge:
        aimed = copy.copy(self)
        aimed.commit_sha = sha
        return aimed

    def _aimed(self, noteable: str, number: int) -> BitbucketForge:
        aimed = copy.copy(self)
        aimed.noteable, aimed.pr_id, aimed.commit_sha = noteable, number, None
        return aimed

    def _comments(self) -> Iterator[Comment]:
        path, where = self._thread
        url: str | None = f"{path}?pagelen=100"
        while url is not None:
            response = self.http.request("GET", url)
            if response.status >= 300:
                self.fail(response, f"read the comments of {where}")
            data = _dict(response.json())
            if not isinstance(data.get("values"), list):  # a page is {"values": [...], ...}
                raise self.not_a_list(response, url, f"read the comments of {where}")
            for item in data["values"]:
                if isinstance(item, dict) and not item.get("deleted"):
                    comment = _comment(item)
                    if _dict(item.get("user")).get("type") == "app_user" and comment.author:
                        self._app_users.add(comment.author)
                    yield comment
            url = data.get("next") if isinstance(data.get("next"), str) else None

    def _create(self, body: str) -> Comment:
        path, where = self._thread
        response = self.http.request("POST", path, body={"content": {"raw": body}})
        if response.status != 201:
            self.fail(response, f"comment on {where}")
        return self._posted(_comment(response.json()))

    def _edit(self, comment: Comment, body: str) -> Comment:
        path, where = self._thread
        response = self.http.request("PUT", f"{path}/{comment.id}", body={"content": {"raw": body}})
        if response.status >= 300:
            self.fail(response, f"update comment {comment.id} on {where}")
        return self._posted(_comment(response.json()))

    def _posted(self, comment: Comment) -> Comment:
        if comment.author:
            self._posted_as.add(comment.author)
        return comment

    def _my_names(self) -> frozenset[str]:
        """Empty: the marker finds the candidates, and `find_sticky` keeps mlci's own."""
        return frozenset()

    def find_sticky(self, key: str) -> list[Comment]:
        """mlci's comments for `key`: by the account mlci posted as in this run; else by
        an app user (an access token); else, for an API token (its owner is a person),
        by the marker alone, and Bitbucket refuses to edit anyone else's comment."""
        found = super().find_sticky(key)
        if self._posted_as:
            return [c for c in found if c.author in self._posted_as]
        if self.api_token:
            return found
        return [c for c in found if c.author in self._app_users]

    def fork_of(self) -> str | None:
        """The fork this pull request comes from (its source repository); None: not a fork.

        A source repository the API no longer names (a deleted fork) is still a fork.
        """
        data = _dict(
            self._get_json(
                f"{self._repo_path}/pullrequests/{self.pr_id}", f"read pull request #{self.pr_id}"
            )
        )
        source = _dict(_dict(data.get("source")).get("repository")).get("full_name")
        target = _dict(_dict(data.get("destination")).get("repository")).get("full_name")
        if target is None or source == target:
            return None
        return str(source or "a deleted fork")

    def set_status(
        self, sha: str | None, verdict: str, summary: str, url: str | None = None
    ) -> str:
        if sha is None:
            return "no commit to set a status on"
        state = "SUCCESSFUL" if status_state(verdict) == "success" else "FAILED"
        key = status_key(self.status_context)
        payload = {
            "key": key,
            "state": state,
            "name": self.status_context,
            "description": shorten(summary, 140),
            "url": url or f"https://bitbucket.org/{self.repository}",
        }
        path = f"{self._repo_path}/commit/{sha}/statuses/build"
        response = self.http.request("POST", path, body=payload, idempotent=True)
        if response.status >= 300:
            self.fail(response, f"set the build status on {sha[:12]}")
        return f"build status {self.status_context} {state} on {sha[:12]} (key {key})"

    def check_access(self) -> list[tuple[bool, str]]:
        response = self.http.request("GET", self._repo_path)
        if response.status >= 300:
            try:
                self.fail(response, f"read the repository {self.repository}")
            except ForgeError as exc:
                return [(False, exc.message)]
        return [(True, f"Bitbucket: BITBUCKET_TOKEN can read {self.repository}")]

    def fail(self, response: Response, action: str, needs: str | None = None) -> None:
        """Raise the ForgeError for an error answer; `needs`: the permission the call
        takes, named when Bitbucket's 403 does not say which scope was missing."""
        status, text = response.status, self.http.redact(response.message)
        required = ", ".join(scope_label(s) for s in _required_scopes(response)) or needs
        if status == 403 and required:
            raise ForgeError(
                f"Bitbucket refused to {action} (403 {text}): the token in BITBUCKET_TOKEN "
                f"lacks the permission {required}. Create an access token that has it "
                "(Repository settings > Security > Access tokens; a token's scopes cannot "
                "be changed later) and put it in the secured repository variable "
                "BITBUCKET_TOKEN",
                status=status,
            )
        if status in (401, 403):
            raise ForgeError(
                f"Bitbucket refused to {action} ({status} {text}): {TOKEN_FIX}", status=status
            )
        if status == 404 and "issue tracker" in text.lower():
            raise ForgeError(
                f"Bitbucket answered 404 to {action} ({text}): the repository "
                f"{self.repository} has no issue tracker. Turn it on (Repository settings > "
                "Issue tracker), or comment on the pull request (--target pr) or the commit "
                "(--target commit) instead",
                status=status,
            )
        if status == 404:
            raise ForgeError(
                f"Bitbucket answered 404 to {action} ({text}): the repository "
                f"{self.repository} or {self._thread[1]} is not visible to the token in "
                f"BITBUCKET_TOKEN; it must be an access token of this repository",
                status=status,
            )
        raise ForgeError(f"Bitbucket answered {status} to {action}: {text}", status=status)


def _required_scopes(response: Response) -> list[str]:
    """The scopes a 403 says the call needs (`error.detail.required`)."""
    detail = _dict(_dict(_dict(response.json()).get("error")).get("detail"))
    required = detail.get("required")
    return [str(s) for s in required] if isinstance(required, list) else []


def _comment(item: object) -> Comment:
    data = _dict(item)
    html = _dict(_dict(data.get("links")).get("html"))
    account = _dict(data.get("user")).get("account_id")
    return Comment(
        id=str(data.get("id")),
        body=str(_dict(data.get("content")).get("raw") or ""),
        author=str(account) if account else None,
        url=str(html.get("href") or f"comment {data.get('id')}"),
    )


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
