#!/usr/bin/env bash
# train.on: ray on a real GPU machine: a Ray head on 127.0.0.1 with the machine's GPUs,
# the torch example (`mlci init --example torch`) trained through the Ray Jobs API with
# train.resources.gpus: 1, its metrics brought back through train.storage, and the device
# the job saw (done.json: GPU from nvidia-smi, minutes) printed. Then the stall path: a
# training that hangs on the GPU node is stopped, and no job of mlci's is left running.
#
#   bash benchmarks/gpu_ray_check.sh     # needs: python3 with torch, scikit-learn, PyYAML,
#                                        # and ray[default] (pip install 'mlci[ray]')
#
# mlci itself need not be installed: it runs from this checkout's src/.
#   GPUS=0 bash benchmarks/gpu_ray_check.sh   # the same on a machine without a GPU
set -euo pipefail
port=${RAY_DASHBOARD_PORT:-8265}
gpus=${GPUS:-1}
work=$(mktemp -d /tmp/mlci-ray.XXXX)  # short: Ray's sockets live under it
# The job's `python` (Ray's head runs with this PATH) and the runner's: the one with torch.
# shellcheck source=benchmarks/checkout_env.sh
source "$(dirname "$0")/checkout_env.sh"

echo "== nvidia-smi"
nvidia-smi --query-gpu=index,name,memory.total,driver_version --format=csv || true
"$python" -c 'import ray, torch; print("ray", ray.__version__, "torch", torch.__version__, "cuda", torch.cuda.is_available())'

echo "== ray start --head (the machine's GPUs, dashboard on 127.0.0.1:$port)"
setsid "$python" -m ray.scripts.scripts start --head --block --disable-usage-stats \
  --dashboard-host 127.0.0.1 --dashboard-port "$port" --temp-dir "$work/ray" \
  >"$work/head.log" 2>&1 &
head=$!
cleanup() {
  kill -TERM -- "-$head" 2>/dev/null || true
  sleep 5
  kill -KILL -- "-$head" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM INT  # so that cleanup runs
for _ in $(seq 120); do
  curl -fs "http://127.0.0.1:$port/api/jobs/" >/dev/null 2>&1 && break
  sleep 1
done
curl -fs "http://127.0.0.1:$port/api/jobs/" >/dev/null || { cat "$work/head.log"; exit 1; }

echo "== mlci init --example torch, train.on: ray"
mlci init --example torch --dir "$work/project" >/dev/null
cd "$work/project"
"$python" - "$port" "$work/storage" "$gpus" <<'PY'
import sys, yaml
port, storage, gpus = sys.argv[1:4]
text = open("mlci.yaml").read()
text = text.replace("\n  baseline: auto", "\n  baseline: none")
extra = (
    f"  on: ray\n  storage: {storage}\n  resources: {{gpus: {gpus}}}\n"
    f"  ray: {{address: \"http://127.0.0.1:{port}\"}}\n"
)
text = text.replace("  timeout_minutes: 20\n", "  timeout_minutes: 20\n" + extra)
yaml.safe_load(text)
open("mlci.yaml", "w").write(text)
PY
sed -i "s/hidden: 64 /hidden: ${HIDDEN:-4096} /; s/epochs: 20/epochs: ${EPOCHS:-200}/" params.yaml
git init -q -b main && git add -A
git -c user.name=gpu-check -c user.email=gpu-check@example.invalid commit -qm "torch example on ray"

echo "== mlci run (train.on: ray, resources.gpus: $gpus)"
status=0
mlci run --no-promote 2>&1 | tee "$work/run.log" || status=$?
echo "exit code: $status"
echo "== what the job saw (done.json) and the report"
cat "$work"/storage/mlci-*/done.json; echo
grep -E "^- (Device|Training):" .mlci/out/report.md || true
"$python" -c 'import json; print("metrics back:", json.load(open("metrics.json")))'
gpu=$("$python" -c 'import glob, json; print(json.load(open(glob.glob("'"$work"'/storage/mlci-*/done.json")[0]))["gpu"])')

echo "== a stalled training on the GPU node is stopped"
sed -i 's/  stall_minutes: 5 .*/  stall_minutes: 0.25/' mlci.yaml
printf 'import time\nprint("hanging", flush=True)\ntime.sleep(600)\n' > hang.py
sed -i 's/  command: python train.py/  command: python hang.py/' mlci.yaml
git add -A && git -c user.name=gpu-check -c user.email=gpu-check@example.invalid commit -qm hang
stalled=0
mlci run --no-promote >"$work/stall.log" 2>&1 || stalled=$?
grep -m1 "training stalled" "$work/stall.log" || cat "$work/stall.log"
sleep 5
left=$(mlci gpu list --json | "$python" -c 'import json, sys; print(len(json.load(sys.stdin)["launched"]))')
echo "exit code: $stalled (expected 5); jobs of mlci's left: $left (expected 0); GPU seen: $gpu"
[ "$status" = 0 ] && [ "$stalled" = 5 ] && [ "$left" = 0 ] && { [ "$gpus" = 0 ] || [ "$gpu" != None ]; }
