#!/usr/bin/env bash
# Run HERE (Debian 12, no root needed): downloads into .gpu/debs/ the Debian packages that the
# build and the main jobs need and a GPU machine lacks (xtensor, xsimd, xtl, OpenBLAS and its
# runtime, fmt, Catch2, zlib, stb, Fashion-MNIST), for scripts/gpu_run.sh to unpack there into
# .gpu/prefix (never into /). .gpu/ is listed in .git/info/exclude: it is never committed;
# .gpu/debs goes to the GPU machine as an ignored path (`carry: [".gpu/debs"]`, at most 64 MiB).
#
#   scripts/gpu_carry.sh
#
# Idempotent: a .deb already there with the candidate's size is kept, others are fetched, and
# .debs no longer wanted are removed. Prints each package and the total size.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The GPU machine is assumed to have libc6, libgcc-s1, libstdc++6 and a C++ compiler (it builds
# CUDA code); everything else the packages below depend on is in the list, but not_needed.
packages=(
  xtl-dev libxsimd-dev libxtensor-dev libxtensor-blas-dev nlohmann-json3-dev
  libopenblas-dev libopenblas-pthread-dev libopenblas0 libopenblas0-pthread libgfortran5 libquadmath0
  libfmt-dev libfmt9
  catch2
  zlib1g-dev zlib1g
  libstb-dev
  dataset-fashion-mnist
)
assumed_present="libc6 libc6-dev libgcc-s1 libstdc++6 gcc-12-base libc-dev"
# Dependencies that the build does not use, so not carried: libstb-dev's libstb0 (the
# precompiled stb; layers/src/stb_image.cpp compiles stb_image from the header itself).
not_needed="libstb0"
limit_mib=64

dir=.gpu/debs
mkdir -p "$dir"
# .gpu/ must stay out of commits but travel as a carried ignored path: list it in the clone's
# own exclude file (a fresh clone has none), not in .gitignore
if git_dir=$(git rev-parse --git-dir 2>/dev/null); then
  mkdir -p "$git_dir/info"
  grep -qx '/.gpu/' "$git_dir/info/exclude" 2>/dev/null || echo '/.gpu/' >>"$git_dir/info/exclude"
fi

# A dependency of a listed package that is neither listed nor assumed present: say so (the
# alternatives of a "|Depends" are fine when one of them is listed).
check_depends() {
  local p line alts ok alt
  for p in "${packages[@]}"; do
    alts=()
    while IFS= read -r line; do
      case $line in
        *"|Depends: "*) alts+=("${line#*: }") ;;
        *"Depends: "*)
          alts+=("${line#*: }")
          ok=0
          for alt in "${alts[@]}"; do
            [[ $alt == "<"* ]] && ok=1 # a virtual package another one of the list provides
            [[ " ${packages[*]} $assumed_present $not_needed " == *" $alt "* ]] && ok=1
          done
          ((ok)) || echo "gpu_carry.sh: warning: $p depends on ${alts[*]}, which is not carried" >&2
          alts=()
          ;;
      esac
    done < <(apt-cache depends "$p" 2>/dev/null)
  done
}
check_depends

# apt-get download --print-uris: 'URI' FILE SIZE HASH, one line per package
wanted=()
fetched=0
while read -r _ file size _; do
  wanted+=("$file")
  if [[ -f $dir/$file && $(stat -c %s "$dir/$file") == "$size" ]]; then
    continue
  fi
  pkg=${file%%_*}
  # as a non-root user apt warns that it downloads unsandboxed: shown only when it fails
  if ! log=$(cd "$dir" && apt-get download -q "$pkg" 2>&1); then
    echo "$log" >&2
    echo "gpu_carry.sh: apt-get download $pkg failed" >&2
    exit 1
  fi
  fetched=$((fetched + 1))
done < <(apt-get download --print-uris "${packages[@]}" 2>/dev/null)
((${#wanted[@]} == ${#packages[@]})) || {
  echo "gpu_carry.sh: apt-get knows ${#wanted[@]} of the ${#packages[@]} packages (apt-get update?)" >&2
  exit 1
}

# drop what is no longer wanted (an older version, a package taken off the list)
for f in "$dir"/*.deb; do
  name=$(basename "$f")
  [[ " ${wanted[*]} " == *" $name "* ]] || { rm -f "$f" && echo "removed $name"; }
done

for f in "${wanted[@]}"; do
  printf '%8.1f MiB  %s\n' "$(stat -c %s "$dir/$f" | awk '{ print $1 / 1048576 }')" "$f"
done
total=$(du -sb "$dir" | cut -f1)
total_mib=$(awk -v b="$total" 'BEGIN { printf "%.1f", b / 1048576 }')
echo "fetched $fetched, kept $((${#wanted[@]} - fetched)); $dir holds ${total_mib} MiB (carry limit ${limit_mib} MiB)"
if awk -v b="$total" -v l="$limit_mib" 'BEGIN { exit !(b > l * 1048576) }'; then
  echo "gpu_carry.sh: $dir is over the carry limit" >&2
  exit 1
fi
