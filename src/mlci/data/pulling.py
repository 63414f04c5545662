"""`dvc pull`, with progress read from DVC's cache, and what it did."""

from __future__ import annotations

import contextlib
import os
import re
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from mlci import process
from mlci.console import Console
from mlci.core.redact import redact_url
from mlci.data.diagnosis import (
    answer_hint,
    diagnose,
    dvc_errors,
    missing_targets,
    named_remote,
)
from mlci.data.hashes import datasets
from mlci.data.remotes import Remote, find_dvc_root, read_dvc_config, read_remote
from mlci.data.run import plugin_missing, run_dvc
from mlci.errors import ExternalError, MlciError, UsageError

if TYPE_CHECKING:
    from mlci.config import DataConfig


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
            return f"up to date with {source}{cache} ({self.seconds:.1f} s){self._rebuilt()}"
        return f"{', '.join(parts)} from {source}{cache} in {self.seconds:.1f} s{self._rebuilt()}"

    def _rebuilt(self) -> str:
        """The stage outputs nobody pushed: not datasets, so the training makes them."""
        if not self.missing_outputs:
            return ""
        shown = ", ".join(self.missing_outputs[:5])
        more = len(self.missing_outputs) - 5
        shown += f" and {more} more" if more > 0 else ""
        return f"; not on the remote, made again by the training: {shown} (stage outputs)"

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


def pull_configured(
    root: Path, settings: DataConfig, *, console: Console, env: Mapping[str, str] | None = None
) -> PullResult:
    """`pull` with the `data` section of mlci.yaml (`mlci run` and `mlci data pull`)."""
    return pull(
        root,
        remote=settings.remote,
        jobs=settings.jobs,
        run_cache=settings.run_cache,
        targets=settings.targets,
        console=console,
        env=env,
        timeout_s=settings.timeout_minutes * 60,
        stall_s=settings.stall_minutes * 60,
    )


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
    from mlci.data import access  # urllib.request: here, not with mlci.data (mlci gate)

    console = console or Console()
    dvc_root = find_dvc_root(root)
    if dvc_root is None:
        raise UsageError(
            f"data.dvc is true but {root} is not in a DVC project (no .dvc/ folder): run "
            f"`dvc init`, or set data.dvc: false in mlci.yaml"
        )
    configured = read_remote(dvc_root, remote)
    missing = plugin_missing(configured) if configured.name else None
    missing = missing or access.before_pull(configured, env)
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
            completed = run_dvc(
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
            asked = _ask_http(configured, output)
            if asked is not None:
                raise asked
            raise diagnose(output, completed.returncode, configured, env=env, missing=missing_data)
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


def _ask_http(remote: Remote, output: str) -> MlciError | None:
    """DVC's HTTP remote takes a 401, a 403 or no answer for missing data: ask it again."""
    md5 = re.search(r"^md5: ([0-9a-f]{32}(?:\.dir)?)", output, flags=re.M)
    if remote.kind.scheme != "http" or md5 is None:
        return None
    from mlci.data import access

    return access.http_problem(remote, named_remote(remote), md5.group(1))


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
    where = named_remote(remote)
    ran = process.elapsed(stopped.seconds)
    hint = answer_hint(remote)
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


def _missing_split(output: str, root: Path, dvc_root: Path) -> tuple[list[str], tuple[str, ...]]:
    """The datasets and the stage outputs that the pull could not check out.

    A stage that never ran (no dvc.lock entry), or whose outputs were not pushed, is
    made again by training (`dvc repro`): that alone must not stop the run. A missing
    dataset (`hashes.datasets`: data no stage makes) must. Both are empty when the pull
    failed for another reason.
    """
    errors = dvc_errors(output)
    if not errors or not all("Checkout failed" in line for line in errors):
        return [], ()
    wanted = {os.path.relpath(dvc_root / d.path, root) for d in datasets(dvc_root)}
    targets = missing_targets(output)
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
    configured = read_dvc_config(dvc_root).get("cache", {}).get("dir")
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
