"""mlci's promote step against a plain MLflow script, both against one local `mlflow server`.

Run from the repository root with the Python that has mlci, mlflow and scikit-learn:

    .venv/bin/python benchmarks/promote.py [--runs N]

Both register the same pickled scikit-learn model (the example's digits classifier) as a
new version and point `@champion` at it, each run in a fresh subprocess:

- plain MLflow: `mlflow.sklearn.log_model` with its default settings (which infer the pip
  requirements), `mlflow.register_model`, `set_registered_model_alias`: what a hand-written
  CI step does. Its model is unpickled before its clock starts (it would be in memory
  after training).
- mlci: `MlflowRegistry.register` (lineage tags, metrics, the model made an MLflow model
  with requirements read from the pickle) and `move_alias` (recorded in the history), as
  `mlci run` does on the main branch.

Each side's time runs from before its first import (MLflow's, or mlci's registry) to the
alias being set; the process's whole wall time is shown too. Against a server, mlci talks
MLflow's REST API and never imports MLflow; the script says whether it did. Afterwards
both champions are loaded back with `mlflow.pyfunc.load_model` and must predict the same
as the trained model. It prints the medians and their ratio, and, for scale, the time of
importing MLflow's client alone; it asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

PLAIN = textwrap.dedent(
    """\
    import json, pickle, sys, time
    model = pickle.load(open(sys.argv[1], "rb"))
    started = time.perf_counter()
    import mlflow
    import mlflow.sklearn
    from mlflow import MlflowClient
    mlflow.set_experiment("plain")
    with mlflow.start_run():
        info = mlflow.sklearn.log_model(model, name="model")
    version = mlflow.register_model(info.model_uri, "plain-bench")
    MlflowClient().set_registered_model_alias("plain-bench", "champion", version.version)
    print(json.dumps({"seconds": time.perf_counter() - started}))
    """
)

MLCI = textwrap.dedent(
    """\
    import json, os, sys, time
    started = time.perf_counter()
    from pathlib import Path
    from mlci.registry.base import Lineage
    from mlci.registry.mlflow import MlflowRegistry
    registry = MlflowRegistry(os.environ["MLFLOW_TRACKING_URI"])
    lineage = Lineage(
        commit=sys.argv[2], branch="main", dirty=False, ci="local", event="push",
        metrics={"accuracy": 0.97}, gate_verdict="pass", gate_summary="passed: 1 rule met",
        baseline=None,
    )
    version, _ = registry.register("mlci-bench", Path(sys.argv[1]), lineage)
    current = registry.by_alias("mlci-bench", "champion")
    registry.move_alias("mlci-bench", "champion", version, current=current)
    seconds = time.perf_counter() - started
    imported = any(name == "mlflow" or name.startswith("mlflow.") for name in sys.modules)
    print(json.dumps({"seconds": seconds, "format": version.model_format, "mlflow": imported}))
    """
)


IMPORT = textwrap.dedent(
    """\
    import json, time
    started = time.perf_counter()
    from mlflow import MlflowClient
    print(json.dumps({"seconds": time.perf_counter() - started}))
    """
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextlib.contextmanager
def mlflow_server(folder: Path) -> Iterator[str]:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    args = ["--host", "127.0.0.1", "--port", str(port), "--workers", "1"]
    args += ["--backend-store-uri", f"sqlite:///{folder / 'server.db'}"]
    args += ["--artifacts-destination", str(folder / "artifacts")]
    process = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", *args],
        cwd=folder,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.5)
        else:
            raise SystemExit("mlflow server did not start within 180 s")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=60)


def train(folder: Path) -> tuple[Path, object, object]:
    """The example's digits classifier, pickled to folder/model/model.pkl as train.py does."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, labels = load_digits(return_X_y=True)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    model.fit(features, labels)
    (folder / "model").mkdir()
    path = folder / "model" / "model.pkl"
    path.write_bytes(pickle.dumps(model))
    return path, model, features[::17]


def timed(script: str, args: list[str], env: dict[str, str]) -> tuple[float, float, dict[str, str]]:
    """(seconds the script reports, process wall seconds, its JSON line)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, check=False
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"the script failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    return float(result["seconds"]), wall, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="timed runs of each (default 3)")
    runs = parser.parse_args(argv).runs
    with tempfile.TemporaryDirectory(prefix="mlci-bench-") as tmp:
        folder = Path(tmp)
        path, model, rows = train(folder)
        with mlflow_server(folder) as url:
            env = {**os.environ, "MLFLOW_TRACKING_URI": url, "MLFLOW_DISABLE_TELEMETRY": "true"}
            plain: list[tuple[float, float]] = []
            mlci: list[tuple[float, float]] = []
            floor: list[tuple[float, float]] = []
            model_format = ""
            mlflow_imported = True
            for run in range(runs + 1):  # the first of each warms the caches, untimed
                seconds, wall, _ = timed(PLAIN, [str(path)], env)
                if run:
                    plain.append((seconds, wall))
                commit = f"{run:040x}"
                seconds, wall, result = timed(MLCI, [str(path.parent), commit], env)
                model_format = result["format"]
                mlflow_imported = result["mlflow"]
                if run:
                    mlci.append((seconds, wall))
                    floor.append(timed(IMPORT, [], env)[:2])
            same = _loads_back(url, model, rows)
    print(f"promote step: median of {runs} runs each, after one warm-up run; local mlflow server")
    print(f"Python {platform.python_version()} on {platform.platform()}, {os.cpu_count()} CPUs")
    print()
    print(f"{'':34}{'step':>8}{'process':>9}")
    for name, times in (("plain MLflow (log_model defaults)", plain), ("mlci", mlci)):
        step = statistics.median(t[0] for t in times)
        wall = statistics.median(t[1] for t in times)
        print(f"{name:34}{step:7.2f}s{wall:8.2f}s")
    ratio = statistics.median(t[0] for t in plain) / statistics.median(t[0] for t in mlci)
    wall_ratio = statistics.median(t[1] for t in plain) / statistics.median(t[1] for t in mlci)
    print(f"{'mlci is faster by':34}{ratio:7.1f}x{wall_ratio:8.1f}x")
    step = statistics.median(t[0] for t in floor)
    wall = statistics.median(t[1] for t in floor)
    print(f"{'(from mlflow import MlflowClient)':34}{step:7.2f}s{wall:8.2f}s")
    print()
    print(f"mlci registered the model as: {model_format}; imported mlflow: {mlflow_imported}")
    print(f"both @champion models load and predict as trained: {same}")
    return 0


def _loads_back(url: str, model: object, rows: object) -> bool:
    os.environ["MLFLOW_TRACKING_URI"] = url
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    import mlflow.pyfunc

    expected = list(model.predict(rows))  # type: ignore[attr-defined]
    return all(
        list(mlflow.pyfunc.load_model(f"models:/{name}@champion").predict(rows)) == expected
        for name in ("plain-bench", "mlci-bench")
    )


if __name__ == "__main__":
    raise SystemExit(main())
