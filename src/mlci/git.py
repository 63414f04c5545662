"""The only place that runs git."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from pathlib import Path

from mlci.errors import ExternalError, UsageError


def run_git(*args: str, cwd: Path) -> str:
    """Run git and return its stdout without the trailing newline."""
    if shutil.which("git") is None:
        raise ExternalError("git is not installed or not on PATH; install git and run again")
    completed = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        detail = completed.stderr.strip().splitlines()
        raise ExternalError(
            f"`git {' '.join(args)}` failed in {cwd}: {detail[-1] if detail else 'no message'}"
        )
    return completed.stdout.rstrip("\n")


def repo_root(start: Path) -> Path:
    """The top folder of the git work tree that holds `start`."""
    try:
        return Path(run_git("rev-parse", "--show-toplevel", cwd=start))
    except ExternalError as exc:
        if "not a git repository" in exc.message:
            raise UsageError(
                f"{start} is not inside a git repository; mlci records the commit of every "
                f"model, so run `git init` and commit your project first"
            ) from None
        raise


def head_sha(root: Path) -> str | None:
    """The checked-out commit, or None in a repository with no commit yet."""
    try:
        return run_git("rev-parse", "--verify", "--quiet", "HEAD", cwd=root)
    except ExternalError:
        return None


def current_branch(root: Path) -> str | None:
    """The checked-out branch, or None on a detached HEAD."""
    try:
        return run_git("symbolic-ref", "--quiet", "--short", "HEAD", cwd=root)
    except ExternalError:
        return None


def default_branch(root: Path) -> tuple[str, str] | None:
    """The repository's default branch and where it comes from: origin's HEAD (what a
    clone checks out), else the checked-out branch; None outside git or on a detached HEAD."""
    try:
        remote = run_git("symbolic-ref", "--quiet", "--short", "refs/remotes/origin/HEAD", cwd=root)
    except ExternalError:
        remote = ""
    if remote.startswith("origin/"):
        return remote.removeprefix("origin/"), "origin/HEAD"
    branch = current_branch(root)
    return (branch, "the checked-out branch") if branch else None


def is_dirty(root: Path) -> bool:
    """True when tracked files differ from the commit."""
    return run_git("status", "--porcelain", "--untracked-files=no", cwd=root) != ""


def changed_files(root: Path) -> list[str]:
    """The tracked files under `root` that differ from HEAD, staged or not, relative to `root`."""
    listed = run_git("diff", "--name-only", "--no-renames", "--relative", "-z", "HEAD", cwd=root)
    return sorted({name for name in listed.split("\0") if name})


# -- writing: used by `mlci demo` and the tests' repositories ------------------------------

_IDENTITY = ("-c", "user.name=mlci", "-c", "user.email=mlci@localhost.invalid")


def init_repo(root: Path, *, branch: str = "main") -> None:
    root.mkdir(parents=True, exist_ok=True)
    run_git("init", "--quiet", f"--initial-branch={branch}", str(root), cwd=root)


def commit_all(root: Path, message: str) -> str:
    """Stage everything and commit; returns the new commit's sha."""
    run_git("add", "--all", cwd=root)
    run_git(*_IDENTITY, "commit", "--quiet", "--no-verify", "-m", message, cwd=root)
    return run_git("rev-parse", "HEAD", cwd=root)


def switch(root: Path, branch: str, *, create: bool = False) -> None:
    run_git("switch", "--quiet", *(["-c"] if create else []), branch, cwd=root)


def merge(root: Path, branch: str, message: str) -> str:
    run_git(*_IDENTITY, "merge", "--quiet", "--no-ff", "-m", message, branch, cwd=root)
    return run_git("rev-parse", "HEAD", cwd=root)


# -- reading other commits: the git baseline ------------------------------------------------


def is_shallow(root: Path) -> bool:
    return run_git("rev-parse", "--is-shallow-repository", cwd=root) == "true"


def resolve_commit(root: Path, ref: str) -> str | None:
    """The commit `ref` names, or None when it does not exist here."""
    try:
        return run_git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", cwd=root) or None
    except ExternalError:
        return None


def merge_base(root: Path, a: str, b: str) -> str | None:
    try:
        return run_git("merge-base", a, b, cwd=root) or None
    except ExternalError:
        return None


def is_ancestor(root: Path, older: str, newer: str) -> bool | None:
    """Whether `older` is an ancestor of `newer`; None when git cannot tell (missing commit)."""
    completed = subprocess.run(
        ["git", "merge-base", "--is-ancestor", older, newer],
        cwd=root,
        capture_output=True,
        check=False,
    )
    return {0: True, 1: False}.get(completed.returncode)


_FETCH_TIMEOUT_S = 30


def fetch_commit(root: Path, sha: str, *, timeout_s: float = _FETCH_TIMEOUT_S) -> bool:
    """Fetch the commit `sha` (a full hex id) from origin, within `timeout_s` and without
    asking for credentials; whether it is here afterwards."""
    if not re.fullmatch(r"[0-9a-f]{40}|[0-9a-f]{64}", sha):
        return False  # read from the registry: never handed to git as an option
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    with contextlib.suppress(subprocess.TimeoutExpired, OSError):
        subprocess.run(
            ["git", "fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "origin", sha],
            cwd=root,
            capture_output=True,
            check=False,
            timeout=timeout_s,
            env=env,
        )
    return resolve_commit(root, sha) is not None


def prefix(root: Path) -> str:
    """The path of `root` inside its repository ("" at the top, "sub/dir/" below it)."""
    return run_git("rev-parse", "--show-prefix", cwd=root)


def list_files(root: Path, *, commit: str | None = None) -> list[str]:
    """The files under `root`, relative to it: committed at `commit`, or else in the work
    tree (tracked, and untracked but not ignored)."""
    if commit is None:
        listed = run_git("ls-files", "-z", "--cached", "--others", "--exclude-standard", cwd=root)
    else:
        listed = run_git("ls-tree", "-r", "-z", "--name-only", commit, "--", ".", cwd=root)
    return sorted({name for name in listed.split("\0") if name})


def read_file_at(root: Path, commit: str, path: str) -> bytes | None:
    """The content of `path` (relative to the repository's top) at `commit`, or None."""
    # `git show REV:PATH` reads PATH from the top of the tree whatever the working folder.
    completed = subprocess.run(
        ["git", "show", f"{commit}:{path}"], cwd=root, capture_output=True, check=False
    )
    if completed.returncode == 0:
        return completed.stdout
    error = completed.stderr.decode("utf-8", errors="replace")
    if "does not exist in" in error or "exists on disk, but not in" in error:
        return None
    raise ExternalError(f"`git show {commit}:{path}` failed: {error.strip() or 'no message'}")
