"""`mlci publish`: the privileged half of the two-workflow pattern.

It posts a report that an earlier job wrote (`.mlci/out/`, or the artifact of a pull
request from a fork) without running the pull request's code.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path

from mlci import ci
from mlci.ci import CiContext
from mlci.config import PublishConfig, load_config, locate_optional
from mlci.console import Console
from mlci.core.report.document import from_document
from mlci.core.report.model import ReportInput
from mlci.errors import EXIT_EXTERNAL, EXIT_OK, ExternalError, UsageError
from mlci.forges import open_forge
from mlci.pipeline.publish import Publisher

MAX_DOCUMENT_BYTES = 20_000_000  # report.json from an artifact is untrusted: bounded


def publish_command(*, source: Path, config: Path | None, as_json: bool) -> int:
    """Publish a report that an earlier job wrote (`.mlci/out/` or a downloaded artifact).

    In a `workflow_run` job for a pull request from a fork, GitHub does not say which pull
    request it was: the number comes from the artifact's publish.json and is believed
    only if that pull request's head is the commit the workflow ran on.
    """
    report = _load_report(source)
    settings = PublishConfig()
    found = locate_optional(config)  # a reporter job may have no checkout: the defaults apply
    if found is not None:
        settings = load_config(found).publish
    env = os.environ
    context = ci.detect_context(Path.cwd(), env)
    console = Console()
    if context.ci == "local":
        raise UsageError(
            "mlci publish runs in CI (GitHub Actions, GitLab CI, Bitbucket Pipelines): outside "
            f"CI there is nothing to publish to; the report is in {source}"
        )
    if context.pr_number is None and context.event == "other":
        context = _pull_request_from_artifact(context, source, env)
    publisher = Publisher(context=context, settings=settings, env=env, console=console)
    result = publisher.publish(report, source)
    if as_json:
        record = {"published": result.published, "skipped": result.skipped, "errors": result.errors}
        sys.stdout.write(json.dumps(record, indent=2) + "\n")
    return EXIT_EXTERNAL if result.failed else EXIT_OK


def _load_report(source: Path) -> ReportInput:
    path = source / "report.json"
    try:
        if path.stat().st_size > MAX_DOCUMENT_BYTES:
            raise UsageError(f"{path}: larger than {MAX_DOCUMENT_BYTES:,} bytes; not a report")
        document = json.loads(path.read_text(encoding="utf-8"))
        plots = source / "plots"

        def read_png(name: str) -> bytes:
            # Only plain file names inside plots/: the artifact may come from a fork.
            if "/" in name or "\\" in name or name.startswith("."):
                raise ValueError(f"bad plot name {name!r}")
            return (plots / name).read_bytes()

        return from_document(document, read_png)
    except FileNotFoundError:
        raise UsageError(
            f"{path}: not found; `mlci run` or `mlci gate` writes it (download the job's "
            f".mlci/out/ artifact into {source})"
        ) from None
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise UsageError(f"{path}: not a report this mlci can read ({exc})") from None


def _pull_request_from_artifact(
    context: CiContext, source: Path, env: Mapping[str, str]
) -> CiContext:
    """The pull request named in the artifact, checked against the forge."""
    try:
        record = json.loads((source / "publish.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return context
    number = record.get("pull_request") if isinstance(record, dict) else None
    if not isinstance(number, int) or isinstance(number, bool) or number <= 0:
        return context
    forge = open_forge(context, env).forge
    actual = forge.pull_request_head(number) if forge is not None else None
    if actual is None:
        return context
    if actual != context.head_sha:
        raise ExternalError(
            f"the artifact names pull request #{number}, but its head is "
            f"{actual[:12]}, not {(context.head_sha or 'unknown')[:12]} "
            f"that the workflow ran on: not publishing (the artifact may be stale or forged)"
        )
    return dataclasses.replace(context, pr_number=number)
