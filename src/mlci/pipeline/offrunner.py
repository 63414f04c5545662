"""The rules a training off the runner (train.on: ray | skypilot) follows before any launch.

A pull request from a fork runs code nobody has reviewed yet, and its job gets no secrets
(GitHub, Gitea and GitLab withhold them): it never launches a cloud machine. The run goes
on without the training, as `mlci gate` would, on the outputs the pull request already
has; docs/gpu.md#cloud-gpus-on-demand.
"""

from __future__ import annotations

from mlci.ci import CiContext
from mlci.config import Config


def launch_refused(config: Config, ci: CiContext | None) -> str | None:
    """Why this build must not launch the training off the runner, or None (it may, or
    the training runs on the runner anyway). The text is for the log and the report."""
    train = config.train
    if train is None or train.on == "local" or ci is None or not ci.fork:
        return None
    what = ci.pull_request(ci.pr_number)
    return (
        f"The training was not run: this {what} comes from a fork, and a {ci.pull_request()} "
        f"from a fork gets no secrets, so no cloud machine is launched (train.on: {train.on}); "
        f"the evaluation reads the outputs the {ci.pull_request()} already has. A maintainer "
        f"can push its branch to this repository to train it (docs/gpu.md#the-fork-rule)."
    )
