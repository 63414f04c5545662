"""`mlci init --install`: the source the CI installs mlci from is chosen explicitly and
pinned, the summary says what must exist for it to work, and a source that cannot be
pinned is refused with the fix (exit 2)."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest
import yaml

import mlci
from mlci.cli import main
from mlci.commands import init

WORKFLOW = Path(".github/workflows/ml-pipeline.yml")
REPORT = Path(".github/workflows/ml-report.yml")
SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    subprocess.run(["git", "init", "-q", "-b", "main", str(tmp_path)], check=True)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _init(*args: str) -> int:
    return main(["init", "--yes", "--forge", "github", *args])


def test_the_default_is_the_index_at_the_running_version(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _init("--fork-safe") == 0

    assert f'"mlci[mlflow,plots]=={mlci.__version__}"' in (repo / WORKFLOW).read_text()
    assert f"python -m pip install mlci=={mlci.__version__}" in (repo / REPORT).read_text()
    out = capsys.readouterr().out
    assert f"The CI installs mlci=={mlci.__version__} from the package index" in out
    assert "must be published there" in out


def test_a_committed_wheel_is_installed_from_the_repository_and_its_hash_pinned(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wheel = repo / "wheels" / "mlci-9.8.7-py3-none-any.whl"
    wheel.parent.mkdir()
    wheel.write_bytes(b"a wheel's bytes")
    digest = hashlib.sha256(b"a wheel's bytes").hexdigest()

    assert _init("--fork-safe", "--install", "wheels/mlci-9.8.7-py3-none-any.whl") == 0

    line = '"${GITHUB_WORKSPACE}/wheels/mlci-9.8.7-py3-none-any.whl[mlflow,plots]"'
    assert f"python -m pip install {line}" in (repo / WORKFLOW).read_text()
    report = yaml.safe_load((repo / REPORT).read_text())["jobs"]["publish"]
    runs = "\n".join(str(step.get("run", "")) for step in report["steps"])
    assert f'echo "{digest}  wheels/mlci-9.8.7-py3-none-any.whl" | sha256sum --check' in runs
    out = capsys.readouterr().out
    assert "mlci 9.8.7 from the wheel wheels/mlci-9.8.7-py3-none-any.whl: commit it" in out


def test_a_git_url_pinned_to_a_commit(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"git+https://git.example.com/acme/mlci@{SHA}"
    assert _init("--install", url) == 0
    assert f"python -m pip install 'mlci[mlflow,plots] @ {url}'" in (repo / WORKFLOW).read_text()
    assert f"from https://git.example.com/acme/mlci@{SHA}: that commit" in capsys.readouterr().out


def test_the_action_installs_itself_and_the_report_job_installs_its_commit(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _init("--fork-safe", "--action", f"acme/mlci@{SHA} # v1") == 0

    assert "pip install" not in (repo / WORKFLOW).read_text()
    install = f"python -m pip install 'mlci @ git+https://github.com/acme/mlci@{SHA}'"
    assert install in (repo / REPORT).read_text()
    assert "composite action, which installs mlci from its own checkout" in (
        capsys.readouterr().out
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--install", "git+https://github.com/acme/mlci@main"], "pin the git URL to a full"),
        (["--install", "git+https://github.com/acme/mlci"], "pin the git URL to a full"),
        (["--install", "action"], "--install action needs the action: add --action"),
        (["--install", "pypi"], "expected index, action, git+https://HOST/OWNER/mlci@SHA"),
        (["--install", "dist/mlci-1.0-py3-none-any.whl"], "no wheel of mlci there; build one"),
        (["--forge", "gitlab", "--install", "action"], "--install action is for GitHub"),
    ],
)
def test_a_source_that_cannot_be_pinned_is_refused(
    repo: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert _init(*args) == 2
    assert message in capsys.readouterr().err
    assert not (repo / WORKFLOW).exists()


def test_a_wheel_outside_the_repository_is_refused(
    repo: Path, tmp_path_factory: pytest.TempPathFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    wheel = tmp_path_factory.mktemp("elsewhere") / "mlci-1.0.0-py3-none-any.whl"
    wheel.write_bytes(b"x")
    assert _init("--install", str(wheel)) == 2
    assert "the wheel must be inside the repository" in capsys.readouterr().err


def test_a_local_build_is_not_offered_from_the_index(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(init, "__version__", "0.1.0+g1234abc")
    assert _init() == 2
    err = capsys.readouterr().err
    assert "0.1.0+g1234abc, a local build that no package index has" in err
    assert "--install git+URL@SHA" in err
