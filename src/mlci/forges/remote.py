"""What every remote forge shares: finding, updating and creating the sticky comment.

A forge module supplies the API calls (list every comment across pages, create, edit,
who am I); the rules live here once:

- mlci's comment for a model starts with `sticky_marker(key)` and was written by the
  same account as the token; someone else's comment that quotes the marker is left alone.
- `update` edits the newest such comment (and skips the edit when nothing changed),
  `new` always creates one, `hide` creates a new one and then rewrites the older ones
  into a folded "outdated" note (best effort: the new report never waits on the fold).
- Nothing is sent over the forge's `max_comment_chars`: a body is cut to fit first, and
  a folded old report is cut so that the fold's wrapper fits too.
- A create that may or may not have happened (timeout, 5xx) is never blindly repeated:
  the comments are read again first, and only if it is not there is it sent again.
"""

from __future__ import annotations

import html
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

from mlci.core.links import utf16_len
from mlci.errors import shown
from mlci.forges.base import CommentMode, sticky_marker
from mlci.http import Ambiguous, ForgeError, HttpClient, Response, Unreachable


@dataclass(frozen=True)
class Comment:
    id: str
    body: str
    author: str | None  # login or account id; None when the forge did not say
    url: str
    node_id: str | None = None  # GitHub's GraphQL id (to minimize an outdated comment)


def outdated_body(key: str, body: str, limit: int | None = None) -> str:
    """An older report, folded, with a marker that no longer matches the sticky one;
    within `limit` characters (UTF-16 units), the old text cut to make room."""
    marker = sticky_marker(key)
    old = body[len(marker) :].lstrip("\n") if body.startswith(marker) else body
    head = (
        f"<!-- mlci:outdated key={html.escape(key)} -->\n"
        "<details><summary>Outdated mlci report (a newer one is below)</summary>\n\n"
    )
    tail = "\n\n</details>\n"
    if limit is not None:
        old = fit_text(old, limit - utf16_len(head + tail))
    return f"{head}{old}{tail}"


CUT_NOTE = "\n\n… cut to fit the forge's limit; the full report is in the job's .mlci/out/"


def fit_text(text: str, limit: int) -> str:
    """`text` within `limit` UTF-16 units: cut at a line and noted when too long, with an
    open code fence closed so that what follows it still renders."""
    if utf16_len(text) <= limit:
        return text
    room = max(limit - len(CUT_NOTE) - 4, 0)
    kept = text[:room]
    while utf16_len(kept) > room:  # characters outside the BMP count twice
        kept = kept[: len(kept) - (utf16_len(kept) - room) // 2 - 1]
    if "\n" in kept:
        kept = kept[: kept.rindex("\n")]
    fences = sum(1 for line in kept.splitlines() if line.lstrip().startswith("```"))
    return kept + ("\n```" if fences % 2 else "") + CUT_NOTE


class RemoteForge:
    """Base of the HTTP forges; subclasses implement the `_`-prefixed API calls."""

    name = "the forge"
    max_comment_chars: int | None = None
    status_context = "mlci"  # the commit status's name; the publisher sets mlci/<model>

    def __init__(self, http: HttpClient) -> None:
        self.http = http
        self._authors: frozenset[str] | None = None

    # -- what subclasses provide -------------------------------------------------------

    def _comments(self) -> Iterator[Comment]:
        raise NotImplementedError

    def _create(self, body: str) -> Comment:
        raise NotImplementedError

    def _edit(self, comment: Comment, body: str) -> Comment:
        raise NotImplementedError

    def _my_names(self) -> frozenset[str]:
        """The author names the token posts as; empty: the forge cannot tell (any)."""
        raise NotImplementedError

    def fail(self, response: Response, action: str) -> None:
        """Raise a ForgeError for an error answer, naming the fix."""
        raise NotImplementedError

    def _minimize(self, comment: Comment) -> None:
        """Collapse an outdated comment where the forge can (GitHub); else nothing."""

    def set_status(
        self, sha: str | None, verdict: str, summary: str, url: str | None = None
    ) -> str:
        """Record the verdict on the commit; returns where it went."""
        raise NotImplementedError

    def check_access(self) -> list[tuple[bool, str]]:
        """One read that shows whether the token may publish here."""
        raise NotImplementedError

    # -- the shared rules ----------------------------------------------------------------

    def find_sticky(self, key: str) -> list[Comment]:
        """mlci's comments for `key` written by this token's account, oldest first."""
        marker = sticky_marker(key)
        mine = self._authors if self._authors is not None else self._my_names()
        self._authors = mine
        return [
            comment
            for comment in self._comments()
            if comment.body.startswith(marker) and (not mine or comment.author in mine)
        ]

    def upsert_comment(self, key: str, body: str, mode: CommentMode = "update") -> str:
        full = self._within_limit(f"{sticky_marker(key)}\n{body}")
        if mode == "new":
            return self._create_once(key, full).url
        existing = self.find_sticky(key)
        if mode == "update" and existing:
            newest = existing[-1]
            if newest.body.rstrip() == full.rstrip():
                return newest.url
            return self._edit(newest, full).url
        created = self._create_once(key, full)
        if mode == "hide":
            self._fold(key, existing)
        return created.url

    def _fold(self, key: str, comments: list[Comment]) -> None:
        """Fold the older reports, after the new one is posted: a refused fold leaves an
        old report as it was (the newest one is what `update` edits next time)."""
        for comment in comments:
            try:
                self._edit(comment, outdated_body(key, comment.body, self.max_comment_chars))
            except Unreachable:
                raise
            except ForgeError:
                continue
            self._minimize(comment)

    def _within_limit(self, full: str) -> str:
        """The comment cut to the forge's limit (the marker first, so it is always kept)."""
        if self.max_comment_chars is None:
            return full
        return fit_text(full, self.max_comment_chars)

    def _create_once(self, key: str, full: str) -> Comment:
        try:
            return self._create(full)
        except Ambiguous:
            # The forge may have created it: look before sending it again.
            for comment in reversed(self.find_sticky(key)):
                if comment.body.rstrip() == full.rstrip():
                    return comment
            return self._create(full)

    def _get_json(self, path: str, action: str) -> object:
        response = self.http.request("GET", path)
        if response.status >= 300:
            self.fail(response, action)
        return response.json()

    def _pages(self, path: str, action: str) -> Iterator[tuple[Response, list[object]]]:
        """Each page of a list, following `Link: rel="next"` as the API gives it."""
        url: str | None = path
        seen = 0
        while url is not None:
            response = self.http.request("GET", url)
            if response.status >= 300:
                self.fail(response, action)
            page = response.json()
            if not isinstance(page, list):
                raise self.not_a_list(response, url, action)
            yield response, page
            url = response.next_link()
            seen += 1
            if seen > 1000:  # 100,000 comments: something is looping
                return

    def not_a_list(self, response: Response, url: str, action: str) -> ForgeError:
        """A listing that is not one (a proxy's login page, `{}`): read as "no comments"
        it would make each run post a duplicate, so the run stops instead."""
        first = shown(response.body[:80].decode("utf-8", "replace"))
        return ForgeError(
            f"could not {action}: {self.name} answered {urlsplit(url).path} with "
            f"{response.status} but not a list: '{first}'; check the forge's API URL "
            "(a proxy or a sign-in page answers HTML)",
            status=response.status,
        )


def shorten(text: str, limit: int) -> str:
    """`text` within `limit` characters, ending in an ellipsis when cut."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
