"""A registry that stays true (issue #23): no duplicate creates after an unknown outcome,
no run left RUNNING by a dead job, no alias move without its history, no older build
taking the alias back."""

from __future__ import annotations

import json
import re
import shutil
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mlci.registry import mlflow_rest
from mlci.registry.mlflow import MlflowRegistry
from tests.conftest import Project
from tests.test_registry_mlflow import lineage
from tests.test_registry_rest import stand_in

_FAST = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "0"}
_BAD_GATEWAY = (502, {"Content-Type": "text/html"}, b"<html>502 Bad Gateway</html>")


@dataclass
class AppliedThenLost:
    """An MLflow server behind a proxy that times out: each create is applied, and the
    first `lost` answers to creates are a 502 instead."""

    lost: int = 1
    versions: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)

    def serve(self, method: str, path: str, sent: bytes) -> tuple[int, dict[str, str], bytes]:
        endpoint, _, query = path.removeprefix("/api/2.0/mlflow/").partition("?")
        asked = json.loads(sent) if sent else {}
        fields = {k: v[0] for k, v in urllib.parse.parse_qs(query).items()}
        answer: dict[str, Any]
        if endpoint == "model-versions/create":
            version = {**asked, "version": str(len(self.versions) + 1), "status": "READY"}
            self.versions.append(version)
            answer = {"model_version": version}
        elif endpoint == "runs/create":
            run = {
                "info": {"run_id": f"run{len(self.runs) + 1}", "status": "RUNNING"},
                "data": {"tags": asked["tags"]},
            }
            self.runs.append(run)
            answer = {"run": run}
        elif endpoint == "model-versions/search":
            run_id = re.search(r"run_id = '(\w+)'", fields["filter"])
            found = [v for v in self.versions if run_id and v.get("run_id") == run_id[1]]
            return 200, {}, json.dumps({"model_versions": found}).encode()
        elif endpoint == "model-versions/get":
            found = [v for v in self.versions if v["version"] == fields["version"]]
            return 200, {}, json.dumps({"model_version": found[0]}).encode()
        elif endpoint == "runs/search":
            tag = re.search(r"= '(\w+)'", asked["filter"])
            runs = [
                r
                for r in self.runs
                if tag and {"key": "mlci.request", "value": tag[1]} in r["data"]["tags"]
            ]
            return 200, {}, json.dumps({"runs": runs}).encode()
        else:
            return 404, {}, b'{"error_code": "ENDPOINT_NOT_FOUND"}'
        if self.lost:
            self.lost -= 1
            return _BAD_GATEWAY
        return 200, {}, json.dumps(answer).encode()


def test_a_version_created_before_a_502_is_found_not_created_twice() -> None:
    server = AppliedThenLost()
    with stand_in() as standin:
        standin.serve = server.serve
        client = mlflow_rest.RestClient(standin.url, _FAST)
        created = client.create_model_version("clf", "mlflow-artifacts:/1/r/model", run_id="r1")
        client.close()

    assert created.version == "1" and created.run_id == "r1"
    assert [v["version"] for v in server.versions] == ["1"]  # one version, not two
    creates = [path for method, path, _ in standin.seen if path.endswith("versions/create")]
    assert len(creates) == 1

    # A 502 from the proxy before the server saw the create: looked up, then sent again.
    server = AppliedThenLost(lost=0)
    with stand_in() as standin:
        standin.script = [_BAD_GATEWAY]
        standin.serve = server.serve
        client = mlflow_rest.RestClient(standin.url, _FAST)
        created = client.create_model_version("clf", "mlflow-artifacts:/1/r/model", run_id="r1")
        client.close()

    assert created.version == "1" and len(server.versions) == 1


def test_a_run_created_before_a_lost_answer_is_found_not_created_twice() -> None:
    server = AppliedThenLost()
    with stand_in() as standin:
        standin.serve = server.serve
        client = mlflow_rest.RestClient(standin.url, _FAST)
        run = client.create_run("1", run_name="clf@12345678", tags={"mlflow.user": "ci"})
        client.close()

    assert run.info.run_id == "run1"
    assert len(server.runs) == 1


@pytest.fixture
def registry(tmp_path: Path, empty_registry_db: Path) -> MlflowRegistry:
    db = tmp_path / "mlflow.db"
    shutil.copy(empty_registry_db, db)
    return MlflowRegistry(f"sqlite:///{db}", artifact_root=tmp_path / "artifacts")


class _KilledAfterTheAliasMoves:
    """MLflow's client, in a job killed as soon as the alias has moved."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def set_registered_model_alias(self, name: str, alias: str, version: str) -> None:
        self._client.set_registered_model_alias(name, alias, version)
        raise KeyboardInterrupt  # SIGTERM, as mlci's handler raises it


def test_a_kill_right_after_the_alias_moves_keeps_the_rollback_target(
    registry: MlflowRegistry, tmp_path: Path
) -> None:
    from mlci.commands.registry import _previous

    model = tmp_path / "model.bin"
    model.write_bytes(b"weights")
    first, _ = registry.register("clf", model, lineage("1" * 40, accuracy=0.8))
    registry.move_alias("clf", "champion", first)
    second, _ = registry.register("clf", model, lineage("2" * 40, accuracy=0.9))
    registry._client_instance = _KilledAfterTheAliasMoves(registry._client())

    with pytest.raises(KeyboardInterrupt):
        registry.move_alias("clf", "champion", second)

    registry._client_instance = registry._client_instance._client
    champion = registry.by_alias("clf", "champion")
    assert champion is not None and champion.version == "2"
    assert _previous(registry.history("clf", "champion"), champion.version) == "1"


def test_an_older_build_whose_clone_lacks_the_champions_commit_keeps_off_the_alias(
    tmp_path: Path,
) -> None:
    from mlci import git
    from mlci.pipeline.promote import _is_newer

    origin = tmp_path / "origin"
    git.init_repo(origin)
    (origin / "a.txt").write_text("a\n")
    older = git.commit_all(origin, "older")
    clone = tmp_path / "clone"  # the older build's checkout, made before the next push
    git.run_git("clone", "--quiet", str(origin), str(clone), cwd=tmp_path)
    (origin / "a.txt").write_text("b\n")
    newer = git.commit_all(origin, "newer: the champion's commit")

    assert git.resolve_commit(clone, newer) is None
    assert _is_newer(clone, newer, older)
    assert not _is_newer(clone, older, newer)
    assert not _is_newer(clone, "--upload-pack=touch pwned", older)
    assert not (clone / "pwned").exists()


def _dead_job(db: Path, model: str, hours_ago: float) -> str:
    """What a job killed after creating its version leaves: a RUNNING run started
    `hours_ago`, and the version made from it. Returns the run's id."""
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{db}", registry_uri=f"sqlite:///{db}")
    experiment = client.get_experiment_by_name("mlci")
    assert experiment is not None
    started = int((time.time() - hours_ago * 3600) * 1000)
    run = client.create_run(
        experiment.experiment_id, start_time=started, run_name=f"{model}@deadbeef"
    )
    client.create_model_version(
        model,
        f"{run.info.artifact_uri}/model",
        run_id=run.info.run_id,
        tags={"mlci.commit": "d" * 40},
    )
    return str(run.info.run_id)


def test_a_run_left_running_by_a_dead_job_is_shown_then_cleaned_up(project: Project) -> None:
    from mlflow import MlflowClient

    from tests.test_cli import mlci

    assert mlci("run", cwd=project.root).returncode == 0  # v1, the champion
    db = project.root / ".mlci" / "mlflow.db"
    dead = _dead_job(db, "tiny-model", hours_ago=7)  # v2
    _dead_job(db, "tiny-model", hours_ago=1)  # v3: a job that may still be running

    shown = mlci("registry", "show", cwd=project.root).stdout
    listed = json.loads(mlci("registry", "show", "--json", cwd=project.root).stdout)
    project.write("NOTES.md", "the next commit\n")
    project.commit()
    assert mlci("run", cwd=project.root).returncode == 0  # the next promotion
    after = json.loads(mlci("registry", "show", "--json", cwd=project.root).stdout)

    assert "! v2: its run was left RUNNING by a dead job (for over 6 h)" in shown
    assert "v3:" not in shown
    assert [v["problem"] is not None for v in listed["versions"]] == [False, True, False]
    assert [v["version"] for v in after["versions"]] == ["4", "3", "1"]  # v2 withdrawn
    client = MlflowClient(tracking_uri=f"sqlite:///{db}")
    assert client.get_run(dead).info.status == "FAILED"
