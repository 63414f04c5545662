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
from mlci.config import load_config, locate_optional
from mlci.console import Console
from mlci.errors import EXIT_EXTERNAL, EXIT_OK, ExternalError, UsageError
from mlci.forges import open_forge
from mlci.pipeline import baseline, trust
from mlci.pipeline.artifact import read_artifact, rejudge
from mlci.pipeline.publish import Publisher
from mlci.registry import open_registry


def publish_command(*, source: Path, config: Path | None, as_json: bool) -> int:
    """Publish a report that an earlier job wrote (`.mlci/out/` or a downloaded artifact).

    The artifact's verdict is not believed: its metrics are judged again with the rules
    of this job's own mlci.yaml (the base branch's checkout) against the baseline that
    branch uses (mlci.pipeline.artifact). In a `workflow_run` job for a pull request
    from a fork, GitHub does not say which pull request it was: the number comes from
    the artifact's publish.json and is believed only if that pull request's head is the
    commit the workflow ran on.
    """
    artifact = read_artifact(source)
    env = os.environ
    context = ci.detect_context(Path.cwd(), env)
    console = Console()
    if context.ci == "local":
        raise UsageError(
            "mlci publish runs in CI (GitHub Actions, GitLab CI, Bitbucket Pipelines): outside "
            f"CI there is nothing to publish to; the report is in {source}"
        )
    found = _trusted_config(config)
    # In a pull request's own job the checkout is the pull request's: its base's rules.
    trusted = trust.rules(load_config(found), found.name, context, env, console).config
    if context.pr_number is None and context.event == "other":
        context = _pull_request_from_artifact(context, source, env)
    reads_registry = trusted.gate.baseline in ("auto", "registry")
    registry = open_registry(trusted, env) if reads_registry else None
    cache = trusted.root / ".mlci" / "cache"
    choice = baseline.of_base_checkout(trusted, context, registry, cache, console)
    report = rejudge(artifact, trusted, choice, console)
    report = dataclasses.replace(report, commit=context.head_sha or report.commit)
    for claim in artifact.claimed:
        if claim != report.status:
            console.warn(
                f"the artifact claims the verdict {claim!r}; judged again with the mlci.yaml "
                f"of this checkout it is {report.status!r}: publishing that"
            )
    publisher = Publisher(context=context, settings=trusted.publish, env=env, console=console)
    result = publisher.publish(report, source)
    if as_json:
        record = {
            "verdict": report.status,
            "claimed": list(artifact.claimed),
            "published": result.published,
            "skipped": result.skipped,
            "errors": result.errors,
        }
        sys.stdout.write(json.dumps(record, indent=2) + "\n")
    return EXIT_EXTERNAL if result.failed else EXIT_OK


def _trusted_config(config: Path | None) -> Path:
    """This job's mlci.yaml: the base branch's, whose rules judge the artifact."""
    found = locate_optional(config)
    if found is None:
        raise UsageError(
            "mlci publish judges the artifact with the rules of the base branch's mlci.yaml, "
            "and there is none here: check out the base branch first (actions/checkout "
            "without ref: on workflow_run that is the default branch, never the pull "
            "request's code), or name it with --config; regenerate the workflow with "
            "`mlci init --fork-safe --force`"
        )
    return found


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
