"""Secrets out of text (the job's secret values and URL passwords become `***`), and
where credentials may go (`plain_http_refusal`).

Pure: the caller gives the values to hide (`mlci.secrets` collects them from the job's
environment). `mask` walks a report's frozen values, so one call covers every string a
report file, a comment or a registry tag is made of.
"""

from __future__ import annotations

import dataclasses
import re
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar

MASK = "***"
MIN_SECRET_CHARS = 6  # shorter values ("1", "true", "main") would mask ordinary words

T = TypeVar("T")

_URL_PASSWORD = re.compile(r"(://)[^/@\s]+@")


def redact_url(text: str) -> str:
    """`text` without the `user:password@` of the URLs in it."""
    return _URL_PASSWORD.sub(r"\1" + MASK + "@", text)


def hidden_values(values: Iterable[str]) -> tuple[str, ...]:
    """The strings to replace, longest first: each value of `MIN_SECRET_CHARS` or more,
    and each such line of a multi-line one (a key file printed line by line)."""
    found: set[str] = set()
    for value in values:
        for candidate in (value, *value.splitlines()):
            candidate = candidate.strip()
            if len(candidate) >= MIN_SECRET_CHARS:
                found.add(candidate)
    return tuple(sorted(found, key=lambda s: (-len(s), s)))


def mask_text(text: str, secrets: Sequence[str]) -> str:
    """`text` with each of `secrets` (from `hidden_values`) and each URL password masked."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    return redact_url(text) if "@" in text else text


def mask(value: T, secrets: Sequence[str]) -> T:
    """`value` with `mask_text` applied to every string in it: in frozen dataclasses,
    tuples, lists and mappings (keys too), recursively. Bytes (PNGs) are left as they are.
    A value with nothing to mask is returned as it was."""
    return _mask(value, secrets)  # type: ignore[no-any-return]


def _mask(value: Any, secrets: Sequence[str]) -> Any:
    masked: Any = value
    if isinstance(value, str):
        masked = mask_text(value, secrets)
    elif isinstance(value, tuple | list):
        items = [_mask(item, secrets) for item in value]
        masked = tuple(items) if isinstance(value, tuple) else items
    elif isinstance(value, Mapping):
        masked = {_mask(k, secrets): _mask(v, secrets) for k, v in value.items()}
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = (f.name for f in dataclasses.fields(value) if f.init)
        masked = dataclasses.replace(
            value, **{n: _mask(getattr(value, n), secrets) for n in fields}
        )
    return value if masked == value else masked


def plain_http_refusal(url: str, what: str, setting: str) -> str | None:
    """Why `what` (credentials) must not go to `url`, or None when it may.

    Plain http to a host other than this one is refused: anyone on the way reads the
    header. `setting` is where the URL comes from, for the fix. Callers raise it as
    their own ExternalError (exit 3) before connecting, so nothing is sent.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme.lower() != "http" or _loopback(parts.hostname or ""):
        return None
    return (
        f"refusing to send {what} to {parts.hostname} over plain HTTP (the URL's scheme is "
        f"'{parts.scheme}': anyone on the network can read them): use an https:// URL in "
        f"{setting} (http:// is allowed only to this machine: localhost, 127.0.0.0/8, ::1)"
    )


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    import ipaddress  # only here: every command's console imports this module

    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
