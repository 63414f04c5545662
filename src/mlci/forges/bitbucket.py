"""Bitbucket Cloud: pull request comments and build statuses (Bitbucket Pipelines).

Pipelines give no API token: a repository access token (or an API token) goes in a
secured repository variable, BITBUCKET_TOKEN. App passwords stopped working in 2026.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator

from mlci.forges.base import status_state
from mlci.forges.http import ForgeError, HttpClient, Response
from mlci.forges.remote import Comment, RemoteForge, shorten

# Bitbucket does not document a comment size limit; stay well under what it accepts.
BITBUCKET_COMMENT_LIMIT = 32_000

TOKEN_FIX = (
    "create a repository access token with the scopes Pull requests: Write and "
    "Repositories: Read (Repository settings > Security > Access tokens) and add it as a "
    "secured repository variable named BITBUCKET_TOKEN (app passwords no longer work)"
)


class BitbucketForge(RemoteForge):
    name = "Bitbucket"

    def __init__(self, http: HttpClient, *, repository: str, pr_id: int | None) -> None:
        super().__init__(http)
        self.repository = repository
        self.pr_id = pr_id
        self.max_comment_chars = BITBUCKET_COMMENT_LIMIT
        self.status_context = "mlci"
        http.forge_name = self.name

    @property
    def _repo_path(self) -> str:
        return "/repositories/" + "/".join(
            urllib.parse.quote(p, safe="") for p in self.repository.split("/")
        )

    @property
    def _comments_path(self) -> str:
        return f"{self._repo_path}/pullrequests/{self.pr_id}/comments"

    def _comments(self) -> Iterator[Comment]:
        url: str | None = f"{self._comments_path}?pagelen=100"
        while url is not None:
            response = self.http.request("GET", url)
            if response.status >= 300:
                self.fail(response, f"read the comments of pull request #{self.pr_id}")
            data = response.json() if isinstance(response.json(), dict) else {}
            for item in data.get("values") or []:
                if isinstance(item, dict) and not item.get("deleted"):
                    yield _comment(item)
            url = data.get("next") if isinstance(data.get("next"), str) else None

    def _create(self, body: str) -> Comment:
        response = self.http.request("POST", self._comments_path, body={"content": {"raw": body}})
        if response.status != 201:
            self.fail(response, f"comment on pull request #{self.pr_id}")
        return _comment(response.json())

    def _edit(self, comment: Comment, body: str) -> Comment:
        path = f"{self._comments_path}/{comment.id}"
        response = self.http.request("PUT", path, body={"content": {"raw": body}})
        if response.status >= 300:
            self.fail(response, f"update comment {comment.id} on pull request #{self.pr_id}")
        return _comment(response.json())

    def _my_names(self) -> frozenset[str]:
        response = self.http.request("GET", "/user")
        data = response.json()
        if response.status == 200 and isinstance(data, dict) and data.get("account_id"):
            return frozenset({str(data["account_id"])})
        # Access tokens act as a bot the API does not name: match on the marker alone.
        return frozenset()

    def set_status(
        self, sha: str | None, verdict: str, summary: str, url: str | None = None
    ) -> str:
        if sha is None:
            return "no commit to set a status on"
        state = "SUCCESSFUL" if status_state(verdict) == "success" else "FAILED"
        payload = {
            "key": shorten(self.status_context.replace(" ", ""), 40),
            "state": state,
            "name": self.status_context,
            "description": shorten(summary, 140),
            "url": url or f"https://bitbucket.org/{self.repository}",
        }
        path = f"{self._repo_path}/commit/{sha}/statuses/build"
        response = self.http.request("POST", path, body=payload, idempotent=True)
        if response.status >= 300:
            self.fail(response, f"set the build status on {sha[:12]}")
        return f"status {state} on {sha[:12]}"

    def check_access(self) -> list[tuple[bool, str]]:
        response = self.http.request("GET", self._repo_path)
        if response.status >= 300:
            try:
                self.fail(response, f"read the repository {self.repository}")
            except ForgeError as exc:
                return [(False, exc.message)]
        return [(True, f"Bitbucket: BITBUCKET_TOKEN can read {self.repository}")]

    def fail(self, response: Response, action: str) -> None:
        status, text = response.status, self.http.redact(response.message)
        if status in (401, 403):
            raise ForgeError(
                f"Bitbucket refused to {action} ({status} {text}): {TOKEN_FIX}", status=status
            )
        if status == 404:
            raise ForgeError(
                f"Bitbucket answered 404 to {action} ({text}): the repository "
                f"{self.repository} or pull request #{self.pr_id} is not visible to the token "
                f"in BITBUCKET_TOKEN; it must be an access token of this repository",
                status=status,
            )
        raise ForgeError(f"Bitbucket answered {status} to {action}: {text}", status=status)


def _comment(item: dict[str, object]) -> Comment:
    content = item.get("content") if isinstance(item.get("content"), dict) else {}
    user = item.get("user") if isinstance(item.get("user"), dict) else {}
    links = item.get("links") if isinstance(item.get("links"), dict) else {}
    html = (
        links.get("html") if isinstance(links, dict) and isinstance(links.get("html"), dict) else {}
    )
    return Comment(
        id=str(item.get("id")),
        body=str(content.get("raw") or "") if isinstance(content, dict) else "",
        author=str(user.get("account_id"))
        if isinstance(user, dict) and user.get("account_id")
        else None,
        url=str(html.get("href") or f"comment {item.get('id')}") if isinstance(html, dict) else "",
    )
