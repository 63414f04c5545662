"""The MLflow model registry (sqlite by default, or an `mlflow server`).

mlflow is imported on first use, so commands that never touch the registry stay fast,
and a sqlite registry that does not exist yet is read as empty without importing it.
Every failure of MLflow's client becomes an `ExternalError` here and nowhere else; an
exception in mlci's own reading of its answers stays what it is, a bug (exit 4).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from mlci.core.redact import MASK, mask, redact_url
from mlci.errors import ExternalError, MlciError, UsageError
from mlci.registry.base import (
    UNREAD,
    AliasMove,
    Inconsistency,
    Lineage,
    ModelVersion,
    Unread,
)
from mlci.registry.budget import Budget, DeadlineExceeded
from mlci.registry.packaging import PackagedModel, package_model
from mlci.secrets import secret_values

EXPERIMENT = "mlci"
_TAG_LIMIT = 5000  # MLflow's limit on a tag value
_PARAM_KEY_LIMIT, _PARAM_VALUE_LIMIT = 250, 6000  # MLflow's limits on a param
_DATA_PREFIX = "mlci.data."  # + dataset path: its DVC hash
_HISTORY_PREFIX = "mlci.history."  # + alias + "." + milliseconds: one tag per alias move
_FAILED_TAG = "mlci.failed"  # on a version a failed attempt left and could not delete
_PREDICTIONS_DIR = "mlci-predictions"  # where a version's predictions are stored in its run
# A CI job runs 6 hours at most (GitHub Actions' limit, GitLab's default 1 h is below it): a
# run RUNNING for longer belongs to a job that died between creating it and finishing it.
STALE_RUN_S = 6 * 3600
# MLflow's defaults, changed where a CI job needs otherwise; a variable already set wins.
_MLFLOW_DEFAULTS = {
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
    # MLflow prints run URLs, credentials included, to stdout (which `--json` owns).
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    # 7 retries with backoff factor 2 take 4 minutes to report a server that is down.
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "3",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
}


def redact_uri(uri: str) -> str:
    """The URI without user and password, safe to print."""
    return redact_url(uri)


def resolve_tracking_uri(uri: str, root: Path) -> str:
    """A relative `sqlite:///` path is relative to the project folder, not the cwd."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str((root / uri[len(prefix) :]).resolve())
    return uri


class MlflowRegistry:
    """`Registry` on MLflow. Metrics and lineage live on the version's MLflow run and tags."""

    def __init__(
        self,
        tracking_uri: str,
        *,
        artifact_root: Path | None = None,
        timeout_s: float | None = None,
    ) -> None:
        self.tracking_uri = tracking_uri
        self.artifact_root = artifact_root
        # All requests to a server together (registry.timeout_minutes); a local file: none.
        server = tracking_uri.startswith(("http://", "https://"))
        self.budget = Budget(timeout_s if server else None)
        self._client_instance: Any = None
        self._depth = 0  # operations under way (`_errors` blocks)

    # -- reads ---------------------------------------------------------------------------

    def by_alias(self, model: str, alias: str) -> ModelVersion | None:
        if self._sqlite_missing():
            return None
        client = self._api()
        with self._errors(f"reading {model}@{alias}"):
            try:
                found = client.get_model_version_by_alias(model, alias)
            except _ClientFailure as failure:
                if _not_found(failure.cause):
                    return None
                raise
            aliases = self._aliases(model)
            return self._version(found, aliases)

    def versions(self, model: str) -> list[ModelVersion]:
        if self._sqlite_missing():
            return []
        client = self._api()
        with self._errors(f"listing the versions of {model}"):
            found = client.search_model_versions(
                f"name = '{model}'", order_by=["version_number DESC"]
            )
            if not found:
                return []
            # search_model_versions leaves aliases empty on SQL stores: read them here.
            aliases = self._aliases(model)
            runs = self._runs([item.run_id for item in found if item.run_id])
            return [self._version(item, aliases, run=runs.get(item.run_id)) for item in found]

    # -- writes --------------------------------------------------------------------------

    def register(
        self, model: str, artifact: Path, lineage: Lineage, *, predictions: Path | None = None
    ) -> tuple[ModelVersion, bool]:
        client = self._api()
        lineage = _masked(lineage)
        with self._errors(f"registering {model}"):
            self._clean_stale(model)
            reused = self._registered(model, lineage.commit)
            if reused is not None:
                return reused, False
            self._ensure_model(model)
            with tempfile.TemporaryDirectory(prefix="mlci-model-") as work:
                packaged = package_model(artifact, Path(work))
                run_id, uri = self._log_run(model, artifact, lineage, predictions, packaged)
            tags = {**_lineage_tags(lineage), "mlci.model_format": packaged.format}
            try:
                created = client.create_model_version(
                    model,
                    source=f"{uri}/model",
                    run_id=run_id,
                    tags=tags,
                    description=lineage.gate_summary[:_TAG_LIMIT],
                )
                # The run is finished only once its version exists: a version whose run
                # is not FINISHED is what a failed attempt left behind, never reused.
                client.set_terminated(run_id)
                # A new version has no alias yet, and its run holds what `lineage` has.
                params = {
                    name[:_PARAM_KEY_LIMIT]: value[:_PARAM_VALUE_LIMIT]
                    for name, value in lineage.params.items()
                }
                return self._version(created, {}, data=(dict(lineage.metrics), params)), True
            except BaseException as exc:  # a signal (KeyboardInterrupt) included
                cause = exc.cause if isinstance(exc, _ClientFailure) else exc
                self._discard(model, run_id, f"registration failed: {type(cause).__name__}")
                raise

    def _registered(self, model: str, commit: str) -> ModelVersion | None:
        """The complete version registered for `commit`; discards what failed attempts left.
        A version registered from a dirty tree (--force-promote) is not the commit's: never
        reused."""
        client = self._api()
        existing = client.search_model_versions(
            f"name = '{model}' and tags.`mlci.commit` = '{commit}'",
            order_by=["version_number DESC"],
        )
        for item in existing:
            tags = item.tags or {}
            if item.status != "READY" or tags.get(_FAILED_TAG) or tags.get("mlci.dirty") == "true":
                continue
            run = client.get_run(item.run_id) if item.run_id else None
            if run is None or run.info.status == "FINISHED":
                return self._version(item, self._aliases(model), run=run)
            if run.info.status == "FAILED":
                self._discard(model, item.run_id, "registration failed in an earlier attempt")
        return None

    def _clean_stale(self, model: str) -> None:
        """Fail the runs of `model` that dead jobs left RUNNING, and withdraw their versions."""
        for run in self._stale_runs(model):
            self._discard(model, run.info.run_id, _STALE_WHY)

    def _stale_runs(self, model: str) -> list[Any]:
        """The runs of `model` that dead jobs left RUNNING."""
        experiment = self._api().get_experiment_by_name(EXPERIMENT)
        if experiment is None:
            return []
        running = self._api().search_runs(
            [experiment.experiment_id], filter_string="attributes.status = 'RUNNING'"
        )
        mine = [r for r in running if r.data.tags.get("mlflow.runName", "").startswith(f"{model}@")]
        return [run for run in mine if _stale(run)]

    # -- repair --------------------------------------------------------------------------

    def inconsistencies(
        self, model: str, versions: list[ModelVersion] | None = None
    ) -> list[Inconsistency]:
        """What `versions` marks (given, or read), and the runs of `model` that dead jobs
        left RUNNING before they made a version."""
        versions = self.versions(model) if versions is None else versions
        found = [
            Inconsistency(model, f"v{v.version}", v.problem, v.version, v.run_id, v.aliases)
            for v in versions
            if v.problem
        ]
        if self._sqlite_missing():
            return found
        with_version = {v.run_id for v in versions}
        with self._errors(f"looking for the runs of {model} left RUNNING"):
            for run in self._stale_runs(model):
                if run.info.run_id in with_version:
                    continue
                name = run.data.tags.get("mlflow.runName", "")
                subject = f"run {run.info.run_id[:8]} ({name})"
                why = _ORPHAN_WHY
                found.append(Inconsistency(model, subject, why, run_id=run.info.run_id))
        return found

    def repair(self, found: Inconsistency) -> str:
        """Withdraw what `found` names, as the next promotion would; says what was done."""
        if found.aliases:
            return f"left as it is: {found.repair}"
        client = self._api()
        with self._errors(f"repairing {found.subject} of {found.model}"):
            if found.run_id is not None:
                client.set_terminated(found.run_id, status="FAILED")
            if found.version is None:
                return "run marked FAILED"
            marked = "; its run marked FAILED" if found.run_id else ""
            try:
                client.delete_model_version(found.model, found.version)
            except _ClientFailure as failure:
                why = f"withdrawn by mlci registry repair: {found.problem}"[:_TAG_LIMIT]
                client.set_model_version_tag(found.model, found.version, _FAILED_TAG, why)
                refused = str(failure).strip().splitlines()[0] if str(failure).strip() else ""
                return (
                    f"kept, tagged {_FAILED_TAG} (deleting it was refused: {refused}; a user "
                    f"with MANAGE permission on {found.model} can delete it){marked}"
                )
            return f"deleted{marked}"

    def _discard(self, model: str, run_id: str, why: str) -> None:
        """Mark the run FAILED and delete its versions (or tag them, without MANAGE)."""
        client = self._api()
        with contextlib.suppress(_ClientFailure):
            client.set_terminated(run_id, status="FAILED")
        try:
            left = client.search_model_versions(f"name = '{model}' and run_id = '{run_id}'")
        except _ClientFailure:
            return  # the server is gone: the next attempt finds the FAILED run
        for item in left:
            try:
                client.delete_model_version(model, item.version)
            except _ClientFailure:
                with contextlib.suppress(_ClientFailure):
                    client.set_model_version_tag(model, item.version, _FAILED_TAG, why)

    def withdraw(self, version: ModelVersion, why: str) -> None:
        if version.run_id is None:
            return  # not a version mlci registered: leave it
        with self._errors(f"removing {version.label}"):
            self._discard(version.model, version.run_id, why)

    def predictions(self, version: ModelVersion, dest: Path) -> Path | None:
        if version.run_id is None:
            return None
        client = self._api()
        with self._errors(f"downloading the predictions of {version.label}"):
            stored = client.list_artifacts(version.run_id, _PREDICTIONS_DIR)
            if not stored:
                return None
            dest.mkdir(parents=True, exist_ok=True)
            local = client.download_artifacts(version.run_id, stored[0].path, str(dest))
            return Path(local)

    def move_alias(
        self,
        model: str,
        alias: str,
        to: ModelVersion,
        *,
        reason: str = "promote",
        run_url: str | None = None,
        current: ModelVersion | Literal[Unread.UNREAD] | None = UNREAD,
    ) -> AliasMove:
        before = self.by_alias(model, alias) if current is UNREAD else current
        move = AliasMove(
            alias=alias,
            from_version=before.version if before else None,
            to_version=to.version,
            reason=reason,
            when_ms=int(time.time() * 1000),
            commit=to.commit,
            run_url=run_url,
        )
        if before is not None and before.version == to.version:
            return move  # already there (a re-run): no move, and none in the history
        client = self._api()
        with self._errors(f"moving @{alias} of {model}"):
            # MLflow keeps no alias history: each move is a tag on the registered model,
            # written first: a job killed between the two keeps the rollback target (a
            # move recorded but not made is never the last move to the alias's version).
            key = f"{_HISTORY_PREFIX}{alias}.{move.when_ms:013d}"
            client.set_registered_model_tag(model, key, json.dumps(dataclasses.asdict(move)))
            client.set_registered_model_alias(model, alias, to.version)
        return move

    def history(self, model: str, alias: str) -> list[AliasMove]:
        if self._sqlite_missing():
            return []
        client = self._api()
        with self._errors(f"reading the history of {model}@{alias}"):
            try:
                tags = client.get_registered_model(model).tags
            except _ClientFailure as failure:
                if _not_found(failure.cause):
                    return []
                raise
        prefix = f"{_HISTORY_PREFIX}{alias}."
        moves = [json.loads(value) for key, value in sorted(tags.items()) if key.startswith(prefix)]
        return [AliasMove(**move) for move in moves]

    def version(self, model: str, version: str) -> ModelVersion | None:
        if self._sqlite_missing():
            return None
        client = self._api()
        with self._errors(f"reading {model} v{version}"):
            try:
                found = client.get_model_version(model, version)
            except _ClientFailure as failure:
                if _not_found(failure.cause) or failure.error_code == "INVALID_PARAMETER_VALUE":
                    return None
                raise
            return self._version(found, self._aliases(model))

    # -- helpers -------------------------------------------------------------------------

    def _sqlite_missing(self) -> bool:
        prefix = "sqlite:///"
        return (
            self.tracking_uri.startswith(prefix)
            and not Path(self.tracking_uri[len(prefix) :]).exists()
        )

    def _client(self) -> Any:
        if self._client_instance is None:
            for name, value in _MLFLOW_DEFAULTS.items():
                os.environ.setdefault(name, value)
            # Imported here: http.client and ssl stay out of `mlci gate`'s start-up.
            from mlci.registry import mlflow_rest

            if mlflow_rest.has_credentials(self.tracking_uri, os.environ):
                mlflow_rest.refuse_plain_http(self.tracking_uri)  # MLflow's client too
            if mlflow_rest.usable(self.tracking_uri, os.environ):
                # A server: its REST API, without the seconds of importing MLflow.
                self._client_instance = mlflow_rest.RestClient(
                    self.tracking_uri, budget=self.budget
                )
                return self._client_instance
            prefix = "sqlite:///"
            if self.tracking_uri.startswith(prefix):
                Path(self.tracking_uri[len(prefix) :]).parent.mkdir(parents=True, exist_ok=True)
            try:
                from mlflow import MlflowClient
            except ImportError:
                raise UsageError("the registry needs MLflow: pip install 'mlci[mlflow]'") from None
            for name in ("mlflow", "alembic"):
                logging.getLogger(name).setLevel(logging.WARNING)
            with self._errors("connecting to the registry"):
                self._client_instance = _failing_as_client(MlflowClient)(
                    tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri
                )
        return self._client_instance

    def _api(self) -> _Client:
        """The client, for calls whose failures `_errors` explains as the registry's."""
        return _Client(self._client(), self.budget)

    def _aliases(self, model: str) -> dict[str, str]:
        registered = self._api().get_registered_model(model)
        return {alias: str(version) for alias, version in registered.aliases.items()}

    def _runs(self, run_ids: list[str]) -> dict[str, Any]:
        """The runs of many versions in one search per 100, not one request per version."""
        client = self._api()
        experiment = client.get_experiment_by_name(EXPERIMENT)
        if experiment is None or not run_ids:
            return {}
        runs: dict[str, Any] = {}
        for start in range(0, len(run_ids), 100):
            chunk = ", ".join(f"'{run_id}'" for run_id in run_ids[start : start + 100])
            found = client.search_runs(
                [experiment.experiment_id],
                filter_string=f"attributes.run_id IN ({chunk})",
                max_results=100,
            )
            runs.update((run.info.run_id, run) for run in found)
        return runs

    def _version(
        self,
        item: Any,
        aliases: Mapping[str, str],
        *,
        run: Any = None,
        data: tuple[dict[str, float], dict[str, str]] | None = None,
    ) -> ModelVersion:
        """`item` as a ModelVersion; reads its run unless given the run or its data."""
        version = str(item.version)
        metrics: dict[str, float] = {}
        params: dict[str, str] = {}
        if data is not None:
            metrics, params = data
        elif item.run_id:
            found = (run or self._api().get_run(item.run_id)).data
            metrics, params = dict(found.metrics), dict(found.params)
        tags = item.tags or {}
        problem = None
        if tags.get(_FAILED_TAG) or (run is not None and run.info.status == "FAILED"):
            why = tags.get(_FAILED_TAG) or "its run FAILED"
            problem = f"left by a failed attempt ({why}): never reused or promoted"
        elif run is not None and _stale(run):
            problem = f"{_STALE_WHY}: the next promotion withdraws it"
        return ModelVersion(
            model=item.name,
            version=version,
            aliases=tuple(sorted(a for a, v in aliases.items() if v == version)),
            metrics=metrics,
            commit=tags.get("mlci.commit"),
            branch=tags.get("mlci.branch"),
            created_ms=item.creation_timestamp,
            source=item.source,
            gate_verdict=tags.get("mlci.gate"),
            run_id=item.run_id,
            params=params,
            model_format=tags.get("mlci.model_format"),
            data={
                key[len(_DATA_PREFIX) :]: value
                for key, value in tags.items()
                if key.startswith(_DATA_PREFIX)
            },
            dirty={"true": True, "false": False}.get(tags.get("mlci.dirty", "")),
            problem=problem,
        )

    def _ensure_model(self, model: str) -> None:
        client = self._api()
        try:
            client.create_registered_model(model)
        except _ClientFailure as failure:
            if failure.error_code != "RESOURCE_ALREADY_EXISTS":
                raise

    def _experiment_id(self) -> str:
        client = self._api()
        experiment = client.get_experiment_by_name(EXPERIMENT)
        if experiment is not None:
            return str(experiment.experiment_id)
        # A local registry keeps artifacts beside it; a server decides where its go.
        local = self.tracking_uri.startswith(("sqlite:", "file:"))
        location = self.artifact_root.resolve().as_uri() if self.artifact_root and local else None
        return str(client.create_experiment(EXPERIMENT, artifact_location=location))

    def _log_run(
        self,
        model: str,
        artifact: Path,
        lineage: Lineage,
        predictions: Path | None,
        packaged: PackagedModel,
    ) -> tuple[str, str]:
        """A RUNNING run with the metrics, lineage and the model; FAILED when anything fails."""
        from mlci.registry import mlflow_rest

        client = self._api()
        # Each client takes its own Metric, Param and RunTag (same fields).
        entities: Any = mlflow_rest
        if not isinstance(self._client(), mlflow_rest.RestClient):
            import mlflow.entities as entities
        run = client.create_run(
            self._experiment_id(),
            run_name=f"{model}@{lineage.commit[:8]}",
            tags={"mlflow.source.git.commit": lineage.commit},
        )
        run_id = run.info.run_id
        try:
            metrics = [entities.Metric(key, value, 0, 0) for key, value in lineage.metrics.items()]
            params = [
                entities.Param(name[:_PARAM_KEY_LIMIT], value[:_PARAM_VALUE_LIMIT])
                for name, value in lineage.params.items()
            ]
            tags = [entities.RunTag(key, value) for key, value in _lineage_tags(lineage).items()]
            tags.append(entities.RunTag("mlci.model_format", packaged.format))
            # MLflow takes at most 1000 metrics, 100 params and 100 tags per batch.
            for start in range(0, len(metrics), 1000):
                client.log_batch(run_id, metrics=metrics[start : start + 1000])
            for start in range(0, len(params), 100):
                client.log_batch(run_id, params=params[start : start + 100])
            for start in range(0, len(tags), 100):
                client.log_batch(run_id, tags=tags[start : start + 100])
            if artifact.is_dir():
                client.log_artifacts(run_id, str(artifact), artifact_path="model")
            else:
                client.log_artifact(run_id, str(artifact), artifact_path="model")
            if packaged.generated is not None:
                # MLmodel and the requirements, beside the model file: an MLflow model.
                client.log_artifacts(run_id, str(packaged.generated), artifact_path="model")
            if predictions is not None:
                client.log_artifact(run_id, str(predictions), artifact_path=_PREDICTIONS_DIR)
        except BaseException:
            with contextlib.suppress(_ClientFailure):
                client.set_terminated(run_id, status="FAILED")
            raise
        return run_id, str(run.info.artifact_uri)

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        """The client's failures as ExternalError (any other exception is mlci's own bug and
        goes on as it is); the REST client's connection is closed when the outermost
        operation ends (an open socket must not outlive it into the GC)."""
        self._depth += 1
        try:
            yield
        except _ClientFailure as failure:
            where = redact_uri(self.tracking_uri)
            raise ExternalError(_explain(failure.cause, doing, where)) from None
        finally:
            self._depth -= 1
            if self._depth == 0 and self._client_instance is not None:
                from mlci.registry import mlflow_rest  # imported by _client already

                if isinstance(self._client_instance, mlflow_rest.RestClient):
                    self._client_instance.close()


class _ClientFailure(Exception):
    """An exception the client raised, on its way to `_errors`, which explains it."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause
        self.error_code: str = getattr(cause, "error_code", "")


class _Client:
    """MlflowClient or the REST client, each of whose calls raises what fails in it as a
    `_ClientFailure`: only those are the registry's failures, not mlci's reading of the
    answers."""

    def __init__(self, client: Any, budget: Budget) -> None:
        self._client = client
        self._budget = budget

    def __getattr__(self, name: str) -> Any:
        return _failing_as_client(getattr(self._client, name), self._budget)


def _failing_as_client(
    call: Callable[..., Any], budget: Budget | None = None
) -> Callable[..., Any]:
    @functools.wraps(call)
    def calling(*args: Any, **kwargs: Any) -> Any:
        try:
            if budget is None or budget.seconds is None:
                return call(*args, **kwargs)
            return _within(budget, call, *args, **kwargs)
        except MlciError:
            raise  # the REST client's own errors say what failed already
        except Exception as exc:
            raise _ClientFailure(exc) from exc

    return calling


def _within(budget: Budget, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`call` in what is left of `budget`. MLflow's own client reads its timeout and
    retries from the environment at each request: both are cut to fit (the REST client
    cuts its own)."""
    if budget.spent():
        raise budget.exceeded("no answer in time")
    with budget.counting(), _mlflow_limits(budget.left()) as cut:
        try:
            return call(*args, **kwargs)
        except DeadlineExceeded:
            raise
        except Exception as exc:
            # Timed out under limits cut to the budget: what is left fits no other attempt.
            if budget.spent() or (cut and "timed out" in str(exc)):
                raise budget.exceeded(f"no answer in time ({type(exc).__name__})") from exc
            raise


_MLFLOW_LIMITS = (
    "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
)


@contextlib.contextmanager
def _mlflow_limits(left: float | None) -> Iterator[bool]:
    """MLflow's timeout and retries for one call, so that all its attempts and backoff
    waits (factor * 2^n, plus up to a second of jitter each) end within `left` seconds.
    Yields whether they had to be cut."""
    saved = {name: os.environ.get(name) for name in _MLFLOW_LIMITS}
    if left is None:
        yield False
        return
    per_request = _env_number("MLFLOW_HTTP_REQUEST_TIMEOUT", 120)
    retries = int(_env_number("MLFLOW_HTTP_REQUEST_MAX_RETRIES", 3))
    backoff = int(_env_number("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", 1))

    def waits(n: int) -> float:
        return float(backoff * (2**n - 1) + n)

    asked = retries
    while retries and waits(retries) + retries + 1 > left:
        retries -= 1
    each = max(int(min(per_request, (left - waits(retries)) / (retries + 1))), 1)
    cut = retries < asked or each < per_request
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = str(each)  # MLflow reads an int
    os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] = str(retries)
    os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] = str(backoff)
    try:
        yield cut
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _env_number(name: str, default: float) -> float:
    try:
        return max(float(os.environ.get(name) or default), 0.0)
    except ValueError:
        return default


_STALE_WHY = f"its run was left RUNNING by a dead job (for over {STALE_RUN_S // 3600} h)"


_ORPHAN_WHY = (
    f"left RUNNING by a dead job (for over {STALE_RUN_S // 3600} h) before it made a version"
)


def _stale(run: Any) -> bool:
    """Whether `run` is RUNNING for longer than any CI job lives."""
    started = run.info.start_time
    cutoff = time.time() * 1000 - STALE_RUN_S * 1000
    return run.info.status == "RUNNING" and started is not None and started < cutoff


def _not_found(exc: Exception) -> bool:
    code = getattr(exc, "error_code", "")
    text = str(exc)
    return code == "RESOURCE_DOES_NOT_EXIST" or (
        code == "INVALID_PARAMETER_VALUE" and "alias" in text and "not found" in text
    )


def _explain(exc: Exception, doing: str, where: str) -> str:
    text = str(exc)
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    from mlci.registry import mlflow_rest

    if isinstance(exc, DeadlineExceeded):
        return (
            f"the MLflow server {where} did not answer in time while {doing}: {first}; check "
            f"that the server is up and answering (a proxy or firewall that holds connections "
            f"open looks like this), or raise registry.timeout_minutes in mlci.yaml"
        )
    if "FAILED_REGISTRATION" in text:
        return (
            f"the MLflow server {where} answered, but the model version it made while "
            f"{doing} is FAILED_REGISTRATION ({first}): the server could not store the "
            f"model's files; its message is on the version's page in the MLflow UI (check "
            f"the server's artifact store), then run again"
        )
    if isinstance(exc, mlflow_rest.RestError):
        if exc.status is None:
            return (
                f"cannot reach the MLflow server {where} while {doing} ({first}): check that "
                f"it is running and that MLFLOW_TRACKING_URI (or registry.tracking_uri) is right"
            )
        text = f"status code {exc.status} {text}"  # MLflow's own errors say it in the text
    if "database is locked" in text:
        return (
            f"the MLflow registry {where} is locked while {doing}: another process is "
            f"writing to the sqlite file; wait for it, or use an MLflow server for parallel jobs"
        )
    if re.search(r"error code 401|status code 401|\b401\b.*(auth|Unauthorized)", text):
        return (
            f"the MLflow server {where} refused the credentials while {doing} (401): set "
            f"MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN"
        )
    if re.search(r"error code 403|status code 403|Permission denied", text):
        return (
            f"the MLflow server {where} denied {doing} (403): the user needs EDIT permission "
            f"on the registered model and on the '{EXPERIMENT}' experiment"
        )
    if any(
        s in text for s in ("Connection refused", "Max retries exceeded", "Failed to establish")
    ):
        return (
            f"cannot reach the MLflow server {where} while {doing}: check that it is running "
            f"and that MLFLOW_TRACKING_URI (or registry.tracking_uri) is right"
        )
    return f"MLflow failed while {doing} at {where}: {first}"


def _masked(lineage: Lineage) -> Lineage:
    """`lineage` without the job's secrets; a metric or param whose name held one is left
    out (MLflow refuses `*` in names)."""
    lineage = mask(lineage, secret_values())
    return dataclasses.replace(
        lineage,
        metrics={k: v for k, v in lineage.metrics.items() if MASK not in k},
        params={k: v for k, v in lineage.params.items() if MASK not in k},
    )


def _lineage_tags(lineage: Lineage) -> dict[str, str]:
    tags = {
        "mlci.commit": lineage.commit,
        "mlci.branch": lineage.branch or "",
        "mlci.dirty": str(lineage.dirty).lower(),
        "mlci.forced": "true" if lineage.forced else "",
        "mlci.ci": lineage.ci,
        "mlci.event": lineage.event,
        "mlci.gate": lineage.gate_verdict,
        "mlci.gate_summary": lineage.gate_summary,
        "mlci.baseline": lineage.baseline or "",
        "mlci.run_url": lineage.run_url or "",
        "mlci.pr": str(lineage.pr_number or ""),
        "mlci.training_seconds": ""
        if lineage.training_seconds is None
        else f"{lineage.training_seconds:.1f}",
        "mlci.device": lineage.device.describe() if lineage.device else "",
        "mlci.device_json": json.dumps(lineage.device.to_json(), sort_keys=True)
        if lineage.device
        else "",
        "mlci.where": lineage.where.describe() if lineage.where else "",
        "mlci.where_json": json.dumps(lineage.where.to_json(), sort_keys=True)
        if lineage.where
        else "",
        "mlci.training_reused": "true" if lineage.training_reused else "",
    }
    # MLflow allows 250 characters in a tag's name; longer dataset paths are left out.
    tags.update(
        {
            f"{_DATA_PREFIX}{path}": digest
            for path, digest in lineage.data.items()
            if len(_DATA_PREFIX) + len(path) <= 250
        }
    )
    return {key: value[:_TAG_LIMIT] for key, value in tags.items() if value}
