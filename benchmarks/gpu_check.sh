#!/usr/bin/env bash
# The GPU path, checked on a real GPU machine: `mlci init --example torch`, then `mlci run`
# with train.device: cuda, and the device block mlci recorded (gate.json's training.device
# and the report's Device line). Then the fail-fast path: the same run with every GPU
# hidden (CUDA_VISIBLE_DEVICES="") must stop before training with exit code 5.
#
#   bash benchmarks/gpu_check.sh              # needs: python3 with torch, scikit-learn, PyYAML
#   HIDDEN=4096 EPOCHS=200 bash benchmarks/gpu_check.sh   # a model big enough to load the GPU
#
# mlci itself need not be installed: it runs from this checkout's src/.
set -euo pipefail
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# shellcheck source=benchmarks/checkout_env.sh
source "$(dirname "$0")/checkout_env.sh"

echo "== nvidia-smi"
nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv || true
"$python" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "available", torch.cuda.is_available())'

echo "== mlci init --example torch"
mlci init --example torch --dir "$work/project" >/dev/null
cd "$work/project"
sed -i "s/device: auto/device: ${DEVICE:-cuda}/; s/^  baseline: auto/  baseline: none/" mlci.yaml
sed -i "s/hidden: 64 /hidden: ${HIDDEN:-4096} /; s/epochs: 20/epochs: ${EPOCHS:-200}/" params.yaml
git init -q -b main && git add -A
git -c user.name=gpu-check -c user.email=gpu-check@example.invalid commit -qm "torch example"

echo "== mlci run (train.device: ${DEVICE:-cuda})"
status=0
mlci run --no-promote || status=$?
echo "exit code: $status"
echo "== recorded device (gate.json training)"
"$python" - <<'PY'
import json
training = json.load(open(".mlci/out/gate.json"))["training"]
print(json.dumps(training, indent=2))
PY
grep -E "^- (Device|Training):" .mlci/out/report.md || true

echo "== fail fast: CUDA_VISIBLE_DEVICES='' with train.device: cuda"
sed -i "s/device: ${DEVICE:-cuda}/device: cuda/" mlci.yaml
hidden=0
CUDA_VISIBLE_DEVICES="" mlci run --no-promote >/dev/null 2>"$work/hidden.err" || hidden=$?
echo "exit code: $hidden (expected 5)"
grep -m1 "train.device is cuda" "$work/hidden.err" || cat "$work/hidden.err"
[ "$status" = 0 ] && [ "$hidden" = 5 ]
