#!/usr/bin/env bash
# Run HERE, as root: scripts/gpu_run.sh on this machine as the GPU machine will see it, with
# none of the carried Debian packages installed. In a private mount namespace an overlay over
# /usr hides every file of every package in .gpu/debs (and the OpenBLAS alternatives' links),
# so the build, the tests and the samples can only find what gpu_run.sh unpacks from the carried
# .debs into its prefix. Nothing outside the namespace changes. zlib1g's runtime stays visible
# (every machine with Python has it); --hide-dpkg also hides dpkg, for gpu_run.sh's ar + tar path.
#
#   scripts/gpu_rehearse.sh [--hide-dpkg] [GPU_RUN_ARGS...]
#   e.g. scripts/gpu_rehearse.sh --cuda EMU --budget 1500 --build-dir build-bare --prefix .gpu/prefix-bare /tmp/bare
#
# Run scripts/gpu_carry.sh first. Needs root, unshare and overlayfs with whiteouts.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

hide_dpkg=0
if [[ ${1-} == --hide-dpkg ]]; then
  hide_dpkg=1
  shift
fi
if [[ ${1-} != --inside ]]; then
  (($(id -u) == 0)) || { echo "gpu_rehearse.sh: needs root (mount namespace, overlay)" >&2 && exit 1; }
  compgen -G '.gpu/debs/*.deb' >/dev/null || { echo "gpu_rehearse.sh: no .gpu/debs (run scripts/gpu_carry.sh)" >&2 && exit 1; }
  exec unshare -m --propagation private bash "$0" --inside "$hide_dpkg" "$@"
fi
hide_dpkg=$2
shift 2

work=$(mktemp -d /tmp/gpu-rehearse.XXXXXX)
mkdir -p "$work/upper" "$work/work"
# whiteout REALPATH (under /usr): a character device 0/0 in the upper layer hides the file
whiteout() {
  local rel=${1#/usr/}
  mkdir -p "$work/upper/$(dirname "$rel")"
  [[ -e $work/upper/$rel ]] || mknod "$work/upper/$rel" c 0 0
}
hidden=0
for deb in .gpu/debs/*.deb; do
  pkg=$(basename "${deb%%_*}")
  [[ $pkg == zlib1g ]] && continue
  dpkg -s "$pkg" >/dev/null 2>&1 || continue # not installed here: nothing to hide
  while IFS= read -r f; do
    [[ -d $f && ! -L $f ]] && continue
    [[ -e $f || -L $f ]] || continue
    real="$(realpath "$(dirname "$f")")/$(basename "$f")"
    [[ $real == /usr/* ]] || continue
    whiteout "$real"
    hidden=$((hidden + 1))
  done < <(dpkg -L "$pkg")
done
# update-alternatives' links (libblas.so.3 -> /etc/alternatives/...) belong to no package
while IFS= read -r link; do
  whiteout "$link"
  hidden=$((hidden + 1))
done < <(find /usr/lib -maxdepth 2 -type l -lname '/etc/alternatives/*' \( -name '*blas*' -o -name '*lapack*' \))
if ((hide_dpkg)); then
  for f in /usr/bin/dpkg /usr/bin/dpkg-deb; do whiteout "$f"; done
fi
mount -t overlay overlay -o "lowerdir=/usr,upperdir=$work/upper,workdir=$work/work" /usr
echo "gpu_rehearse.sh: $hidden files of the carried packages hidden under /usr"
for f in /usr/include/xtensor/containers/xarray.hpp /usr/include/xtensor/xarray.hpp /usr/include/x86_64-linux-gnu/cblas.h \
  /usr/include/fmt/format.h /usr/include/catch2/catch.hpp \
  /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz; do
  [[ ! -e $f ]] || { echo "gpu_rehearse.sh: $f is still visible" >&2 && exit 1; }
done
ldconfig -p | grep -q 'libopenblas\|libfmt\.so\.9' && echo "gpu_rehearse.sh: note: ld.so.cache still names OpenBLAS / fmt (their files are gone)"
bash scripts/gpu_run.sh "$@"
