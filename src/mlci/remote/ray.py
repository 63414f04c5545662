"""The Ray engine: the training as a Ray job, through the Ray Jobs REST API.

mlci speaks the Jobs API with its own HTTP client (mlci.http), so the CI runner needs no
Ray install to submit: the project goes up as a package (`PUT /api/packages/gcs/...`),
the job is `POST /api/jobs/` with that package as its working_dir and mlci's wrapper
(mlci.remote.entry) as its entrypoint, the output comes from `GET /api/jobs/{id}/logs`
(the whole log each time: paced by LOG_FETCH_SHARE), and `POST /api/jobs/{id}/stop`
stops it. The requests follow Ray's REST API description
(docs.ray.io, "Ray Jobs REST API") and its server, ray/dashboard/modules/job/job_head.py.

The cluster's address is train.ray.address or, when mlci.yaml names no cluster, the
RAY_ADDRESS environment variable (as `ray job submit` reads it: in CI, a variable of the
repository). With `train.ray.cluster` (a cluster config) mlci brings the cluster up for the run
(`ray up`, which needs the ray CLI on the runner), reaches its Jobs API through `ray
dashboard`'s port forward (SSH, as `ray up` reaches the head: a cloud's firewall need not
open the dashboard's port) to the dashboard port the config's head_start_ray_commands give,
and starts `ray down` at teardown.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from mlci.core.redact import redact_url
from mlci.errors import ExternalError, MlciError, UsageError
from mlci.http import HttpClient, Response
from mlci.remote import package
from mlci.remote.base import NAME_PREFIX, Launched, Plan, Progress, State, Where

if TYPE_CHECKING:
    from mlci.config import RayConfig

ENTRYPOINT = package.ENTRYPOINT
ADDRESS_ENV = "RAY_ADDRESS"  # the cluster's address when mlci.yaml gives none, as Ray's CLI
# Ray keeps packages in its GCS, bounded by its gRPC message size (ray_constants.py:
# GRPC_CPP_MAX_MESSAGE_SIZE, RAY_max_grpc_message_size on the cluster).
PACKAGE_LIMIT_BYTES = 512 * 2**20
_PACKAGE_HINT = (
    "leave the large data in the DVC remote and pull it on the cluster in train.command "
    "(dvc pull && python train.py), or shrink what git tracks in the project's folder"
)
_STATES: dict[str, State] = {
    "PENDING": "pending",
    "RUNNING": "running",
    "SUCCEEDED": "succeeded",
    "FAILED": "failed",
    "STOPPED": "stopped",
}
_ALIVE = ("PENDING", "RUNNING")
_ENDED = ("SUCCEEDED", "FAILED", "STOPPED")
_TEARDOWN_TIMEOUT_S = 2.0  # a cancelled CI job's grace is a few seconds
_FORWARD_WAIT_S = 60.0
DASHBOARD_PORT = 8265  # `ray start --head`'s default --dashboard-port
# The Jobs API gives a job's whole log on each request (its stream of new lines is a
# websocket): a long, chatty training's log is fetched again only after ten times what
# the last fetch took, so fetching takes at most this share of the run's time (a 50 MB
# log that takes 2 s to fetch: every 20 s, not every poll). Small logs: every poll.
LOG_FETCH_SHARE = 0.1


class RayEngine:
    """One training as one Ray job (see the module's docstring)."""

    name = "ray"

    def __init__(self, settings: RayConfig, env: Mapping[str, str], *, root: Path) -> None:
        self.settings = settings
        self.root = root
        self.env = env
        self.plan: Plan | None = None
        self.info: dict[str, Any] = {}
        self._seen = 0  # characters of the job's log already returned
        self._pending = ""  # a last line not yet ended by a newline
        self._logs_due = 0.0  # time.monotonic() from which the log is fetched again
        self._forward: subprocess.Popen[bytes] | None = None
        self._cluster_up = False
        self._stopped = False
        address, self._setting = _address(settings, env)
        self.client = self._client(address) if address else None

    # -- the Engine Protocol ------------------------------------------------------------------

    def launch(self, plan: Plan) -> None:
        self.plan = plan
        bundle = package.build(plan, limit_bytes=PACKAGE_LIMIT_BYTES, limit_hint=_PACKAGE_HINT)
        if self.settings.cluster is not None:
            self._bring_up(plan.run_id)
        uri = f"gcs://_ray_pkg_{bundle.digest}.zip"
        path = f"/api/packages/gcs/_ray_pkg_{bundle.digest}.zip"
        if self._api().request("GET", path).status != 200:
            self._expect(self._api().request("PUT", path, data=bundle.data), "upload the project")
        body: dict[str, Any] = {
            "entrypoint": ENTRYPOINT,
            "submission_id": plan.run_id,
            "runtime_env": {"working_dir": uri},
            "metadata": {"mlci": "1"},
            **_resources(plan),
        }
        answer = self._api().request("POST", "/api/jobs/", body=body)
        self._expect(answer, "submit the training")

    def poll(self) -> Progress:
        run_id = self._run_id()
        answer = self._api().request("GET", f"/api/jobs/{run_id}")
        self.info = self._expect(answer, "read the job's state").json() or {}
        state = _STATES.get(str(self.info.get("status")), "pending")
        ended = state not in ("pending", "running")
        lines: list[str] = []
        started = time.monotonic()
        if ended or started >= self._logs_due:  # the last lines whatever the pace
            logs = self._api().request("GET", f"/api/jobs/{run_id}/logs")
            text = str((self._expect(logs, "read the job's output").json() or {}).get("logs", ""))
            self._logs_due = started + self._log_pause(time.monotonic() - started)
            lines = self._new_lines(text, final=ended)
        if state in ("failed", "stopped") and self.info.get("message"):
            # Its first line; the rest is the job's last output again, already shown.
            lines.append(f"ray: {str(self.info['message']).splitlines()[0]}")
        code = self.info.get("driver_exit_code")
        return Progress(
            tuple(lines), state, code if isinstance(code, int) and state != "running" else None
        )

    def stop(self) -> None:
        if self.plan is not None and self.client is not None and not self._stopped:
            self._stopped = True  # once: teardown after a stop need not ask again
            self._stop_job(self.plan.run_id)

    def teardown(self) -> None:
        if self.plan is not None and self.info.get("status") not in _ENDED:
            with contextlib.suppress(MlciError):  # the wrapper's own deadline is the backstop
                self.stop()
        if self._forward is not None:
            self._forward.terminate()
            self._forward = None
        if self._cluster_up and self.plan is not None:
            # Started, not awaited: the cloud takes minutes; the cluster config's
            # idle_timeout_minutes is the backstop if this never finishes.
            self._cluster_up = False
            self._ray_cli("down", "-y", *self._cluster_args(self.plan.run_id), wait=False)

    def where(self) -> Where:
        resources = self.plan.resources if self.plan is not None else None
        accelerator = None
        if resources is not None and resources.gpus:
            accelerator = f"{resources.accelerator or 'GPU'}:{resources.gpus:g}"
        start, end = self.info.get("start_time"), self.info.get("end_time")
        minutes = (
            (end - start) / 60_000 if isinstance(start, int) and isinstance(end, int) else None
        )
        name = self.plan.run_id if self.plan is not None else None
        return Where(engine="ray", name=name, accelerator=accelerator, minutes=minutes)

    def launched(self) -> list[Launched]:
        if self.client is None:
            raise UsageError(
                "train.ray.cluster: a cluster mlci brings up per run is not listed (Ray keeps "
                "no list of clusters: a cloud finds one by its name, mlci-<time>-<random>); "
                "`ray get-head-ip <config> --cluster-name NAME`, or the cloud's console "
                "(instances tagged ray-cluster-name), shows one left running"
            )
        answer = self._expect(self._api().request("GET", "/api/jobs/"), "list the jobs")
        found = []
        for job in answer.json() or []:
            name = job.get("submission_id") if isinstance(job, dict) else None
            ours = isinstance(name, str) and name.startswith(NAME_PREFIX)
            if ours and job.get("status") in _ALIVE:
                started = _iso(job.get("start_time"))
                found.append(Launched("ray", str(name), "job", str(job["status"]), started))
        return found

    def down(self, name: str) -> None:
        self._stop_job(name)

    # -- the Jobs API --------------------------------------------------------------------------

    def _client(self, address: str) -> HttpClient:
        headers = _headers(self.env)
        return HttpClient(
            address,
            headers=headers,
            secrets=tuple(headers.values()),
            forge_name=f"Ray's Jobs API ({redact_url(address)})",  # messages name the cluster
            url_setting=self._setting,
        )

    def _api(self) -> HttpClient:
        if self.client is None:
            raise UsageError("train.ray: no address to reach the cluster's Jobs API")
        return self.client

    def _run_id(self) -> str:
        assert self.plan is not None, "launch first"
        return self.plan.run_id

    def _stop_job(self, name: str) -> None:
        quick = replace(self._api(), timeout_s=_TEARDOWN_TIMEOUT_S, max_wait_s=0.0)
        answer = quick.request("POST", f"/api/jobs/{name}/stop", idempotent=False)
        if answer.status != 404:  # a job that never started is as stopped as can be
            self._expect(answer, f"stop the job {name}")

    def _expect(self, answer: Response, what: str) -> Response:
        if 200 <= answer.status < 300:
            return answer
        address = redact_url(self._api().base_url)
        detail = answer.message.strip().splitlines()
        reason = detail[-1] if detail else ""  # Ray answers a traceback: its last line says why
        if answer.status == 400:
            raise UsageError(
                f"Ray's Jobs API at {address} refused to {what} ({answer.status}: {reason}); "
                f"check train.resources and train.command in mlci.yaml"
            )
        raise ExternalError(
            f"Ray's Jobs API at {address} could not {what} ({answer.status}: {reason}); "
            + (
                "check the cluster train.ray.cluster brought up (`ray status` on its head)"
                if self._setting == "train.ray.cluster"
                else f"check that the cluster is up and {self._setting} points at its "
                f"dashboard (port 8265)"
            )
        )

    def _log_pause(self, took: float) -> float:
        """Seconds until the log is read again: ten times what reading it took, and at
        most a quarter of train.stall_minutes (new lines are what tells a stall)."""
        pause = took / LOG_FETCH_SHARE
        stall = self.plan.stall_s if self.plan is not None else None
        return pause if stall is None else min(pause, stall / 4)

    def _new_lines(self, text: str, *, final: bool) -> list[str]:
        # The whole log comes back each time: only what was not returned before is new.
        fresh, self._seen = text[self._seen :], len(text)
        *lines, self._pending = (self._pending + fresh).split("\n")
        if final and self._pending:
            lines.append(self._pending)
            self._pending = ""
        return lines

    # -- a cluster for the run (train.ray.cluster) ---------------------------------------------

    def _bring_up(self, run_id: str) -> None:
        config, _, _ = self._cluster_args(run_id)
        remote = _dashboard_port(Path(config), name=str(self.settings.cluster))
        self._cluster_up = True  # from here on, teardown runs `ray down`
        self._ray_cli("up", "-y", "--no-config-cache", *self._cluster_args(run_id))
        port = _free_port()
        forward = ["ray", "dashboard", "--port", str(port), "--remote-port", str(remote)]
        self._forward = subprocess.Popen(
            [*forward, *self._cluster_args(run_id)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.client = self._client(f"http://127.0.0.1:{port}")
        _wait_listening(port, self._forward)

    def _cluster_args(self, run_id: str) -> list[str]:
        assert self.settings.cluster is not None
        return [str(self.root / self.settings.cluster), "--cluster-name", run_id]

    def _ray_cli(self, *args: str, wait: bool = True) -> None:
        command = ["ray", *args]
        try:
            if not wait:
                subprocess.Popen(command, cwd=self.root, start_new_session=True)
                return
            done = subprocess.run(command, cwd=self.root, check=False, timeout=1800)
        except FileNotFoundError:
            raise UsageError(
                "train.ray.cluster: the ray CLI was not found on the runner; pip install "
                "'ray[default]' in the job, or give train.ray.address of a running cluster"
            ) from None
        except subprocess.TimeoutExpired:
            raise ExternalError(f"`{shlex.join(command)}` did not finish in 30 min") from None
        if done.returncode != 0:
            raise ExternalError(
                f"`{shlex.join(command)}` failed (exit code {done.returncode}); its output is "
                f"above; check the cluster config and the cloud credentials"
            )


def _address(settings: RayConfig, env: Mapping[str, str]) -> tuple[str | None, str]:
    """The Jobs API's address and the setting it came from: train.ray.address, else (no
    cluster of the run's own) RAY_ADDRESS, as `ray job submit` reads it."""
    if settings.cluster is not None:
        return None, "train.ray.cluster"  # the address comes once the cluster is up
    if settings.address is not None:
        return settings.address, "train.ray.address"
    address = env.get(ADDRESS_ENV, "").strip()
    if not address:
        raise UsageError(
            f"train.ray: no cluster to submit the training to: set train.ray.address (a "
            f"running cluster's Jobs API, e.g. http://127.0.0.1:8265) in mlci.yaml, or the "
            f"{ADDRESS_ENV} environment variable (in CI: a repository variable, "
            f"docs/gpu.md#ray), or train.ray.cluster (a cluster config mlci brings up)"
        )
    if not address.startswith(("http://", "https://")):
        raise UsageError(
            f"{ADDRESS_ENV} is {redact_url(address)!r}: mlci submits through the cluster's "
            f"Jobs API, so give its dashboard's http(s) address, e.g. http://HEAD:8265 (not "
            f"ray:// or a GCS address)"
        )
    return address, ADDRESS_ENV


def _dashboard_port(config: Path, *, name: str) -> int:
    """The head's dashboard port: the --dashboard-port of the cluster config's
    head_start_ray_commands, else Ray's default."""
    try:
        loaded = yaml.safe_load(config.read_text(encoding="utf-8"))
        commands = loaded.get("head_start_ray_commands") if isinstance(loaded, dict) else None
        lines = commands if isinstance(commands, list) else []  # else Ray's own, or its error
        words = [word for line in lines for word in shlex.split(str(line))]
    except (OSError, UnicodeDecodeError, yaml.YAMLError, ValueError) as error:
        raise UsageError(
            f"train.ray.cluster: cannot read the cluster config {name} ({error}); give the "
            f"path of a Ray cluster config (the YAML `ray up` takes), relative to mlci.yaml"
        ) from None
    port = _flag(words, "--dashboard-port")
    if port is None:
        return DASHBOARD_PORT
    if not port.isdigit():
        raise UsageError(
            f"train.ray.cluster: {name} starts the head with --dashboard-port {port!r}: give "
            f"a port number (mlci forwards it to reach the Jobs API), or leave it out for "
            f"{DASHBOARD_PORT}"
        )
    return int(port)


def _flag(words: list[str], flag: str) -> str | None:
    """The value of `flag` (`--flag V` or `--flag=V`) among a command line's words."""
    for at, word in enumerate(words):
        if word.startswith(f"{flag}="):
            return word.partition("=")[2]
        if word == flag and at + 1 < len(words):
            return words[at + 1]
    return None


def _resources(plan: Plan) -> dict[str, Any]:
    wanted = plan.resources
    asked: dict[str, Any] = {}
    if wanted.gpus:
        asked["entrypoint_num_gpus"] = wanted.gpus
    if wanted.cpus is not None:
        asked["entrypoint_num_cpus"] = wanted.cpus
    if wanted.memory_gb is not None:
        asked["entrypoint_memory"] = int(wanted.memory_gb * 1e9)
    if wanted.accelerator is not None:
        # Ray gives each node a resource accelerator_type:<TYPE> of 1: asking a sliver of it
        # puts the job on such a node (ray.util.accelerators).
        asked["entrypoint_resources"] = {f"accelerator_type:{wanted.accelerator}": 0.001}
    return asked


def _headers(env: Mapping[str, str]) -> dict[str, str]:
    """RAY_JOB_HEADERS (JSON, as the ray CLI reads it): e.g. the auth of a proxied cluster."""
    raw = env.get("RAY_JOB_HEADERS")
    if not raw:
        return {}
    try:
        headers = json.loads(raw)
    except ValueError:
        headers = None
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise UsageError(
            'RAY_JOB_HEADERS: expected a JSON object of texts, e.g. {"Authorization": "Bearer ..."}'
        )
    return {str(k): v for k, v in headers.items()}


def _iso(milliseconds: object) -> str | None:
    if not isinstance(milliseconds, int) or not milliseconds:
        return None
    return datetime.fromtimestamp(milliseconds / 1000, tz=timezone.utc).isoformat()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, forward: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + _FORWARD_WAIT_S
    while time.monotonic() < deadline:
        if forward.poll() is not None:
            raise ExternalError("`ray dashboard` (the port forward to the cluster's head) ended")
        with contextlib.suppress(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        time.sleep(0.5)
    raise ExternalError(f"`ray dashboard` did not forward port {port} in {_FORWARD_WAIT_S:.0f} s")
