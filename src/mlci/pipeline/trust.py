"""Which mlci.yaml judges a pull request: the base branch's, not the one it brings.

A pull request's own mlci.yaml is part of the code under review: read as is, it could
loosen the gate that judges it, pick its own baseline, or send the job's credentials to a
server of its choosing. So on a pull-request build the sections that decide the verdict
and where credentials go (`gate`, `registry`, `publish`; of `train`, where a training off
the runner goes: `on`, `storage`, `ray`, `skypilot`) come from the base branch's
mlci.yaml, read from git at the merge base like the git baseline's metrics; the rest
(the training's command, the evaluation, the report) is the pull request's. What it changes in
those sections is listed in the report and takes effect after merge.
docs/security.md#who-is-trusted.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from mlci import git
from mlci.ci import CiContext
from mlci.config import Config, TrainConfig, parse_config
from mlci.console import Console
from mlci.errors import UsageError
from mlci.pipeline.basecommit import pull_request_base

# Set in the job's environment, which on a pull request comes from the base branch's
# workflow; an mlci.yaml key could not be the opt-out: the pull request would set it.
TRUST_VARIABLE = "MLCI_TRUST_PR_CONFIG"
TRUSTED_SECTIONS = ("gate", "registry", "publish")
# The evaluation's size limits and the slices the rules are judged in judge the pull
# request too, and the Spark master is where the job's reads and their credentials go
# (local Spark and DuckDB stay on the runner), as Spark's settings can send them elsewhere
# (spark.hadoop.fs.s3a.endpoint, a proxy, a jar); the rest of `evaluate` is its own.
# Each field of EvaluateConfig, and its key in mlci.yaml.
TRUSTED_EVALUATE_KEYS = {
    "min_rows": "evaluate.min_rows",
    "min_row_fraction": "evaluate.min_row_fraction",
    "slices": "evaluate.slices",
    "slice_min_rows": "evaluate.slice_min_rows",
    "spark_master": "evaluate.spark.master",
    "spark_conf": "evaluate.spark.conf",
}
# Where a training off the runner goes: the cluster or API server that receives the
# project, the data and the job's cloud credentials, and the bucket the outputs come from.
TRUSTED_TRAIN_KEYS = ("on", "storage", "ray", "skypilot")


@dataclass(frozen=True)
class Rules:
    """The configuration to judge with, and what the report says about where it came from."""

    config: Config
    notes: tuple[str, ...] = ()


def rules(
    config: Config, name: str, context: CiContext, env: Mapping[str, str], console: Console
) -> Rules:
    """`config` with the base branch's gate, registry and publish sections on a pull
    request; `name` is the file's name (mlci.yaml)."""
    if context.event != "pull_request":
        return Rules(config)
    if env.get(TRUST_VARIABLE) == "1":
        console.step("rules", f"the pull request's own {name} ({TRUST_VARIABLE}=1)")
        return Rules(config)
    try:
        # The CI's base branch, not gate.base_ref: that key is the pull request's to set.
        found = pull_request_base(config, context)
    except UsageError as exc:
        raise UsageError(
            f"{exc.message}; a pull request is judged by the rules of the base branch's "
            f"{name} (or set {TRUST_VARIABLE}=1 where every author is trusted)"
        ) from None
    commit, label = found.commit, found.label
    ref_notes = () if found.note is None else (found.note,)
    for note in ref_notes:
        console.warn(note)
    text = git.read_file_at(config.root, commit, git.prefix(config.root) + name) if commit else None
    if text is None:
        note = f"No {name} on the base branch: this pull request is judged by its own {name}."
        console.step("rules", note)
        return Rules(config, notes=(*ref_notes, note))
    base = parse_config(
        text.decode("utf-8", errors="replace"), root=config.root, name=f"{name} at {label}"
    )
    sections = {section: getattr(base, section) for section in TRUSTED_SECTIONS}
    limits = {key: getattr(base.evaluate, key) for key in TRUSTED_EVALUATE_KEYS}
    evaluate = dataclasses.replace(config.evaluate, **limits)
    train = config.train
    changed = [key for section in TRUSTED_SECTIONS for key in _changed(config, base, section)]
    changed += [
        name
        for key, name in TRUSTED_EVALUATE_KEYS.items()
        if getattr(config.evaluate, key) != getattr(base.evaluate, key)
    ]
    if train is not None:
        # No training on the base branch: its defaults (on the runner), not the PR's cluster.
        where = base.train or TrainConfig(command=train.command)
        train = dataclasses.replace(
            train, **{key: getattr(where, key) for key in TRUSTED_TRAIN_KEYS}
        )
        changed += [
            changed
            for key in TRUSTED_TRAIN_KEYS
            for changed in _changed(config.train, where, f"train.{key}")
        ]
    trusted = dataclasses.replace(config, **sections, evaluate=evaluate, train=train)
    console.step("rules", f"{name} at {label}")
    if not changed:
        return Rules(trusted, notes=ref_notes)
    note = (
        f"This pull request changes {', '.join(changed)} in {name}; it was judged by the "
        f"base branch's settings ({label}): the change takes effect after merge."
    )
    console.warn(note)
    return Rules(trusted, notes=(*ref_notes, note))


def _changed(head: object, base: object, key: str) -> list[str]:
    """The keys under `key` that differ: each rule's metric, nested sections key by key."""
    new, old = getattr(head, key.rsplit(".", 1)[-1]), getattr(base, key.rsplit(".", 1)[-1])
    if new == old:
        return []
    if key == "gate.rules":
        metrics = sorted({rule.metric for rule in set(new) ^ set(old)})
        return [f"gate.rules ({', '.join(metrics)})"] if metrics else []  # [] : reordered
    if dataclasses.is_dataclass(new) and dataclasses.is_dataclass(old):
        return [
            changed
            for field in dataclasses.fields(new)
            for changed in _changed(new, old, f"{key}.{field.name}")
        ]
    return [key]
