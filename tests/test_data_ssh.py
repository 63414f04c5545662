"""DVC's SSH remote against Debian's sshd on 127.0.0.1, with throwaway keys.

The server (started once) accepts a key without a passphrase and one with a passphrase,
and refuses any other. Each test has its own HOME (conftest), so its ~/.ssh/ holds what
a CI job's would: the key the job wrote and the host's line in known_hosts, or not.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlci import data
from mlci.core import workflow
from mlci.errors import EXIT_EXTERNAL, EXIT_OK, EXIT_USAGE
from tests.dvc_project import DvcProject, build_template, copy_template
from tests.dvc_project import data_pull as pull
from tests.servers import SshServer, ssh_server, sshd_program

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        sshd_program() is None or shutil.which("ssh") is None,
        reason="Debian's openssh-server and openssh-client are not installed "
        "(apt-get install openssh-server; .ci/run installs it)",
    ),
]


@pytest.fixture(scope="session")
def sshd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SshServer]:
    pytest.importorskip("dvc_ssh", reason="dvc-ssh is not installed: pip install 'dvc[ssh]'")
    with ssh_server(tmp_path_factory.mktemp("sshd")) as server:
        yield server


@pytest.fixture(scope="session")
def ssh_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_template(tmp_path_factory.mktemp("dvc-ssh-template"))


def give_key(key: Path | None, known_hosts: Path | None) -> Path:
    """What the CI step of `mlci init` writes into ~/.ssh/: the key and the host's key."""
    ssh = Path.home() / ".ssh"
    ssh.mkdir(mode=0o700, exist_ok=True)
    (ssh / "config").unlink(missing_ok=True)
    (ssh / "known_hosts").unlink(missing_ok=True)
    if key is not None:
        shutil.copy(key, ssh / "dvc_key")
        (ssh / "dvc_key").chmod(0o600)
        (ssh / "config").write_text("IdentityFile ~/.ssh/dvc_key\n")
    if known_hosts is not None:
        shutil.copy(known_hosts, ssh / "known_hosts")
    return ssh


@pytest.fixture
def project(
    ssh_template: Path, sshd: SshServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> DvcProject:
    """The project with an SSH remote (a folder of its own on the server), data pushed."""
    proj = copy_template(ssh_template, tmp_path / "copy")
    store = tmp_path / "store"
    proj.dvc(
        "remote", "add", "-f", "-d", "storage", f"ssh://{sshd.user}@{sshd.host}:{sshd.port}{store}"
    )
    give_key(sshd.key, sshd.known_hosts)
    proj.dvc("push", "-q")
    proj.commit("data on SSH")
    proj.forget_local_data()
    return proj


def test_the_key_in_ssh_pulls(project: DvcProject, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = pull(project, capsys)
    assert code == EXIT_OK, err
    assert (project.root / "data" / "data.csv").exists()
    assert "added from 'storage' (ssh://" in err


def test_the_step_of_mlci_init_gives_dvc_the_key_and_the_host_key(
    project: DvcProject, capsys: pytest.CaptureFixture[str], sshd: SshServer
) -> None:
    shutil.rmtree(Path.home() / ".ssh")
    env = {
        **os.environ,
        workflow.SSH_KEY_SECRET: sshd.key.read_text(),
        workflow.SSH_KNOWN_HOSTS_VARIABLE: sshd.known_hosts.read_text().strip(),
    }
    script = "\n".join(["set -eu", *workflow.SSH_LOGIN])
    subprocess.run(["bash", "-c", script], env=env, check=True)

    assert (Path.home() / ".ssh" / "dvc_key").stat().st_mode & 0o777 == 0o600
    code, err = pull(project, capsys)
    assert code == EXIT_OK, err

    env[workflow.SSH_KNOWN_HOSTS_VARIABLE] = ""
    stopped = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True)
    assert stopped.returncode == 1
    assert "DVC_SSH_KNOWN_HOSTS is empty" in stopped.stderr


def test_an_unknown_host_key_is_refused_before_dvc_connects(
    project: DvcProject, capsys: pytest.CaptureFixture[str], sshd: SshServer
) -> None:
    # DVC's SSH remote would connect to any host key; mlci does not let it.
    give_key(sshd.key, None)

    code, err = pull(project, capsys)

    assert code == EXIT_EXTERNAL
    assert "presents a host key that is not in known_hosts" in err
    assert f"ssh-keyscan -p {sshd.port} 127.0.0.1" in err
    assert "DVC_SSH_KNOWN_HOSTS" in err
    assert not (project.root / "data" / "data.csv").exists()


def test_a_changed_host_key_is_refused(
    project: DvcProject, capsys: pytest.CaptureFixture[str], sshd: SshServer, tmp_path: Path
) -> None:
    other = tmp_path / "known_hosts"
    wrong = sshd.other_key.with_suffix(".pub").read_text().split()[:2]
    other.write_text(f"[127.0.0.1]:{sshd.port} {' '.join(wrong)}\n")
    give_key(sshd.key, other)

    code, err = pull(project, capsys)

    assert code == EXIT_EXTERNAL
    assert "presents a host key that differs from the one in known_hosts" in err


@pytest.mark.parametrize("case", ["no key", "wrong key", "wrong user"])
def test_a_refused_login_names_the_key_secret(
    project: DvcProject, capsys: pytest.CaptureFixture[str], sshd: SshServer, case: str
) -> None:
    give_key(None if case == "no key" else sshd.other_key if case == "wrong key" else sshd.key,
             sshd.known_hosts)  # fmt: skip
    if case == "wrong user":
        project.dvc("remote", "modify", "--local", "storage", "user", "nosuchuser")

    code, err = pull(project, capsys)

    assert code == EXIT_EXTERNAL
    user = "nosuchuser" if case == "wrong user" else sshd.user
    assert "'storage' (ssh://" in err
    assert f"refused the SSH login of user {user} on 127.0.0.1" in err
    assert "Put the private key in the secret DVC_SSH_KEY" in err
    assert "repository secret DVC_SSH_READONLY_KEY" in err
    assert "environment mlci-promote" in err


def test_a_key_with_a_passphrase_says_how_to_give_it_or_use_a_deploy_key(
    project: DvcProject, capsys: pytest.CaptureFixture[str], sshd: SshServer
) -> None:
    give_key(sshd.locked_key, sshd.known_hosts)

    code, err = pull(project, capsys)
    assert code == EXIT_USAGE, err
    assert "is protected by a passphrase, and nothing gives DVC the passphrase in CI" in err
    assert "ssh-keygen -t ed25519 -N ''" in err
    assert 'dvc remote modify --local storage passphrase "$SSH_PASSPHRASE"' in err

    project.dvc("remote", "modify", "--local", "storage", "passphrase", "not-it")
    code, err = pull(project, capsys)
    assert code == EXIT_USAGE
    assert "the passphrase of the SSH key for 'storage'" in err
    assert "not-it" not in err

    project.dvc("remote", "modify", "--local", "storage", "passphrase", sshd.passphrase)
    code, err = pull(project, capsys)
    assert code == EXIT_OK, err


def test_a_missing_path_names_host_and_path(
    project: DvcProject, capsys: pytest.CaptureFixture[str], sshd: SshServer
) -> None:
    url = f"ssh://{sshd.user}@127.0.0.1:{sshd.port}/no/such/store"
    project.dvc("remote", "modify", "storage", "url", url)

    code, err = pull(project, capsys)

    assert code == EXIT_EXTERNAL
    assert "lacks the data of data/data.csv" in err
    assert f"is 127.0.0.1:{sshd.port}/no/such/store the right host and path?" in err


def test_a_path_the_user_may_not_read_is_named(
    project: DvcProject, capsys: pytest.CaptureFixture[str], sshd: SshServer, tmp_path: Path
) -> None:
    url = f"ssh://{sshd.user}@127.0.0.1:{sshd.denied_port}{tmp_path / 'store'}"
    project.dvc("remote", "modify", "storage", "url", url)

    code, err = pull(project, capsys)

    assert code == EXIT_EXTERNAL
    assert "let the user log in but not read 127.0.0.1:" in err
    assert "give the user read permission on it there" in err


def test_a_closed_port_cannot_be_reached(
    project: DvcProject, capsys: pytest.CaptureFixture[str], sshd: SshServer
) -> None:
    project.dvc("remote", "modify", "storage", "url", f"ssh://{sshd.user}@127.0.0.1:9/store")

    code, err = pull(project, capsys)

    assert code == EXIT_EXTERNAL
    assert "cannot reach 'storage' (ssh://" in err


def test_doctor_checks_the_host_key_and_the_login(project: DvcProject, sshd: SshServer) -> None:
    ok, message = data.check_remote(project.root)
    assert ok, message

    give_key(sshd.other_key, sshd.known_hosts)
    ok, message = data.check_remote(project.root)
    assert not ok
    assert "refused the SSH login" in message

    give_key(sshd.key, None)
    ok, message = data.check_remote(project.root)
    assert not ok
    assert "not in known_hosts" in message
