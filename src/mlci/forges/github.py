"""GitHub, GitHub Enterprise Server, and Gitea/Forgejo (whose comment API has GitHub's paths).

The API base comes from `GITHUB_API_URL` (`https://HOST/api/v3` on GHES, `.../api/v1` on
Gitea and Forgejo), so one adapter serves all of them; tests point it at a stand-in.
"""

from __future__ import annotations

import copy
import urllib.parse
from collections.abc import Iterator
from typing import Any

from mlci.forges.base import TOKEN_VARIABLES, ForgeChoice, Opening, status_state
from mlci.forges.remote import Comment, RemoteForge, fit_text, shorten
from mlci.http import ForgeError, HttpClient, Response

GITHUB_COMMENT_LIMIT = 65_536  # UTF-16 code units, to be safe (forge.md §1.1)
CHECK_OUTPUT_LIMIT = 65_535
# Who posts with the Actions token: REST cannot say (GET /user is refused), so by name.
ACTIONS_BOTS = {
    "github": frozenset({"github-actions[bot]"}),
    "gitea": frozenset({"gitea-actions", "forgejo-actions"}),
}
GITHUB_TOKEN_FIX = (
    "pass the token to the mlci step: `env: GITHUB_TOKEN: ${{ github.token }}`, with "
    "`permissions: {contents: read, pull-requests: write, statuses: write}` on the job"
)


def open_forge(opening: Opening) -> ForgeChoice:
    """GitHub, GHES or (`context.ci` "gitea") Gitea/Forgejo, authenticated from `env`."""
    context, env = opening.context, opening.env
    gitea = context.ci == "gitea"
    names = TOKEN_VARIABLES[context.ci]
    if context.fork and env.get("GITHUB_EVENT_NAME") == "pull_request":
        return ForgeChoice.fork(
            context.pr_number,
            ", so its token is read-only",
            "the job summary and .mlci/out/",
            "shows the two-workflow setup that comments on forks",
        )
    found = opening.token()
    if found is None:
        forge_name = "Gitea" if gitea else "GitHub"
        return ForgeChoice(
            None,
            skip=(
                f"no comment or status on {forge_name}: no {' or '.join(names)} in the "
                "environment; " + GITHUB_TOKEN_FIX.replace("GITHUB_TOKEN", names[0])
            ),
            no_token=True,
        )
    scheme = "token" if gitea else "Bearer"
    headers = {"Authorization": f"{scheme} {found[1]}", "Accept": "application/vnd.github+json"}
    if not gitea:
        headers["X-GitHub-Api-Version"] = "2022-11-28"
    http = opening.connect(context.api_url or "https://api.github.com", headers, found[1])
    forge = GitHubForge(
        http,
        repository=context.repository or "",
        pr_number=context.pr_number,
        flavour="gitea" if gitea else "github",
        needed=opening.needed,
        graphql_url=graphql_url(http.base_url, env.get("GITHUB_GRAPHQL_URL")),
    )
    return ForgeChoice(forge)


def permissions_block(accepted: str | None, needed: dict[str, str]) -> str:
    """The `permissions:` block to add: what mlci needs plus what the API said it needs.

    `X-Accepted-GitHub-Permissions` reads like `pull_requests=write,contents=read`, with
    alternatives separated by `;`: when mlci's own list satisfies one, it is enough.
    """
    wanted = {"contents": "read", **needed}
    alternatives = []
    for alternative in (accepted or "").split(";"):
        items = {}
        for item in alternative.split(","):
            name, _, level = item.strip().partition("=")
            if name.strip() and level.strip():
                items[name.strip().replace("_", "-")] = level.strip()
        if items:
            alternatives.append(items)
    rank = {"read": 1, "write": 2}

    def satisfied(items: dict[str, str]) -> bool:
        return all(rank.get(wanted.get(k, ""), 0) >= rank.get(v, 0) for k, v in items.items())

    if alternatives and not any(satisfied(items) for items in alternatives):
        for scope, level in alternatives[0].items():
            if rank.get(wanted.get(scope, ""), 0) < rank.get(level, 0):
                wanted[scope] = level
    lines = ["permissions:", *(f"  {scope}: {level}" for scope, level in sorted(wanted.items()))]
    return "\n".join(lines)


class GitHubForge(RemoteForge):
    """Sticky comments, commit statuses and (GitHub only) check runs on one pull request."""

    def __init__(
        self,
        http: HttpClient,
        *,
        repository: str,
        pr_number: int | None,
        flavour: str = "github",  # or "gitea" (also Forgejo)
        needed: dict[str, str] | None = None,
        graphql_url: str | None = None,
    ) -> None:
        super().__init__(http)
        self.graphql_url = graphql_url
        self.repository = repository
        self.pr_number = pr_number
        self.flavour = flavour
        self.name = "Gitea" if flavour == "gitea" else "GitHub"
        self.max_comment_chars = GITHUB_COMMENT_LIMIT
        self.needed = needed or {"pull-requests": "write"}
        # Aimed at a commit (`mlci comment --target commit`): the sticky comment goes there.
        self.commit_sha: str | None = None
        http.forge_name = self.name

    @property
    def _repo_path(self) -> str:
        return "/repos/" + "/".join(
            urllib.parse.quote(p, safe="") for p in self.repository.split("/")
        )

    # -- comments ----------------------------------------------------------------------

    def _comments(self) -> Iterator[Comment]:
        # Gitea's list takes no page size (only `since`/`before`) and answers every comment
        # at once; GitHub pages by `per_page` (at most 100). Both follow `Link: rel="next"`.
        size = "" if self.flavour == "gitea" else "?per_page=100"
        path = f"{self._repo_path}/issues/{self.pr_number}/comments{size}"
        action = f"read the comments of pull request #{self.pr_number}"
        if self.commit_sha:
            path = f"{self._repo_path}/commits/{self.commit_sha}/comments?per_page=100"
            action = f"read the comments of commit {self.commit_sha[:12]}"
        for _, page in self._pages(path, action):
            for item in page:
                if isinstance(item, dict):
                    yield _comment(item)

    def _create(self, body: str) -> Comment:
        path = f"{self._repo_path}/issues/{self.pr_number}/comments"
        where = f"pull request #{self.pr_number}"
        if self.commit_sha:
            path = f"{self._repo_path}/commits/{self.commit_sha}/comments"
            where = f"commit {self.commit_sha[:12]}"
        response = self.http.request("POST", path, body={"body": body})
        if response.status != 201:
            self.fail(response, f"comment on {where}")
        return _comment(response.json())

    def _edit(self, comment: Comment, body: str) -> Comment:
        path = f"{self._repo_path}/issues/comments/{comment.id}"
        where = f"pull request #{self.pr_number}"
        if self.commit_sha:
            path = f"{self._repo_path}/comments/{comment.id}"
            where = f"commit {self.commit_sha[:12]}"
        response = self.http.request("PATCH", path, body={"body": body})
        if response.status >= 300:
            self.fail(response, f"update comment {comment.id} on {where}")
        return _comment(response.json())

    def _minimize(self, comment: Comment) -> None:
        """Hide it as outdated (GraphQL `minimizeComment`); its body is already folded."""
        if self.flavour != "github" or not self.graphql_url or not comment.node_id:
            return
        query = (
            "mutation($id: ID!) { minimizeComment(input: {subjectId: $id, classifier: OUTDATED})"
            " { minimizedComment { isMinimized } } }"
        )
        # Best effort: if GitHub says no, the folded body still marks it outdated.
        self.http.request(
            "POST", self.graphql_url, body={"query": query, "variables": {"id": comment.node_id}}
        )

    def aimed_at_pull_request(self, number: int) -> GitHubForge:
        aimed = copy.copy(self)
        aimed.pr_number, aimed.commit_sha = number, None
        return aimed

    def aimed_at_issue(self, number: int) -> GitHubForge:
        """Issues and pull requests share one comments API (`/issues/N/comments`)."""
        return self.aimed_at_pull_request(number)

    def aimed_at_commit(self, sha: str) -> GitHubForge | None:
        """GitHub only: Gitea and Forgejo have no commit comments to update."""
        if self.flavour != "github":
            return None
        aimed = copy.copy(self)
        aimed.commit_sha = sha
        return aimed

    def _my_names(self) -> frozenset[str]:
        response = self.http.request("GET", "/user")
        data = response.json()
        if response.status == 200 and isinstance(data, dict) and data.get("login"):
            return frozenset({str(data["login"])})
        return ACTIONS_BOTS[self.flavour]

    # -- statuses ----------------------------------------------------------------------

    def set_status(
        self, sha: str | None, verdict: str, summary: str, url: str | None = None
    ) -> str:
        if sha is None:
            return "no commit to set a status on"
        payload: dict[str, object] = {
            "state": status_state(verdict),
            "context": self.status_context,
            "description": shorten(summary, 140),
        }
        if url:
            payload["target_url"] = url
        response = self.http.request(
            "POST", f"{self._repo_path}/statuses/{sha}", body=payload, idempotent=True
        )
        if response.status >= 300:
            self.fail(response, f"set the commit status on {sha[:12]}")
        return f"status {payload['state']} on {sha[:12]}"

    def create_check_run(
        self, sha: str, verdict: str, title: str, summary: str, url: str | None
    ) -> str:
        """A completed check run (GitHub only: needs the Actions token and `checks: write`)."""
        if self.flavour != "github":
            return f"{self.name} has no check runs; the commit status says the verdict"
        conclusion = {"pass": "success", "warn": "neutral", "fail": "failure"}.get(
            verdict, "failure"
        )
        payload: dict[str, object] = {
            "name": self.status_context,
            "head_sha": sha,
            "status": "completed",
            "conclusion": conclusion,
            "output": {
                "title": shorten(title, 255),
                "summary": fit_text(summary, CHECK_OUTPUT_LIMIT),
            },
        }
        if url:
            payload["details_url"] = url
        response = self.http.request("POST", f"{self._repo_path}/check-runs", body=payload)
        if response.status != 201:
            self.fail(response, f"create a check run on {sha[:12]}")
        data = response.json()
        return (
            str(data.get("html_url") or "check run created")
            if isinstance(data, dict)
            else "check run"
        )

    # -- finding the pull request ------------------------------------------------------

    def find_pull_request(self, sha: str) -> tuple[int, str] | None:
        """The open pull request whose head is `sha` (a push build): number and head sha."""
        if self.flavour == "gitea":
            response = self.http.request("GET", f"{self._repo_path}/commits/{sha}/pull")
            data = response.json()
            if response.status == 404:
                return None
            if response.status >= 300:
                self.fail(response, f"find the pull request of commit {sha[:12]}")
            pulls = [data] if isinstance(data, dict) else []
        else:
            response = self.http.request("GET", f"{self._repo_path}/commits/{sha}/pulls")
            if response.status == 404 and "No commit found" in response.message:
                return None
            if response.status >= 300:
                self.fail(response, f"find the pull request of commit {sha[:12]}")
            data = response.json()
            pulls = data if isinstance(data, list) else []
        for pull in pulls:
            if isinstance(pull, dict) and pull.get("state") == "open":
                head = _dict(pull.get("head"))
                if isinstance(pull.get("number"), int):
                    return int(pull["number"]), str(head.get("sha") or sha)
        return None

    def pull_request_head(self, number: int) -> str:
        """The head commit of pull request `number`."""
        response = self.http.request("GET", f"{self._repo_path}/pulls/{number}")
        if response.status >= 300:
            self.fail(response, f"read pull request #{number}")
        head = _dict(_dict(response.json()).get("head"))
        if not head.get("sha"):
            raise ForgeError(
                f"{self.name} answered the read of pull request #{number} without its head "
                "commit: cannot check which commit it is for; not publishing"
            )
        return str(head["sha"])

    def check_access(self) -> list[tuple[bool, str]]:
        """One read of the repository: does the token see it, and what may it do there."""
        response = self.http.request("GET", self._repo_path)
        if response.status >= 300:
            try:
                self.fail(response, f"read the repository {self.repository}")
            except ForgeError as exc:
                return [(False, exc.message)]
        data = response.json() if isinstance(response.json(), dict) else {}
        permissions = data.get("permissions") if isinstance(data, dict) else None
        if isinstance(permissions, dict) and not (
            permissions.get("push") or permissions.get("triage")
        ):
            return [
                (True, f"{self.name}: the token can read {self.repository}"),
                (
                    False,
                    f"{self.name}: the token cannot write to {self.repository}; comments and "
                    "statuses will be refused",
                ),
            ]
        return [(True, f"{self.name}: the token can read {self.repository}")]

    # -- errors ------------------------------------------------------------------------

    def fail(self, response: Response, action: str) -> None:
        status, text = response.status, self.http.redact(response.message)
        token = "GITEA_TOKEN" if self.flavour == "gitea" else "GITHUB_TOKEN"
        if status == 401:
            raise ForgeError(
                f"{self.name} refused the token to {action} (401 {text}): the token in "
                f"{token} is missing, expired or wrong; in the workflow pass "
                f"`env: {token}: ${{{{ secrets.{token} }}}}` (or `${{{{ github.token }}}}`) "
                f"to the mlci step",
                status=status,
            )
        if (status == 403 and "not accessible" in text.lower()) or (
            status == 403 and self.flavour == "gitea"
        ):
            block = permissions_block(response.header("x-accepted-github-permissions"), self.needed)
            accepted = response.header("x-accepted-github-permissions")
            needs = f" ({self.name} says the call needs {accepted})" if accepted else ""
            raise ForgeError(
                f"{self.name} refused to {action} (403 {text}): the token lacks a "
                f"permission{needs}. Give the job these permissions in the workflow:\n"
                f"{_indent(block)}\n"
                "Pull requests from forks and from Dependabot always get a read-only "
                "token: see docs/forges.md#pull-requests-from-forks",
                status=status,
            )
        if status == 404:
            raise ForgeError(
                f"{self.name} answered 404 Not Found to {action}: the repository "
                f"{self.repository} or pull request #{self.pr_number} is not visible to "
                f"this token. A personal access token needs access to {self.repository} "
                f"(classic: the `repo` scope for private repositories; fine-grained: "
                f"this repository with Pull requests and Commit statuses: read and write); "
                f"on GitHub Enterprise Server check GITHUB_API_URL (https://HOST/api/v3)",
                status=status,
            )
        if status == 422:
            raise ForgeError(
                f"{self.name} rejected the request to {action} (422 {_details(response) or text}); "
                f"mlci folds the report to fit {GITHUB_COMMENT_LIMIT:,} characters, so this "
                f"is a bug in mlci: please report it. The full report is in .mlci/out/",
                status=status,
            )
        raise ForgeError(f"{self.name} answered {status} to {action}: {text}", status=status)


def _comment(item: object) -> Comment:
    data = item if isinstance(item, dict) else {}
    user = _dict(data.get("user"))
    return Comment(
        id=str(data.get("id")),
        body=str(data.get("body") or ""),
        author=str(user.get("login")) if user.get("login") else None,
        url=str(data.get("html_url") or data.get("url") or f"comment {data.get('id')}"),
        node_id=str(data["node_id"]) if data.get("node_id") else None,
    )


def _details(response: Response) -> str:
    data = response.json()
    if isinstance(data, dict) and isinstance(data.get("errors"), list):
        parts = [
            str(e.get("message"))
            for e in data["errors"]
            if isinstance(e, dict) and e.get("message")
        ]
        return "; ".join(parts)
    return ""


def _indent(text: str) -> str:
    return "\n".join(f"  {line}" for line in text.splitlines())


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def graphql_url(api_url: str, env_value: str | None) -> str:
    """GITHUB_GRAPHQL_URL, else derived: api.github.com/graphql, GHES HOST/api/graphql."""
    if env_value:
        return env_value
    base = api_url.rstrip("/")
    if base.endswith("/api/v3"):
        return base[: -len("/v3")] + "/graphql"
    return base + "/graphql"
