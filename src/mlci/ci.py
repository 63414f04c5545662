"""Where this run happens: the CI system, the branch, the commit, the event.

Read from the environment alone (plus git for local runs). Promotion depends on it, so
a pull-request build is never mistaken for a build of the main branch.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mlci import git
from mlci.errors import UsageError

Event = Literal["push", "pull_request", "local", "other"]


@dataclass(frozen=True)
class CiContext:
    ci: str  # "github" (also GHES), "gitea" (also Forgejo), "gitlab", "bitbucket", "local"
    event: Event
    branch: str | None  # the branch built (a PR's head branch for pull requests)
    sha: str | None
    dirty: bool = False  # tracked files changed since the commit (outside CI)
    changed: tuple[str, ...] = ()  # which, of those the model depends on (mlci.pipeline.preflight)
    pr_number: int | None = None
    base_ref: str | None = None
    run_url: str | None = None
    # Where the report is published (see mlci.forges): the forge's REST API, the
    # repository as that API names it, the pull request's head commit (statuses go
    # there, not on a test-merge commit) and whether the pull request comes from a fork.
    api_url: str | None = None
    repository: str | None = None
    head_sha: str | None = None
    fork: bool = False
    # Where people find the full report.html: MLCI_REPORT_URL, else the CI's artifacts.
    report_url: str | None = None

    def pull_request(self, number: int | None = None) -> str:
        """A pull request in this forge's words: "merge request !3" on GitLab, "pull
        request #3" elsewhere; without a number, just the words."""
        words, sign = ("merge request", "!") if self.ci == "gitlab" else ("pull request", "#")
        return words if number is None else f"{words} {sign}{number}"

    def promotes(self, promote_on: tuple[str, ...]) -> tuple[bool, str]:
        """Whether a passing model from this build may be promoted, and why (not)."""
        if self.event == "pull_request":
            return False, "pull-request builds never promote; the merge to the main branch does"
        if self.event == "other":
            return False, "only pushes to the configured branches promote"
        if self.branch is None:
            return False, "detached HEAD: no branch to check against registry.promote_on"
        if self.branch not in promote_on:
            listed = ", ".join(promote_on)
            return False, f"branch {self.branch} is not in registry.promote_on ({listed})"
        return True, f"branch {self.branch} is in registry.promote_on"


def detect_context(root: Path, env: Mapping[str, str], *, commit: bool = True) -> CiContext:
    """The context of this build, from CI variables or, outside CI, from git. Without
    `commit` (`mlci gate` on files: nothing it does needs one), a folder outside git is a
    local build with no commit instead of an error."""
    context = None
    if env.get("GITHUB_ACTIONS") == "true":
        context = _github(env, root)
    elif env.get("GITLAB_CI") == "true":
        context = _gitlab(env, root)
    elif env.get("BITBUCKET_BUILD_NUMBER"):
        context = _bitbucket(env, root)
    if context is not None:
        return dataclasses.replace(context, report_url=_report_url(context, env))
    try:
        git.repo_root(root)  # outside CI, a git repository is required: it gives the lineage
    except UsageError:
        if commit:
            raise
        return CiContext(ci="local", event="local", branch=None, sha=None)
    return CiContext(
        ci="local",
        event="local",
        branch=git.current_branch(root),
        sha=git.head_sha(root),
        dirty=git.is_dirty(root) if git.head_sha(root) else False,
    )


def _report_url(context: CiContext, env: Mapping[str, str]) -> str | None:
    """The full report's address: MLCI_REPORT_URL, GitLab's artifact file, or the run page.

    GitHub, Gitea and Bitbucket list a run's artifacts on its page; the artifact's own
    address is only known after the upload step, which runs after mlci.
    """
    given = env.get("MLCI_REPORT_URL", "")
    if given.startswith(("https://", "http://")):
        return given
    job = env.get("CI_JOB_URL", "")
    if context.ci == "gitlab" and job.startswith(("https://", "http://")):
        return f"{job}/artifacts/file/.mlci/out/report.html"
    return context.run_url


def _github(env: Mapping[str, str], root: Path) -> CiContext:
    name = env.get("GITHUB_EVENT_NAME", "")
    event: Event = "other"
    if name in ("pull_request", "pull_request_target"):
        event = "pull_request"
    elif name == "push" and env.get("GITHUB_REF_TYPE", "branch") == "branch":
        event = "push"
    branch = env.get("GITHUB_HEAD_REF") if event == "pull_request" else env.get("GITHUB_REF_NAME")
    server = env.get("GITHUB_SERVER_URL", "https://github.com")
    run_url = None
    if env.get("GITHUB_REPOSITORY") and env.get("GITHUB_RUN_ID"):
        run_url = f"{server}/{env['GITHUB_REPOSITORY']}/actions/runs/{env['GITHUB_RUN_ID']}"
    # Pull-request builds check out refs/pull/<number>/merge.
    pr = re.fullmatch(r"refs/pull/(\d+)/(?:merge|head)", env.get("GITHUB_REF", ""))
    number = int(pr.group(1)) if pr and event == "pull_request" else None
    sha = env.get("GITHUB_SHA") or git.head_sha(root)
    payload = _event_payload(env.get("GITHUB_EVENT_PATH"))
    head_sha, fork = sha, False
    pull = payload.get("pull_request")
    if isinstance(pull, dict):
        number = _int(pull.get("number")) or _int(payload.get("number")) or number
        head, base = _dict(pull.get("head")), _dict(pull.get("base"))
        head_sha = _text(head.get("sha")) or sha
        head_repo = _text(_dict(head.get("repo")).get("full_name"))
        base_repo = _text(_dict(base.get("repo")).get("full_name"))
        # A deleted fork has no head.repo: still a fork (and still a read-only token).
        fork = head_repo != base_repo if base_repo else False
    run = payload.get("workflow_run")
    if isinstance(run, dict) and event == "other":
        # The privileged half of the two-workflow pattern for forks (docs/forges.md).
        pulls = run.get("pull_requests") or []
        if pulls and isinstance(pulls[0], dict):
            number = _int(pulls[0].get("number"))
        head_sha = _text(run.get("head_sha")) or head_sha
    api_url = env.get("GITHUB_API_URL") or "https://api.github.com"
    gitea = any(env.get(k) == "true" for k in ("GITEA_ACTIONS", "FORGEJO_ACTIONS")) or (
        api_url.rstrip("/").endswith("/api/v1")
    )
    return CiContext(
        ci="gitea" if gitea else "github",
        event=event,
        branch=branch or None,
        sha=sha,
        pr_number=number,
        base_ref=env.get("GITHUB_BASE_REF") or None,
        run_url=run_url,
        api_url=api_url,
        repository=env.get("GITHUB_REPOSITORY") or None,
        head_sha=head_sha,
        fork=fork,
    )


def _event_payload(path: str | None) -> dict[str, object]:
    """The webhook payload Actions saves for the job; {} when absent or unreadable."""
    if not path:
        return {}
    try:
        with open(path, encoding="utf-8") as handle:  # noqa: PTH123
            data = json.loads(handle.read(20_000_000))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _dict(value: object) -> dict[str, object]:
    return value if isinstance(value, dict) else {}


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _gitlab(env: Mapping[str, str], root: Path) -> CiContext:
    source = env.get("CI_PIPELINE_SOURCE", "")
    is_mr = bool(env.get("CI_MERGE_REQUEST_IID"))
    event: Event = "pull_request" if is_mr else "push" if source == "push" else "other"
    branch = (
        env.get("CI_MERGE_REQUEST_SOURCE_BRANCH_NAME") if is_mr else env.get("CI_COMMIT_BRANCH")
    )
    iid = env.get("CI_MERGE_REQUEST_IID", "")
    return CiContext(
        ci="gitlab",
        event=event,
        branch=branch or None,
        sha=env.get("CI_COMMIT_SHA") or git.head_sha(root),
        pr_number=int(iid) if iid.isdigit() else None,
        base_ref=env.get("CI_MERGE_REQUEST_TARGET_BRANCH_NAME") or None,
        run_url=env.get("CI_PIPELINE_URL") or None,
        api_url=env.get("CI_API_V4_URL") or None,
        repository=env.get("CI_MERGE_REQUEST_PROJECT_ID") or env.get("CI_PROJECT_ID") or None,
        # In merged-results pipelines CI_COMMIT_SHA is the merge; the source sha is the head.
        head_sha=env.get("CI_MERGE_REQUEST_SOURCE_BRANCH_SHA") or env.get("CI_COMMIT_SHA") or None,
        fork=bool(
            env.get("CI_MERGE_REQUEST_SOURCE_PROJECT_ID")
            and env.get("CI_MERGE_REQUEST_SOURCE_PROJECT_ID")
            != env.get("CI_MERGE_REQUEST_PROJECT_ID")
        ),
    )


def _bitbucket(env: Mapping[str, str], root: Path) -> CiContext:
    pr = env.get("BITBUCKET_PR_ID", "")
    event: Event = (
        "pull_request" if pr.isdigit() else "push" if env.get("BITBUCKET_BRANCH") else "other"
    )
    repository = env.get("BITBUCKET_REPO_FULL_NAME") or None
    run_url = None
    if repository:
        run_url = (
            f"https://bitbucket.org/{repository}/pipelines/results/{env['BITBUCKET_BUILD_NUMBER']}"
        )
    sha = env.get("BITBUCKET_COMMIT") or git.head_sha(root)
    return CiContext(
        ci="bitbucket",
        event=event,
        branch=env.get("BITBUCKET_BRANCH") or None,
        sha=sha,
        pr_number=int(pr) if pr.isdigit() else None,
        base_ref=env.get("BITBUCKET_PR_DESTINATION_BRANCH") or None,
        run_url=run_url,
        # Not a Bitbucket variable: mlci's own, so tests and proxies can point elsewhere.
        api_url=env.get("BITBUCKET_API_URL") or "https://api.bitbucket.org/2.0",
        repository=repository,
        head_sha=sha,
    )
