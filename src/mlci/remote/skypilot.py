"""SkyPilot (`train.on: skypilot`): the training as a SkyPilot task, through its client SDK.

SkyPilot 0.10+ is client/server: the SDK sends each call over HTTP to an API server
(train.skypilot.api_server, else SKYPILOT_API_SERVER_ENDPOINT) that holds the cloud
credentials and does the work; every call returns a request id, and `sky.get` waits for
its result. On demand, the task runs on a cluster named after the run, launched with
`down=True` and an autostop: the cluster goes down by itself when the job ends, even if
mlci is gone. With spot (or `managed: true`) it is a managed job: SkyPilot's controller
recovers a lost spot instance and removes the cluster when the job ends.

The task's workdir is a folder holding exactly what goes up to a Ray job
(mlci.remote.package: the files git lists, the data DVC pulled, the wrapper and the run's
spec), not the project's folder: SkyPilot's upload skips what .gitignore lists, and the
data DVC pulled is gitignored. The task's `run` is the same wrapper as Ray's
(mlci.remote.entry) with the bucket mounted at /mlci-storage: it copies the outputs there
and writes done.json with the training's exit code, which mlci reads back.

`sky` is imported inside the functions that use it: it is heavy, and only this engine
needs it (`pip install mlci[skypilot]`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sys
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlci.core.redact import plain_http_refusal, redact_url
from mlci.errors import ExternalError, UsageError
from mlci.remote import entry, package
from mlci.remote.base import NAME_PREFIX, Launched, Plan, Progress, State, Where

if TYPE_CHECKING:
    from mlci.config import Resources, SkyPilotConfig

STORAGE_MOUNT = "/mlci-storage"  # where the task sees train.storage: outputs go to <it>/<run_id>
# The run: mlci's wrapper, which writes the outputs and done.json under the mounted bucket.
RUN = f"{package.ENTRYPOINT} {entry.SPEC} {STORAGE_MOUNT}"
# An empty .skyignore in the workdir: SkyPilot then ignores no file (not even gitignored data).
SKYIGNORE = ".skyignore"
BUCKETS = ("s3://", "gs://", "r2://", "cos://", "oci://", "https://")  # what SkyPilot mounts
ENDPOINT_ENV = "SKYPILOT_API_SERVER_ENDPOINT"
_FIX_SERVER = (
    "start one (`sky api start`, or a remote one: docs.skypilot.co, 'API server') and set "
    f"train.skypilot.api_server or {ENDPOINT_ENV} to its URL; `sky api info` checks it"
)


def task_config(plan: Plan, settings: SkyPilotConfig, workdir: Path) -> dict[str, Any]:
    """The SkyPilot task (its YAML, as a mapping) that runs `plan` from `workdir` (the
    folder `stage` filled)."""
    if not plan.storage.startswith(BUCKETS):
        raise UsageError(
            f"train.storage is {plan.storage!r}, which SkyPilot cannot mount on the cloud "
            f"machine: use a bucket, e.g. s3://my-bucket/mlci-runs or gs://my-bucket/runs"
        )
    return {
        "name": plan.run_id,
        "workdir": str(workdir),
        "resources": _resources(plan.resources, settings),
        "file_mounts": {STORAGE_MOUNT: {"source": plan.storage, "mode": "MOUNT"}},
        "envs": {**plan.env, "MLCI_RUN_ID": plan.run_id},
        "run": RUN,
    }


def stage(plan: Plan, folder: Path) -> None:
    """Fill the empty `folder` with what goes up (mlci.remote.package), as the task's workdir."""
    package.stage(plan, folder)
    (folder / SKYIGNORE).write_text("")


def managed(settings: SkyPilotConfig) -> bool:
    """A managed job (spot recovery), or a cluster of the run's own."""
    return settings.spot if settings.managed is None else settings.managed


def _resources(resources: Resources, settings: SkyPilotConfig) -> dict[str, Any]:
    found: dict[str, Any] = {}
    if resources.gpus:
        if resources.accelerator is None:
            raise UsageError(
                "train.resources.gpus asks SkyPilot for GPUs, but names no type: set "
                "train.resources.accelerator, e.g. A100, L4 or H100 (`sky show-gpus` lists them)"
            )
        found["accelerators"] = f"{resources.accelerator}:{resources.gpus:g}"
    if resources.cpus is not None:
        found["cpus"] = f"{resources.cpus:g}+"
    if resources.memory_gb is not None:
        found["memory"] = f"{resources.memory_gb:g}+"
    if settings.infra is not None:
        found["infra"] = settings.infra
    if settings.spot:
        # No region pinned: SkyPilot fails over across the regions and clouds allowed.
        found["use_spot"] = True
    return found


class SkyPilotEngine:
    """One training on SkyPilot; see the module's docstring."""

    name = "skypilot"

    def __init__(self, settings: SkyPilotConfig) -> None:
        self.settings = settings
        self.managed = managed(settings)
        self._run_id: str | None = None
        self._job_id: int | None = None
        self._lines: queue.Queue[str] = queue.Queue()
        self._state: State = "pending"
        self._failure: ExternalError | None = None
        self._started = time.monotonic()
        self._ended: float | None = None
        self._follower: threading.Thread | None = None
        self._machine: dict[str, Any] | None = None  # _record, once the job runs
        self._stopped = False
        self._down = False

    # -- the run ------------------------------------------------------------------------

    def launch(self, plan: Plan) -> None:
        """Validate the task with SkyPilot's own schema, then launch it; the output is
        followed in the background."""
        sky = _sky()
        self._use_endpoint()
        # The client uploads the workdir before `launch` returns: then it is no longer needed.
        with tempfile.TemporaryDirectory(prefix="mlci-skypilot-") as folder:
            workdir = Path(folder)
            config = task_config(plan, self.settings, workdir)
            stage(plan, workdir)
            try:
                task = sky.Task.from_yaml_config(config)
            except ValueError as error:  # SkyPilot's schema: the fix is in mlci.yaml
                raise UsageError(f"SkyPilot refused the task for train.skypilot: {error}") from None
            self._run_id = plan.run_id
            self._started = time.monotonic()
            request = self._call("launch", lambda: self._submit(task, plan.run_id))
        self._follower = threading.Thread(target=self._follow, args=(request,), daemon=True)
        self._follower.start()

    def _submit(self, task: Any, run_id: str) -> Any:
        sky = _sky()

        # The SDK prints "Running on cluster: ..." on stdout, which is mlci's results.
        with contextlib.redirect_stdout(sys.stderr):
            if self.managed:
                return sky.jobs.launch(task, name=run_id)
            return sky.launch(
                task,
                cluster_name=run_id,
                down=True,
                idle_minutes_to_autostop=max(1, round(self.settings.autostop_minutes)),
            )

    def poll(self) -> Progress:
        """The lines streamed since the last poll and the state; the exit code is the
        wrapper's, in done.json (mlci.remote.run reads it)."""
        # The state first: the follower queues every line before it sets a final one.
        state, failure = self._state, self._failure
        lines: list[str] = []
        with contextlib.suppress(queue.Empty):
            while True:
                lines.append(self._lines.get_nowait())
        if failure is not None and not lines:
            raise failure
        return Progress(tuple(lines), state)

    def stop(self) -> None:
        """Cancel the job (idempotent)."""
        if self._run_id is None or self._stopped or self._state in _FINAL:
            return
        self._stopped = True
        run_id = self._run_id  # no job yet (still launching): teardown takes the cluster down
        if self.managed:
            self._call("cancel", lambda: _sky().jobs.cancel(name=run_id))
        elif self._job_id is not None:
            job_id = self._job_id
            self._call("cancel", lambda: _sky().cancel(run_id, job_ids=[job_id]))
        self._state = "stopped"

    def teardown(self) -> None:
        """Start removing the cluster (a managed job's controller removes its own); the
        request returns at once, and down=True/autostop finish it if mlci is killed."""
        if self._run_id is None or self._down:
            return
        self._down = True
        if self.managed:
            self.stop()
        else:
            run_id = self._run_id
            self._call("down", lambda: _sky().down(run_id))

    def where(self) -> Where:
        """Cloud, region, instance and price as SkyPilot's status reports them."""
        minutes = ((self._ended or time.monotonic()) - self._started) / 60
        run_id = self._run_id
        if run_id is None:
            return Where(engine=self.name)
        # As read while the job ran: once torn down, the cluster is gone from the status.
        record = self._machine or self._quiet_record(run_id)
        if record is None:
            return Where(engine=self.name, name=run_id, spot=self.settings.spot, minutes=minutes)
        return Where(
            engine=self.name,
            name=run_id,
            cloud=record.get("cloud"),
            region=record.get("region"),
            instance_type=record.get("instance_type"),
            accelerator=record.get("accelerators"),
            spot=self.settings.spot,
            price_per_hour=record.get("price_per_hour"),
            minutes=minutes,
        )

    # -- what is left running -----------------------------------------------------------

    def launched(self) -> list[Launched]:
        """mlci's clusters and managed jobs that are alive."""
        self._use_endpoint()
        sky = _sky()
        clusters = self._call("status", lambda: sky.get(sky.status(all_users=False)))
        found = [
            Launched(self.name, c.name, "cluster", c.status.value, _iso(c.launched_at))
            for c in clusters
            if c.name.startswith(NAME_PREFIX)
        ]
        for job in self._jobs():
            name, status = _field(job, "job_name"), _field(job, "status")
            if str(name).startswith(NAME_PREFIX) and not status.is_terminal():
                found.append(Launched(self.name, name, "job", status.value))
        return found

    def down(self, name: str) -> None:
        """Remove a cluster or cancel a managed job mlci launched."""
        if not name.startswith(NAME_PREFIX):
            raise UsageError(
                f"{name!r} was not launched by mlci (its names start with {NAME_PREFIX})"
            )
        self._use_endpoint()
        sky = _sky()
        clusters = self._call("status", lambda: sky.get(sky.status([name])))
        if clusters:
            self._call("down", lambda: sky.get(sky.down(name)))
        else:
            self._call("cancel", lambda: sky.get(sky.jobs.cancel(name=name)))

    # -- the follower: launch's result, the logs, the job's end -------------------------

    def _follow(self, request: Any) -> None:
        try:
            self._state = "running"
            for line in self._stream(request):
                self._lines.put(line)
            self._state = self._final()
        except ExternalError as error:
            # Stopped while launching, the cluster taken down under it: no failure of its own.
            if not self._stopped:
                self._failure = error
            self._state = "stopped" if self._stopped else "failed"
        finally:
            self._ended = time.monotonic()

    def _stream(self, request: Any) -> Iterator[str]:
        sky = _sky()
        run_id = self._run_id
        assert run_id is not None
        if self.managed:
            job_ids, _ = self._call("launch", lambda: sky.get(request))
            # One id, or a list of them (SkyPilot's jobs.launch says Union[int, List[int]]).
            self._job_id = job_ids[0] if isinstance(job_ids, list) else job_ids
            logs = self._call(
                "logs",
                lambda: sky.jobs.tail_logs(job_id=self._job_id, follow=True, preload_content=False),
            )
        else:
            self._job_id, _ = self._call("launch", lambda: sky.get(request))
            logs = self._call(
                "logs",
                lambda: sky.tail_logs(run_id, self._job_id, follow=True, preload_content=False),
            )
        self._machine = self._quiet_record(run_id)
        for chunk in logs:
            if chunk is None:
                break
            yield from chunk.splitlines()

    def _final(self) -> State:
        if self._stopped:
            return "stopped"
        sky = _sky()
        run_id = self._run_id
        assert run_id is not None
        if self.managed:
            jobs = self._jobs([self._job_id] if self._job_id is not None else None)
            status = _field(jobs[0], "status").value if jobs else "FAILED"
        else:
            job_id = self._job_id
            statuses = self._call("job status", lambda: sky.get(sky.job_status(run_id, [job_id])))
            found = statuses.get(job_id)
            status = found.value if found is not None else "FAILED"
        if status == "SUCCEEDED":
            return "succeeded"
        return "stopped" if status == "CANCELLED" else "failed"

    def _quiet_record(self, run_id: str) -> dict[str, Any] | None:
        try:
            return self._record(run_id)
        except ExternalError:  # where it ran is reported as far as known
            return None

    def _record(self, run_id: str) -> dict[str, Any] | None:
        sky = _sky()
        if self.managed:
            for job in self._jobs():
                if _field(job, "job_name") == run_id:
                    return {
                        "cloud": _field(job, "cloud"),
                        "region": _field(job, "region"),
                        "accelerators": _accelerators(_field(job, "accelerators")),
                    }
            return None
        clusters = self._call("status", lambda: sky.get(sky.status([run_id])))
        if not clusters:
            return None
        cluster = clusters[0]
        resources = getattr(cluster.handle, "launched_resources", None)
        return {
            "cloud": cluster.cloud,
            "region": cluster.region,
            "accelerators": cluster.accelerators,
            "instance_type": getattr(resources, "instance_type", None),
            "price_per_hour": _price(resources),
        }

    def _jobs(self, job_ids: list[int] | None = None) -> list[Any]:
        sky = _sky()
        found = self._call(
            "jobs queue", lambda: sky.get(sky.jobs.queue_v2(refresh=False, job_ids=job_ids))
        )
        # queue_v2 answers (jobs, total, counts, total_no_filter); an older server a list
        return list(found[0] if isinstance(found, tuple) else found)

    # -- the SDK's boundary -------------------------------------------------------------

    def _use_endpoint(self) -> None:
        _sky()  # SkyPilot installed, or the fix
        from sky.server import common

        # The SDK reads its server's URL from the environment, and keeps the first it read
        # (and whether that one is on this machine): a new engine may name another.
        if self.settings.api_server is not None:
            os.environ[ENDPOINT_ENV] = self.settings.api_server
        common.get_server_url.cache_clear()
        common.is_api_server_local.cache_clear()
        endpoint = os.environ.get(ENDPOINT_ENV)
        if endpoint is None:
            return
        if urllib.parse.urlsplit(endpoint).password is not None:
            refusal = plain_http_refusal(
                endpoint,
                "the SkyPilot API server's login",
                f"train.skypilot.api_server or {ENDPOINT_ENV}",
            )
            if refusal is not None:
                raise ExternalError(refusal)
        _check_server(endpoint)

    def _call(self, what: str, call: Callable[[], Any]) -> Any:
        try:
            return call()
        except UsageError:
            raise
        except Exception as error:  # the SDK's and requests' exceptions, translated here
            endpoint = redact_url(os.environ.get(ENDPOINT_ENV, "the local API server"))
            raise ExternalError(
                f"SkyPilot's {what} request failed at {endpoint}: {redact_url(_message(error))}"
            ) from None


_FINAL: tuple[State, ...] = ("succeeded", "failed", "stopped")


def _sky() -> Any:
    try:
        import sky
    except ImportError:
        raise UsageError(
            "train.on: skypilot needs SkyPilot's client on the runner: pip install "
            "'mlci[skypilot]' (or skypilot at the API server's version) in the job"
        ) from None

    # SkyPilot logs its progress ("Uploading files...") to stdout: mlci's results go there.
    for handler in logging.getLogger("sky").handlers:
        if isinstance(handler, logging.StreamHandler) and type(handler).__module__.startswith(
            "sky."
        ):
            handler.stream = _STDERR  # not setStream: it flushes the old one, maybe closed
    return sky


class _Stderr:
    """Whatever sys.stderr is when a line is written (a test may swap it)."""

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()


_STDERR = _Stderr()


def _check_server(endpoint: str) -> None:
    from sky.server import common

    info = common.get_api_server_status(endpoint)
    shown = redact_url(endpoint)
    status = info.status.value
    if status == "healthy":
        return
    if status == "needs_auth":
        raise ExternalError(
            f"the SkyPilot API server at {shown} asks for a login: run `sky api login -e "
            f"{shown}` in the job, or put the credentials in the URL from a CI secret"
        )
    if status == "version_mismatch":
        raise ExternalError(
            f"the SkyPilot API server at {shown} and this client do not match "
            f"({redact_url(info.error or '')}): install the server's version here "
            "(pip install skypilot==<its version>)"
        )
    raise ExternalError(f"no SkyPilot API server answered at {shown}: {_FIX_SERVER}")


def _message(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0] if text else ''}"


def _field(record: Any, name: str) -> Any:
    return record.get(name) if isinstance(record, dict) else getattr(record, name, None)


def _accelerators(found: dict[str, float] | None) -> str | None:
    if not found:
        return None
    return ",".join(f"{name}:{count:g}" for name, count in found.items())


def _price(resources: Any) -> float | None:
    try:
        return float(resources.get_cost(3600))
    except Exception:  # no catalog entry for it (Kubernetes, a stand-in): not reported
        return None


def _iso(timestamp: int | None) -> str | None:
    if not timestamp:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(timestamp))
