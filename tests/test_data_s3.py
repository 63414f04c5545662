"""DVC's S3 remote against a local S3-compatible server (moto) with IAM enforced.

The server runs on 127.0.0.1 for the session. It knows two users: `reader` (allowed
everything on S3) and `nobody` (allowed nothing), so a wrong key, a wrong secret and a
key without permission each get the real 403 that DVC sees.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlci import data
from mlci.cli import main
from mlci.errors import EXIT_EXTERNAL, EXIT_OK
from tests.dvc_project import DvcProject, build_template, copy_template
from tests.servers import S3Server

pytestmark = pytest.mark.slow
BUCKET = "mlci-data"


@pytest.fixture(scope="session")
def bucket(s3_server: S3Server) -> str:
    s3_server.client().create_bucket(Bucket=BUCKET)
    return BUCKET


@pytest.fixture(scope="session")
def s3_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_template(tmp_path_factory.mktemp("dvc-s3-template"))


def use_keys(monkeypatch: pytest.MonkeyPatch, keys: tuple[str, str] | None) -> None:
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance-metadata probe
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    if keys is None:
        monkeypatch.delenv("AWS_ACCESS_KEY_ID", raising=False)
        monkeypatch.delenv("AWS_SECRET_ACCESS_KEY", raising=False)
        return
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", keys[0])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", keys[1])


@pytest.fixture
def project(
    s3_template: Path,
    s3_server: S3Server,
    bucket: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> DvcProject:
    """The project with an S3 remote (a fresh prefix per test), its data pushed there."""
    proj = copy_template(s3_template, tmp_path / "copy")
    prefix = tmp_path.name.replace("_", "-")
    proj.dvc("remote", "add", "-f", "-d", "storage", f"s3://{bucket}/{prefix}")
    proj.dvc("remote", "modify", "storage", "endpointurl", s3_server.url)
    use_keys(monkeypatch, s3_server.reader)
    proj.dvc("push", "-q")
    proj.commit("data on S3")
    proj.forget_local_data()
    return proj


def pull(project: DvcProject, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["data", "pull", "--config", str(project.config)])
    return code, capsys.readouterr().err


def test_the_right_key_pulls(project: DvcProject, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = pull(project, capsys)
    assert code == EXIT_OK, err
    assert (project.root / "data" / "data.csv").exists()


def test_no_credentials_names_the_ci_secrets(
    project: DvcProject, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    use_keys(monkeypatch, None)

    code, err = pull(project, capsys)

    assert code == EXIT_EXTERNAL
    assert "DVC found no credentials for 'storage' (s3://mlci-data/" in err
    assert "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY in the CI job" in err
    assert "Unable to locate credentials" in err


@pytest.mark.parametrize("case", ["unknown key", "wrong secret", "no permission"])
def test_a_403_says_it_cannot_tell_which_credential_is_wrong(
    project: DvcProject,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    s3_server: S3Server,
    case: str,
) -> None:
    keys = {
        "unknown key": ("AKIAUNKNOWNKEY000000", s3_server.reader[1]),
        "wrong secret": (s3_server.reader[0], "not-the-secret-at-all"),
        "no permission": s3_server.nobody,
    }[case]
    use_keys(monkeypatch, keys)

    code, err = pull(project, capsys)

    assert code == EXIT_EXTERNAL
    assert "refused the credentials (403 Forbidden)" in err
    assert "cannot tell whether the key is wrong, the secret is wrong, or the key lacks" in err
    assert "s3:GetObject" in err
    assert keys[1] not in err  # the secret is never shown


def test_a_missing_bucket_is_named(
    project: DvcProject, capsys: pytest.CaptureFixture[str], s3_server: S3Server
) -> None:
    # With one object DVC asks for it alone (HeadObject: 404, as if it were missing);
    # with more it lists the bucket first, and S3 answers NoSuchBucket.
    project.dvc("remote", "modify", "storage", "url", "s3://no-such-bucket/store")
    code, err = pull(project, capsys)
    assert code == EXIT_EXTERNAL
    assert "is no-such-bucket/store the right bucket and path?" in err

    (project.root / "data" / "extra.csv").write_text("1\n2\n")
    project.dvc("add", "-q", "data/extra.csv")
    project.forget_local_data()
    (project.root / "data" / "extra.csv").unlink()
    code, err = pull(project, capsys)
    assert code == EXIT_EXTERNAL
    assert "the bucket of 'storage' (s3://no-such-bucket/store) does not exist" in err


def test_objects_missing_on_s3_name_the_files(
    project: DvcProject, capsys: pytest.CaptureFixture[str]
) -> None:
    project.set_data(77, push=False)
    project.commit("data v2, never pushed")
    project.forget_local_data()

    code, err = pull(project, capsys)

    assert code == EXIT_EXTERNAL
    assert "lacks the data of data/data.csv" in err
    assert "without `dvc push` (or the remote's URL is wrong" in err


def test_check_remote_asks_the_bucket(
    project: DvcProject, monkeypatch: pytest.MonkeyPatch, s3_server: S3Server
) -> None:
    ok, message = data.check_remote(project.root)
    assert ok, message

    use_keys(monkeypatch, s3_server.nobody)
    ok, message = data.check_remote(project.root)
    assert not ok
    assert "403" in message or "AccessDenied" in message or "refused" in message, message
