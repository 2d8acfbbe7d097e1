#!/usr/bin/env bash
# The overhead of the C binding: one training step at (N, D, C, K) = (256, 512, 10000, 1) and
# one top-1 prediction at (1, 512, 10000, 1), through the C API and through the Rust API, with
# the same head and inputs.
#   1. Two programs: examples/c/bench.c (cc, static library) and capi/examples/bench_bindings.rs,
#      run alternately ROUNDS times (default 5), each reporting the median of ITERS calls
#      (default 15): the end-to-end comparison, exposed to the machine's load drifting between
#      processes.
#   2. Paired, in one process (bench_bindings ... paired): each iteration calls the Rust API and
#      the exported C functions, alternating which goes first, PAIRS times (default 30) per round;
#      the median per-iteration ratio, to which load contributes alike on both sides.
# Then the stripped shared library's size and its code by crate.
#
# Usage: scripts/bench-bindings.sh [ROUNDS] [ITERS] [PAIRS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds=${1:-5}
iters=${2:-15}
pairs=${3:-30}
target_dir=${CARGO_TARGET_DIR:-target}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build --release --locked -p arcface-capi --example bench_bindings
lib=$target_dir/release
cc -std=c99 -O2 -Wall -Iinclude examples/c/bench.c "$lib/libarcface_c.a" -lpthread -ldl -lm \
  -o "$work/bench-c"

for _ in $(seq "$rounds"); do
  "$lib/examples/bench_bindings" 256 512 10000 1 "$iters"
  "$work/bench-c" 256 512 10000 1 "$iters"
done | tee "$work/runs.jsonl"

echo
echo "| operation | Rust (ms) | C (ms) | C / Rust (best medians) | C / Rust per round | median |"
echo "|---|---|---|---|---|---|"
for op in step predict; do
  grep "\"op\":\"$op\"" "$work/runs.jsonl" | sed 's/.*"api":"\([a-z]*\)".*"median_ms":\([0-9.]*\).*/\1 \2/' | awk -v op="$op" '
    $1 == "rust" { r[++nr] = $2; if (nr == 1 || $2 < br) br = $2 }
    $1 == "c"    { c[++nc] = $2; if (nc == 1 || $2 < bc) bc = $2 }
    END {
      for (i = 1; i <= nr; i++) { q[i] = c[i] / r[i]; list = list sprintf("%s%.3f", i > 1 ? ", " : "", q[i]) }
      for (i = 1; i <= nr; i++) for (j = i + 1; j <= nr; j++) if (q[j] < q[i]) { t = q[i]; q[i] = q[j]; q[j] = t }
      med = nr % 2 ? q[(nr + 1) / 2] : (q[nr / 2] + q[nr / 2 + 1]) / 2
      printf "| %s | %.3f | %.3f | %.3f | %s | %.3f |\n", op, br, bc, bc / br, list, med
    }'
done

echo
echo "paired in one process, $pairs pairs a round (median ratio C ABI / Rust):"
for _ in $(seq "$rounds"); do
  "$lib/examples/bench_bindings" 256 512 10000 1 "$pairs" paired
done | tee "$work/paired.jsonl"
for op in step predict; do
  grep "\"op\":\"$op\"" "$work/paired.jsonl" | sed 's/.*"ratio_median":\([0-9.]*\).*/\1/' \
    | sort -n | awk -v op="$op" '{ q[NR] = $1; list = list sprintf("%s%s", NR > 1 ? ", " : "", $1) }
      END { med = NR % 2 ? q[(NR + 1) / 2] : (q[NR / 2] + q[NR / 2 + 1]) / 2
            printf "| %s paired | %s | median %.3f |\n", op, list, med }'
done

echo
cp "$lib/libarcface_c.so" "$work/libarcface_c.so"
strip "$work/libarcface_c.so"
echo "stripped libarcface_c.so: $(stat -c %s "$work/libarcface_c.so") bytes"
size "$work/libarcface_c.so"
echo "code by crate (.text bytes from each function symbol to the next, largest first):"
nm -n --radix=d -C "$lib/libarcface_c.so" | awk '
  $2 ~ /^[tT]$/ {
    if (name != "") { total[crate] += $1 - addr }
    addr = $1; $1 = ""; $2 = ""; name = $0; sub(/^ +/, "", name); sub(/^</, "", name)
    split(name, part, "::"); crate = part[1]
    if (name ~ /^gemm_v0_/) crate = "private_gemm_x86 (assembly kernels)"
    else if (crate ~ /[ (]/ || crate == name) crate = "(other)"
  }
  END { for (c in total) printf "%9d  %s\n", total[c], c }' | sort -nr | head -n 12
