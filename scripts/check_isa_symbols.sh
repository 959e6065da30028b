#!/usr/bin/env bash
# The AVX2 / AVX-512 builds of kernels/cpu/simd_math.hpp must define no function another
# translation unit could also define: the linker keeps one copy of an inline function or
# template instance, and if it kept the AVX one, a CPU without AVX would run it. So every
# global or weak function those objects define must name its architecture (xsimd's avx2 /
# avx512bw as a template argument) or be the table function itself.
#
#   scripts/check_isa_symbols.sh path/to/libtapeflow_kernels_cpu.a   (a CTest test)
set -euo pipefail
lib=$1
status=0
checked=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for member in simd_math_avx2.cpp.o simd_math_avx512.cpp.o; do
  arch=${member#simd_math_}
  arch=${arch%.cpp.o}
  ar t "$lib" | grep -qx "$member" || continue # not an x86-64 build
  ar p "$lib" "$member" >"$tmp/$member"
  syms=$(nm -C --defined-only "$tmp/$member")
  checked=$((checked + 1))
  # T: global code; W: weak code (inline functions, template instances); i: indirect functions
  bad=$(awk '$2 ~ /^[TWi]$/ { $1 = ""; $2 = ""; print }' <<<"$syms" | grep -v -e "$arch" -e "table_$arch" || true)
  if [[ -n $bad ]]; then
    echo "check_isa_symbols.sh: $member defines functions without '$arch' in their names:" >&2
    echo "$bad" | sed 's/^/  /' >&2
    status=1
  else
    echo "$member: every function it defines names $arch ($(awk '$2 ~ /^[TWi]$/' <<<"$syms" | wc -l) functions)"
  fi
done
((checked > 0)) || echo "no AVX objects in $lib (not an x86-64 build): nothing to check"
exit $status
