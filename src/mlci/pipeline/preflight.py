"""The preflight stage: where the run happens, and what it needs, checked before it is needed.

These are the checks of `mlci doctor` (mlci.commands.doctor prints them). Each check is
a small function from a `DoctorContext` to a `CheckResult`; `CHECKS` lists them in the
order they print, and more plug in by adding to it. `mlci run` runs the cheap ones
(`PREFLIGHT`) before training and stops at a definite failure with the same message;
warnings never stop a run.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shlex
import shutil
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

import yaml

from mlci import __version__, git
from mlci.ci import CiContext, detect_context
from mlci.config import Config, load_config, locate
from mlci.console import Console
from mlci.core import workflow, yamlsafe
from mlci.core.redact import plain_http_refusal
from mlci.errors import EXIT_EXTERNAL, EXIT_USAGE, ExternalError, MlciError, UsageError
from mlci.pipeline.basecommit import base_commit

Status = Literal["ok", "warn", "fail", "skip"]
GB = 1_000_000_000
DISK_WARN_BELOW = 10 * GB
DISK_FAIL_BELOW = 1 * GB
GITHUB_JOB_LIMIT_MINUTES = 360  # GitHub-hosted runners cancel a job after 6 hours
HTTP_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class CheckResult:
    """One line of `mlci doctor`: what was checked, what was found, and the fix."""

    name: str
    status: Status
    detail: str
    fix: str | None = None
    exit_code: int = EXIT_EXTERNAL  # what `mlci run` exits with when this check fails

    def line(self) -> str:
        fix = f"; fix: {self.fix}" if self.fix and self.status in ("fail", "warn") else ""
        return f"{self.name}: {self.detail}{fix}"


@dataclass(frozen=True)
class DoctorContext:
    """What the checks look at: the project, its configuration, the environment."""

    root: Path  # the folder of mlci.yaml (the working folder when there is none)
    config: Config | None
    config_error: str | None
    env: Mapping[str, str]
    raw: Mapping[str, Any] | None = None  # mlci.yaml as read, to tell set keys from defaults
    gpu_requested: bool = False


Check = Callable[[DoctorContext], CheckResult]


class PreflightError(MlciError):
    """A check that `mlci run` runs first failed; its exit code is the check's."""

    def __init__(self, result: CheckResult) -> None:
        super().__init__(result.line())
        self.exit_code = result.exit_code
        self.result = result


# -- the checks ------------------------------------------------------------------------------


def check_config(ctx: DoctorContext) -> CheckResult:
    if ctx.config is None:
        return CheckResult(
            "config", "fail", ctx.config_error or "no mlci.yaml", exit_code=EXIT_USAGE
        )
    return CheckResult("config", "ok", f"{ctx.root / 'mlci.yaml'} is valid")


def check_disk(
    ctx: DoctorContext,
    *,
    warn_below: int = DISK_WARN_BELOW,
    fail_below: int = DISK_FAIL_BELOW,
) -> CheckResult:
    free = shutil.disk_usage(ctx.root).free
    detail = f"{free / GB:.1f} GB free on the disk of {ctx.root}"
    fix = (
        "free space: on GitHub's hosted runners `mlci init --free-disk` writes a step that "
        "removes unused toolchains (about 30 GB); or use a larger runner"
    )
    if free < fail_below:
        return CheckResult("disk", "fail", f"{detail}, under {fail_below / GB:g} GB", fix)
    if free < warn_below:
        return CheckResult("disk", "warn", f"{detail}, under {warn_below / GB:g} GB", fix)
    return CheckResult("disk", "ok", detail)


def check_git_history(ctx: DoctorContext) -> CheckResult:
    mode = ctx.config.gate.baseline if ctx.config else "auto"
    if mode in ("file", "none", "registry"):
        return CheckResult("git history", "skip", f"not needed (gate.baseline: {mode})")
    severity: Status = "fail" if mode == "git" else "warn"
    why = (
        "the git baseline needs it"
        if mode == "git"
        else "the baseline falls back to git when the registry has no champion"
    )
    try:
        shallow = git.is_shallow(ctx.root)
    except MlciError:
        return CheckResult(
            "git history",
            severity,
            f"{ctx.root} is not in a git repository; {why}",
            "run mlci in the repository's checkout (`git init` and commit, locally)",
            exit_code=EXIT_USAGE,
        )
    if shallow:
        return CheckResult(
            "git history",
            severity,
            f"this is a shallow clone; {why}",
            "fetch the history: `fetch-depth: 0` on actions/checkout (GitLab: GIT_DEPTH: 0), "
            "or `git fetch --unshallow`",
            exit_code=EXIT_USAGE,
        )
    return CheckResult("git history", "ok", "the whole history is here")


def check_baseline(ctx: DoctorContext) -> CheckResult:
    """The baseline the run will read, where finding it needs no network: the git base
    branch (`gate.baseline: git`) or the file (`file:PATH`), so that a missing one stops
    the run before the training, not after."""
    config = ctx.config
    mode = config.gate.baseline if config else "auto"
    if config is None or mode in ("auto", "registry", "none"):
        why = "the registry, then git, when reachable" if mode == "auto" else f"{mode}"
        return CheckResult("baseline", "skip", f"gate.baseline: {why}")
    if mode == "file":
        assert config.gate.baseline_file is not None
        if (config.root / config.gate.baseline_file).is_file():
            return CheckResult("baseline", "ok", f"{config.gate.baseline_file} is there")
        return CheckResult(
            "baseline",
            "fail",
            f"gate.baseline: file:{config.gate.baseline_file} does not exist",
            "commit the baseline's metrics file there, or fix the path in mlci.yaml",
            exit_code=EXIT_USAGE,
        )
    try:
        found = base_commit(config, detect_context(ctx.root, ctx.env), None)
    except MlciError as exc:
        return CheckResult("baseline", "fail", exc.message, exit_code=EXIT_USAGE)
    return CheckResult("baseline", "ok", found.label)


def check_timeout(ctx: DoctorContext) -> CheckResult:
    config = ctx.config
    if config is None or config.train is None:
        return CheckResult("timeout", "skip", "no training command (train.command)")
    minutes = config.train.timeout_minutes
    train = (ctx.raw or {}).get("train")
    if not isinstance(train, dict) or train.get("timeout_minutes") is None:
        return CheckResult(
            "timeout",
            "warn",
            f"train.timeout_minutes is not set: the training is stopped after {minutes:g} minutes",
            "set train.timeout_minutes in mlci.yaml to a little above your longest training",
        )
    # `dvc pull` runs first, with its own limit: together they must end before the job.
    pull = config.data.timeout_minutes if config.data.dvc else 0.0
    limit, where = _ci_job_limit(ctx.env)
    if limit is not None and minutes + pull >= limit:
        both = f" plus data.timeout_minutes {pull:g}" if pull else ""
        return CheckResult(
            "timeout",
            "fail",
            f"train.timeout_minutes is {minutes:g}{both}, but {where} stops the job after "
            f"{limit:g} minutes: the job would be killed before mlci stops the "
            f"{'pull or the ' if pull else ''}training, and the report would be lost",
            f"set train.timeout_minutes{' + data.timeout_minutes' if pull else ''} below "
            f"{limit:g} (leave time for set-up and the upload)",
            exit_code=EXIT_USAGE,
        )
    detail = f"train.timeout_minutes: {minutes:g}"
    return CheckResult(
        "timeout", "ok", detail + (f", data.timeout_minutes: {pull:g}" if pull else "")
    )


def check_job_timeout(ctx: DoctorContext) -> CheckResult:
    """The CI files' jobs that run mlci outlast `dvc pull`, the training and the upload."""
    config = ctx.config
    if config is None or config.train is None:
        return CheckResult("job timeout", "skip", "no training command (train.command)")
    pull = config.data.timeout_minutes if config.data.dvc else 0.0
    needed = workflow.job_minutes(config.train.timeout_minutes, pull)
    top = _repository_top(ctx.root)
    limits = [
        (f"{path.relative_to(top).as_posix()}: job {job}", minutes)
        for pattern in CI_FILES
        for path in sorted(top.glob(pattern))
        for job, minutes in _job_limits(path)
    ]
    if not limits:
        return CheckResult("job timeout", "skip", "no CI job that runs mlci has a timeout")
    short = [
        f"{_printable([where])} stops after {minutes:g}"
        for where, minutes in limits
        if minutes < needed
    ]
    made_of = (
        f"train.timeout_minutes {config.train.timeout_minutes:g}"
        + (f" + data.timeout_minutes {pull:g}" if pull else "")
        + f" + {workflow.SETUP_MINUTES} for set-up and the upload"
    )
    if short:
        return CheckResult(
            "job timeout",
            "warn",
            f"{'; '.join(short)} minutes, but the run needs {needed} ({made_of}): the job "
            f"would be killed before mlci stops and writes the report",
            f"raise the job's timeout to {needed} minutes (`mlci init --force` writes it), "
            f"or lower the timeouts in mlci.yaml",
        )
    return CheckResult("job timeout", "ok", f"at least {needed} minutes ({made_of})")


def _job_limits(path: Path) -> list[tuple[str, float]]:
    """(job, minutes) of each job of a CI file that runs mlci and says its timeout:
    GitHub's `timeout-minutes`, GitLab's `timeout` (its own or an `extends`' one)."""
    try:
        document = yamlsafe.load(path.read_text(encoding="utf-8", errors="replace"))
    except yaml.YAMLError:
        return []  # check_install says the file is not valid YAML
    if not isinstance(document, dict):
        return []
    jobs = document.get("jobs") if "jobs" in document else document
    jobs = jobs if isinstance(jobs, dict) else {}
    found = []
    for name, job in jobs.items():
        if not isinstance(job, dict) or not _runs_mlci(job) or str(name).startswith("."):
            continue
        minutes = _job_minutes(job, jobs)
        if minutes is not None:
            found.append((str(name), minutes))
    return found


def _runs_mlci(job: dict[str, Any]) -> bool:
    texts = [*_strings(job.get("steps")), *_strings(job.get("script"))]
    return any(re.search(r"(^|[\s;&|])(exec\s+)?mlci\s+(run|gate)\b", t) for t in texts) or any(
        _ACTION_USES.fullmatch(uses) for uses in _uses(job.get("steps"))
    )


def _job_minutes(job: object, jobs: dict[str, Any]) -> float | None:
    value = job.get("timeout-minutes") if isinstance(job, dict) else None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    seen: set[str] = set()
    while isinstance(job, dict):
        if isinstance(job.get("timeout"), str):
            return _gitlab_minutes(job["timeout"])
        parent = job.get("extends")
        parent = parent[-1] if isinstance(parent, list) and parent else parent
        if not isinstance(parent, str) or parent in seen:
            return None
        seen.add(parent)
        job = jobs.get(parent)
    return None


def _gitlab_minutes(text: str) -> float | None:
    """GitLab's durations: `75m`, `1h 30m`, `2 hours`, `90 minutes`."""
    units = {"h": 60.0, "m": 1.0, "s": 1 / 60}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([hms])[a-z]*", text.lower())
    return sum(float(number) * units[unit] for number, unit in parts) if parts else None


def _ci_job_limit(env: Mapping[str, str]) -> tuple[float | None, str]:
    """The most minutes the CI lets this job run, when it says."""
    if env.get("GITLAB_CI") == "true" and env.get("CI_JOB_TIMEOUT", "").isdigit():
        return int(env["CI_JOB_TIMEOUT"]) / 60, "GitLab (CI_JOB_TIMEOUT)"
    if env.get("GITHUB_ACTIONS") == "true" and env.get("RUNNER_ENVIRONMENT") == "github-hosted":
        return GITHUB_JOB_LIMIT_MINUTES, "a GitHub-hosted runner"
    return None, ""


def check_registry(ctx: DoctorContext) -> CheckResult:
    if ctx.config is None:
        return CheckResult("registry", "skip", "no configuration")
    from mlci.registry.mlflow import redact_uri, resolve_tracking_uri

    uri = resolve_tracking_uri(
        ctx.env.get("MLFLOW_TRACKING_URI") or ctx.config.registry.tracking_uri, ctx.root
    )
    shown = redact_uri(uri)
    if uri.startswith(("http://", "https://")):
        reached = _check_server(uri, shown)
        if reached.status != "ok":
            return reached
        return _check_server_read(uri, shown, ctx.config.model_name, ctx.env) or reached
    if uri.startswith("sqlite:///"):
        return _check_writable(Path(uri[len("sqlite:///") :]), f"sqlite registry {shown}")
    if uri.startswith("file:") or "://" not in uri:
        path = Path(uri.removeprefix("file://").removeprefix("file:"))
        return _check_writable(path if path.is_absolute() else ctx.root / path, shown)
    return CheckResult("registry", "skip", f"{shown}: mlci cannot check this kind of URI")


def check_registry_repair(ctx: DoctorContext) -> CheckResult:
    """What failed or dead jobs left in the registry, as `mlci registry show` marks it."""
    name = "registry consistency"
    if ctx.config is None:
        return CheckResult(name, "skip", "no configuration")
    from dataclasses import replace

    from mlci.registry import open_registry
    from mlci.registry.mlflow import redact_uri

    # A question, not the run's work: a registry that does not answer is check_registry's.
    quick = replace(ctx.config.registry, timeout_minutes=HTTP_TIMEOUT_S / 60)
    registry = open_registry(replace(ctx.config, registry=quick), ctx.env)
    try:
        found = registry.inconsistencies(ctx.config.model_name)
    except MlciError as exc:
        return CheckResult(name, "skip", f"the registry could not be read: {exc.message}")
    if not found:
        where = redact_uri(registry.tracking_uri)
        return CheckResult(name, "ok", f"nothing left by failed or dead jobs in {where}")
    items = "; ".join(f"{item.subject}: {item.problem} (repair: {item.repair})" for item in found)
    return CheckResult(
        name,
        "warn",
        f"{len(found)} left by failed or dead jobs in {ctx.config.model_name}: {items}",
        "`mlci registry repair --yes` (`mlci registry repair` first shows what it changes)",
    )


def _check_server(uri: str, shown: str) -> CheckResult:
    import base64  # only here: `mlci gate` imports this module and starts fast
    import urllib.error
    import urllib.request

    parts = urlsplit(uri)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    netloc += f":{parts.port}" if parts.port else ""
    url = urlunsplit((parts.scheme, netloc, parts.path.rstrip("/") + "/health", "", ""))
    request = urllib.request.Request(url)
    if parts.username is not None:  # user:password@ in the URI: basic auth, as MLflow does
        refusal = plain_http_refusal(uri, "the MLflow credentials", "registry.tracking_uri")
        if refusal is not None:
            return CheckResult("registry", "fail", refusal)
        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        request.add_header("Authorization", "Basic " + base64.b64encode(pair).decode())
    fix = "start the server, or correct registry.tracking_uri / MLFLOW_TRACKING_URI"
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT_S) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        return CheckResult("registry", "fail", f"{shown} answered {exc.code} on /health", fix)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return CheckResult("registry", "fail", f"{shown} does not answer ({reason})", fix)
    if status != 200:
        return CheckResult("registry", "fail", f"{shown} answered {status} on /health", fix)
    return CheckResult("registry", "ok", f"MLflow server {shown} answers")


def _check_server_read(
    uri: str, shown: str, model: str, env: Mapping[str, str]
) -> CheckResult | None:
    """Read the model with the job's credentials: a wrong password shows here, not at the
    end of a training. None where MLflow's own client would be needed (an auth plugin)."""
    from mlci.registry import mlflow_rest

    if not mlflow_rest.usable(uri, env):
        return None
    quick = {
        **env,
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(HTTP_TIMEOUT_S),
    }
    try:
        client = mlflow_rest.RestClient(uri, quick)
    except ExternalError as exc:  # credentials for a plain-http server elsewhere
        return CheckResult("registry", "fail", exc.message)
    try:
        found = client.get_registered_model(model)
    except mlflow_rest.RestError as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            detail = f"MLflow server {shown} answers; {model} is not registered yet"
            return CheckResult("registry", "ok", detail)
        if exc.status == 401:
            return CheckResult(
                "registry",
                "fail",
                f"MLflow server {shown} refused the credentials (401)",
                "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, "
                "or MLFLOW_TRACKING_TOKEN, in the job"
                + workflow.secrets_source(
                    ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"), env
                ),
            )
        if exc.status == 403:
            return CheckResult(
                "registry",
                "fail",
                f"MLflow server {shown} does not let this user read {model} (403)",
                f"grant the CI user READ on {model} (EDIT to promote)",
            )
        detail = f"MLflow server {shown} answers /health, but reading {model} failed: {exc}"
        fix = "check that the tracking URI is the MLflow server itself (its path included)"
        return CheckResult("registry", "fail", detail, fix)
    finally:
        client.close()
    aliases = ", ".join(f"@{a} v{v}" for a, v in sorted(found.aliases.items()))
    detail = f"MLflow server {shown} answers; the credentials read {model}"
    return CheckResult("registry", "ok", detail + (f" ({aliases})" if aliases else ""))


def _check_writable(path: Path, shown: str) -> CheckResult:
    fix = "make the folder writable, or point registry.tracking_uri elsewhere"
    if path.exists():
        if not os.access(path, os.W_OK):
            return CheckResult("registry", "fail", f"{shown}: {path} is not writable", fix)
        if path.is_file() and path.stat().st_size and not _is_sqlite(path):
            return CheckResult(
                "registry",
                "fail",
                f"{shown}: {path} is not an SQLite database",
                "point registry.tracking_uri at a new file, or remove this one",
            )
        return CheckResult("registry", "ok", f"{shown} is writable")
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK):
        return CheckResult("registry", "fail", f"{shown}: cannot create it in {folder}", fix)
    return CheckResult("registry", "ok", f"{shown} will be created on the first promotion")


def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(16) == b"SQLite format 3\x00"


def check_dvc(ctx: DoctorContext) -> CheckResult:
    """A DVC remote is configured and answers with the credentials at hand.

    The quick look at the configuration comes first (a missing folder, no credentials in
    the environment); then mlci.data asks the remote itself (`dvc status --cloud`).
    """
    found = _dvc_configuration(ctx)
    if found.status != "ok":
        return found
    from mlci.data import check

    dvc_root = next(f for f in (ctx.root, *ctx.root.parents) if (f / ".dvc").is_dir())
    # A remote that accepts connections but never answers must not hang the doctor.
    timeout_s = check.CHECK_TIMEOUT_S
    remote = None
    if ctx.config is not None:
        timeout_s = min(timeout_s, ctx.config.data.timeout_minutes * 60)
        remote = ctx.config.data.remote
    ok, message = check.check_remote(dvc_root, remote=remote, env=ctx.env, timeout_s=timeout_s)
    return CheckResult("dvc", "ok" if ok else "fail", message)


def _dvc_configuration(ctx: DoctorContext) -> CheckResult:
    dvc_root = next((f for f in (ctx.root, *ctx.root.parents) if (f / ".dvc").is_dir()), None)
    if dvc_root is None:
        return CheckResult("dvc", "skip", "this project does not use DVC")
    executable = _dvc_executable()
    if executable is None:
        return CheckResult(
            "dvc", "fail", "DVC is not installed", "pip install 'mlci[dvc]' (and dvc[s3]...)"
        )
    remotes = _configured_remotes(dvc_root)
    if not remotes:
        return CheckResult(
            "dvc",
            "fail",
            "no DVC remote is configured: `dvc pull` has nowhere to pull from",
            "dvc remote add -d storage s3://BUCKET/PATH (or a folder), then dvc push",
        )
    name, url = next(((n, u) for n, u, default in remotes if default), remotes[0][:2])
    scheme = url.partition("://")[0] if "://" in url else "file"
    if scheme == "file":
        # DVC keeps a relative folder relative to the config file that names it.
        path = dvc_root / ".dvc" / url.removeprefix("file://")
        if not path.is_dir():
            return CheckResult(
                "dvc",
                "fail",
                f"remote {name}: the folder {path} does not exist",
                "create or mount it, or `dvc remote modify` the url",
            )
        return CheckResult("dvc", "ok", f"remote {name}: the folder {path} exists")
    from mlci.data.remotes import read_dvc_config

    options = read_dvc_config(dvc_root).get(f'remote "{name}"', {})
    return _cloud_credentials(name, scheme, ctx.env, options)


_CREDENTIALS = {  # the variables that hold credentials; those `mlci init` fills
    "s3": (
        ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE"),
        ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
    ),
    "gs": (("GOOGLE_APPLICATION_CREDENTIALS",), ("GOOGLE_APPLICATION_CREDENTIALS",)),
    "azure": (
        ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT", "AZURE_CLIENT_ID"),
        ("AZURE_STORAGE_CONNECTION_STRING",),
    ),
}


# The options of `.dvc/config.local` (`dvc remote modify --local`) that hold credentials.
_CREDENTIAL_OPTIONS = {
    "gs": ("credentialpath",),
    "azure": ("connection_string", "account_key", "sas_token", "client_secret"),
}


def _cloud_credentials(
    name: str, scheme: str, env: Mapping[str, str], options: Mapping[str, str]
) -> CheckResult:
    if scheme not in _CREDENTIALS:
        return CheckResult("dvc", "ok", f"remote {name} ({scheme}) is configured")
    names, wanted = _CREDENTIALS[scheme]
    found = [variable for variable in names if env.get(variable)]
    found += [option for option in _CREDENTIAL_OPTIONS.get(scheme, ()) if options.get(option)]
    if not found:
        key_file = " (a key file)" if scheme == "gs" else ""
        return CheckResult(
            "dvc",
            "warn",
            f"remote {name} ({scheme}): no credentials in the environment",
            f"set {' and '.join(wanted)}{key_file}{workflow.secrets_source(wanted, env)}",
        )
    return CheckResult("dvc", "ok", f"remote {name} ({scheme}): {', '.join(found)} set")


def _dvc_executable() -> str | None:
    beside = Path(sys.executable).parent / "dvc"
    return str(beside) if beside.exists() else shutil.which("dvc")


def _configured_remotes(dvc_root: Path) -> list[tuple[str, str, bool]]:
    """(name, url, default) of each remote in `.dvc/config` and `.dvc/config.local`.

    Read from the files rather than `dvc remote list`, which wraps long URLs to the
    terminal's width.
    """
    from mlci.data.remotes import read_dvc_config

    sections = read_dvc_config(dvc_root)
    default = sections.get("core", {}).get("remote")
    return [
        (name[8:-1], options.get("url", ""), name[8:-1] == default)
        for name, options in sections.items()
        if name.startswith('remote "') and name.endswith('"')
    ]


def check_forge_token(ctx: DoctorContext) -> CheckResult:
    """Only whether a token is there; never its value."""
    env = ctx.env
    if env.get("GITHUB_ACTIONS") == "true":
        if env.get("GITHUB_TOKEN"):
            return CheckResult("forge token", "ok", "GITHUB_TOKEN is set")
        return CheckResult(  # a warning: the fork-safe pull-request job has none on purpose
            "forge token",
            "warn",
            "GITHUB_TOKEN is not set: mlci writes the job summary and the files, and posts "
            "nothing on the pull request",
            "pass it to the step: `env: GITHUB_TOKEN: ${{ github.token }}` (not in the "
            "pull-request job of `mlci init --fork-safe`, where ml-report.yml posts)",
        )
    if env.get("GITLAB_CI") == "true":
        if env.get("GITLAB_TOKEN"):
            return CheckResult("forge token", "ok", "GITLAB_TOKEN is set")
        fix = (
            "create a project access token with the api scope and add it as the masked "
            "CI/CD variable GITLAB_TOKEN"
        )
        if env.get("CI_JOB_TOKEN"):
            return CheckResult(
                "forge token", "warn", "only CI_JOB_TOKEN: it cannot post merge-request notes", fix
            )
        return CheckResult(
            "forge token", "warn", "no GITLAB_TOKEN: mlci posts nothing on the merge request", fix
        )
    present = [name for name in ("GITHUB_TOKEN", "GITLAB_TOKEN") if env.get(name)]
    if present:
        return CheckResult("forge token", "ok", f"{', '.join(present)} set (a local run)")
    return CheckResult(
        "forge token", "skip", "a local run: the comment is written to .mlci/out/comment.md"
    )


def check_forge_access(ctx: DoctorContext) -> CheckResult:
    """In CI with a token: one read of the repository shows whether publishing will work."""
    env = ctx.env
    in_ci = "true" in (env.get("GITHUB_ACTIONS"), env.get("GITLAB_CI")) or bool(
        env.get("BITBUCKET_BUILD_NUMBER")
    )
    if not in_ci:
        return CheckResult("forge access", "skip", "a local run: nothing is posted")
    from mlci import ci
    from mlci.forges import check_access
    from mlci.forges.base import TOKEN_VARIABLES

    try:
        context = ci.detect_context(ctx.root, env)
        if not any(env.get(name) for name in TOKEN_VARIABLES.get(context.ci, ())):
            return CheckResult("forge access", "skip", "no token to try (see forge token)")
        lines = check_access(context, env)
    except MlciError as exc:
        return CheckResult("forge access", "fail", exc.message)
    refused = [message for ok, message in lines if not ok]
    if not refused:
        return CheckResult("forge access", "ok", "; ".join(message for _, message in lines))
    # A fork's read-only token is by design: the report still lands in the job summary.
    return CheckResult("forge access", "warn" if context.fork else "fail", "; ".join(refused))


def check_gpu(ctx: DoctorContext) -> CheckResult:
    """With `train.device: cuda`: the GPUs nvidia-smi shows the training (mlci.gpu)."""
    if not ctx.gpu_requested:
        return CheckResult("gpu", "skip", "the configuration asks for no GPU (train.device)")
    from mlci import gpu

    found = gpu.probe(ctx.env)
    if found.problem is not None:
        fix = (
            "unset CUDA_VISIBLE_DEVICES in the job, or set it to the GPUs the training may use"
            if found.hidden
            else gpu.FIX
        )
        return CheckResult("gpu", "fail", f"train.device is cuda, but {found.problem}", fix)
    listed = "; ".join(f"GPU {gpu.index}: {gpu.name}" for gpu in found.gpus)
    versions = ", ".join(
        f"{what} {version}"
        for what, version in (("driver", found.driver), ("CUDA", found.cuda))
        if version
    )
    return CheckResult("gpu", "ok", f"{listed} ({versions})" if versions else listed)


def check_launched(ctx: DoctorContext) -> CheckResult:
    """With train.on off the runner: the jobs and clusters mlci launched that are alive
    (a cancelled run's machine still billing), from the engine (mlci.remote)."""
    train = ctx.config.train if ctx.config is not None else None
    if train is None or train.on == "local":
        return CheckResult("cloud gpu", "skip", "the training runs on the runner (train.on)")
    from mlci.remote.engines import open_engine

    try:
        alive = open_engine(train, ctx.env, root=ctx.root).launched()
    except UsageError as exc:  # nothing to ask (a cluster brought up per run)
        return CheckResult("cloud gpu", "skip", f"{train.on}: {exc.message}")
    except MlciError as exc:
        return CheckResult("cloud gpu", "fail", f"{train.on}: {exc.message}")
    if not alive:
        return CheckResult("cloud gpu", "ok", f"{train.on}: nothing of mlci's is alive")
    listed = "; ".join(f"{item.kind} {item.name} ({item.state})" for item in alive)
    return CheckResult(
        "cloud gpu",
        "warn",
        f"{train.on}: {len(alive)} of mlci's alive: {listed}",
        "a run in progress has one; otherwise `mlci gpu down --all --yes` takes them down",
    )


def _gpu_requested(config: Config | None) -> bool:
    return config is not None and config.train is not None and config.train.device == "cuda"


# -- mlci's install in the CI files ----------------------------------------------------------

CI_FILES = (".github/workflows/*.yml", ".github/workflows/*.yaml", ".gitlab-ci.yml")
INSTALL_DOCS = "docs/workflows.md#--install-where-the-ci-gets-mlci"
_SEVERITY: dict[Status, int] = {"ok": 0, "skip": 0, "warn": 1, "fail": 2}
# pip's options that take the next word as their value (its `-r FILE` is read, too).
_PIP_VALUED = frozenset(
    {
        *("-r", "--requirement", "-c", "--constraint", "-e", "--editable", "-i", "--index-url"),
        *("--extra-index-url", "-f", "--find-links", "-t", "--target", "--prefix", "--root"),
        *("--src", "--python", "--platform", "--python-version", "--implementation", "--abi"),
        *("--trusted-host", "--cache-dir", "--log", "--report", "--upgrade-strategy"),
    }
)
# Where the generated install lines put the repository's top (core.workflow's `top`).
_TOP_VARIABLES = (
    "${GITHUB_WORKSPACE}/",
    "$GITHUB_WORKSPACE/",
    "${{ github.workspace }}/",
    "${CI_PROJECT_DIR}/",
    "$CI_PROJECT_DIR/",
)
_MLCI = re.compile(r"mlci(?![\w.-])\s*(?:\[[^\]]*\])?\s*(.*)", re.IGNORECASE | re.DOTALL)
_PINNED = re.compile(r"===?\s*([0-9][0-9A-Za-z.!+-]*)")
_WHEEL_NAME = re.compile(r"(?<![^/])mlci-([^-/]+)-[^-/]+-[^-/]+-[^-/]+\.whl", re.IGNORECASE)
_GIT_MLCI = re.compile(r"git\+\S+/mlci(?:\.git)?(?:@\S*)?|git\+\S+#egg=mlci\b", re.IGNORECASE)
_ACTION_USES = re.compile(r"[\w.-]+/mlci@(.+)", re.IGNORECASE)
_SHA256_LINE = re.compile(r"\b([0-9a-f]{64})\s+\*?([^\s\"'|]+)")


@dataclass(frozen=True)
class _Finding:
    """What one install of mlci in a CI file does: ok, or what is wrong and the fix."""

    status: Status
    text: str
    fix: str = ""


@dataclass(frozen=True)
class _CiFile:
    """A CI file being read: where it is, and the wheel hashes its `sha256sum` lines pin."""

    shown: str  # the path from the repository's top
    top: Path
    project: Path
    hashes: Mapping[str, str]  # path -> sha256


def check_install(ctx: DoctorContext) -> CheckResult:
    """The CI files install mlci pinned, from a source that has it (as far as mlci can
    tell offline): the running version, a wheel in the repository with its sha256, a git
    URL or mlci's action at a commit."""
    top = _repository_top(ctx.root)
    paths = sorted({path for pattern in CI_FILES for path in top.glob(pattern)})
    if not paths:
        return CheckResult(
            "mlci install",
            "skip",
            f"no workflow found in {top} (.github/workflows/*.yml, .gitlab-ci.yml)",
        )
    findings = list(dict.fromkeys(f for path in paths for f in _file_findings(path, top, ctx.root)))
    if not findings:
        shown = ", ".join(path.relative_to(top).as_posix() for path in paths)
        return CheckResult(
            "mlci install",
            "skip",
            f"mlci is installed nowhere in {shown} (no `pip install` names it, no step "
            f"uses OWNER/mlci@SHA): nothing to check",
        )
    worst = max(findings, key=lambda finding: _SEVERITY[finding.status])
    if worst.status == "ok":
        return CheckResult("mlci install", "ok", _printable(f.text for f in findings))
    wrong = [f for f in findings if f.status != "ok"]
    return CheckResult(
        "mlci install",
        worst.status,
        _printable(f.text for f in wrong),
        _printable(dict.fromkeys(f.fix for f in wrong)),
        exit_code=EXIT_USAGE,
    )


def _printable(texts: Iterable[str]) -> str:
    """The texts joined, with the control characters a CI file may hold made visible (the
    line goes to a terminal or a CI log)."""
    joined = "; ".join(texts)
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in joined)


def _repository_top(root: Path) -> Path:
    try:
        return git.repo_root(root).resolve()
    except MlciError:  # no git: the CI files, if any, sit beside mlci.yaml
        return root


def _file_findings(path: Path, top: Path, project: Path) -> list[_Finding]:
    shown = path.relative_to(top).as_posix()
    try:
        document = yamlsafe.load(path.read_text(encoding="utf-8", errors="replace"))
    except yaml.YAMLError as exc:
        return [
            _Finding(
                "warn",
                f"{shown} is not valid YAML ({yamlsafe.describe_error(exc)})",
                "correct it (actionlint, or GitLab's pipeline editor, shows the error)",
            )
        ]
    texts = list(_strings(document))
    hashes = {
        found[2].removeprefix("./"): found[1]
        for text in texts
        for line in text.splitlines()
        if "sha256sum" in line
        for found in _SHA256_LINE.finditer(line)
    }
    ci_file = _CiFile(shown, top, project, hashes)
    findings = [_action_finding(uses, shown) for uses in _uses(document)]
    for text in texts:
        for words in _commands(text):
            findings += [_requirement_finding(r, ci_file) for r in _pip_installs(words, ci_file)]
    return [finding for finding in findings if finding is not None]


def _strings(node: object) -> Iterator[str]:
    """Every text in a YAML document: the scripts of steps and jobs among them."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def _uses(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        if isinstance(node.get("uses"), str):
            yield node["uses"]
        for value in node.values():
            yield from _uses(value)
    elif isinstance(node, list):
        for item in node:
            yield from _uses(item)


def _commands(script: str) -> Iterator[list[str]]:
    """The shell words of each command of a script (split at newlines, `&&`, `;`, `|`)."""
    for line in script.replace("\\\n", " ").splitlines():
        if "install" not in line:
            continue
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        try:
            words = list(lexer)
        except ValueError:  # unbalanced quotes: not a line mlci can read
            continue
        command: list[str] = []
        for word in [*words, ";"]:
            if word and set(word) <= set("();<>|&"):
                if command:
                    yield command
                command = []
            else:
                command.append(word)


def _pip_installs(words: list[str], ci_file: _CiFile) -> list[str]:
    """The requirements that a `pip install` (`pipx install`, `uv pip install`) command
    names, with those of its `-r` files."""
    for index, word in enumerate(words[1:], start=1):
        if word == "install" and words[index - 1].rsplit("/", 1)[-1] in ("pip", "pip3", "pipx"):
            return _requirements(words[index + 1 :], ci_file, seen=set())
    return []


def _requirements(words: list[str], ci_file: _CiFile, *, seen: set[Path]) -> list[str]:
    found: list[str] = []
    words = _joined_at(words)
    index = 0
    while index < len(words):
        word, value = words[index], ""
        index += 1
        if word in _PIP_VALUED:
            value = words[index] if index < len(words) else ""
            index += 1
        elif word.startswith("--"):
            word, _, value = word.partition("=")
        if word in ("-r", "--requirement"):
            found += _requirements_file(value, ci_file, seen=seen)
        elif word in ("-e", "--editable"):
            found.append(value)
        elif not word.startswith("-"):
            found.append(word)
    return found


def _joined_at(words: list[str]) -> list[str]:
    """`mlci @ URL` as one requirement, as pip reads it."""
    joined: list[str] = []
    for word in words:
        if len(joined) >= 2 and joined[-1] == "@":
            joined[-2:] = [f"{joined[-2]} @ {word}"]
        else:
            joined.append(word)
    return joined


def _requirements_file(name: str, ci_file: _CiFile, *, seen: set[Path]) -> list[str]:
    found = [(f / name).resolve() for f in (ci_file.project, ci_file.top) if (f / name).is_file()]
    path = next((p for p in found if p.is_relative_to(ci_file.top)), None)
    if path is None or path in seen:  # a file outside the repository is not on the runner
        return []
    seen.add(path)
    words: list[str] = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        requirement = line.split(" #")[0].split(";")[0].strip()
        if requirement and not requirement.startswith("#"):
            words += _requirements(shlex.split(requirement), ci_file, seen=seen)
    return words


def _requirement_finding(requirement: str, ci_file: _CiFile) -> _Finding | None:
    """What installing `requirement` means for mlci; None when it is not mlci."""
    shown = ci_file.shown
    named = _MLCI.fullmatch(requirement.strip())
    if named is not None:
        rest = named[1].strip()
        if rest.startswith("@"):
            return _url_finding(rest[1:].strip(), ci_file)
        pinned = _PINNED.fullmatch(rest)
        if pinned is None:
            return _Finding(
                "fail",
                f"{shown} installs `{requirement}` unpinned: the job runs whatever the "
                f"package index serves as mlci, whoever published it",
                f"pin it (mlci=={__version__}), or run `mlci init --force` with the options "
                f"in the file's header: it writes a pinned source ({INSTALL_DOCS})",
            )
        return _version_finding(shown, pinned[1], f"mlci=={pinned[1]}")
    if _GIT_MLCI.fullmatch(requirement) or _WHEEL_NAME.search(requirement):
        return _url_finding(requirement, ci_file)
    return None


def _url_finding(url: str, ci_file: _CiFile) -> _Finding:
    if url.startswith("git+"):
        return _git_finding(url, ci_file.shown)
    wheel = _WHEEL_NAME.search(url)
    if wheel is not None:
        return _wheel_finding(url, wheel[1], ci_file)
    return _Finding("ok", f"{ci_file.shown}: mlci from {url} (not checked offline)")


def _git_finding(url: str, shown: str) -> _Finding:
    path = urlsplit(url.removeprefix("git+")).path
    ref = path.rpartition("@")[2] if "@" in path else ""
    if re.fullmatch(r"[0-9a-f]{40}", ref):
        return _Finding("ok", f"{shown}: mlci from {url.split('#')[0]}")
    moving = f"at {ref}, a branch or tag that can be moved" if ref else "at its default branch"
    return _Finding(
        "warn",
        f"{shown} installs mlci from {url.split('#')[0]} {moving}: each run may get other code",
        "pin the commit: `git ls-remote URL REF` prints its SHA; "
        "`mlci init --force --install git+URL@SHA` writes it",
    )


def _wheel_finding(location: str, version: str, ci_file: _CiFile) -> _Finding:
    shown = ci_file.shown
    path = re.sub(r"\[[^\]]*\]$", "", location.removeprefix("file://"))
    inside = next((path[len(v) :] for v in _TOP_VARIABLES if path.startswith(v)), None)
    if inside is not None:
        candidates = [ci_file.top / inside]
    elif path.startswith("/") or set(path) & set("$*:"):
        return _Finding("ok", f"{shown}: mlci from {path} (outside the repository: not checked)")
    else:  # relative to the step's working folder: the project's, or the top
        candidates = [ci_file.project / path, ci_file.top / path]
    found = [c.resolve() for c in candidates if c.is_file()]
    wheel = next((c for c in found if c.is_relative_to(ci_file.top)), None)
    if wheel is None:
        return _Finding(
            "fail",
            f"{shown} installs mlci from {inside or path}, which is not in the repository",
            "build the wheel (`python -m build --wheel` in mlci's source) and commit it "
            "there, or run `mlci init --force --install PATH` with the wheel you commit",
        )
    relative = wheel.relative_to(ci_file.top).as_posix()
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    expected = ci_file.hashes.get(relative) or ci_file.hashes.get(path)
    if expected is not None and expected != digest:
        return _Finding(
            "fail",
            f"{shown}: the sha256 of {relative} is {digest[:12]}..., but its "
            f"`sha256sum --check` line expects {expected[:12]}...: the job will refuse it",
            "run `mlci init --force` with the options in the file's header (it writes the "
            "new hash; review the diff), or restore the wheel that was reviewed",
        )
    if not _committed(wheel):
        return _Finding(
            "warn",
            f"{shown} installs mlci from {relative}, which is not committed: "
            f"the runner's checkout will not have it",
            f"git add -f {relative} and commit it",
        )
    return _version_finding(shown, version, relative)


def _committed(path: Path) -> bool:
    try:
        git.run_git("ls-files", "--error-unmatch", path.name, cwd=path.parent)
    except MlciError:
        return False
    return True


def _version_finding(shown: str, version: str, what: str) -> _Finding:
    if _same_version(version, __version__):
        return _Finding("ok", f"{shown}: {what}")
    return _Finding(
        "warn",
        f"{shown} installs mlci {version}, but this is mlci {__version__}: the CI runs "
        f"another version than the one that checked the configuration",
        f"run `mlci init --force` with the options in the file's header (it writes "
        f"{__version__}), or install mlci {version} here",
    )


def _same_version(a: str, b: str) -> bool:
    """PEP 440's equality for plain releases (0.1 == 0.1.0); exact text otherwise."""
    if re.fullmatch(r"[0-9]+(\.[0-9]+)*", a) and re.fullmatch(r"[0-9]+(\.[0-9]+)*", b):
        x, y = [int(part) for part in a.split(".")], [int(part) for part in b.split(".")]
        width = max(len(x), len(y))
        return x + [0] * (width - len(x)) == y + [0] * (width - len(y))
    return a == b


def _action_finding(uses: str, shown: str) -> _Finding | None:
    pinned = _ACTION_USES.fullmatch(uses.strip())
    if pinned is None:
        return None
    if re.fullmatch(r"[0-9a-f]{40}", pinned[1]):
        return _Finding("ok", f"{shown}: mlci's action {uses}")
    return _Finding(
        "warn",
        f"{shown} uses mlci's action at @{pinned[1]}, a tag or branch that can be moved: "
        f"each run may get other code",
        f"pin the commit: `uses: {uses.partition('@')[0]}@<40-hex sha>  # {pinned[1]}` "
        f"(`git ls-remote https://github.com/{uses.partition('@')[0]} {pinned[1]}` prints "
        f"it; `mlci init --force --action` writes it)",
    )


# In the order they print.
CHECKS: list[Check] = [
    check_config,
    check_disk,
    check_git_history,
    check_baseline,
    check_timeout,
    check_job_timeout,
    check_install,
    check_registry,
    check_registry_repair,
    check_dvc,
    check_forge_token,
    check_forge_access,
    check_gpu,
    check_launched,
]
# Cheap (no network, no subprocess but git): `mlci run` runs them before training.
PREFLIGHT: list[Check] = [
    check_disk,
    check_git_history,
    check_baseline,
    check_timeout,
    check_forge_token,
]


# -- running them ----------------------------------------------------------------------------


def context_for(config_path: Path | None, env: Mapping[str, str]) -> DoctorContext:
    try:
        path = locate(config_path)
        config = load_config(path)
    except MlciError as exc:
        root = (config_path.parent if config_path else Path.cwd()).resolve()
        return DoctorContext(root=root, config=None, config_error=exc.message, env=env)
    return context_of(config, env)


def context_of(config: Config, env: Mapping[str, str]) -> DoctorContext:
    raw = None
    try:
        loaded = yamlsafe.load((config.root / "mlci.yaml").read_text(encoding="utf-8"))
        raw = loaded if isinstance(loaded, dict) else None
    except Exception:  # the config already loaded; raw is only for telling defaults apart
        raw = None
    return DoctorContext(
        root=config.root,
        config=config,
        config_error=None,
        env=env,
        raw=raw,
        gpu_requested=_gpu_requested(config),
    )


def run_checks(ctx: DoctorContext, checks: list[Check] | None = None) -> list[CheckResult]:
    return [check(ctx) for check in (CHECKS if checks is None else checks)]


def preflight(
    config: Config, env: Mapping[str, str], *, registry: bool = False
) -> list[CheckResult]:
    """Run the cheap checks, and the registry's where the run cannot do without it; raise
    PreflightError at the first failure, return warnings."""
    checks = [*PREFLIGHT, check_registry] if registry else PREFLIGHT
    results = [_patient(result) for result in run_checks(context_of(config, env), checks)]
    for result in results:
        if result.status == "fail":
            raise PreflightError(result)
    return [result for result in results if result.status == "warn"]


def _patient(result: CheckResult) -> CheckResult:
    """A registry too slow for the quick check may still answer the run's own client, with
    its longer timeout: a warning then, not a stop; a refusal or no server at all stops."""
    if result.name == "registry" and result.status == "fail" and "timed out" in result.detail:
        return dataclasses.replace(result, status="warn")
    return result


# -- the pipeline's first stages ---------------------------------------------------------------


def context(
    config: Config, env: Mapping[str, str], console: Console, *, commit: bool = True
) -> CiContext:
    """Where this run happens (the CI, the event, the branch and commit), said on the log;
    without `commit`, also outside a git repository."""
    found = detect_context(config.root, env, commit=commit)
    if found.dirty:
        changed = uncommitted(config)
        found = dataclasses.replace(found, dirty=bool(changed), changed=changed)
    where = f"{found.branch or 'detached HEAD'} @ {(found.sha or 'no commit')[:12]}"
    if found.branch is None and found.sha is None:
        where = "a folder outside git"
    dirty = f" (uncommitted changes: {_few(found.changed)})" if found.dirty else ""
    kind = "local" if found.ci == "local" else f"{found.ci} {found.event}"
    console.step("context", f"{kind} build of {where}{dirty}")
    return found


def uncommitted(config: Config) -> tuple[str, ...]:
    """The tracked files of the project changed since the commit, but for what the training
    writes: `evaluate.metrics`, `evaluate.predictions`, `registry.model`, `dvc.lock` and the
    stage outputs it lists (`.mlci/` and DVC's cached outputs are not tracked by git).
    Untracked files do not count, as in `git describe --dirty`."""
    written = [*config.evaluate.metrics, config.evaluate.predictions, config.registry.model]
    outputs = {PurePosixPath(name).as_posix() for name in written if name}
    for lock in (n for n in git.list_files(config.root) if PurePosixPath(n).name == "dvc.lock"):
        outputs |= {lock, *_stage_outputs(config.root / lock, PurePosixPath(lock).parent)}
    return tuple(
        name
        for name in git.changed_files(config.root)
        if not any(name == out or name.startswith(f"{out}/") for out in outputs)
    )


def _stage_outputs(lock: Path, folder: PurePosixPath) -> list[str]:
    try:
        stages = (yamlsafe.load_bounded(lock.read_text(encoding="utf-8")) or {}).get("stages")
    except (OSError, UnicodeDecodeError, yaml.YAMLError, AttributeError):
        return []  # a dvc.lock DVC itself cannot read: the data stage says so
    return [
        (folder / str(out["path"])).as_posix().removeprefix("./")
        for lock_stage in (stages.values() if isinstance(stages, dict) else ())
        if isinstance(lock_stage, dict)
        for out in lock_stage.get("outs") or []
        if isinstance(out, dict) and out.get("path")
    ]


def _few(names: tuple[str, ...]) -> str:
    shown_names = ", ".join(names[:3])
    return shown_names + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def warn(config: Config, env: Mapping[str, str], console: Console, *, registry: bool) -> None:
    """The cheap checks of `mlci doctor` before training: stop on a failure, print warnings.
    With `registry` (the run reads the champion or promotes, so cannot do without it), the
    registry is checked too: one request to a server, rather than a failure after training."""
    for warning in preflight(config, env, registry=registry):
        console.warn(warning.line())
