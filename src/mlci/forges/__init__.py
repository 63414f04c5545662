"""Where reports are published: forges behind one Protocol (`base.Forge`).

`open_forge` picks the forge from the CI context and the environment alone;
`check_access` answers, with one read, whether publishing will be allowed (for
`mlci doctor`). The modules behind them are imported lazily.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlci.errors import ExternalError

if TYPE_CHECKING:
    from mlci.ci import CiContext
    from mlci.forges.remote import RemoteForge
    from mlci.http import HttpClient

HttpFactory = Callable[..., "HttpClient"]

GITHUB_TOKEN_FIX = (
    "pass the token to the mlci step: `env: GITHUB_TOKEN: ${{ github.token }}`, with "
    "`permissions: {contents: read, pull-requests: write, statuses: write}` on the job"
)


@dataclass(frozen=True)
class ForgeChoice:
    """The forge to publish to, or why there is none (`skip` is one line for the log)."""

    forge: RemoteForge | None
    skip: str | None = None
    read_only: bool = False  # a fork's pull request: the token cannot write
    no_token: bool = False  # no token (or repository) in the environment: summary and files only


# The variables each forge's token is read from, in order of preference.
TOKEN_VARIABLES: dict[str, tuple[str, ...]] = {
    "github": ("GITHUB_TOKEN", "GH_TOKEN"),
    "gitea": ("GITEA_TOKEN", "FORGEJO_TOKEN", "GITHUB_TOKEN"),
    "gitlab": ("GITLAB_TOKEN",),  # CI_JOB_TOKEN, its fallback, can read but not post notes
    "bitbucket": ("BITBUCKET_TOKEN",),
}


def _token(env: Mapping[str, str], *names: str) -> tuple[str, str] | None:
    for name in names:
        if env.get(name):
            return name, env[name]
    return None


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
    from mlci.http import HttpClient

    make = http_factory or HttpClient
    variable = {"github": "GITHUB_REPOSITORY", "gitea": "GITHUB_REPOSITORY"}.get(
        context.ci,
        {"gitlab": "CI_PROJECT_ID", "bitbucket": "BITBUCKET_REPO_FULL_NAME"}.get(context.ci),
    )
    if variable and not context.repository:
        return ForgeChoice(
            None, skip=f"no {variable} in the environment: nothing to publish to", no_token=True
        )
    if context.ci in ("github", "gitea"):
        from mlci.forges.github import GitHubForge, graphql_url

        gitea = context.ci == "gitea"
        names = TOKEN_VARIABLES[context.ci]
        fork = context.fork and env.get("GITHUB_EVENT_NAME") == "pull_request"
        if fork:
            return _fork_choice(
                context.pr_number,
                ", so its token is read-only",
                "the job summary and .mlci/out/",
                "shows the two-workflow setup that comments on forks",
            )
        found = _token(env, *names)
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
        http = make(
            base_url=context.api_url or "https://api.github.com",
            headers=headers,
            secrets=(found[1],),
            max_wait_s=max_wait_s,
        )
        forge = GitHubForge(
            http,
            repository=context.repository or "",
            pr_number=context.pr_number,
            flavour="gitea" if gitea else "github",
            needed=needed,
            graphql_url=graphql_url(http.base_url, env.get("GITHUB_GRAPHQL_URL")),
        )
        return ForgeChoice(forge)
    if context.ci == "gitlab":
        from mlci.forges.gitlab import JOB_TOKEN_FIX, GitLabForge

        found = _token(env, *TOKEN_VARIABLES["gitlab"])
        job = env.get("CI_JOB_TOKEN")
        if found is None and context.fork:
            return ForgeChoice(
                None,
                skip=(
                    f"merge request !{context.pr_number} comes from a fork and no GITLAB_TOKEN "
                    "is set: no note or status (the report is in .mlci/out/ and the job artifacts)"
                ),
                read_only=True,
            )
        if found is None and not job:
            return ForgeChoice(
                None,
                skip=f"no note or status on GitLab: no GITLAB_TOKEN. {JOB_TOKEN_FIX}",
                no_token=True,
            )
        header = ("PRIVATE-TOKEN", found[1]) if found else ("JOB-TOKEN", job or "")
        http = make(
            base_url=context.api_url or "https://gitlab.com/api/v4",
            headers=dict([header]),
            secrets=(header[1],),
            max_wait_s=max_wait_s,
        )
        forge_gl = GitLabForge(
            http,
            project=context.repository or "",
            mr_iid=context.pr_number,
            job_token=found is None,
            web_url=env.get("CI_MERGE_REQUEST_PROJECT_URL") or env.get("CI_PROJECT_URL"),
        )
        return ForgeChoice(forge_gl)
    if context.ci == "bitbucket":
        from mlci.forges.bitbucket import TOKEN_FIX, BitbucketForge

        found = _token(env, *TOKEN_VARIABLES["bitbucket"])
        if found is None:
            return ForgeChoice(
                None,
                skip=f"no comment or status on Bitbucket: no BITBUCKET_TOKEN; {TOKEN_FIX}",
                no_token=True,
            )
        http = make(
            base_url=context.api_url or "https://api.bitbucket.org/2.0",
            headers={"Authorization": f"Bearer {found[1]}"},
            secrets=(found[1],),
            max_wait_s=max_wait_s,
        )
        repository = context.repository or ""
        forge_bb = BitbucketForge(http, repository=repository, pr_id=context.pr_number)
        # Pipelines say nothing of forks: the pull request itself names its source.
        fork_of = forge_bb.fork_of() if context.pr_number is not None else None
        if fork_of is not None:
            return _fork_choice(
                context.pr_number,
                f" ({fork_of}) and its code ran in this build, so BITBUCKET_TOKEN is not used",
                ".mlci/out/, which the step's `artifacts:` keeps",
                "says more",
            )
        return ForgeChoice(forge_bb)
    return ForgeChoice(None, skip=None)


def _fork_choice(number: int | None, why: str, where: str, docs: str) -> ForgeChoice:
    """No forge for a pull request from a fork: one line that says so, and where the report is."""
    return ForgeChoice(
        None,
        skip=(
            f"pull request #{number} comes from a fork{why}: no comment or status (the "
            f"report is in {where}; docs/forges.md#pull-requests-from-forks {docs})"
        ),
        read_only=True,
    )


def check_access(
    context: CiContext, env: Mapping[str, str], *, http_factory: HttpFactory | None = None
) -> list[tuple[bool, str]]:
    """Whether this build may publish: (ok, message) lines, from at most one or two reads.

    For `mlci doctor`. Never raises for a forge's refusal; each problem is a line that
    names the fix.
    """
    if context.ci == "local":
        return [(True, "outside CI: reports go to .mlci/out/ (comment.md, status.json)")]
    try:
        choice = open_forge(context, env, max_wait_s=10.0, http_factory=http_factory)
    except ExternalError as exc:
        return [(False, exc.message)]
    if choice.forge is None:
        ok = not (choice.read_only or choice.no_token)
        return [(ok, choice.skip or f"{context.ci}: nothing to publish to")]
    return choice.forge.check_access()
