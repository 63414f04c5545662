"""The command line: argparse and dispatch only.

Each command's module is imported when that command runs, so `mlci --help` and
`mlci gate` never import mlflow, dvc or matplotlib.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import threading
import traceback
from collections.abc import Iterator, Sequence
from pathlib import Path
from types import FrameType

from mlci import __version__
from mlci.errors import (
    EXIT_HANGUP,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_TERMINATED,
    EXIT_USAGE,
    MlciError,
    StopSignal,
)

DESCRIPTION = """\
Continuous integration and delivery for machine-learning models: train, gate the
candidate against a baseline, report on the pull request, promote in the registry.

Exit codes: 0 passed, 1 gate failed, 2 usage or config error, 3 external system
failed, 4 internal error, 5 training failed or timed out, 130 interrupted (SIGINT,
Ctrl-C), 143 stopped by SIGTERM, 129 stopped by SIGHUP. On a signal the training's
processes are stopped (SIGTERM, SIGKILL 5 s later), the report is written to .mlci/out/
and a version registered but not yet promoted is removed.
"""

# How CI systems, containers and terminals stop a job, and the exit code each gets.
_STOP_SIGNALS = {
    signal.SIGINT: EXIT_INTERRUPTED,
    signal.SIGTERM: EXIT_TERMINATED,
    signal.SIGHUP: EXIT_HANGUP,
}


class _Parser(argparse.ArgumentParser):
    """Usage errors exit with 2 and say how to get help."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"mlci: error: {message}\nRun `{self.prog} --help` for help.\n")


def _config_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        "-c",
        type=Path,
        metavar="PATH",
        help="mlci.yaml to use (default: mlci.yaml in this folder or the nearest one above)",
    )


def _json_option(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--json", action="store_true", help=f"print {what} as JSON on stdout")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mlci", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"mlci {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    run = commands.add_parser(
        "run",
        help="train, evaluate, gate, report and (on the main branch) promote",
        description="Run the whole pipeline: train, read metrics, compare with the baseline, "
        "write the report to .mlci/out/, publish it, and on the branches in "
        "registry.promote_on promote a passing model in the registry.",
    )
    _config_option(run)
    promotion = run.add_mutually_exclusive_group()
    promotion.add_argument(
        "--no-promote", action="store_true", help="never promote, even on a promoting branch"
    )
    promotion.add_argument(
        "--force-promote",
        action="store_true",
        help="promote a passing model even from a branch or event outside registry.promote_on "
        "(the version is tagged mlci.forced=true)",
    )
    _json_option(run, "gate.json")

    gate = commands.add_parser(
        "gate",
        help="gate the metrics already on disk (no training, no promotion)",
        description="Read the metrics files, compare them with the baseline by the rules of "
        "gate.rules, and write the report. Exit 0 when the gate passes, 1 when it fails.",
    )
    _config_option(gate)
    gate.add_argument(
        "--candidate",
        type=Path,
        nargs="+",
        metavar="FILE",
        help="the candidate's metrics files (default: evaluate.metrics of mlci.yaml)",
    )
    gate.add_argument(
        "--predictions",
        metavar="FILE|URL",
        help="the candidate's predictions: a file, or an s3://, gs:// or az:// URL read in "
        "place (default: evaluate.predictions of mlci.yaml)",
    )
    source = gate.add_mutually_exclusive_group()
    source.add_argument(
        "--baseline", type=Path, metavar="FILE", help="compare with the metrics in this file"
    )
    source.add_argument(
        "--baseline-ref",
        metavar="REF",
        help="compare with the metrics files committed at the merge base of REF and HEAD",
    )
    source.add_argument(
        "--baseline-registry",
        action="store_true",
        help="compare with the registry's champion (registry.alias)",
    )
    source.add_argument(
        "--no-baseline", action="store_true", help="apply the absolute limits (min, max) only"
    )
    gate.add_argument(
        "--baseline-predictions",
        metavar="FILE|URL",
        help="the baseline's predictions on the same rows (paired intervals), a file or an "
        "s3://, gs:// or az:// URL; alone, the baseline's metrics are computed from them",
    )
    _json_option(gate, "gate.json")

    report = commands.add_parser(
        "report",
        help="render the last run's report again, without training or gating",
        description="Render report.md, report.html, gate.json and the plots again from "
        ".mlci/out/report.json, the record of the last `mlci run` or `mlci gate`: after "
        "upgrading mlci, or into another folder with --out.",
    )
    _config_option(report)
    report.add_argument(
        "--out", type=Path, metavar="DIR", help="where to write (default: .mlci/out/)"
    )
    _json_option(report, "gate.json")

    publish = commands.add_parser(
        "publish",
        help="publish a report written earlier (the fork-safe two-workflow setup)",
        description="Post the report in DIR (report.json, gate.json, publish.json, as `mlci "
        "run` writes them to .mlci/out/) as the pull request's comment and status, from a CI "
        "job that does not run the pull request's code: a workflow_run job that downloaded "
        "the artifact into a checkout of the base branch. The artifact's metrics are judged "
        "again with that checkout's mlci.yaml and baseline; its verdict is not believed. "
        "See docs/security.md#the-fork-safe-publisher.",
    )
    _config_option(publish)
    publish.add_argument(
        "--from",
        dest="source",
        type=Path,
        default=None,
        metavar="DIR",
        help="the folder holding report.json (default: .mlci/out/)",
    )
    _json_option(publish, "where the report went")

    comment = commands.add_parser(
        "comment",
        help="post your own Markdown file as a sticky comment (the `cml comment create` path)",
        description="Post FILE.md to the pull request (or the commit, or an issue) as one "
        "sticky comment per --key, through the same forge layer as `mlci run`. Local images "
        "and files it links are published through publish.images and the links rewritten; "
        "missing files, or files outside the repository, stop it before anything is posted. "
        "Outside CI the comment goes to .mlci/out/comments/. See docs/migrating-from-cml.md.",
    )
    _config_option(comment)
    comment.add_argument("markdown", type=Path, metavar="FILE.md", help="the Markdown to post")
    comment.add_argument(
        "--target",
        default="auto",
        metavar="TARGET",
        help="auto (the pull request, else the commit), pr, pr/N, commit or issue/N "
        "(default: auto)",
    )
    comment.add_argument(
        "--key",
        default=None,
        metavar="NAME",
        help="which sticky comment to update (default: the file's name without .md)",
    )
    comment.add_argument(
        "--mode",
        choices=("update", "new", "hide-old"),
        default="update",
        help="update the comment in place (default), post a new one, or fold the old ones "
        "as outdated and post a new one",
    )
    comment.add_argument(
        "--dry-run",
        action="store_true",
        help="print the Markdown that would be posted (links rewritten); post nothing",
    )
    _json_option(comment, "where the comment went")

    init = commands.add_parser(
        "init",
        help="write mlci.yaml and the CI workflow (or a whole example project with --example)",
        description="Write a commented mlci.yaml (an existing one is kept) and the CI workflow "
        "that runs mlci: .github/workflows/ml-pipeline.yml, or .gitlab-ci.yml with --forge "
        "gitlab. On a terminal, mlci asks for the options not given. A file that exists and "
        "differs is not overwritten without --force: mlci prints the diff and exits 2. "
        "With --example, write a small, complete project (train.py, params.yaml, mlci.yaml) "
        "to start from: scikit-learn (the default), sklearn-dvc (the same with its data "
        "tracked by DVC and a local remote), or torch (a PyTorch model that trains on a GPU "
        "when there is one). docs/workflows.md explains the generated files.",
    )
    init.add_argument(
        "--example",
        nargs="?",
        const="sklearn",
        choices=("sklearn", "sklearn-dvc", "torch"),
        metavar="{sklearn,sklearn-dvc,torch}",
        help="write an example project (default: sklearn)",
    )
    init.add_argument("--force", action="store_true", help="overwrite existing files")
    init.add_argument("--dir", type=Path, default=Path(), metavar="DIR", help="where (default: .)")
    init.add_argument(
        "--forge",
        choices=("github", "gitlab", "none"),
        help="the CI system to write the workflow for (default: github; none: mlci.yaml only)",
    )
    init.add_argument(
        "--gpu",
        metavar="RUNNER",
        help="run on a GPU runner: self-hosted[:LABEL,...] or a larger runner's label; or "
        "ray / skypilot: the job stays on a hosted runner, the training runs on a cloud GPU",
    )
    init.add_argument(
        "--free-disk",
        action="store_true",
        default=None,
        help="first remove the hosted runner's unused toolchains (about 30 GB more disk)",
    )
    init.add_argument(
        "--fork-safe",
        action="store_true",
        default=None,
        help="pull requests from forks: evaluate without secrets, post the report from a "
        "second (workflow_run) workflow",
    )
    init.add_argument(
        "--action",
        metavar="'OWNER/REPO@SHA # vX'",
        help="run mlci through its composite GitHub Action, pinned by commit SHA",
    )
    init.add_argument(
        "--install",
        metavar="SOURCE",
        help="where the CI installs mlci from, pinned: index (this exact version, the "
        "default), action (with --action), git+https://HOST/OWNER/mlci@SHA, or the path of a "
        "wheel committed to the repository",
    )
    init.add_argument(
        "--dvc-remote",
        choices=("none", "local", "s3", "gs", "azure", "ssh", "http"),
        help="the DVC remote's type, for its credentials (default: read from .dvc/config)",
    )
    init.add_argument(
        "--stage",
        action="append",
        default=[],
        metavar="NAME",
        help="with dvc.yaml: the training is `dvc repro NAME` (repeat for more stages; "
        "default: every stage)",
    )
    init.add_argument(
        "--python", default="3.11", metavar="VERSION", help="Python on the runner (default 3.11)"
    )
    init.add_argument(
        "--yes", "-y", action="store_true", help="ask nothing: the defaults for what is not given"
    )

    doctor = commands.add_parser(
        "doctor",
        help="check the runner and the project: disk, git history, registry, DVC, token, GPU",
        description="Check what a run needs, one line per check with the fix when something is "
        "wrong: free disk, git history for the baseline, the training timeout, the registry, "
        "the DVC remote, the forge token and the GPU. Exit 0 when nothing failed (warnings "
        "allowed), 3 when a check failed.",
    )
    _config_option(doctor)
    _json_option(doctor, "the checks")

    demo = commands.add_parser(
        "demo",
        help="show the whole flow on a throwaway repository",
        description="Build a throwaway git repository from the example project and run a "
        "main-branch build, a pull request that makes the model worse (gate fails), one "
        "that makes it better (gate passes) and its merge (new champion). No network needed.",
    )
    demo.add_argument(
        "--dir",
        type=Path,
        metavar="DIR",
        help="where to build it (default: a new temporary folder)",
    )
    demo.add_argument(
        "--dvc",
        action="store_true",
        help="keep the example's data in DVC (a local remote) and train with `dvc repro`: "
        "the reports show the data's hashes and the last build reuses the training",
    )

    registry = commands.add_parser(
        "registry",
        help="inspect the model registry",
        description="Inspect the model registry configured in mlci.yaml.",
    )
    registry_commands = registry.add_subparsers(
        dest="registry_command", metavar="COMMAND", parser_class=_Parser
    )
    show = registry_commands.add_parser(
        "show",
        help="list the versions of the model, their aliases and metrics",
        description="List the registered versions of the configured model, newest first, "
        "with their aliases, commits and the metrics they were promoted with.",
    )
    _config_option(show)
    _json_option(show, "the versions")
    history = registry_commands.add_parser(
        "history",
        help="every move of the alias: when, from which version to which, and why",
        description="List every recorded move of the alias (registry.alias by default), "
        "oldest first: promotions and rollbacks, with the commit and the CI run.",
    )
    _config_option(history)
    history.add_argument("--alias", metavar="NAME", help="another alias than registry.alias")
    _json_option(history, "the moves")
    repair = registry_commands.add_parser(
        "repair",
        help="withdraw what `mlci registry show` marks: versions and runs failed or dead jobs left",
        description="Withdraw what failed or dead jobs left in the registry, as `mlci "
        "registry show` and `mlci doctor` mark it: a version whose run FAILED or is tagged "
        "mlci.failed, a version whose run a dead job left RUNNING (over 6 h), a run left "
        "RUNNING without a version. Each version is deleted (tagged mlci.failed where "
        "deleting is refused) and its run marked FAILED; a version an alias points at is "
        "left alone. Without --yes, only says what it would change.",
    )
    _config_option(repair)
    repair.add_argument("--yes", action="store_true", help="make the changes (default: dry run)")
    _json_option(repair, "what it found and did")

    _data_parser(commands)
    _gpu_parser(commands)

    rollback = commands.add_parser(
        "rollback",
        help="move the champion back to an earlier version",
        description="Move the alias (registry.alias by default) back to --to VERSION or, "
        "without it, to the version it held before the current one. The move is recorded "
        "in the history like a promotion.",
    )
    _config_option(rollback)
    rollback.add_argument("--to", metavar="VERSION", help="the version to move the alias to")
    rollback.add_argument("--alias", metavar="NAME", help="another alias than registry.alias")
    _json_option(rollback, "the move")
    return parser


def _data_parser(commands: argparse._SubParsersAction[_Parser]) -> None:
    data = commands.add_parser(
        "data",
        help="DVC data: pull it, list the datasets and their hashes",
        description="The data that DVC tracks (see docs/data.md): pull the version this "
        "commit names, or list the datasets with their hashes.",
    )
    data_commands = data.add_subparsers(
        dest="data_command", metavar="COMMAND", parser_class=_Parser
    )
    pull = data_commands.add_parser(
        "pull",
        help="dvc pull, with progress and errors that name the fix",
        description="Pull the data this commit names from the DVC remote (data.remote, "
        "data.jobs, data.run_cache and data.targets of mlci.yaml), as `mlci run` does "
        "before training when data.dvc is true. Exit 3 when the remote fails.",
    )
    _config_option(pull)
    _json_option(pull, "what was pulled")
    status = data_commands.add_parser(
        "status",
        help="the tracked datasets, their hashes, and whether they changed since REF",
        description="List the datasets DVC tracks (outputs of .dvc files, and stage inputs "
        "that no stage makes and git does not track) with their hashes from the .dvc files "
        "and dvc.lock, the "
        "remote, and the CI secrets it needs. With --ref, compare with the hashes "
        "committed at REF.",
    )
    _config_option(status)
    status.add_argument("--ref", metavar="REF", help="compare with the datasets at this commit")
    _json_option(status, "the datasets")


def _gpu_parser(commands: argparse._SubParsersAction[_Parser]) -> None:
    gpu = commands.add_parser(
        "gpu",
        help="the cloud GPU jobs and clusters mlci launched (train.on): list them, take them down",
        description="What mlci launched on train.on's engine (Ray, SkyPilot) and is still "
        "alive: jobs and clusters named mlci-... (see docs/gpu.md).",
    )
    gpu_commands = gpu.add_subparsers(dest="gpu_command", metavar="COMMAND", parser_class=_Parser)
    listing = gpu_commands.add_parser(
        "list",
        help="the jobs and clusters named mlci-... that are alive",
        description="List the jobs and clusters named mlci-... that are alive on the engine "
        "of train.on (for Ray: train.ray.address or RAY_ADDRESS).",
    )
    _config_option(listing)
    _json_option(listing, "them")
    down = gpu_commands.add_parser(
        "down",
        help="stop a job or take down a cluster that mlci launched",
        description="Stop NAME (from `mlci gpu list`), or with --all every job and cluster "
        "of mlci's that is alive. Without --yes, only says what it would take down.",
    )
    _config_option(down)
    down.add_argument("name", nargs="?", metavar="NAME", help="a name from `mlci gpu list`")
    down.add_argument("--all", action="store_true", help="every one of `mlci gpu list`")
    down.add_argument("--yes", action="store_true", help="take them down (default: dry run)")


def _dispatch(args: argparse.Namespace) -> int:
    command: str | None = args.command
    if command == "run":
        from mlci.commands.run import run_command
        from mlci.pipeline import PromoteMode

        promote: PromoteMode = "auto"
        if args.no_promote or args.force_promote:
            promote = "never" if args.no_promote else "force"
        return run_command(config=args.config, promote=promote, as_json=args.json)
    if command == "gate":
        from mlci.commands.run import gate_command

        return gate_command(
            config=args.config,
            candidate=args.candidate,
            predictions=args.predictions,
            baseline=args.baseline,
            baseline_ref=args.baseline_ref,
            baseline_registry=args.baseline_registry,
            no_baseline=args.no_baseline,
            baseline_predictions=args.baseline_predictions,
            as_json=args.json,
        )
    if command == "report":
        from mlci.commands.report import report_command

        return report_command(config=args.config, out=args.out, as_json=args.json)
    if command == "publish":
        from mlci.commands.publish import publish_command

        source = args.source.resolve() if args.source else Path.cwd() / ".mlci" / "out"
        return publish_command(source=source, config=args.config, as_json=args.json)
    if command == "comment":
        from mlci.commands.comment import comment_command

        return comment_command(
            markdown=args.markdown,
            target=args.target,
            key=args.key,
            mode=args.mode,
            dry_run=args.dry_run,
            as_json=args.json,
            config=args.config,
        )
    if command == "init":
        from mlci.commands.init import InitOptions, init_command, terminal_ask

        options = InitOptions(
            forge=args.forge,
            gpu=args.gpu,
            free_disk=args.free_disk,
            fork_safe=args.fork_safe,
            action=args.action,
            install=args.install,
            python_version=args.python,
            dvc_remote=args.dvc_remote,
            stages=tuple(args.stage),
        )
        interactive = sys.stdin.isatty() and not args.yes
        return init_command(
            folder=args.dir,
            example=args.example,
            force=args.force,
            options=options,
            ask=terminal_ask if interactive else None,
        )
    if command == "doctor":
        from mlci.commands.doctor import doctor_command

        return doctor_command(config=args.config, as_json=args.json)
    if command == "demo":
        from mlci.commands.demo import demo_command

        return demo_command(folder=args.dir, dvc=args.dvc)
    if command == "rollback":
        from mlci.commands.registry import rollback_command

        return rollback_command(config=args.config, to=args.to, alias=args.alias, as_json=args.json)
    if command == "registry" and args.registry_command == "history":
        from mlci.commands.registry import registry_history_command

        return registry_history_command(config=args.config, alias=args.alias, as_json=args.json)
    if command == "registry" and args.registry_command == "show":
        from mlci.commands.registry import registry_show_command

        return registry_show_command(config=args.config, as_json=args.json)
    if command == "registry" and args.registry_command == "repair":
        from mlci.commands.registry import registry_repair_command

        return registry_repair_command(config=args.config, apply=args.yes, as_json=args.json)
    if command == "data" and args.data_command == "pull":
        from mlci.commands.data import data_pull_command

        return data_pull_command(config=args.config, as_json=args.json)
    if command == "data" and args.data_command == "status":
        from mlci.commands.data import data_status_command

        return data_status_command(config=args.config, ref=args.ref, as_json=args.json)
    if command == "gpu" and args.gpu_command == "list":
        from mlci.commands.gpu import gpu_list_command

        return gpu_list_command(config=args.config, as_json=args.json)
    if command == "gpu" and args.gpu_command == "down":
        from mlci.commands.gpu import gpu_down_command

        return gpu_down_command(config=args.config, name=args.name, every=args.all, apply=args.yes)
    raise _MissingCommand(command)


class _MissingCommand(Exception):
    def __init__(self, command: str | None) -> None:
        super().__init__(command)
        self.command = command


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # name the subcommand whose options were wrong, not just `mlci`
        _command_parser(parser, args).error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        with _stop_signals():
            return _dispatch(args)
    except _MissingCommand:
        _command_parser(parser, args).print_help()
        return EXIT_USAGE
    except MlciError as exc:
        sys.stderr.write(f"mlci: error: {exc.message}\n")
        return exc.exit_code
    except KeyboardInterrupt as exc:
        if isinstance(exc, StopSignal) and exc.name != "SIGINT":
            sys.stderr.write(f"mlci: stopped by {exc.name}\n")
            return exc.exit_code
        sys.stderr.write("mlci: interrupted\n")
        return EXIT_INTERRUPTED
    except Exception as exc:  # a bug: say so, with what to report
        if os.environ.get("MLCI_DEBUG"):
            traceback.print_exc()
        sys.stderr.write(
            f"mlci: internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in mlci; please report it with the command you ran "
            "(MLCI_DEBUG=1 shows the traceback).\n"
        )
        return EXIT_INTERNAL


@contextlib.contextmanager
def _stop_signals() -> Iterator[None]:
    """SIGTERM and SIGHUP stop mlci the way Ctrl-C does (a `StopSignal`, a KeyboardInterrupt),
    so the training's process group is stopped and the report written on the way out.

    After the first signal the others are ignored: GitHub sends SIGINT, then SIGTERM 7.5 s
    later, and the second must not cut the teardown short. A signal ignored when mlci
    started (`nohup`) stays ignored; the handlers are restored on return.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers (mlci called from a library's thread)
        return
    previous = {number: signal.getsignal(number) for number in _STOP_SIGNALS}

    def stop(number: int, frame: FrameType | None) -> None:
        for other in _STOP_SIGNALS:
            signal.signal(other, signal.SIG_IGN)
        received = signal.Signals(number)
        raise StopSignal(received.name, _STOP_SIGNALS[received])

    for number, handler in previous.items():
        if handler != signal.SIG_IGN:
            signal.signal(number, stop)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_DFL if handler is None else handler)


def _command_parser(
    parser: argparse.ArgumentParser, args: argparse.Namespace
) -> argparse.ArgumentParser:
    """The parser of the (sub)command that `args` selected, deepest first."""
    names = (
        getattr(args, "command", None),
        getattr(args, "registry_command", None) or getattr(args, "data_command", None),
    )
    for name in names:
        if name is None:
            break
        parser = next(
            action.choices[name]
            for action in parser._actions
            if isinstance(action, argparse._SubParsersAction)
        )
    return parser
