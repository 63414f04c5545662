"""The promote stage: whether this build may promote, and the registration with lineage.

Only builds of the branches in registry.promote_on whose gate passed promote, from a
clean work tree; a build from elsewhere can become the challenger. An older commit's
build that finishes last never replaces a newer champion.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING

from mlci import git
from mlci.ci import CiContext
from mlci.config import Config
from mlci.console import Console
from mlci.core.report.model import Promotion
from mlci.errors import MlciError, UsageError, shown
from mlci.pipeline.facts import Facts, Judged, PromoteMode

if TYPE_CHECKING:
    from mlci.registry.base import ModelVersion, Registry


def plan(config: Config, context: CiContext, promote: PromoteMode) -> Promotion:
    """Whether a passing candidate of this build is registered, under which alias, and why."""
    if promote == "never":
        return Promotion(eligible=False, reason="promotion turned off for this run")
    if config.registry.model is None:
        return Promotion(
            eligible=False, reason="registry.model is not set in mlci.yaml: nothing to register"
        )
    if context.sha is None:
        return Promotion(eligible=False, reason="the repository has no commit yet")
    eligible, reason = context.promotes(config.registry.promote_on)
    if context.dirty:
        # No commit produced this model: its lineage would name one that did not.
        eligible, reason = False, _dirty(context)
    if promote == "force" and not eligible:
        reason = f"forced with --force-promote, although {reason}"
        return Promotion(eligible=True, reason=reason, alias=config.registry.alias, forced=True)
    if not eligible and config.registry.challenger and not context.dirty:
        # A candidate that does not promote can still be registered as the challenger.
        why = f"a candidate from outside registry.promote_on becomes @{config.registry.challenger}"
        return Promotion(
            eligible=True, reason=why, alias=config.registry.challenger, role="challenger"
        )
    return Promotion(eligible=eligible, reason=reason, alias=config.registry.alias)


def _dirty(context: CiContext) -> str:
    names = ", ".join(context.changed[:3]) + (" …" if len(context.changed) > 3 else "")
    return (
        f"uncommitted changes ({names}): no commit produced this model; commit them and run "
        f"again, or promote it anyway with --force-promote"
    )


def after_gate(planned: Promotion, judged: Judged) -> Promotion:
    """The plan, once the gate has spoken: a failed gate promotes nothing."""
    if planned.eligible and not judged.result.passed:
        return dataclasses.replace(planned, eligible=False, reason="the gate failed")
    return planned


def due(facts: Facts) -> bool:
    """Whether this run registers its model now."""
    passed = facts.gate is not None and facts.gate.passed
    return facts.promotion is not None and facts.promotion.eligible and passed


def promote(
    config: Config,
    facts: Facts,
    registry: Registry,
    predictions: Path | None,
    console: Console,
) -> Promotion:
    """Register the model with its lineage and move the alias (unless a newer commit holds it)."""
    source, planned = facts.source, facts.promotion
    assert source is not None and source.sha is not None and planned is not None
    assert config.registry.model is not None
    artifact = _model_artifact(config.root, config.registry.model)
    version, created = registry.register(
        config.model_name, artifact, facts.lineage(), predictions=predictions
    )
    promotion = dataclasses.replace(planned, version=version.version, created=created)
    alias = planned.alias or config.registry.alias
    try:
        promotion = _place(config, registry, promotion, alias, version, source)
    except KeyboardInterrupt:  # Ctrl-C, SIGTERM, SIGHUP between the registration and the move
        if created:
            _undo(registry, alias, version)
        raise
    console.step("promote", f"{config.model_name} {promotion.describe()}")
    return promotion


def _place(
    config: Config,
    registry: Registry,
    promotion: Promotion,
    alias: str,
    version: ModelVersion,
    source: CiContext,
) -> Promotion:
    """Move `alias` to `version`, unless a newer commit's version holds it."""
    assert source.sha is not None
    current = registry.by_alias(config.model_name, alias)
    champion = alias == config.registry.alias
    if champion and current is not None and _is_newer(config.root, current.commit, source.sha):
        # An older commit's build finished last: it must not replace a newer champion.
        kept = f"@{alias} stays on v{current.version}, from the newer commit "
        kept += f"{(current.commit or '')[:8]}"
        return dataclasses.replace(promotion, previous=current.version, kept=kept)
    move = registry.move_alias(
        config.model_name, alias, version, run_url=source.run_url, current=current
    )
    return dataclasses.replace(promotion, previous=move.from_version)


def _undo(registry: Registry, alias: str, version: ModelVersion) -> None:
    """Remove the version this run created, unless the alias moved to it already: a
    stopped promotion leaves no version that nothing points to and that no run will reuse."""
    with contextlib.suppress(MlciError):  # a registry that fails now: the run still stops
        current = registry.by_alias(version.model, alias)
        if current is None or current.version != version.version:
            registry.withdraw(version, f"stopped before @{alias} moved to it")


def _model_artifact(root: Path, listed: str) -> Path:
    """The model to upload; refused when it, or a link inside its folder, leads out of the
    project (the pull request's training writes it: it must not upload /etc or ~/.ssh)."""
    artifact = root / listed
    if not artifact.exists():
        raise UsageError(
            f"registry.model: {shown(listed)} does not exist after training; make the "
            f"training write the model there, or fix the path in mlci.yaml"
        )
    project = root.resolve()
    leaving = [
        path for path in _links_and_self(artifact) if not path.resolve().is_relative_to(project)
    ]
    if leaving:
        where = "" if leaving[0] == artifact else f" ({shown(leaving[0].relative_to(artifact))})"
        raise UsageError(
            f"registry.model: {shown(listed)}{where} leads outside the project (to "
            f"{shown(leaving[0].resolve())}): nothing was registered; write the model inside "
            f"the project, without links that leave it"
        )
    return artifact


def _links_and_self(artifact: Path) -> list[Path]:
    """`artifact`, and every symbolic link inside it when it is a folder (not followed)."""
    found = [artifact]
    if artifact.is_dir():
        for folder, names, files in os.walk(artifact):
            found += [
                Path(folder, name) for name in names + files if Path(folder, name).is_symlink()
            ]
    return found


def _is_newer(root: Path, champion_commit: str | None, commit: str) -> bool:
    """True when the champion's commit descends from `commit` (so it is newer). A clone
    made before the champion's commit was pushed lacks it: it is fetched from origin."""
    if champion_commit is None or champion_commit == commit:
        return False
    known = git.is_ancestor(root, commit, champion_commit)
    if known is None and git.fetch_commit(root, champion_commit):
        known = git.is_ancestor(root, commit, champion_commit)
    return known is True
