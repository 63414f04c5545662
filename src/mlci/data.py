"""DVC: pull the data a commit names, explain DVC's failures, record the datasets' hashes,
and tell when `dvc repro` reused its cache instead of training.

DVC runs as a subprocess (`python -m dvc` of this interpreter when it can import dvc, else
`dvc` on PATH) so that mlci never imports it: the remote's configuration and the
datasets' hashes are read from DVC's own files (`.dvc/config`, `*.dvc`, `dvc.lock`).
Every DVC failure becomes an `MlciError` here, with the fix for the remote's kind.
"""

from __future__ import annotations

import configparser
import contextlib
import importlib.util
import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import urlsplit

import yaml

from mlci import git, process
from mlci.console import Console
from mlci.errors import ExternalError, MlciError, UsageError

# -- remotes ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteKind:
    """What a kind of DVC remote needs on a CI runner."""

    scheme: str
    extra: str | None  # pip install 'dvc[EXTRA]'; None: built into dvc
    module: str | None  # the plugin's module, to check before pulling
    secrets: tuple[str, ...]  # the environment variables (CI secrets) the job sets
    how: str  # how else credentials reach DVC, for the message


_KINDS: dict[str, RemoteKind] = {
    "local": RemoteKind(
        "local", None, None, (), "a folder: the CI runner must see the same path (a mount)"
    ),
    "s3": RemoteKind(
        "s3",
        "s3",
        "dvc_s3",
        ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
        "plus AWS_SESSION_TOKEN for temporary keys; or OIDC "
        "(aws-actions/configure-aws-credentials on GitHub Actions) which sets them",
    ),
    "gs": RemoteKind(
        "gs",
        "gs",
        "dvc_gs",
        ("GOOGLE_APPLICATION_CREDENTIALS",),
        "the path of a service-account key file the job writes from a secret; or workload "
        "identity (google-github-actions/auth) which sets it",
    ),
    "azure": RemoteKind(
        "azure",
        "azure",
        "dvc_azure",
        ("AZURE_STORAGE_CONNECTION_STRING",),
        "or AZURE_STORAGE_ACCOUNT with AZURE_STORAGE_KEY, or a service principal: "
        "AZURE_CLIENT_ID, AZURE_CLIENT_SECRET and AZURE_TENANT_ID",
    ),
    "ssh": RemoteKind(
        "ssh",
        "ssh",
        "dvc_ssh",
        (),
        "a private key the job writes to ~/.ssh/ from a secret (e.g. SSH_PRIVATE_KEY), or a "
        "password set with "
        '`dvc remote modify --local REMOTE password "$SSH_PASSWORD"`',
    ),
    "http": RemoteKind(
        "http",
        None,
        None,
        (),
        "user and password set in the job with `dvc remote modify --local REMOTE user ...` "
        "and `... password ...` from secrets (auth: basic)",
    ),
    "webdav": RemoteKind(
        "webdav",
        "webdav",
        "dvc_webdav",
        (),
        "user and password (or token) set with `dvc remote modify --local REMOTE ...` from secrets",
    ),
    "hdfs": RemoteKind("hdfs", "hdfs", "dvc_hdfs", (), "a Kerberos ticket (kinit) on the runner"),
    "webhdfs": RemoteKind(
        "webhdfs", "webhdfs", "dvc_webhdfs", (), "a Kerberos ticket or user and password"
    ),
    "oss": RemoteKind(
        "oss", "oss", "dvc_oss", ("OSS_ACCESS_KEY_ID", "OSS_ACCESS_KEY_SECRET"), "Aliyun keys"
    ),
    "gdrive": RemoteKind(
        "gdrive",
        "gdrive",
        "dvc_gdrive",
        ("GDRIVE_CREDENTIALS_DATA",),
        "a service account's JSON key in the variable",
    ),
}
_SCHEMES = {
    "s3": "s3",
    "gs": "gs",
    "azure": "azure",
    "ssh": "ssh",
    "http": "http",
    "https": "http",
    "webdav": "webdav",
    "webdavs": "webdav",
    "hdfs": "hdfs",
    "webhdfs": "webhdfs",
    "oss": "oss",
    "gdrive": "gdrive",
    "file": "local",
}


@dataclass(frozen=True)
class Remote:
    """A DVC remote as `.dvc/config` (and `.dvc/config.local`) describe it."""

    name: str | None  # None: no remote configured
    url: str | None = None
    options: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold secrets

    @property
    def kind(self) -> RemoteKind:
        scheme = urlsplit(self.url).scheme if self.url and "://" in self.url else "file"
        return _KINDS.get(_SCHEMES.get(scheme, "local"), _KINDS["local"])

    @property
    def shown(self) -> str:
        """`'name' (url)` without any user or password in the URL."""
        return f"'{self.name}' ({redact_url(self.url or '?')})"

    @property
    def bucket(self) -> str | None:
        if not self.url or "://" not in self.url or self.kind.scheme == "local":
            return None
        parts = urlsplit(self.url)
        return parts.netloc.rpartition("@")[2] + parts.path.rstrip("/")


def redact_url(url: str) -> str:
    """The URL without the user and password it may carry."""
    return re.sub(r"(://)[^/@\s]+@", r"\1***@", url)


def find_dvc_root(start: Path) -> Path | None:
    """The folder holding `.dvc/` at `start` or above it, or None: not a DVC project."""
    for folder in (start, *start.parents):
        if (folder / ".dvc").is_dir():
            return folder
        if (folder / ".git").exists():
            return None
    return None


def read_remote(dvc_root: Path, name: str | None = None) -> Remote:
    """The remote `name` (default: core.remote) from `.dvc/config` and `.dvc/config.local`."""
    sections = _read_dvc_config(dvc_root)
    name = name or sections.get("core", {}).get("remote")
    if not name:
        return Remote(None)
    options = sections.get(f'remote "{name}"')
    if options is None:
        configured = [s[8:-1] for s in sections if s.startswith('remote "')]
        listed = ", ".join(configured) or "none"
        raise UsageError(
            f"DVC has no remote named '{name}' (configured: {listed}); fix data.remote in "
            f"mlci.yaml or add it with `dvc remote add {name} URL`"
        )
    return Remote(name, options.get("url"), options)


def _read_dvc_config(dvc_root: Path) -> dict[str, dict[str, str]]:
    merged: dict[str, dict[str, str]] = {}
    for name in ("config", "config.local"):
        path = dvc_root / ".dvc" / name
        if not path.is_file():
            continue
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read_string(path.read_text(encoding="utf-8"))
        except configparser.Error as exc:
            raise UsageError(f"{path}: DVC's config cannot be read ({exc})") from None
        for section in parser.sections():
            key = section.strip()
            if len(key) > 1 and key[0] == key[-1] == "'":
                key = key[1:-1].strip()
            merged.setdefault(key, {}).update(
                {k: v.strip().strip("'\"") for k, v in parser[section].items()}
            )
    return merged


# -- running dvc -----------------------------------------------------------------------


def dvc_command() -> list[str]:
    """How to run dvc: this interpreter's when it has dvc, else `dvc` on PATH."""
    if importlib.util.find_spec("dvc") is not None:
        return [sys.executable, "-m", "dvc"]
    found = shutil.which("dvc")
    if found is None:
        raise UsageError(
            "data.dvc is true but DVC is not installed: pip install 'mlci[dvc]', with the "
            "remote's extra, e.g. pip install 'dvc[s3]'"
        )
    return [found]


@dataclass(frozen=True)
class _Ran:
    returncode: int
    output: str  # stdout and stderr, in the order DVC wrote them


def _run_dvc(
    args: list[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None,
    timeout_s: float | None = None,
    stall_s: float | None = None,
    activity: process.Activity | None = None,
) -> _Ran:
    """Run dvc in its own process group; raises process.Stopped past the limits (None: off)."""
    child_env = {**(env if env is not None else os.environ), "DVC_NO_ANALYTICS": "1"}
    lines: list[bytes] = []
    child = process.start([*dvc_command(), *args], cwd=cwd, env=child_env)
    code = process.watch(
        child, timeout_s=timeout_s, stall_s=stall_s, on_line=lines.append, activity=activity
    )
    return _Ran(code, b"\n".join(lines).decode("utf-8", errors="replace"))


def _stopped(
    stopped: process.Stopped,
    remote: Remote,
    *,
    timeout_s: float | None,
    stall_s: float | None,
    arrived: str,
) -> ExternalError:
    """`dvc pull` stopped by data.timeout_minutes or data.stall_minutes, as an error.

    `arrived`: what had reached the cache by then (`_Progress.arrived`).
    """
    where = _where(remote)
    ran = process.elapsed(stopped.seconds)
    hint = _answer_hint(remote)
    if stopped.stalled and stall_s is not None:
        if remote.kind.scheme == "local":
            cause = "Reading the folder blocks"
        elif arrived.startswith("; no"):
            cause = "The remote accepts the connection but does not answer"
        else:
            cause = "The remote stopped sending"
        return ExternalError(
            f"dvc pull from {where} stalled: no output and no data arriving for "
            f"{process.minutes(stall_s)} (data.stall_minutes), so it was stopped after {ran}"
            f"{arrived}. {cause}: {hint}; or raise data.stall_minutes in mlci.yaml if the "
            f"remote is only slow to start"
        )
    limit = f" (data.timeout_minutes: {timeout_s / 60:g})" if timeout_s else ""
    return ExternalError(
        f"dvc pull from {where} timed out: stopped after {ran}{limit}{arrived}. "
        f"{hint[0].upper()}{hint[1:]}; or raise data.timeout_minutes in mlci.yaml if the "
        f"data is just that large"
    )


def _where(remote: Remote) -> str:
    """The remote as messages name it, with its S3 endpoint when one is configured."""
    if remote.name is None:
        return "the DVC remote"
    endpoint = remote.options.get("endpointurl")
    return remote.shown + (f" at {redact_url(endpoint)}" if endpoint else "")


def _answer_hint(remote: Remote) -> str:
    if remote.kind.scheme == "local":
        return (
            "check that the folder answers on this runner (a hung network mount, NFS or SMB, "
            "blocks every read)"
        )
    endpoint = " and endpointurl" if remote.options.get("endpointurl") else ""
    return (
        f"check that it answers from this runner (its url{endpoint} in .dvc/config, the "
        f"network, a proxy or firewall that drops the traffic)"
    )


def _plugin_missing(remote: Remote) -> MlciError | None:
    """Before pulling: the remote's plugin is not importable by the dvc that will run."""
    kind = remote.kind
    if kind.module is None or importlib.util.find_spec("dvc") is None:
        return None
    if importlib.util.find_spec(kind.module) is not None:
        return None
    return UsageError(_plugin_message(remote, kind.module.replace("_", "-")))


def _plugin_message(remote: Remote, package: str) -> str:
    extra = remote.kind.extra or remote.kind.scheme
    return (
        f"the DVC remote {remote.shown} needs {package}, which is not installed: "
        f"pip install 'dvc[{extra}]' in the CI job (or add it to the project's requirements)"
    )


# -- pulling ---------------------------------------------------------------------------


@dataclass(frozen=True)
class PullResult:
    """What `dvc pull` did."""

    remote: Remote
    fetched: int = 0
    added: int = 0
    modified: int = 0
    deleted: int = 0
    bytes: int = 0  # bytes that arrived in DVC's cache
    seconds: float = 0.0
    run_cache: bool = False
    missing_outputs: tuple[str, ...] = ()  # stage outputs not on the remote (training makes them)

    def summary(self) -> str:
        parts = [f"{self.fetched} file{'s' if self.fetched != 1 else ''} fetched"]
        if self.fetched:
            parts[0] += f" ({human_bytes(self.bytes)})"
        for count, what in ((self.added, "added"), (self.modified, "modified")):
            if count:
                parts.append(f"{count} {what}")
        if self.deleted:
            parts.append(f"{self.deleted} deleted")
        source = self.remote.shown if self.remote.name else "the default remote"
        cache = " with the run cache" if self.run_cache else ""
        if not (self.fetched or self.added or self.modified or self.deleted):
            return f"up to date with {source}{cache} ({self.seconds:.1f} s)"
        return f"{', '.join(parts)} from {source}{cache} in {self.seconds:.1f} s"

    def to_json(self) -> dict[str, object]:
        return {
            "remote": None
            if self.remote.name is None
            else {
                "name": self.remote.name,
                "url": redact_url(self.remote.url or ""),
                "kind": self.remote.kind.scheme,
            },
            "fetched": self.fetched,
            "added": self.added,
            "modified": self.modified,
            "deleted": self.deleted,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "run_cache": self.run_cache,
            "missing_outputs": list(self.missing_outputs),
        }


def pull(
    root: Path,
    *,
    remote: str | None = None,
    jobs: int | None = None,
    run_cache: bool = False,
    targets: Iterable[str] = (),
    console: Console | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
    stall_s: float | None = None,
) -> PullResult:
    """`dvc pull` in the DVC project holding `root`, with progress; raises MlciError.

    After `timeout_s`, or `stall_s` without output or data arriving in the cache, DVC and
    its children are stopped (ExternalError, exit 3); None turns a limit off.
    """
    console = console or Console()
    dvc_root = find_dvc_root(root)
    if dvc_root is None:
        raise UsageError(
            f"data.dvc is true but {root} is not in a DVC project (no .dvc/ folder): run "
            f"`dvc init`, or set data.dvc: false in mlci.yaml"
        )
    configured = read_remote(dvc_root, remote)
    missing = _plugin_missing(configured) if configured.name else None
    if missing is not None:
        raise missing
    args = ["pull"]
    args += ["--remote", remote] if remote else []
    args += ["--jobs", str(jobs)] if jobs else []
    args += ["--run-cache"] if run_cache else []
    args += list(targets)
    expected = _expected(dvc_root)
    # Data arriving in the cache is progress too: DVC prints nothing while it downloads.
    activity = process.Activity()
    progress = _Progress(_cache_dir(dvc_root), expected, console, on_change=activity.touch)
    started = time.monotonic()
    stopped: process.Stopped | None = None
    with progress.running():
        try:
            completed = _run_dvc(
                args, cwd=root, env=env, timeout_s=timeout_s, stall_s=stall_s, activity=activity
            )
        except process.Stopped as exc:
            stopped = exc
    if stopped is not None:
        raise _stopped(
            stopped, configured, timeout_s=timeout_s, stall_s=stall_s, arrived=progress.arrived()
        )
    seconds = time.monotonic() - started
    output = completed.output
    missing_outputs: tuple[str, ...] = ()
    if completed.returncode != 0:
        missing_data, missing_outputs = _missing_split(output, root, dvc_root)
        if missing_data or not missing_outputs:
            raise diagnose(output, completed.returncode, configured, env=env, missing=missing_data)
        console.warn(
            f"not on the remote: {', '.join(missing_outputs)}, output(s) of pipeline stages "
            f"that training makes again; the datasets were pulled"
        )
    counts = _summary_counts(output)
    return PullResult(
        remote=configured,
        fetched=counts.get("fetched", 0),
        added=counts.get("added", 0),
        modified=counts.get("modified", 0),
        deleted=counts.get("deleted", 0),
        bytes=progress.bytes,
        seconds=seconds,
        run_cache=run_cache,
        missing_outputs=missing_outputs,
    )


def _missing_split(output: str, root: Path, dvc_root: Path) -> tuple[list[str], tuple[str, ...]]:
    """The datasets and the stage outputs that the pull could not check out.

    A stage that never ran (no dvc.lock entry), or whose outputs were not pushed, is
    made again by training (`dvc repro`): that alone must not stop the run. A missing
    dataset must. Both are empty when the pull failed for another reason.
    """
    errors = _dvc_errors(output)
    if not errors or not all("Checkout failed" in line for line in errors):
        return [], ()
    wanted = {os.path.relpath(dvc_root / d.path, root) for d in datasets(dvc_root)}
    targets = _missing_targets(output)
    missing = [target for target in targets if target.rstrip("/") in wanted]
    return missing, tuple(target for target in targets if target not in missing)


def _summary_counts(output: str) -> dict[str, int]:
    return {
        what: int(number)
        for number, what in re.findall(r"(\d+) files? (fetched|added|modified|deleted)", output)
    }


def human_bytes(count: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    raise AssertionError("unreachable")


def _cache_dir(dvc_root: Path) -> Path:
    configured = _read_dvc_config(dvc_root).get("cache", {}).get("dir")
    if not configured:
        return dvc_root / ".dvc" / "cache"
    path = Path(configured).expanduser()
    return path if path.is_absolute() else (dvc_root / ".dvc" / path).resolve()


@dataclass(frozen=True)
class _Expected:
    files: int
    bytes: int


def _expected(dvc_root: Path) -> _Expected:
    """What the pull will bring at most: the tracked data not yet in the cache."""
    cache = _cache_dir(dvc_root) / "files" / "md5"
    files = size = 0
    for item in datasets(dvc_root, everything=True):
        if len(item.hash) > 2 and (cache / item.hash[:2] / item.hash[2:]).exists():
            continue
        files += item.files or 1
        size += item.size or 0
    return _Expected(files, size)


class _Progress:
    """Files and bytes arriving in DVC's cache while `dvc pull` runs.

    DVC draws its bars only on a terminal and only for itself; watching the cache shows
    progress in CI logs too, whatever the remote.
    """

    def __init__(
        self,
        cache: Path,
        expected: _Expected,
        console: Console,
        *,
        interval: float = 1.0,
        every: int | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.cache = cache / "files" / "md5"
        self.on_change = on_change  # called when files or bytes arrived since the last look
        # On a terminal the line is redrawn each second; in a CI log a plain line every
        # 10 seconds, so a slow pull shows it is moving without flooding the log.
        self.interval = interval
        self.every = every if every is not None else (1 if self._tty_of(console) else 10)
        self.expected = expected
        self.console = console
        self.files = self.bytes = 0
        self._stop = threading.Event()
        self._start = (0, 0)

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        self._start = self._count()
        thread = threading.Thread(target=self._watch, daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._stop.set()
            thread.join(timeout=5)
            self._update()
            if self._tty:
                self.console.stream.write("\r\033[K")
                self.console.stream.flush()

    @staticmethod
    def _tty_of(console: Console) -> bool:
        return bool(getattr(console.stream, "isatty", lambda: False)())

    @property
    def _tty(self) -> bool:
        return self._tty_of(self.console)

    def _count(self) -> tuple[int, int]:
        files = size = 0
        if not self.cache.is_dir():
            return 0, 0
        for folder in os.scandir(self.cache):
            if not folder.is_dir():
                continue
            for entry in os.scandir(folder.path):
                with contextlib.suppress(OSError):
                    size += entry.stat().st_size
                    files += 1
        return files, size

    def _update(self) -> None:
        files, size = self._count()
        seen = (self.files, self.bytes)
        self.files = max(0, files - self._start[0])
        self.bytes = max(0, size - self._start[1])
        if self.on_change is not None and (self.files, self.bytes) != seen:
            self.on_change()

    def arrived(self) -> str:
        """What had arrived, for a message about a pull that was stopped."""
        if not self.bytes:
            return "; no data had arrived"
        return f", when {human_bytes(self.bytes)} had arrived"

    def _line(self) -> str:
        total_files = f" of ~{self.expected.files}" if self.expected.files else ""
        total_bytes = f" of ~{human_bytes(self.expected.bytes)}" if self.expected.bytes else ""
        return f"pulling: {self.files}{total_files} files, {human_bytes(self.bytes)}{total_bytes}"

    def _watch(self) -> None:
        ticks = 0
        while not self._stop.wait(self.interval):
            ticks += 1
            self._update()
            if self.console.quiet or ticks % self.every:
                continue
            if self._tty:
                self.console.stream.write("\r\033[K" + self.console.paint("mlci", "step"))
                self.console.stream.write(f" data: {self._line()}")
                self.console.stream.flush()
            else:
                self.console.step("data", self._line())


# -- diagnosing ------------------------------------------------------------------------

_SECRETISH = re.compile(r"SECRET|TOKEN|PASSWORD|PASSWD|_KEY$|KEY_ID|CONNECTION_STRING", re.I)


def _redact(text: str, env: Mapping[str, str] | None) -> str:
    """Text from DVC without URL passwords or the values of secret-looking variables."""
    text = redact_url(text)
    for name, value in (env if env is not None else os.environ).items():
        if _SECRETISH.search(name) and len(value) >= 6:
            text = text.replace(value, "***")
    return text


def _dvc_errors(output: str) -> list[str]:
    return [line[7:].strip() for line in output.splitlines() if line.startswith("ERROR: ")]


def _secrets_hint(remote: Remote) -> str:
    kind = remote.kind
    if kind.secrets:
        names = " and ".join(kind.secrets)
        return f"set {names} in the CI job from its secrets ({kind.how})"
    return f"give the job its credentials: {kind.how}"


def _missing_targets(output: str) -> list[str]:
    """The paths of "Checkout failed for following targets:" and the missing objects."""
    lines = output.splitlines()
    found: list[str] = []
    for index, line in enumerate(lines):
        if "Checkout failed for following targets:" in line:
            for target in lines[index + 1 :]:
                if target.startswith("Is your cache up to date?") or not target.strip():
                    break
                found.append(target.strip())
    for match in re.finditer(r"^name: (.+?), md5: ([0-9a-f]+)", output, flags=re.M):
        if match.group(1) not in found:
            found.append(match.group(1))
    return found


def diagnose(
    output: str,
    exit_code: int,
    remote: Remote,
    *,
    env: Mapping[str, str] | None = None,
    missing: list[str] | None = None,
) -> MlciError:
    """DVC's failure as an error that names the fix, for the remote's kind.

    `missing`: the datasets among the files DVC could not check out, named first.
    """
    errors = _dvc_errors(output)
    lines = [line for line in output.splitlines() if line.strip()]
    quoted = _redact(errors[0] if errors else (lines[-1] if lines else ""), env)
    quoted = quoted or f"dvc exited with code {exit_code}"
    where = remote.shown if remote.name else "the DVC remote"
    said = "\n".join(errors) or output  # DVC's error lines: file names cannot match below
    plugin = re.search(r"requires '(dvc-[\w-]+)' to be installed", output)
    if plugin:
        return UsageError(_plugin_message(remote, plugin.group(1)))
    if "unknown Git revision" in output or "unknown revision" in output:
        return UsageError(
            f"DVC cannot find a git revision ({quoted}): this is probably a shallow clone; "
            f"fetch the history, e.g. `fetch-depth: 0` on actions/checkout (GitLab: "
            f"GIT_DEPTH: 0), or `git fetch --unshallow`"
        )
    if "unsaved files without confirmation" in output:
        return UsageError(
            "dvc pull would overwrite files in the work tree that DVC has not saved (a "
            "stage output made outside `dvc repro`, or an edited dataset): save them with "
            "`dvc commit` or `dvc add`, or delete them; in CI, clone afresh"
        )
    if "No remote provided and no default remote set" in output:
        return UsageError(
            "DVC has no remote to pull from: add one with `dvc remote add -d NAME URL` and "
            "commit .dvc/config, or name one in data.remote of mlci.yaml"
        )
    if re.search(r"Unable to locate credentials|Unable to find AWS credentials", said) or (
        re.search(r"DefaultCredentialsError|default credentials were not found", said)
        or re.search(r"No credential|DefaultAzureCredential failed", said)
    ):
        return ExternalError(
            f"DVC found no credentials for {where}: {_secrets_hint(remote)} ({quoted})"
        )
    if re.search(r"NoSuchBucket|bucket does not exist|ContainerNotFound|NoSuchContainer", said):
        bucket = remote.bucket or "the bucket"
        return ExternalError(
            f"the bucket of {where} does not exist ({bucket}): fix the remote's URL in "
            f".dvc/config (`dvc remote modify {remote.name or 'NAME'} url ...`), or check its "
            f"region or endpoint ({quoted})"
        )
    if re.search(r"\b403\b|Forbidden|AccessDenied|Access Denied|AuthorizationFailure", said):
        return ExternalError(
            f"{where} refused the credentials (403 Forbidden). DVC cannot tell whether the "
            f"key is wrong, the secret is wrong, or the key lacks permission: check "
            f"{' and '.join(remote.kind.secrets) or 'the credentials'} in the CI secrets, and "
            f"that the key may read {remote.bucket or 'the remote'} (S3: s3:GetObject and "
            f"s3:ListBucket) ({quoted})"
        )
    if re.search(r"Permission denied \(publickey|Authentication failed|AuthenticationErr", said):
        return ExternalError(f"{where} refused the login: {_secrets_hint(remote)} ({quoted})")
    if "Checkout failed for following targets" in output or "Missing cache files" in output:
        targets = missing or _missing_targets(output)
        more = f" and {len(targets) - 10} more" if len(targets) > 10 else ""
        listed = ", ".join(targets[:10]) + more
        url = (
            f" (or the remote's URL is wrong: is {remote.bucket} the right bucket and path?)"
            if remote.bucket
            else ""
        )
        return ExternalError(
            f"{where} lacks the data of {listed or 'some outputs'}: someone committed the "
            f".dvc/dvc.lock change without `dvc push`{url}. Run `dvc push` where the data "
            f"was added or trained (or `dvc repro` and push), then run again"
        )
    if re.search(r"Could not connect|Connection refused|Name or service not known", said):
        return ExternalError(
            f"cannot reach {where}: check the URL or endpoint in .dvc/config and the runner's "
            f"network ({quoted})"
        )
    return ExternalError(f"dvc pull from {where} failed (exit {exit_code}): {quoted}")


# -- lineage: the datasets' hashes -----------------------------------------------------


@dataclass(frozen=True)
class Dataset:
    """A path DVC tracks as data, with the hash a commit names for it."""

    path: str  # from the DVC project's root, with /
    hash: str  # DVC's md5; "<md5>.dir" for a folder
    size: int | None = None
    files: int | None = None  # a folder's number of files
    source: str = ""  # the .dvc file or "dvc.lock (stage NAME)"

    @property
    def short(self) -> str:
        return short_hash(self.hash)


def short_hash(value: str) -> str:
    return value[:8] + ("/" if value.endswith(".dir") else "")


def datasets(
    root: Path, *, commit: str | None = None, everything: bool = False
) -> tuple[Dataset, ...]:
    """The datasets of the DVC project holding `root`, in the work tree or at `commit`.

    A dataset is an output of a `.dvc` file (`dvc add`, `dvc import`) or an output of a
    `dvc.lock` stage that another stage depends on (prepared data). `everything` adds
    the other stage outputs (models, metrics): what a pull may fetch.
    """
    dvc_root = find_dvc_root(root)
    if dvc_root is None:
        return ()
    if commit is None:
        names = _work_tree_files(dvc_root)
        read: Callable[[str], bytes | None] = lambda name: _read_disk(dvc_root / name)  # noqa: E731
    else:
        names = git.list_files(dvc_root, commit=commit)
        prefix = git.prefix(dvc_root)
        read = lambda name: git.read_file_at(dvc_root, commit, prefix + name)  # noqa: E731
    wanted = [n for n in names if n.endswith(".dvc") or PurePosixPath(n).name == "dvc.lock"]
    return _collect(wanted, read, everything=everything)


def _work_tree_files(dvc_root: Path) -> list[str]:
    """The work tree's files by git (which skips ignored folders), else by walking it."""
    try:
        return git.list_files(dvc_root)
    except MlciError:  # git missing, or a DVC project outside git (`dvc init --no-scm`)
        found = []
        for folder, subfolders, files in os.walk(dvc_root):
            subfolders[:] = [d for d in subfolders if not d.startswith(".")]
            relative = Path(folder).relative_to(dvc_root)
            found += [(relative / name).as_posix() for name in files]
        return found


def _read_disk(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except (FileNotFoundError, IsADirectoryError):
        return None


def _load(name: str, content: bytes | None) -> dict[str, Any]:
    if content is None:
        return {}
    try:
        data = yaml.safe_load(content.decode("utf-8", errors="replace"))
    except yaml.YAMLError as exc:
        raise UsageError(f"{name}: not valid YAML ({exc}); fix it or run `dvc commit`") from None
    return data if isinstance(data, dict) else {}


def _join(folder: str, path: object) -> str | None:
    if not isinstance(path, str) or "://" in path:
        return None  # an external output (s3://...) is no file of this project
    joined = PurePosixPath(folder) / path if folder not in ("", ".") else PurePosixPath(path)
    parts: list[str] = []
    for part in joined.parts:
        if part == "..":
            if parts:
                parts.pop()
        elif part != ".":
            parts.append(part)
    return "/".join(parts)


def _entry(folder: str, item: object, source: str) -> Dataset | None:
    if not isinstance(item, dict):
        return None
    path = _join(folder, item.get("path"))
    digest = item.get("md5") or item.get("etag") or item.get("checksum")
    if path is None or not isinstance(digest, str):
        return None
    size, files = item.get("size"), item.get("nfiles")
    return Dataset(
        path=path,
        hash=digest,
        size=size if isinstance(size, int) else None,
        files=files if isinstance(files, int) else None,
        source=source,
    )


def _collect(
    names: list[str], read: Callable[[str], bytes | None], *, everything: bool
) -> tuple[Dataset, ...]:
    found: dict[str, Dataset] = {}
    stage_outs: dict[str, Dataset] = {}
    stage_deps: set[str] = set()
    for name in sorted(names):
        folder = str(PurePosixPath(name).parent)
        data = _load(name, read(name))
        if name.endswith(".dvc"):
            for item in data.get("outs") or []:
                entry = _entry(folder, item, name)
                if entry is not None:
                    found.setdefault(entry.path, entry)
            continue
        stages = data.get("stages")
        for stage, lock in stages.items() if isinstance(stages, dict) else ():
            if not isinstance(lock, dict):
                continue
            source = f"{name} (stage {stage})"
            for item in lock.get("outs") or []:
                entry = _entry(folder, item, source)
                if entry is not None:
                    stage_outs.setdefault(entry.path, entry)
            for item in lock.get("deps") or []:
                path = _join(folder, item.get("path") if isinstance(item, dict) else None)
                if path is not None:
                    stage_deps.add(path)
    for path, entry in stage_outs.items():
        if everything or path in stage_deps:
            found.setdefault(path, entry)
    return tuple(found[path] for path in sorted(found))


def lineage_key(path: str) -> str:
    """A dataset's path as a registry tag may name it (MLflow's allowed characters)."""
    return re.sub(r"[^\w./\- :]", "_", path)


def lineage(root: Path, *, commit: str | None = None) -> dict[str, str]:
    """Dataset path -> hash, for the report and the registry ({} without DVC)."""
    return {lineage_key(d.path): d.hash for d in datasets(root, commit=commit)}


# -- reuse: did `dvc repro` train? -----------------------------------------------------


@dataclass(frozen=True)
class ReproOutcome:
    """What `dvc repro` did with each pipeline stage, read from its output."""

    ran: tuple[str, ...] = ()
    unchanged: tuple[str, ...] = ()  # "Stage 'x' didn't change, skipping"
    restored: tuple[str, ...] = ()  # from the run cache, or pulled (`repro --pull`)

    @property
    def reused(self) -> bool:
        return not self.ran and bool(self.unchanged or self.restored)

    def describe(self) -> str | None:
        """ "training reused from cache ..." when no stage ran; None otherwise."""
        if not self.reused:
            return None
        parts = []
        if self.restored:
            parts.append(f"{_stages(self.restored)} restored from the run cache")
        if self.unchanged:
            parts.append(f"{_stages(self.unchanged)} unchanged")
        return f"training reused from cache: {'; '.join(parts)}"


def _stages(names: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{name}'" for name in names)
    return f"stage{'s' if len(names) > 1 else ''} {quoted}"


_REPRO_LINES = (
    (re.compile(r"^Running stage '(.+)':"), "ran"),
    (re.compile(r"^Stage '(.+)' didn't change, skipping"), "unchanged"),
    (re.compile(r"^Stage '(.+)' is cached - skipping run"), "restored"),
    (re.compile(r"^Pulling data for stage: '(.+)'"), "restored"),
)


def is_repro(command: str | tuple[str, ...]) -> bool:
    """Whether the training command is (or runs) `dvc repro`."""
    text = command if isinstance(command, str) else " ".join(command)
    return re.search(r"\bdvc\s+repro\b", text) is not None


def read_repro_output(lines: Iterable[str]) -> ReproOutcome:
    seen: dict[str, list[str]] = {"ran": [], "unchanged": [], "restored": []}
    for line in lines:
        for pattern, what in _REPRO_LINES:
            match = pattern.match(line.strip())
            if match and not match.group(1).endswith(".dvc") and match.group(1) not in seen[what]:
                seen[what].append(match.group(1))
    restored = tuple(s for s in seen["restored"] if s not in seen["ran"])
    return ReproOutcome(tuple(seen["ran"]), tuple(seen["unchanged"]), restored)


# -- a check for `mlci doctor` -----------------------------------------------------------


CHECK_TIMEOUT_S = 60.0


def check_remote(
    root: Path,
    *,
    remote: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout_s: float = CHECK_TIMEOUT_S,
) -> tuple[bool, str]:
    """Whether the DVC remote can be read from here, and a line saying so (or the fix).

    Checks the project, the remote's configuration and plugin, then asks the remote with
    `dvc status --cloud` (which lists without downloading), for at most `timeout_s`.
    """
    try:
        dvc_root = find_dvc_root(root)
        if dvc_root is None:
            return False, f"{root} is not in a DVC project (no .dvc/ folder); run `dvc init`"
        configured = read_remote(dvc_root, remote)
        if configured.name is None:
            raise diagnose("No remote provided and no default remote set.", 1, configured)
        missing = _plugin_missing(configured)
        if missing is not None:
            raise missing
        args = ["status", "--cloud", "--json"] + (["--remote", remote] if remote else [])
        try:
            completed = _run_dvc(args, cwd=root, env=env, timeout_s=timeout_s)
        except process.Stopped as stopped:
            raise ExternalError(
                f"{_where(configured)} did not answer `dvc status --cloud` within "
                f"{process.elapsed(stopped.seconds)}, so it was stopped: "
                f"{_answer_hint(configured)}; `mlci run` would wait for it up to "
                f"data.timeout_minutes"
            ) from None
        output = completed.output
        if completed.returncode != 0 or "ERROR:" in output:
            raise diagnose(output, completed.returncode or 1, configured, env=env)
    except MlciError as exc:
        return False, exc.message
    return True, f"DVC remote {configured.shown} answers ({configured.kind.scheme})"
