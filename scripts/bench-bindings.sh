#!/usr/bin/env bash
# The overhead of the C binding: one training step at (N, D, C, K) = (256, 512, 10000, 1) and
# one top-1 prediction at (1, 512, 10000, 1), through the C API (examples/c/bench.c, built with
# cc against the static library) and through the Rust API (capi/examples/bench_bindings.rs),
# with the same head and inputs. The two programs run alternately ROUNDS times (default 3);
# each reports the median of ITERS timed calls (default 20), and the table gives the best
# median of each and the ratio C / Rust. Also prints the stripped shared library's size and its
# largest symbols.
#
# Usage: scripts/bench-bindings.sh [ROUNDS] [ITERS]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
rounds=${1:-3}
iters=${2:-20}
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
echo "| operation | Rust (ms) | C (ms) | C / Rust |"
echo "|---|---|---|---|"
for op in step predict; do
  awk -v op="$op" -F'[:,]' '
    $0 ~ "\"op\":\"" op "\"" {
      api = ($2 ~ /rust/) ? "rust" : "c"
      for (i = 1; i <= NF; i++) if ($i ~ /median_ms/) t = $(i + 1) + 0
      if (!(api in best) || t < best[api]) best[api] = t
    }
    END { printf "| %s | %.3f | %.3f | %.3f |\n", op, best["rust"], best["c"], best["c"] / best["rust"] }
  ' "$work/runs.jsonl"
done

echo
cp "$lib/libarcface_c.so" "$work/libarcface_c.so"
strip "$work/libarcface_c.so"
echo "stripped libarcface_c.so: $(stat -c %s "$work/libarcface_c.so") bytes"
size "$work/libarcface_c.so"
echo "code and data by crate (symbol sizes of the unstripped library, bytes):"
nm --size-sort --radix=d -C "$lib/libarcface_c.so" | awk '
  { size = $1; $1 = ""; $2 = ""; name = $0; sub(/^ +/, "", name); sub(/^</, "", name)
    split(name, part, "::"); crate = part[1]; if (crate ~ /[ (]/ || crate == name) crate = "(C / other)"
    total[crate] += size }
  END { for (c in total) print total[c], c }' | sort -nr | head -n 10
