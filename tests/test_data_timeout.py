"""`dvc pull` and `mlci doctor` bounded in time, with real DVC against remotes on 127.0.0.1:
an S3 endpoint that accepts connections and never answers (a blackholed endpoint), and an
HTTP remote that answers slowly but steadily (which must not be taken for a stall)."""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlci import pipeline
from mlci.cli import main
from mlci.config import DataConfig, parse_config
from mlci.console import Console
from mlci.errors import EXIT_EXTERNAL, EXIT_OK, ConfigError
from mlci.pipeline import preflight as doctor
from tests.dvc_project import DvcProject, build_template, copy_template
from tests.servers import SilentServer, silent_server, trickle_server

BASE = "version: 1\nmodel: {name: m}\nevaluate: {metrics: [m.json]}\n"


def test_data_limits_default_and_are_validated(tmp_path: Path) -> None:
    defaults = parse_config(BASE, root=tmp_path).data
    assert (defaults.timeout_minutes, defaults.stall_minutes) == (30.0, 5.0)
    config = parse_config(BASE + "data: {timeout_minutes: 90, stall_minutes: 0.5}", root=tmp_path)
    assert config.data == DataConfig(timeout_minutes=90.0, stall_minutes=0.5)

    with pytest.raises(ConfigError) as error:
        parse_config(BASE + "data: {timeout_minutes: 0, stall_minutes: five}", root=tmp_path)
    assert "data.timeout_minutes: expected a number above 0, got 0" in error.value.message
    assert 'data.stall_minutes: expected a number, got "five"' in error.value.message


# -- against real servers ----------------------------------------------------------------


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_template(tmp_path_factory.mktemp("dvc-timeout-template"))


@pytest.fixture
def stuck(
    template: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[DvcProject, SilentServer]]:
    """The project with its S3 remote's endpoint on a server that never answers."""
    pytest.importorskip("dvc_s3")
    project = copy_template(template, tmp_path / "copy")
    with silent_server() as server:
        project.dvc("remote", "add", "-f", "-d", "storage", "s3://mlci-data/store")
        project.dvc("remote", "modify", "storage", "endpointurl", server.url)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
        project.forget_local_data()
        yield project, server


def set_limits(project: DvcProject, *, timeout: float, stall: float) -> None:
    project.edit_config(
        "data: {dvc: true}",
        f"data: {{dvc: true, timeout_minutes: {timeout}, stall_minutes: {stall}}}",
    )


@pytest.mark.slow
def test_a_pull_that_hears_nothing_is_stopped_as_stalled_and_the_report_lands(
    stuck: tuple[DvcProject, SilentServer],
) -> None:
    project, server = stuck
    set_limits(project, timeout=5, stall=0.05)  # 3 s without output or data arriving
    log = io.StringIO()
    started = time.monotonic()

    outcome = pipeline.run(
        config_path=project.config,
        env=dict(os.environ),
        console=Console(log),
        options=pipeline.RunOptions(promote="never"),
    )

    assert time.monotonic() - started < 60
    assert outcome.exit_code == EXIT_EXTERNAL, log.getvalue()
    error = outcome.report.error or ""
    assert error.startswith(
        f"dvc pull from 'storage' (s3://mlci-data/store) at {server.url} stalled: no output "
        f"and no data arriving for 3 s (data.stall_minutes), so it was stopped after "
    )
    assert "; no data had arrived. The remote accepts the connection but does not answer" in error
    assert "check that it answers from this runner (its url and endpointurl in .dvc/config" in error
    assert "raise data.stall_minutes" in error
    assert "wJalrXUtnFEMIK7MDENG" not in log.getvalue()
    assert "mlci data: dvc pull: the data (timeout 5 min, stall 0.05 min)" in log.getvalue()
    gate = project.gate_json()
    assert gate["error"] == {"stage": "data", "message": error, "exit_code": EXIT_EXTERNAL}
    assert "failed at data" in project.report()
    # DVC reached the endpoint, and was killed: nothing holds a connection any more.
    assert server.accepted >= 1
    assert server.wait_all_closed(), "dvc still holds its connection to the endpoint"
    assert not (project.root / "metrics.json").exists()  # training never started


@pytest.mark.slow
def test_data_pull_times_out_and_names_the_limit(
    stuck: tuple[DvcProject, SilentServer], capsys: pytest.CaptureFixture[str]
) -> None:
    project, server = stuck
    set_limits(project, timeout=0.08, stall=5)  # 4.8 s in all
    started = time.monotonic()

    code = main(["data", "pull", "--config", str(project.config)])

    assert time.monotonic() - started < 60
    assert code == EXIT_EXTERNAL
    err = capsys.readouterr().err
    assert f"dvc pull from 'storage' (s3://mlci-data/store) at {server.url} timed out: " in err
    assert "(data.timeout_minutes: 0.08); no data had arrived. Check that it answers" in err
    assert "or raise data.timeout_minutes in mlci.yaml" in err
    assert server.wait_all_closed(), "dvc still holds its connection to the endpoint"


@pytest.mark.slow
def test_doctor_bounds_its_question_to_the_remote(stuck: tuple[DvcProject, SilentServer]) -> None:
    project, server = stuck
    set_limits(project, timeout=0.05, stall=5)  # doctor waits min(60 s, data.timeout_minutes)
    started = time.monotonic()

    result = doctor.check_dvc(doctor.context_for(project.config, dict(os.environ)))

    assert time.monotonic() - started < 60
    assert result.status == "fail"
    assert result.detail.startswith(
        f"'storage' (s3://mlci-data/store) at {server.url} did not answer `dvc status --cloud` "
        f"within 3."
    )
    assert "check that it answers from this runner" in result.detail
    assert "`mlci run` would wait for it up to data.timeout_minutes" in result.detail
    assert "wJalrXUtnFEMIK7MDENG" not in result.line()
    assert server.wait_all_closed()


@pytest.mark.slow
def test_a_slow_but_steady_pull_is_not_a_stall(
    template: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = copy_template(template, tmp_path / "copy")
    project.set_data(40_000)  # ~230 kB, pushed to the local remote
    size = (project.root / "data" / "data.csv").stat().st_size
    project.forget_local_data()
    stall = 0.06  # 3.6 s; the file takes about twice that to arrive
    set_limits(project, timeout=2, stall=stall)
    # DVC prints nothing while it downloads: only the bytes arriving show it is alive.
    with trickle_server(project.remote, piece=16384, pause=0.5) as url:
        project.dvc("remote", "add", "-f", "-d", "web", url)
        code = main(["data", "pull", "--json", "--config", str(project.config)])

    captured = capsys.readouterr()
    assert code == EXIT_OK, captured.err
    result = json.loads(captured.out)
    assert result["seconds"] > stall * 60  # longer than the stall limit, yet not stopped
    assert result["bytes"] == size
    assert (project.root / "data" / "data.csv").stat().st_size == size
