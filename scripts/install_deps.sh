#!/usr/bin/env bash
# Installs the Debian packages tapeflow needs to build, test and run its samples.
# Idempotent: asks dpkg which packages are missing and touches apt only when some are.
# Runs as root, or through sudo when not root and sudo exists. Never prompts.
set -euo pipefail

packages=(
  # libraries (find_package in cmake/TapeflowDependencies.cmake)
  libxtensor-dev libxtensor-blas-dev xtl-dev libxsimd-dev libopenblas-dev
  catch2 libfmt-dev zlib1g-dev
  # stb_image, the image decoder behind load_img (header only: one .cpp of ours compiles it)
  libstb-dev
  # data of the samples: Fashion-MNIST IDX files in /usr/share/datasets/fashion-mnist
  dataset-fashion-mnist
  # build tools
  cmake ninja-build g++ ccache pkg-config make
)

if ! command -v dpkg-query >/dev/null 2>&1; then
  echo "install_deps.sh: dpkg-query not found; this script supports Debian and derivatives." >&2
  echo "install_deps.sh: install by hand: ${packages[*]}" >&2
  exit 1
fi

missing=()
for pkg in "${packages[@]}"; do
  # "installed" only when fully installed (not config-files, half-installed, unknown...).
  status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
  if [[ "$status" != "installed" ]]; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install_deps.sh: all ${#packages[@]} packages already installed, nothing to do."
  exit 0
fi

echo "install_deps.sh: installing ${#missing[@]} missing package(s): ${missing[*]}"
as_root=()
if [[ "$(id -u)" -ne 0 ]]; then
  if command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    echo "install_deps.sh: not root and sudo not found; run as root: apt-get install ${missing[*]}" >&2
    exit 1
  fi
fi

"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
echo "install_deps.sh: done."
