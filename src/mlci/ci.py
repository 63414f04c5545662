"""Where this run happens: the CI system, the branch, the commit, the event.

Read from the environment alone (plus git for local runs). Promotion depends on it, so
a pull-request build is never mistaken for a build of the main branch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mlci import git

Event = Literal["push", "pull_request", "local", "other"]


@dataclass(frozen=True)
class CiContext:
    ci: str  # "github", "gitlab", "local"
    event: Event
    branch: str | None  # the branch built (a PR's head branch for pull requests)
    sha: str | None
    dirty: bool = False
    pr_number: int | None = None
    base_ref: str | None = None
    run_url: str | None = None

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


def detect_context(root: Path, env: Mapping[str, str]) -> CiContext:
    """The context of this build, from CI variables or, outside CI, from git."""
    if env.get("GITHUB_ACTIONS") == "true":
        return _github(env, root)
    if env.get("GITLAB_CI") == "true":
        return _gitlab(env, root)
    git.repo_root(root)  # outside CI, a git repository is required: it gives the lineage
    return CiContext(
        ci="local",
        event="local",
        branch=git.current_branch(root),
        sha=git.head_sha(root),
        dirty=git.is_dirty(root) if git.head_sha(root) else False,
    )


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
    return CiContext(
        ci="github",
        event=event,
        branch=branch or None,
        sha=env.get("GITHUB_SHA") or git.head_sha(root),
        pr_number=int(pr.group(1)) if pr and event == "pull_request" else None,
        base_ref=env.get("GITHUB_BASE_REF") or None,
        run_url=run_url,
    )


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
    )
