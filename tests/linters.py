"""The linters the generated workflows, mlci's own workflows and the docs' snippets must
pass, run the same way everywhere: actionlint (with shellcheck on every `run:` script),
zizmor offline, and check-jsonschema's built-in schemas. All come with the dev extra."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
ACTIONLINT = [str(BIN / "actionlint"), "-no-color", "-shellcheck", str(BIN / "shellcheck")]


def actionlint(files: list[Path], labels: set[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    config = cwd / "actionlint.yaml"
    listed = "\n".join(f"    - {label}" for label in sorted(labels))
    config.write_text(f"self-hosted-runner:\n  labels:\n{listed or '    []'}\n")
    return subprocess.run(
        [*ACTIONLINT, "-config-file", str(config), *map(str, files)],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    )


def zizmor(*paths: Path, extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "zizmor"), "--offline", "--no-progress", *extra, *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "NO_COLOR": "1"},
    )


def schema(name: str, *files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", name, *map(str, files)],
        capture_output=True,
        text=True,
        check=False,
    )
