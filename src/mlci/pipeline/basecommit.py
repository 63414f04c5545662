"""The commit of the base branch that a build is compared with, read from git.

A pull request's merge base with its base branch; a build of the base branch itself, the
commit before it. The git baseline reads its metrics there (mlci.pipeline.baseline), and a
pull request's rules come from the mlci.yaml there (mlci.pipeline.trust).
"""

from __future__ import annotations

from mlci import git
from mlci.ci import CiContext
from mlci.config import Config
from mlci.errors import UsageError


def base_commit(config: Config, context: CiContext, ref: str | None) -> tuple[str | None, str]:
    """The commit to compare with, and a label for the report; None (and why) when there
    is none: a first commit of the base branch."""
    root = config.root
    branch = ref or config.gate.base_ref or context.base_ref or config.registry.promote_on[0]
    if ref is None and context.branch == branch:
        # A build of the base branch itself: compare with the commit before it.
        parent = git.resolve_commit(root, "HEAD^")
        if parent is None:
            if git.is_shallow(root):
                raise UsageError(_shallow_fix("the previous commit is not in this shallow clone"))
            return None, f"{branch} has no earlier commit"
        return parent, f"{branch} before this commit ({parent[:8]})"
    for candidate in (f"origin/{branch}", branch):
        found = git.resolve_commit(root, candidate)
        if found is not None:
            base = git.merge_base(root, found, "HEAD")
            if base is None:
                if git.is_shallow(root):
                    raise UsageError(_shallow_fix(f"the merge base with {candidate} is missing"))
                raise UsageError(f"{candidate} and HEAD have no common commit to compare with")
            return base, f"{candidate} at the merge base {base[:8]}"
    if git.is_shallow(root):
        raise UsageError(_shallow_fix(f"the base branch {branch} was not fetched"))
    raise UsageError(
        f"the base branch {branch} is not in this repository; fetch it (git fetch origin "
        f"{branch}) or set gate.base_ref"
    )


def _shallow_fix(problem: str) -> str:
    return (
        f"{problem}: this is a shallow clone; fetch the history, e.g. `fetch-depth: 0` on "
        f"actions/checkout (GitLab: GIT_DEPTH: 0), or `git fetch --unshallow`"
    )
