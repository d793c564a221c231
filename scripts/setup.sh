#!/usr/bin/env bash
# Sets up a fresh Debian machine for convkit and builds it. Every step is skipped when already
# done, so running it before each command costs a second.
#   Debian packages: libtorch (the engine) and Gloo's headers (its c10d process groups), the
#                    Fashion-MNIST files (the default dataset),
#                    torch/torchvision for Python (the reference the tests compare against),
#                    tcmalloc and jemalloc (the benchmarks preload them: PyTorch's recommended
#                    CPU set-up, and convkit under a general-purpose allocator), oneDNN's headers
#                    (the fused inference path), python3-onnx (the reference ONNX checker),
#                    chromium (the browser page is tested in it, headless), GNU time (peak
#                    memory of whole training commands in the benchmarks), OpenBLAS (Debian's
#                    libtorch links the generic libblas.so.3, which without OpenBLAS is the
#                    reference BLAS: float32 matrix products 26x slower)
#   npm ci, the native addon (node-gyp against libtorch), the TypeScript build (dist/)
# It prints one line per step; the tools' own output goes to a log, shown only when a step fails.
set -euo pipefail
cd "$(dirname "$0")/.."

start=$SECONDS
log=$(mktemp "${TMPDIR:-/tmp}/convkit-setup.XXXXXX.log")
trap 'rm -f "$log"' EXIT

say() { echo "setup: $*"; }

# Runs a step with its output in the log; on failure prints the log and stops.
run() {
  if ! "$@" >"$log" 2>&1; then
    echo "setup: failed: $*" >&2
    tail -n 60 "$log" >&2
    exit 1
  fi
}

packages=(libtorch-dev libgloo-dev libdnnl-dev dataset-fashion-mnist python3-torch python3-torchvision python3-onnx chromium libtcmalloc-minimal4 libjemalloc2 time libopenblas0-openmp)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  say "installing Debian packages: ${missing[*]} (a few minutes)"
  SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
  run $SUDO apt-get update -qq
  run $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  say "Debian packages present: ${packages[*]}"
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages (npm ci)"
  run npm ci --ignore-scripts --no-audit --no-fund
fi

addon=build/Release/convkit.node
if [ ! -f "$addon" ] || [ -n "$(find native binding.gyp -newer "$addon" 2>/dev/null | head -1)" ]; then
  say "building the native addon against libtorch (node-gyp, 2-3 minutes on 2 cores)"
  run npx node-gyp rebuild -j "$(nproc)"
fi

say "compiling TypeScript into dist/"
run npx tsc -p tsconfig.json
say "done in $((SECONDS - start)) s; try: node bin/convkit.js --help"
