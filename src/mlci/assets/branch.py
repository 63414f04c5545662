"""`branch`: PNGs committed to a branch of the same repository (GitHub, GHES)."""

from __future__ import annotations

import base64
import urllib.parse
from typing import TYPE_CHECKING

from mlci.http import HttpClient

if TYPE_CHECKING:
    from mlci.forges.github import GitHubForge


class BranchStore:
    """PNGs committed to `branch` (created as an orphan branch when missing)."""

    name = "branch"

    def __init__(self, forge: GitHubForge, *, branch: str, folder: str) -> None:
        self.forge = forge
        self.http: HttpClient = forge.http
        self.branch = branch
        self.folder = folder
        self._ready = False

    def url_for(self, name: str, png: bytes, content_type: str = "image/png") -> str | None:
        repo = self.forge._repo_path
        self._ensure_branch()
        path = f"{self.folder}/{name}"
        quoted = urllib.parse.quote(path)
        existing = self.http.request("GET", f"{repo}/contents/{quoted}?ref={self.branch}")
        payload: dict[str, object] = {
            "message": f"mlci: {path}",
            "content": base64.b64encode(png).decode(),
            "branch": self.branch,
        }
        data = existing.json()
        if existing.status == 200 and isinstance(data, dict) and data.get("sha"):
            payload["sha"] = data["sha"]
        response = self.http.request("PUT", f"{repo}/contents/{quoted}", body=payload)
        if response.status not in (200, 201):
            self.forge.fail(response, f"commit {path} to the branch {self.branch}")
        commit = (response.json() or {}).get("commit") or {}
        ref = commit.get("sha") or self.branch
        # Relative to the pull request page: renders for anyone who can read the repository.
        return f"../blob/{ref}/{quoted}?raw=true"

    def _ensure_branch(self) -> None:
        if self._ready:
            return
        repo = self.forge._repo_path
        branch = urllib.parse.quote(self.branch, safe="")
        response = self.http.request("GET", f"{repo}/branches/{branch}")
        if response.status == 404:
            self._create_orphan()
        elif response.status >= 300:
            self.forge.fail(response, f"read the branch {self.branch}")
        self._ready = True

    def _create_orphan(self) -> None:
        """A branch with no history of the code: only mlci's images ever go there."""
        repo = self.forge._repo_path
        readme = "Plots of mlci reports, linked from pull request comments.\n"
        entry = {"path": "README.md", "mode": "100644", "type": "blob", "content": readme}
        tree = self._post(f"{repo}/git/trees", {"tree": [entry]})
        commit = self._post(
            f"{repo}/git/commits",
            {"message": "mlci: images for reports", "tree": tree, "parents": []},
        )
        response = self.http.request(
            "POST", f"{repo}/git/refs", body={"ref": f"refs/heads/{self.branch}", "sha": commit}
        )
        if response.status == 422 and "already exists" in response.message:
            return  # another job made it first
        if response.status != 201:
            self.forge.fail(response, f"create the branch {self.branch}")

    def _post(self, path: str, body: dict[str, object]) -> str:
        response = self.http.request("POST", path, body=body, idempotent=True)
        data = response.json()
        if response.status != 201 or not isinstance(data, dict) or "sha" not in data:
            self.forge.fail(response, f"create the branch {self.branch}")
        return str(data["sha"])
