#!/usr/bin/env bash
# Runs examples/bench_step.rs over the README's shapes at 1 and 2 threads,
# writes one JSON line per run to docs/bench-results.jsonl, then renders the
# README table (docs/bench-table.md) and the chart (docs/perf.svg).
#
#   scripts/bench-table.sh            # all shapes
#   SHAPES="64,128,1000,1" scripts/bench-table.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SHAPES=${SHAPES:-"32,128,500,1 64,128,1000,1 256,512,1000,1 256,512,10000,1 256,512,10000,3 128,512,100000,1 512,512,100000,1 8,512,10000,1 1,512,10000,1"}
THREADS=${THREADS:-"1 2"}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-4}
cargo build --release --locked --example bench_step --example perf_chart
out=docs/bench-results.jsonl
: > "$out"
for s in $SHAPES; do
  IFS=, read -r n d c k <<< "$s"
  for t in $THREADS; do
    line=$(./target/release/examples/bench_step --n "$n" --d "$d" --c "$c" --k "$k" --threads "$t" --seconds "$SECONDS_PER_RUN" | tail -n 1)
    echo "$line" | tee -a "$out"
  done
done
./target/release/examples/perf_chart "$out" docs/perf.svg docs/bench-table.md
cat docs/bench-table.md
