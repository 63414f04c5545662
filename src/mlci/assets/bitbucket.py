"""`bitbucket`: the repository's Downloads on Bitbucket Cloud."""

from __future__ import annotations

import urllib.parse
from typing import TYPE_CHECKING

from mlci.assets.base import content_name, multipart

if TYPE_CHECKING:
    from mlci.forges.bitbucket import BitbucketForge


class BitbucketDownloadStore:
    """The repository's Downloads (Bitbucket Cloud): `bitbucket.org/{ws}/{repo}/downloads/{file}`.

    Downloads is one flat folder per repository, and an upload under an existing name
    replaces that file, so names are content-addressed: a rerun with the same plot
    replaces it, never adds a copy. In a private repository only people who can read
    it can open them.
    """

    name = "bitbucket"

    def __init__(self, forge: BitbucketForge) -> None:
        self.forge = forge

    def url_for(self, name: str, png: bytes, content_type: str = "image/png") -> str | None:
        stored = content_name(name, png)
        body, form_type = multipart("files", stored, png, content_type)
        path = f"{self.forge._repo_path}/downloads"
        response = self.forge.http.request(
            "POST", path, data=body, content_type=form_type, idempotent=True
        )
        if response.status not in (200, 201):
            self.forge.fail(
                response, f"upload {name} to the repository's Downloads", "Repositories: Write"
            )
        return (
            f"https://bitbucket.org/{self.forge.repository}/downloads/{urllib.parse.quote(stored)}"
        )
