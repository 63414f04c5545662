"""GitLab (gitlab.com and self-managed): merge request notes and commit statuses.

The API base is `CI_API_V4_URL`, the token `GITLAB_TOKEN`. GitLab sets `CI_JOB_TOKEN` in
every job, but the job token may call none of the endpoints mlci needs (notes, statuses,
uploads, `/user`; docs/forges.md#gitlab-ci): alone, it counts as no token, and mlci sends
nothing to GitLab rather than collect 401s.
"""

from __future__ import annotations

import copy
import urllib.parse
from collections.abc import Iterator
from typing import Any

from mlci.forges.base import ForgeChoice, NoLookups, Opening, status_state
from mlci.forges.remote import Comment, RemoteForge, shorten
from mlci.http import ForgeError, HttpClient, Response

GITLAB_NOTE_LIMIT = 1_000_000
# POST /projects/:id/statuses/:sha: `target_url`, `description` and `ref` "must be 255
# characters or fewer" (GitLab's Commits API docs).
GITLAB_STATUS_FIELD_LIMIT = 255

TOKEN_FIX = (
    "create a project access token (Settings > Access tokens) with the `api` scope and the "
    "Developer role (Reporter may post the note but not the commit status), and add it as a "
    "masked CI/CD variable named GITLAB_TOKEN (Settings > CI/CD > Variables)"
)


def open_forge(opening: Opening) -> ForgeChoice:
    """GitLab, authenticated with GITLAB_TOKEN; without it, no forge and one line why."""
    context, env = opening.context, opening.env
    found = opening.token()
    if found is None and context.fork:
        return ForgeChoice(
            None,
            skip=(
                f"merge request !{context.pr_number} comes from a fork and no GITLAB_TOKEN "
                "is set: no note or status (the report is in .mlci/out/ and the job artifacts)"
            ),
            read_only=True,
        )
    if found is None:
        why = (
            "only CI_JOB_TOKEN is set, and GitLab's job token cannot post notes or commit statuses"
            if env.get("CI_JOB_TOKEN")
            else "no GITLAB_TOKEN"
        )
        return ForgeChoice(
            None,
            skip=f"no note or status on GitLab: {why}; {TOKEN_FIX}",
            no_token=True,
        )
    http = opening.connect(
        context.api_url or "https://gitlab.com/api/v4", {"PRIVATE-TOKEN": found[1]}, found[1]
    )
    forge = GitLabForge(
        http,
        project=context.repository or "",
        mr_iid=context.pr_number,
        web_url=env.get("CI_MERGE_REQUEST_PROJECT_URL") or env.get("CI_PROJECT_URL"),
    )
    return ForgeChoice(forge)


class GitLabForge(NoLookups, RemoteForge):
    """Notes on one merge request (or issue) and commit statuses. No check runs, and a
    merge request pipeline names its merge request: nothing to look up."""

    name = "GitLab"

    def __init__(
        self,
        http: HttpClient,
        *,
        project: str,
        mr_iid: int | None,
        web_url: str | None = None,
    ) -> None:
        super().__init__(http)
        self.project = project
        self.mr_iid = mr_iid
        self.web_url = web_url
        self.max_comment_chars = GITLAB_NOTE_LIMIT
        self.status_context = "mlci"
        # Aimed at an issue (`mlci comment --target issue/N`): "issues", the notes of
        # issue `mr_iid`.
        self.noteable = "merge_requests"
        http.forge_name = self.name

    @property
    def _project_path(self) -> str:
        return f"/projects/{urllib.parse.quote(self.project, safe='')}"

    @property
    def _notes(self) -> str:
        return f"{self._project_path}/{self.noteable}/{self.mr_iid}/notes"

    def aimed_at_pull_request(self, number: int) -> GitLabForge:
        return self._aimed("merge_requests", number)

    def aimed_at_issue(self, number: int) -> GitLabForge:
        return self._aimed("issues", number)

    def aimed_at_commit(self, sha: str) -> None:
        """None: GitLab's commit comments cannot be updated, so no sticky one there."""
        return None

    def _aimed(self, noteable: str, number: int) -> GitLabForge:
        aimed = copy.copy(self)
        aimed.noteable, aimed.mr_iid = noteable, number
        return aimed

    @property
    def _thread(self) -> str:
        """The notes' thread in GitLab's words: "merge request !3" or "issue #3"."""
        if self.noteable == "issues":
            return f"issue #{self.mr_iid}"
        return f"merge request !{self.mr_iid}"

    def _comments(self) -> Iterator[Comment]:
        path = f"{self._notes}?per_page=100&sort=asc&order_by=created_at"
        for _, page in self._pages(path, f"read the notes of {self._thread}"):
            for item in page:
                if isinstance(item, dict) and not item.get("system"):
                    yield self._note(item)

    def _create(self, body: str) -> Comment:
        response = self.http.request("POST", self._notes, body={"body": body})
        if response.status != 201:
            self.fail(response, f"comment on {self._thread}")
        return self._note(response.json())

    def _edit(self, comment: Comment, body: str) -> Comment:
        response = self.http.request("PUT", f"{self._notes}/{comment.id}", body={"body": body})
        if response.status >= 300:
            self.fail(response, f"update note {comment.id} on {self._thread}")
        return self._note(response.json())

    def _my_names(self) -> frozenset[str]:
        response = self.http.request("GET", "/user")
        data = response.json()
        if response.status == 200 and isinstance(data, dict) and data.get("username"):
            return frozenset({str(data["username"])})
        if response.status == 401:
            self.fail(response, "find the token's user")
        return frozenset()

    def _note(self, item: object) -> Comment:
        data = item if isinstance(item, dict) else {}
        author = _dict(data.get("author"))
        note_id = str(data.get("id"))
        url = f"{self._thread} note {note_id}"
        if self.web_url:
            url = f"{self.web_url}/-/{self.noteable}/{self.mr_iid}#note_{note_id}"
        return Comment(
            id=note_id,
            body=str(data.get("body") or ""),
            author=str(author.get("username")) if author.get("username") else None,
            url=url,
        )

    def set_status(
        self, sha: str | None, verdict: str, summary: str, url: str | None = None
    ) -> str:
        if sha is None:
            return "no commit to set a status on"
        state = "success" if status_state(verdict) == "success" else "failed"
        payload: dict[str, object] = {
            "state": state,
            "name": self.status_context,
            "description": shorten(summary, GITLAB_STATUS_FIELD_LIMIT),
        }
        # A cut URL would lead nowhere: a longer one (deep subgroups) is left out.
        linked = url is not None and len(url) <= GITLAB_STATUS_FIELD_LIMIT
        if linked:
            payload["target_url"] = url
        path = f"{self._project_path}/statuses/{sha}"
        response = self.http.request("POST", path, body=payload, idempotent=True)
        if response.status >= 300:
            self.fail(response, f"set the commit status on {sha[:12]}")
        where = f"status {state} on {sha[:12]}"
        if url and not linked:
            where += (
                f" (without a link: the pipeline URL has {len(url)} characters, GitLab "
                f"takes {GITLAB_STATUS_FIELD_LIMIT})"
            )
        return where

    def check_access(self) -> list[tuple[bool, str]]:
        response = self.http.request("GET", self._project_path)
        if response.status >= 300:
            try:
                self.fail(response, f"read project {self.project}")
            except ForgeError as exc:
                return [(False, exc.message)]
        return [(True, f"GitLab: GITLAB_TOKEN can read project {self.project}")]

    def fail(self, response: Response, action: str) -> None:
        status, text = response.status, self.http.redact(response.message)
        if status == 401:
            raise ForgeError(
                f"GitLab refused the token in GITLAB_TOKEN to {action} (401 {text}): it is "
                f"expired, revoked or wrong; create a new project access token with the "
                f"`api` scope and update the GITLAB_TOKEN CI/CD variable",
                status=status,
            )
        if status == 403:
            raise ForgeError(
                f"GitLab refused to {action} (403 {text}): the token in GITLAB_TOKEN needs "
                f"the `api` scope and at least the Developer role in project {self.project}",
                status=status,
            )
        if status == 404:
            raise ForgeError(
                f"GitLab answered 404 to {action} ({text}): project {self.project} or "
                f"{self._thread} is not visible to the token in GITLAB_TOKEN; give "
                f"the token access to this project (a project or group access token of it, "
                f"`api` scope), and check CI_API_V4_URL",
                status=status,
            )
        raise ForgeError(f"GitLab answered {status} to {action}: {text}", status=status)


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
