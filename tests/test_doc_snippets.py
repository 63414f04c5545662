"""Docs you can paste: every YAML snippet in README.md and docs/ parses (an excerpt says so
with a `...` line), every whole GitHub workflow among them (the new side of a diff too)
passes actionlint and zizmor as the generated files do, and every whole mlci.yaml passes
`mlci doctor`'s config check."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import mlci
from mlci.config import KEYS
from mlci.pipeline.preflight import check_config, context_for
from tests.linters import actionlint, zizmor

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def _blocks(language: str) -> list[tuple[str, str]]:
    """(page:line, text) of every fenced block in that language."""
    found = []
    for page in PAGES:
        text = page.read_text()
        for match in re.finditer(rf"```{language}\n(.*?)```", text, flags=re.DOTALL):
            line = text.count("\n", 0, match.start()) + 1
            found.append((f"{page.relative_to(ROOT)}:{line}", match[1]))
    return found


def _new_side(diff: str) -> str:
    """The text a diff block ends up with: its context and added lines."""
    return "\n".join(line[1:] for line in diff.splitlines() if line[:1] in (" ", "+") or not line)


def _excerpt(text: str) -> bool:
    return re.search(r"(?m)^\s*\.\.\.\s*$", text) is not None


SNIPPETS = [(where, text) for where, text in _blocks("ya?ml") if not _excerpt(text)]
DIFFS = [(where, _new_side(text)) for where, text in _blocks("diff")]


def _workflows() -> list[tuple[str, str]]:
    return [
        (where, text)
        for where, text in SNIPPETS + DIFFS
        if isinstance(data := yaml.safe_load(text), dict) and "jobs" in data and True in data
    ]


def _configs() -> list[tuple[str, str]]:
    """Whole mlci.yaml files: mlci's sections only, the model named (a fragment shows one
    section; GitLab's jobs may be called `model` too)."""
    return [
        (where, text)
        for where, text in SNIPPETS
        if isinstance(data := yaml.safe_load(text), dict)
        and isinstance(data.get("model"), dict)
        and "name" in data["model"]
        and set(data) <= {"version", *KEYS}
    ]


@pytest.mark.parametrize(("where", "text"), SNIPPETS, ids=[w for w, _ in SNIPPETS])
def test_every_yaml_snippet_parses(where: str, text: str) -> None:
    yaml.safe_load(text)


def test_the_snippets_are_found() -> None:
    assert len(SNIPPETS) >= 20
    wheres = [where for where, _ in _workflows()]
    assert "docs/migrating-from-cml.md" in str(wheres)  # the diff's new side
    assert len(wheres) >= 5
    assert len(_configs()) >= 2


def test_every_workflow_snippet_passes_actionlint_and_zizmor(tmp_path: Path) -> None:
    folder = tmp_path / ".github" / "workflows"
    folder.mkdir(parents=True)
    names = {}
    for index, (where, text) in enumerate(_workflows()):
        path = folder / f"snippet{index:02d}.yml"
        path.write_text(text)
        names[path.name] = where
    linted = actionlint(sorted(folder.iterdir()), set(), tmp_path)
    assert linted.returncode == 0, _named(linted.stdout + linted.stderr, names)
    audited = zizmor(folder)
    assert audited.returncode == 0, _named(audited.stdout + audited.stderr, names)
    assert "No findings to report" in audited.stdout


def _named(output: str, names: dict[str, str]) -> str:
    for name, where in names.items():
        output = output.replace(name, f"{name} ({where})")
    return output


@pytest.mark.parametrize(("where", "text"), _configs(), ids=[w for w, _ in _configs()])
def test_every_whole_config_snippet_passes_the_doctors_config_check(
    where: str, text: str, tmp_path: Path
) -> None:
    (tmp_path / "mlci.yaml").write_text(text)
    result = check_config(context_for(tmp_path / "mlci.yaml", {}))
    assert result.status == "ok", f"{where}: {result}"


def test_every_pinned_mlci_in_the_docs_is_this_version() -> None:
    """A release updates them (docs/support.md): a pasted install line must exist."""
    pins = {
        (page.name, version)
        for page in PAGES
        for version in re.findall(r"mlci(?:\[[\w,]*\])?==([0-9][\w.]*)", page.read_text())
    }
    assert len(pins) >= 3  # forges.md, migrating-from-cml.md, workflows.md
    assert {version for _, version in pins} == {mlci.__version__}, pins
