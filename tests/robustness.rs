//! Robustness under hostile input, on stable Rust.
//!
//! The invariants live in `tests/common/invariants/`, shared with the
//! cargo-fuzz targets in `fuzz/` (nightly). This binary runs them three ways:
//!
//! 1. **Corpus replay** (here): every file of `fuzz/corpus/<target>/` (the
//!    seeds of [`seeds`] plus every input a fuzzer found worth keeping,
//!    crashes included) goes through the same decoder and checker as in the
//!    fuzzer.
//! 2. **Proptest** ([`props`]): random bytes through the same decoders, and
//!    structured strategies that reach deep states random bytes rarely do
//!    (valid batches, well-formed margins files, cosines at ±1 ± ulps).
//! 3. **Named regressions** ([`regressions`]): one test per defect the
//!    fuzzers found, on the input kept in the corpus.
//!
//! The tolerances are derived next to each checker (`check_margin_t` for the
//! margin's f64 comparison; everything else is exact or a finiteness check).

mod common;
// this binary's own modules, in tests/robustness/
#[path = "robustness/props.rs"]
mod props;
#[path = "robustness/regressions.rs"]
mod regressions;
#[path = "robustness/seeds.rs"]
mod seeds;

use common::corpus::replay;
use common::invariants::adaptive::{check_adaptive, decode_adaptive};
use common::invariants::lifecycle::check_lifecycle;
use common::invariants::margin::{check_margin, decode_margin};
use common::invariants::margins_file::{check_file, decode_file};
use common::invariants::sampled::check_sampled;
use common::invariants::step::check_step;
use common::invariants::step_case::decode_step;

fn run_margin(b: &[u8]) {
    check_margin(&decode_margin(b))
}
fn run_step(b: &[u8]) {
    let case = decode_step(b);
    check_step(&case);
    check_sampled(&case, b.last().copied().unwrap_or(0));
    check_lifecycle(&case);
}
fn run_file(b: &[u8]) {
    check_file(&decode_file(b))
}
fn run_adaptive(b: &[u8]) {
    check_adaptive(&decode_adaptive(b))
}

#[test]
fn corpus_margin_replays_clean() {
    replay("margin", run_margin);
}

#[test]
fn corpus_step_replays_clean() {
    replay("step", run_step);
}

#[test]
fn corpus_margins_file_replays_clean() {
    replay("margins_file", run_file);
}

#[test]
fn corpus_adaptive_margins_replays_clean() {
    replay("adaptive_margins", run_adaptive);
}
