"""`mlci demo`: the whole flow on a throwaway repository, with no network or account.

1. main: the first build trains the example and becomes the first champion.
2. a pull request that trains on less data: the gate fails, and says why.
3. a pull request that regularises less: the gate passes.
4. that pull request merged into main: it becomes the new champion.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from mlci import git, pipeline
from mlci.commands.init import write_project
from mlci.console import Console, columns
from mlci.core.numbers import format_number
from mlci.data.run import dvc_command
from mlci.errors import EXIT_INTERNAL, EXIT_OK, ExternalError, UsageError

# Variables that would make the demo talk to a real CI, forge or registry.
_FOREIGN_PREFIXES = ("GITHUB_", "GITLAB_", "CI_", "MLFLOW_", "BITBUCKET_", "GIT_")
_FOREIGN_NAMES = ("CI", "GITLAB_CI", "GITHUB_ACTIONS")


@dataclass(frozen=True)
class DemoBuild:
    title: str
    branch: str
    expected_exit: int
    outcome: pipeline.Outcome
    saved_to: Path


@dataclass(frozen=True)
class _Step:
    title: str
    branch: str
    change: Mapping[str, str]  # params.yaml edits: "key: old" -> "key: new"
    expected_exit: int


_STEPS = (
    _Step("main: first build, becomes the first champion", "main", {}, 0),
    _Step(
        "pull request: train on 30% of the data (faster, but worse)",
        "pr/less-data",
        {"train_fraction: 1.0": "train_fraction: 0.3"},
        1,
    ),
    _Step(
        "pull request: regularise less (C 0.01 -> 0.1)",
        "pr/less-regularisation",
        {"C: 0.01 ": "C: 0.1  "},
        0,
    ),
    _Step("main: merge of pr/less-regularisation, becomes the new champion", "main", {}, 0),
)


def isolated_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment without CI, forge, registry and git variables.

    The folder of the Python running mlci comes first on PATH, so the example's
    `python train.py` runs with the packages installed beside mlci (a virtual
    environment need not be activated).
    """
    clean = {
        key: value
        for key, value in env.items()
        if not key.startswith(_FOREIGN_PREFIXES) and key not in _FOREIGN_NAMES
    }
    interpreter_bin = str(Path(sys.executable).parent)
    clean["PATH"] = os.pathsep.join([interpreter_bin, *filter(None, [env.get("PATH")])])
    return clean


def _check_requirements(*, dvc: bool = False) -> None:
    needed = ("sklearn", "mlflow", "dvc") if dvc else ("sklearn", "mlflow")
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(
            f"the demo needs {' and '.join(missing)}, which {sys.executable} cannot import: "
            f"pip install 'mlci[all]' (or run `make demo`, which does)"
        )


def run_demo(folder: Path, *, console: Console, dvc: bool = False) -> list[DemoBuild]:
    """Build the repository in `folder` (empty or missing) and run the four builds.

    With `dvc`, the example keeps its data in DVC (a local remote in .mlci/dvc-remote)
    and trains with `dvc repro`: the reports show the data's hashes, and the last build
    reuses the training of the pull request it merges.
    """
    _check_requirements(dvc=dvc)
    if folder.exists() and any(folder.iterdir()):
        raise UsageError(f"{folder} is not empty; give `mlci demo --dir` an empty or new folder")
    folder.mkdir(parents=True, exist_ok=True)
    write_project(folder, example="sklearn-dvc" if dvc else "sklearn", force=False)
    git.init_repo(folder, branch="main")
    env = isolated_env(os.environ)
    if dvc:
        _track_data(folder, env)
    git.commit_all(folder, "Example project: digits classifier")
    builds = []
    for number, step in enumerate(_STEPS, start=1):
        console.stream.write(f"\n── build {number}/{len(_STEPS)}: {step.title}\n")
        _prepare(folder, step)
        outcome = pipeline.run(config_path=folder / "mlci.yaml", env=env, console=console)
        saved = folder / ".mlci" / "demo" / f"{number}-{re.sub(r'[^a-z0-9]+', '-', step.branch)}"
        shutil.copytree(outcome.out_dir, saved)
        builds.append(DemoBuild(step.title, step.branch, step.expected_exit, outcome, saved))
        if outcome.exit_code != step.expected_exit:
            break  # the next builds depend on this one
        if dvc and git.is_dirty(folder):
            git.commit_all(folder, f"dvc.lock of build {number}")  # as a developer would
    return builds


def _track_data(folder: Path, env: Mapping[str, str]) -> None:
    """The steps `mlci init --example sklearn-dvc` prints, with the remote inside .mlci/."""
    dvc = dvc_command()
    steps = [
        [*dvc, "init", "-q"],
        [*dvc, "config", "core.analytics", "false"],
        [*dvc, "remote", "add", "-q", "-d", "local", ".mlci/dvc-remote"],
        [sys.executable, "make_data.py"],
        [*dvc, "add", "-q", "data/digits.csv"],
        [*dvc, "push", "-q"],
    ]
    for step in steps:
        done = subprocess.run(
            step, cwd=folder, env={**env, "DVC_NO_ANALYTICS": "1"}, capture_output=True, text=True
        )
        if done.returncode != 0:
            last = (done.stderr or done.stdout).strip().splitlines()[-1:]
            raise ExternalError(
                f"demo set-up failed at `{' '.join(step[-3:])}`: {last[0] if last else 'no output'}"
            )


def _prepare(folder: Path, step: _Step) -> None:
    if step.branch == "main":
        if git.current_branch(folder) != "main":
            merged = git.current_branch(folder) or "HEAD"
            git.switch(folder, "main")
            git.merge(folder, merged, f"Merge {merged}")
        return
    git.switch(folder, "main")
    git.switch(folder, step.branch, create=True)
    params = folder / "params.yaml"
    text = params.read_text(encoding="utf-8")
    for old, new in step.change.items():
        if old not in text:
            raise AssertionError(f"the example's params.yaml has no {old!r}")
        text = text.replace(old, new)
    params.write_text(text, encoding="utf-8")
    git.commit_all(folder, f"{step.branch}: {step.title}")


def demo_command(*, folder: Path | None, dvc: bool = False) -> int:
    started = time.monotonic()
    target = folder or Path(tempfile.mkdtemp(prefix="mlci-demo-"))
    console = Console(sys.stderr)
    builds = run_demo(target, console=console, dvc=dvc)
    out = sys.stdout
    out.write(f"\nmlci demo: {target} ({time.monotonic() - started:.0f} s)\n\n")
    rows = [("build", "branch", "verdict", "accuracy", "registry", "report")]
    for number, build in enumerate(builds, start=1):
        report = build.outcome.report
        accuracy = report.candidate.get("accuracy")
        promotion = report.promotion
        registry = "—"
        if promotion is not None and promotion.version is not None:
            registry = f"v{promotion.version} @{promotion.alias}"
        rows.append(
            (
                str(number),
                build.branch,
                report.status,
                format_number(accuracy) if isinstance(accuracy, float) else "—",
                registry,
                str((build.saved_to / "report.md").relative_to(target)),
            )
        )
    out.write("\n".join(columns(rows)) + "\n")
    for number, build in enumerate(builds, start=1) if dvc else ():
        report = build.outcome.report
        hashes = ", ".join(f"{path} {digest[:8]}" for path, digest in report.data.items())
        reused = f"; {report.training_reused}" if report.training_reused else ""
        out.write(f"{'' if number > 1 else chr(10)}build {number} data: {hashes or '—'}{reused}\n")
    if len(builds) > 1:
        failing = builds[1].outcome.report
        why = failing.gate.summary() if failing.gate else failing.error
        out.write(f"\nWhy build 2 failed: {why}\n")
    out.write(
        f"\nLook around: cd {target} && mlci registry show"
        f" (then mlci registry history, mlci rollback)\n"
        f"Open a report: {builds[-1].saved_to / 'report.html'}\n"
    )
    unexpected = [b for b in builds if b.outcome.exit_code != b.expected_exit]
    if unexpected:
        for build in unexpected:
            report = build.outcome.report
            console.error(
                f"demo build {build.branch!r} exited {build.outcome.exit_code}, expected "
                f"{build.expected_exit}: {report.error or report.status}"
            )
        return EXIT_INTERNAL
    return EXIT_OK
