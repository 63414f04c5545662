"""DVC data: real `dvc` with a local-directory remote, real git repositories."""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlci import data, git, pipeline
from mlci.cli import main
from mlci.config import DataConfig, parse_config
from mlci.console import Console
from mlci.data.pulling import _Expected, _Progress
from mlci.errors import EXIT_EXTERNAL, EXIT_OK, EXIT_USAGE, ConfigError, UsageError
from mlci.registry.mlflow import MlflowRegistry
from tests.dvc_project import DvcProject, build_template, copy_template, dvc


@pytest.fixture(scope="session")
def dvc_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_template(tmp_path_factory.mktemp("dvc-template"))


@pytest.fixture
def project(dvc_template: Path, tmp_path: Path) -> Iterator[DvcProject]:
    yield copy_template(dvc_template, tmp_path / "copy")


def run(
    project: DvcProject, promote: pipeline.PromoteMode = "never"
) -> tuple[pipeline.Outcome, str]:
    log = io.StringIO()
    outcome = pipeline.run(
        config_path=project.config,
        env=dict(os.environ),
        console=Console(log),
        options=pipeline.RunOptions(promote=promote),
    )
    return outcome, log.getvalue()


# -- config ---------------------------------------------------------------------------


def test_data_section_defaults_and_values(tmp_path: Path) -> None:
    base = "version: 1\nmodel: {name: m}\nevaluate: {metrics: [m.json]}\n"
    assert parse_config(base, root=tmp_path).data == DataConfig()
    config = parse_config(
        base + "data: {dvc: true, remote: storage, jobs: 4, run_cache: true, targets: [a.dvc]}",
        root=tmp_path,
    )
    assert config.data == DataConfig(
        dvc=True, remote="storage", jobs=4, run_cache=True, targets=("a.dvc",)
    )


def test_data_section_errors_name_the_key(tmp_path: Path) -> None:
    base = "version: 1\nmodel: {name: m}\nevaluate: {metrics: [m.json]}\n"
    with pytest.raises(ConfigError) as error:
        parse_config(base + "data: {dvc: yes please, jobs: 0, remot: s}", root=tmp_path)
    message = error.value.message
    assert "data.dvc: expected true or false" in message
    assert "data.jobs: expected a whole number of at least 1" in message
    assert "data.remot: unknown key; did you mean remote?" in message


# -- pull ------------------------------------------------------------------------------


def test_data_pull_fetches_the_data_and_counts_files_and_bytes(
    project: DvcProject, capsys: pytest.CaptureFixture[str]
) -> None:
    size = (project.root / "data" / "data.csv").stat().st_size
    project.forget_local_data()

    code = main(["data", "pull", "--json", "--config", str(project.config)])

    assert code == EXIT_OK
    result = json.loads(capsys.readouterr().out)
    assert result["fetched"] == 1 and result["added"] == 1
    assert result["bytes"] == size
    assert result["remote"] == {"name": "local", "url": "../../remote", "kind": "local"}
    assert (project.root / "data" / "data.csv").read_text().startswith("0\n1\n")


@pytest.mark.slow
def test_run_pulls_before_training_and_the_report_says_so(project: DvcProject) -> None:
    project.forget_local_data()

    outcome, log = run(project)

    assert outcome.exit_code == EXIT_OK, log
    assert "mlci data: 1 file fetched" in log
    assert outcome.report.candidate["rows"] == 100  # the training read the pulled data
    assert "- Data: 1 file fetched (290 B), 1 added from 'local'" in project.report()
    assert project.gate_json()["data"]["pull"].startswith("1 file fetched")  # type: ignore[index]


@pytest.mark.slow
def test_a_forgotten_dvc_push_exits_3_and_names_the_file(project: DvcProject) -> None:
    project.set_data(120, push=False)
    project.commit("data v2, not pushed")
    project.forget_local_data()

    outcome, _ = run(project)

    assert outcome.exit_code == EXIT_EXTERNAL
    error = outcome.report.error or ""
    assert "lacks the data of data/data.csv" in error
    assert "without `dvc push`" in error
    gate = project.gate_json()
    assert gate["error"] == {"stage": "data", "message": error, "exit_code": 3}
    assert "failed at data" in project.report()


def test_no_remote_configured_is_a_usage_error(
    project: DvcProject, capsys: pytest.CaptureFixture[str]
) -> None:
    project.dvc("remote", "default", "--unset")
    project.forget_local_data()

    code = main(["data", "pull", "--config", str(project.config)])

    assert code == EXIT_USAGE
    assert "dvc remote add -d NAME URL" in capsys.readouterr().err


def test_a_missing_plugin_names_the_pip_extra(
    project: DvcProject, capsys: pytest.CaptureFixture[str]
) -> None:
    # Aliyun OSS: a remote whose plugin no extra of mlci installs (dev has dvc-gs, dvc-azure).
    project.dvc("remote", "add", "-f", "-d", "oss", "oss://some-bucket/store")

    code = main(["data", "pull", "--config", str(project.config)])
    assert code == EXIT_USAGE
    assert "pip install 'dvc[oss]'" in capsys.readouterr().err

    # DVC's own text for it leads to the same fix.
    real = project.dvc("pull", check=False)
    assert real.returncode != 0
    remote = data.read_remote(project.root)
    error = data.diagnose(real.stdout + real.stderr, real.returncode, remote)
    assert isinstance(error, UsageError)
    assert "pip install 'dvc[oss]'" in error.message


def test_progress_lines_count_files_and_bytes_arriving_in_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    stream = io.StringIO()
    progress = _Progress(
        cache, _Expected(files=2, bytes=10), Console(stream), interval=0.02, every=1
    )

    def arrive() -> None:
        time.sleep(0.1)
        (cache / "files" / "md5" / "ab").mkdir(parents=True)
        (cache / "files" / "md5" / "ab" / "cdef").write_bytes(b"12345")
        time.sleep(0.2)

    with progress.running():
        worker = threading.Thread(target=arrive)
        worker.start()
        worker.join()

    assert progress.files == 1 and progress.bytes == 5
    assert "mlci data: pulling: 1 of ~2 files, 5 B of ~10 B" in stream.getvalue()


def test_data_status_never_imports_dvc(project: DvcProject) -> None:
    from tests.test_cli import _imported_heavy_modules

    assert _imported_heavy_modules(["data", "status"], project.root) == []


# -- lineage ---------------------------------------------------------------------------


@pytest.mark.slow
def test_the_report_says_whether_data_changed_since_the_git_baseline(
    project: DvcProject,
) -> None:
    project.edit_config("data: {dvc: true}", "data: {dvc: false}")
    project.edit_config("command: dvc repro", "command: python train.py")
    (project.root / ".gitignore").write_text(".mlci/\nmodel/\n")  # metrics committed
    assert run(project)[0].exit_code == EXIT_OK
    project.edit_config("baseline: none", "baseline: git")
    project.commit("train without dvc repro, metrics in git")
    old = project.data_hash()
    git.switch(project.root, "same-data", create=True)

    outcome, log = run(project)

    assert outcome.exit_code == EXIT_OK, log
    assert "Data changed since the baseline: no (1 dataset)" in project.report()
    assert project.gate_json()["data"]["changed"] is False  # type: ignore[index]

    git.switch(project.root, "main")
    git.switch(project.root, "new-data", create=True)
    new = project.set_data(150)
    project.commit("data v2")

    outcome, log = run(project)

    report = project.report()
    assert "Data changed since the baseline: yes (1 of 1 dataset: data/data.csv)" in report
    assert f"| data/data.csv | {old[:8]} | {new[:8]} | changed |" in report
    datasets = project.gate_json()["data"]["datasets"]  # type: ignore[index]
    assert datasets == [
        {"path": "data/data.csv", "hash": new, "baseline_hash": old, "status": "changed"}
    ]


@pytest.mark.slow
def test_the_registry_version_carries_the_hashes_and_the_next_run_compares(
    project: DvcProject, empty_registry_db: Path
) -> None:
    project.edit_config("baseline: none", "baseline: auto")
    project.edit_config("command: dvc repro", "command: python train.py")
    project.use_registry(empty_registry_db)
    project.commit("registry baseline")
    first = project.data_hash()

    outcome, log = run(project, promote="auto")
    assert outcome.exit_code == EXIT_OK, log
    registry = MlflowRegistry(f"sqlite:///{project.root / '.mlci' / 'mlflow.db'}")
    champion = registry.by_alias("dvc-model", "champion")
    assert champion is not None and champion.data == {"data/data.csv": first}

    git.switch(project.root, "new-data", create=True)
    second = project.set_data(130)
    project.commit("data v2")
    # model/ was made by `python train.py`, not `dvc repro`: DVC has not saved it.
    outcome, log = run(project)
    assert outcome.exit_code == EXIT_USAGE, log
    assert "dvc pull would overwrite files in the work tree" in (outcome.report.error or "")
    project.edit_config("data: {dvc: true}", "data: {dvc: false}")
    outcome, log = run(project)

    assert outcome.exit_code == EXIT_OK, log
    assert outcome.report.baseline_data == {"data/data.csv": first}
    assert outcome.report.data == {"data/data.csv": second}
    changed = "Data changed since the baseline: yes (1 of 1 dataset: data/data.csv)"
    assert changed in project.report()


def test_datasets_are_dvc_files_and_inputs_that_no_stage_makes(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    git.init_repo(root)
    (root / ".dvc").mkdir()
    (root / "raw").mkdir()
    (root / "raw" / "images.dvc").write_text(
        "outs:\n- md5: a3bddc914bb391a81192fe49c4770900.dir\n  size: 3612\n  nfiles: 200\n"
        "  hash: md5\n  path: images\n"
    )
    (root / "src").mkdir()
    (root / "src" / "train.py").write_text("print('code, not data')\n")
    # dvc.lock as DVC 3 writes it: prepare reads the images and a file on S3 that no stage
    # makes; its output feeds train; train's is the model.
    (root / "dvc.lock").write_text(
        textwrap.dedent(
            """\
            schema: '2.0'
            stages:
              prepare:
                cmd: python prepare.py
                deps:
                - path: raw/images/cats
                  hash: md5
                  md5: 0b0a5b6e9bd93b2c1d54a5ec3e3b1b7e.dir
                - path: s3://acme/labels.csv
                  etag: 5d41402abc4b2a76b9719d911017c592
                outs:
                - path: features.parquet
                  hash: md5
                  md5: 24e802fdf6d7d3c716d42583a7387e96
                  size: 3612
              train:
                cmd: python src/train.py
                deps:
                - path: features.parquet
                  hash: md5
                  md5: 24e802fdf6d7d3c716d42583a7387e96
                - path: src
                  hash: md5
                  md5: 0eeb8c08b1ac64823ccc6092e6edd048.dir
                outs:
                - path: model/model.txt
                  hash: md5
                  md5: bdd06d631c00c29a2e237734ef850b46
            """
        )
    )
    found = data.datasets(root)
    assert [(d.path, d.short, d.files, d.source) for d in found] == [
        ("raw/images", "a3bddc91/", 200, "raw/images.dvc"),
        ("s3://acme/labels.csv", "5d41402a", None, "dvc.lock (input of stage prepare)"),
    ]
    assert data.lineage(root) == {
        "raw/images": "a3bddc914bb391a81192fe49c4770900.dir",
        "s3://acme/labels.csv": "5d41402abc4b2a76b9719d911017c592",
    }
    everything = {d.path for d in data.datasets(root, everything=True)}
    assert {"features.parquet", "model/model.txt"} <= everything


def test_data_status_compares_with_a_ref(
    project: DvcProject, capsys: pytest.CaptureFixture[str]
) -> None:
    old = project.data_hash()
    new = project.set_data(111, push=False)
    project.commit("data v2")

    assert main(["data", "status", "--ref", "HEAD~1", "--config", str(project.config)]) == 0
    text = capsys.readouterr().out
    assert f"data/data.csv  {new[:8]}" in text
    assert f"was {old[:8]}" in text
    assert "data changed since HEAD~1: yes" in text
    assert "remote: 'local' (../../remote), local" in text

    assert main(["data", "status", "--json", "--config", str(project.config)]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["changed"] is None
    assert listed["datasets"][0]["hash"] == new
    assert listed["datasets"][0]["source"] == "data/data.csv.dvc"


@pytest.mark.slow
def test_a_shallow_clone_names_the_fetch_depth_fix(
    project: DvcProject, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project.set_data(105)
    project.commit("data v2")
    clone = tmp_path / "shallow"
    subprocess.run(
        ["git", "clone", "-q", "--depth", "1", project.root.as_uri(), str(clone)], check=True
    )

    code = main(["data", "status", "--ref", "HEAD~1", "--config", str(clone / "mlci.yaml")])

    assert code == EXIT_USAGE
    err = capsys.readouterr().err
    assert "unknown git revision 'HEAD~1': this is a shallow clone" in err
    assert "fetch-depth: 0" in err

    # DVC's own failure for a revision the clone lacks leads to the same fix.
    real = dvc(clone, "diff", "HEAD~1", check=False)
    assert real.returncode != 0
    error = data.diagnose(real.stdout + real.stderr, real.returncode, data.read_remote(clone))
    assert isinstance(error, UsageError) and "fetch-depth: 0" in error.message


# -- reuse -----------------------------------------------------------------------------


@pytest.mark.slow
def test_a_second_run_reuses_the_training_and_says_so(project: DvcProject) -> None:
    outcome, log = run(project)
    assert outcome.exit_code == EXIT_OK, log
    assert "Running stage 'train'" in log
    assert outcome.report.training_reused is None
    project.dvc("push", "-q")
    project.commit("dvc.lock of the first training")

    outcome, log = run(project)

    assert outcome.exit_code == EXIT_OK, log
    assert "Running stage 'train'" not in log
    reused = "training reused from cache: stage 'train' unchanged"
    assert outcome.report.training_reused == reused
    assert f"♻️ {reused}" in project.report()
    assert project.gate_json()["training"]["reused"] is True  # type: ignore[index]

    # A fresh runner: outputs gone, restored from the cache instead of training again.
    shutil.rmtree(project.root / "model")
    (project.root / "metrics.json").unlink()
    outcome, log = run(project)
    assert outcome.exit_code == EXIT_OK, log
    assert "Running stage 'train'" not in log
    assert outcome.report.training_reused == (
        "training reused from cache: stage 'train' restored from the run cache"
    )
    assert outcome.report.candidate["rows"] == 100


@pytest.mark.slow
def test_another_runner_reuses_the_training_through_the_run_cache(
    project: DvcProject,
) -> None:
    # What docs/data.md asks for: every output cached, outputs and run cache pushed,
    # data.run_cache (dvc pull --run-cache) and dvc repro --pull.
    (project.root / "dvc.yaml").write_text(
        (project.root / "dvc.yaml")
        .read_text()
        .replace("metrics.json: {cache: false}", "metrics.json")
    )
    project.edit_config("command: dvc repro", "command: dvc repro --pull")
    project.edit_config("data: {dvc: true}", "data: {dvc: true, run_cache: true}")
    project.commit("pipeline ready for the run cache")
    outcome, log = run(project)
    assert outcome.exit_code == EXIT_OK, log
    project.dvc("push", "-q", "--run-cache")  # CI on main, after training; no dvc.lock commit

    runner = project.root.parent / "runner"  # a fresh clone: no cache, no outputs
    subprocess.run(["git", "clone", "-q", str(project.root), str(runner)], check=True)
    fresh = DvcProject(runner)
    outcome, log = run(fresh)

    assert outcome.exit_code == EXIT_OK, log
    assert "Running stage 'train'" not in log
    assert outcome.report.training_reused == (
        "training reused from cache: stage 'train' restored from the run cache"
    )
    assert outcome.report.candidate["rows"] == 100


def test_dvc_repro_output_is_read_as_dvc_prints_it() -> None:
    # From reference/dvc.md: real `dvc repro` output.
    ran = data.read_repro_output(
        [
            "'data/data.csv.dvc' didn't change, skipping",
            "Running stage 'train':",
            "> python src/train.py",
            "Updating lock file 'dvc.lock'",
        ]
    )
    assert ran.ran == ("train",) and ran.describe() is None
    restored = data.read_repro_output(
        [
            "'data/data.csv.dvc' didn't change, skipping",
            "Stage 'prepare' didn't change, skipping",
            "Stage 'train' is cached - skipping run, checking out outputs",
            "Updating lock file 'dvc.lock'",
        ]
    )
    assert restored.describe() == (
        "training reused from cache: stage 'train' restored from the run cache; "
        "stage 'prepare' unchanged"
    )
    assert data.is_repro("dvc repro --pull train") and data.is_repro(("dvc", "repro"))
    assert not data.is_repro("python train.py")


# -- messages --------------------------------------------------------------------------


def test_messages_never_show_a_secret_from_the_environment() -> None:
    remote = data.Remote("s3", "s3://bucket/store")
    output = "ERROR: unexpected error - bad key wJalrXUtnFEMIK7MDENG in request\n"
    secret = {"AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMIK7MDENG"}
    error = data.diagnose(output, 255, remote, env=secret)
    assert "wJalrXUtnFEMIK7MDENG" not in error.message
    assert "***" in error.message
    shown = data.Remote("h", "https://user:hunter22@example.invalid/dvc").shown
    assert "hunter22" not in shown and "***@example.invalid" in shown


def test_check_remote_for_doctor(project: DvcProject) -> None:
    ok, message = data.check_remote(project.root)
    assert ok, message
    assert "'local'" in message

    shutil.rmtree(project.remote)
    project.dvc("remote", "default", "--unset")
    ok, message = data.check_remote(project.root)
    assert not ok
    assert "dvc remote add -d NAME URL" in message


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("s3://bucket/store", "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
        ("gs://bucket/store", "set GOOGLE_APPLICATION_CREDENTIALS"),
        ("azure://container/store", "AZURE_CLIENT_ID, AZURE_CLIENT_SECRET and AZURE_TENANT_ID"),
        ("ssh://dvc@store.example.com/srv", "a private key the job writes to ~/.ssh/"),
        ("https://files.example.com/dvc", "dvc remote modify --local REMOTE user"),
    ],
)
def test_each_remote_kind_names_what_the_ci_job_needs(url: str, named: str) -> None:
    output = (
        "ERROR: failed to connect to remote (store) - Unable to locate credentials\n"
        "ERROR: failed to pull data from the cloud - 2 files failed to download\n"
    )
    error = data.diagnose(output, 1, data.Remote("storage", url))
    assert error.exit_code == EXIT_EXTERNAL
    assert named in error.message


def test_a_file_named_like_a_status_code_is_not_a_403() -> None:
    output = (
        "ERROR: failed to pull data from the cloud - Checkout failed for following targets:\n"
        "data/403-forbidden.csv\nIs your cache up to date?\n"
    )
    error = data.diagnose(output, 1, data.Remote("storage", "s3://bucket/store"))
    assert "lacks the data of data/403-forbidden.csv" in error.message
