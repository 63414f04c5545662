"""Where reports are published: forges behind one Protocol (`base.Forge`).

`open_forge` picks the forge from the CI context and the environment alone: each forge
module's own `open_forge` reads its token and spots forks. `check_access` answers, with
one read, whether publishing will be allowed (for `mlci doctor`). The forge modules are
imported lazily: they load the HTTP client.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from mlci.errors import ExternalError
from mlci.forges.base import TOKEN_VARIABLES, ForgeChoice, HttpFactory, Opener, Opening
from mlci.secrets import secret_values

if TYPE_CHECKING:
    from mlci.ci import CiContext

__all__ = ["TOKEN_VARIABLES", "ForgeChoice", "HttpFactory", "check_access", "open_forge"]


def _github() -> Opener:
    from mlci.forges.github import open_forge

    return open_forge


def _gitlab() -> Opener:
    from mlci.forges.gitlab import open_forge

    return open_forge


def _bitbucket() -> Opener:
    from mlci.forges.bitbucket import open_forge

    return open_forge


# `context.ci` -> the variable that names the repository, and the module that opens its
# forge (GitHub's serves Gitea too).
_OPENERS: dict[str, tuple[str, Callable[[], Opener]]] = {
    "github": ("GITHUB_REPOSITORY", _github),
    "gitea": ("GITHUB_REPOSITORY", _github),
    "gitlab": ("CI_PROJECT_ID", _gitlab),
    "bitbucket": ("BITBUCKET_REPO_FULL_NAME", _bitbucket),
}


def open_forge(
    context: CiContext,
    env: Mapping[str, str],
    *,
    needed: dict[str, str] | None = None,
    max_wait_s: float = 120.0,
    http_factory: HttpFactory | None = None,
) -> ForgeChoice:
    """The remote forge for `context`, authenticated from `env`.

    Without a token, or for a pull request from a fork (whose token is read-only), the
    ForgeChoice has no forge and a `skip` line that says what to do: the job summary
    and the report files are still written, so a first CI setup without a token works.
    """
    if context.ci not in _OPENERS:
        return ForgeChoice(None, skip=None)
    variable, opener = _OPENERS[context.ci]
    if not context.repository:
        return ForgeChoice(
            None, skip=f"no {variable} in the environment: nothing to publish to", no_token=True
        )
    from mlci.http import HttpClient

    # No secret of the job's goes out in a body (comments, statuses, check runs).
    make = functools.partial(http_factory or HttpClient, masks=secret_values(env))
    return opener()(Opening(context, env, make, max_wait_s, needed))


def check_access(
    context: CiContext, env: Mapping[str, str], *, http_factory: HttpFactory | None = None
) -> list[tuple[bool, str]]:
    """Whether this build may publish: (ok, message) lines, from at most one or two reads.

    For `mlci doctor`. Never raises for a forge's refusal; each problem is a line that
    names the fix.
    """
    if context.ci == "local":
        from mlci.forges.local import OUTSIDE_CI

        return [(True, OUTSIDE_CI)]
    try:
        choice = open_forge(context, env, max_wait_s=10.0, http_factory=http_factory)
    except ExternalError as exc:
        return [(False, exc.message)]
    if choice.forge is None:
        ok = not (choice.read_only or choice.no_token)
        return [(ok, choice.skip or f"{context.ci}: nothing to publish to")]
    return choice.forge.check_access()
