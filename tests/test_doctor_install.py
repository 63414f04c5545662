"""`mlci doctor`'s install check on the workflows `mlci init` writes, in real git
repositories: each generated source passes as written, and each hand edit that makes the
install unpinned, another version, or impossible is reported with its fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import mlci
from mlci import git
from mlci.commands import init
from mlci.pipeline.preflight import CheckResult, check_install, context_for

PIPELINE = Path(".github/workflows/ml-pipeline.yml")
REPORT = Path(".github/workflows/ml-report.yml")
GITLAB = Path(".gitlab-ci.yml")
SHA = "0123456789abcdef0123456789abcdef01234567"
WHEEL = f"wheels/mlci-{mlci.__version__}-py3-none-any.whl"
VERSION = mlci.__version__


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    git.init_repo(tmp_path)
    monkeypatch.chdir(tmp_path)  # `--install PATH` is read from the working folder
    return tmp_path


def _init(repo: Path, **options: object) -> None:
    """What `mlci init --yes` writes with these options, committed."""
    chosen = init.resolve_options(init.InitOptions(**options), None)  # type: ignore[arg-type]
    init.write_plan(init.plan_project(repo, example=None, options=chosen), force=False)
    git.commit_all(repo, "mlci init")


def _wheel(repo: Path, content: bytes = b"a wheel's bytes") -> None:
    (repo / WHEEL).parent.mkdir(exist_ok=True)
    (repo / WHEEL).write_bytes(content)


def _edit(repo: Path, path: Path, old: str, new: str) -> None:
    text = (repo / path).read_text()
    assert old in text, f"{old!r} is not in {path}"
    (repo / path).write_text(text.replace(old, new))


def _check(repo: Path) -> CheckResult:
    return check_install(context_for(repo / "mlci.yaml", {}))


# -- what mlci init writes passes --------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "wheel", "shown"),
    [
        ({"forge": "github", "fork_safe": True}, False, f"ml-report.yml: mlci=={VERSION}"),
        ({"forge": "gitlab"}, False, f".gitlab-ci.yml: mlci=={VERSION}"),
        (
            {"forge": "github", "install": f"git+https://git.example.com/acme/mlci@{SHA}"},
            False,
            f"ml-pipeline.yml: mlci from git+https://git.example.com/acme/mlci@{SHA}",
        ),
        (
            {"forge": "github", "fork_safe": True, "action": f"acme/mlci@{SHA} # v1"},
            False,
            f"ml-pipeline.yml: mlci's action acme/mlci@{SHA}",
        ),
        ({"forge": "github", "fork_safe": True, "install": WHEEL}, True, f"ml-report.yml: {WHEEL}"),
        ({"forge": "gitlab", "install": WHEEL}, True, f".gitlab-ci.yml: {WHEEL}"),
    ],
    ids=["index-fork-safe", "gitlab", "git", "action-fork-safe", "wheel-fork-safe", "gitlab-wheel"],
)
def test_every_source_mlci_init_writes_passes(
    repo: Path, options: dict[str, object], wheel: bool, shown: str
) -> None:
    if wheel:
        _wheel(repo)
    _init(repo, **options)

    result = _check(repo)

    assert result.status == "ok", result.line()
    assert shown in result.detail


# -- unpinned: fail ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "old", "new"),
    [
        (PIPELINE, f'"mlci[mlflow,plots]=={VERSION}"', '"mlci[mlflow,plots]"'),
        (PIPELINE, f'"mlci[mlflow,plots]=={VERSION}"', '"mlci>=0.1"'),
        (REPORT, f"install mlci=={VERSION}", "install --upgrade mlci"),
        (PIPELINE, f'"mlci[mlflow,plots]=={VERSION}"', "-r requirements-ci.txt"),
    ],
    ids=["extras", "lower-bound", "privileged-job", "requirements-file"],
)
def test_an_unpinned_install_fails(repo: Path, path: Path, old: str, new: str) -> None:
    _init(repo, forge="github", fork_safe=True)
    (repo / "requirements-ci.txt").write_text("# the CI's tools\nmlci[mlflow] ~= 0.1\n")
    _edit(repo, path, old, new)

    result = _check(repo)

    assert result.status == "fail", result.line()
    assert f"{path.as_posix()} installs `" in result.detail and "unpinned" in result.detail
    assert f"pin it (mlci=={VERSION})" in result.line()


def test_an_unpinned_install_on_gitlab_fails(repo: Path) -> None:
    _init(repo, forge="gitlab")
    _edit(repo, GITLAB, f'"mlci[mlflow,plots]=={VERSION}"', "mlci")

    result = _check(repo)

    assert result.status == "fail" and "installs `mlci` unpinned" in result.detail


# -- another version: warn ---------------------------------------------------------------


def test_another_version_than_the_running_one_warns(repo: Path) -> None:
    _init(repo, forge="github", fork_safe=True)
    _edit(repo, REPORT, f"mlci=={VERSION}", "mlci==0.0.9")

    result = _check(repo)

    assert result.status == "warn", result.line()
    assert f"ml-report.yml installs mlci 0.0.9, but this is mlci {VERSION}" in result.detail
    assert "ml-pipeline.yml" not in result.detail  # that one is right
    assert "mlci init --force" in result.line()


# -- a wheel in the repository: fail when missing or changed --------------------------------


def test_a_wheel_that_is_not_in_the_repository_fails(repo: Path) -> None:
    _wheel(repo)
    _init(repo, forge="github", fork_safe=True, install=WHEEL)
    git.run_git("rm", "--quiet", WHEEL, cwd=repo)

    result = _check(repo)

    assert result.status == "fail", result.line()
    assert f"installs mlci from {WHEEL}, which is not in the repository" in result.detail
    assert "python -m build --wheel" in result.line()


def test_a_wheel_whose_sha256_differs_from_the_workflows_fails(repo: Path) -> None:
    _wheel(repo)
    _init(repo, forge="github", fork_safe=True, install=WHEEL)
    _wheel(repo, b"another build")
    git.commit_all(repo, "rebuild the wheel")

    result = _check(repo)

    assert result.status == "fail", result.line()
    assert f"ml-report.yml: the sha256 of {WHEEL} is" in result.detail
    assert "`sha256sum --check` line expects" in result.detail
    assert "review the diff" in result.line()


def test_a_wheel_that_is_not_committed_warns(repo: Path) -> None:
    _wheel(repo)
    _init(repo, forge="github", install=WHEEL)
    git.run_git("rm", "--quiet", "--cached", WHEEL, cwd=repo)

    result = _check(repo)

    assert result.status == "warn", result.line()
    assert "which is not committed" in result.detail and f"git add -f {WHEEL}" in result.line()


# -- a git URL or the action at a tag: warn ------------------------------------------------


@pytest.mark.parametrize(("ref", "said"), [("@v1.0", "at v1.0, a branch or tag"), ("", "")])
def test_a_git_url_not_pinned_to_a_commit_warns(repo: Path, ref: str, said: str) -> None:
    _init(repo, forge="github", install=f"git+https://git.example.com/acme/mlci@{SHA}")
    _edit(repo, PIPELINE, f"@{SHA}", ref)

    result = _check(repo)

    assert result.status == "warn", result.line()
    assert (said or "at its default branch") in result.detail
    assert "git ls-remote URL REF" in result.line()


def test_the_action_at_a_tag_warns(repo: Path) -> None:
    _init(repo, forge="github", action=f"acme/mlci@{SHA} # v1")
    _edit(repo, PIPELINE, f"acme/mlci@{SHA}", "acme/mlci@v1")

    result = _check(repo)

    assert result.status == "warn", result.line()
    assert "uses mlci's action at @v1, a tag or branch that can be moved" in result.detail
    assert "uses: acme/mlci@<40-hex sha>  # v1" in result.line()


# -- nothing to check: skip ----------------------------------------------------------------


def test_no_workflow_skips(repo: Path) -> None:
    _init(repo, forge="none")

    result = _check(repo)

    assert result.status == "skip" and "no workflow found" in result.detail


def test_a_workflow_that_installs_mlci_nowhere_skips(repo: Path) -> None:
    _init(repo, forge="github")
    _edit(repo, PIPELINE, f'"mlci[mlflow,plots]=={VERSION}"', "-r requirements.txt")

    result = _check(repo)

    assert result.status == "skip", result.line()
    assert f"mlci is installed nowhere in {PIPELINE.as_posix()}" in result.detail


def test_a_workflow_that_is_not_yaml_warns(repo: Path) -> None:
    _init(repo, forge="github")
    (repo / ".github/workflows/other.yml").write_text("jobs: [unclosed\n")

    result = _check(repo)

    assert result.status == "warn" and "other.yml is not valid YAML (line " in result.detail


# -- the command ---------------------------------------------------------------------------


def _doctor(repo: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "mlci", "doctor"]
    return subprocess.run(command, cwd=repo, capture_output=True, text=True, timeout=120)


def test_doctor_prints_the_install_line_and_exits_3_on_a_failure(repo: Path) -> None:
    _init(repo, forge="github")
    clean = _doctor(repo)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert f"ok    mlci install: {PIPELINE.as_posix()}: mlci=={VERSION}" in clean.stdout

    _edit(repo, PIPELINE, f'"mlci[mlflow,plots]=={VERSION}"', "mlci")
    failed = _doctor(repo)

    assert failed.returncode == 3, failed.stdout + failed.stderr
    assert f"fail  mlci install: {PIPELINE.as_posix()} installs `mlci` unpinned" in failed.stdout


def test_control_characters_of_a_ci_file_are_shown_escaped(repo: Path) -> None:
    _init(repo, forge="github", action=f"acme/mlci@{SHA} # v1")
    _edit(repo, PIPELINE, f"uses: acme/mlci@{SHA}", 'uses: "acme/mlci@v1\\e[2J"')

    result = _check(repo)

    assert result.status == "warn", result.line()
    assert "\x1b" not in result.line() and "@v1\\x1b[2J" in result.detail
