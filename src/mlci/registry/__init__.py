"""The model registry: the seam (base.Registry) and MLflow behind it (mlflow, mlflow_rest).

`open_registry` is the one place that turns mlci.yaml into a registry; mlflow itself is
imported only by the operations that need MLflow's own client.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from mlci.config import Config

if TYPE_CHECKING:
    from mlci.registry.mlflow import MlflowRegistry


def open_registry(config: Config, env: Mapping[str, str]) -> MlflowRegistry:
    """The configured registry; MLFLOW_TRACKING_URI overrides registry.tracking_uri."""
    from mlci.registry.mlflow import MlflowRegistry, resolve_tracking_uri

    uri = env.get("MLFLOW_TRACKING_URI") or config.registry.tracking_uri
    return MlflowRegistry(
        resolve_tracking_uri(uri, config.root),
        artifact_root=config.root / ".mlci" / "mlartifacts",
        timeout_s=config.registry.timeout_minutes * 60,
    )
