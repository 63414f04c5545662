"""Baselines from git, files and the registry, on real repositories."""

from __future__ import annotations

import io
import json
import subprocess
from pathlib import Path

import pytest

from mlci import git
from mlci.ci import detect_context
from mlci.config import load_config
from mlci.console import Console
from mlci.errors import UsageError
from mlci.pipeline import baseline as baselines
from mlci.pipeline.baseline import BaselineRequest

CONFIG = """\
version: 1
model: {name: m}
evaluate: {metrics: [metrics.json]}
gate:
  baseline: BASELINE
  rules:
    - {metric: accuracy, max_drop: 0.01}
"""


def make_repo(root: Path, *, baseline: str = "git", folder: str = "") -> Path:
    """A repository whose main branch has committed metrics; returns the project folder."""
    git.init_repo(root, branch="main")
    project = root / folder if folder else root
    project.mkdir(parents=True, exist_ok=True)
    (project / "mlci.yaml").write_text(CONFIG.replace("BASELINE", baseline))
    (root / ".gitignore").write_text(".mlci/\n")
    write_metrics(project, 0.90)
    git.commit_all(root, "first model")
    return project


def write_metrics(project: Path, accuracy: float) -> None:
    (project / "metrics.json").write_text(json.dumps({"accuracy": accuracy, "n": 100}))


def choose(
    project: Path, request: BaselineRequest | None = None, env: dict[str, str] | None = None
):
    config = load_config(project / "mlci.yaml")
    context = detect_context(project, env or {})
    return baselines.find_baseline(
        config,
        context,
        None,
        request or baselines.request_from_config(config),
        cache=project / ".mlci" / "cache",
        console=Console(io.StringIO()),
    )


def github_pull_request(head: str, base: str) -> dict[str, str]:
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_HEAD_REF": head,
        "GITHUB_BASE_REF": base,
    }


def test_pull_request_branch_compares_with_the_merge_base(tmp_path: Path) -> None:
    project = make_repo(tmp_path)
    base = git.head_sha(tmp_path)
    git.switch(tmp_path, "feature", create=True)
    write_metrics(project, 0.85)
    git.commit_all(tmp_path, "worse")
    git.switch(tmp_path, "main")
    write_metrics(project, 0.99)  # main moved on after the branch point
    git.commit_all(tmp_path, "main moves on")
    git.switch(tmp_path, "feature")

    choice = choose(project)

    assert choice.baseline is not None
    assert choice.baseline.source == "git"
    assert choice.baseline.metrics == {"accuracy": 0.90, "n": 100}
    assert choice.baseline.label == f"main at the merge base {base[:8]}"


def test_a_build_of_main_compares_with_the_previous_commit(tmp_path: Path) -> None:
    project = make_repo(tmp_path)
    write_metrics(project, 0.93)
    git.commit_all(tmp_path, "better")

    choice = choose(project)

    assert choice.baseline is not None
    assert choice.baseline.metrics["accuracy"] == 0.90
    assert choice.baseline.label.startswith("main before this commit")


def test_a_project_in_a_subfolder_reads_its_own_files(tmp_path: Path) -> None:
    project = make_repo(tmp_path, folder="models/churn")
    git.switch(tmp_path, "feature", create=True)
    write_metrics(project, 0.8)
    git.commit_all(tmp_path, "worse")

    choice = choose(project)

    assert choice.baseline is not None
    assert choice.baseline.metrics["accuracy"] == 0.90


def test_the_base_ref_can_be_given(tmp_path: Path) -> None:
    project = make_repo(tmp_path)
    git.switch(tmp_path, "release", create=True)
    write_metrics(project, 0.95)
    git.commit_all(tmp_path, "release model")
    git.switch(tmp_path, "feature", create=True)
    write_metrics(project, 0.94)
    git.commit_all(tmp_path, "feature")

    choice = choose(project, BaselineRequest(mode="git", ref="release"))

    assert choice.baseline is not None
    assert choice.baseline.metrics["accuracy"] == 0.95


def test_a_missing_base_branch_names_the_fetch(tmp_path: Path) -> None:
    project = make_repo(tmp_path)
    git.switch(tmp_path, "feature", create=True)

    with pytest.raises(UsageError) as failed:
        choose(project, BaselineRequest(mode="git", ref="develop"))

    assert "the base branch develop is not in this repository" in failed.value.message
    assert "git fetch origin develop" in failed.value.message


def test_a_shallow_clone_names_fetch_depth(tmp_path: Path) -> None:
    origin = tmp_path / "origin"
    make_repo(origin)
    git.switch(origin, "feature", create=True)
    write_metrics(origin, 0.8)
    git.commit_all(origin, "worse")
    clone = tmp_path / "clone"
    subprocess.run(
        [
            "git",
            "clone",
            "--quiet",
            "--depth",
            "1",
            "--branch",
            "feature",
            origin.as_uri(),
            str(clone),
        ],
        check=True,
    )

    with pytest.raises(UsageError) as failed:
        choose(clone)

    assert "shallow clone" in failed.value.message
    assert "fetch-depth: 0" in failed.value.message


def test_uncommitted_metrics_make_git_an_error_and_auto_fall_through(tmp_path: Path) -> None:
    git.init_repo(tmp_path, branch="main")
    (tmp_path / "mlci.yaml").write_text(CONFIG.replace("BASELINE", "git"))
    (tmp_path / ".gitignore").write_text("metrics.json\n.mlci/\n")
    git.commit_all(tmp_path, "config only")
    write_metrics(tmp_path, 0.9)
    (tmp_path / "train.py").write_text("print('train')\n")
    git.commit_all(tmp_path, "again")

    with pytest.raises(UsageError) as failed:
        choose(tmp_path)
    assert "metrics.json is neither committed at main before this commit" in failed.value.message

    choice = choose(tmp_path, BaselineRequest(mode="auto"))
    assert choice.baseline is None
    assert "m has no @champion in the registry yet" in choice.notes[0]
    assert "metrics.json is neither committed" in choice.notes[0]


def test_file_baseline(tmp_path: Path) -> None:
    project = make_repo(tmp_path)
    (project / "main.yaml").write_text("accuracy: 0.97\n")

    choice = choose(project, BaselineRequest(mode="file", file=Path("main.yaml")))

    assert choice.baseline is not None
    assert (choice.baseline.source, choice.baseline.label) == ("file", "main.yaml")
    assert choice.baseline.metrics == {"accuracy": 0.97}


def test_none_baseline_says_so(tmp_path: Path) -> None:
    project = make_repo(tmp_path, baseline="none")
    choice = choose(project)
    assert choice.baseline is None
    assert choice.notes == ("No baseline: gate.baseline is none.",)


def test_github_pull_request_uses_the_base_ref_from_the_environment(tmp_path: Path) -> None:
    project = make_repo(tmp_path)
    git.switch(tmp_path, "stable", create=True)
    write_metrics(project, 0.88)
    git.commit_all(tmp_path, "stable")
    git.switch(tmp_path, "feature", create=True)

    choice = choose(project, env=github_pull_request("feature", "stable"))

    assert choice.baseline is not None
    assert choice.baseline.metrics["accuracy"] == 0.88


def test_auto_falling_back_to_git_keeps_the_base_commits_params(tmp_path: Path) -> None:
    project = make_repo(tmp_path, baseline="auto")
    (project / "params.yaml").write_text("model:\n  C: 0.1\n")
    git.commit_all(tmp_path, "params")
    git.switch(tmp_path, "feature", create=True)
    (project / "params.yaml").write_text("model:\n  C: 1.0\n")
    write_metrics(project, 0.91)
    git.commit_all(tmp_path, "tune C")

    choice = choose(project)  # no registry: auto falls back to git

    assert choice.baseline is not None and choice.baseline.source == "git"
    assert choice.params == {"model.C": "0.1"}


def stale_upstream(tmp_path: Path) -> Path:
    """main at 0.95 locally, an origin/main left behind at 0.50, a feature branch at 0.90."""
    project = make_repo(tmp_path)
    write_metrics(project, 0.50)
    old = git.commit_all(tmp_path, "the upstream's model")
    git.run_git("update-ref", "refs/remotes/origin/main", old, cwd=tmp_path)
    write_metrics(project, 0.95)
    git.commit_all(tmp_path, "a better model, not pushed")
    git.switch(tmp_path, "feature", create=True)
    write_metrics(project, 0.90)
    git.commit_all(tmp_path, "worse")
    return project


def test_a_named_base_ref_is_the_local_branch_not_a_stale_upstream(tmp_path: Path) -> None:
    project = stale_upstream(tmp_path)

    choice = choose(project, BaselineRequest(mode="git", ref="main"))

    assert choice.baseline is not None
    assert choice.baseline.metrics["accuracy"] == 0.95
    assert choice.baseline.label.startswith("main at the merge base")
    assert any(
        "main (" in note and "origin/main (" in note and "differ" in note for note in choice.notes
    )

    # Where there is no local main (a CI checkout), origin/main stands in, without a note.
    git.run_git("branch", "--quiet", "-D", "main", cwd=tmp_path)
    choice = choose(project, BaselineRequest(mode="git", ref="main"))
    assert choice.baseline is not None
    assert choice.baseline.metrics["accuracy"] == 0.50
    assert choice.baseline.label.startswith("origin/main at the merge base")
    assert not any("differ" in note for note in choice.notes)


def test_gate_baseline_git_without_a_ref_uses_the_local_main(tmp_path: Path) -> None:
    project = stale_upstream(tmp_path)

    choice = choose(project)  # gate.baseline: git, base branch: promote_on's main

    assert choice.baseline is not None
    assert choice.baseline.metrics["accuracy"] == 0.95


def test_gate_base_ref_in_the_config_is_the_local_branch(tmp_path: Path) -> None:
    project = stale_upstream(tmp_path)
    config = project / "mlci.yaml"
    named = config.read_text().replace("  baseline: git\n", "  baseline: git\n  base_ref: main\n")
    config.write_text(named)

    choice = choose(project)

    assert choice.baseline is not None
    assert choice.baseline.metrics["accuracy"] == 0.95


def test_the_cis_base_branch_is_the_forges_and_a_stale_local_one_is_noted(
    tmp_path: Path,
) -> None:
    project = make_repo(tmp_path)
    stale = git.head_sha(tmp_path)
    write_metrics(project, 0.93)
    upstream = git.commit_all(tmp_path, "the forge's main")
    git.run_git("update-ref", "refs/remotes/origin/main", upstream, cwd=tmp_path)
    git.switch(tmp_path, "feature", create=True)
    git.run_git("branch", "--quiet", "-f", "main", stale, cwd=tmp_path)  # left by a job

    choice = choose(project, env=github_pull_request("feature", "main"))

    assert choice.baseline is not None
    assert choice.baseline.metrics["accuracy"] == 0.93
    assert any("origin/main (" in note and "differ" in note for note in choice.notes)
