#!/usr/bin/env bash
# Sets up a fresh Debian machine for convkit and builds it. Every step is skipped when already
# done, so running it before each command costs a second.
#   Debian packages: libtorch (the engine), the Fashion-MNIST files (the default dataset),
#                    and torch/torchvision for Python (the reference the tests compare against)
#   npm ci, the native addon (node-gyp against libtorch), the TypeScript build
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(libtorch-dev dataset-fashion-mnist python3-torch python3-torchvision)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}" >&2
  SUDO=$([ "$(id -u)" = 0 ] && echo "" || echo sudo)
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci" >&2
  npm ci --ignore-scripts --no-audit --no-fund >/dev/null
fi

addon=build/Release/convkit.node
if [ ! -f "$addon" ] || [ -n "$(find native binding.gyp -newer "$addon" 2>/dev/null | head -1)" ]; then
  echo "setup: building the native addon against libtorch (about a minute)" >&2
  npx node-gyp rebuild -j 2 >/dev/null
fi

echo "setup: compiling TypeScript" >&2
npx tsc -p tsconfig.json
