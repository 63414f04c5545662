"""`gitlab`: GitLab project uploads."""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlci.assets.base import multipart

if TYPE_CHECKING:
    from mlci.forges.gitlab import GitLabForge


class GitLabUploadStore:
    """GitLab project uploads: `/uploads/<secret>/name.png`, shown to project members."""

    name = "gitlab"

    def __init__(self, forge: GitLabForge) -> None:
        self.forge = forge

    def url_for(self, name: str, png: bytes, content_type: str = "image/png") -> str | None:
        body, form_type = multipart("file", name, png, content_type)
        path = f"{self.forge._project_path}/uploads"
        response = self.forge.http.request(
            "POST", path, data=body, content_type=form_type, idempotent=True
        )
        data = response.json()
        if response.status != 201 or not isinstance(data, dict) or not data.get("url"):
            self.forge.fail(response, f"upload {name}")
        return str(data["url"])
