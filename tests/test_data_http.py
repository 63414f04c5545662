"""DVC's HTTP remote against a web server on 127.0.0.1 that asks for credentials.

The server serves the project's pushed remote folder to basic auth (`reader`), to a custom
header (`X-Token`), answers 403 to a known user without access and 401 to anything else.
DVC itself takes each of those for missing data; mlci asks again and names the fix.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlci import data
from mlci.core import workflow
from mlci.errors import EXIT_EXTERNAL, EXIT_OK, EXIT_USAGE
from tests.dvc_project import DvcProject, build_template, copy_template
from tests.dvc_project import data_pull as pull
from tests.servers import HttpStore, http_store

pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def http_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_template(tmp_path_factory.mktemp("dvc-http-template"))


@pytest.fixture(scope="session")
def store(http_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[HttpStore]:
    """One server for the session, serving the template's pushed remote."""
    proj = copy_template(http_template, tmp_path_factory.mktemp("http-remote") / "p")
    with http_store(proj.remote) as server:
        yield server


def use_basic(project: DvcProject, user: str, password: str) -> None:
    """What the CI step of `mlci init` does with DVC_HTTP_USER and DVC_HTTP_PASSWORD."""
    project.dvc("remote", "modify", "--local", "storage", "auth", "basic")
    project.dvc("remote", "modify", "--local", "storage", "user", user)
    project.dvc("remote", "modify", "--local", "storage", "password", password)


@pytest.fixture
def project(http_template: Path, store: HttpStore, tmp_path: Path) -> DvcProject:
    proj = copy_template(http_template, tmp_path / "copy")
    proj.dvc("remote", "add", "-f", "-d", "storage", store.url)
    use_basic(proj, store.user, store.password)
    proj.commit("data over HTTP")
    proj.forget_local_data()
    return proj


def test_basic_auth_pulls(project: DvcProject, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = pull(project, capsys)
    assert code == EXIT_OK, err
    assert (project.root / "data" / "data.csv").exists()


def test_the_step_of_mlci_init_gives_dvc_the_credentials(
    project: DvcProject, capsys: pytest.CaptureFixture[str], store: HttpStore
) -> None:
    (project.root / ".dvc" / "config.local").unlink()
    env = {**os.environ, "DVC_HTTP_USER": store.user, "DVC_HTTP_PASSWORD": store.password}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"  # the venv's dvc
    script = "\n".join(["set -eu", *workflow.HTTP_LOGIN])
    subprocess.run(["bash", "-c", script], env=env, cwd=project.root, check=True)

    code, err = pull(project, capsys)

    assert code == EXIT_OK, err
    assert "config.local" in (project.root / ".dvc" / ".gitignore").read_text()


def test_a_custom_header_pulls(
    project: DvcProject, capsys: pytest.CaptureFixture[str], store: HttpStore
) -> None:
    project.dvc("remote", "modify", "--local", "storage", "auth", "custom")
    project.dvc("remote", "modify", "--local", "storage", "custom_auth_header", store.header)
    project.dvc("remote", "modify", "--local", "storage", "password", store.token)

    code, err = pull(project, capsys)

    assert code == EXIT_OK, err


def test_no_credentials_is_a_401_not_missing_data(
    project: DvcProject, capsys: pytest.CaptureFixture[str]
) -> None:
    for option in ("auth", "user", "password"):
        project.dvc("remote", "modify", "--local", "--unset", "storage", option)

    code, err = pull(project, capsys)

    assert code == EXIT_EXTERNAL
    assert "'storage' (http://127.0.0.1:" in err
    assert "answered 401 Unauthorized" in err
    assert "no credentials are configured for it" in err
    assert "dvc remote modify --local storage auth basic" in err
    assert "repository secret DVC_HTTP_READONLY_USER and DVC_HTTP_READONLY_PASSWORD" in err
    assert "DVC_HTTP_USER and DVC_HTTP_PASSWORD of the environment mlci-promote" in err
    assert "lacks the data" not in err


@pytest.mark.parametrize("auth", ["basic", "custom"])
def test_wrong_credentials_are_a_401(
    project: DvcProject, capsys: pytest.CaptureFixture[str], store: HttpStore, auth: str
) -> None:
    if auth == "custom":
        project.dvc("remote", "modify", "--local", "storage", "auth", "custom")
        project.dvc("remote", "modify", "--local", "storage", "custom_auth_header", store.header)
    project.dvc("remote", "modify", "--local", "storage", "password", "not-the-password")

    code, err = pull(project, capsys)

    assert code == EXIT_EXTERNAL
    assert "answered 401 Unauthorized" in err
    assert "the user or password (or the custom header's value) is wrong" in err
    assert "not-the-password" not in err


def test_a_user_without_access_is_a_403(
    project: DvcProject, capsys: pytest.CaptureFixture[str], store: HttpStore
) -> None:
    use_basic(project, "nobody", store.password)

    code, err = pull(project, capsys)

    assert code == EXIT_EXTERNAL
    assert "answered 403 Forbidden" in err
    assert "that the user may read the path on the server" in err


def test_basic_auth_without_a_password_is_a_set_up_error(
    project: DvcProject, capsys: pytest.CaptureFixture[str]
) -> None:
    project.dvc("remote", "modify", "--local", "--unset", "storage", "password")

    code, err = pull(project, capsys)

    assert code == EXIT_USAGE
    assert "has auth basic but not its user and password" in err


def test_data_never_pushed_is_a_404_named_as_missing(
    project: DvcProject, capsys: pytest.CaptureFixture[str], store: HttpStore
) -> None:
    project.dvc("remote", "modify", "storage", "url", f"{store.url}/elsewhere")

    code, err = pull(project, capsys)

    assert code == EXIT_EXTERNAL
    assert "lacks the data of data/data.csv" in err
    assert f"is 127.0.0.1:{store.url.rpartition(':')[2]}/elsewhere the right host and path?" in err


def test_credentials_never_go_over_plain_http_to_another_machine(
    project: DvcProject, capsys: pytest.CaptureFixture[str], store: HttpStore
) -> None:
    project.dvc("remote", "modify", "storage", "url", "http://files.example.com/dvc")

    code, err = pull(project, capsys)

    assert code == EXIT_USAGE
    assert (
        "refusing to send the credentials of the DVC remote 'storage' to files.example.com" in err
    )
    assert "use an https:// URL in .dvc/config" in err
    assert store.password not in err


def test_a_closed_port_cannot_be_reached(
    project: DvcProject, capsys: pytest.CaptureFixture[str]
) -> None:
    project.dvc("remote", "modify", "storage", "url", "http://127.0.0.1:9/dvc")

    code, err = pull(project, capsys)

    assert code == EXIT_EXTERNAL
    assert "cannot reach 'storage' (http://127.0.0.1:9/dvc)" in err


def test_doctor_asks_the_remote_with_its_credentials(project: DvcProject, store: HttpStore) -> None:
    ok, message = data.check_remote(project.root)
    assert ok, message

    use_basic(project, store.user, "wrong")
    ok, message = data.check_remote(project.root)
    assert not ok
    assert "answered 401 Unauthorized" in message
