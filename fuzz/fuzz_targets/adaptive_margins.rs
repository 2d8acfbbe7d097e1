//! `AdaptiveMargins::compute` on arbitrary label lists (negative and
//! out-of-range labels, none at all), parameters of any value (NaN and ±∞
//! included) and class counts 0..=64 or beyond any `Vec<f64>`.
//!
//! Invariants (`tests/common/invariants/`, `check_adaptive`): no panic; a
//! typed error exactly for bad input (or a result that overflows f64), else
//! `num_classes` finite margins within [margin_min, margin_max] up to one
//! rounding, all `margin_max` when every class is equally frequent (D5).
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/common/invariants/mod.rs"]
mod invariants;

fuzz_target!(|data: &[u8]| {
    invariants::adaptive::check_adaptive(&invariants::adaptive::decode_adaptive(data));
});
