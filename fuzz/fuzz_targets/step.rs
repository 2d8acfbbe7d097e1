//! A training step and the calls around it on small heads (N ≤ 16, D ≤ 64,
//! C ≤ 32, K ≤ 4) with arbitrary features and weights (zero rows, rows below
//! the 1e-12 norm epsilon, huge and tiny magnitudes, exact duplicates and
//! negations of weight rows), labels (out of range too), soft targets,
//! per-sample weights, losses, margins, scales and learning rates.
//!
//! Invariants (`tests/common/invariants/`, `check_step_t`): no panic; either
//! a typed error that leaves the weights, the margins and the workspace's
//! visible results unchanged bit for bit, or a finite loss and finite
//! gradients of the right shapes; invalid batches are always errors;
//! `loss` equals `forward_backward`; refused `sgd_step`/`set_margins` write
//! nothing. Then PartialFC's sampled step on the same case (`sampled`):
//! finite outputs, refused rates, rows never sampled equal to their
//! closed-form SGD trajectory. On the same case, the class lifecycle (`invariants::lifecycle`):
//! the case's features enrolled as a new class, then a retirement and a
//! removal; a refused call changes nothing. Cleaning (`invariants::clean`:
//! `clean`, `to_single_centre`) errors exactly on bad
//! input and otherwise gives angles in [0°, 180°], indices below K and
//! strict ⊆ official keep masks.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/common/invariants/mod.rs"]
mod invariants;

fuzz_target!(|data: &[u8]| {
    let case = invariants::step_case::decode_step(data);
    invariants::step::check_step(&case);
    invariants::sampled::check_sampled(&case, data.last().copied().unwrap_or(0));
    invariants::lifecycle::check_lifecycle(&case);
});
