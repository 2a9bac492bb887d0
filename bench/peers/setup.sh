#!/bin/sh
# Installs the Node peers of `npm run bench:peers` OUTSIDE the repository (they are not
# dependencies of rnnkit): into $PEERS_NODE_MODULES's parent, default /tmp/rnnkit-peers.
#   sh bench/peers/setup.sh [--help]
# PyTorch, two builds: Debian's 1.13 with OpenBLAS (as root: apt-get install python3-torch
# libopenblas0-openmp; without libopenblas0 torch falls back to the reference BLAS, ~15x slower),
# and PyPI's 2.15 with MKL + oneDNN in a venv, $TORCH2_VENV (default /tmp/rnnkit-peers/torch215).
# PyPI's only Linux wheel is the CUDA build (it runs on a CPU-only machine): ~3 GB of wheels,
# 5.3 GB installed, about 2 minutes on a fast link. SKIP_TORCH2=1 leaves it out.
set -eu
if [ "${1:-}" = "--help" ]; then sed -n '2,9p' "$0"; exit 0; fi
NM="${PEERS_NODE_MODULES:-/tmp/rnnkit-peers/node_modules}"
DIR="$(dirname "$NM")"
mkdir -p "$DIR"
cd "$DIR"
[ -f package.json ] || npm init -y >/dev/null
# onnxruntime-node's postinstall downloads CUDA/TensorRT providers (and fails offline); the CPU
# runtime is bundled in the package, so skip it.
ONNXRUNTIME_NODE_INSTALL=skip npm install --no-audit --no-fund brain.js@1.6.1 onnxruntime-node@1.30.0 \
  @tensorflow/tfjs@4.22.0 @tensorflow/tfjs-backend-wasm@4.22.0
/usr/bin/python3 -c 'import torch; print("torch", torch.__version__)' || echo "python3-torch missing: the PyTorch peer will be skipped"
VENV="${TORCH2_VENV:-$DIR/torch215}"
if [ "${SKIP_TORCH2:-}" != 1 ]; then
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --no-cache-dir --quiet torch==2.15.0
  "$VENV/bin/python" -c 'import torch; print("torch", torch.__version__, "mkldnn", torch.backends.mkldnn.is_available())'
fi
