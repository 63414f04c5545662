"""Settings -> the CI workflow files `mlci init` writes (GitHub Actions, GitLab CI).

Pure: the caller reads mlci.yaml and the repository and hands over `WorkflowSettings`;
this module returns the files' text. The YAML is written as text, not dumped, so every
choice carries the comment that explains it (docs/workflows.md explains them at length).

Nothing a pull request controls (branch names, titles, artifact contents) is ever
interpolated into a `run:` script: such values reach the shell through `env:` only.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import chain
from typing import Literal

DvcRemote = Literal["none", "local", "s3", "gs", "azure", "ssh", "http"]
DVC_REMOTES: tuple[DvcRemote, ...] = ("none", "local", "s3", "gs", "azure", "ssh", "http")

# Actions pinned by full commit SHA (zizmor's unpinned-uses), with the release they are.
# The node24 releases: actionlint reports the node20 ones (checkout v4, setup-python v5,
# upload-artifact v4) as deprecated.
PINS = {
    "actions/checkout": ("8e8c483db84b4bee98b60c0593521ed34d9990e8", "v6.0.1"),
    "actions/setup-python": ("e797f83bcb11b83ae66e0230d6156d7c80228e7c", "v6.0.0"),
    "actions/upload-artifact": ("b7c566a772e6b6bfb58ed0dc250532a479d7789f", "v6.0.0"),
    "actions/download-artifact": ("37930b1c2abaa49bbe596cd826c3c89aef350131", "v7.0.0"),
}

# Keyless (OIDC) log-ins, offered as comments beside the key-based steps: the release
# commits, read from the actions' repositories (both run on node24).
KEYLESS_PINS = {
    "aws-actions/configure-aws-credentials": (
        "e6de054238d6b7531b4efff3b6587d9aade6a06c",
        "v6.2.3",
    ),
    "google-github-actions/auth": ("7c6bc770dae815cd3e89ee6cdf493a5fab2cc093", "v3.0.0"),
    "azure/login": ("f5d393ae46f8fde4be8b75f32e3fc50e654ad0ca", "v3.0.1"),
}

GITHUB_WORKFLOW = ".github/workflows/ml-pipeline.yml"
GITHUB_REPORT_WORKFLOW = ".github/workflows/ml-report.yml"
GITLAB_CI = ".gitlab-ci.yml"
WORKFLOW_NAME = "ML pipeline"
ARTIFACT = "mlci-report"
# The folders GitHub's hosted Ubuntu images fill with toolchains an ML job never uses
# (about 30 GB of the 14 GB-free disk's neighbours); removing them takes seconds.
FREE_DISK_PATHS = (
    "/usr/share/dotnet",
    "/usr/local/lib/android",
    "/opt/ghc",
    "/opt/hostedtoolcache/CodeQL",
)
# torch's own package indexes: PyPI's Linux wheel is a CUDA build of several GB, which a
# CPU runner only pays for; a GPU runner gets a CUDA build that recent drivers support.
TORCH_INDEX = {
    "cuda": "https://download.pytorch.org/whl/cu126",
    "cpu": "https://download.pytorch.org/whl/cpu",
}
SETUP_MINUTES = 15  # check-out, installs and the report's upload, on top of the training
# A training off the runner (`mlci init --gpu ray|skypilot`): the job stays on a hosted
# runner, and its limit covers the cloud machine's start on top of the training.
Engine = Literal["ray", "skypilot"]
ENGINES: tuple[Engine, ...] = ("ray", "skypilot")
PROVISION_MINUTES = 15
# The cloud log-in of a training off the runner: an IAM role that trusts GitHub's OIDC
# token provider, named by configuration variables (no key to store).
CLOUD_ROLE_VARIABLES = ("MLCI_AWS_ROLE", "MLCI_AWS_REGION")
# The repository variable with a running Ray cluster's address (RAY_ADDRESS in mlci's step).
RAY_ADDRESS_VARIABLE = "MLCI_RAY_ADDRESS"


@dataclass(frozen=True)
class Secret:
    """An environment variable of the training step, filled from a repository secret."""

    env: str
    secret: str


# The credentials of each job (docs/security.md). A pull request's job runs code that the
# pull request wrote, so it gets read-only ones: an MLflow user with READ, keys that can
# only read the data. The main job's write credentials live in a GitHub environment
# restricted to the promoting branches, so no pull request's run can read them.
PROMOTE_ENVIRONMENT = "mlci-promote"
READ_ONLY_NOTE = (
    "# Read-only credentials, as repository secrets on purpose (docs/security.md).",
    "# zizmor: ignore[secrets-outside-env]",
)

# DVC's credentials by remote type: the variables each storage client reads, filled for
# the main job (its environment's secrets) ...
DVC_SECRETS: dict[DvcRemote, tuple[Secret, ...]] = {
    "none": (),
    "local": (),
    "s3": (
        Secret("AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY_ID"),
        Secret("AWS_SECRET_ACCESS_KEY", "AWS_SECRET_ACCESS_KEY"),
    ),
    "gs": (),  # a key file: written from GCP_SERVICE_ACCOUNT_KEY by its own step
    "azure": (Secret("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_CONNECTION_STRING"),),
    "ssh": (),  # a key file: written from DVC_SSH_KEY by its own step
    "http": (),  # .dvc/config.local: written from DVC_HTTP_USER/PASSWORD by its own step
}
# ... and for pull requests, from read-only keys.
DVC_READ_SECRETS: dict[DvcRemote, tuple[Secret, ...]] = {
    "none": (),
    "local": (),
    "s3": (
        Secret("AWS_ACCESS_KEY_ID", "AWS_READONLY_ACCESS_KEY_ID"),
        Secret("AWS_SECRET_ACCESS_KEY", "AWS_READONLY_SECRET_ACCESS_KEY"),
    ),
    "gs": (),
    "azure": (
        Secret("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_READONLY_CONNECTION_STRING"),
    ),
    "ssh": (),
    "http": (),
}
GCP_KEY_SECRET = "GCP_SERVICE_ACCOUNT_KEY"
GCP_READ_KEY_SECRET = "GCP_READONLY_SERVICE_ACCOUNT_KEY"
# SSH: the private key DVC logs in with (a deploy key without a passphrase), written to
# ~/.ssh/ by its own step with the host's public key. The host key is no secret: a
# configuration variable (vars.), so that it is not masked in the logs.
SSH_KEY_SECRET = "DVC_SSH_KEY"
SSH_READ_KEY_SECRET = "DVC_SSH_READONLY_KEY"
SSH_KNOWN_HOSTS_VARIABLE = "DVC_SSH_KNOWN_HOSTS"
# HTTP(S): basic auth, written into .dvc/config.local (which git ignores) by its own step.
HTTP_SECRETS = (
    Secret("DVC_HTTP_USER", "DVC_HTTP_USER"),
    Secret("DVC_HTTP_PASSWORD", "DVC_HTTP_PASSWORD"),
)
HTTP_READ_SECRETS = (
    Secret("DVC_HTTP_USER", "DVC_HTTP_READONLY_USER"),
    Secret("DVC_HTTP_PASSWORD", "DVC_HTTP_READONLY_PASSWORD"),
)
MLFLOW_SECRETS = (
    Secret("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_USERNAME"),
    Secret("MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_PASSWORD"),
)
MLFLOW_READ_SECRETS = (
    Secret("MLFLOW_TRACKING_USERNAME", "MLFLOW_READER_USERNAME"),
    Secret("MLFLOW_TRACKING_PASSWORD", "MLFLOW_READER_PASSWORD"),
)

SourceKind = Literal["index", "action", "git", "path"]
SOURCE_KINDS: tuple[SourceKind, ...] = ("index", "action", "git", "path")
GIT_SOURCE = re.compile(r"git\+https://[\w.@:/~-]+@[0-9a-f]{40}")
WHEEL_PATH = re.compile(r"(?!/)(?!.*(^|/)\.\.(/|$))[\w./+-]+\.whl")


@dataclass(frozen=True)
class MlciSource:
    """Where the generated jobs install mlci from. Every kind is pinned: the index at an
    exact version, a git URL at a commit, a wheel committed to the repository (with its
    sha256), or the composite action at a commit (`location` is then the action's own git
    URL at that commit, which the fork-safe report job installs)."""

    kind: SourceKind
    version: str  # the version of mlci it installs
    location: str = ""  # git and action: git+https://HOST/OWNER/REPO@SHA; path: from the top
    sha256: str = ""  # path: the wheel's hash, checked before the privileged job installs it

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[0-9][0-9A-Za-z.!+-]*", self.version):
            raise ValueError(f"not a version: {self.version!r}")
        if self.kind in ("git", "action") and not GIT_SOURCE.fullmatch(self.location):
            raise ValueError(f"not a git URL pinned to a commit: {self.location!r}")
        if self.kind == "path" and not WHEEL_PATH.fullmatch(self.location):
            raise ValueError(f"not a wheel's path inside the repository: {self.location!r}")
        if self.sha256 and not re.fullmatch(r"[0-9a-f]{64}", self.sha256):
            raise ValueError(f"not a sha256: {self.sha256!r}")

    def requirement(self, extras: tuple[str, ...], *, top: str) -> str:
        """mlci with `extras` as one shell word of a `pip install` line; `top` is the shell
        variable that holds the repository's top folder on the runner (for a wheel)."""
        extra = f"[{','.join(extras)}]" if extras else ""
        if self.kind == "index":
            return _shell_word(f"mlci{extra}=={self.version}")
        if self.kind == "path":
            return f'"${{{top}}}/{self.location}{extra}"'
        return _shell_word(f"mlci{extra} @ {self.location}")


@dataclass(frozen=True, kw_only=True)
class WorkflowSettings:
    """Everything the generated files depend on; `mlci init` fills it from flags and files."""

    source: MlciSource  # where mlci comes from, pinned
    extras: tuple[str, ...] = ("mlflow",)  # mlci's extras (the composite action takes these)
    packages: tuple[str, ...] = ()  # more pip requirements, e.g. dvc[s3]
    requirements: tuple[str, ...] = ()  # the training's requirements files, from the project
    install_project: str | None = None  # "." or ".[extras]": the project's pyproject.toml
    python_version: str = "3.11"
    train_timeout_minutes: float = 60.0
    data_timeout_minutes: float = 0.0  # data.timeout_minutes when `dvc pull` runs first
    promote_on: tuple[str, ...] = ("main",)
    runs_on: tuple[str, ...] = ("ubuntu-latest",)
    gpu: bool = False
    torch: bool = False  # the training uses PyTorch: its CUDA build on GPU runners, else CPU
    free_disk: bool = False
    fork_safe: bool = False
    action: str | None = None  # "owner/repo@<sha>": use mlci's composite action
    action_version: str | None = None  # the version comment next to the pinned action
    dvc_remote: DvcRemote = "none"
    registry_server: bool = False  # registry.tracking_uri is an MLflow server (http[s])
    engine: Engine | None = None  # train.on: the training runs on a cloud GPU (docs/gpu.md)
    project_dir: str = ""  # the folder of mlci.yaml inside the repository ("" = the top)
    options: str = ""  # the `mlci init` options that wrote the files, for the header

    def __post_init__(self) -> None:
        if self.engine is not None and self.gpu:
            raise ValueError("a training off the runner keeps the job on a runner without a GPU")
        if self.action is not None and self.dvc_remote == "http":
            raise ValueError(
                "an HTTP DVC remote needs DVC installed before the step that runs mlci, to "
                "write its credentials: leave out --action (mlci is then installed by pip)"
            )
        for branch in self.promote_on:
            if (problem := branch_name_problem(branch)) is not None:
                raise ValueError(f"not a branch name: {branch!r} ({problem})")
        for name in self.requirements:  # the action's input holds them space-separated
            if not name or not name.isprintable() or any(c.isspace() for c in name):
                raise ValueError(f"not a requirements file's name for a workflow: {name!r}")

    @property
    def job_timeout_minutes(self) -> int:
        """The job's limit: the data pull's and the training's own plus set-up, so mlci's
        timeouts fire first and the report is still uploaded."""
        provision = PROVISION_MINUTES if self.engine else 0
        return job_minutes(self.train_timeout_minutes, self.data_timeout_minutes) + provision

    def timeout_comment(self) -> str:
        """What the job's limit is made of, for the comment beside it."""
        pull = f" + data.timeout_minutes ({self.data_timeout_minutes:g})"
        return (
            f"train.timeout_minutes ({self.train_timeout_minutes:g})"
            f"{pull if self.data_timeout_minutes else ''} + {SETUP_MINUTES} for set-up and "
            f"the upload{f' + {PROVISION_MINUTES} for the cloud GPU' if self.engine else ''}"
        )


def job_minutes(train_minutes: float, data_minutes: float = 0.0) -> int:
    """The least a CI job's limit must be: `dvc pull`, then the training, each under its
    own timeout, then the set-up and the report's upload."""
    return int(-(-(train_minutes + data_minutes) // 1)) + SETUP_MINUTES


def _step(name: str) -> str:
    return f"      - name: {_scalar(name)}"


def pin(action: str) -> str:
    sha, version = PINS[action]
    return f"{action}@{sha}  # {version}"


# -- GitHub Actions --------------------------------------------------------------------------


def github_files(settings: WorkflowSettings) -> dict[str, str]:
    """The workflow files by path from the repository's top."""
    files = {GITHUB_WORKFLOW: _pipeline_workflow(settings)}
    if settings.fork_safe:
        files[GITHUB_REPORT_WORKFLOW] = _report_workflow(settings)
    return files


def _header(settings: WorkflowSettings, what: str) -> list[str]:
    command = f"mlci init {settings.options}".rstrip()
    return [
        f"# {what}",
        f"# Written by `{command}`; docs/workflows.md explains each choice.",
        "# Regenerate with the same options and --force after upgrading mlci.",
    ]


def branch_name_problem(name: str) -> str | None:
    """Why `name` is not a branch name git accepts (`git check-ref-format --branch`), or
    None. Quotes are refused too: the names go into YAML and GitLab's rule expressions."""
    if name in ("", "@") or name.startswith(("-", "/")) or name.endswith(("/", ".", ".lock")):
        return "it may not be empty or @, start with - or /, or end with /, . or .lock"
    if not name.isprintable() or set(name) & _REF_FORBIDDEN:
        return "it may not hold spaces, control characters, quotes or any of ~ ^ : ? * [ \\"
    if "//" in name or ".." in name or "@{" in name or "/." in name or name.startswith("."):
        return "it may not hold //, .., @{ or a part that starts with ."
    if any(part.endswith(".lock") for part in name.split("/")):
        return "no part of it may end with .lock"
    return None


_REF_FORBIDDEN = frozenset(" ~^:?*[\\\"'`\x7f")


def _pipeline_workflow(s: WorkflowSettings) -> str:
    branches = ", ".join(s.promote_on)
    lines = [
        *_header(
            s, f"Train, evaluate and gate every pull request; promote passing models on {branches}."
        ),
        f"name: {WORKFLOW_NAME}",
        "",
        "on:",
        "  pull_request:",
        "  push:",
        f"    branches: [{', '.join(_scalar(branch) for branch in s.promote_on)}]",
        "",
        "# No permission for the workflow as a whole: each job asks for what it needs.",
        "permissions: {}",
        "",
        f"# A new push to a pull request cancels its superseded run; a run on {branches} is never",
        "# cancelled half-way through a promotion.",
        "concurrency:",
        "  group: ${{ github.workflow }}-${{ github.ref }}",
        "  cancel-in-progress: ${{ github.event_name == 'pull_request' }}",
        "",
        "jobs:",
        *_pipeline_job(s, pull_request=True),
        "",
        *_pipeline_job(s, pull_request=False),
    ]
    return "\n".join(lines) + "\n"


def _pipeline_job(s: WorkflowSettings, *, pull_request: bool) -> list[str]:
    if pull_request:
        lines = [
            "  pull-request:",
            "    name: Evaluate the pull request",
            "    if: github.event_name == 'pull_request'",
        ]
        permissions = ["      contents: read  # check out the code", *_oidc_permission(s)]
        if not s.fork_safe:
            permissions += [
                "      pull-requests: write  # post the report as a comment",
                "      statuses: write  # set the commit status",
            ]
    else:
        lines = [
            "  main:",
            "    name: Evaluate and promote",
            "    if: github.event_name == 'push'",
        ]
        if uses_environment(s):
            lines += [
                "    # The write credentials: secrets of this environment, which only the",
                "    # promoting branches may use (its deployment branches; docs/security.md).",
                f"    environment: {PROMOTE_ENVIRONMENT}",
            ]
        permissions = [
            "      contents: read  # check out the code",
            *_oidc_permission(s),
            "      statuses: write  # set the commit status",
        ]
    lines += [f"    runs-on: {_runs_on(s.runs_on)}"]
    lines += [
        f"    timeout-minutes: {s.job_timeout_minutes}  # {s.timeout_comment()}",
        "    permissions:",
        *permissions,
    ]
    if s.project_dir:
        lines += [
            "    defaults:",
            "      run:",
            f"        working-directory: {_scalar(s.project_dir)}",
        ]
    lines += ["    steps:"]
    lines += _free_disk_step(s) + _gpu_step(s)
    lines += [
        _step("Check out the code with its history (the git baseline needs it)"),
        f"        uses: {pin('actions/checkout')}",
        "        with:",
        "          fetch-depth: 0",
        "          persist-credentials: false",
    ]
    lines += _keyless_s3(s, pull_request=pull_request)
    lines += _keyless_gcp(s, pull_request=pull_request) + _keyless_azure(
        s, pull_request=pull_request
    )
    lines += _gcp_key_step(s, pull_request=pull_request)
    lines += _ssh_key_step(s, pull_request=pull_request)
    lines += _cloud_login(s, pull_request=pull_request)
    if s.action is None:
        lines += _install_steps(s)
        lines += _http_login_step(s, pull_request=pull_request)
        lines += _run_step(s, pull_request=pull_request)
    else:
        lines += _action_step(s, pull_request=pull_request)
    lines += [
        _step("Upload the report (also when a step failed)"),
        "        if: always()",
        f"        uses: {pin('actions/upload-artifact')}",
        "        with:",
        f"          name: {ARTIFACT}",
        f"          path: {_scalar(_project_path(s, '.mlci/out/'))}",
        "          if-no-files-found: warn",
        "          retention-days: 30",
    ]
    return lines


def _runs_on(labels: tuple[str, ...]) -> str:
    if len(labels) == 1:
        return _scalar(labels[0])
    return "[" + ", ".join(_scalar(label) for label in labels) + "]"


def _project_path(s: WorkflowSettings, path: str) -> str:
    return f"{s.project_dir.rstrip('/')}/{path}" if s.project_dir else path


def _free_disk_step(s: WorkflowSettings) -> list[str]:
    if not s.free_disk:
        return []
    return [
        _step("Free disk space (the hosted runner's preinstalled toolchains)"),
        "        run: |",
        "          df -h /",
        f"          sudo rm -rf {' '.join(FREE_DISK_PATHS)}",
        "          sudo docker image prune --all --force",
        "          df -h /",
    ]


def _gpu_step(s: WorkflowSettings) -> list[str]:
    if not s.gpu:
        return []
    # The hook for GPU set-up (issue #10: the CUDA build of torch): it goes right here,
    # before the check-out, so a runner without a GPU fails in seconds.
    return [
        _step("Show the GPU (fails at once on a runner without one)"),
        "        run: nvidia-smi",
    ]


def _oidc_permission(s: WorkflowSettings) -> list[str]:
    if s.engine is None:
        return []
    return ["      id-token: write  # the cloud log-in (OIDC) that launches the training's GPU"]


_ENGINE_NAMES = {"ray": "Ray", "skypilot": "SkyPilot"}
# Without the cloud log-in: what else gives the engine its machines.
_ENGINE_ELSEWHERE = {
    "ray": (
        "      # With a running cluster (RAY_ADDRESS in mlci's step, or train.ray.address:",
        "      # KubeRay, or one whose autoscaler adds GPU nodes) instead of train.ray.cluster,",
        "      # the cluster's own credentials start its GPU nodes: this step can go.",
    ),
    "skypilot": (
        "      # With a team's SkyPilot API server (train.skypilot.api_server, or the variable",
        "      # SKYPILOT_API_SERVER_ENDPOINT), the server holds the cloud credentials: this",
        "      # step can go. On Kubernetes (infra: k8s), the kubeconfig does instead.",
    ),
}


_S3_KEYS_WIN = (
    "      # The AWS_* keys DVC gets in mlci's step take this role's place there: log DVC",
    "      # in with a role too (above), with one role that may do both.",
)


def _cloud_login(s: WorkflowSettings, *, pull_request: bool) -> list[str]:
    """The log-in that lets the engine start the training's cloud machine: keyless (OIDC),
    never for a pull request from a fork (no token there, and mlci launches nothing)."""
    if s.engine is None:
        return []
    role, region = CLOUD_ROLE_VARIABLES
    fork_rule = [
        "        # A pull request from a fork gets no token: mlci launches nothing for it.",
        "        if: github.event.pull_request.head.repo.full_name == github.repository",
    ]
    return [
        f"      # {_ENGINE_NAMES[s.engine]} starts the training's cloud GPU with the AWS role",
        "      # this step assumes (OIDC: the role trusts GitHub's token provider and may",
        "      # start and terminate EC2 instances; no key to store; docs/gpu.md#secrets).",
        *_ENGINE_ELSEWHERE[s.engine],
        *(_S3_KEYS_WIN if s.dvc_remote == "s3" else ()),
        _step("Log in to AWS for the training's cloud GPU (OIDC, no key)"),
        *(fork_rule if pull_request else []),
        f"        uses: {_keyless_pin('aws-actions/configure-aws-credentials')}",
        "        with:",
        f"          role-to-assume: ${{{{ vars.{role} }}}}  # CHOOSE: arn:aws:iam::ACCOUNT:role/X",
        f"          aws-region: ${{{{ vars.{region} }}}}  # CHOOSE: where the GPU quota is",
        *(_gcp_login_instead() if s.engine == "skypilot" else []),
    ]


def _gcp_login_instead() -> list[str]:
    return [
        "      # On GCP instead (workload identity federation), in place of the step above:",
        _keyless("google-github-actions/auth"),
        "      #   with:",
        "      #     workload_identity_provider: projects/NUMBER/locations/global/"
        "workloadIdentityPools/POOL/providers/PROVIDER",
        "      #     service_account: mlci-gpu@PROJECT.iam.gserviceaccount.com",
    ]


def _gcp_key_step(s: WorkflowSettings, *, pull_request: bool) -> list[str]:
    if s.dvc_remote != "gs":
        return []
    secret = GCP_READ_KEY_SECRET if pull_request else GCP_KEY_SECRET
    note = [f"          {line}" for line in READ_ONLY_NOTE] if pull_request else []
    return [
        _step("Write the Google Cloud key that DVC reads"),
        "        env:",
        *note,
        f"          {GCP_KEY_SECRET}: ${{{{ secrets.{secret} }}}}",
        "        run: |",
        "          umask 077",
        f'          printf \'%s\' "${GCP_KEY_SECRET}" > "$RUNNER_TEMP/gcp-key.json"',
    ]


# The shell lines that give DVC its SSH key and the server's host key, or its HTTP
# credentials, from the variables of `dvc_login_env` (GitHub's steps and GitLab's jobs).
SSH_LOGIN = (
    f'test -n "${SSH_KNOWN_HOSTS_VARIABLE}" || {{ echo "{SSH_KNOWN_HOSTS_VARIABLE} is '
    f'empty: see docs/data.md" >&2; exit 1; }}',
    "install -d -m 700 ~/.ssh",
    f"(umask 077 && printf '%s\\n' \"${SSH_KEY_SECRET}\" > ~/.ssh/dvc_key)",
    "echo 'IdentityFile ~/.ssh/dvc_key' >> ~/.ssh/config",
    f"printf '%s\\n' \"${SSH_KNOWN_HOSTS_VARIABLE}\" >> ~/.ssh/known_hosts",
)
HTTP_LOGIN = (
    'remote="$(dvc remote default)"',
    'dvc remote modify --local "$remote" auth basic',
    'dvc remote modify --local "$remote" user "$DVC_HTTP_USER"',
    'dvc remote modify --local "$remote" password "$DVC_HTTP_PASSWORD"',
)


def _ssh_key_step(s: WorkflowSettings, *, pull_request: bool) -> list[str]:
    if s.dvc_remote != "ssh":
        return []
    secret = SSH_READ_KEY_SECRET if pull_request else SSH_KEY_SECRET
    return [
        _step("Give DVC the SSH key and the server's host key"),
        "        # A key without a passphrase (a deploy key): nothing can type one in CI.",
        "        # The host key is checked, never StrictHostKeyChecking=no: mlci refuses a",
        "        # server whose key is not in known_hosts (DVC itself would not check it).",
        *_login_env_and_run(
            [Secret(SSH_KEY_SECRET, secret)],
            SSH_LOGIN,
            pull_request=pull_request,
            variable=SSH_KNOWN_HOSTS_VARIABLE,
        ),
    ]


def _http_login_step(s: WorkflowSettings, *, pull_request: bool) -> list[str]:
    if s.dvc_remote != "http":
        return []
    secrets = HTTP_READ_SECRETS if pull_request else HTTP_SECRETS
    return [
        _step("Give DVC the HTTP credentials (in .dvc/config.local, which git ignores)"),
        *_login_env_and_run(secrets, HTTP_LOGIN, pull_request=pull_request),
    ]


def _login_env_and_run(
    secrets: Iterable[Secret],
    script: Iterable[str],
    *,
    pull_request: bool,
    variable: str | None = None,
) -> list[str]:
    """A login step's `env:` (its secrets, and a configuration variable) and `run:`."""
    note = [f"          {line}" for line in READ_ONLY_NOTE] if pull_request else []
    return [
        "        env:",
        *note,
        *(f"          {x.env}: ${{{{ secrets.{x.secret} }}}}" for x in secrets),
        *([f"          {variable}: ${{{{ vars.{variable} }}}}"] if variable else []),
        "        run: |",
        *(f"          {line}" for line in script),
    ]


def _keyless(action: str) -> str:
    return f"      # - uses: {_keyless_pin(action)}"


def _keyless_pin(action: str) -> str:
    sha, version = KEYLESS_PINS[action]
    return f"{action}@{sha}  # {version}"


def _keyless_s3(s: WorkflowSettings, *, pull_request: bool) -> list[str]:
    if s.dvc_remote != "s3":
        return []
    role = "ci-dvc-read" if pull_request else "ci-dvc-write"
    return [
        "      # Keyless instead (OIDC: an IAM role that trusts GitHub's token provider, no",
        "      # key to store): add `id-token: write` to this job's permissions, drop the",
        "      # AWS_* variables from mlci's step, and log in here; the action sets the",
        "      # role's temporary credentials for the steps after it (docs/data.md).",
        _keyless("aws-actions/configure-aws-credentials"),
        "      #   with:",
        f"      #     role-to-assume: arn:aws:iam::ACCOUNT_ID:role/{role}",
        "      #     aws-region: REGION",
    ]


def _keyless_gcp(s: WorkflowSettings, *, pull_request: bool) -> list[str]:
    if s.dvc_remote != "gs":
        return []
    account = "ci-reader" if pull_request else "ci-writer"
    return [
        "      # Keyless instead (workload identity federation, no key to store): delete the",
        "      # key's step below and GOOGLE_APPLICATION_CREDENTIALS in mlci's step, add",
        "      # `id-token: write` to this job's permissions, and log in here; the action",
        "      # sets GOOGLE_APPLICATION_CREDENTIALS itself (docs/data.md).",
        _keyless("google-github-actions/auth"),
        "      #   with:",
        "      #     workload_identity_provider: projects/NUMBER/locations/global/"
        "workloadIdentityPools/POOL/providers/PROVIDER",
        f"      #     service_account: {account}@PROJECT.iam.gserviceaccount.com",
    ]


def _keyless_azure(s: WorkflowSettings, *, pull_request: bool) -> list[str]:
    if s.dvc_remote != "azure":
        return []
    role = "Storage Blob Data Reader" if pull_request else "Storage Blob Data Contributor"
    return [
        "      # Keyless instead (OIDC: a federated credential on an app registration with",
        f"      # the role {role}): add `id-token: write` to this job's permissions,",
        "      # commit the account (`dvc remote modify storage account_name ACCOUNT`), drop",
        "      # AZURE_STORAGE_CONNECTION_STRING from mlci's step, and log in here: DVC then",
        "      # uses the Azure CLI's login (docs/data.md).",
        _keyless("azure/login"),
        "      #   with:",
        "      #     client-id: APP_CLIENT_ID",
        "      #     tenant-id: TENANT_ID",
        "      #     allow-no-subscriptions: true",
    ]


def torch_build(s: WorkflowSettings) -> str | None:
    """Which build of torch the job installs: "cuda", "cpu", or None (no torch)."""
    if not s.torch or s.engine is not None:  # off the runner, the job never runs torch
        return None
    return "cuda" if s.gpu else "cpu"


def _torch_install(s: WorkflowSettings) -> list[str]:
    build = torch_build(s)
    if build is None:
        return []
    why = "the CUDA build, on GPU runners only" if build == "cuda" else "the CPU build: GBs less"
    return [f"python -m pip install torch --index-url {TORCH_INDEX[build]}  # {why}"]


def _install_line(s: WorkflowSettings, *, top: str) -> str:
    mlci = s.source.requirement(s.extras, top=top)
    return " ".join(["python -m pip install", mlci, *(_shell_word(p) for p in s.packages)])


def _install_steps(s: WorkflowSettings) -> list[str]:
    lines = [
        _step("Set up Python with pip's cache"),
        f"        uses: {pin('actions/setup-python')}",
        "        with:",
        f"          python-version: {_scalar(s.python_version)}",
        "          cache: pip",
        *_cache_key_files(s),
        _step("Install mlci"),
        "        run: |",
        *(f"          {line}" for line in _torch_install(s)),
        f"          {_install_line(s, top='GITHUB_WORKSPACE')}",
    ]
    if _project_requirements(s):
        lines += [f"          {_project_requirements(s)}"]
    return lines


def _cache_key_files(s: WorkflowSettings) -> list[str]:
    """setup-python's cache-dependency-path: the files whose hash keys pip's cache. A
    GitHub cache is never overwritten under its key, so every file that changes what is
    installed is in it (else a new requirement is downloaded on every run until mlci.yaml
    changes)."""
    files = ["mlci.yaml", *s.requirements]
    if s.install_project:
        files.append("pyproject.toml")
    paths = [_project_path(s, name) for name in files]
    # A literal block holds each path as it is; one it could not (a line break, a space
    # at an end) leaves the key to mlci.yaml alone.
    if len(paths) == 1 or not all(_BLOCK_LINE.fullmatch(path) for path in paths):
        return [f"          cache-dependency-path: {_scalar(paths[0])}"]
    return ["          cache-dependency-path: |", *(f"            {path}" for path in paths)]


_BLOCK_LINE = re.compile(r"[^\s#][^\x00-\x1f\x7f]*(?<=\S)")


def _project_requirements(s: WorkflowSettings) -> str:
    """The pip line of the training's own requirements (files, pyproject.toml), or ""."""
    words = [word for name in s.requirements for word in ("-r", _shell_word(name))]
    words += [_shell_word(s.install_project)] if s.install_project else []
    return " ".join(["python -m pip install", *words]) if words else ""


def _step_env(s: WorkflowSettings, *, pull_request: bool) -> list[str]:
    env = []
    if not (pull_request and s.fork_safe):
        env.append("          GITHUB_TOKEN: ${{ github.token }}  # posts the report")
    secrets = secrets_of(s, pull_request=pull_request)
    if pull_request and secrets:
        env += [f"          {line}" for line in READ_ONLY_NOTE]
    for secret in secrets:
        env.append(f"          {secret.env}: ${{{{ secrets.{secret.secret} }}}}")
    if s.dvc_remote == "gs":
        env.append("          GOOGLE_APPLICATION_CREDENTIALS: ${{ runner.temp }}/gcp-key.json")
    offered = _RAY_ADDRESS if s.engine == "ray" else ()
    if not env and offered:  # no env: to comment under: the offer brings its own
        *why, line = offered
        return [*(f"        # {text}" for text in why), "        # env:", f"        #   {line}"]
    if not env:
        return []
    return ["        env:", *env, *(f"          # {line}" for line in offered)]


# `--gpu ray` brings a cluster up per run (train.ray.cluster); a running cluster instead
# is reached at the address Ray's own CLI reads, from a repository variable.
_RAY_ADDRESS = (
    "A running Ray cluster instead of train.ray.cluster (KubeRay, or an autoscaler",
    "that adds GPU nodes): its Jobs API address from a repository variable, and",
    "train.ray.cluster removed from mlci.yaml (docs/gpu.md#ray):",
    f"RAY_ADDRESS: ${{{{ vars.{RAY_ADDRESS_VARIABLE} }}}}",
)


def secrets_of(s: WorkflowSettings, *, pull_request: bool) -> tuple[Secret, ...]:
    """The secrets of the mlci step: read-only ones for pull requests, the writer's for main
    (the GCP key, written to a file by its own step, not included)."""
    if pull_request:
        return DVC_READ_SECRETS[s.dvc_remote] + (MLFLOW_READ_SECRETS if s.registry_server else ())
    return DVC_SECRETS[s.dvc_remote] + (MLFLOW_SECRETS if s.registry_server else ())


def secret_names(s: WorkflowSettings, *, pull_request: bool) -> list[str]:
    """The names of every secret a job reads, the GCP key included."""
    names = [secret.secret for secret in secrets_of(s, pull_request=pull_request)]
    if s.dvc_remote == "gs":
        names.append(GCP_READ_KEY_SECRET if pull_request else GCP_KEY_SECRET)
    if s.dvc_remote == "ssh":
        names.append(SSH_READ_KEY_SECRET if pull_request else SSH_KEY_SECRET)
    if s.dvc_remote == "http":
        names += [x.secret for x in (HTTP_READ_SECRETS if pull_request else HTTP_SECRETS)]
    return names


def filled_from(variables: Iterable[str], *, pull_request: bool) -> list[str]:
    """The secrets that fill these variables of the mlci step in the generated GitHub jobs,
    a pull request's or main's (a variable that no secret fills keeps its own name)."""
    dvc = DVC_READ_SECRETS if pull_request else DVC_SECRETS
    secrets = (*(MLFLOW_READ_SECRETS if pull_request else MLFLOW_SECRETS), *chain(*dvc.values()))
    key = GCP_READ_KEY_SECRET if pull_request else GCP_KEY_SECRET
    table = {secret.env: secret.secret for secret in secrets}
    table["GOOGLE_APPLICATION_CREDENTIALS"] = key
    return [table.get(variable, variable) for variable in variables]


def secrets_source(variables: tuple[str, ...], env: Mapping[str, str]) -> str:
    """Where the job that `mlci init` writes gets these variables, for a fix: read-only
    secrets in a pull request's job, the promoting environment's (GitLab: protected
    variables) in main's. Empty outside GitHub Actions and GitLab CI."""
    if env.get("GITHUB_ACTIONS") == "true":
        pull_request = env.get("GITHUB_EVENT_NAME", "").startswith("pull_request")
        names = " and ".join(filled_from(variables, pull_request=pull_request))
        if pull_request:
            return (
                f"; the pull-request job of `mlci init` fills them from the repository "
                f"secrets {names}, read-only credentials (docs/security.md)"
            )
        return (
            f"; the main job of `mlci init` fills them from the secrets {names} of the "
            f"environment {PROMOTE_ENVIRONMENT} (docs/security.md)"
        )
    if env.get("GITLAB_CI") == "true":
        if env.get("CI_PIPELINE_SOURCE") == "merge_request_event":
            names = " and ".join(filled_from(variables, pull_request=True))
            return f"; the merge-request job of `mlci init` reads the CI/CD variables {names}"
        names = " and ".join(variables)
        return f"; in CI: the protected CI/CD variables {names} (docs/security.md)"
    return "; in CI: from secrets (`mlci init` writes which, docs/security.md)"


def uses_environment(s: WorkflowSettings) -> bool:
    """Whether the main job takes its secrets from the PROMOTE_ENVIRONMENT."""
    return bool(secret_names(s, pull_request=False))


def _run_step(s: WorkflowSettings, *, pull_request: bool) -> list[str]:
    name, command = _run_command(pull_request)
    return [
        _step(name),
        # exec: a cancelled job's SIGINT/SIGTERM goes to the step's shell, which would not
        # pass it on; mlci itself must get it to stop the training and write the report.
        f"        run: exec {command}",
        *_step_env(s, pull_request=pull_request),
    ]


def _run_command(pull_request: bool) -> tuple[str, str]:
    if pull_request:
        return "Train, evaluate and gate (a pull request never promotes)", "mlci run --no-promote"
    return "Train, evaluate, gate and promote a passing model", "mlci run"


def _action_step(s: WorkflowSettings, *, pull_request: bool) -> list[str]:
    name, command = _run_command(pull_request)
    version = f"  # {s.action_version}" if s.action_version else ""
    lines = [
        _step(name),
        f"        uses: {s.action}{version}",
        "        with:",
        f"          python-version: {_scalar(s.python_version)}",
        f"          extras: {_scalar(','.join(s.extras))}",
        f"          args: {_scalar(command.removeprefix('mlci '))}",
    ]
    packages = (*s.packages, *([s.install_project] if s.install_project else []))
    if packages:
        lines += [f"          packages: {_scalar(' '.join(packages))}"]
    build = torch_build(s)
    if build is not None:
        lines += [f"          torch: {build}  # installed before mlci, from torch's own index"]
    if s.requirements:
        lines += [f"          requirements: {_scalar(' '.join(s.requirements))}"]
    if s.project_dir:
        lines += [f"          working-directory: {_scalar(s.project_dir)}"]
    return lines + _step_env(s, pull_request=pull_request)


def _report_workflow(s: WorkflowSettings) -> str:
    lines = [
        *_header(s, "Post the report of pull-request runs, forks included (--fork-safe)."),
        "#",
        f'# The "{WORKFLOW_NAME}" workflow evaluates pull requests with a read-only token',
        "# (and, from forks, no secrets) and uploads the report as an artifact. This runs",
        "# afterwards with the right to comment. It never checks out or runs the pull",
        "# request's code: mlci comes from a pinned source (see the install step), and",
        "# `mlci publish` reads the artifact as untrusted data (bounded, its metrics only),",
        "# judges them again with the default branch's mlci.yaml and baseline, and posts",
        "# only if the pull request it names is at the commit the pipeline evaluated.",
        "name: ML report",
        "",
        "on:",
        "  # zizmor flags every workflow_run trigger as dangerous-triggers. This one is the",
        "  # pattern GitHub documents for commenting on fork pull requests: nothing from the",
        "  # pull request is executed, interpolated into a script, or written to GITHUB_ENV.",
        "  workflow_run:  # zizmor: ignore[dangerous-triggers]",
        f"    workflows: [{WORKFLOW_NAME}]",
        "    types: [completed]",
        "",
        "permissions: {}",
        "",
        "# One report per evaluated commit: a re-run replaces the one still posting.",
        "concurrency:",
        "  group: ${{ github.workflow }}-${{ github.event.workflow_run.head_sha }}",
        "  cancel-in-progress: true",
        "",
        "jobs:",
        "  publish:",
        "    name: Post the report on the pull request",
        "    if: >-",
        "      github.event.workflow_run.event == 'pull_request' &&",
        "      github.event.workflow_run.conclusion != 'cancelled'",
        "    runs-on: ubuntu-latest",
        "    timeout-minutes: 10",
        "    permissions:",
        "      actions: read  # download the pipeline run's artifact",
        "      contents: read  # check out the default branch: the rules that judge",
        "      pull-requests: write  # post the report as a comment",
        "      statuses: write  # set the commit status",
        "    steps:",
        _step("Download the report (untrusted: the pull request's code wrote it)"),
        f"        uses: {pin('actions/download-artifact')}",
        "        with:",
        f"          name: {ARTIFACT}",
        "          path: ${{ runner.temp }}/report",
        "          run-id: ${{ github.event.workflow_run.id }}",
        "          github-token: ${{ github.token }}",
        _step("Check out the default branch (its mlci.yaml judges; never the pull request's)"),
        f"        uses: {pin('actions/checkout')}",
        "        with:",
        "          persist-credentials: false",
        _step("Set up Python"),
        f"        uses: {pin('actions/setup-python')}",
        "        with:",
        f"          python-version: {_scalar(s.python_version)}",
        *_pinned_install(s.source),
        _step("Post the report"),
        '        run: mlci publish --from "$REPORT"',
        *([f"        working-directory: {_scalar(s.project_dir)}"] if s.project_dir else []),
        "        env:",
        "          GITHUB_TOKEN: ${{ github.token }}",
        "          REPORT: ${{ runner.temp }}/report",
    ]
    return "\n".join(lines) + "\n"


def _pinned_install(source: MlciSource) -> list[str]:
    """mlci for the job that may write to the pull request: the exact version from the
    index, the action's or the git URL's commit, or the committed wheel checked against
    the sha256 it had when `mlci init` ran. Publishing needs no extra."""
    if source.kind != "path":
        why = {
            "index": f"the exact version {source.version}",
            "action": "the action's commit",
            "git": "a pinned commit",
        }[source.kind]
        return [
            _step(f"Install mlci ({why})"),
            f"        run: python -m pip install {source.requirement((), top='')}",
        ]
    return [
        _step("Install mlci from the committed wheel, checked against its sha256"),
        "        run: |",
        f'          echo "{source.sha256}  {source.location}" | sha256sum --check --strict',
        f"          python -m pip install {source.requirement((), top='GITHUB_WORKSPACE')}",
    ]


def actionlint_config(settings: WorkflowSettings) -> str | None:
    """`.github/actionlint.yaml` naming the custom runner labels, so actionlint knows them."""
    custom = [label for label in settings.runs_on if label not in _GITHUB_LABELS]
    if not custom:
        return None
    listed = "\n".join(f"    - {_scalar(label)}" for label in custom)
    return (
        "# Written by `mlci init`: the runner labels of .github/workflows/ml-pipeline.yml,\n"
        "# so that actionlint knows them.\n"
        f"self-hosted-runner:\n  labels:\n{listed}\n"
    )


_GITHUB_LABELS = frozenset({"ubuntu-latest", "ubuntu-24.04", "ubuntu-22.04", "self-hosted"})


# -- GitLab CI -------------------------------------------------------------------------------


def gitlab_ci(s: WorkflowSettings) -> str:
    branches = s.promote_on
    main_rule = " || ".join(f'$CI_COMMIT_BRANCH == "{b}"' for b in branches)
    lines = [
        *_header(
            s,
            "Train, evaluate and gate every merge request; promote passing models on "
            f"{', '.join(branches)}.",
        ),
        "#",
        "# Set these CI/CD variables (Settings > CI/CD > Variables, masked):",
        "#   GITLAB_TOKEN: a project access token with the api scope (CI_JOB_TOKEN cannot",
        "#     post merge-request notes)",
        *_gitlab_variables(s),
        *_gitlab_cloud_variables(s),
        "",
        "workflow:",
        "  rules:",
        '    - if: $CI_PIPELINE_SOURCE == "merge_request_event"',
        f'    - if: $CI_PIPELINE_SOURCE == "push" && ({main_rule})',
        "  auto_cancel:",
        "    on_new_commit: interruptible  # a new push cancels the superseded pipeline",
        "",
        "variables:",
        '  GIT_DEPTH: "0"  # the whole history: the git baseline needs it',
        '  PIP_CACHE_DIR: "$CI_PROJECT_DIR/.cache/pip"',
        "",
        ".mlci:",
        f"  image: python:{s.python_version}",
        f"  timeout: {s.job_timeout_minutes}m  # {s.timeout_comment()}",
    ]
    if s.runs_on != ("ubuntu-latest",):
        tags = ", ".join(_scalar(t) for t in s.runs_on if t != "self-hosted")
        lines += [f"  tags: [{tags}]  # a runner with a GPU"]
    lines += _gitlab_cloud_login(s)
    lines += [
        "  cache:",
        "    key: pip",
        "    paths: [.cache/pip]",
        "  before_script:",
    ]
    if s.project_dir:
        lines += [f"    - {_item('cd ' + _shell_word(s.project_dir))}"]
    if s.gpu:
        lines += ["    - nvidia-smi  # fails at once on a runner without a GPU"]
    lines += [f"    - {_item(line.split('  # ')[0])}" for line in _torch_install(s)]
    lines += [f"    - {_item(_install_line(s, top='CI_PROJECT_DIR'))}"]
    if _project_requirements(s):
        lines += [f"    - {_item(_project_requirements(s))}"]
    login = SSH_LOGIN if s.dvc_remote == "ssh" else HTTP_LOGIN if s.dvc_remote == "http" else ()
    lines += [f"    - {_item(line)}" for line in login]
    if s.engine is not None:
        lines += [f"    - {_item(GITLAB_TOKEN_FILE_LINE)}"]
    lines += [
        "  artifacts:",
        "    when: always  # the report, also when a step failed",
        "    paths:",
        f"      - {_scalar(_project_path(s, '.mlci/out/'))}",
        "    expire_in: 30 days",
        "",
        "merge-request:",
        "  extends: .mlci",
        "  rules:",
        '    - if: $CI_PIPELINE_SOURCE == "merge_request_event"',
        "  interruptible: true",
        *_gitlab_read_only(s),
        "  script:",
        "    - mlci run --no-promote  # a merge request never promotes",
        "",
        "main:",
        "  extends: .mlci",
        "  rules:",
        f'    - if: $CI_PIPELINE_SOURCE == "push" && ({main_rule})',
        "  interruptible: false  # never cancelled half-way through a promotion",
        "  script:",
        "    - mlci run",
    ]
    return "\n".join(lines) + "\n"


def _gitlab_variables(s: WorkflowSettings) -> list[str]:
    """The header's list: the main job's write credentials as protected variables (which
    merge-request pipelines of unprotected branches never get), the read-only ones."""
    writers = [f"#   {secret.env}" for secret in secrets_of(s, pull_request=False)]
    readers = [f"#   {secret.secret}" for secret in secrets_of(s, pull_request=True)]
    if s.dvc_remote == "gs":
        writers.append("#   GOOGLE_APPLICATION_CREDENTIALS: of type File, holding the key")
        readers.append(f"#   {GCP_READ_KEY_SECRET}: of type File, holding a read-only key")
    writers += [f"#   {env}" for env, _ in _gitlab_login(s)]
    readers += [f"#   {secret}" for _, secret in _gitlab_login(s)]
    if s.dvc_remote == "ssh":
        readers.append(
            f"#   {SSH_KNOWN_HOSTS_VARIABLE}: not protected, the server's line of known_hosts"
        )
    if not writers:
        return []
    return [
        "# For the main job, protected (only protected branches get them; the write access):",
        *writers,
        "# For merge requests, not protected: read-only credentials (docs/security.md):",
        *readers,
    ]


# GitLab's OIDC token for AWS, in the file boto3 reads (AssumeRoleWithWebIdentity, as the
# engines' AWS clients do by themselves with AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE).
GITLAB_TOKEN_FILE_LINE = (
    '(umask 077 && printf \'%s\' "$MLCI_AWS_ID_TOKEN" > "$AWS_WEB_IDENTITY_TOKEN_FILE")'
)


def _gitlab_cloud_variables(s: WorkflowSettings) -> list[str]:
    if s.engine is None:
        return []
    role, region = CLOUD_ROLE_VARIABLES
    return [
        f"# For the training's cloud GPU ({_ENGINE_NAMES[s.engine]}; docs/gpu.md), not secret:",
        f"#   {role}: the ARN of an AWS role that trusts this GitLab's OIDC provider for this",
        "#     project only (a fork's merge request is then refused, and mlci launches",
        "#     nothing for it) and may start and terminate EC2 instances",
        f"#   {region}: where the GPU quota is, e.g. us-east-1",
        *(
            ["#   (DVC's AWS_* keys, where set, take the role's place: give DVC the role too)"]
            if s.dvc_remote == "s3"
            else []
        ),
        *(
            [
                "#   RAY_ADDRESS, for a running Ray cluster instead of train.ray.cluster: its",
                "#     Jobs API address, e.g. http://HEAD:8265 (then remove train.ray.cluster)",
            ]
            if s.engine == "ray"
            else []
        ),
    ]


def _gitlab_cloud_login(s: WorkflowSettings) -> list[str]:
    if s.engine is None:
        return []
    role, region = CLOUD_ROLE_VARIABLES
    return [
        "  id_tokens:  # the cloud log-in (OIDC, no key) that launches the training's GPU",
        "    MLCI_AWS_ID_TOKEN:",
        "      aud: sts.amazonaws.com",
        "  variables:",
        f"    AWS_ROLE_ARN: ${role}",
        f"    AWS_DEFAULT_REGION: ${region}",
        "    AWS_WEB_IDENTITY_TOKEN_FILE: /tmp/mlci-aws-token",
    ]


def _gitlab_login(s: WorkflowSettings) -> list[tuple[str, str]]:
    """(variable, its read-only variable) of the SSH key or the HTTP credentials."""
    if s.dvc_remote == "ssh":
        return [(SSH_KEY_SECRET, SSH_READ_KEY_SECRET)]
    if s.dvc_remote == "http":
        return [(x.env, y.secret) for x, y in zip(HTTP_SECRETS, HTTP_READ_SECRETS, strict=True)]
    return []


def _gitlab_read_only(s: WorkflowSettings) -> list[str]:
    readers = [(secret.env, secret.secret) for secret in secrets_of(s, pull_request=True)]
    if s.dvc_remote == "gs":
        readers.append(("GOOGLE_APPLICATION_CREDENTIALS", GCP_READ_KEY_SECRET))
    readers += _gitlab_login(s)
    if not readers:
        return []
    return [
        "  # Read-only credentials. A project variable of the same name wins over these: keep",
        "  # the write ones protected, so that a merge request's pipeline never gets them.",
        "  variables:",
        *(f"    {env}: ${secret}" for env, secret in readers),
    ]


# -- quoting ---------------------------------------------------------------------------------

_PLAIN_YAML = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./")
_PLAIN_TEXT = re.compile(r"[A-Za-z._][\w .,()'/+-]*")
_YAML_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null"})


def _scalar(value: str) -> str:
    """A YAML scalar: plain when that reads back as the same text, double-quoted otherwise."""
    plain = _PLAIN_TEXT.fullmatch(value) and not value.endswith(" ")
    if plain and value.lower() not in _YAML_WORDS and value.lower() not in (".inf", ".nan"):
        return value
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def _item(command: str) -> str:
    """A one-line script item: plain when YAML reads it back as this text, else quoted."""
    risky = ": " in command or " #" in command or command.endswith(":")
    if not risky and command[:1] not in "[]{}#&*!|>'\"%@`-?,":
        return command
    return "'" + command.replace("'", "''") + "'"


def _shell_word(value: str) -> str:
    """One shell word; values come from the user's own flags and files, quoted anyway."""
    if value and set(value) <= _PLAIN_YAML | set("=<>~,[]"):
        return f'"{value}"' if set(value) & set("<>~[],") else value
    return "'" + value.replace("'", "'\\''") + "'"
