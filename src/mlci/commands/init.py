"""`mlci init`: write mlci.yaml and the CI workflow (or with --example a whole project).

The workflow follows the configuration: its timeout, the extras to install, the DVC
remote's credentials and the promoting branches come from mlci.yaml and the repository.
An existing file is never overwritten silently: without --force, mlci prints the diff and
writes nothing.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Literal, TextIO, cast, get_args

from mlci import __version__, git
from mlci.config import CONFIG_NAME, Config, parse_config
from mlci.core import project, workflow
from mlci.core.project import Reading
from mlci.core.workflow import DvcRemote, MlciSource, WorkflowSettings
from mlci.data.remotes import Remote, read_dvc_config
from mlci.errors import EXIT_OK, ExternalError, MlciError, UsageError

EXAMPLE = "sklearn"
_IGNORED = ".mlci/"
ForgeName = Literal["github", "gitlab", "none"]
FORGES: tuple[ForgeName, ...] = ("github", "gitlab", "none")
Ask = Callable[[str, str], str]  # (question, default) -> answer

TRAINING_SCRIPTS = ("train.py", "src/train.py", "scripts/train.py")
# pyproject.toml's extras that a training does not need (the others are installed).
_DEV_EXTRAS = re.compile(r"dev|develop|test|tests|testing|docs?|lint|typing|style|mypy")
_REQUIREMENTS_NAME = re.compile(r"[\w.+-]+\.txt")  # one word in a shell and an action input


@dataclass(frozen=True)
class InitOptions:
    """The choices of `mlci init`; None means: ask on a terminal, else the default."""

    forge: ForgeName | None = None
    # "" none, "self-hosted[:label,...]", a larger runner's label, or "ray"/"skypilot": the
    # job stays on a hosted runner and the training runs on a cloud GPU (train.on)
    gpu: str | None = None
    free_disk: bool | None = None
    fork_safe: bool | None = None
    action: str | None = None  # "OWNER/REPO@SHA # vX": mlci's composite action
    install: str | None = None  # index, action, git+URL@SHA or a wheel's path; None: the
    # action with --action, else the index
    python_version: str = "3.11"
    dvc_remote: DvcRemote | None = None  # None: the default remote of .dvc/config
    stages: tuple[str, ...] = ()  # the stages of dvc.yaml to reproduce; (): all


@dataclass
class Plan:
    """The files `mlci init` would write, by path, and the ones it keeps as they are."""

    files: dict[Path, str] = field(default_factory=dict)
    kept: list[Path] = field(default_factory=list)
    gitignore: tuple[Path, str] | None = None
    settings: WorkflowSettings | None = None
    reading: Reading | None = None  # what mlci.yaml was made from (a new one only)
    branch: tuple[str, str] | None = None  # the default branch, and where it comes from


def example_files(name: str = EXAMPLE) -> dict[str, str]:
    """The example project's files, by relative path."""
    folder = resources.files("mlci") / "examples" / name
    return {
        entry.name: entry.read_text(encoding="utf-8")
        for entry in folder.iterdir()
        if entry.is_file()
    }


def model_name_for(folder: Path) -> str:
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "-", folder.resolve().name).strip("-.")
    return slug or "my-model"


# -- choosing --------------------------------------------------------------------------------


def resolve_options(options: InitOptions, ask: Ask | None) -> InitOptions:
    """Fill the choices left open: by asking when `ask` is given, else with the defaults."""

    def choose(question: str, default: str) -> str:
        return (ask(question, default).strip() or default) if ask else default

    forge = options.forge
    if forge is None:
        answer = choose("CI system: github, gitlab or none (mlci.yaml only)", "github")
        if answer not in FORGES:
            raise UsageError(f"unknown CI system {answer!r}; answer github, gitlab or none")
        forge = answer
    if forge == "none":
        return _replace(options, forge=forge, gpu="", free_disk=False, fork_safe=False)
    gpu = options.gpu
    if gpu is None:
        gpu = choose(
            "GPU: none, self-hosted[:label,...], a larger runner's label, or a cloud GPU for "
            "the training only (ray, skypilot)",
            "none",
        )
        gpu = "" if gpu == "none" else gpu
    hosted = forge == "github" and not gpu.startswith("self-hosted")
    free_disk = options.free_disk
    if free_disk is None:
        free_disk = hosted and _yes(
            choose("Free disk space first (removes unused toolchains, ~30 GB)? y/n", "n")
        )
    fork_safe = options.fork_safe
    if fork_safe is None:
        fork_safe = forge == "github" and _yes(
            choose("Pull requests from forks (report posted by a second workflow)? y/n", "n")
        )
    return _replace(options, forge=forge, gpu=gpu, free_disk=free_disk, fork_safe=fork_safe)


def _replace(options: InitOptions, **changes: object) -> InitOptions:
    return dataclasses.replace(options, **changes)  # type: ignore[arg-type]


def _yes(answer: str) -> bool:
    return answer.strip().lower() in ("y", "yes")


def terminal_ask(question: str, default: str) -> str:
    """Ask on the terminal (the prompt on stderr, so stdout stays the command's output)."""
    sys.stderr.write(f"{question} [{default}]: ")
    sys.stderr.flush()
    return sys.stdin.readline().strip()


def runner_labels(gpu: str) -> tuple[tuple[str, ...], bool]:
    """runs-on labels for --gpu, and whether the job has a GPU (not with ray or skypilot:
    the job stays on a hosted runner, the training goes to a cloud GPU)."""
    if not gpu or gpu in workflow.ENGINES:
        return ("ubuntu-latest",), False
    if gpu == "self-hosted" or gpu.startswith("self-hosted:"):
        named = [label.strip() for label in gpu.partition(":")[2].split(",") if label.strip()]
        labels = ("self-hosted", *(named or ["gpu"]))
    else:
        labels = (gpu,)
    for label in labels:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", label):
            raise UsageError(
                f"--gpu: {label!r} is not a runner label; use letters, digits, '-', '_' "
                f"and '.', e.g. --gpu self-hosted:gpu,cuda or --gpu gpu-4core"
            )
    return labels, True


_ACTION = re.compile(r"([\w.-]+/[\w.-]+)@([0-9a-f]{40})(?:\s*#\s*(\S+))?")


def parse_action(value: str) -> tuple[str, str | None]:
    """`OWNER/REPO@SHA [# vX]` -> the `uses:` reference and its version comment."""
    found = _ACTION.fullmatch(value.strip())
    if found is None:
        raise UsageError(
            f"--action {value!r}: pin mlci's action by its full commit SHA, e.g. "
            f"--action 'OWNER/mlci@<40-hex sha> # v1' (a tag like @v1 can be moved "
            f"under you; `git ls-remote https://github.com/OWNER/mlci v1` prints its SHA)"
        )
    return f"{found[1]}@{found[2]}", found[3]


def install_source(value: str | None, *, action: str | None, repo: Path) -> MlciSource:
    """--install: where the generated jobs install mlci from, pinned (docs/workflows.md)."""
    choice = value or ("action" if action else "index")
    if choice == "index":
        return _index_source()
    if choice == "action":
        if action is None:
            raise UsageError(
                "--install action needs the action: add --action 'OWNER/mlci@<40-hex sha> # v1'"
            )
        owner_repo, _, sha = action.partition("@")
        return MlciSource("action", __version__, f"git+https://github.com/{owner_repo}@{sha}")
    if choice.startswith("git+"):
        if not workflow.GIT_SOURCE.fullmatch(choice):
            raise UsageError(
                f"--install {choice!r}: pin the git URL to a full commit SHA, e.g. "
                f"--install git+https://github.com/OWNER/mlci@<40-hex sha> (a branch or tag "
                f"can move under you; `git ls-remote URL TAG` prints its SHA)"
            )
        return MlciSource("git", __version__, choice)
    if choice.endswith(".whl"):
        return _wheel_source(Path(choice), repo=repo)
    raise UsageError(
        f"--install {choice!r}: expected index, action, git+https://HOST/OWNER/mlci@SHA or "
        f"the path of a wheel (.whl) committed to the repository"
    )


def _index_source() -> MlciSource:
    if "+" in __version__:  # a local version: no package index takes one
        raise UsageError(
            f"this mlci is {__version__}, a local build that no package index has: "
            f"install a release, or choose another source: --install git+URL@SHA, "
            f"--install PATH/TO/mlci.whl or --action"
        )
    return MlciSource("index", __version__)


def _wheel_source(path: Path, *, repo: Path) -> MlciSource:
    found = re.fullmatch(r"mlci-([^-]+)-[^-]+-[^-]+-[^-]+\.whl", path.name)
    if found is None or not path.is_file():
        raise UsageError(
            f"--install {path}: no wheel of mlci there; build one (`python -m build --wheel` "
            f"in mlci's source), commit it, and give its path"
        )
    try:
        inside = path.resolve().relative_to(repo).as_posix()
    except ValueError:
        raise UsageError(
            f"--install {path}: the wheel must be inside the repository ({repo}), committed, "
            f"so the runner has it"
        ) from None
    if not workflow.WHEEL_PATH.fullmatch(inside):
        raise UsageError(
            f"--install {path}: use a path of letters, digits and . _ + - / for the wheel"
        )
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return MlciSource("path", found[1], inside, sha256=digest)


def _check_combination(options: InitOptions) -> None:
    gpu = options.gpu or ""
    if not re.fullmatch(r"(pypy)?[0-9][0-9.]*[a-z0-9-]*", options.python_version):
        raise UsageError(
            f"--python {options.python_version!r}: expected a version like 3.11 or pypy3.10"
        )
    if options.forge == "gitlab":
        for flag, used in (
            ("--fork-safe", options.fork_safe),
            ("--free-disk", options.free_disk),
            ("--action", options.action),
            ("--install action", options.install == "action"),
        ):
            if used:
                raise UsageError(f"{flag} is for GitHub Actions; leave it out with --forge gitlab")
    if options.free_disk and gpu.startswith("self-hosted"):
        raise UsageError(
            "--free-disk deletes toolchains of GitHub's hosted runner image; it must not run "
            "on a self-hosted machine: leave out --free-disk or --gpu self-hosted"
        )


def engine_of(options: InitOptions) -> workflow.Engine | None:
    """The engine of `--gpu ray|skypilot`: the training runs on a cloud GPU; else None."""
    gpu = options.gpu or ""
    return gpu if gpu in workflow.ENGINES else None


# -- reading the project ---------------------------------------------------------------------


def dvc_remote_type(repo: Path) -> DvcRemote:
    """The type of the default DVC remote in `.dvc/config` (else the first one configured);
    "none" without one, or for a type `mlci init` writes no steps for."""
    try:
        sections = read_dvc_config(repo)
    except UsageError:  # a config DVC itself would refuse: `mlci doctor` says why
        return "none"
    urls = {
        key[len('remote "') : -1]: options.get("url", "")
        for key, options in sections.items()
        if key.startswith('remote "') and key.endswith('"')
    }
    default = sections.get("core", {}).get("remote")
    url = urls.get(default or "") or next(iter(urls.values()), "")
    if not url:
        return "none"
    scheme = Remote("default", url).kind.scheme
    return cast(DvcRemote, scheme) if scheme in get_args(DvcRemote) else "none"


def uses_dvc(project: Path, repo: Path) -> bool:
    return any((folder / ".dvc").is_dir() for folder in (project, repo))


def read_project(
    folder: Path, *, stages: tuple[str, ...], branch: tuple[str, str] | None
) -> Reading:
    """What the project's files say: dvc.yaml's training, metrics, params, plots and model,
    else a training script, else nothing (mlci.yaml then says what to fill in)."""
    dvc_yaml = folder / "dvc.yaml"
    name, (default, source) = model_name_for(folder), branch or ("main", "")
    dvc = (folder / ".dvc").is_dir() or dvc_yaml.is_file()
    if stages and not dvc_yaml.is_file():
        raise UsageError(f"--stage: there is no dvc.yaml in {folder}; leave out --stage")
    if dvc_yaml.is_file():
        text = dvc_yaml.read_text(encoding="utf-8", errors="replace")
        found = project.read_dvc_yaml(text, chosen=stages)
        return Reading(
            name=name,
            command=project.repro_command(stages),
            command_from=f"dvc.yaml, {len(found.stages)} stages",
            dvc=True,
            metrics=found.metrics,
            params=found.params,
            sections=found.images,
            model=found.model,
            model_from=found.model_from,
            branch=default,
            branch_from=source,
            notes=found.left_out,
            metric_names=_metric_names(folder, found.metrics),
        )
    script = next((s for s in TRAINING_SCRIPTS if (folder / s).is_file()), None)
    return Reading(
        name=name,
        command=f"python {script}" if script else None,
        command_from=script or "",
        dvc=dvc,
        branch=default,
        branch_from=source,
    )


def _metric_names(folder: Path, files: tuple[str, ...]) -> tuple[str, ...]:
    """The numeric metrics in those of `files` a past run left in `folder` (a committed
    metrics file): gate.rules are proposed from their names. None from a file mlci
    cannot read: the rules are then left to fill in."""
    from mlci.core.metrics import is_number, read_metrics

    names: list[str] = []
    for name in files:
        if not (folder / name).is_file():
            continue
        try:
            found = read_metrics([Path(name)], root=folder)
        except MlciError:
            continue
        names += [metric for metric, value in found.values.items() if is_number(value)]
    return tuple(dict.fromkeys(names))


def requirement_files(folder: Path) -> tuple[str, ...]:
    """The training's requirements files: requirements*.txt at the top, src/requirements.txt."""
    found = sorted(
        path.name
        for path in folder.glob("requirements*.txt")
        if path.is_file() and _REQUIREMENTS_NAME.fullmatch(path.name)
    )
    found += ["src/requirements.txt"] if (folder / "src" / "requirements.txt").is_file() else []
    return tuple(found)


def project_install(folder: Path) -> str | None:
    """`.` or `.[extras]` when pyproject.toml declares a project: its dependencies and the
    extras a training may need (not dev, test, docs...)."""
    pyproject = folder / "pyproject.toml"
    if not pyproject.is_file():
        return None
    text = pyproject.read_text(encoding="utf-8", errors="replace")
    data = _toml(text)
    if data is None:  # Python 3.10 (no tomllib), or not TOML: the project, without extras
        return "." if re.search(r"^\[project\]", text, re.MULTILINE) else None
    table = data.get("project")
    if not isinstance(table, dict):
        return None
    optional = table.get("optional-dependencies")
    names = [n for n in (optional if isinstance(optional, dict) else {}) if isinstance(n, str)]
    extras = [n for n in names if re.fullmatch(r"[\w.-]+", n) and not _DEV_EXTRAS.fullmatch(n)]
    return f".[{','.join(extras)}]" if extras else "."


def _toml(text: str) -> dict[str, object] | None:
    if sys.version_info >= (3, 11):
        import tomllib

        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError:
            return None
    return None


def settings_for(
    config: Config,
    options: InitOptions,
    *,
    project_dir: str,
    repo: Path,
    example: str | None,
) -> WorkflowSettings:
    """The workflow's settings: what mlci.yaml and the repository ask for, and the flags."""
    dvc = uses_dvc(config.root, repo) or example == "sklearn-dvc" or config.data.dvc
    remote = options.dvc_remote or (dvc_remote_type(repo) if dvc else "none")
    extras = ["mlflow"]
    if dvc or remote != "none":
        extras.append("dvc")
    if config.report.plots:
        extras.append("plots")
    if example is not None:  # the example's training needs scikit-learn (and torch)
        extras.append("torch" if example == "torch" else "example")
    engine = engine_of(options)
    if engine is not None:  # the engine's client: it launches the training's cloud GPU
        extras.append(engine)
    packages = [f"dvc[{remote}]"] if remote in ("s3", "gs", "azure", "ssh") else []
    requirements = requirement_files(config.root)
    labels, gpu = runner_labels(options.gpu or "")
    torch = example == "torch" or any(_requires_torch(config.root / r) for r in requirements)
    action, action_version = parse_action(options.action) if options.action else (None, None)
    source = install_source(options.install, action=action, repo=repo)
    timeout = config.train.timeout_minutes if config.train else 60.0
    if action is not None and remote == "http":
        raise UsageError(
            "an HTTP DVC remote needs DVC installed before the step that runs mlci, to write "
            "its credentials into .dvc/config.local: leave out --action"
        )
    return WorkflowSettings(
        source=source,
        extras=tuple(extras),
        packages=tuple(packages),
        requirements=requirements,
        install_project=project_install(config.root),
        python_version=options.python_version,
        train_timeout_minutes=timeout,
        data_timeout_minutes=config.data.timeout_minutes if config.data.dvc else 0.0,
        promote_on=config.registry.promote_on,
        runs_on=labels,
        gpu=gpu,
        torch=torch,
        free_disk=bool(options.free_disk),
        fork_safe=bool(options.fork_safe),
        action=action,
        action_version=action_version,
        dvc_remote=remote,
        registry_server=config.registry.tracking_uri.startswith(("http://", "https://")),
        engine=engine,
        project_dir=project_dir,
        options=describe_options(options),
    )


def _requires_torch(requirements: Path) -> bool:
    """Whether the training's requirements file names torch (then the job installs the
    build for its runner: CUDA on GPU runners, CPU elsewhere)."""
    if not requirements.is_file():
        return False
    text = requirements.read_text(encoding="utf-8", errors="replace")
    return re.search(r"^\s*torch\b", text, re.MULTILINE) is not None


def describe_options(options: InitOptions) -> str:
    """The flags that give these choices, for the generated files' header."""
    words = []
    if options.forge == "gitlab":
        words.append("--forge gitlab")
    if options.gpu:
        words.append(f"--gpu {options.gpu}")
    if options.free_disk:
        words.append("--free-disk")
    if options.fork_safe:
        words.append("--fork-safe")
    if options.action:
        words.append(f"--action '{options.action}'")
    if options.install:
        words.append(f"--install {options.install}")
    if options.python_version != "3.11":
        words.append(f"--python {options.python_version}")
    if options.dvc_remote:
        words.append(f"--dvc-remote {options.dvc_remote}")
    return " ".join(words)


def _repository_of(folder: Path) -> tuple[Path, str]:
    """The repository's top folder and the project's path inside it ("" at the top)."""
    start = folder if folder.exists() else folder.parent
    while not start.exists():
        start = start.parent
    try:
        top = Path(git.run_git("rev-parse", "--show-toplevel", cwd=start)).resolve()
    except ExternalError:
        return folder.resolve(), ""
    inside = folder.resolve().relative_to(top).as_posix()
    return top, "" if inside == "." else inside


# -- planning and writing --------------------------------------------------------------------


def plan_project(folder: Path, *, example: str | None, options: InitOptions) -> Plan:
    """What `mlci init` writes into `folder` (with the example project of that name)."""
    plan = Plan()
    files = example_files(example) if example is not None else {}
    gitignore = files.pop(".gitignore", f"{_IGNORED}\n")
    config_path = folder / CONFIG_NAME
    repo, project_dir = _repository_of(folder)
    branch = git.default_branch(repo) if repo.is_dir() else None
    plan.branch = branch if branch and not workflow.branch_name_problem(branch[0]) else None
    engine = engine_of(options) if options.forge not in (None, "none") else None
    if example is not None:
        config_text = files[CONFIG_NAME] = _with_engine(files[CONFIG_NAME], engine)
    elif config_path.exists():
        config_text = config_path.read_text(encoding="utf-8")
        plan.kept.append(config_path)
    else:
        plan.reading = read_project(folder, stages=options.stages, branch=plan.branch)
        config_text = files[CONFIG_NAME] = _with_engine(project.config_text(plan.reading), engine)
    if engine == "ray" and not (folder / project.RAY_CLUSTER).exists():
        files[project.RAY_CLUSTER] = project.ray_cluster_config(model_name_for(folder))
    plan.files = {folder / name: text for name, text in files.items()}
    plan.gitignore = (folder / ".gitignore", gitignore)
    if options.forge in (None, "none"):
        return plan
    _check_combination(options)
    config = parse_config(config_text, root=folder.resolve(), name=str(config_path))
    settings = settings_for(config, options, project_dir=project_dir, repo=repo, example=example)
    plan.settings = settings
    if options.forge == "gitlab":
        plan.files[repo / workflow.GITLAB_CI] = workflow.gitlab_ci(settings)
        return plan
    for path, text in workflow.github_files(settings).items():
        plan.files[repo / path] = text
    lint_config = workflow.actionlint_config(settings)
    if lint_config is not None:
        plan.files[repo / ".github" / "actionlint.yaml"] = lint_config
    return plan


def _with_engine(config_text: str, engine: workflow.Engine | None) -> str:
    return config_text if engine is None else project.with_engine(config_text, engine)


def write_plan(plan: Plan, *, force: bool, out: TextIO | None = None) -> list[Path]:
    """Write the plan's files; without `force`, a file that differs stops everything and
    its diff is printed to `out`. Returns the files written."""
    out = out or sys.stdout
    differing = []
    for path, text in plan.files.items():
        if path.exists():
            current = path.read_text(encoding="utf-8", errors="replace")
            if current != text:
                differing.append(path)
                if not force:
                    out.writelines(_diff(_shown(path), current, text))
    if differing and not force:
        names = ", ".join(str(path) for path in differing)
        verb = "exists" if len(differing) == 1 else "exist"
        raise UsageError(
            f"{names} already {verb} and differ{'s' if len(differing) == 1 else ''} from what "
            f"mlci init writes (the diff is above); nothing was written. Use --force to "
            f"overwrite"
        )
    written = []
    for path, text in plan.files.items():
        if path.exists() and path.read_text(encoding="utf-8", errors="replace") == text:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    if plan.gitignore and _extend_gitignore(*plan.gitignore):
        written.append(plan.gitignore[0])
    return written


def _diff(path: Path, current: str, wanted: str) -> list[str]:
    lines = list(
        difflib.unified_diff(
            current.splitlines(keepends=True),
            wanted.splitlines(keepends=True),
            fromfile=f"{path} (now)",
            tofile=f"{path} (mlci init)",
        )
    )
    return [line if line.endswith("\n") else line + "\n" for line in lines]


def write_project(folder: Path, *, example: str | None, force: bool) -> list[Path]:
    """Write mlci.yaml (and the example project), no workflow; returns the files written."""
    plan = plan_project(folder, example=example, options=InitOptions(forge="none"))
    folder.mkdir(parents=True, exist_ok=True)
    return write_plan(plan, force=force)


def _extend_gitignore(path: Path, wanted: str) -> bool:
    """Add the lines of `wanted` that .gitignore lacks; keeps the user's own lines."""
    current = path.read_text(encoding="utf-8") if path.exists() else ""
    have = {line.strip() for line in current.splitlines()}
    missing = [line for line in wanted.splitlines() if line.strip() and line.strip() not in have]
    if not missing:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    joined = current + ("" if current.endswith("\n") or not current else "\n") + "\n".join(missing)
    path.write_text(joined + "\n", encoding="utf-8")
    return True


_DVC_STEPS = """
Next: commit the project with its data tracked by DVC (a local remote beside it), and
run the pipeline once on the main branch:
  git init -b main && dvc init -q && dvc remote add -d local ../{name}-dvc-remote
  python make_data.py && dvc add data/digits.csv && dvc push
  git add . && git commit -m 'Example project with DVC'
  mlci run
Run `mlci run` again: DVC reuses the training, and the report says so (docs/data.md).
"""


def init_command(
    *,
    folder: Path,
    example: str | None,
    force: bool,
    options: InitOptions | None = None,
    ask: Ask | None = None,
) -> int:
    options = resolve_options(options or InitOptions(forge="none"), ask)
    plan = plan_project(folder, example=example, options=options)
    written = write_plan(plan, force=force)
    for path in plan.kept:
        sys.stdout.write(f"kept {_shown(path)} (the workflow follows it)\n")
    for path in written:
        sys.stdout.write(f"wrote {_shown(path)}\n")
    for path in plan.files:
        if path not in written:
            sys.stdout.write(f"unchanged {_shown(path)}\n")
    sys.stdout.write(_next_steps(plan, example=example, folder=folder))
    return EXIT_OK


def describe_source(source: MlciSource) -> str:
    """Where the CI installs mlci from, and what must exist for that to work."""
    if source.kind == "index":
        return (
            f"The CI installs mlci=={source.version} from the package index: that version "
            f"must be published there (or on the index your runners use)."
        )
    if source.kind == "action":
        return (
            f"The CI runs mlci's composite action, which installs mlci from its own checkout "
            f"(no package index); the commit ({source.location.removeprefix('git+')}) must "
            f"exist on GitHub with action.yml at its top."
        )
    if source.kind == "git":
        return (
            f"The CI installs mlci from {source.location.removeprefix('git+')}: that commit "
            f"must be reachable from the runner, which needs git."
        )
    return (
        f"The CI installs mlci {source.version} from the wheel {source.location}: commit it "
        f"(sha256 {source.sha256[:12]}...; the fork-safe report job checks it)."
    )


def _shown(path: Path) -> Path:
    """The path relative to the working folder when it is below it."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


def _next_steps(plan: Plan, *, example: str | None, folder: Path) -> str:
    lines = [""]
    if example == "torch":
        lines += ["The torch example needs PyTorch: pip install 'mlci[torch]'", ""]
    if example == "sklearn-dvc":
        lines += _DVC_STEPS.format(name=model_name_for(folder)).strip("\n").splitlines()
    elif example is not None:
        lines += [
            "Next: commit the project and run the pipeline once on the main branch:",
            "  git init -b main && git add . && git commit -m 'Example project'",
            "  mlci run",
        ]
    elif plan.reading is not None:
        lines += _read_lines(plan.reading, plan.settings)
    else:
        lines += ["Next: edit mlci.yaml (train.command, metrics, gate.rules), then `mlci run`."]
    lines += _branch_lines(plan)
    settings = plan.settings
    if settings is not None:
        gitlab = any(path.name == workflow.GITLAB_CI for path in plan.files)
        lines += _secrets_to_add(settings, gitlab=gitlab)
        lines += _cloud_set_up(settings.engine, kept=bool(plan.kept), gitlab=gitlab)
        lines += [describe_source(settings.source)]
        lines += [
            "Commit the workflow too; `mlci doctor` checks a runner (docs/workflows.md "
            "explains the files)."
        ]
    return "\n".join(lines) + "\n"


def _read_lines(reading: Reading, settings: WorkflowSettings | None) -> list[str]:
    """What mlci.yaml was made from, to confirm, and what is left to fill in."""
    r = reading
    found = [
        ("training", f"{r.command} (from {r.command_from})" if r.command else "not found"),
        ("metrics", ", ".join(r.metrics) or "not found"),
        ("params", ", ".join(r.params)),
        ("plots", ", ".join(r.sections)),
        ("model", f"{r.model} ({r.model_from}): check it" if r.model else "not found"),
        ("data", "DVC, pulled before the training" if r.dvc else ""),
        ("default branch", f"{r.branch} ({r.branch_from})" if r.branch_from else "not found"),
    ]
    if settings is not None:
        installs = [*settings.requirements, settings.install_project or ""]
        found += [
            ("installs", ", ".join(name for name in installs if name)),
            ("job timeout", f"{settings.job_timeout_minutes} min: {settings.timeout_comment()}"),
        ]
    lines = ["Read from the project (check mlci.yaml):"]
    lines += [f"  {key}: {value}" for key, value in found if value]
    lines += [f"  left out: {note}" for note in r.notes]
    if r.command is None:
        lines += [f"No training found (no dvc.yaml, {', '.join(TRAINING_SCRIPTS)})."]
    missing = r.to_fill()
    if missing:
        lines += [f"Next: fill in mlci.yaml ({', '.join(missing)}), then `mlci run`."]
    else:
        lines += ["Next: check the lines of mlci.yaml marked CHECK, then `mlci run`."]
    return lines


def _branch_lines(plan: Plan) -> list[str]:
    """A warning when the promoting branches miss the repository's default branch."""
    if plan.branch is None or plan.settings is None:
        return []
    branch, source = plan.branch
    promote_on = plan.settings.promote_on
    if branch in promote_on:
        return []
    return [
        f"Warning: the default branch is {branch} ({source}), but registry.promote_on is "
        f"[{', '.join(promote_on)}]: no model would be promoted; add {branch} to it."
    ]


def _cloud_set_up(engine: workflow.Engine | None, *, kept: bool, gitlab: bool) -> list[str]:
    """What to set up before the first training on a cloud GPU (docs/gpu.md)."""
    if engine is None:
        return []
    role, region = workflow.CLOUD_ROLE_VARIABLES
    lines = [f"The training runs on a cloud GPU (train.on: {engine}); before the first run:"]
    if kept:
        lines += ["  add to the train section of mlci.yaml (docs/gpu.md):"]
        lines += [f"    {line}" for line in project.engine_lines(engine)]
    forge, where = (
        ("GitLab's", "CI/CD variables (Settings > CI/CD > Variables)")
        if gitlab
        else ("GitHub's", "repository variables (Settings > Secrets and variables > Actions)")
    )
    lines += [
        f"  train.storage in mlci.yaml: a bucket the runner and the cloud machine both use "
        f"(not {project.STORAGE_PLACEHOLDER})",
        f"  an AWS IAM role that trusts {forge} OIDC provider for this repository and may start "
        f"and terminate EC2 instances and use that bucket: its ARN and region as the {where} "
        f"{role} and {region}",
    ]
    if engine == "ray":
        lines += [
            f"  {project.RAY_CLUSTER}: the region and the GPU instance type (the CHOOSE lines); "
            f"or a running cluster's address in RAY_ADDRESS (the workflow's commented line) "
            f"instead"
        ]
    else:
        lines += [
            "  SkyPilot's clouds: `sky check` where you work; a team's API server instead: its "
            "endpoint as the variable SKYPILOT_API_SERVER_ENDPOINT"
        ]
    lines += [
        "  a pull request from a fork launches nothing (it gets no secrets); `mlci gpu list` "
        "shows what mlci left running, `mlci gpu down` removes it"
    ]
    return lines


def _secrets_to_add(settings: WorkflowSettings, *, gitlab: bool) -> list[str]:
    """What to create, and where: read-only credentials for pull requests, the write ones
    where only the promoting branches reach them (docs/security.md)."""
    writers = ", ".join(workflow.secret_names(settings, pull_request=False))
    readers = ", ".join(workflow.secret_names(settings, pull_request=True))
    if not writers:
        return []
    branches = ", ".join(settings.promote_on)
    if gitlab:
        return [
            "Add these CI/CD variables (masked; docs/security.md explains each):",
            f"  for merge requests, read-only credentials: {readers}",
            f"  for {branches}, protected (the write access): {writers}",
        ]
    return [
        "Add these secrets for the CI (docs/security.md explains each):",
        f"  repository secrets, read-only credentials for pull requests: {readers}",
        f"  secrets of the environment {workflow.PROMOTE_ENVIRONMENT} (Settings > Environments, "
        f"deployment branches: {branches}), for promotion: {writers}",
    ]
