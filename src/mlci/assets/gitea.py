"""`gitea`: attachments of the pull request on Gitea and Forgejo."""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING

from mlci.assets.base import multipart

if TYPE_CHECKING:
    from mlci.forges.github import GitHubForge


class GiteaAttachmentStore:
    """Attachments of the pull request on Gitea/Forgejo."""

    name = "gitea"

    def __init__(self, forge: GitHubForge) -> None:
        self.forge = forge

    def url_for(self, name: str, png: bytes, content_type: str = "image/png") -> str | None:
        body, form_type = multipart("attachment", name, png, content_type)
        query = urllib.parse.quote(name, safe="")
        path = f"{self.forge._repo_path}/issues/{self.forge.pr_number}/assets?name={query}"
        response = self.forge.http.request(
            "POST", path, data=body, content_type=form_type, idempotent=True
        )
        data = response.json()
        if response.status != 201 or not isinstance(data, dict):
            self.forge.fail(response, f"attach {name} to pull request #{self.forge.pr_number}")
        return str(data.get("browser_download_url"))
