#!/usr/bin/env bash
# Build the cargo-fuzz targets in fuzz/ and run each for a bounded time.
#
# Usage: scripts/fuzz.sh [TARGET...]          (default: every target)
#   FUZZ_SECONDS=60    seconds per target (libFuzzer -max_total_time)
#   FUZZ_MERGE=1       afterwards, merge the inputs that found new coverage
#                      into the committed corpus fuzz/corpus/TARGET (minimised)
#   FUZZ_SANITIZER=address|none   (default address, cargo fuzz's default)
#   FUZZ_BUILD_ARGS="..."  extra `cargo fuzz build` flags, e.g. "--codegen-units 16"
#                      for a faster cold build (the dependencies take minutes)
#   FUZZ_ARGS="..."    libFuzzer flags (default "-max_len=2048 -len_control=0":
#                      inputs up to 2 KiB from the start, so that the step
#                      target reaches its largest shapes within a short run)
#
# Each target starts from its committed seed corpus, fuzz/corpus/TARGET, read
# only: new inputs go to a temporary working corpus, so a run leaves the tree
# clean unless FUZZ_MERGE=1. A crash, a timeout (an input running > 10 s) or
# an allocation over 2 GiB fails the run; the input is kept under
# fuzz/artifacts/TARGET/ (git-ignored). To keep a finding: copy it into
# fuzz/corpus/TARGET/ and add a named regression test in tests/robustness/regressions.rs.
#
# Needs the nightly toolchain (cargo fuzz uses -Zsanitizer and libFuzzer) and
# cargo-fuzz, installed from crates.io here when missing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

seconds="${FUZZ_SECONDS:-60}"
sanitizer="${FUZZ_SANITIZER:-address}"
t_start=$SECONDS

if ! rustup toolchain list | grep -q '^nightly'; then
  echo "fuzz.sh: installing the nightly toolchain" >&2
  rustup toolchain install nightly --profile minimal
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
  echo "fuzz.sh: installing cargo-fuzz from crates.io" >&2
  cargo install cargo-fuzz --locked
fi

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)
fi

echo "== building ${targets[*]} (sanitizer: $sanitizer)"
t_build=$SECONDS
# shellcheck disable=SC2086
(cd fuzz && cargo +nightly fuzz build --debug-assertions --sanitizer "$sanitizer" ${FUZZ_BUILD_ARGS:-})
echo "built in $((SECONDS - t_build)) s"

triple="$(rustc +nightly -vV | sed -n 's/^host: //p')"
bindir="fuzz/target/$triple/release"
work="$(mktemp -d "${TMPDIR:-/tmp}/arcface-fuzz.XXXXXX")"
trap 'rm -rf "$work"' EXIT

failed=()
summary=()
for t in "${targets[@]}"; do
  seeds="fuzz/corpus/$t"
  mkdir -p "$work/$t" "fuzz/artifacts/$t"
  echo
  echo "== $t: ${seconds} s from $(find "$seeds" -type f ! -name '.*' | wc -l) committed inputs"
  log="$work/$t.log"
  rc=0
  # shellcheck disable=SC2086
  "$bindir/$t" "$work/$t" "$seeds" \
    -max_total_time="$seconds" -print_final_stats=1 \
    -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 \
    -artifact_prefix="fuzz/artifacts/$t/" ${FUZZ_ARGS:--max_len=2048 -len_control=0} >"$log" 2>&1 || rc=$?
  grep -E '^#[0-9]+.*DONE|^Done|ERROR|panicked|^SUMMARY|Test unit written|^stat::' "$log" || true
  execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n1)"
  execs="${execs:-?}"
  if [ "$rc" -ne 0 ]; then
    echo "---- $t failed (exit $rc); last lines of the log:"
    tail -n 40 "$log"
    failed+=("$t")
    summary+=("$(printf '%-18s FAILED (exit %s) after %s executions' "$t" "$rc" "$execs")")
  else
    rate="?"
    [ "$execs" != "?" ] && [ "$seconds" -gt 0 ] && rate=$((execs / seconds))
    summary+=("$(printf '%-18s %10s executions in %s s (%s/s), %s inputs in the working corpus' \
      "$t" "$execs" "$seconds" "$rate" "$(find "$work/$t" -type f | wc -l)")")
  fi
  if [ "${FUZZ_MERGE:-0}" = 1 ]; then
    "$bindir/$t" -merge=1 "$seeds" "$work/$t" >"$work/$t.merge.log" 2>&1 \
      && echo "merged new coverage into $seeds" \
      || { echo "merge failed:"; tail -n 20 "$work/$t.merge.log"; }
  fi
done

echo
echo "== fuzzing summary (${seconds} s per target, total $((SECONDS - t_start)) s)"
printf '%s\n' "${summary[@]}"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz.sh: ${failed[*]} found a failing input; see fuzz/artifacts/" >&2
  exit 1
fi
