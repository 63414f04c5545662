"""mlci's own release workflow (.github/workflows/release.yml): actionlint and zizmor
clean with the settings of the generated workflows, and the release's rules: built once,
tested as a wheel on every supported Python, published by trusted publishing only."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from mlci.core import workflow
from tests.linters import actionlint, zizmor

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / ".github" / "workflows" / "release.yml"


def _workflow() -> dict[str, dict[str, dict[str, object]]]:
    return yaml.safe_load(RELEASE.read_text())  # type: ignore[no-any-return]


def _steps(job: str) -> list[dict[str, object]]:
    return _workflow()["jobs"][job]["steps"]  # type: ignore[return-value]


def test_the_release_workflow_passes_actionlint_and_zizmor(tmp_path: Path) -> None:
    linted = actionlint([RELEASE], set(), tmp_path)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    audited = zizmor(RELEASE)
    assert audited.returncode == 0, audited.stdout + audited.stderr
    assert "No findings to report" in audited.stdout


def test_it_runs_on_version_tags_and_only_publish_holds_an_oidc_token() -> None:
    data = _workflow()
    assert data[True] == {"push": {"tags": ["v[0-9]+.[0-9]+.[0-9]+"]}}  # type: ignore[index]
    assert data["permissions"] == {}
    holders = {name for name, job in data["jobs"].items() if "id-token" in job["permissions"]}
    assert holders == {"publish"}
    assert data["jobs"]["publish"]["permissions"] == {"id-token": "write"}
    # no stored token anywhere: trusted publishing only
    assert "secrets." not in RELEASE.read_text()
    assert "password" not in str(_steps("publish"))


def test_the_files_are_built_once_and_the_tested_wheel_is_what_is_published() -> None:
    builders = [
        name for name, job in _workflow()["jobs"].items() if "python -m build" in str(job["steps"])
    ]
    assert builders == ["build"]
    jobs = _workflow()["jobs"]
    assert jobs["test"]["needs"] == "build" and jobs["publish"]["needs"] == "test"
    assert jobs["release"]["needs"] == "publish"
    for job in ("test", "publish", "release"):
        (download,) = [s for s in _steps(job) if "download-artifact" in str(s.get("uses"))]
        assert download["with"] == {"name": "dist", "path": "dist"}
    # the test job has no check-out: it runs the wheel, not the source tree
    assert not any("checkout" in str(s.get("uses")) for s in _steps("test"))
    assert "mlci run" in str(_steps("test"))


def test_the_tested_pythons_are_the_supported_ones() -> None:
    matrix = _workflow()["jobs"]["test"]["strategy"]["matrix"]["python"]  # type: ignore[index]
    pyproject = (ROOT / "pyproject.toml").read_text()  # (tomllib is Python 3.11+)
    classified = re.findall(r'"Programming Language :: Python :: (3\.\d+)"', pyproject)
    assert matrix == classified == ["3.10", "3.11", "3.12", "3.13"]
    assert 'requires-python = ">=3.10"' in pyproject
    support = (ROOT / "docs" / "support.md").read_text()
    assert "3.10, 3.11, 3.12 and 3.13" in support


def test_every_action_is_pinned_by_sha_and_shared_pins_match_the_generated_files() -> None:
    uses = re.findall(r"uses: (\S+)@(\S+)  # (v[\d.]+)", RELEASE.read_text())
    assert len(uses) == len(re.findall(r"(?m)^ +(- )?uses: ", RELEASE.read_text()))
    for action, sha, version in uses:
        assert re.fullmatch(r"[0-9a-f]{40}", sha), action
        if action in workflow.PINS:
            assert (sha, version) == workflow.PINS[action]
    assert "pypa/gh-action-pypi-publish" in {action for action, _, _ in uses}
