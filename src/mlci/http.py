"""The one HTTP seam of the forges: stdlib urllib, retries by each API's rules.

- 5xx answers and timeouts are retried with backoff (1, 2, 4 s), except a request that
  is not idempotent (a POST creating a comment): it raises `Ambiguous`, because the
  forge may have acted on it, and the caller re-reads before trying again.
- 429, and GitHub's 403 rate limits, wait for `retry-after`, else `x-ratelimit-reset`
  (`ratelimit-reset` on GitLab), else a minute, doubling after that.
- Every wait counts against `max_wait_s`; past it the request fails with a message
  saying when the limit resets.
- Tokens go in headers only; no message built here contains a header, and `redact`
  removes the token from any text that might echo it.
- Every JSON body is masked (`masks`, the job's secrets; `mlci.core.redact`): the last
  line of defence for comments, statuses and check runs, wherever they were built.
- Credentials never go over plain http to another machine (`PlainHttp`, before connecting).
"""

from __future__ import annotations

import json
import re
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from mlci.core.redact import hidden_values, mask, plain_http_refusal
from mlci.errors import ExternalError

BACKOFF_S = (1.0, 2.0, 4.0)
SECONDARY_WAIT_S = 60.0
_CREDENTIAL_HEADERS = frozenset({"authorization", "private-token", "job-token"})


class ForgeError(ExternalError):
    """A forge refused or failed; the message names the fix. `status` is the HTTP code."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class Ambiguous(ForgeError):
    """A non-idempotent request timed out or got a 5xx: it may or may not have happened."""


class Unreachable(ForgeError):
    """No answer at all after the retries: the other calls would fail the same way."""


class PlainHttp(Unreachable):
    """Credentials would go over plain http to another machine: every call is refused."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: Mapping[str, str]  # lower-case names
    body: bytes = b""

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return json.loads(self.body.decode("utf-8", "replace"))
        except ValueError:
            return None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    @property
    def message(self) -> str:
        """The API's own error text (GitHub/Gitea `message`, GitLab `message`/`error`)."""
        data = self.json()
        if isinstance(data, dict):
            for key in ("message", "error", "error_description"):
                value = data.get(key)
                if isinstance(value, dict) and "message" in value:  # Bitbucket
                    value = value.get("message")
                elif isinstance(value, dict):  # GitLab: {"message": {"note": ["is too long"]}}
                    value = "; ".join(f"{k} {' '.join(map(str, v))}" for k, v in value.items())
                if isinstance(value, str | list) and value:
                    return value if isinstance(value, str) else "; ".join(map(str, value))
        return self.body.decode("utf-8", "replace")[:300].strip()

    def next_link(self) -> str | None:
        """The `rel="next"` URL of a `Link` header (GitHub, Gitea, GitLab)."""
        link = self.header("link") or ""
        for part in link.split(","):
            match = re.match(r'\s*<([^>]+)>\s*;.*rel="?next"?', part)
            if match:
                return match.group(1)
        return None


@dataclass
class HttpClient:
    """A small JSON client with one retry policy; `sleep` and `now` are injectable."""

    base_url: str
    # repr=False: the headers hold the token; a repr must never show it.
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    timeout_s: float = 20.0
    max_wait_s: float = 120.0
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], float] = time.time
    secrets: tuple[str, ...] = field(default=(), repr=False)
    masks: tuple[str, ...] = field(default=(), repr=False)  # mlci.secrets.secret_values
    forge_name: str = "the forge"
    url_setting: str = "the forge's API URL"  # where base_url comes from, for messages
    waited_s: float = 0.0

    def url(self, path: str) -> str:
        if path.startswith(("http://", "https://")):
            return path
        return self.base_url.rstrip("/") + path

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            if secret:
                text = text.replace(secret, "***")
        return text

    def request(
        self,
        method: str,
        path: str,
        *,
        body: object = None,
        data: bytes | None = None,
        content_type: str | None = None,
        idempotent: bool | None = None,
    ) -> Response:
        """Send one request, retrying by the rules above; returns any final answer.

        Only rate limits that outlast `max_wait_s`, connection failures and ambiguous
        writes raise; other error answers are returned for the caller to explain.
        """
        if idempotent is None:
            idempotent = method in ("GET", "HEAD", "PUT", "DELETE", "PATCH")
        url = self.url(path)
        payload = data
        headers = {"User-Agent": "mlci", **self.headers}
        if any(name.lower() in _CREDENTIAL_HEADERS for name in headers):
            refusal = plain_http_refusal(
                url, f"the credentials for {self.forge_name}", self.url_setting
            )
            if refusal is not None:
                raise PlainHttp(refusal)
        if body is not None:
            hidden = hidden_values((*self.secrets, *self.masks))
            payload = json.dumps(mask(body, hidden)).encode("utf-8")
            headers["Content-Type"] = "application/json"
        elif content_type is not None:
            headers["Content-Type"] = content_type
        server_errors = 0
        limited = 0
        while True:
            try:
                response = self._send(method, url, payload, headers)
            except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
                reason = self._reason(exc)
                if not idempotent:
                    raise Ambiguous(
                        f"{self.forge_name} did not answer {method} {self._where(url)} ({reason})"
                    ) from None
                if server_errors >= len(BACKOFF_S):
                    raise Unreachable(
                        f"cannot reach {self.forge_name} at {self._where(url)} ({reason}) "
                        f"after {server_errors + 1} tries; check the API URL and the network"
                    ) from None
                self._wait(BACKOFF_S[server_errors], url, "not answering")
                server_errors += 1
                continue
            if response.status >= 500:
                if not idempotent:
                    raise Ambiguous(
                        f"{self.forge_name} answered {response.status} to {method} "
                        f"{self._where(url)}",
                        status=response.status,
                    )
                if server_errors >= len(BACKOFF_S):
                    return response
                self._wait(BACKOFF_S[server_errors], url, f"failing (HTTP {response.status})")
                server_errors += 1
                continue
            wait = self._rate_limit_wait(response, limited)
            if wait is None:
                return response
            self._wait(wait, url, "rate limited", response)
            limited += 1

    def _send(
        self, method: str, url: str, payload: bytes | None, headers: dict[str, str]
    ) -> Response:
        request = urllib.request.Request(url, data=payload, method=method, headers=headers)
        opener = urllib.request.build_opener(_NoRedirectAuth())
        try:
            with opener.open(request, timeout=self.timeout_s) as answer:
                return Response(answer.status, _lower(answer.headers), answer.read())
        except urllib.error.HTTPError as exc:
            try:
                body = exc.read()
            except (OSError, TimeoutError):
                body = b""
            return Response(exc.code, _lower(exc.headers), body)

    def _rate_limit_wait(self, response: Response, limited: int) -> float | None:
        """Seconds to wait before retrying, when `response` is a rate limit; else None."""
        status = response.status
        text = response.message.lower()
        remaining = response.header("x-ratelimit-remaining") or response.header(
            "ratelimit-remaining"
        )
        if status == 403 and remaining != "0" and "rate limit" not in text:
            return None
        if status not in (403, 429):
            return None
        retry_after = response.header("retry-after")
        if retry_after is not None:
            seconds = _seconds(retry_after, self.now())
            if seconds is not None:
                return max(seconds, 0.0)
        reset = response.header("x-ratelimit-reset") or response.header("ratelimit-reset")
        if remaining == "0" and reset and reset.isdigit():
            return max(float(reset) - self.now(), 0.0) + 1.0
        # GitHub: "Otherwise, wait for at least one minute", exponentially longer after.
        return float(SECONDARY_WAIT_S * 2**limited)

    def _wait(self, seconds: float, url: str, why: str, response: Response | None = None) -> None:
        if self.waited_s + seconds > self.max_wait_s:
            when = datetime.fromtimestamp(self.now() + seconds, tz=timezone.utc)
            detail = f" ({response.status}: {self.redact(response.message)})" if response else ""
            raise ForgeError(
                f"{self.forge_name} is {why} at {self._where(url)}{detail}; waiting "
                f"{seconds:.0f} s more (until {when:%H:%M:%S} UTC) would pass the "
                f"{self.max_wait_s:.0f} s publish.max_wait_seconds allows; rerun the job "
                f"later, or raise publish.max_wait_seconds",
                status=response.status if response else None,
            )
        self.waited_s += seconds
        self.sleep(seconds)

    def _where(self, url: str) -> str:
        parts = urllib.parse.urlsplit(url)
        return self.redact(parts.path)

    def _reason(self, exc: BaseException) -> str:
        if isinstance(exc, urllib.error.URLError) and not isinstance(exc.reason, str):
            exc = exc.reason if isinstance(exc.reason, BaseException) else exc
        if isinstance(exc, TimeoutError | socket.timeout):
            return f"timed out after {self.timeout_s:g} s"
        return self.redact(str(getattr(exc, "reason", exc)) or type(exc).__name__)


class _NoRedirectAuth(urllib.request.HTTPRedirectHandler):
    """Follow redirects with the token only on the same host, and never to plain http."""

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: Any,
        newurl: str,
    ) -> urllib.request.Request | None:
        old = urllib.parse.urlsplit(req.full_url).netloc
        elsewhere = urllib.parse.urlsplit(newurl).netloc != old
        if elsewhere or plain_http_refusal(newurl, "", "") is not None:
            for name in ("Authorization", "Private-token", "Job-token"):
                req.headers.pop(name, None)
                req.unredirected_hdrs.pop(name, None)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _lower(headers: Any) -> dict[str, str]:
    if headers is None:
        return {}
    return {str(k).lower(): str(v) for k, v in headers.items()}


def _seconds(value: str, now: float) -> float | None:
    """`Retry-After`: delta seconds or an HTTP date."""
    value = value.strip()
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    from email.utils import parsedate_to_datetime

    try:
        return parsedate_to_datetime(value).timestamp() - now
    except (TypeError, ValueError):
        return None
