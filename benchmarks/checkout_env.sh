# Sourced by the GPU checks: mlci from this checkout's src/ (it need not be installed), and
# `python` on PATH the python with torch (a wrapper, not a link: a virtual environment's
# python finds its packages by its own path), for the examples' `python train.py`.
# Needs $work (a folder of the check's) set; reads PYTHON (default python3).
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-python3}
export PYTHONPATH="$repo/src${PYTHONPATH:+:$PYTHONPATH}"
mkdir -p "$work/bin"
printf '#!/bin/sh\nexec "%s" "$@"\n' "$(command -v "$python")" >"$work/bin/python"
chmod +x "$work/bin/python"
export PATH="$work/bin:$PATH"
mlci() { "$python" -m mlci "$@"; }
