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

Never a third-party public host by default.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import urllib.parse
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from mlci.config import S3Config
from mlci.http import ForgeError, HttpClient


class AssetStore(Protocol):
    name: str

    def url_for(self, name: str, png: bytes, content_type: str = "image/png") -> str | None:
        """Upload one file (a PNG unless `content_type` says otherwise) and return the URL
        to put in the comment; None: not hosted."""
        ...


class InlineStore:
    name = "inline"

    def url_for(self, name: str, png: bytes, content_type: str = "image/png") -> str | None:
        return None


def multipart(field: str, filename: str, data: bytes, content_type: str) -> tuple[bytes, str]:
    """A multipart/form-data body with one file, and its Content-Type header.

    The file name may come from a pull request (a path in `mlci comment`'s Markdown):
    quotes, backslashes and line breaks would end the header or start another."""
    boundary = uuid.uuid4().hex
    filename = re.sub(r'["\\\x00-\x1f\x7f]+', "-", filename)
    head = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    return head + data + f"\r\n--{boundary}--\r\n".encode(), (
        f"multipart/form-data; boundary={boundary}"
    )


class BranchStore:
    """PNGs committed to `branch` (created as an orphan branch when missing)."""

    name = "branch"

    def __init__(self, forge: Any, *, branch: str, folder: str) -> None:
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


class GitLabUploadStore:
    """GitLab project uploads: `/uploads/<secret>/name.png`, shown to project members."""

    name = "gitlab"

    def __init__(self, forge: Any) -> None:
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


class GiteaAttachmentStore:
    """Attachments of the pull request on Gitea/Forgejo."""

    name = "gitea"

    def __init__(self, forge: Any) -> None:
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


def content_name(name: str, data: bytes) -> str:
    """A flat file name that changes with the content: `mlci-<sha256 prefix>-<base name>`."""
    digest = hashlib.sha256(data).hexdigest()[:16]
    # Only safe characters: the name goes into a multipart header and a URL.
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", name.rsplit("/", 1)[-1]).strip("-.") or "file"
    return f"mlci-{digest}-{base}"


class BitbucketDownloadStore:
    """The repository's Downloads (Bitbucket Cloud): `bitbucket.org/{ws}/{repo}/downloads/{file}`.

    Downloads is one flat folder per repository, and an upload under an existing name
    replaces that file, so names are content-addressed: a rerun with the same plot
    replaces it, never adds a copy. In a private repository only people who can read
    it can open them.
    """

    name = "bitbucket"

    def __init__(self, forge: Any) -> None:
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


@dataclass(frozen=True)
class S3Credentials:
    access_key: str
    secret_key: str
    session_token: str | None = None
    region: str = "us-east-1"

    @classmethod
    def from_env(cls, env: Mapping[str, str], region: str | None) -> S3Credentials:
        access, secret = env.get("AWS_ACCESS_KEY_ID"), env.get("AWS_SECRET_ACCESS_KEY")
        if not access or not secret:
            raise ForgeError(
                "publish.images: s3 needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the "
                "environment (as CI secrets) for the bucket"
            )
        return cls(
            access,
            secret,
            env.get("AWS_SESSION_TOKEN") or None,
            region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        )


PRESIGN_SECONDS = 7 * 24 * 3600  # the longest SigV4 allows


class S3Store:
    """PUT to an S3-compatible bucket (path-style URLs, SigV4, no SDK)."""

    name = "s3"

    def __init__(
        self,
        settings: S3Config,
        credentials: S3Credentials,
        *,
        folder: str,
        http: HttpClient,
        now: dt.datetime | None = None,
    ) -> None:
        self.settings = settings
        self.credentials = credentials
        self.folder = folder
        self.endpoint = (
            settings.endpoint_url or f"https://s3.{credentials.region}.amazonaws.com"
        ).rstrip("/")
        self.http = http
        self.now = now

    def url_for(self, name: str, png: bytes, content_type: str = "image/png") -> str | None:
        key = "/".join(p for p in (self.settings.prefix.strip("/"), self.folder, name) if p)
        path = f"/{self.settings.bucket}/{urllib.parse.quote(key)}"
        headers = self._sign("PUT", path, {}, png, {"content-type": content_type})
        self.http.headers = headers
        response = self.http.request(
            "PUT", self.endpoint + path, data=png, content_type=content_type
        )
        if response.status >= 300:
            raise ForgeError(
                f"the S3 bucket {self.settings.bucket} refused the upload of {name} "
                f"({response.status} {self.http.redact(response.message)[:200]}): check the "
                f"bucket name, publish.s3.endpoint_url and that the credentials may s3:PutObject"
            )
        if self.settings.public_url:
            return f"{self.settings.public_url.rstrip('/')}/{urllib.parse.quote(key)}"
        return self._presign(path)

    # -- SigV4 (docs.aws.amazon.com "Signature Version 4 signing process") -------------

    def _scope(self, when: dt.datetime) -> str:
        return f"{when:%Y%m%d}/{self.credentials.region}/s3/aws4_request"

    def _key(self, when: dt.datetime) -> bytes:
        key = ("AWS4" + self.credentials.secret_key).encode()
        for part in (f"{when:%Y%m%d}", self.credentials.region, "s3", "aws4_request"):
            key = hmac.new(key, part.encode(), hashlib.sha256).digest()
        return key

    def _when(self) -> dt.datetime:
        return self.now or dt.datetime.now(dt.timezone.utc)

    def _sign(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        payload: bytes,
        extra: dict[str, str],
    ) -> dict[str, str]:
        when = self._when()
        host = urllib.parse.urlsplit(self.endpoint).netloc
        digest = hashlib.sha256(payload).hexdigest()
        headers = {
            "host": host,
            "x-amz-content-sha256": digest,
            "x-amz-date": f"{when:%Y%m%dT%H%M%SZ}",
            **extra,
        }
        if self.credentials.session_token:
            headers["x-amz-security-token"] = self.credentials.session_token
        names = sorted(headers)
        canonical = "\n".join(
            [
                method,
                path,
                _query(query),
                "".join(f"{n}:{headers[n].strip()}\n" for n in names),
                ";".join(names),
                digest,
            ]
        )
        signature = self._signature(when, canonical)
        headers["authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={self.credentials.access_key}/{self._scope(when)}, "
            f"SignedHeaders={';'.join(names)}, Signature={signature}"
        )
        headers.pop("host")
        return headers

    def _signature(self, when: dt.datetime, canonical: str) -> str:
        to_sign = "\n".join(
            [
                "AWS4-HMAC-SHA256",
                f"{when:%Y%m%dT%H%M%SZ}",
                self._scope(when),
                hashlib.sha256(canonical.encode()).hexdigest(),
            ]
        )
        return hmac.new(self._key(when), to_sign.encode(), hashlib.sha256).hexdigest()

    def _presign(self, path: str) -> str:
        when = self._when()
        host = urllib.parse.urlsplit(self.endpoint).netloc
        query = {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Credential": f"{self.credentials.access_key}/{self._scope(when)}",
            "X-Amz-Date": f"{when:%Y%m%dT%H%M%SZ}",
            "X-Amz-Expires": str(PRESIGN_SECONDS),
            "X-Amz-SignedHeaders": "host",
        }
        if self.credentials.session_token:
            query["X-Amz-Security-Token"] = self.credentials.session_token
        canonical = "\n".join(
            ["GET", path, _query(query), f"host:{host}\n", "host", "UNSIGNED-PAYLOAD"]
        )
        query["X-Amz-Signature"] = self._signature(when, canonical)
        return f"{self.endpoint}{path}?{_query(query)}"


def _query(query: dict[str, str]) -> str:
    return "&".join(
        f"{urllib.parse.quote(k, safe='-_.~')}={urllib.parse.quote(v, safe='-_.~')}"
        for k, v in sorted(query.items())
    )
