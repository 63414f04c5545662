"""`s3`: an S3-compatible bucket, signed with SigV4 here (no SDK)."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mlci.http import ForgeError, HttpClient

if TYPE_CHECKING:
    from mlci.config import S3Config


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
