"""`mlci report`: render the last run's report again, from .mlci/out/report.json."""

from __future__ import annotations

import json
from pathlib import Path

from mlci.commands.summary import print_outcome
from mlci.config import locate
from mlci.core.report.document import from_document
from mlci.errors import EXIT_OK, UsageError
from mlci.pipeline.outputs import OUT_DIR, write_outputs


def report_command(*, config: Path | None, out: Path | None, as_json: bool) -> int:
    """Render the last run's report again (into `out`), from .mlci/out/report.json."""
    root = locate(config).parent.resolve()
    source = root / OUT_DIR
    document_path = source / "report.json"
    try:
        document = json.loads(document_path.read_text(encoding="utf-8"))
        report = from_document(document, lambda name: (source / "plots" / name).read_bytes())
    except FileNotFoundError as missing:
        raise UsageError(
            f"{missing.filename}: not found; `mlci run` or `mlci gate` writes the report first"
        ) from None
    except (ValueError, TypeError, KeyError) as exc:
        raise UsageError(
            f"{document_path}: not a report this mlci can read ({exc}); run `mlci gate` again"
        ) from None
    target = out.resolve() if out is not None else source
    write_outputs(report, target)
    print_outcome(report, target, as_json=as_json)
    return EXIT_OK
