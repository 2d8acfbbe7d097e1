#!/usr/bin/env bash
# Times PartialFC's sampled step against the dense step of the same kept
# count (10 000 classes) as C grows (examples/bench_step.rs --sample-rate,
# 2 threads), writes one JSON line per run to docs/pfc-results.jsonl and
# renders docs/pfc.svg. The 4M-class run holds 15.6 GB of weights and
# momentum: it needs a machine with about 17 GB free.
#
#   scripts/bench-pfc.sh
#   POINTS="10000:1 100000:0.1" scripts/bench-pfc.sh
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
POINTS=${POINTS:-"10000:1 100000:0.1 1000000:0.01 4000000:0.0025"}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-6}
cargo build --release --locked --example bench_step --example perf_chart
out=docs/pfc-results.jsonl
: > "$out"
for p in $POINTS; do
  IFS=: read -r c r <<< "$p"
  line=$(./target/release/examples/bench_step --n 256 --d 512 --c "$c" --k 1 --threads 2 \
    --sample-rate "$r" --dense-c 10000 --seconds "$SECONDS_PER_RUN" | tail -n 1)
  echo "$line" | tee -a "$out"
done
./target/release/examples/perf_chart --pfc "$out" docs/pfc.svg
