"""The data stage: `dvc pull` before training (data.dvc: true), and the datasets' versions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from mlci.config import Config
from mlci.console import Console
from mlci.data import hashes, pulling, repro
from mlci.pipeline.facts import DataVersions


def pull(config: Config, console: Console, env: Mapping[str, str]) -> DataVersions:
    """`dvc pull` with the limits of mlci.yaml; what it fetched, for the report."""
    settings = config.data
    what = "the data and the run cache" if settings.run_cache else "the data"
    limits = f"timeout {settings.timeout_minutes:g} min, stall {settings.stall_minutes:g} min"
    console.step("data", f"dvc pull: {what} ({limits})")
    result = pulling.pull_configured(config.root, settings, console=console, env=env)
    summary = result.summary()
    console.step("data", summary)
    if (
        config.data.run_cache
        and config.train is not None
        and repro.is_repro(config.train.command)
        and "--pull" not in str(config.train.command)
    ):
        console.warn(
            "data.run_cache is true but train.command runs `dvc repro` without --pull: "
            "outputs that are only on the remote are not restored (see docs/data.md)"
        )
    return DataVersions(pull=summary)


def versions(
    config: Config, pulled: DataVersions, baseline: Mapping[str, str] | None
) -> DataVersions:
    """The datasets' hashes, read after training (`dvc repro` updates dvc.lock), beside
    the baseline's.

    A champion registered by an older mlci also names stage outputs (a model, features)
    among its datasets: those are left out, so that "data changed" speaks of data.
    """
    if baseline:
        outputs = hashes.stage_outputs(config.root)
        baseline = {path: digest for path, digest in baseline.items() if path not in outputs}
    return replace(pulled, datasets=hashes.lineage(config.root), baseline=baseline)
