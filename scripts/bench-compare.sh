#!/usr/bin/env bash
# Compares the step/floor ratio of two revisions on the README's shapes, in
# one run: for each shape and thread count the base revision's bench_step and
# the working tree's run back to back, so both see the same machine state.
#
#   scripts/bench-compare.sh [BASE_REV]        # default: origin/main or main
#   SHAPES="8,512,10000,1" THREADS="1 2" scripts/bench-compare.sh HEAD~3
#
# Writes target/bench-compare.md and prints it. The base is
# built in a git worktree under target/bench-base with its own target dir.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
base=${1:-main}
SHAPES=${SHAPES:-"32,128,500,1 64,128,1000,1 256,512,1000,1 256,512,10000,1 256,512,10000,3 128,512,100000,1 512,512,100000,1 8,512,10000,1 1,512,10000,1"}
THREADS=${THREADS:-"1 2"}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-3}
wt=target/bench-base
rm -rf "$wt"; git worktree prune
git worktree add -q --detach "$wt" "$base"
(cd "$wt" && CARGO_TARGET_DIR=../bench-base-target cargo build --release --locked --example bench_step)
cargo build --release --locked --example bench_step
old=target/bench-base-target/release/examples/bench_step
new=target/release/examples/bench_step
out=target/bench-compare.jsonl
: > "$out"
for s in $SHAPES; do
  IFS=, read -r n d c k <<< "$s"
  for t in $THREADS; do
    for which in base new; do
      bin=$old; [ "$which" = new ] && bin=$new
      line=$("$bin" --n "$n" --d "$d" --c "$c" --k "$k" --threads "$t" --seconds "$SECONDS_PER_RUN" | tail -n 1)
      echo "{\"rev\":\"$which\",\"run\":$line}" | tee -a "$out"
    done
  done
done
git worktree remove --force "$wt"
python3 - "$out" "$base" <<'PY' | tee target/bench-compare.md
import json, sys
rows = {}
for l in open(sys.argv[1]):
    r = json.loads(l); b = r["run"]
    key = (b["n"], b["d"], b["c"], b["k"], b["threads"])
    rows.setdefault(key, {})[r["rev"]] = b
print(f"step/floor ratio, base `{sys.argv[2]}` against the working tree, same run\n")
print("| N | D | C | K | threads | base step ms | base ratio | new step ms | new ratio | new/base |")
print("|---|---|---|---|---|---|---|---|---|---|")
for key, v in rows.items():
    b, n = v["base"], v["new"]
    print("| %d | %d | %d | %d | %d | %.3f | %.3f | %.3f | %.3f | %.3f |" % (*key,
          b["step_ms"], b["ratio"], n["step_ms"], n["ratio"], n["ratio"] / b["ratio"]))
PY
