#!/usr/bin/env bash
# Run the arcface test suite on emulated aarch64 (NEON) under qemu-user.
#
# Usage (from anywhere in the repo; root on Debian bookworm x86_64):
#   scripts/test-aarch64.sh [CARGO_TEST_ARGS...] [-- TEST_BINARY_ARGS...]
# e.g. scripts/test-aarch64.sh --test golden -- --nocapture
#
# Toolchain: Debian's rustc-web/cargo-web (>= 1.89, from bookworm-security) because it ships a
# matching aarch64 std (libstd-rust-web-dev:arm64); rustup's 1.95 has none here. Links with
# gcc-aarch64-linux-gnu, runs under qemu-aarch64-static. Build output goes to target/aarch64-debian
# so that Debian's rustc never invalidates the host (rustup) target/.
#
# Two passes: QEMU_CPU=max (NEON + FCMA + fp16 ...) and QEMU_CPU=cortex-a72 (plain NEON).
# Both run unit, integration and doc tests. Set AARCH64_A72_NO_DOCTESTS=1 to run the second pass
# with --tests only. ARCFACE_GOLDEN_DIR and other env vars are passed through untouched.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

readonly TARGET=aarch64-unknown-linux-gnu
readonly MIN_RUSTC=1.89   # cross doctests need >= 1.89; locked deps need >= 1.88 (proptest 1.12)
readonly PKGS=(rustc-web cargo-web libstd-rust-web-dev:arm64 gcc-aarch64-linux-gnu
               libc6-dev-arm64-cross qemu-user-static)

# ---- split args: before "--" go to cargo (build and test), after "--" to the test binaries only
cargo_args=() ; bin_args=()
seen_sep=0
for a in "$@"; do
  if (( ! seen_sep )) && [[ $a == -- ]]; then seen_sep=1; continue; fi
  if (( seen_sep )); then bin_args+=("$a"); else cargo_args+=("$a"); fi
done

# ---- timing summary, printed at exit whatever happens
phase_names=() ; phase_secs=() ; phase_rc=()
t_start=$EPOCHREALTIME
record() { # name start rc
  phase_names+=("$1")
  phase_secs+=("$(awk -v a="$2" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}')")
  phase_rc+=("$3")
}
summary() {
  local rc=$? i
  echo
  echo "== aarch64 summary =="
  for i in "${!phase_names[@]}"; do
    printf '  %-26s %8ss  %s\n' "${phase_names[$i]}" "${phase_secs[$i]}" \
      "$([[ ${phase_rc[$i]} == 0 ]] && echo ok || echo "FAILED (exit ${phase_rc[$i]})")"
  done
  printf '  %-26s %8ss\n' total "$(awk -v a="$t_start" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}')"
  (( rc == 0 )) && echo "  result: PASS" || echo "  result: FAIL (exit $rc)"
}
trap summary EXIT

# ---- 1. packages (fast path: nothing runs apt when everything is present)
version_ge() { [[ "$(printf '%s\n%s\n' "$2" "$1" | sort -V | head -n1)" == "$2" ]]; }
pkg_ok() { [[ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" == "ii "* ]]; }
rustc_version() { /usr/bin/rustc -V 2>/dev/null | awk '{print $2}'; }

need_install() {
  local p c
  for p in "${PKGS[@]}"; do pkg_ok "$p" || { echo "missing package: $p"; return 0; }; done
  for c in /usr/bin/cargo /usr/bin/rustc /usr/bin/rustdoc aarch64-linux-gnu-gcc qemu-aarch64-static; do
    command -v "$c" >/dev/null || { echo "missing command: $c"; return 0; }
  done
  if ! version_ge "$(rustc_version)" "$MIN_RUSTC"; then
    echo "/usr/bin/rustc $(rustc_version) is older than $MIN_RUSTC"; return 0
  fi
  return 1
}

echo "== aarch64 setup =="
t=$EPOCHREALTIME
if need_install; then
  SUDO=()
  if (( EUID != 0 )); then
    command -v sudo >/dev/null || { echo "error: packages missing and not root (no sudo)" >&2; exit 1; }
    SUDO=(sudo)
  fi
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    "${SUDO[@]}" dpkg --add-architecture arm64
  fi
  # Always refresh the lists: stale lists would offer bookworm's rustc-web 1.85 instead of
  # bookworm-security's current one (too old for the locked dev-deps).
  "${SUDO[@]}" apt-get update -q
  "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${PKGS[@]}"
  if ! version_ge "$(rustc_version)" "$MIN_RUSTC"; then
    echo "error: /usr/bin/rustc is $(rustc_version), need >= $MIN_RUSTC (is bookworm-security enabled?)" >&2
    exit 1
  fi
  record "apt install" "$t" 0
else
  record "apt (all present)" "$t" 0
fi
echo "$(/usr/bin/rustc -V) | $(/usr/bin/cargo -V) | $(qemu-aarch64-static --version | head -n1)"

# ---- 2-3. build and run; the cross environment lives only in xcargo's subshell, nothing leaks
xcargo() (
  export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc   # rustup's 1.95 is first on PATH
  export CARGO_TARGET_DIR=target/aarch64-debian          # keep the host's target/ untouched
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc
  # Never give qemu "-L /usr/aarch64-linux-gnu" (nor QEMU_LD_PREFIX): the cross ld.so with the
  # multiarch libc.so.6 deadlocks in pthread_create.
  export CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER=qemu-aarch64-static
  unset QEMU_LD_PREFIX
  exec /usr/bin/cargo test --release --locked --target "$TARGET" "$@"
)

echo
echo "== aarch64 build (release, target/aarch64-debian) =="
t=$EPOCHREALTIME
build_args=() ; has_doc=0   # cargo refuses "--no-run --doc"; doctests are built when they run
for a in "${cargo_args[@]}"; do if [[ $a == --doc ]]; then has_doc=1; else build_args+=("$a"); fi; done
rc=0; xcargo --no-run "${build_args[@]}" || rc=$?
record "build (--no-run)" "$t" "$rc"
(( rc == 0 )) || exit "$rc"

status=0
echo
echo "== aarch64 QEMU_CPU=max (NEON+FCMA+FP16...) =="
t=$EPOCHREALTIME
rc=0; QEMU_CPU=max xcargo "${cargo_args[@]}" -- "${bin_args[@]}" || rc=$?
record "test QEMU_CPU=max" "$t" "$rc"; (( rc == 0 )) || status=$rc

a72=()
if [[ ${AARCH64_A72_NO_DOCTESTS:-0} == 1 ]] && (( ! has_doc )); then a72=(--tests); fi
echo
echo "== aarch64 QEMU_CPU=cortex-a72 (plain NEON, no FCMA/FP16) =="
t=$EPOCHREALTIME
rc=0; QEMU_CPU=cortex-a72 xcargo "${a72[@]}" "${cargo_args[@]}" -- "${bin_args[@]}" || rc=$?
record "test QEMU_CPU=cortex-a72" "$t" "$rc"; (( rc == 0 )) || status=$rc

exit "$status"
