#!/usr/bin/env bash
# The GPU checks in one command, for a GPU machine with PyTorch but no network: the library's GPU tests and
# benchmarks/gpu_bench.py against the committed 2-core CPU reference. Logs and results go to $OUT (default
# benchmarks/out/gpu); copy gpu-panel-cuda.json and .md into benchmarks/results/ afterwards.
#
# That machine lacks three pure-Python packages the model imports; download their wheels here first, then bring
# benchmarks/out/wheels along with the checkout:
#   python3 -m pip download --no-deps --only-binary=:all: -d benchmarks/out/wheels \
#       torchode==1.0.1 torchtyping==0.1.5 typeguard==2.13.3
#   bash benchmarks/gpu_device.sh                      # on the GPU machine, from the checkout's root
#   DEVICE=cpu BUDGET_S=3 BATCH=50 bash benchmarks/gpu_device.sh   # a dry run of the plumbing on any machine
set -euo pipefail
out=${OUT:-benchmarks/out/gpu}
mkdir -p "$out"
if compgen -G "benchmarks/out/wheels/*.whl" >/dev/null; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/gpu-site \
        benchmarks/out/wheels/*.whl
    export PYTHONPATH="/tmp/gpu-site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
python3 - <<'EOF' 2>&1 | tee "$out/device.txt"
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda,
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device")
EOF
# The root conftest starts the service's databases; the GPU tests need none of it.
python3 -m pytest -p no:cacheprovider --noconftest -o addopts="" -ra -m gpu tests/model/test_gpu.py 2>&1 \
    | tee "$out/gpu-tests.log" || true
python3 benchmarks/gpu_bench.py --device "${DEVICE:-cuda}" --batch "${BATCH:-400,1600,1600:backprop,50}" \
    --budget-s "${BUDGET_S:-75}" --reference benchmarks/results/gpu-panel-cpu.json \
    --out "$out/gpu-panel-cuda.json" 2>&1 | tee "$out/gpu-bench.log"
