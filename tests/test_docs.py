"""The docs say what the code does: checked here so they cannot drift apart silently."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mlci.cli import build_parser
from mlci.config import KEYS
from mlci.core.gate import Baseline, Rule, evaluate_gate
from mlci.core.report import ReportInput, render_json

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_the_quick_start_is_exactly_the_two_make_commands() -> None:
    section = README.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```sh\n(.*?)```", section, flags=re.DOTALL)
    assert [block.strip() for block in commands] == ["make demo", "make test"]


def test_ci_runs_the_readme_test_command() -> None:
    script = (ROOT / ".ci" / "run").read_text()
    assert script.strip().splitlines()[-1] == "make test"


@pytest.mark.parametrize(("section", "key"), [(s, k) for s, keys in KEYS.items() for k in keys])
def test_every_config_key_is_documented(section: str, key: str) -> None:
    docs = (ROOT / "docs" / "config.md").read_text()
    assert re.search(rf"\b{re.escape(key)}\b", docs), f"{section}.{key} is not in docs/config.md"


def test_every_command_is_in_the_readme() -> None:
    parser = build_parser()
    (commands,) = [a for a in parser._actions if a.dest == "command"]
    for name in commands.choices:  # type: ignore[union-attr]
        assert f"`mlci {name}" in README, name


def test_every_gate_json_field_is_documented() -> None:
    docs = (ROOT / "docs" / "gate-json.md").read_text()
    gate = evaluate_gate([Rule("accuracy", min=0.5)], {"accuracy": 0.9}, Baseline("file", "b", {}))
    data = render_json(ReportInput(model="m", gate=gate, candidate={"accuracy": 0.9}))
    result = data["results"][0]  # type: ignore[index]
    for key in [*data, *result]:
        assert f"`{key}`" in docs, f"gate.json field {key} is not in docs/gate-json.md"
