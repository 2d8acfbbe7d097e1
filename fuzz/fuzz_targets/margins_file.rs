//! Arbitrary bytes as a margins file, through `parse_margins_file` (as
//! text) or `load_margins_file` (as a file, so invalid UTF-8 is reached),
//! with class counts 0..=39 or huge.
//!
//! Invariants (`tests/common/invariants/`, `check_file`): no panic and no
//! allocation beyond the input's size; a typed `MarginsFile` error naming
//! the same line as an independent oracle of the D10 grammar, or exactly
//! `num_classes` finite margins equal bit for bit to the oracle's.
#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "../../tests/common/invariants/mod.rs"]
mod invariants;

fuzz_target!(|data: &[u8]| {
    invariants::margins_file::check_file(&invariants::margins_file::decode_file(data));
});
