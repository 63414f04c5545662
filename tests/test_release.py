"""The package as users get it: `python -m build` makes an sdist and a wheel that pass
`twine check` and `check-wheel-contents`, and the wheel alone, installed into a fresh
virtual environment, runs the example project end to end.

The build runs once per session (about 30 s); the fresh environment takes mlci only from
the wheel, and its dependencies (MLflow, scikit-learn...) from this interpreter's
site-packages through a .pth file, so no test downloads them.
"""

from __future__ import annotations

import json
import os
import site
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import mlci

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("release")]

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _run(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    completed = subprocess.run(
        [str(arg) for arg in args], cwd=cwd, env=env, capture_output=True, text=True, check=False
    )
    assert completed.returncode == 0, f"{args}: {completed.stdout}{completed.stderr}"
    return completed.stdout


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The sdist and the wheel, built as the release workflow builds them (the wheel from
    the sdist, so the sdist is known to be complete)."""
    out = tmp_path_factory.mktemp("dist")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    _run(sys.executable, "-m", "build", "--outdir", out, ROOT, env=env)
    return out


def _wheel(dist: Path) -> Path:
    (wheel,) = dist.glob("mlci-*.whl")
    return wheel


def test_the_sdist_and_the_wheel_pass_twine_and_check_wheel_contents(dist: Path) -> None:
    files = sorted(dist.iterdir())
    assert [path.name for path in files] == [
        f"mlci-{mlci.__version__}-py3-none-any.whl",
        f"mlci-{mlci.__version__}.tar.gz",
    ]
    _run(BIN / "twine", "check", "--strict", *files)
    _run(BIN / "check-wheel-contents", "--config", ROOT / "pyproject.toml", _wheel(dist))


def test_the_wheel_holds_the_examples_the_types_marker_and_the_licence(dist: Path) -> None:
    names = set(zipfile.ZipFile(_wheel(dist)).namelist())
    examples = {
        path.relative_to(ROOT / "src").as_posix()
        for path in (ROOT / "src" / "mlci" / "examples").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert examples and examples <= names
    assert "mlci/py.typed" in names
    info = f"mlci-{mlci.__version__}.dist-info"
    assert f"{info}/licenses/LICENSE" in names
    metadata = zipfile.ZipFile(_wheel(dist)).read(f"{info}/METADATA").decode()
    assert "License-Expression: MIT" in metadata
    assert "Classifier: Programming Language :: Python :: 3.13" in metadata
    with tarfile.open(dist / f"mlci-{mlci.__version__}.tar.gz") as sdist:
        sdist_names = {name.partition("/")[2] for name in sdist.getnames()}
    assert {"LICENSE", "CHANGELOG.md", "README.md"} <= sdist_names


def test_the_wheel_in_a_fresh_venv_runs_the_example_end_to_end(dist: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    (purelib,) = {Path(p) for p in site.getsitepackages()}
    (new_purelib,) = (venv / "lib").glob("python*/site-packages")
    # The dependencies come from here; mlci itself only from the wheel (installed below,
    # ahead of this line on sys.path; this interpreter's mlci is an editable install of the
    # source tree, which a plain path on sys.path does not activate).
    (new_purelib / "_dependencies.pth").write_text(f"{purelib}\n")
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["PATH"] = os.pathsep.join([str(venv / "bin"), env["PATH"]])
    _run(
        sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
        _wheel(dist), env=env,
    )  # fmt: skip
    where = _run(python, "-c", "import mlci; print(mlci.__file__)", env=env).strip()
    assert Path(where).is_relative_to(new_purelib), where

    mlci_bin = venv / "bin" / "mlci"
    assert _run(mlci_bin, "--version", env=env).strip() == f"mlci {mlci.__version__}"
    project = tmp_path / "project"
    project.mkdir()
    _run("git", "init", "-q", "-b", "main", cwd=project)
    _run(mlci_bin, "init", "--example", "--yes", cwd=project, env=env)
    assert (project / "train.py").is_file()
    assert (project / ".github" / "workflows" / "ml-pipeline.yml").is_file()
    _run("git", "add", ".", cwd=project)
    _run("git", "commit", "-q", "-m", "Example project", cwd=project)
    _run(mlci_bin, "run", cwd=project, env=env)

    out = project / ".mlci" / "out"
    assert {"report.md", "report.html", "gate.json", "report.json"} <= {
        path.name for path in out.iterdir()
    }
    assert json.loads((out / "gate.json").read_text())["passed"] is True
