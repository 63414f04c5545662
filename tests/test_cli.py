"""The command line as users meet it: help, version, exit codes, and a fast start."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from benchmarks.startup import GATE_ARGS, METRICS_GATE_ARGS, write_metrics_project, write_project

from mlci import __version__, git
from mlci.cli import main
from tests.conftest import Project

COMMANDS = [
    ["run"],
    ["gate"],
    ["report"],
    ["init"],
    ["demo"],
    ["rollback"],
    ["registry"],
    ["registry", "show"],
    ["registry", "history"],
    ["registry", "repair"],
]
HEAVY = (
    "mlflow",
    "dvc",
    "matplotlib",
    "pandas",
    "sklearn",
    "sky",
    "ray",
    "duckdb",
    "pyspark",
    "fsspec",
)
# What `mlci gate` on files (predictions, no registry, no forge) does not use, so does not
# import: the HTTP client, DVC's remote access, the registry's seam, the engines of
# train.on and evaluate.engine, pyarrow's compute functions (a few hundred rows' text is
# converted value by value). benchmarks/startup.py times that gate.
UNUSED_BY_GATE = (
    "urllib.request",
    "http.client",
    "mlci.http",
    "mlci.forges.remote",
    "mlci.data.access",
    "mlci.registry.base",
    "mlci.remote.base",
    "mlci.scan.sql",
    "pyarrow.compute",
)
# What a gate on metrics files alone (no predictions, as most projects gate) computes
# nothing with, so does not import: the array libraries and mlci's array code.
# benchmarks/startup.py times that gate too.
ARRAY_CODE = (
    "numpy",
    "pyarrow",
    "mlci.core.predictions",
    "mlci.core.flipped",
    "mlci.core.report.figures",
    "mlci.pipeline.figures",
    "mlci.plots",
)


def mlci(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mlci", *args], cwd=cwd, capture_output=True, text=True, check=False
    )


def test_version() -> None:
    result = mlci("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"mlci {__version__}"


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main([*command, "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: mlci {' '.join(command)}")
    assert len(out.splitlines()) > 4  # a description, not just the usage line


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def test_unknown_option_exits_2_and_points_at_help() -> None:
    result = mlci("run", "--frobnicate")
    assert result.returncode == 2
    assert "unrecognized arguments: --frobnicate" in result.stderr
    assert "mlci run --help" in result.stderr


def test_missing_config_exits_2_and_names_mlci_init(tmp_path: Path) -> None:
    result = mlci("run", cwd=tmp_path)
    assert result.returncode == 2
    assert "no mlci.yaml" in result.stderr
    assert "mlci init" in result.stderr


def _imported_heavy_modules(
    args: list[str], cwd: Path, modules: tuple[str, ...] = HEAVY
) -> list[str]:
    """Those of `modules` (or of their submodules) that `mlci ARGS` imported."""
    script = textwrap.dedent(
        f"""
        import sys
        from mlci.cli import main
        try:
            main({args!r})
        except SystemExit:
            pass
        names = {modules!r}
        loaded = [n for n in names if any(m == n or m.startswith(n + ".") for m in sys.modules)]
        print(sorted(loaded), file=sys.stderr)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=cwd, capture_output=True, text=True, check=False
    )
    last_line = result.stderr.strip().splitlines()[-1]
    loaded: list[str] = json.loads(last_line.replace("'", '"'))
    return loaded


def test_help_imports_no_heavy_library(tmp_path: Path) -> None:
    assert _imported_heavy_modules(["--help"], tmp_path) == []


def test_gate_imports_no_heavy_library(project: Project, tmp_path: Path) -> None:
    project.write("metrics.json", json.dumps({"accuracy": 0.9, "log_loss": 0.3}))
    baseline = tmp_path / "baseline.json"
    baseline.write_text(json.dumps({"accuracy": 0.9, "log_loss": 0.3}))

    assert _imported_heavy_modules(["gate", "--baseline", str(baseline)], project.root) == []
    assert json.loads((project.out / "gate.json").read_text())["passed"] is True


def test_gate_without_a_registry_yet_imports_no_heavy_library(project: Project) -> None:
    (project.root / ".mlci" / "mlflow.db").unlink()  # a fresh clone: no registry file
    project.write("metrics.json", json.dumps({"accuracy": 0.9, "log_loss": 0.3}))

    assert _imported_heavy_modules(["gate"], project.root) == []
    assert not (project.root / ".mlci" / "mlflow.db").exists()


def test_gate_on_predictions_files_imports_only_what_it_uses(tmp_path: Path) -> None:
    write_project(tmp_path)

    assert _imported_heavy_modules(GATE_ARGS, tmp_path, HEAVY + UNUSED_BY_GATE) == []
    gate = json.loads((tmp_path / ".mlci" / "out" / "gate.json").read_text())
    assert gate["passed"] is True
    assert gate["results"][0]["metric"] == "accuracy"


def test_gate_on_metrics_files_imports_no_array_code(tmp_path: Path) -> None:
    write_metrics_project(tmp_path)

    modules = HEAVY + UNUSED_BY_GATE + ARRAY_CODE
    assert _imported_heavy_modules(METRICS_GATE_ARGS, tmp_path, modules) == []
    gate = json.loads((tmp_path / ".mlci" / "out" / "gate.json").read_text())
    assert gate["passed"] is True
    assert [r["metric"] for r in gate["results"]] == ["accuracy", "log_loss"]


def test_run_prints_a_summary_and_exits_with_the_verdict(project: Project) -> None:
    result = mlci("run", cwd=project.root)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("✔ passed with no baseline")
    assert any(line.split()[:2] == ["accuracy", "—"] for line in lines)
    assert "report: " in result.stdout
    assert "registry: version 1 registered; @champion set (first champion)" in result.stdout
    assert "mlci train: python train.py" in result.stderr


def test_gate_json_output_is_the_gate_file(project: Project, tmp_path: Path) -> None:
    project.write("metrics.json", json.dumps({"accuracy": 0.7, "log_loss": 0.3}))

    result = mlci("gate", "--json", cwd=project.root)

    assert result.returncode == 1
    printed = json.loads(result.stdout)
    assert printed == json.loads((project.out / "gate.json").read_text())
    assert printed["results"][0]["message"] == "accuracy 0.7 is below the minimum 0.8"


def test_registry_show_lists_versions_with_aliases_and_metrics(project: Project) -> None:
    assert mlci("run", cwd=project.root).returncode == 0

    text = mlci("registry", "show", cwd=project.root)
    data = json.loads(mlci("registry", "show", "--json", cwd=project.root).stdout)

    assert text.returncode == 0
    header, row = text.stdout.splitlines()[1:3]
    assert header.split()[:5] == ["version", "aliases", "commit", "branch", "registered"]
    assert row.split()[:2] == ["1", "@champion"]
    assert data["model"] == "tiny-model"
    assert data["versions"][0]["aliases"] == ["champion"]
    assert data["versions"][0]["metrics"]["accuracy"] == 0.9
    assert data["versions"][0]["gate"] == "pass"


def test_registry_show_on_an_empty_registry_says_how_to_fill_it(project: Project) -> None:
    result = mlci("registry", "show", cwd=project.root)
    assert result.returncode == 0
    assert "no versions registered yet" in result.stdout


def test_interrupt_stops_training_exits_130_and_leaves_a_report(project: Project) -> None:
    import signal
    import time

    project.set_params(sleep=60, metrics={"accuracy": 1.0})
    project.commit("slow training")
    process = subprocess.Popen(
        [sys.executable, "-m", "mlci", "run"],
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    for line in process.stderr:  # wait until the training really runs
        if "training with" in line:
            break
    started = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)

    assert process.returncode == 130
    assert time.monotonic() - started < 15
    assert "mlci: interrupted" in stderr
    gate = json.loads((project.out / "gate.json").read_text())
    assert gate["passed"] is False
    assert gate["error"]["message"] == "interrupted during train"


def test_gate_baseline_sources_are_exclusive(project: Project) -> None:
    result = mlci("gate", "--baseline", "a.json", "--baseline-ref", "main", cwd=project.root)
    assert result.returncode == 2
    assert "not allowed with argument" in result.stderr


def test_gate_computes_the_baselines_metrics_from_its_predictions_alone(tmp_path: Path) -> None:
    (tmp_path / "mlci.yaml").write_text(
        "model: {name: m}\nevaluate: {predictions: candidate.csv}\n"
        "gate:\n  rules:\n    - {metric: accuracy, max_drop: 0.01}\n"
    )
    rows = "".join(f"{i},{i % 2},{i % 2}\n" for i in range(10))
    (tmp_path / "baseline.csv").write_text("id,y_true,y_pred\n" + rows)
    worse = rows.replace("0,0,0\n", "0,0,1\n").replace("3,1,1\n", "3,1,0\n")
    (tmp_path / "candidate.csv").write_text("id,y_true,y_pred\n" + worse)

    result = mlci("gate", "--baseline-predictions", "baseline.csv", cwd=tmp_path)

    assert result.returncode == 1, result.stderr
    assert "accuracy dropped 0.2 from 1 to 0.8" in result.stdout
    gate = json.loads((tmp_path / ".mlci" / "out" / "gate.json").read_text())
    assert gate["baseline"]["label"].endswith("baseline.csv")


def test_gate_on_files_works_outside_a_git_repository(tmp_path: Path) -> None:
    (tmp_path / "mlci.yaml").write_text(
        "model: {name: m}\nevaluate: {metrics: [metrics.json]}\n"
        "gate:\n  rules:\n    - {metric: accuracy, max_drop: 0.01}\n"
    )
    (tmp_path / "a.json").write_text('{"accuracy": 0.9}')
    (tmp_path / "b.json").write_text('{"accuracy": 0.95}')

    result = mlci("gate", "--candidate", "a.json", "--baseline", "b.json", cwd=tmp_path)

    assert result.returncode == 1, result.stderr
    assert "accuracy dropped 0.05 from 0.95 to 0.9" in result.stdout
    assert "local build of a folder outside git" in result.stderr
    assert (tmp_path / ".mlci" / "out" / "gate.json").is_file()
    assert mlci("run", cwd=tmp_path).returncode == 2  # a run records a commit: it needs git


def test_gate_candidate_files_replace_the_configured_ones(project: Project, tmp_path: Path) -> None:
    candidate = tmp_path / "eval.yaml"
    candidate.write_text("accuracy: 0.95\nlog_loss: 0.2\n")

    result = mlci(
        "gate", "--candidate", str(candidate), "--no-baseline", "--json", cwd=project.root
    )

    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    assert printed["metrics"] == {"accuracy": 0.95, "log_loss": 0.2}
    assert printed["baseline"] is None


def test_a_missing_config_file_is_named_and_nothing_is_written(tmp_path: Path) -> None:
    result = mlci("run", "--config", "nope/mlci.yaml", cwd=tmp_path)
    assert result.returncode == 2
    assert "--config nope/mlci.yaml: no such file" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_gate_paths_are_relative_to_the_current_folder(project: Project) -> None:
    project.write("metrics.json", json.dumps({"accuracy": 0.9, "log_loss": 0.3}))
    sub = project.root / "eval"
    sub.mkdir()
    (sub / "main.json").write_text(json.dumps({"accuracy": 0.95, "log_loss": 0.3}))

    result = mlci("gate", "--baseline", "main.json", "--config", "../mlci.yaml", cwd=sub)

    assert result.returncode == 1, result.stderr
    gate = json.loads((project.out / "gate.json").read_text())
    assert gate["baseline"]["label"] == str(sub / "main.json")


def test_report_renders_the_last_run_again_elsewhere(project: Project, tmp_path: Path) -> None:
    project.write("metrics.json", json.dumps({"accuracy": 0.7, "log_loss": 0.3}))
    assert mlci("gate", "--no-baseline", cwd=project.root).returncode == 1

    result = mlci("report", "--out", str(tmp_path / "again"), cwd=project.root)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(
        "✘ failed with no baseline: accuracy 0.7 is below the minimum 0.8"
    )
    for name in ("report.md", "report.html", "gate.json", "report.json"):
        assert (tmp_path / "again" / name).read_text() == (project.out / name).read_text(), name


def test_report_without_a_run_names_the_fix(project: Project) -> None:
    result = mlci("report", cwd=project.root)
    assert result.returncode == 2
    assert (
        "report.json: not found; `mlci run` or `mlci gate` writes the report first" in result.stderr
    )


def test_rollback_moves_the_champion_back_and_history_shows_it(project: Project) -> None:
    assert mlci("run", cwd=project.root).returncode == 0
    project.set_params(metrics={"accuracy": 0.95, "log_loss": 0.2})
    project.commit("better")
    assert mlci("run", cwd=project.root).returncode == 0

    rolled = mlci("rollback", cwd=project.root)
    again = mlci("rollback", "--to", "2", "--json", cwd=project.root)
    history = mlci("registry", "history", cwd=project.root)

    assert rolled.returncode == 0, rolled.stderr
    assert rolled.stdout.startswith("tiny-model@champion moved back from v2 to v1")
    assert json.loads(again.stdout)["to_version"] == "2"
    lines = history.stdout.splitlines()
    assert lines[0] == "tiny-model@champion, oldest first"
    moves = [line.split()[3:6] for line in lines[2:]]  # after the date and time columns
    assert moves == [
        ["—", "v1", "promote"],
        ["v1", "v2", "promote"],
        ["v2", "v1", "rollback"],
        ["v1", "v2", "rollback"],
    ]


def test_rollback_errors_name_the_fix(project: Project) -> None:
    nothing = mlci("rollback", cwd=project.root)
    assert nothing.returncode == 2
    assert "tiny-model has no @champion to roll back" in nothing.stderr
    assert mlci("run", cwd=project.root).returncode == 0
    first = mlci("rollback", cwd=project.root)
    assert first.returncode == 2
    assert "has no version before v1; name one with --to VERSION" in first.stderr
    missing = mlci("rollback", "--to", "9", cwd=project.root)
    assert "tiny-model has no version 9" in missing.stderr


@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_a_disk_that_refuses_the_report_exits_3_with_the_verdict(
    project: Project, as_json: bool
) -> None:
    # Tests run as root, whom a read-only folder does not stop: a file where the folder
    # should be refuses every write, as a read-only or full disk does.
    project.out.parent.mkdir(parents=True, exist_ok=True)
    project.out.write_text("not a folder")
    project.write("metrics.json", json.dumps({"accuracy": 0.7, "log_loss": 0.3}))

    result = mlci("gate", *(["--json"] if as_json else []), cwd=project.root)

    assert result.returncode == 3
    assert f"could not write the report into {project.out}: File exists" in result.stderr
    assert "internal error" not in result.stderr
    if as_json:
        assert json.loads(result.stdout)["results"][0]["verdict"] == "fail"
    else:
        assert "gate: failed" in result.stdout
        assert "accuracy 0.7 is below the minimum 0.8" in result.stdout
        assert f"report: not written, {project.out} refused it" in result.stdout


def test_a_dirty_tree_on_main_is_not_promoted(project: Project) -> None:
    project.write("train.py", (project.root / "train.py").read_text() + "# an edit\n")

    result = mlci("run", cwd=project.root)

    assert result.returncode == 0  # the gate passed; only the promotion is skipped
    assert "uncommitted changes: train.py" in result.stderr
    assert "registry: not promoted: uncommitted changes (train.py)" in result.stdout
    assert "--force-promote" in result.stdout
    assert "with uncommitted changes" in (project.out / "report.md").read_text()
    assert "no versions registered yet" in mlci("registry", "show", cwd=project.root).stdout


def test_what_the_training_writes_and_untracked_files_leave_the_tree_clean(
    project: Project,
) -> None:
    project.write("dvc.lock", "schema: '2.0'\nstages:\n  eval:\n    outs:\n    - path: eval\n")
    (project.root / "eval").mkdir()
    project.write("eval/scores.json", '{"auc": 0.8}\n')
    project.commit("a DVC stage whose output git tracks (cache: false)")
    project.write("dvc.lock", "schema: '2.0'\nstages:\n  eval:\n    outs:\n    - path: eval\n#\n")
    project.write("eval/scores.json", '{"auc": 0.9}\n')
    project.write("notes.txt", "scratch, never added\n")

    result = mlci("run", cwd=project.root)

    assert result.returncode == 0
    assert "registry: version 1 registered" in result.stdout
    assert "uncommitted" not in (project.out / "report.md").read_text()


def test_force_promote_registers_a_dirty_tree_and_says_so(project: Project) -> None:
    project.write("train.py", (project.root / "train.py").read_text() + "# an edit\n")

    result = mlci("run", "--force-promote", cwd=project.root)

    assert result.returncode == 0
    forced = "version 1 registered (forced with --force-promote, although uncommitted changes"
    assert f"registry: {forced} (train.py)" in result.stdout
    assert forced in (project.out / "report.md").read_text()
    shown = mlci("registry", "show", cwd=project.root).stdout
    assert "(dirty)" in shown.splitlines()[2]
    data = json.loads(mlci("registry", "show", "--json", cwd=project.root).stdout)
    assert data["versions"][0]["dirty"] is True
    from mlflow import MlflowClient

    tracking = f"sqlite:///{project.root / '.mlci' / 'mlflow.db'}"
    tags = MlflowClient(tracking_uri=tracking).get_model_version("tiny-model", "1").tags
    assert (tags["mlci.dirty"], tags["mlci.forced"]) == ("true", "true")

    # The same commit, clean now: the dirty tree's version is not this commit's model.
    git.run_git("checkout", "--", "train.py", cwd=project.root)
    clean = mlci("run", cwd=project.root)
    assert "registry: version 2 registered" in clean.stdout, clean.stdout
