"""mlci's REST client for MLflow servers: no mlflow import, MLflow's fallbacks, transport faults.

The registry cases themselves run against a real server in test_registry_mlflow.py (the
`backend` fixture). Here: what only the REST path has. The faults a real server cannot be
made to show (a proxy's 502, Retry-After, a redirect, a dropped kept-alive connection)
come from a stand-in on 127.0.0.1 that answers like one.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mlci.errors import ExternalError
from mlci.registry import mlflow_rest
from mlci.registry.mlflow import MlflowRegistry
from tests.test_registry_mlflow import lineage
from tests.test_registry_server import mlflow_server

PROMOTE = """
import json, sys
from pathlib import Path
from tests.test_registry_mlflow import lineage
from mlci.registry.mlflow import MlflowRegistry

registry = MlflowRegistry(sys.argv[1])
predictions = Path(sys.argv[3]) / "predictions.csv"
predictions.write_text("y_true,y_pred\\n1,1\\n")
version, _ = registry.register(sys.argv[2], Path(sys.argv[3]) / "model.pkl",
                               lineage("1" * 40, accuracy=0.9), predictions=predictions)
current = registry.by_alias(sys.argv[2], "champion")
registry.move_alias(sys.argv[2], "champion", version, current=current)
champion = registry.by_alias(sys.argv[2], "champion")
fetched = registry.predictions(champion, Path(sys.argv[3]) / "download")
print(json.dumps({
    "version": champion.version, "format": champion.model_format,
    "predictions": fetched.read_text(), "history": len(registry.history(sys.argv[2], "champion")),
    "mlflow": sorted(m for m in sys.modules if m == "mlflow" or m.startswith("mlflow.")),
}))
"""


@pytest.mark.slow
def test_a_promotion_through_a_server_never_imports_mlflow(
    shared_mlflow_server: tuple[str, Path], tmp_path: Path
) -> None:
    import pickle

    from tests.test_registry_mlflow import trained

    url, _ = shared_mlflow_server
    (tmp_path / "model.pkl").write_bytes(pickle.dumps(trained()[0]))

    done = subprocess.run(
        [sys.executable, "-c", PROMOTE, url, "no-import", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=Path(__file__).parent.parent,
    )

    result = json.loads(done.stdout)
    assert result == {
        "version": "1",
        "format": "sklearn",  # still a loadable MLflow model (tested in test_registry_mlflow)
        "predictions": "y_true,y_pred\n1,1\n",
        "history": 1,
        "mlflow": [],
    }


@pytest.mark.slow
def test_mlflows_client_is_used_when_asked_and_reads_the_same(
    shared_mlflow_server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow import MlflowClient

    url, artifacts = shared_mlflow_server
    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    rest = MlflowRegistry(url)
    first, _ = rest.register("either-client", model, lineage("2" * 40, accuracy=0.8))
    rest.move_alias("either-client", "champion", first)

    monkeypatch.setenv("MLCI_REGISTRY_CLIENT", "mlflow")
    through_mlflow = MlflowRegistry(url)
    second, created = through_mlflow.register(
        "either-client", model, lineage("3" * 40, accuracy=0.85)
    )
    through_mlflow.move_alias("either-client", "champion", second)

    assert isinstance(through_mlflow._client(), MlflowClient)
    assert isinstance(rest._client(), mlflow_rest.RestClient)
    assert (created, second.version) == (True, "2")
    assert through_mlflow.versions("either-client") == rest.versions("either-client")
    assert through_mlflow.history("either-client", "champion") == rest.history(
        "either-client", "champion"
    )
    champion = rest.by_alias("either-client", "champion")
    assert champion is not None and champion.metrics == {"accuracy": 0.85}
    runs = {first.run_id, second.run_id}
    stored = [p.read_bytes() for p in artifacts.rglob("model.bin") if runs & set(p.parts)]
    assert stored == [b"weights", b"weights"]  # both clients upload to the server


def test_the_rest_client_is_used_only_where_it_can_do_everything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    assert mlflow_rest.usable("http://127.0.0.1:5000", {})
    assert mlflow_rest.usable("https://mlflow.example/prefix", {})
    assert not mlflow_rest.usable("sqlite:///x.db", {})
    assert not mlflow_rest.usable("databricks", {})
    assert not mlflow_rest.usable("http://127.0.0.1:5000", {"MLCI_REGISTRY_CLIENT": "mlflow"})
    assert not mlflow_rest.usable("https://m.example", {"MLFLOW_TRACKING_AUTH": "my_plugin"})
    assert not mlflow_rest.usable("https://m.example", {"MLFLOW_TRACKING_AWS_SIGV4": "true"})
    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
    monkeypatch.setenv("no_proxy", "internal.example")
    assert not mlflow_rest.usable("https://mlflow.example", {})  # http.client has no proxies
    assert mlflow_rest.usable("https://mlflow.internal.example", {})
    assert mlflow_rest.usable("http://mlflow.example", {})  # only https goes through it


@pytest.mark.slow
def test_artifacts_the_server_does_not_proxy_are_written_by_mlflows_client(
    tmp_path: Path,
) -> None:
    store = tmp_path / "store"
    with mlflow_server(
        tmp_path, "--no-serve-artifacts", "--default-artifact-root", str(store)
    ) as url:
        registry = MlflowRegistry(url)
        model = tmp_path / "model.bin"
        model.write_bytes(b"weights")
        predictions = tmp_path / "predictions.csv"
        predictions.write_text("y_true,y_pred\n0,0\n")
        version, _ = registry.register(
            "direct", model, lineage("4" * 40, accuracy=0.7), predictions=predictions
        )
        fetched = registry.predictions(version, tmp_path / "download")

    assert version.source is not None and version.source.startswith(str(store))
    assert [p.read_bytes() for p in store.rglob("model.bin")] == [b"weights"]
    assert fetched is not None and fetched.read_text() == "y_true,y_pred\n0,0\n"


# -- transport faults, from a stand-in -----------------------------------------------------


@dataclass
class StandIn:
    """Answers each request with the next scripted (status, headers, body); records them."""

    url: str = ""
    script: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    seen: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)
    drop_after_answer: bool = False  # close the connection without saying so
    # Answers what the script does not: (method, path, body) -> (status, headers, body).
    serve: Callable[[str, str, bytes], tuple[int, dict[str, str], bytes]] | None = None


@contextlib.contextmanager
def stand_in() -> Iterator[StandIn]:
    state = StandIn()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as MLflow's server

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            sent = self.rfile.read(length)
            state.seen.append((self.command, self.path, dict(self.headers)))
            if state.script:
                status, headers, body = state.script.pop(0)
            elif state.serve is not None:
                status, headers, body = state.serve(self.command, self.path, sent)
            else:
                status, headers, body = 200, {}, b"{}"
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **headers}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()
            if state.drop_after_answer:
                self.close_connection = True

        do_GET = do_POST = do_PUT = do_DELETE = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


_NO_EXPERIMENT: tuple[int, dict[str, str], bytes] = (
    404,
    {},
    b'{"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "Could not find experiment"}',
)


def test_a_busy_server_is_retried_after_the_wait_it_asks_for() -> None:
    with stand_in() as server:
        server.script = [(503, {"Retry-After": "0"}, b"busy"), (429, {"Retry-After": "0"}, b"")]
        client = mlflow_rest.RestClient(server.url, {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3"})
        server.script.append(_NO_EXPERIMENT)

        assert client.get_experiment_by_name("mlci") is None

    assert [path for _, path, _ in server.seen] == [
        "/api/2.0/mlflow/experiments/get-by-name?experiment_name=mlci"
    ] * 3


def test_a_proxy_error_names_the_status_after_the_retries() -> None:
    with stand_in() as server:
        page = (502, {"Content-Type": "text/html"}, b"<html>502 Bad Gateway</html>\n")
        server.script = [page, page]
        registry = MlflowRegistry(server.url)
        env = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0"}
        registry._client_instance = mlflow_rest.RestClient(server.url, env)

        with pytest.raises(ExternalError) as failed:
            registry.by_alias("clf", "champion")

    assert failed.value.exit_code == 3
    assert failed.value.message == (
        f"MLflow failed while reading clf@champion at {server.url}: "
        "<html>502 Bad Gateway</html> (status code 502) (after 2 attempts)"
    )


def test_a_redirect_names_the_address_to_use() -> None:
    with stand_in() as server:
        server.script = [(308, {"Location": "https://mlflow.example/"}, b"")]
        client = mlflow_rest.RestClient(server.url, {})
        with pytest.raises(mlflow_rest.RestError) as failed:
            client.get_registered_model("clf")
        client.close()  # the exception's traceback keeps the client: no socket in the GC

    assert "redirects to https://mlflow.example/: set the tracking URI" in str(failed.value)


def test_credentials_go_in_the_header_only() -> None:
    with stand_in() as server:
        server.script = [(401, {}, b"You are not authenticated.")] * 2
        token = mlflow_rest.RestClient(server.url, {"MLFLOW_TRACKING_TOKEN": "tok-123"})
        in_uri = server.url.replace("http://", "http://bot:p%40ss@")
        with_uri = mlflow_rest.RestClient(in_uri, {})
        with pytest.raises(mlflow_rest.RestError) as failed:
            token.get_registered_model("clf")
        with pytest.raises(mlflow_rest.RestError):
            with_uri.get_registered_model("clf")
        token.close()
        with_uri.close()

    headers = [seen[2] for seen in server.seen]
    assert headers[0]["Authorization"] == "Bearer tok-123"
    assert headers[1]["Authorization"] == "Basic Ym90OnBAc3M="  # bot:p@ss
    assert failed.value.status == 401 and "tok-123" not in str(failed.value)
    assert all("@" not in path for _, path, _ in server.seen)


def test_a_dropped_kept_alive_connection_is_opened_again() -> None:
    with stand_in() as server:
        server.drop_after_answer = True
        client = mlflow_rest.RestClient(server.url, {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"})
        server.script = [_NO_EXPERIMENT, _NO_EXPERIMENT]

        assert client.get_experiment_by_name("a") is None
        assert client.get_experiment_by_name("b") is None  # no retries left: reconnected

    assert len(server.seen) == 2


def test_a_server_that_is_down_is_named_quickly() -> None:
    from tests.servers import free_port

    url = f"http://127.0.0.1:{free_port()}"
    registry = MlflowRegistry(url)
    registry._client_instance = mlflow_rest.RestClient(
        url, {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"}
    )

    with pytest.raises(ExternalError) as failed:
        registry.history("clf", "champion")

    assert failed.value.message.startswith(
        f"cannot reach the MLflow server {url} while reading the history of clf@champion "
        f"(cannot connect to 127.0.0.1:"
    )
    assert "Connection refused" in failed.value.message
    assert "MLFLOW_TRACKING_URI" in failed.value.message


# -- what MLflow's client does, done the same (found in review) ----------------------------

_BLOB = bytes(range(256)) * 8192  # 2 MiB


def _reset_mid_download(sock: socket.socket) -> None:
    """First connection: answers a JSON call (kept alive), then half the download and a
    reset; the next connection: the whole download."""
    first = True
    while True:
        try:
            connection, _ = sock.accept()
        except OSError:
            return
        reader = connection.makefile("rb")

        def request(reader: Any = reader) -> None:
            reader.readline()
            while reader.readline() not in (b"\r\n", b""):
                pass

        head = b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n" % len(_BLOB)
        if first:
            first = False
            request()
            connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            request()
            connection.sendall(head + b"\r\n" + _BLOB[: len(_BLOB) // 2])
            time.sleep(0.3)
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        else:
            request()
            connection.sendall(head + b"Connection: close\r\n\r\n" + _BLOB)
        reader.close()
        connection.close()


def test_a_download_cut_off_by_a_reset_is_written_once_from_the_start() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        threading.Thread(target=_reset_mid_download, args=(sock,), daemon=True).start()
        env = {"MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": "5"}
        http = mlflow_rest._Connection(f"http://127.0.0.1:{sock.getsockname()[1]}", env)
        http.json("GET", "/api/2.0/mlflow/experiments/get-by-name")
        out = io.BytesIO()
        http.download("/api/2.0/mlflow-artifacts/artifacts/1/predictions.csv", out)
        http.close()

    assert out.getvalue() == _BLOB  # not the first half twice


def test_an_ipv6_server_without_a_port_is_dialled_on_the_schemes_port() -> None:
    plain = mlflow_rest._Connection("http://[2001:db8::5]/mlflow", {})
    secure = mlflow_rest._Connection("https://[2001:db8::5]:8443/mlflow", {})

    assert (plain.host, plain.port, plain.netloc) == ("2001:db8::5", 80, "[2001:db8::5]")
    assert (secure.port, secure.netloc) == (8443, "[2001:db8::5]:8443")


def test_credentials_come_from_mlflows_file_and_an_empty_secret_is_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".mlflow").mkdir()
    (tmp_path / ".mlflow" / "credentials").write_text(
        "[mlflow]\nmlflow_tracking_username = alice\nmlflow_tracking_password = s3cret\n"
    )

    def auth(env: dict[str, str]) -> str | None:
        return mlflow_rest._Connection("https://m.example", env).headers.get("Authorization")

    assert auth({}) == "Basic YWxpY2U6czNjcmV0"  # alice:s3cret, from the file
    assert auth({"MLFLOW_TRACKING_USERNAME": "bob"}) == "Basic Ym9iOnMzY3JldA=="  # bob:s3cret
    (tmp_path / ".mlflow" / "credentials").unlink()
    # A secret GitHub Actions does not have is an empty variable: the token then.
    empty = {"MLFLOW_TRACKING_USERNAME": "bot", "MLFLOW_TRACKING_PASSWORD": ""}
    assert auth({**empty, "MLFLOW_TRACKING_TOKEN": "tok"}) == "Bearer tok"
    assert auth(empty) is None


def test_a_broken_credentials_file_is_named_without_its_contents(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlci.errors import UsageError

    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / ".mlflow").mkdir()
    (tmp_path / ".mlflow" / "credentials").write_text("mlflow_tracking_password = hunter2\n")

    with pytest.raises(UsageError) as failed:
        mlflow_rest._Connection("http://m.example", {})

    assert ".mlflow/credentials is not a valid INI file" in failed.value.message
    assert "hunter2" not in failed.value.message


def test_the_ca_bundle_is_the_one_mlflows_client_would_use() -> None:
    assert mlflow_rest._ca_bundle({"MLFLOW_TRACKING_SERVER_CERT_PATH": "/a.pem"}) == "/a.pem"
    assert mlflow_rest._ca_bundle({"REQUESTS_CA_BUNDLE": "/corp.pem"}) == "/corp.pem"
    assert mlflow_rest._ca_bundle({"CURL_CA_BUNDLE": "/curl.pem"}) == "/curl.pem"
    import certifi

    assert mlflow_rest._ca_bundle({}) == certifi.where()


def test_a_version_that_never_becomes_ready_is_an_error() -> None:
    version = {"name": "clf", "version": "3", "status": "FAILED_REGISTRATION"}
    with stand_in() as server:
        server.script = [(200, {}, json.dumps({"model_version": version}).encode())]
        client = mlflow_rest.RestClient(server.url, {})
        with pytest.raises(mlflow_rest.RestError) as failed:
            client.create_model_version("clf", "mlflow-artifacts:/1/r/artifacts/model", "r")
        client.close()

    assert "clf version 3 is FAILED_REGISTRATION, not READY" in str(failed.value)


def test_a_failed_registration_is_not_reported_as_an_unreachable_server() -> None:
    from mlci.registry.mlflow import _explain

    failure = mlflow_rest.RestError(
        "clf version 3 is FAILED_REGISTRATION, not READY, after 300 s (the registry's own "
        "message is in its UI)"
    )
    message = _explain(failure, "registering clf", "http://m.example")

    assert "cannot reach" not in message
    assert "answered" in message and "FAILED_REGISTRATION" in message
