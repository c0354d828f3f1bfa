#!/usr/bin/env bash
# Create .venv and install the project with its test tools, from the project's own files.
# Without an NVIDIA GPU, PyTorch's CPU build is installed (a few hundred MB), never the
# multi-GB CUDA build that a plain `pip install torch` pulls on Linux.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
# shellcheck disable=SC1091
. .venv/bin/activate
python -m pip install -q --upgrade pip
if ! python -c "import torch" 2>/dev/null; then
    if command -v nvidia-smi >/dev/null 2>&1; then
        pip install -q "torch>=2.2"
    else
        pip install -q --retries 0 --timeout 20 "torch>=2.2" \
            --index-url https://download.pytorch.org/whl/cpu 2>/dev/null \
            || pip install -q "torch==2.13.0"
    fi
fi
# The reference implementations (Dopamine, JAX, TensorFlow: about 2.5 GB) for the differential
# tests in tests/reference/ come with BENCH_REFERENCE=1 (CI sets it); without, those tests skip.
if [ "${BENCH_REFERENCE:-0}" != "1" ]; then
    pip install -q -e ".[dev]"
else
    pip install -q -e ".[dev,reference]"
fi
python -c "import torch, ale_py; print(f'ready: torch {torch.__version__}, ale-py {ale_py.__version__}')"
