//! `margin_target` on arbitrary cosines (exactly ±1, a few ulps beyond ±1,
//! subnormals, ±0, NaN, ±∞, the threshold ± ulps) and margins of any sign
//! and size (0, tiny, near π, above π, negative, past f32's range), both
//! `easy_margin` settings, both margin-gradient modes, in f32 and f64.
//!
//! Invariants (`tests/common/invariants/`, `check_margin_t`): no panic; the
//! branch follows the strict-comparison rule against the threshold rounded
//! to the working type; finite cosine and margin give a finite value and
//! derivative; the value is within 4(u + 2⁻⁵³)(3 + |m|) of the f64
//! cos(acos c + m) (u = 2⁻²⁴ in f32), the derivative within that over
//! max(sin θ, 1e-6) plus 8(u + 2⁻⁵³)|d|; the fallbacks within one rounding.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/common/invariants/mod.rs"]
mod invariants;

fuzz_target!(|data: &[u8]| {
    invariants::margin::check_margin(&invariants::margin::decode_margin(data));
});
