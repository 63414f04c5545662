"""The asset store seam: where the comment's files (PNG plots) are uploaded, and the
helpers the stores share. `InlineStore` hosts nothing."""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Protocol


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


def content_name(name: str, data: bytes) -> str:
    """A flat file name that changes with the content: `mlci-<sha256 prefix>-<base name>`."""
    digest = hashlib.sha256(data).hexdigest()[:16]
    # Only safe characters: the name goes into a multipart header and a URL.
    base = re.sub(r"[^A-Za-z0-9._-]+", "-", name.rsplit("/", 1)[-1]).strip("-.") or "file"
    return f"mlci-{digest}-{base}"
