"""A stand-in for `nvidia-smi`, for machines without an NVIDIA GPU.

It answers the calls mlci makes the way the real one does: `--query-gpu=FIELDS
--format=csv,noheader,nounits` prints one CSV line per GPU with the fields asked for, in
that order; without arguments it prints the table whose header names the driver and CUDA
versions. The machine it pretends to be is a JSON file named by FAKE_NVIDIA_SMI:

    {"driver": "580.159.03", "cuda": "13.0",
     "gpus": [{"index": "0", "uuid": "GPU-...", "name": "NVIDIA H200", "memory.total": 143771,
               "samples": [[utilization %, memory.used MiB], ...]}],
     "fail": null | {"exit": 9, "message": "NVIDIA-SMI has failed ..."}}

Each query of utilization.gpu/memory.used takes the next sample (the last one repeats).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    state_path = Path(os.environ["FAKE_NVIDIA_SMI"])
    state = json.loads(state_path.read_text())
    if state.get("fail"):
        print(state["fail"]["message"])
        return int(state["fail"].get("exit", 9))
    query = next((a.split("=", 1)[1] for a in argv if a.startswith("--query-gpu=")), None)
    if query is None:
        print(_table(state))
        return 0
    fields = query.split(",")
    sampled = {"utilization.gpu", "memory.used"} & set(fields)
    counter = state_path.with_suffix(".count")
    count = int(counter.read_text()) if counter.exists() else 0
    if sampled:
        counter.write_text(str(count + 1))
    for gpu in state["gpus"]:
        samples = gpu.get("samples") or [[0, 0]]
        utilization, used = samples[min(count, len(samples) - 1)]
        values = {
            **{k: v for k, v in gpu.items() if k != "samples"},
            "driver_version": state["driver"],
            "utilization.gpu": utilization,
            "memory.used": used,
        }
        print(", ".join(str(values.get(name, "[N/A]")) for name in fields))
    return 0


def _table(state: dict[str, object]) -> str:
    return (
        "Sun Nov 29 23:59:00 2026\n"
        "+-----------------------------------------------------------------------------+\n"
        f"| NVIDIA-SMI {state['driver']}   Driver Version: {state['driver']}   "
        f"CUDA Version: {state['cuda']}     |\n"
        "+-----------------------------------------------------------------------------+"
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
