"""Stand-ins for the forges' REST APIs on 127.0.0.1, shared by the forge tests.

Each keeps state (comments, statuses, check runs), paginates the way the real API does
(GitHub and Gitea with `Link` headers, GitLab with `Link` and `X-Next-Page`, Bitbucket
with `next` in the JSON), enforces the documented limits (65,536-character comments,
140-character status descriptions, 1,000,000-character GitLab notes, 100 per page), and
answers errors with the bodies and headers of reference/forge.md. `faults` makes the next
matching requests fail (5xx, 429, a slow answer after acting) to exercise the retries.
"""

from __future__ import annotations

import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.forges import graphql_schema, openapi

Answer = tuple[int, dict[str, str], object]

DOCS = "https://docs.github.com/rest"
NOT_ACCESSIBLE = "Resource not accessible by integration"
TOO_LONG = "Body is too long (maximum is 65536 characters)"


@dataclass
class Fault:
    """Answer the next `times` requests matching `method` and `path` (a regex) this way.

    With `act`, the request is carried out first and the answer comes `delay_s` late:
    a client that timed out does not know its comment was created.
    """

    method: str
    path: str
    status: int = 502
    headers: dict[str, str] = field(default_factory=dict)
    body: object = None
    times: int = 1
    act: bool = False
    delay_s: float = 0.0


@dataclass
class Request:
    method: str
    path: str
    status: int
    body: bytes = b""  # as sent: tests look for what must never be sent


class StandIn:
    """Base: the HTTP plumbing, faults and a log of every request."""

    prefix = ""

    def __init__(self) -> None:
        self.faults: list[Fault] = []
        self.log: list[Request] = []
        self.lock = threading.Lock()
        self._next_id = 1000
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return self.origin + self.prefix

    def new_id(self) -> int:
        self._next_id += 1
        return self._next_id

    def requests(self, method: str, pattern: str = "") -> list[Request]:
        return [r for r in self.log if r.method == method and re.search(pattern, r.path)]

    def route(
        self, method: str, path: str, query: dict[str, str], headers: Any, body: Any
    ) -> Answer:
        raise NotImplementedError

    def _fault(self, method: str, path: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.method == method and re.search(fault.path, path) and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                kind = self.headers.get("Content-Type") or ""
                body = json.loads(raw) if raw and "json" in kind else raw or None
                query = dict(urllib.parse.parse_qsl(url.query))
                path = url.path
                fault = standin._fault(self.command, path)
                entry = Request(self.command, self.path, 0, raw)
                standin.log.append(entry)
                inner = path[len(standin.prefix) :]
                if fault is not None and fault.act:
                    with standin.lock:
                        standin.route(self.command, inner, query, self.headers, body)
                if fault is not None:
                    status, headers, payload = fault.status, fault.headers, fault.body
                    time.sleep(fault.delay_s)
                elif path.endswith("/graphql") and hasattr(standin, "graphql"):
                    with standin.lock:
                        status, headers, payload = standin.graphql(path, self.headers, body)
                elif not path.startswith(standin.prefix):
                    status, headers, payload = 404, {}, {"message": "Not Found"}
                else:
                    with standin.lock:
                        status, headers, payload = standin.route(
                            self.command, inner, query, self.headers, body
                        )
                entry.status = status
                # Bytes go as they are (a proxy's HTML page); anything else as JSON.
                raw_body = isinstance(payload, bytes)
                if isinstance(payload, bytes):
                    data = payload
                else:
                    data = b"" if payload is None else json.dumps(payload).encode()
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    if not raw_body:
                        self.send_header("Content-Type", "application/json; charset=utf-8")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        return Handler

    @contextmanager
    def running(self) -> Iterator[StandIn]:
        self.thread.start()
        try:
            yield self
        finally:
            self.server.shutdown()
            self.server.server_close()


def _page(
    items: list[Any], query: dict[str, str], default: int, maximum: int
) -> tuple[list[Any], int, int]:
    size = min(int(query.get("per_page") or query.get("limit") or default), maximum)
    page = max(int(query.get("page") or 1), 1)
    last = max((len(items) + size - 1) // size, 1)
    return items[(page - 1) * size : page * size], page, last


def _link(base: str, path: str, query: dict[str, str], page: int, last: int) -> dict[str, str]:
    links = []
    for rel, number in (("next", page + 1), ("last", last)):
        if number <= last and (rel != "next" or page < last):
            q = urllib.parse.urlencode({**query, "page": str(number)})
            links.append(f'<{base}{path}?{q}>; rel="{rel}"')
    return {"Link": ", ".join(links)} if links else {}


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _unserved(body: dict[str, Any]) -> list[dict[str, str]]:
    """Fields the schema extract allows but the GitHub stand-in does not carry out."""
    return [
        {"message": f"{node.name.value}: the stand-in serves minimizeComment only"}
        for node, _ in graphql_schema.root_fields(body)
        if node.name.value != "minimizeComment"
    ]


@dataclass
class GitHubToken:
    login: str  # the comments' author
    write: bool = True
    app: bool = True  # an installation token (GITHUB_TOKEN): GET /user is refused
    contents: bool = True  # `contents: write` (the asset branch)


class GitHubStandIn(StandIn):
    """GitHub (prefix ""), GHES (prefix "/api/v3"), or Gitea/Forgejo (flavour "gitea").

    Strict: every REST request is checked against the forge's published description
    (tests/forges/openapi.py, specs/github.json or specs/gitea.json) before it is served,
    every GraphQL request against GitHub's schema (graphql_schema.py, specs/github.graphql);
    one the description does not allow is answered as the forge answers it (GitHub: 422
    "Validation Failed" with its `errors`, GraphQL 200 with `errors`; Gitea: 422 with a
    `message`), and recorded in `violations`, which must be empty when the stand-in stops
    (`running`).
    """

    def __init__(
        self, *, prefix: str = "", flavour: str = "github", repo: str = "team/models"
    ) -> None:
        self.prefix = prefix
        self.flavour = flavour
        self.repo = repo
        bot = "github-actions[bot]" if flavour == "github" else "gitea-actions"
        self.tokens: dict[str, GitHubToken] = {
            "ghs_write": GitHubToken(bot),
            "ghs_read": GitHubToken(bot, write=False),
        }
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.statuses: dict[str, list[dict[str, Any]]] = {}
        self.check_runs: list[dict[str, Any]] = []
        self.pulls: dict[int, dict[str, Any]] = {}
        self.branches: dict[str, dict[str, bytes]] = {}  # branch -> path -> content
        self.objects: dict[str, Any] = {}  # git trees and commits by sha
        self.attachments: dict[int, list[bytes]] = {}
        self.issues: set[int] = set()  # issues that are not pull requests
        self.commit_comments: dict[str, list[dict[str, Any]]] = {}
        self.violations: list[tuple[str, str, list[dict[str, str]]]] = []
        super().__init__()

    @contextmanager
    def running(self) -> Iterator[StandIn]:
        with super().running():
            yield self
        assert not self.violations, (
            f"requests the API description does not allow: {self.violations}"
        )

    def _invalid(self, method: str, path: str, errors: list[dict[str, str]]) -> Answer:
        self.violations.append((method, path, errors))
        if self.flavour == "gitea":
            text = "; ".join(e["message"] for e in errors)
            return 422, {}, {"message": text, "url": f"{self.origin}/api/swagger"}
        return (
            422,
            {},
            {
                "message": "Validation Failed",
                "errors": errors,
                "documentation_url": DOCS,
                "status": "422",
            },
        )

    def graphql(self, path: str, headers: Any, body: Any) -> Answer:
        """At /graphql (GitHub) or /api/graphql (GHES): checked against GitHub's schema
        (tests/forges/graphql_schema.py), then `minimizeComment` carried out.

        A request the schema does not allow gets GitHub's answer, 200 with `errors` and no
        `data`, and is recorded in `violations` like a REST request the description refuses.
        """
        expected = "/api/graphql" if self.prefix == "/api/v3" else "/graphql"
        if path != expected:
            return 404, {}, {"message": "Not Found"}
        token = self._token(headers)
        if token is None:
            return 401, {}, {"message": "Bad credentials"}
        errors = graphql_schema.errors(body) or _unserved(body)
        if errors:
            self.violations.append(("POST", path, errors))
            return 200, {}, {"errors": errors}
        return 200, {}, self._mutate(token, body)

    def _mutate(self, token: GitHubToken, body: dict[str, Any]) -> dict[str, object]:
        """The answer to a `minimizeComment` document: `data`, and `errors` where refused."""
        data: dict[str, object] = {}
        failed: list[dict[str, object]] = []
        for node, arguments in graphql_schema.root_fields(body):
            name = node.alias.value if node.alias else node.name.value
            data[name], error = self._minimize(token, arguments["input"]["subjectId"])
            if error is not None:
                location = node.loc.source.get_location(node.loc.start) if node.loc else None
                where = [location.formatted] if location else []
                failed.append({**error, "path": [name], "locations": where})
        return {"data": data, "errors": failed} if failed else {"data": data}

    def _minimize(self, token: GitHubToken, node_id: str) -> tuple[object, dict[str, str] | None]:
        """What GitHub answers for one `minimizeComment`: its payload, or null and an error."""
        for comments in self.comments.values():
            for comment in comments:
                if comment["node_id"] != node_id:
                    continue
                if not token.write:
                    return None, {"type": "FORBIDDEN", "message": NOT_ACCESSIBLE}
                comment["is_minimized"] = True
                return {"minimizedComment": {"isMinimized": True}}, None
        text = f"Could not resolve to a node with the global id of '{node_id}'"
        return None, {"type": "NOT_FOUND", "message": text}

    def add_pull(self, number: int, head_sha: str, state: str = "open") -> None:
        self.pulls[number] = {"number": number, "state": state, "head": {"sha": head_sha}}
        self.comments.setdefault(number, [])

    def add_issue(self, number: int) -> None:
        self.issues.add(number)
        self.comments.setdefault(number, [])

    def add_comment(self, number: int, body: str, login: str) -> dict[str, Any]:
        comment_id = self.new_id()
        comment = {
            "id": comment_id,
            "node_id": f"IC_{comment_id}",
            "body": body,
            "user": {"login": login, "type": "Bot" if "[bot]" in login else "User"},
            "html_url": f"https://github.example/{self.repo}/pull/{number}#issuecomment-{comment_id}",
        }
        self.comments.setdefault(number, []).append(comment)
        return comment

    def _token(self, headers: Any) -> GitHubToken | None:
        value = headers.get("Authorization") or ""
        scheme = "token" if self.flavour == "gitea" else "Bearer"
        if not value.startswith(f"{scheme} "):
            return None
        return self.tokens.get(value.split(" ", 1)[1])

    def _denied(self, doc: str, accepted: str) -> Answer:
        if self.flavour == "gitea":
            return (
                403,
                {},
                {"message": "user should have specific permission or be a site admin", "url": ""},
            )
        return (
            403,
            {"X-Accepted-GitHub-Permissions": accepted},
            {"message": NOT_ACCESSIBLE, "documentation_url": f"{DOCS}/{doc}", "status": "403"},
        )

    def route(
        self, method: str, path: str, query: dict[str, str], headers: Any, body: Any
    ) -> Answer:
        token = self._token(headers)
        if token is None:
            return (
                401,
                {},
                {"message": "Bad credentials", "documentation_url": DOCS, "status": "401"},
            )
        spec = openapi.load("gitea" if self.flavour == "gitea" else "github")
        errors = openapi.violations(spec, method, path, query, body)
        if errors:
            return self._invalid(method, path, errors)
        if method == "GET" and path == "/user":
            if token.app:
                return self._denied("users/users#get-the-authenticated-user", "")
            return 200, {}, {"login": token.login}
        repo = f"/repos/{self.repo}"
        if not path.startswith(repo):
            return 404, {}, {"message": "Not Found", "documentation_url": DOCS, "status": "404"}
        rest = path[len(repo) :]
        if method == "GET" and rest == "":
            return 200, {}, {"full_name": self.repo, "private": True}
        match = re.fullmatch(r"/issues/(\d+)/comments", rest)
        if match:
            number = int(match.group(1))
            if number not in self.pulls and number not in self.issues:
                return 404, {}, {"message": "Not Found", "documentation_url": DOCS, "status": "404"}
            if method == "GET":
                if self.flavour == "gitea":  # no page size: every comment, one answer
                    return 200, {}, self.comments[number]
                items, page, last = _page(self.comments[number], query, 30, 100)
                return 200, _link(self.api_url, path, query, page, last), items
            if method == "POST":
                if not token.write:
                    return self._denied(
                        "issues/comments#create-an-issue-comment",
                        "issues=write; pull_requests=write",
                    )
                if _utf16(body["body"]) > 65_536:
                    return (
                        422,
                        {},
                        {
                            "message": "Validation Failed",
                            "errors": [
                                {
                                    "resource": "IssueComment",
                                    "code": "unprocessable",
                                    "field": "data",
                                    "message": TOO_LONG,
                                }
                            ],
                            "documentation_url": f"{DOCS}/issues/comments#create-an-issue-comment",
                        },
                    )
                return 201, {}, self.add_comment(number, body["body"], token.login)
        match = re.fullmatch(r"/issues/comments/(\d+)", rest)
        if match and method == "PATCH":
            if not token.write:
                return self._denied(
                    "issues/comments#update-an-issue-comment", "issues=write; pull_requests=write"
                )
            for comments in self.comments.values():
                for comment in comments:
                    if comment["id"] == int(match.group(1)):
                        if comment["user"]["login"] != token.login:
                            return self._denied(
                                "issues/comments#update-an-issue-comment", "issues=write"
                            )
                        if _utf16(body["body"]) > 65_536:
                            return (
                                422,
                                {},
                                {
                                    "message": "Validation Failed",
                                    "errors": [{"message": TOO_LONG}],
                                },
                            )
                        comment["body"] = body["body"]
                        return 200, {}, comment
            return 404, {}, {"message": "Not Found", "documentation_url": DOCS, "status": "404"}
        match = re.fullmatch(r"/statuses/([0-9a-f]{40})", rest)
        if match and method == "POST":
            if not token.write:
                return self._denied("commits/statuses#create-a-commit-status", "statuses=write")
            if len(body.get("description") or "") > 140:
                return (
                    422,
                    {},
                    {
                        "message": "Validation Failed",
                        "errors": [
                            {
                                "resource": "Status",
                                "field": "description",
                                "code": "custom",
                                "message": "description is too long (maximum is 140 characters)",
                            }
                        ],
                    },
                )
            if body.get("state") not in (
                "error",
                "failure",
                "pending",
                "success",
                *(("warning", "skipped") if self.flavour == "gitea" else ()),
            ):
                return 422, {}, {"message": "Validation Failed"}
            self.statuses.setdefault(match.group(1), []).append(body)
            return 201, {}, {"id": self.new_id(), **body}
        if rest == "/check-runs" and method == "POST" and self.flavour == "github":
            if not token.write or not token.app:
                return self._denied("checks/runs#create-a-check-run", "checks=write")
            summary = body.get("output", {}).get("summary", "")
            if len(summary) > 65_535:
                return (
                    422,
                    {},
                    {
                        "message": "Invalid request.\n\nOnly 65535 characters are allowed; "
                        f"{len(summary)} were supplied."
                    },
                )
            run = {
                "id": self.new_id(),
                "html_url": f"https://github.example/{self.repo}/runs/1",
                **body,
            }
            self.check_runs.append(run)
            return 201, {}, run
        match = re.fullmatch(r"/pulls/(\d+)", rest)
        if match and method == "GET":
            pull = self.pulls.get(int(match.group(1)))
            if pull is None:
                return 404, {}, {"message": "Not Found", "documentation_url": DOCS, "status": "404"}
            return 200, {}, pull
        answer = self._commit_comments(method, rest, query, token, body)
        if answer is None:
            answer = self._assets(method, rest, query, token, body)
        if answer is not None:
            return answer
        match = re.fullmatch(r"/commits/([0-9a-f]{40})/pulls?", rest)
        if match and method == "GET":
            sha = match.group(1)
            found = [p for p in self.pulls.values() if p["head"]["sha"] == sha]
            if self.flavour == "gitea":
                return (
                    (200, {}, found[0])
                    if found
                    else (404, {}, {"message": "pull request does not exist"})
                )
            return 200, {}, found
        return 404, {}, {"message": "Not Found", "documentation_url": DOCS, "status": "404"}

    def _commit_comments(
        self, method: str, rest: str, query: dict[str, str], token: GitHubToken, body: Any
    ) -> Answer | None:
        """Commit comments (GitHub): list and create per commit, edit by id."""
        if self.flavour != "github":
            return None
        denied = self._denied("commits/comments#create-a-commit-comment", "contents=write")
        match = re.fullmatch(r"/commits/([0-9a-f]{40})/comments", rest)
        if match:
            sha = match.group(1)
            comments = self.commit_comments.setdefault(sha, [])
            if method == "GET":
                items, page, last = _page(comments, query, 30, 100)
                return (
                    200,
                    _link(self.api_url, f"/repos/{self.repo}{rest}", query, page, last),
                    items,
                )
            if method == "POST":
                if not (token.write and token.contents):
                    return denied
                if _utf16(body["body"]) > 65_536:
                    return (
                        422,
                        {},
                        {"message": "Validation Failed", "errors": [{"message": TOO_LONG}]},
                    )
                comment_id = self.new_id()
                comment = {
                    "id": comment_id,
                    "node_id": f"CC_{comment_id}",
                    "body": body["body"],
                    "commit_id": sha,
                    "user": {"login": token.login, "type": "Bot"},
                    "html_url": f"https://github.example/{self.repo}/commit/{sha}#commitcomment-{comment_id}",
                }
                comments.append(comment)
                return 201, {}, comment
        match = re.fullmatch(r"/comments/(\d+)", rest)
        if match and method == "PATCH":
            if not (token.write and token.contents):
                return denied
            for comments in self.commit_comments.values():
                for comment in comments:
                    if comment["id"] == int(match.group(1)):
                        comment["body"] = body["body"]
                        return 200, {}, comment
            return 404, {}, {"message": "Not Found", "documentation_url": DOCS, "status": "404"}
        return None

    def _sha(self, thing: object) -> str:
        import hashlib

        sha = hashlib.sha1(json.dumps(thing, sort_keys=True).encode() + str(self.new_id()).encode())
        self.objects[sha.hexdigest()] = thing
        return sha.hexdigest()

    def _assets(
        self, method: str, rest: str, query: dict[str, str], token: GitHubToken, body: Any
    ) -> Answer | None:
        """Branches and the contents API (GitHub), issue attachments (Gitea)."""
        import base64

        write_denied = self._denied(
            "repos/contents#create-or-update-file-contents", "contents=write"
        )
        match = re.fullmatch(r"/branches/([^/]+)", rest)
        if match and method == "GET":
            name = urllib.parse.unquote(match.group(1))
            if name not in self.branches:
                return (
                    404,
                    {},
                    {"message": "Branch not found", "documentation_url": DOCS, "status": "404"},
                )
            return 200, {}, {"name": name}
        if rest in ("/git/trees", "/git/commits") and method == "POST":
            if not (token.write and token.contents):
                return write_denied
            return 201, {}, {"sha": self._sha(body)}
        if rest == "/git/refs" and method == "POST":
            if not (token.write and token.contents):
                return write_denied
            name = body["ref"].removeprefix("refs/heads/")
            if name in self.branches:
                return 422, {}, {"message": "Reference already exists"}
            commit = self.objects[body["sha"]]
            assert commit["parents"] == [], "the asset branch must be an orphan"
            self.branches[name] = {"README.md": b"readme"}
            return 201, {}, {"ref": body["ref"], "object": {"sha": body["sha"]}}
        match = re.fullmatch(r"/contents/(.+)", rest)
        if match:
            path = urllib.parse.unquote(match.group(1))
            branch = (body or {}).get("branch") if method == "PUT" else query.get("ref")
            files = self.branches.get(branch or "")
            if files is None:
                return 404, {}, {"message": "No commit found for the ref", "status": "404"}
            if method == "GET":
                if path not in files:
                    return 404, {}, {"message": "Not Found", "status": "404"}
                return 200, {}, {"path": path, "sha": self._blob_sha(files[path])}
            if method == "PUT":
                if not (token.write and token.contents):
                    return write_denied
                if path in files and body.get("sha") != self._blob_sha(files[path]):
                    return (
                        422,
                        {},
                        {"message": 'Invalid request.\n\n"sha" wasn\'t supplied.', "status": "422"},
                    )
                created = path not in files
                files[path] = base64.b64decode(body["content"])
                commit_sha = self._sha({"path": path})
                return (
                    (201 if created else 200),
                    {},
                    {"content": {"path": path}, "commit": {"sha": commit_sha}},
                )
        match = re.fullmatch(r"/issues/(\d+)/assets", rest)
        if match and method == "POST" and self.flavour == "gitea":
            number = int(match.group(1))
            data = _multipart_file(body, "attachment")
            self.attachments.setdefault(number, []).append(data)
            uuid = self.new_id()
            return (
                201,
                {},
                {
                    "id": uuid,
                    "name": query.get("name"),
                    "browser_download_url": f"https://gitea.example/attachments/{uuid}",
                },
            )
        return None

    @staticmethod
    def _blob_sha(data: bytes) -> str:
        import hashlib

        return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def _multipart_file(body: Any, field: str) -> bytes:
    """The file of one multipart/form-data field (the stand-ins get the raw body)."""
    return _multipart_named_file(body, field)[1]


def _multipart_named_file(body: Any, field: str) -> tuple[str, bytes]:
    """The file name and content of one multipart/form-data field."""
    raw: bytes = body
    marker = f'name="{field}"'.encode()
    start = raw.index(marker)
    header_end = raw.index(b"\r\n\r\n", start)
    match = re.search(rb'filename="([^"]*)"', raw[start:header_end])
    end = raw.index(b"\r\n--", header_end + 4)
    return (match.group(1).decode() if match else ""), raw[header_end + 4 : end]


GITLAB_SPEC = Path(__file__).parent / "specs" / "gitlab.json"


class GitLabStandIn(StandIn):
    """GitLab's v4 API: merge request and issue notes, commit statuses and uploads of one
    project.

    Strict: every request is first checked against `specs/gitlab.json`, the extract of
    GitLab's REST docs for the endpoints mlci calls (method, path, query parameters, body
    fields, enums, lengths, which token header may call it). A request that breaks it gets
    GitLab's answer (400 `{"error": ...}` or `{"message": {...}}`, 401 for a job token) and
    is recorded in `violations`; leaving `running()` with any recorded fails the test.
    """

    prefix = "/api/v4"

    def __init__(self, *, project: str = "7", job_token: str = "job-token-value") -> None:
        self.project = project
        self.job_token = job_token
        self.tokens = {"glpat-write": "project_7_bot"}
        self.notes: dict[int, list[dict[str, Any]]] = {}
        self.issue_notes: dict[int, list[dict[str, Any]]] = {}
        self.statuses: dict[str, list[dict[str, Any]]] = {}
        self.uploads: list[bytes] = []
        self.spec: dict[str, Any] = json.loads(GITLAB_SPEC.read_text(encoding="utf-8"))
        self.violations: list[str] = []
        super().__init__()

    @contextmanager
    def running(self) -> Iterator[StandIn]:
        with super().running() as server:
            yield server
        assert not self.violations, f"requests that {GITLAB_SPEC.name} does not allow: " + (
            "; ".join(self.violations)
        )

    def add_mr(self, iid: int) -> None:
        self.notes.setdefault(iid, [])

    def add_note(
        self,
        iid: int,
        body: str,
        username: str,
        system: bool = False,
        notes: dict[int, list[dict[str, Any]]] | None = None,
    ) -> dict[str, Any]:
        note = {
            "id": self.new_id(),
            "body": body,
            "author": {"id": 1, "username": username},
            "system": system,
        }
        (self.notes if notes is None else notes).setdefault(iid, []).append(note)
        return note

    # -- the documented API ----------------------------------------------------------------

    def _endpoint(self, method: str, path: str) -> dict[str, Any] | None:
        names = self.spec["path_parameters"]
        for endpoint in self.spec["endpoints"]:
            pattern = re.sub(r"\{(\w+)\}", lambda m: f"(?:{names[m.group(1)]})", endpoint["path"])
            if endpoint["method"] == method and re.fullmatch(pattern, path):
                return dict(endpoint)
        return None

    def _refuse(self, why: str, kind: str, **words: object) -> Answer:
        self.violations.append(why)
        error = self.spec["errors"][kind]
        text = json.dumps(error["body"])
        for name, value in words.items():
            text = text.replace(f"{{{name}}}", str(value))
        return error["status"], {}, json.loads(text)

    def _check(
        self, method: str, path: str, query: dict[str, str], headers: Any, body: Any
    ) -> Answer | None:
        """GitLab's answer to a request its docs do not allow; None for an allowed one."""
        where = f"{method} {path}"
        if headers.get("JOB-TOKEN") is not None:
            return self._refuse(f"{where}: the job token may not call it", "unauthorized")
        if headers.get("PRIVATE-TOKEN") is None:
            return self._refuse(f"{where}: no PRIVATE-TOKEN header", "unauthorized")
        endpoint = self._endpoint(method, path)
        if endpoint is None:
            return self._refuse(f"{where}: not an endpoint mlci may call", "no_route")
        allowed = dict(endpoint.get("query", {}))
        if endpoint.get("paginated"):
            allowed.update(self.spec["pagination"])
        for name, value in query.items():
            refused = self._field(where, name, value, allowed.get(name), from_query=True)
            if refused is not None:
                return refused
        if "multipart" in endpoint:
            for name in endpoint["multipart"]:
                if not isinstance(body, bytes) or f'name="{name}"'.encode() not in body:
                    return self._refuse(f"{where}: no multipart {name}", "missing", field=name)
            return None
        fields: dict[str, Any] = endpoint.get("body", {})
        if not fields:
            return (
                None if body is None else self._refuse(f"{where}: a body", "invalid", field="body")
            )
        if not isinstance(body, dict):
            return self._refuse(f"{where}: the body is not a JSON object", "invalid", field="body")
        for name, rule in fields.items():
            if rule.get("required") and name not in body:
                return self._refuse(f"{where}: no {name}", "missing", field=name)
        for name, value in body.items():
            refused = self._field(where, name, value, fields.get(name), from_query=False)
            if refused is not None:
                return refused
        return None

    def _field(
        self, where: str, name: str, value: Any, rule: dict[str, Any] | None, *, from_query: bool
    ) -> Answer | None:
        if rule is None:
            return self._refuse(
                f"{where}: {name} is not a documented parameter", "invalid", field=name
            )
        kind = rule.get("type", "string")
        if kind == "integer":
            text = str(value)
            if (
                not text.isdigit()
                or int(text) < rule.get("minimum", 0)
                or ("maximum" in rule and int(text) > rule["maximum"])
            ):
                return self._refuse(f"{where}: {name}={value!r}", "invalid", field=name)
            return None
        if kind == "boolean":
            ok = value in ("true", "false") if from_query else isinstance(value, bool)
            return None if ok else self._refuse(f"{where}: {name}={value!r}", "invalid", field=name)
        if kind == "number":
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            return None if ok else self._refuse(f"{where}: {name}={value!r}", "invalid", field=name)
        if not isinstance(value, str):
            return self._refuse(f"{where}: {name} is not a string", "invalid", field=name)
        if "enum" in rule and value not in rule["enum"]:
            return self._refuse(f"{where}: {name}={value!r}", "not_in_enum", field=name)
        limit = rule.get("maxLength")
        if limit is not None and len(value) > limit:
            return self._refuse(
                f"{where}: {name} has {len(value)} characters, at most {limit}",
                "too_long",
                model=rule.get("model", name),
                limit=limit,
            )
        return None

    # -- the project's state -----------------------------------------------------------------

    def route(
        self, method: str, path: str, query: dict[str, str], headers: Any, body: Any
    ) -> Answer:
        refused = self._check(method, path, query, headers, body)
        if refused is not None:
            return refused
        user = self.tokens.get(headers.get("PRIVATE-TOKEN") or "")
        if user is None:
            return 401, {}, {"message": "401 Unauthorized"}
        if path == "/user":
            return 200, {}, {"id": 99, "username": user}
        base = f"/projects/{self.project}"
        if not path.startswith(base):
            return 404, {}, {"message": "404 Project Not Found"}
        rest = path[len(base) :]
        if rest == "":
            return 200, {}, {"id": int(self.project)}
        if rest == "/uploads":
            data = _multipart_file(body, "file")
            self.uploads.append(data)
            secret = f"{self.new_id():032x}"
            url = f"/uploads/{secret}/plot.png"
            return (
                201,
                {},
                {
                    "alt": "plot",
                    "url": url,
                    "full_path": f"/-/project/7{url}",
                    "markdown": f"![plot]({url})",
                },
            )
        match = re.fullmatch(r"/statuses/(\w+)", rest)
        if match:
            self.statuses.setdefault(match.group(1), []).append(body)
            return 201, {}, {"id": self.new_id(), "status": body["state"], **body}
        match = re.fullmatch(r"/(merge_requests|issues)/(\d+)/notes(?:/(\d+))?", rest)
        assert match is not None  # _check let only the endpoints above through
        kind, iid, note_id = match.group(1), int(match.group(2)), match.group(3)
        notes = self.notes if kind == "merge_requests" else self.issue_notes
        if iid not in notes:
            return 404, {}, {"message": "404 Not found"}
        if method == "GET":
            items, page, last = _page(notes[iid], query, 20, 100)
            extra = {
                "X-Page": str(page),
                "X-Total-Pages": str(last),
                "X-Next-Page": str(page + 1) if page < last else "",
            }
            return 200, {**_link(self.api_url, path, query, page, last), **extra}, items
        if method == "POST":
            return 201, {}, self.add_note(iid, body["body"], user, notes=notes)
        for note in notes[iid]:
            if str(note["id"]) == note_id:
                if note["author"]["username"] != user:
                    return 403, {}, {"message": "403 Forbidden"}
                note["body"] = body["body"]
                return 200, {}, note
        return 404, {}, {"message": "404 Not found"}


def _bitbucket_error(message: str, **detail: object) -> dict[str, Any]:
    """Bitbucket's error body: `{"type": "error", "error": {"message": ..., "detail": ...}}`."""
    error: dict[str, Any] = {"message": message}
    if detail:
        error["detail"] = detail
    return {"type": "error", "error": error}


def _bitbucket_spec() -> dict[str, Any]:
    """The extract of Bitbucket Cloud's published API description (tests/forges/specs/)."""
    from pathlib import Path

    spec: dict[str, Any] = json.loads(
        (Path(__file__).parent / "specs" / "bitbucket.json").read_text(encoding="utf-8")
    )
    return spec


# API token scopes (`write:repository:bitbucket`) as the access tokens' (`repository:write`).
def _scope(name: str) -> str:
    parts = name.split(":")
    if len(parts) == 3 and parts[2] == "bitbucket":
        return parts[1] if parts[0] == "read" else f"{parts[1]}:{parts[0]}"
    return name


def _implied(scopes: frozenset[str]) -> set[str]:
    """A write scope gives its read; pull requests give the repository (Bitbucket's rules)."""
    have = {_scope(s) for s in scopes}
    have |= {s.split(":")[0] for s in have if s.endswith((":write", ":admin"))}
    if "pullrequest" in have:
        have.add("repository")
    return have


@dataclass
class BitbucketToken:
    account: str  # the comments' author (an access token's app user, or the API token's owner)
    scopes: frozenset[str] = frozenset(
        {"repository", "repository:write", "pullrequest", "pullrequest:write"}
    )
    # An Atlassian API token: valid only as Basic `email:token`. None: an access token,
    # valid only as Bearer, which cannot have the issue or account scopes.
    email: str | None = None


class BitbucketStandIn(StandIn):
    """Bitbucket Cloud 2.0: comments on pull requests, commits and issues (paginated by
    `next` in the JSON), pull requests, build statuses and the repository's Downloads.

    Strict: every request is checked against the extract of Bitbucket's published API
    description (tests/forges/specs/bitbucket.json) before it is served: the operation,
    its query parameters, its body (required fields, types, enums, the key's length), the
    auth scheme of the token's kind and the scopes. A request that breaks it gets
    Bitbucket's 400 (or 401/403/404/405) and is recorded in `violations`.
    """

    prefix = "/2.0"

    def __init__(self, *, repo: str = "team/models") -> None:
        self.repo = repo
        self.spec = _bitbucket_spec()
        self.tokens = {
            "bb-token": BitbucketToken("{bot-account}"),
            "api-token": BitbucketToken(
                "{dev-account}",
                frozenset(
                    {
                        "read:repository:bitbucket",
                        "write:repository:bitbucket",
                        "read:pullrequest:bitbucket",
                        "write:pullrequest:bitbucket",
                        "read:issue:bitbucket",
                        "write:issue:bitbucket",
                    }
                ),
                email="dev@example.com",
            ),
        }
        self.violations: list[str] = []
        self.pulls: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}  # pull request id -> comments
        self.commit_comments: dict[str, list[dict[str, Any]]] = {}
        self.issue_comments: dict[int, list[dict[str, Any]]] = {}
        self.issue_tracker = True
        self.statuses: dict[str, dict[str, dict[str, Any]]] = {}
        self.downloads: dict[str, bytes] = {}  # file name -> content (same name: replaced)
        super().__init__()

    def add_pull(self, pr_id: int, *, source: str | None = None, head: str = "a" * 40) -> None:
        """A pull request from `source` (a fork's full name; default: this repository)."""
        self.pulls[pr_id] = {
            "id": pr_id,
            "state": "OPEN",
            "source": {
                "branch": {"name": "feature"},
                "commit": {"hash": head[:12]},
                "repository": {"full_name": source or self.repo, "type": "repository"},
            },
            "destination": {
                "branch": {"name": "main"},
                "repository": {"full_name": self.repo, "type": "repository"},
            },
        }
        self.comments.setdefault(pr_id, [])

    def add_issue(self, issue_id: int) -> None:
        self.issue_comments.setdefault(issue_id, [])

    def add_comment(self, pr_id: int, raw: str, account: str, kind: str = "user") -> dict[str, Any]:
        """A comment by `account`: a person ("user") or an access token ("app_user")."""
        thread = self.comments.setdefault(pr_id, [])
        return self._new_comment(thread, raw, account, "pr", kind)

    def add_commit_comment(self, sha: str, raw: str, account: str) -> dict[str, Any]:
        thread = self.commit_comments.setdefault(sha, [])
        return self._new_comment(thread, raw, account, "commit", "user")

    def _new_comment(
        self, thread: list[dict[str, Any]], raw: str, account: str, where: str, kind: str
    ) -> dict[str, Any]:
        comment_id = self.new_id()
        page = {"pr": "pull-requests", "commit": "commits", "issue": "issues"}[where]
        comment = {
            "id": comment_id,
            "type": f"{where}_comment".replace("pr_", "pullrequest_"),
            "content": {"raw": raw, "markup": "markdown"},
            "user": {"type": kind, "account_id": account},
            "deleted": False,
            "links": {
                "html": {"href": f"https://bitbucket.org/{self.repo}/{page}/x#comment-{comment_id}"}
            },
        }
        thread.append(comment)
        return comment

    # -- the published description ---------------------------------------------------

    def _operation(self, method: str, path: str) -> tuple[str, dict[str, Any]] | Answer:
        """The extract's operation for this request, or the answer Bitbucket gives."""
        for template, operations in self.spec["paths"].items():
            pattern = re.sub(r"\{[a-z_]+\}", "[^/]+", template)  # only letters and slashes
            if re.fullmatch(pattern, path):
                operation = operations.get(method.lower())
                if operation is None:
                    return self._broken(405, f"{method} {template} is not in the API description")
                return template, operation
        return self._broken(404, f"{method} {path}: no such resource in the API description")

    def _broken(self, status: int, message: str) -> Answer:
        self.violations.append(message)
        return status, {}, _bitbucket_error(message)

    def _authenticate(self, headers: Any) -> BitbucketToken | Answer:
        """The token, sent with the scheme of its kind; else Bitbucket's 401."""
        import base64

        scheme, _, credential = (headers.get("Authorization") or "").partition(" ")
        user, secret = None, credential
        if scheme == "Basic":
            user, _, secret = base64.b64decode(credential).decode().partition(":")
        token = self.tokens.get(secret) if scheme in ("Bearer", "Basic") else None
        if token is None or token.email != user:
            if token is not None:  # a real token, sent with another kind's scheme
                self.violations.append(f"{scheme} auth for a token that takes another scheme")
            message = "Token is invalid, expired, or not supported for this endpoint."
            return 401, {}, _bitbucket_error(message)
        return token

    def _check(
        self, method: str, path: str, query: dict[str, str], headers: Any, body: Any
    ) -> BitbucketToken | Answer:
        """The token when the request is one the description allows; else the answer."""
        found = self._operation(method, path)
        if len(found) == 3:
            return found
        template, operation = found
        token = self._authenticate(headers)
        if not isinstance(token, BitbucketToken):
            return token
        params = [p for p in operation["parameters"] if p["in"] == "query"]
        if method == "GET" and template.endswith("/comments"):
            params += self.spec["x-mlci-pagination"]["parameters"]
        allowed = {p["name"]: p["schema"] for p in params}
        for name, value in query.items():
            problem = _parameter_problem(allowed.get(name), value)
            if problem:
                return self._broken(400, f"Invalid {name}: {problem}")
        problem = self._body_problem(operation, headers, body)
        if problem:
            return self._broken(400, problem)
        (required,) = [s["oauth2"] for s in operation["security"] if "oauth2" in s]
        missing = [s for s in required if s not in _implied(token.scopes)]
        if missing:
            return (
                403,
                {},
                _bitbucket_error(
                    "Your credentials lack one or more required privilege scopes.",
                    required=missing,
                    granted=sorted(token.scopes),
                ),
            )
        return token

    def _body_problem(self, operation: dict[str, Any], headers: Any, body: Any) -> str | None:
        kind = headers.get("Content-Type") or ""
        if "requestBody" not in operation:
            if body is None or kind.startswith("multipart/form-data"):
                return None  # Downloads: a form with the files, which the swagger does not model
            return "this operation takes no body"
        if not isinstance(body, dict) or "json" not in kind:
            return "the body must be a JSON object"
        name = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        name = name.rsplit("/", 1)[1]
        limits = {
            field.split(".", 1)[1]: limit["maxLength"]
            for field, limit in self.spec["x-mlci-limits"].items()
            if field.startswith(f"{name}.") and "maxLength" in limit
        }
        return _schema_problem(self.spec["components"]["schemas"][name], body, "", limits)

    # -- serving ----------------------------------------------------------------------

    def _thread(self, rest: str) -> tuple[list[dict[str, Any]] | Answer, str, str | None] | None:
        """The comments a `.../comments[/id]` path names, or the 404 for it."""
        match = re.fullmatch(
            r"/(pullrequests|issues|commit)/([0-9a-f]{40}|\d+)/comments(?:/(\d+))?", rest
        )
        if match is None:
            return None
        kind, key, comment_id = match.groups()
        if kind == "commit":
            return self.commit_comments.setdefault(key, []), "commit", comment_id
        if kind == "issues" and not self.issue_tracker:
            return (404, {}, _bitbucket_error("Repository has no issue tracker.")), "issue", None
        threads = self.comments if kind == "pullrequests" else self.issue_comments
        if int(key) not in threads:
            thing = "Pull request" if kind == "pullrequests" else "Issue"
            return (404, {}, _bitbucket_error(f"{thing} not found")), kind, None
        return threads[int(key)], "pr" if kind == "pullrequests" else "issue", comment_id

    def route(
        self, method: str, path: str, query: dict[str, str], headers: Any, body: Any
    ) -> Answer:
        token = self._check(method, path, query, headers, body)
        if not isinstance(token, BitbucketToken):
            return token
        base = f"/repositories/{self.repo}"
        if not path.startswith(base + "/") and path != base:
            return 404, {}, _bitbucket_error("Repository not found")
        rest = path[len(base) :]
        if rest == "" and method == "GET":
            return 200, {}, {"full_name": self.repo}
        match = re.fullmatch(r"/pullrequests/(\d+)", rest)
        if match and method == "GET":
            pull = self.pulls.get(int(match.group(1)))
            if pull is None:
                return 404, {}, _bitbucket_error("Pull request not found")
            return 200, {}, pull
        found = self._thread(rest)
        if found is not None:
            thread, where, comment_id = found
            if not isinstance(thread, list):
                return thread
            return self._comments(method, path, query, body, thread, where, comment_id, token)
        if rest == "/downloads" and method == "POST":
            name, data = _multipart_named_file(body, "files")
            self.downloads[name] = data  # "an existing file will be replaced"
            return 201, {}, None
        match = re.fullmatch(r"/commit/([0-9a-f]{40})/statuses/build", rest)
        if match and method == "POST":
            # "If the specified key already exists, the existing status object will be
            # overwritten."
            status = {**body, "type": "build"}
            self.statuses.setdefault(match.group(1), {})[body["key"]] = status
            return 201, {}, status
        return 404, {}, _bitbucket_error("Not found")

    def _comments(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        body: Any,
        thread: list[dict[str, Any]],
        where: str,
        comment_id: str | None,
        token: BitbucketToken,
    ) -> Answer:
        if method == "GET" and comment_id is None:
            size = int(query.get("pagelen") or 10)
            page = int(query.get("page") or 1)
            data: dict[str, Any] = {
                "values": thread[(page - 1) * size : page * size],
                "pagelen": size,
                "page": page,
                "size": len(thread),
            }
            if page * size < len(thread):
                data["next"] = f"{self.api_url}{path}?" + urllib.parse.urlencode(
                    {**query, "page": page + 1}
                )
            return 200, {}, data
        kind = "user" if token.email else "app_user"
        if method == "POST" and comment_id is None:
            raw = body["content"]["raw"]
            return 201, {}, self._new_comment(thread, raw, token.account, where, kind)
        if method == "PUT" and comment_id is not None:
            for comment in thread:
                if str(comment["id"]) == comment_id:
                    if comment["user"]["account_id"] != token.account:
                        return 403, {}, _bitbucket_error("Forbidden")
                    comment["content"]["raw"] = body["content"]["raw"]
                    return 200, {}, comment
        return 404, {}, _bitbucket_error("Comment not found")


def _parameter_problem(schema: dict[str, Any] | None, value: str) -> str | None:
    """What is wrong with a query parameter's value for its schema (None: nothing)."""
    if schema is None:
        return "not a parameter of this operation"
    if schema.get("type") != "integer":
        return None
    if not re.fullmatch(r"-?\d+", value):
        return f"{value!r} is not an integer"
    number = int(value)
    if number < schema.get("minimum", number) or number > schema.get("maximum", number):
        return f"{number} is outside {schema.get('minimum')}..{schema.get('maximum')}"
    return None


_JSON_TYPES = {"string": str, "integer": int, "boolean": bool, "object": dict}


def _schema_problem(
    schema: dict[str, Any], value: Any, where: str, limits: dict[str, int]
) -> str | None:
    """What is wrong with `value` for an extracted schema: type, enum, required fields,
    unknown fields where it allows none, and the lengths in `limits` (None: nothing)."""
    kind = _JSON_TYPES.get(schema.get("type", "object"), object)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        return f"{where or 'body'}: expected {schema.get('type')}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{where}: {value!r} is not one of {', '.join(schema['enum'])}"
    if isinstance(value, str) and where in limits and len(value) > limits[where]:
        return f"{where}: ensure this value has at most {limits[where]} characters"
    if not isinstance(value, dict):
        return None
    properties = schema.get("properties", {})
    for name in schema.get("required", []):
        if name not in value:
            return f"{where + '.' if where else ''}{name}: this field is required"
    for name, item in value.items():
        path = f"{where}.{name}" if where else name
        if name not in properties:
            if schema.get("additionalProperties", True) is False:
                return f"{path}: unknown field"
            continue
        problem = _schema_problem(properties[name], item, path, limits)
        if problem:
            return problem
    return None


Sleeper = Callable[[float], None]
