"""What the training wrote, made into an MLflow model that `models:/NAME@ALIAS` loads.

- A folder with an `MLmodel` file is an MLflow model already: it is logged as it is.
- A pickle (`.pkl`, `.pickle`) of a scikit-learn model, alone or the only model file in
  its folder, gets the `sklearn` flavour: `mlflow.sklearn.load_model` and
  `mlflow.pyfunc.load_model` both load it.
- A joblib file, or a pickle of another class (an XGBoost or LightGBM estimator, a class
  of the project's own package), gets the `python_function` flavour with a small loader
  shipped beside it (`code/mlci_model_loader.py`): `mlflow.pyfunc.load_model` loads it and
  calls its `predict`.
- Anything else (ONNX, a torch state dict, several model files) is logged as files only.

MLflow's own `log_model` infers the pip requirements by loading the model again in a
subprocess, which takes seconds. Here the requirements come from the modules the pickle
refers to, read from its opcodes without unpickling it or importing the model's
libraries, and pinned to the versions installed in this environment.
"""

from __future__ import annotations

import importlib.metadata
import pickletools
import platform
import re
import sys
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

PICKLE_SUFFIXES = (".pkl", ".pickle")
JOBLIB_SUFFIXES = (".joblib",)
LOADER_MODULE = "mlci_model_loader"
_GENERATED = ("MLmodel", "requirements.txt", "python_env.yaml", "conda.yaml", "code")
# Import names whose distribution has another name; others are looked up by their own name.
_DISTRIBUTIONS = {
    "sklearn": "scikit-learn",
    "PIL": "Pillow",
    "yaml": "PyYAML",
    "cv2": "opencv-python",
    "skimage": "scikit-image",
}
_MODULE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_LOADER_SOURCE = '''\
"""Loads the model that mlci registered; needs only the model's own libraries."""

import pickle
from pathlib import Path


class _Model:
    def __init__(self, model):
        self.model = model

    def predict(self, data, params=None):
        return self.model.predict(data)


def _load_pyfunc(path):
    path = Path(path)
    if path.suffix.lower() == ".joblib":
        import joblib

        return _Model(joblib.load(path))
    with path.open("rb") as handle:
        return _Model(pickle.load(handle))
'''


@dataclass(frozen=True)
class PackagedModel:
    """How a model is registered: its format, and the MLflow files written for it."""

    format: str  # "mlflow" (as the training wrote it), "sklearn", "pyfunc" or "files"
    generated: Path | None = None  # a folder to log beside the model (MLmodel, requirements)
    note: str | None = None  # why a model is registered as files only
    requirements: tuple[str, ...] = ()


@dataclass(frozen=True)
class PickleScan:
    """What a pickle refers to, read without unpickling it."""

    top: str | None  # "module.Class" of the pickled object; None for a dict, list, ...
    modules: frozenset[str]


def package_model(artifact: Path, workdir: Path) -> PackagedModel:
    """Write the MLflow files that make `artifact` loadable, into a new folder of `workdir`."""
    if artifact.is_dir() and (artifact / "MLmodel").is_file():
        return PackagedModel("mlflow")
    model_file, why_not = _model_file(artifact)
    if model_file is None:
        return PackagedModel("files", note=why_not)
    scan = scan_pickle(model_file)
    if scan is None or scan.top is None:
        what = "not a pickle mlci can read" if scan is None else "not a pickled object"
        return PackagedModel("files", note=f"{model_file.name} is {what}")
    if "__main__" in {module.split(".")[0] for module in scan.modules}:
        return PackagedModel(
            "files",
            note=f"{model_file.name} refers to classes of the training script (__main__), "
            f"which cannot be loaded elsewhere; move them into a module",
        )
    joblib = model_file.suffix.lower() in JOBLIB_SUFFIXES
    sklearn = not joblib and scan.top.startswith("sklearn.")
    modules = set(scan.modules) | ({"joblib", "numpy"} if joblib else set())
    requirements = pinned_requirements(modules)
    relative = model_file.name
    out = workdir / f"mlmodel-{uuid.uuid4().hex[:8]}"
    out.mkdir(parents=True)
    flavors = _sklearn_flavors(relative) if sklearn else _pyfunc_flavors(relative, out)
    _write_mlflow_files(out, flavors, requirements)
    return PackagedModel(
        "sklearn" if sklearn else "pyfunc", generated=out, requirements=tuple(requirements)
    )


def _model_file(artifact: Path) -> tuple[Path | None, str]:
    suffixes = PICKLE_SUFFIXES + JOBLIB_SUFFIXES
    if artifact.is_file():
        if artifact.suffix.lower() in suffixes:
            return artifact, ""
        return None, f"{artifact.name} is not a pickle or joblib file"
    found = sorted(p for p in artifact.iterdir() if p.is_file() and p.suffix.lower() in suffixes)
    if len(found) != 1:
        what = "no" if not found else f"{len(found)}"
        return None, f"{artifact.name}/ has no MLmodel file and {what} pickle or joblib files"
    taken = sorted(p.name for p in artifact.iterdir() if p.name in _GENERATED)
    if taken:
        return None, f"{artifact.name}/ has its own {', '.join(taken)} but no MLmodel file"
    return found[0], ""


def scan_pickle(path: Path) -> PickleScan | None:
    """The classes a pickle refers to, read from its opcodes; None when it is no pickle.

    A joblib file stores numpy arrays as raw bytes between the pickle's opcodes: the scan
    stops at the first one, so it may miss modules that only later objects use.
    """
    modules: set[str] = set()
    top: str | None = None
    started = False
    memo: dict[int, object] = {}
    recent: list[object] = [None, None]  # the last two values pushed, for STACK_GLOBAL
    try:
        with path.open("rb") as handle:
            for opcode, arg, _ in pickletools.genops(handle):
                name = opcode.name
                if name == "STOP":
                    break
                if name in ("PROTO", "FRAME", "MARK"):
                    continue
                if name == "MEMOIZE":
                    memo[len(memo)] = recent[-1]
                    continue
                if name in ("PUT", "BINPUT", "LONG_BINPUT") and isinstance(arg, int):
                    memo[arg] = recent[-1]
                    continue
                value: object = None
                found: str | None = None
                if name in ("GET", "BINGET", "LONG_BINGET") and isinstance(arg, int):
                    value = memo.get(arg)
                elif isinstance(arg, str) and name.endswith("UNICODE"):
                    value = arg
                elif name in ("GLOBAL", "INST"):
                    found = ".".join(str(arg).split(" ", 1))
                elif name == "STACK_GLOBAL" and all(isinstance(v, str) for v in recent):
                    found = f"{recent[-2]}.{recent[-1]}"
                if found is not None:
                    module = found.rsplit(".", 1)[0]
                    if not _MODULE_NAME.fullmatch(found):
                        break
                    modules.add(module)
                    if found.endswith("NumpyArrayWrapper") and module.startswith("joblib"):
                        break  # raw array bytes follow
                if not started and not isinstance(value, str):
                    started = True
                    top = found
                recent = [recent[-1], value]
    except (ValueError, EOFError, UnicodeDecodeError, OverflowError):
        if not started:
            return None
    except OSError:
        return None
    if not started:
        return None
    return PickleScan(top=top, modules=frozenset(modules))


def pinned_requirements(modules: Iterable[str]) -> list[str]:
    """`dist==version` for the distributions that provide `modules`, plus MLflow's own.

    Standard-library modules are left out, and so are modules that no installed
    distribution provides (a guessed name could install an unrelated package).
    """
    tops = {module.split(".")[0] for module in modules}
    tops -= set(sys.stdlib_module_names) | {"builtins", "__builtin__", "copy_reg", LOADER_MODULE}
    requirements = {_pinned("mlflow") or _pinned("mlflow-skinny") or "mlflow"}
    index: dict[str, list[str]] | None = None
    for top in sorted(tops):
        requirement = _pinned(_DISTRIBUTIONS.get(top, top))
        if requirement is None:
            if index is None:  # reads every installed distribution's files: only when needed
                index = dict(importlib.metadata.packages_distributions())
            names = index.get(top, [])
            requirement = _pinned(names[0]) if names else None
        if requirement is not None:
            requirements.add(requirement)
    return sorted(requirements, key=str.lower)


def _pinned(distribution: str) -> str | None:
    try:
        meta = importlib.metadata.distribution(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
    return f"{meta.metadata['Name']}=={meta.version}"


def _env() -> dict[str, str]:
    return {"conda": "conda.yaml", "virtualenv": "python_env.yaml"}


def _sklearn_flavors(model_path: str) -> dict[str, object]:
    return {
        "python_function": {
            "env": _env(),
            "loader_module": "mlflow.sklearn",
            "model_path": model_path,
            "predict_fn": "predict",
            "python_version": platform.python_version(),
        },
        "sklearn": {
            "code": None,
            "pickled_model": model_path,
            "serialization_format": "pickle",
            "sklearn_version": importlib.metadata.version("scikit-learn"),
        },
    }


def _pyfunc_flavors(model_path: str, out: Path) -> dict[str, object]:
    (out / "code").mkdir()
    (out / "code" / f"{LOADER_MODULE}.py").write_text(_LOADER_SOURCE)
    return {
        "python_function": {
            "env": _env(),
            "loader_module": LOADER_MODULE,
            "code": "code",
            "data": model_path,
            "python_version": platform.python_version(),
        }
    }


def _write_mlflow_files(out: Path, flavors: dict[str, object], requirements: list[str]) -> None:
    mlmodel = {
        "flavors": flavors,
        "mlflow_version": (_pinned("mlflow") or "==").split("==")[1] or None,
        "model_uuid": uuid.uuid4().hex,
        "utc_time_created": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime()),
    }
    (out / "MLmodel").write_text(yaml.safe_dump(mlmodel, sort_keys=True))
    (out / "requirements.txt").write_text("".join(f"{r}\n" for r in requirements))
    python = platform.python_version()
    python_env = {
        "python": python,
        "build_dependencies": ["pip"],
        "dependencies": ["-r requirements.txt"],
    }
    (out / "python_env.yaml").write_text(yaml.safe_dump(python_env, sort_keys=False))
    conda = {
        "name": "mlflow-env",
        "channels": ["conda-forge"],
        "dependencies": [f"python={python}", "pip", {"pip": requirements}],
    }
    (out / "conda.yaml").write_text(yaml.safe_dump(conda, sort_keys=False))
