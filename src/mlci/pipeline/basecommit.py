"""The commit of the base branch that a build is compared with, read from git.

A pull request's merge base with its base branch; a build of the base branch itself, the
commit before it. The git baseline reads its metrics there (mlci.pipeline.baseline), and a
pull request's rules come from the mlci.yaml there (mlci.pipeline.trust).

A branch the user names (`--baseline-ref`, `gate.base_ref`, or `registry.promote_on`'s
first) means what git resolves it to; `origin/<branch>` stands in only where there is no
such local branch (a CI checkout). A branch the CI names (`GITHUB_BASE_REF`…) is the
forge's: `origin/<branch>` first, since a local branch of that name in a CI checkout is
whatever an earlier job left there. Where both exist and differ, a note says which was used.
"""

from __future__ import annotations

from dataclasses import dataclass

from mlci import git
from mlci.ci import CiContext
from mlci.config import Config
from mlci.errors import UsageError


@dataclass(frozen=True)
class BaseCommit:
    """The commit to compare with (None on a first commit of the base branch), a label for
    the report (or why there is none), and a note when the branch's name was ambiguous."""

    commit: str | None
    label: str
    note: str | None = None


def base_commit(config: Config, context: CiContext, ref: str | None) -> BaseCommit:
    """The commit the git baseline compares with: `ref` (`--baseline-ref`), else
    `gate.base_ref`, else the CI's base branch, else `registry.promote_on`'s first."""
    named = ref or config.gate.base_ref
    if named is None and context.base_ref is not None:
        return _commit_of(config, context, context.base_ref, upstream=True, previous=True)
    branch = named or config.registry.promote_on[0]
    return _commit_of(config, context, branch, upstream=False, previous=ref is None)


def pull_request_base(config: Config, context: CiContext) -> BaseCommit:
    """The commit whose mlci.yaml judges a pull request: the CI's base branch, as the forge
    has it; only where the CI names none, the git baseline's."""
    if context.base_ref is None:
        return base_commit(config, context, None)
    return _commit_of(config, context, context.base_ref, upstream=True, previous=False)


def _commit_of(
    config: Config, context: CiContext, branch: str, *, upstream: bool, previous: bool
) -> BaseCommit:
    root = config.root
    if previous and context.branch == branch:
        # A build of the base branch itself: compare with the commit before it.
        parent = git.resolve_commit(root, "HEAD^")
        if parent is None:
            if git.is_shallow(root):
                raise UsageError(_shallow_fix("the previous commit is not in this shallow clone"))
            return BaseCommit(None, f"{branch} has no earlier commit")
        return BaseCommit(parent, f"{branch} before this commit ({parent[:8]})")
    names = (f"origin/{branch}", branch) if upstream else (branch, f"origin/{branch}")
    found = {name: git.resolve_commit(root, name) for name in names}
    for name, commit in found.items():
        if commit is None:
            continue
        base = git.merge_base(root, commit, "HEAD")
        if base is None:
            if git.is_shallow(root):
                raise UsageError(_shallow_fix(f"the merge base with {name} is missing"))
            raise UsageError(f"{name} and HEAD have no common commit to compare with")
        return BaseCommit(base, f"{name} at the merge base {base[:8]}", _ambiguity(found, name))
    if git.is_shallow(root):
        raise UsageError(_shallow_fix(f"the base branch {branch} was not fetched"))
    raise UsageError(
        f"the base branch {branch} is not in this repository; fetch it (git fetch origin "
        f"{branch}) or set gate.base_ref"
    )


def _ambiguity(found: dict[str, str | None], used: str) -> str | None:
    """A note when the other name also exists and points elsewhere."""
    other = next(name for name in found if name != used)
    mine, theirs = found[used] or "", found[other]
    if theirs is None or theirs == mine:
        return None
    why = "the CI's base branch" if used.startswith("origin/") else "as named"
    return (
        f"{used} ({mine[:8]}) and {other} ({theirs[:8]}) differ: compared with {used}, "
        f"{why} (--baseline-ref {other} compares with the other)."
    )


def _shallow_fix(problem: str) -> str:
    return (
        f"{problem}: this is a shallow clone; fetch the history, e.g. `fetch-depth: 0` on "
        f"actions/checkout (GitLab: GIT_DEPTH: 0), or `git fetch --unshallow`"
    )
