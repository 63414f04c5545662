"""A stand-in for SkyPilot's API server, as SkyPilot 0.14.1's client SDK expects it.

It mirrors `sky/server/server.py`, `sky/jobs/server/server.py` and `sky/server/requests/`
of skypilot 0.14.1 (API version 62), so that the unchanged SDK (`sky.launch`, `sky.get`,
`sky.tail_logs`, `sky.jobs.*`) talks to it over HTTP:

- `GET /api/health`: `status`, `api_version`, `version`, `commit` in the body, and the
  `X-SkyPilot-API-Version` / `X-SkyPilot-Version` headers the client checks for
  compatibility (every answer carries them, as the real server's middleware adds them).
- Each call (`POST /launch`, `/logs`, `/status`, `/job_status`, `/cancel`, `/down`,
  `/jobs/launch`, `/jobs/logs`, `/jobs/queue/v2`, `/jobs/cancel`, `/validate`) answers
  with the `X-Skypilot-Request-ID` header; `GET /api/get?request_id=` waits for the
  request and answers its `RequestPayload` (request names `sky.<name>`, the return value
  as JSON, an error as SkyPilot's pickled, serialized exception, status 500).
- `/logs` and `/jobs/logs` stream the job's output as plain lines while it runs.
- The workdir comes up through `/upload_v2/blob` (exists?) and `POST /upload_v2` (zip
  chunks), as the client's `upload_mounts_to_api_server` sends it.

Its "cloud" is this machine: a launch unzips the uploaded workdir and runs the task's
`run` with bash there, with the task's envs; a file_mount's target path in the script
stands for a local folder (`bucket`), the bucket the test reads the outputs back from.
With `sync_mounts`, what the job wrote there lands at the mount's source (s3://..., through
pyarrow and the AWS_* environment: a local S3 server) when the job ends, before its status
does, as a MOUNT's writes reach the bucket.
It does not provision, so no price or instance type: what a cloud would report stays
untested here (docs/gpu.md says so).
"""

from __future__ import annotations

import base64
import contextlib
import http.server
import io
import json
import os
import pickle
import subprocess
import threading
import time
import urllib.parse
import uuid
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

VERSION = "0.14.1"
API_VERSION = 62


@dataclass
class Job:
    job_id: int
    name: str
    managed: bool
    process: subprocess.Popen[bytes] | None = None
    lines: list[str] = field(default_factory=list)
    status: str = "PENDING"
    task: dict[str, Any] = field(default_factory=dict)
    submitted_at: float = field(default_factory=time.time)
    on_exit: Any = None  # called when the process has ended, before the status is final


@dataclass
class Call:
    """One request the stand-in received: what a test asserts on."""

    path: str
    body: dict[str, Any]
    headers: dict[str, str]


class SkyPilotStandIn:
    """The server; `url` is its endpoint (SKYPILOT_API_SERVER_ENDPOINT)."""

    def __init__(self, folder: Path, *, sync_mounts: bool = False) -> None:
        self.folder = folder
        self.sync_mounts = sync_mounts
        self.bucket = folder / "bucket"
        self.bucket.mkdir(parents=True, exist_ok=True)
        self.calls: list[Call] = []
        self.clusters: dict[str, Job] = {}  # one job per cluster, as mlci launches
        self.jobs: dict[int, Job] = {}  # managed jobs
        self._requests: dict[str, dict[str, Any]] = {}
        self._downed: list[Job] = []
        self.provision_s = 0.0  # how long a launch takes to bring its machine up
        self.started: list[Job] = []  # every job that ran
        self._gone: set[str] = set()  # clusters taken down, maybe while still launching
        self._blobs: dict[str, bytes] = {}
        self._next_job = 1
        self._lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"standin": self})
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> SkyPilotStandIn:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for job in [*self.clusters.values(), *self.jobs.values(), *self._downed]:
            _kill(job)
            if job.process is not None:
                job.process.wait(10)
        self._server.shutdown()
        self._server.server_close()

    def paths(self) -> list[str]:
        return [call.path for call in self.calls]

    # -- requests ---------------------------------------------------------------------

    def request(self, name: str, work: Any) -> str:
        """Start request `name`; `work()` gives its return value or raises its error."""
        request_id = uuid.uuid4().hex
        record: dict[str, Any] = {"name": name, "status": "RUNNING", "done": threading.Event()}
        self._requests[request_id] = record

        def run() -> None:
            try:
                record["return_value"] = work()
                record["status"] = "SUCCEEDED"
            except Exception as error:  # the request's error, as the server keeps it
                record["error"] = error
                record["status"] = "FAILED"
            record["done"].set()

        threading.Thread(target=run, daemon=True).start()
        return request_id

    def settle(self) -> None:
        """Wait for every request to end."""
        for record in list(self._requests.values()):
            record["done"].wait(60)

    def payload(self, request_id: str) -> tuple[int, dict[str, Any]]:
        record = self._requests[request_id]
        record["done"].wait(60)
        from sky import exceptions
        from sky.server.requests import payloads

        error = None
        if "error" in record:
            exc = record["error"]
            error = {
                "object": _pickled(exceptions.serialize_exception(exc)),
                "type": type(exc).__name__,
                "message": str(exc),
            }
        body = {
            "request_id": request_id,
            "name": "sky." + record["name"],
            "entrypoint": _pickled(json.dumps),  # a callable, pickled by reference
            "request_body": _pickled(payloads.RequestBody()),
            "status": record["status"],
            "created_at": time.time(),
            "user_id": "standin",
            "return_value": json.dumps(record.get("return_value")),
            "error": json.dumps(error),
            "pid": None,
            "schedule_type": "long",
            "finished_at": time.time(),
        }
        return (500, {"detail": body}) if error else (200, body)

    # -- the "cloud" -------------------------------------------------------------------

    def start(self, dag_yaml: str, blob_id: str | None, name: str, managed: bool) -> Job:
        time.sleep(self.provision_s)
        if name in self._gone:
            from sky import exceptions

            raise exceptions.ClusterDoesNotExist(f"Cluster {name!r} was torn down while launching")
        documents = [d for d in yaml.safe_load_all(dag_yaml) if d and "run" in d]
        task = documents[0]
        with self._lock:
            job = Job(self._next_job, name, managed, task=task)
            self._next_job += 1
        workdir = self.folder / f"job-{job.job_id}"
        workdir.mkdir()
        if blob_id is not None:
            _unzip_workdir(self._blobs[blob_id], workdir)
        script = task["run"]
        sources = []
        for target, mount in (task.get("file_mounts") or {}).items():
            script = script.replace(target, str(self.bucket))
            assert isinstance(mount, dict) and mount["mode"] == "MOUNT", mount
            sources.append(mount["source"])
        if self.sync_mounts:
            job.on_exit = lambda: [_sync(self.bucket, source) for source in sources]
        env = {**os.environ, **{k: str(v) for k, v in (task.get("envs") or {}).items()}}
        job.process = subprocess.Popen(
            ["bash", "-c", script], cwd=workdir, env=env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        job.status = "RUNNING"
        threading.Thread(target=_read, args=(job,), daemon=True).start()
        self.started.append(job)
        if managed:
            self.jobs[job.job_id] = job
        else:
            self.clusters[name] = job
        return job

    def follow(self, job: Job) -> Iterator[bytes]:
        sent = 0
        while True:
            finished = job.status not in ("PENDING", "RUNNING")
            while sent < len(job.lines):
                yield job.lines[sent].encode()
                sent += 1
            if finished:
                return
            time.sleep(0.05)

    def cancel(self, job: Job) -> None:
        if job.status in ("PENDING", "RUNNING"):
            job.status = "CANCELLED"
            _kill(job)


def _read(job: Job) -> None:
    assert job.process is not None and job.process.stdout is not None
    for raw in job.process.stdout:
        job.lines.append(raw.decode(errors="replace"))
    job.process.stdout.close()
    code = job.process.wait()
    if job.on_exit is not None:
        job.on_exit()
    if job.status == "RUNNING":
        job.status = "SUCCEEDED" if code == 0 else "FAILED"


def _sync(folder: Path, source: str) -> None:
    from pyarrow import fs

    filesystem, where = fs.FileSystem.from_uri(source)
    fs.copy_files(str(folder), where, destination_filesystem=filesystem)


def _kill(job: Job) -> None:
    """As SkyPilot's cancel and down do (`subprocess_utils.kill_children_processes`): the
    job's process and all its descendants, also those in sessions of their own (mlci's
    wrapper starts the training in one), not only its process group."""
    import psutil

    if job.process is None or job.process.poll() is not None:
        return
    with contextlib.suppress(psutil.NoSuchProcess):
        descendants = psutil.Process(job.process.pid).children(recursive=True)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(job.process.pid, 9)
        for process in descendants:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()


def _unzip_workdir(data: bytes, target: Path) -> None:
    # The client zips the workdir under its absolute path; the job runs in its files.
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        names = [n for n in archive.namelist() if not n.endswith("/")]
        root = os.path.commonpath(names) if len(names) > 1 else str(Path(names[0]).parent)
        for name in names:
            path = target / os.path.relpath(name, root)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(archive.read(name))


def _pickled(value: object) -> str:
    return base64.b64encode(pickle.dumps(value)).decode()


class _Handler(http.server.BaseHTTPRequestHandler):
    standin: SkyPilotStandIn
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    # -- plumbing ----------------------------------------------------------------------

    def _answer(self, status: int, body: object, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self._versions()
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _versions(self) -> None:
        self.send_header("X-SkyPilot-API-Version", str(API_VERSION))
        self.send_header("X-SkyPilot-Version", VERSION)

    def _stream(self, request_id: str, chunks: Iterator[bytes]) -> None:
        self.send_response(200)
        self._versions()
        self.send_header("X-Skypilot-Request-ID", request_id)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in chunks:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))
        data = b""  # the upload's chunks come without a length (httpx streams the file)
        while size := int(self.rfile.readline().split(b";")[0], 16):
            data += self.rfile.read(size)
            self.rfile.readline()
        self.rfile.readline()
        return data

    def _started(self, name: str, work: Any) -> None:
        self._answer(200, {}, {"X-Skypilot-Request-ID": self.standin.request(name, work)})

    # -- routes ------------------------------------------------------------------------

    def do_GET(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(parts.query))
        self.standin.calls.append(Call(parts.path, query, dict(self.headers)))
        if parts.path == "/api/health":
            self._answer(200, {
                "status": "healthy", "api_version": API_VERSION, "version": VERSION,
                "version_on_disk": VERSION, "commit": "standin", "basic_auth_enabled": False,
                "user": {"name": "standin", "id": "standin"},
            })  # fmt: skip
        elif parts.path == "/api/get":
            self._answer(*self.standin.payload(query["request_id"]))
        elif parts.path == "/upload_v2/blob":
            self._answer(200, {"exists": query["blob_id"] in self.standin._blobs})
        else:
            self._answer(404, {"detail": f"Not Found: {parts.path}"})

    def do_POST(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        data = self._body()
        if parts.path == "/upload_v2":
            query = dict(urllib.parse.parse_qsl(parts.query))
            self.standin._blobs[query["upload_id"]] = (
                self.standin._blobs.get(query["upload_id"], b"") + data
            )
            self.standin.calls.append(Call(parts.path, query, dict(self.headers)))
            self._answer(200, {"status": "completed"})
            return
        body = json.loads(data or b"{}")
        self.standin.calls.append(Call(parts.path, body, dict(self.headers)))
        route = _ROUTES.get(parts.path)
        if route is None:
            self._answer(404, {"detail": f"Not Found: {parts.path}"})
        else:
            route(self, body)


def _validate(handler: _Handler, body: dict[str, Any]) -> None:
    from sky.utils import dag_utils

    dag_utils.load_chain_dag_from_yaml_str(body["dag"])  # as the real server: its schema
    handler._answer(200, {})


def _launch(handler: _Handler, body: dict[str, Any]) -> None:
    standin = handler.standin

    def work() -> dict[str, Any]:
        job = standin.start(
            body["task"], body.get("file_mounts_blob_id"), body["cluster_name"], False
        )
        return {"job_id": job.job_id, "handle": None}

    handler._started("launch", work)


def _jobs_launch(handler: _Handler, body: dict[str, Any]) -> None:
    standin = handler.standin

    def work() -> dict[str, Any]:
        job = standin.start(body["task"], body.get("file_mounts_blob_id"), body["name"], True)
        return {"job_id": job.job_id, "handle": None}

    handler._started("jobs.launch", work)


def _logs(handler: _Handler, body: dict[str, Any]) -> None:
    from sky import exceptions

    job = handler.standin.clusters.get(body["cluster_name"])
    if job is None:
        request_id = handler.standin.request(
            "logs", lambda: _raise(exceptions.ClusterDoesNotExist(body["cluster_name"]))
        )
        handler._stream(request_id, iter(()))
        return
    handler._stream(handler.standin.request("logs", lambda: 0), handler.standin.follow(job))


def _jobs_logs(handler: _Handler, body: dict[str, Any]) -> None:
    job = handler.standin.jobs[body["job_id"]]
    handler._stream(handler.standin.request("jobs.logs", lambda: 0), handler.standin.follow(job))


def _job_status(handler: _Handler, body: dict[str, Any]) -> None:
    job = handler.standin.clusters.get(body["cluster_name"])
    handler._started(
        "job_status", lambda: {str(i): job.status if job else None for i in body["job_ids"]}
    )


def _status(handler: _Handler, body: dict[str, Any]) -> None:
    names = body.get("cluster_names")
    clusters = [
        _cluster_record(name, job)
        for name, job in handler.standin.clusters.items()
        if names is None or name in names
    ]
    handler._started("status", lambda: clusters)


def _cluster_record(name: str, job: Job) -> dict[str, Any]:
    accelerators = (job.task.get("resources") or {}).get("accelerators") or {}
    return {
        "name": name, "launched_at": int(job.submitted_at), "status": "UP", "autostop": 10,
        "to_down": True, "cluster_hash": "standin", "cluster_ever_up": True,
        "user_hash": "standin", "user_name": "standin", "workspace": "default",
        "is_managed": False, "nodes": 1, "cloud": "AWS", "region": "us-east-1",
        "accelerators": ",".join(f"{k}:{v}" for k, v in accelerators.items()) or None,
    }  # fmt: skip


def _cancel(handler: _Handler, body: dict[str, Any]) -> None:
    job = handler.standin.clusters[body["cluster_name"]]
    handler.standin.cancel(job)
    handler._started("cancel", lambda: None)


def _down(handler: _Handler, body: dict[str, Any]) -> None:
    handler.standin._gone.add(body["cluster_name"])
    job = handler.standin.clusters.pop(body["cluster_name"], None)
    if job is not None:
        handler.standin.cancel(job)
        handler.standin._downed.append(job)
    handler._started("down", lambda: None)


def _jobs_queue(handler: _Handler, body: dict[str, Any]) -> None:
    wanted = body.get("job_ids")
    jobs = [
        {"job_id": job.job_id, "job_name": job.name, "status": job.status,
         "cloud": "AWS", "region": "us-east-1", "submitted_at": job.submitted_at}
        for job in handler.standin.jobs.values()
        if not wanted or job.job_id in wanted
    ]  # fmt: skip
    handler._started("jobs.queue_v2", lambda: {"jobs": jobs, "total": len(jobs)})


def _jobs_cancel(handler: _Handler, body: dict[str, Any]) -> None:
    for job in handler.standin.jobs.values():
        if job.name == body.get("name") or job.job_id in (body.get("job_ids") or ()):
            handler.standin.cancel(job)
    handler._started("jobs.cancel", lambda: None)


def _raise(error: Exception) -> Any:
    raise error


_ROUTES = {
    "/validate": _validate,
    "/launch": _launch,
    "/logs": _logs,
    "/job_status": _job_status,
    "/status": _status,
    "/cancel": _cancel,
    "/down": _down,
    "/jobs/launch": _jobs_launch,
    "/jobs/logs": _jobs_logs,
    "/jobs/queue/v2": _jobs_queue,
    "/jobs/cancel": _jobs_cancel,
}
