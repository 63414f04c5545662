"""`mlci run` and `mlci gate`: the pipeline, then its summary (or gate.json with --json)."""

from __future__ import annotations

from pathlib import Path

from mlci import pipeline
from mlci.commands.summary import print_outcome, print_unwritten
from mlci.config import locate
from mlci.pipeline import BaselineRequest
from mlci.pipeline.outputs import ReportNotWritten
from mlci.scan.storage import scheme


def _from_cwd(path: Path | None) -> Path | None:
    """Paths on the command line are relative to where the command runs."""
    return None if path is None else path.resolve()


def _located(name: str | None) -> Path | str | None:
    """Predictions on the command line: a URL of object storage as given (read in place),
    a local path relative to where the command runs."""
    if name is None or scheme(name) is not None:
        return name
    return Path(name).resolve()


def run_command(*, config: Path | None, promote: pipeline.PromoteMode, as_json: bool) -> int:
    return _run(locate(config), pipeline.RunOptions(promote=promote), as_json=as_json)


def _run(config_path: Path, options: pipeline.RunOptions, *, as_json: bool) -> int:
    """The pipeline, then what it found; with a disk that refused the report, the verdict."""
    try:
        outcome = pipeline.run(config_path=config_path, options=options)
    except ReportNotWritten as exc:
        print_unwritten(exc, as_json=as_json)
        return exc.exit_code
    print_outcome(outcome.report, outcome.out_dir, as_json=as_json)
    return outcome.exit_code


def gate_command(
    *,
    config: Path | None,
    candidate: list[Path] | None,
    predictions: str | None,
    baseline: Path | None,
    baseline_ref: str | None,
    baseline_registry: bool,
    no_baseline: bool,
    baseline_predictions: str | None,
    as_json: bool,
) -> int:
    baseline = _from_cwd(baseline)
    candidate_at, baseline_at = _located(predictions), _located(baseline_predictions)
    request = None
    if baseline is not None:
        request = BaselineRequest(mode="file", file=baseline, predictions=baseline_at)
    elif baseline_ref is not None:
        request = BaselineRequest(mode="git", ref=baseline_ref)
    elif baseline_registry:
        request = BaselineRequest(mode="registry")
    elif no_baseline:
        request = BaselineRequest(mode="none")
    elif baseline_at is not None:
        # The baseline's metrics, computed from its predictions as the candidate's are.
        request = BaselineRequest(mode="file", predictions=baseline_at)
    options = pipeline.RunOptions(
        train=False,
        promote="never",
        baseline=request,
        metrics=tuple(path.resolve() for path in candidate) if candidate else None,
        predictions=candidate_at,
    )
    return _run(locate(config), options, as_json=as_json)
