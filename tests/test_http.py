"""The HTTP seam's own rules: the token stays on the API's host."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from mlci.http import HttpClient


@contextmanager
def serve(answer: Any) -> Iterator[tuple[str, list[str | None]]]:
    """A server that records each request's Authorization header and answers `answer`."""
    seen: list[str | None] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_GET(self) -> None:
            seen.append(self.headers.get("Authorization"))
            answer(self)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02})
    thread.start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def _ok(handler: BaseHTTPRequestHandler) -> None:
    handler.send_response(200)
    handler.send_header("Content-Length", "2")
    handler.end_headers()
    handler.wfile.write(b"{}")


def test_a_redirect_to_another_host_drops_the_token() -> None:
    with serve(_ok) as (other, other_seen):
        # "localhost" and "127.0.0.1" are different hosts to a browser and to mlci.
        target = f"http://{other.replace('127.0.0.1', 'localhost')}/elsewhere"

        def redirect(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(302)
            handler.send_header("Location", target)
            handler.send_header("Content-Length", "0")
            handler.end_headers()

        with serve(redirect) as (api, api_seen):
            client = HttpClient(base_url=f"http://{api}", headers={"Authorization": "Bearer tok"})
            assert client.request("GET", "/repos/x").status == 200
    assert api_seen == ["Bearer tok"]
    assert other_seen == [None]


def test_a_redirect_on_the_same_host_keeps_the_token() -> None:
    def redirect(handler: BaseHTTPRequestHandler) -> None:
        if handler.path == "/moved":
            _ok(handler)
            return
        handler.send_response(301)
        handler.send_header("Location", "/moved")
        handler.send_header("Content-Length", "0")
        handler.end_headers()

    with serve(redirect) as (api, seen):
        client = HttpClient(base_url=f"http://{api}", headers={"Authorization": "Bearer tok"})
        assert client.request("GET", "/old").status == 200
    assert seen == ["Bearer tok", "Bearer tok"]
