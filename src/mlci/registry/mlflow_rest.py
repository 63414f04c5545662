"""MLflow's REST API on the standard library: an `mlflow server` without importing mlflow.

Importing MLflow's client takes longer (about 2.7 s) than the whole promote step may. For
an http(s) tracking URI, `MlflowRegistry` talks to the server through `RestClient`: the
methods of `MlflowClient` that it calls, with the same names and arguments, answering
plain objects with the attributes it reads. One connection is kept open for all requests.

- Artifacts go through the server's proxy (`mlflow-artifacts:` URIs, what `mlflow server`
  does by default). A run whose artifacts live elsewhere (s3://, gs://, a server started
  with `--no-serve-artifacts`) has them written by MLflow's own client, imported then.
- Credentials and TLS as MLflow reads them: MLFLOW_TRACKING_USERNAME and
  MLFLOW_TRACKING_PASSWORD (basic), else user:password in the URI, else
  MLFLOW_TRACKING_TOKEN (bearer); MLFLOW_TRACKING_INSECURE_TLS,
  MLFLOW_TRACKING_SERVER_CERT_PATH, MLFLOW_TRACKING_CLIENT_CERT_PATH.
- Retries as MLflow's: connection failures, 429 and 5xx answers, up to
  MLFLOW_HTTP_REQUEST_MAX_RETRIES times, waiting MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR * 2^n
  seconds (or the server's Retry-After); each request may take MLFLOW_HTTP_REQUEST_TIMEOUT,
  and never more than what is left of the run's `Budget` (registry.timeout_minutes): once
  that is spent, no retry starts and the request fails with `DeadlineExceeded`.
  Unlike MLflow's, a create that may have been applied (a 5xx, a timeout, a connection
  lost after sending) is looked up before it is sent again: a model version by its run,
  a run by the `mlci.request` tag it was created with. A 502 from a proxy after the server
  made the version leaves one version, not two.
- Credentials never go over plain http to another machine: `refuse_plain_http`, before
  connecting (for MLflow's client too).
- `usable` says no, and MLflow's client is used, where only it knows how: an auth plugin
  (MLFLOW_TRACKING_AUTH), AWS SigV4 signing, an HTTP proxy, or MLCI_REGISTRY_CLIENT=mlflow.
"""

from __future__ import annotations

import base64
import http.client
import json
import math
import mimetypes
import os
import posixpath
import ssl
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from mlci import __version__
from mlci.core.redact import plain_http_refusal
from mlci.errors import ExternalError, UsageError
from mlci.registry.budget import Budget

_API = "/api/2.0/mlflow"
_ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
_MAX_RETRY_AFTER_S = 60.0
_CHUNK = 1024 * 1024
_AWAIT_READY_S = 300  # as MlflowClient.create_model_version waits for a PENDING version
REQUEST_TAG = "mlci.request"  # on a run: the id of the request that created it


def usable(tracking_uri: str, env: Mapping[str, str]) -> bool:
    """True when this client can do all the registry needs against `tracking_uri`."""
    parts = urllib.parse.urlsplit(tracking_uri)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    if env.get("MLCI_REGISTRY_CLIENT", "").strip().lower() == "mlflow":
        return False
    if env.get("MLFLOW_TRACKING_AUTH") or _true(env.get("MLFLOW_TRACKING_AWS_SIGV4")):
        return False
    proxies = urllib.request.getproxies()  # http.client knows nothing of proxies
    return parts.scheme not in proxies or bool(urllib.request.proxy_bypass(parts.hostname))


def refuse_plain_http(tracking_uri: str) -> None:
    """ExternalError (exit 3) when credentials would go to `tracking_uri` over plain http."""
    refusal = plain_http_refusal(
        tracking_uri, "the MLflow credentials", "registry.tracking_uri or MLFLOW_TRACKING_URI"
    )
    if refusal is not None:
        raise ExternalError(refusal)


def has_credentials(tracking_uri: str, env: Mapping[str, str]) -> bool:
    """Whether MLflow's client would send credentials to `tracking_uri` (as `_Connection`)."""
    user, password = _credentials(env)
    parts = urllib.parse.urlsplit(tracking_uri)
    return bool((user and password) or parts.username or env.get("MLFLOW_TRACKING_TOKEN"))


class RestError(Exception):
    """A request failed. `status` is the HTTP code, None when the server never answered."""

    def __init__(self, message: str, *, status: int | None = None, error_code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code


# -- what MlflowClient's methods answer, as far as the registry reads it ----------------------


@dataclass(frozen=True)
class Metric:
    key: str
    value: float
    timestamp: int = 0
    step: int = 0


@dataclass(frozen=True)
class Param:
    key: str
    value: str


@dataclass(frozen=True)
class RunTag:
    key: str
    value: str


@dataclass(frozen=True)
class Experiment:
    experiment_id: str
    name: str
    artifact_location: str


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    status: str
    artifact_uri: str
    start_time: int | None = None


@dataclass(frozen=True)
class RunData:
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Run:
    info: RunInfo
    data: RunData


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    aliases: dict[str, str]
    tags: dict[str, str]


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: str
    run_id: str | None
    status: str
    source: str | None
    creation_timestamp: int | None
    tags: dict[str, str]


@dataclass(frozen=True)
class FileInfo:
    path: str
    is_dir: bool
    file_size: int | None


class RestClient:
    """The subset of `mlflow.MlflowClient` that `MlflowRegistry` uses, over HTTP."""

    def __init__(
        self,
        tracking_uri: str,
        env: Mapping[str, str] | None = None,
        *,
        budget: Budget | None = None,
    ) -> None:
        env = os.environ if env is None else env
        self._http = _Connection(tracking_uri, env, budget)
        self.tracking_uri = tracking_uri
        self._artifact_uris: dict[str, str] = {}  # run id -> its artifact URI
        self._mlflow_client: Any = None

    # -- experiments and runs ---------------------------------------------------------------

    def get_experiment_by_name(self, name: str) -> Experiment | None:
        try:
            found = self._call("GET", "experiments/get-by-name", {"experiment_name": name})
        except RestError as exc:
            if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise
        return _experiment(found["experiment"])

    def create_experiment(self, name: str, artifact_location: str | None = None) -> str:
        body: dict[str, Any] = {"name": name}
        if artifact_location:
            body["artifact_location"] = artifact_location
        return str(self._call("POST", "experiments/create", body)["experiment_id"])

    def create_run(
        self,
        experiment_id: str,
        run_name: str | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> Run:
        body: dict[str, Any] = {
            "experiment_id": str(experiment_id),
            "user_id": (tags or {}).get("mlflow.user", "unknown"),  # as MlflowClient
            "start_time": int(time.time() * 1000),
            "tags": _pairs(tags or {}),
        }
        if run_name:
            body["run_name"] = run_name
        request = uuid.uuid4().hex
        body["tags"].append({"key": REQUEST_TAG, "value": request})

        def created() -> Any:
            filter_string = f"tags.`{REQUEST_TAG}` = '{request}'"
            found = self._call(
                "POST",
                "runs/search",
                {"experiment_ids": [str(experiment_id)], "filter": filter_string},
            )
            runs = found.get("runs", [])
            return {"run": runs[0]} if runs else None

        run = _run(self._call("POST", "runs/create", body, applied=created)["run"])
        self._artifact_uris[run.info.run_id] = run.info.artifact_uri
        return run

    def get_run(self, run_id: str) -> Run:
        run = _run(self._call("GET", "runs/get", {"run_id": run_id})["run"])
        self._artifact_uris[run_id] = run.info.artifact_uri
        return run

    def search_runs(
        self, experiment_ids: list[str], filter_string: str = "", max_results: int = 1000
    ) -> list[Run]:
        body = {
            "experiment_ids": [str(e) for e in experiment_ids],
            "filter": filter_string,
            "max_results": max_results,
            "run_view_type": "ACTIVE_ONLY",
        }
        return [_run(run) for run in self._call("POST", "runs/search", body).get("runs", [])]

    def log_batch(
        self,
        run_id: str,
        metrics: Iterable[Metric] = (),
        params: Iterable[Param] = (),
        tags: Iterable[RunTag] = (),
    ) -> None:
        body = {
            "run_id": run_id,
            "metrics": [
                {"key": m.key, "value": _number(m.value), "timestamp": m.timestamp, "step": m.step}
                for m in metrics
            ],
            "params": [{"key": p.key, "value": p.value} for p in params],
            "tags": [{"key": t.key, "value": t.value} for t in tags],
        }
        self._call("POST", "runs/log-batch", body)

    def set_terminated(self, run_id: str, status: str = "FINISHED") -> None:
        body = {"run_id": run_id, "status": status, "end_time": int(time.time() * 1000)}
        self._call("POST", "runs/update", body)

    # -- the registry ---------------------------------------------------------------------

    def create_registered_model(self, name: str) -> None:
        self._call("POST", "registered-models/create", {"name": name})

    def get_registered_model(self, name: str) -> RegisteredModel:
        found = self._call("GET", "registered-models/get", {"name": name})["registered_model"]
        return RegisteredModel(
            name=found["name"],
            aliases={a["alias"]: str(a["version"]) for a in found.get("aliases", [])},
            tags=_dict(found.get("tags")),
        )

    def set_registered_model_tag(self, name: str, key: str, value: str) -> None:
        body = {"name": name, "key": key, "value": value}
        self._call("POST", "registered-models/set-tag", body)

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        body = {"name": name, "alias": alias, "version": str(version)}
        self._call("POST", "registered-models/alias", body)

    def get_model_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        found = self._call("GET", "registered-models/alias", {"name": name, "alias": alias})
        return _model_version(found["model_version"])

    def get_model_version(self, name: str, version: str) -> ModelVersion:
        found = self._call("GET", "model-versions/get", {"name": name, "version": str(version)})
        return _model_version(found["model_version"])

    def search_model_versions(
        self, filter_string: str, order_by: list[str] | None = None
    ) -> list[ModelVersion]:
        found: list[ModelVersion] = []
        token = ""
        while True:
            query: dict[str, Any] = {"filter": filter_string, "max_results": 10000}
            if order_by:
                query["order_by"] = order_by
            if token:
                query["page_token"] = token
            page = self._call("GET", "model-versions/search", query)
            found += [_model_version(item) for item in page.get("model_versions", [])]
            token = page.get("next_page_token", "")
            if not token:
                return found

    def create_model_version(
        self,
        name: str,
        source: str,
        run_id: str | None = None,
        tags: Mapping[str, str] | None = None,
        description: str | None = None,
    ) -> ModelVersion:
        body: dict[str, Any] = {"name": name, "source": source, "tags": _pairs(tags or {})}
        if run_id:
            body["run_id"] = run_id
        if description:
            body["description"] = description

        def applied() -> Any:
            if not run_id:
                return None
            query = {"filter": f"name = '{name}' and run_id = '{run_id}'"}
            found = self._call("GET", "model-versions/search", query).get("model_versions", [])
            return {"model_version": found[0]} if found else None

        answer = self._call("POST", "model-versions/create", body, applied=applied)
        created = _model_version(answer["model_version"])
        deadline = time.monotonic() + _AWAIT_READY_S
        while created.status == "PENDING_REGISTRATION" and time.monotonic() < deadline:
            time.sleep(1)
            created = self.get_model_version(name, created.version)
        if created.status != "READY":  # as MlflowClient: a version that never became READY
            raise RestError(
                f"{name} version {created.version} is {created.status}, not READY, "
                f"after {_AWAIT_READY_S} s (the registry's own message is in its UI)"
            )
        return created

    def delete_model_version(self, name: str, version: str) -> None:
        self._call("DELETE", "model-versions/delete", {"name": name, "version": str(version)})

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        body = {"name": name, "version": str(version), "key": key, "value": value}
        self._call("POST", "model-versions/set-tag", body)

    # -- artifacts ------------------------------------------------------------------------

    def log_artifact(self, run_id: str, local_path: str, artifact_path: str | None = None) -> None:
        root = self._proxied_root(run_id)
        if root is None:
            self._mlflow().log_artifact(run_id, local_path, artifact_path=artifact_path)
            return
        self._upload(Path(local_path), posixpath.join(root, artifact_path or ""))

    def log_artifacts(self, run_id: str, local_dir: str, artifact_path: str | None = None) -> None:
        root = self._proxied_root(run_id)
        if root is None:
            self._mlflow().log_artifacts(run_id, local_dir, artifact_path=artifact_path)
            return
        folder = Path(local_dir)
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            relative = path.parent.relative_to(folder).parts
            self._upload(path, posixpath.join(root, artifact_path or "", *relative))

    def list_artifacts(self, run_id: str, path: str | None = None) -> list[FileInfo]:
        root = self._proxied_root(run_id)
        if root is None:
            return list(self._mlflow().list_artifacts(run_id, path))
        listed = self._http.json("GET", _ARTIFACTS, {"path": posixpath.join(root, path or "")})
        files = [
            FileInfo(
                posixpath.join(path, _safe(item["path"])) if path else _safe(item["path"]),
                bool(item.get("is_dir")),
                int(item["file_size"]) if "file_size" in item else None,
            )
            for item in (listed or {}).get("files", [])
        ]
        # As MLflow's: a path naming a single file lists nothing.
        itself = posixpath.join(path or "", posixpath.basename(path or ""))
        if len(files) == 1 and path and files[0].path == itself:
            return []
        return sorted(files, key=lambda f: f.path)

    def download_artifacts(self, run_id: str, path: str, dst_path: str) -> str:
        root = self._proxied_root(run_id)
        if root is None:
            return str(self._mlflow().download_artifacts(run_id, path, dst_path))
        local = Path(dst_path) / _safe(path)
        listed = self.list_artifacts(run_id, path)
        if listed:  # a folder
            local.mkdir(parents=True, exist_ok=True)
            for item in listed:
                self.download_artifacts(run_id, item.path, dst_path)
            return str(local)
        local.parent.mkdir(parents=True, exist_ok=True)
        with local.open("wb") as out:
            self._http.download(f"{_ARTIFACTS}/{_quote(posixpath.join(root, path))}", out)
        return str(local)

    def close(self) -> None:
        self._http.close()

    # -- helpers --------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        endpoint: str,
        body: Mapping[str, Any],
        *,
        applied: Callable[[], Any] | None = None,
    ) -> Any:
        """One call; `applied`, for a create, answers what it made when it may have been
        applied despite the error (None: it was not, send it again)."""
        # As MLflow's client: GET sends the fields as the query, the others as JSON.
        if method == "GET":
            return self._http.json(method, f"{_API}/{endpoint}", body) or {}
        return self._http.json(method, f"{_API}/{endpoint}", body=body, applied=applied) or {}

    def _proxied_root(self, run_id: str) -> str | None:
        """The run's folder on the server's artifact proxy; None when not proxied."""
        uri = self._artifact_uris.get(run_id) or self.get_run(run_id).info.artifact_uri
        parts = urllib.parse.urlsplit(uri)
        if parts.scheme != "mlflow-artifacts" or parts.netloc not in ("", self._http.netloc):
            return None
        return parts.path.strip("/")

    def _upload(self, local: Path, folder: str) -> None:
        remote = posixpath.join(folder, local.name)
        kind = mimetypes.guess_type(local.name)[0] or "application/octet-stream"
        self._http.upload(f"{_ARTIFACTS}/{_quote(remote)}", local, kind)

    def _mlflow(self) -> Any:
        """MLflow's client, for artifacts the server does not proxy."""
        if self._mlflow_client is None:
            from mlflow import MlflowClient

            self._mlflow_client = MlflowClient(self.tracking_uri, registry_uri=self.tracking_uri)
        return self._mlflow_client


class _Connection:
    """One kept-alive HTTP(S) connection to the server, with MLflow's retries and auth."""

    def __init__(
        self, tracking_uri: str, env: Mapping[str, str], budget: Budget | None = None
    ) -> None:
        self._connection: http.client.HTTPConnection | None = None  # first: __del__ reads it
        self.budget = budget or Budget(None)
        parts = urllib.parse.urlsplit(tracking_uri)
        self.https = parts.scheme == "https"
        self.host = parts.hostname or ""
        # http.client reads a bare IPv6 address's last ':' as a port: always give one.
        self.port = parts.port or (443 if self.https else 80)
        shown = f"[{self.host}]" if ":" in self.host else self.host
        self.netloc = f"{shown}:{parts.port}" if parts.port else shown
        self.prefix = parts.path.rstrip("/")
        self.headers = {"User-Agent": f"mlci/{__version__}", "Accept": "application/json"}
        user, password = _credentials(env)
        if not (user and password) and parts.username:
            user = urllib.parse.unquote(parts.username)
            password = urllib.parse.unquote(parts.password or "")
        if user and password:  # as MLflow: an empty secret is no password
            pair = base64.b64encode(f"{user}:{password}".encode()).decode()
            self.headers["Authorization"] = f"Basic {pair}"
        elif env.get("MLFLOW_TRACKING_TOKEN"):
            self.headers["Authorization"] = f"Bearer {env['MLFLOW_TRACKING_TOKEN']}"
        if "Authorization" in self.headers:
            refuse_plain_http(tracking_uri)
        self.retries = _int(env.get("MLFLOW_HTTP_REQUEST_MAX_RETRIES"), 7)
        self.backoff = _float(env.get("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"), 2.0)
        self.timeout = _float(env.get("MLFLOW_HTTP_REQUEST_TIMEOUT"), 120.0)
        self.context = _tls(env) if self.https else None

    def json(
        self,
        method: str,
        path: str,
        query: Mapping[str, Any] | None = None,
        *,
        body: Mapping[str, Any] | None = None,
        applied: Callable[[], Any] | None = None,
    ) -> Any:
        """The parsed answer. With `applied`, the request is not idempotent: after a failure
        whose outcome is unknown it is sent again only when `applied()` finds nothing."""
        data = None if body is None else json.dumps(body, allow_nan=False).encode()
        headers = {"Content-Type": "application/json"} if data is not None else {}
        found: Callable[[], bytes | None] | None = None
        if applied is not None:

            def found() -> bytes | None:
                done = applied()
                return None if done is None else json.dumps(done).encode()

        url = self._url(path, query)
        _, answer = self._request(method, url, lambda: data, headers, applied=found)
        return json.loads(answer) if answer.strip() else None

    def upload(self, path: str, local: Path, kind: str) -> None:
        size = local.stat().st_size
        headers = {"Content-Type": kind, "Content-Length": str(size)}
        with local.open("rb") as source:

            def rewound() -> BinaryIO:
                source.seek(0)
                return source

            self._request("PUT", self._url(path, None), rewound, headers)

    def download(self, path: str, out: BinaryIO) -> None:
        def rewound() -> None:
            out.seek(0)
            out.truncate()

        self._request("GET", self._url(path, None), lambda: None, {}, out=out, restart=rewound)

    # -- one request, retried ---------------------------------------------------------------

    def _url(self, path: str, query: Mapping[str, Any] | None) -> str:
        url = self.prefix + path
        if query:
            url += "?" + urllib.parse.urlencode(query, doseq=True)
        return url

    def _request(
        self,
        method: str,
        url: str,
        body: Any,
        headers: Mapping[str, str],
        *,
        out: BinaryIO | None = None,
        restart: Any = None,
        applied: Callable[[], bytes | None] | None = None,
    ) -> tuple[int, bytes]:
        with self.budget.counting():  # retries, waits and lookups: all of it counts
            attempt = 0
            while True:
                wait: float | None = None
                try:
                    if restart is not None:
                        restart()
                    status, answer_headers, answer = self._once(
                        method, url, body(), headers, out, restart, resend=applied is None
                    )
                except (OSError, http.client.HTTPException) as exc:
                    self.close()
                    failure = RestError(f"cannot connect to {self.netloc}: {_reason(exc)}")
                    if self.budget.spent():
                        raise self._deadline(attempt) from None
                else:
                    if status < 300:
                        return status, answer
                    failure = _error(status, answer, answer_headers)
                    if status not in _RETRY_STATUS:
                        raise failure
                    wait = _retry_after(answer_headers.get("retry-after"))
                last = attempt >= self.retries
                if not last:
                    pause = wait if wait is not None else self.backoff * 2**attempt
                    left = self.budget.left()
                    if left is not None and pause >= left:
                        raise self._deadline(attempt)  # the retry could not even start
                    time.sleep(pause)
                # A create the server may have applied before the error: found, not sent twice.
                done = applied() if applied is not None else None
                if done is not None:
                    return 200, done
                if last:
                    self.close()  # nothing left to send on it
                    if attempt:
                        failure.args = (f"{failure.args[0]} (after {attempt + 1} attempts)",)
                    raise failure
                attempt += 1

    def _deadline(self, attempt: int) -> Exception:
        self.close()
        tries = f" ({attempt + 1} attempts)" if attempt else ""
        return self.budget.exceeded(f"no answer from {self.netloc}{tries}")

    def _once(
        self,
        method: str,
        url: str,
        body: Any,
        headers: Mapping[str, str],
        out: BinaryIO | None,
        restart: Any,
        *,
        resend: bool = True,
    ) -> tuple[int, dict[str, str], bytes]:
        reused = self._connection is not None
        try:
            return self._exchange(method, url, body, headers, out)
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            if not reused or not resend:
                raise  # a create may have arrived: `_request` looks it up first
            # The server closed the kept-alive connection between requests: a new one,
            # from the start (the body sent again, a download written again).
            self.close()
            if hasattr(body, "seek"):
                body.seek(0)
            if restart is not None:
                restart()
            return self._exchange(method, url, body, headers, out)

    def _exchange(
        self,
        method: str,
        url: str,
        body: Any,
        headers: Mapping[str, str],
        out: BinaryIO | None,
    ) -> tuple[int, dict[str, str], bytes]:
        connection = self._connect()
        # Each request waits at most what is left of the run's budget for the registry.
        left = self.budget.left()
        if left is not None and left <= 0:
            raise TimeoutError("registry.timeout_minutes spent")
        timeout = self.timeout if left is None else min(self.timeout, left)
        connection.timeout = timeout
        if connection.sock is not None:
            connection.sock.settimeout(timeout)
        connection.request(method, url, body=body, headers={**self.headers, **headers})
        response = connection.getresponse()
        answer_headers = {name.lower(): value for name, value in response.getheaders()}
        if out is not None and response.status < 300:
            while chunk := response.read(_CHUNK):
                out.write(chunk)
            answer = b""
        else:
            answer = response.read()
        if response.will_close:
            self.close()
        return response.status, answer_headers, answer

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            if self.https:
                self._connection = http.client.HTTPSConnection(
                    self.host,
                    self.port,
                    timeout=self.timeout,
                    context=self.context,
                    blocksize=_CHUNK,
                )
            else:
                self._connection = http.client.HTTPConnection(
                    self.host, self.port, timeout=self.timeout, blocksize=_CHUNK
                )
        return self._connection

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __del__(self) -> None:
        self.close()  # the kept-alive socket goes with the registry that used it


def _error(status: int, answer: bytes, headers: Mapping[str, str]) -> RestError:
    """The server's own words: MLflow's `{error_code, message}`, else the body's first line."""
    code, message = "", ""
    try:
        parsed = json.loads(answer)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        code = str(parsed.get("error_code", ""))
        message = str(parsed.get("message", ""))
    if not message:
        text = answer.decode("utf-8", "replace").strip()
        message = text.splitlines()[0][:300] if text else http.client.responses.get(status, "")
    if 300 <= status < 400:
        where = headers.get("location", "")
        message = f"the server redirects to {where}: set the tracking URI to that address"
    label = f"{code}, status code {status}" if code else f"status code {status}"
    return RestError(f"{message} ({label})", status=status, error_code=code)


def _experiment(found: Mapping[str, Any]) -> Experiment:
    return Experiment(
        experiment_id=str(found["experiment_id"]),
        name=found.get("name", ""),
        artifact_location=found.get("artifact_location", ""),
    )


def _run(found: Mapping[str, Any]) -> Run:
    info, data = found.get("info", {}), found.get("data", {})
    return Run(
        info=RunInfo(
            run_id=info.get("run_id") or info.get("run_uuid", ""),
            status=info.get("status", ""),
            artifact_uri=info.get("artifact_uri", ""),
            start_time=int(info["start_time"]) if info.get("start_time") else None,
        ),
        data=RunData(
            metrics={m["key"]: float(m["value"]) for m in data.get("metrics", [])},
            params=_dict(data.get("params")),
            tags=_dict(data.get("tags")),
        ),
    )


def _model_version(found: Mapping[str, Any]) -> ModelVersion:
    created = found.get("creation_timestamp")
    return ModelVersion(
        name=found["name"],
        version=str(found["version"]),
        run_id=found.get("run_id") or None,
        status=found.get("status", "READY"),
        source=found.get("source"),
        creation_timestamp=int(created) if created is not None else None,
        tags=_dict(found.get("tags")),
    )


def _pairs(mapping: Mapping[str, str]) -> list[dict[str, str]]:
    return [{"key": key, "value": value} for key, value in mapping.items()]


def _dict(pairs: list[dict[str, str]] | None) -> dict[str, str]:
    return {pair["key"]: pair.get("value", "") for pair in pairs or []}


def _number(value: float) -> float | str:
    """Protobuf's JSON spells the non-finite doubles as strings."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def _quote(path: str) -> str:
    return urllib.parse.quote(path.strip("/"), safe="/")


def _safe(path: str) -> str:
    """A path the server listed, refused if it would leave the download folder."""
    normal = posixpath.normpath(path)
    if normal.startswith(("/", "..")) or "\\" in normal:
        raise RestError(f"the server listed an unsafe artifact path: {path!r}")
    return normal


def _retry_after(value: str | None) -> float | None:
    try:
        return min(max(float(value), 0.0), _MAX_RETRY_AFTER_S) if value else None
    except ValueError:
        return None


def _reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out (MLFLOW_HTTP_REQUEST_TIMEOUT)"
    if isinstance(exc, ssl.SSLCertVerificationError):
        fix = "set MLFLOW_TRACKING_SERVER_CERT_PATH to the server's CA bundle"
        return f"{exc.verify_message}: {fix}"
    return str(exc) or type(exc).__name__


def _tls(env: Mapping[str, str]) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=_ca_bundle(env))
    if _true(env.get("MLFLOW_TRACKING_INSECURE_TLS")):
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if env.get("MLFLOW_TRACKING_CLIENT_CERT_PATH"):
        context.load_cert_chain(env["MLFLOW_TRACKING_CLIENT_CERT_PATH"])
    return context


def _ca_bundle(env: Mapping[str, str]) -> str | None:
    """The CA bundle MLflow's client (requests) would verify the server with."""
    for name in ("MLFLOW_TRACKING_SERVER_CERT_PATH", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        if env.get(name):
            return env[name]
    try:
        import certifi  # requests' own bundle, where it is installed
    except ImportError:
        return None  # the system's
    return str(certifi.where())


def _credentials(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    """User and password as MLflow reads them: each from the environment, else from
    ~/.mlflow/credentials (its `[mlflow]` section)."""
    from_file: Mapping[str, str] = {}
    path = Path("~/.mlflow/credentials").expanduser()
    if path.is_file():
        import configparser

        parser = configparser.ConfigParser()
        try:
            parser.read(path)
        except configparser.Error:
            # Not the parser's message: it quotes the offending line, a password perhaps.
            raise UsageError(
                f"{path} is not a valid INI file: fix or remove it (MLflow reads it too, "
                f"for [mlflow] mlflow_tracking_username and mlflow_tracking_password)"
            ) from None
        if parser.has_section("mlflow"):
            from_file = parser["mlflow"]
    return (
        env.get("MLFLOW_TRACKING_USERNAME") or from_file.get("mlflow_tracking_username"),
        env.get("MLFLOW_TRACKING_PASSWORD") or from_file.get("mlflow_tracking_password"),
    )


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes")


def _int(value: str | None, default: int) -> int:
    try:
        return max(int(value), 0) if value else default
    except ValueError:
        return default


def _float(value: str | None, default: float) -> float:
    try:
        return max(float(value), 0.0) if value else default
    except ValueError:
        return default
