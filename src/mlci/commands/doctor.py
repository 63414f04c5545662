"""`mlci doctor`: run every check of the preflight stage and print what it found."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from mlci.console import Console
from mlci.errors import EXIT_EXTERNAL, EXIT_OK
from mlci.pipeline.preflight import CheckResult, context_for, run_checks


def doctor_command(*, config: Path | None, as_json: bool) -> int:
    results = run_checks(context_for(config, os.environ))
    failed = any(result.status == "fail" for result in results)
    if as_json:
        data = {"ok": not failed, "checks": [_json(result) for result in results]}
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        console = Console(sys.stdout)
        colour = {"ok": "ok", "warn": "warn", "fail": "fail", "skip": "dim"}
        for result in results:
            label = console.paint(f"{result.status:<4}", colour[result.status])
            sys.stdout.write(f"{label}  {result.line()}\n")
    return EXIT_EXTERNAL if failed else EXIT_OK


def _json(result: CheckResult) -> dict[str, object]:
    data = asdict(result)
    del data["exit_code"]
    return data
