"""Where the report's PNG plots go so the pull request comment can show them.

`inline` (the default) hosts nothing: the comment has tables and Mermaid charts only.
The others upload each PNG and the comment links it:

- `branch`: committed to a branch of the same repository through GitHub's contents API
  and linked relatively (`../blob/<commit>/<path>?raw=true`), the form GitHub documents
  for comments; it renders for whoever can read the repository, private ones included.
- `gitlab`: GitLab project uploads (`/uploads/<secret>/plot.png`), visible to members.
- `gitea`: Gitea/Forgejo attachments of the pull request.
- `bitbucket`: the repository's Downloads on Bitbucket Cloud, under a name made from the
  file's content, so an unchanged plot replaces itself instead of piling up.
- `s3`: an S3-compatible bucket (signed with SigV4 here, no SDK); linked through
  `publish.s3.public_url` when given, else a presigned URL valid for 7 days.

Never a third-party public host by default. `open_store` picks the store `publish.images`
names for a forge; each store is a module of this package.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from mlci.assets.base import AssetStore, InlineStore, content_name, multipart
from mlci.assets.bitbucket import BitbucketDownloadStore
from mlci.assets.branch import BranchStore
from mlci.assets.gitea import GiteaAttachmentStore
from mlci.assets.gitlab import GitLabUploadStore
from mlci.assets.s3 import PRESIGN_SECONDS, S3Credentials, S3Store

if TYPE_CHECKING:
    from mlci.config import PublishConfig
    from mlci.forges.base import Forge, HttpFactory

__all__ = [
    "PRESIGN_SECONDS",
    "AssetStore",
    "BitbucketDownloadStore",
    "BranchStore",
    "GitLabUploadStore",
    "GiteaAttachmentStore",
    "InlineStore",
    "S3Credentials",
    "S3Store",
    "content_name",
    "multipart",
    "open_store",
]


def open_store(
    settings: PublishConfig,
    env: Mapping[str, str],
    forge: Forge,
    *,
    folder: str,
    http_factory: HttpFactory | None = None,
) -> AssetStore:
    """The store `publish.images` names, for `forge`; ForgeError when it cannot serve it."""
    from mlci.forges.bitbucket import BitbucketForge
    from mlci.forges.github import GitHubForge
    from mlci.forges.gitlab import GitLabForge
    from mlci.http import ForgeError, HttpClient

    kind = settings.images
    if kind == "inline":
        return InlineStore()
    if kind == "branch" and isinstance(forge, GitHubForge) and forge.flavour == "github":
        return BranchStore(forge, branch=settings.branch, folder=folder)
    if kind == "gitea" and isinstance(forge, GitHubForge) and forge.flavour == "gitea":
        return GiteaAttachmentStore(forge)
    if kind == "gitlab" and isinstance(forge, GitLabForge):
        return GitLabUploadStore(forge)
    if kind == "bitbucket" and isinstance(forge, BitbucketForge):
        return BitbucketDownloadStore(forge)
    if kind == "s3" and settings.s3 is not None:
        credentials = S3Credentials.from_env(env, settings.s3.region)
        make = http_factory or HttpClient
        http = make(
            base_url=settings.s3.endpoint_url or "",
            secrets=tuple(s for s in (credentials.secret_key, credentials.session_token) if s),
            max_wait_s=settings.max_wait_seconds,
        )
        http.forge_name = "the S3 bucket"
        http.url_setting = "publish.s3.endpoint_url"
        return S3Store(settings.s3, credentials, folder=folder, http=http)
    where = {
        "branch": "GitHub and GHES",
        "gitlab": "GitLab",
        "gitea": "Gitea and Forgejo",
        "bitbucket": "Bitbucket Cloud",
    }
    raise ForgeError(
        f"publish.images: {kind} works on {where.get(kind, 'any forge')} only, not on "
        f"{forge.name}; the comment shows the plots as tables and charts instead"
    )
